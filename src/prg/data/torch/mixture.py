"""Mixing sources at fixed rates (LISA's ``sample_rates``), deterministically and resumably.

:class:`MixtureSampler` yields keys ``(source, index, epoch)``: which source, which of its items, and how many
times that source has been gone through (its *pass*, which seeds the item's augmentation). :class:`MixtureDataset`
turns a key into a :class:`~prg.data.torch.sources.TrainItem`. Use both with a DataLoader::

    data = MixtureDataset([prg, scene, vqa, grasp])
    sampler = data.sampler({"prg": 6, "scene_qa": 1, "vqa": 2, "grasp": 1}, seed=0)
    loader = DataLoader(data, batch_size=8, sampler=sampler, collate_fn=partial(collate, processor=processor))

The stream is a pure function of the seed: draw ``t`` picks its source from a uniform number of block
``t // 4096`` (``np.random.default_rng([seed, 0, block])``), and each source walks through a fresh permutation of
its items per pass (``default_rng([seed, 1, source, pass])``). The state is therefore just the number of draws
and each source's (pass, position); :meth:`MixtureSampler.state_dict` can also give the state as it was a number
of draws ago, because a DataLoader pulls indices ahead of the batches the trainer has used.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset, Sampler

from prg.data.torch.sources import Source, TrainItem

__all__ = ["Key", "MixtureDataset", "MixtureSampler"]

Key = tuple[int, int, int]  # (source, index within it, the source's pass)
_BLOCK = 4096
_STATE_VERSION = 1


class MixtureSampler(Sampler[Key]):
    """An endless (or epoch-sliced) stream of ``(source, index, pass)`` keys at the given rates.

    Args:
        sizes: number of items of each source.
        rates: relative rate of each source (normalised; 0 leaves a source out).
        seed: the stream's seed.
        num_samples: ``None`` for an endless iterator; else each ``iter()`` yields the rest of the current epoch
            of ``num_samples`` keys (a full one when at a boundary), and ``len()`` is ``num_samples``.
        shuffle: ``False`` walks each source in order (evaluation).
        rank, world_size: for data-parallel training, rank ``r`` takes draw ``r`` of every ``world_size`` draws
            of the one global stream, so ranks see different items and share one state.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        rates: Sequence[float],
        *,
        seed: int = 0,
        num_samples: int | None = None,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if len(sizes) != len(rates) or not sizes:
            raise ValueError(f"need one rate per source, got {len(rates)} rates for {len(sizes)} sources")
        r = np.asarray(rates, dtype=np.float64)
        if not np.all(np.isfinite(r)) or np.any(r < 0) or r.sum() <= 0:
            raise ValueError(f"rates must be finite, >= 0 and not all 0, got {list(rates)}")
        empty = [i for i, (n, w) in enumerate(zip(sizes, r, strict=True)) if w > 0 and n < 1]
        if empty:
            raise ValueError(f"sources {empty} have a rate > 0 but no items")
        if num_samples is not None and num_samples < 1:
            raise ValueError(f"num_samples must be >= 1 or None, got {num_samples}")
        if not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank {rank}, world_size {world_size}")
        self.sizes = [int(n) for n in sizes]
        self.rates = (r / r.sum()).tolist()
        self.seed = seed
        self.num_samples = num_samples
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self._cum = np.cumsum(self.rates)
        self._last = int(np.flatnonzero(r > 0)[-1])  # where a u above the rounded cumsum lands
        self._drawn = 0  # draws of the global stream (all ranks)
        self._pos = [[0, 0] for _ in sizes]  # per source: [pass, position in that pass's order]
        self._block: tuple[int, np.ndarray] | None = None
        self._orders: dict[int, tuple[int, np.ndarray]] = {}

    # -- the stream ------------------------------------------------------------------------------------------
    def source_of(self, t: int) -> int:
        """The source of global draw ``t`` (a pure function of the seed and ``t``)."""
        b, i = divmod(t, _BLOCK)
        if self._block is None or self._block[0] != b:
            u = np.random.default_rng([self.seed, 0, b]).random(_BLOCK)
            src = np.minimum(np.searchsorted(self._cum, u, side="right"), self._last)
            self._block = (b, src)
        return int(self._block[1][i])

    def _order(self, s: int, p: int) -> np.ndarray:
        cached = self._orders.get(s)
        if cached is None or cached[0] != p:
            n = self.sizes[s]
            order = np.random.default_rng([self.seed, 1, s, p]).permutation(n) if self.shuffle else np.arange(n)
            cached = self._orders[s] = (p, order)
        return cached[1]

    def _draw(self) -> Key:
        s = self.source_of(self._drawn)
        self._drawn += 1
        p, pos = self._pos[s]
        key = (s, int(self._order(s, p)[pos]), p)
        self._pos[s] = [p + 1, 0] if pos + 1 == self.sizes[s] else [p, pos + 1]
        return key

    def _next(self) -> Key:
        keys = [self._draw() for _ in range(self.world_size)]  # one round: every rank's draw
        return keys[self.rank]

    @property
    def yielded(self) -> int:
        """Keys this rank has yielded since the start of the stream (resumes included)."""
        return self._drawn // self.world_size

    @property
    def epoch(self) -> int:
        """Completed epochs of ``num_samples`` keys (0 for an endless sampler)."""
        return self.yielded // self.num_samples if self.num_samples else 0

    def __iter__(self) -> Iterator[Key]:
        n = self.num_samples
        if n is None:
            while True:
                yield self._next()
        for _ in range(n - self.yielded % n):
            yield self._next()

    def __len__(self) -> int:
        if self.num_samples is None:
            raise TypeError("an endless MixtureSampler has no length; pass num_samples for fixed-length epochs")
        return self.num_samples

    # -- state -----------------------------------------------------------------------------------------------
    def state_dict(self, at: int | None = None) -> dict[str, Any]:
        """The exact stream position, JSON-serialisable. ``at``: the state after this rank's ``at``-th key instead
        of now (``at <= yielded``), e.g. the keys of the batches the trainer has finished, not those the
        DataLoader has prefetched; found by stepping back through the stream's (pure) source choices."""
        drawn = self._drawn if at is None else at * self.world_size
        if not 0 <= drawn <= self._drawn:
            raise ValueError(f"at={at}: the sampler has yielded {self.yielded} keys")
        pos = [list(p) for p in self._pos]
        for t in range(self._drawn - 1, drawn - 1, -1):
            s = self.source_of(t)
            p, i = pos[s]
            pos[s] = [p - 1, self.sizes[s] - 1] if i == 0 else [p, i - 1]
        return {
            "version": _STATE_VERSION,
            "seed": self.seed,
            "sizes": list(self.sizes),
            "rates": list(self.rates),
            "num_samples": self.num_samples,
            "shuffle": self.shuffle,
            "world_size": self.world_size,
            "drawn": drawn,
            "positions": pos,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state`` (from :meth:`state_dict` of a sampler with the same settings; rank may differ)."""
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"unknown sampler state version {state.get('version')!r}")
        mine = self.state_dict()
        for key in ("seed", "sizes", "num_samples", "shuffle", "world_size"):
            if state[key] != mine[key]:
                raise ValueError(f"sampler state has {key}={state[key]!r}, this sampler {mine[key]!r}")
        if not np.allclose(state["rates"], self.rates, rtol=0, atol=1e-12):
            raise ValueError(f"sampler state has rates {state['rates']}, this sampler {self.rates}")
        self._drawn = int(state["drawn"])
        self._pos = [[int(p), int(i)] for p, i in state["positions"]]


class MixtureDataset(Dataset[TrainItem]):
    """Several sources behind one map-style dataset, indexed by :class:`MixtureSampler` keys."""

    def __init__(self, sources: Sequence[Source]) -> None:
        names = [s.name for s in sources]
        if not sources or len(set(names)) != len(names):
            raise ValueError(f"need at least one source and unique names, got {names}")
        self.sources = list(sources)
        self.names = names

    @property
    def sizes(self) -> list[int]:
        return [len(s) for s in self.sources]

    def __len__(self) -> int:
        return sum(self.sizes)

    def __getitem__(self, key: Key | int) -> TrainItem:
        """A sampler key ``(source, index, pass)``; a plain int indexes the concatenation (pass 0)."""
        if isinstance(key, int | np.integer):
            i = int(key)
            for s, n in enumerate(self.sizes):
                if i < n:
                    return self.sources[s].get(i, 0)
                i -= n
            raise IndexError(f"index {key} out of range for {len(self)} items")
        s, index, epoch = key
        return self.sources[s].get(int(index), int(epoch))

    def sampler(self, rates: Mapping[str, float] | Sequence[float], **kwargs: Any) -> MixtureSampler:
        """A :class:`MixtureSampler` over these sources; ``rates`` by source name (every name, 0 to leave one
        out) or in source order. ``kwargs`` go to the sampler."""
        if isinstance(rates, Mapping):
            unknown, missing = set(rates) - set(self.names), set(self.names) - set(rates)
            if unknown or missing:
                raise ValueError(f"rates name unknown sources {sorted(unknown)} / miss {sorted(missing)}")
            rates = [float(rates[n]) for n in self.names]
        return MixtureSampler(self.sizes, rates, **kwargs)
