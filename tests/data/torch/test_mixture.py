"""MixtureSampler: deterministic per seed, rates within tolerance, passes are permutations, exact resume (also
from a state taken a number of draws ago), data-parallel ranks; MixtureDataset with a DataLoader."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torch.utils.data import DataLoader

from prg.data.schema import Turn, VQASample
from prg.data.torch import MixtureDataset, MixtureSampler, RecordSource, VQASource
from prg.data.torch.mixture import Key

SIZES = [50, 7, 300, 1]
RATES = [6.0, 1.0, 2.0, 1.0]


def take(sampler: MixtureSampler, n: int, it: Iterator[Key] | None = None) -> list[Key]:
    """``n`` keys from ``it`` (an iterator of ``sampler`` that is being consumed), else from a new ``iter()``."""
    return list(itertools.islice(it if it is not None else iter(sampler), n))


def test_deterministic_per_seed() -> None:
    a = take(MixtureSampler(SIZES, RATES, seed=3), 500)
    assert a == take(MixtureSampler(SIZES, RATES, seed=3), 500)
    assert a != take(MixtureSampler(SIZES, RATES, seed=4), 500)


def test_rates() -> None:
    """20,000 draws: each source's share is within 0.01 of its rate (about 4 standard deviations at p = 0.6)."""
    n = 20_000
    counts = Counter(s for s, _, _ in take(MixtureSampler(SIZES, RATES, seed=0), n))
    expected = np.asarray(RATES) / sum(RATES)
    shares = np.array([counts[s] / n for s in range(len(SIZES))])
    assert np.max(np.abs(shares - expected)) <= 0.01, (shares, expected)
    zero = Counter(s for s, _, _ in take(MixtureSampler([5, 5, 5], [1, 0, 1]), 2000))
    assert zero[1] == 0 and zero[0] and zero[2]


def test_each_pass_is_a_permutation() -> None:
    keys = take(MixtureSampler(SIZES, RATES, seed=1), 5000)
    for s, n in enumerate(SIZES):
        mine = [(i, p) for src, i, p in keys if src == s]
        full = len(mine) // n
        assert full >= 1
        for p in range(full):
            assert sorted(i for i, q in mine if q == p) == list(range(n))
    assert [i for s, i, _ in take(MixtureSampler([4], [1], shuffle=False), 6)] == [0, 1, 2, 3, 0, 1]


@pytest.mark.parametrize("num_samples", [None, 64])
def test_resume_is_exact(num_samples: int | None) -> None:
    """Draw 100, save, draw 50; a fresh sampler loaded with the state draws the same 50."""
    a = MixtureSampler(SIZES, RATES, seed=7, num_samples=num_samples)
    it = iter(a)
    first = take(a, 100, it) if num_samples is None else take(a, 64) + take(a, 36)
    state = json.loads(json.dumps(a.state_dict()))  # it is plain JSON (a checkpoint's trainer_state.json)
    nxt = take(a, 50, it) if num_samples is None else take(a, 28, iter(a)) + take(a, 22)
    b = MixtureSampler(SIZES, RATES, seed=7, num_samples=num_samples)
    b.load_state_dict(state)
    again = take(b, 50) if num_samples is None else take(b, 28) + take(b, 22)
    assert again == nxt and len(first) == 100
    assert b.yielded == a.yielded == 150


def test_state_at_an_earlier_draw() -> None:
    """A DataLoader prefetches: the state after the 100th key, taken after 150, equals the state saved at 100."""
    a = MixtureSampler(SIZES, RATES, seed=2)
    it = iter(a)
    take(a, 100, it)
    at_100 = a.state_dict()
    take(a, 50, it)
    assert a.state_dict(at=100) == at_100
    with pytest.raises(ValueError, match="yielded 150"):
        a.state_dict(at=151)


def test_fixed_length_epochs() -> None:
    s = MixtureSampler(SIZES, RATES, seed=0, num_samples=10)
    assert len(s) == 10
    e0, e1 = list(s), list(s)
    assert len(e0) == len(e1) == 10 and e0 != e1 and s.epoch == 2
    assert e0 + e1 == take(MixtureSampler(SIZES, RATES, seed=0), 20)  # epochs are slices of one stream
    with pytest.raises(TypeError, match="no length"):
        len(MixtureSampler(SIZES, RATES))


def test_ranks_split_one_stream() -> None:
    one = take(MixtureSampler(SIZES, RATES, seed=5), 300)
    r0 = take(MixtureSampler(SIZES, RATES, seed=5, rank=0, world_size=3), 100)
    r1 = take(MixtureSampler(SIZES, RATES, seed=5, rank=1, world_size=3), 100)
    r2 = take(MixtureSampler(SIZES, RATES, seed=5, rank=2, world_size=3), 100)
    assert [k for trio in zip(r0, r1, r2, strict=True) for k in trio] == one


def test_bad_settings_and_foreign_state() -> None:
    with pytest.raises(ValueError, match="no items"):
        MixtureSampler([0, 3], [1, 1])
    with pytest.raises(ValueError, match="one rate per source"):
        MixtureSampler([3], [1, 1])
    with pytest.raises(ValueError, match=">= 0"):
        MixtureSampler([3, 3], [1, -1])
    state = MixtureSampler(SIZES, RATES, seed=1).state_dict()
    with pytest.raises(ValueError, match="seed"):
        MixtureSampler(SIZES, RATES, seed=2).load_state_dict(state)
    with pytest.raises(ValueError, match="rates"):
        MixtureSampler(SIZES, [1, 1, 1, 1], seed=1).load_state_dict(state)


def test_dataset_with_a_dataloader(cached_dataset: Path, tmp_path: Path) -> None:
    img = tmp_path / "v.png"
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(img)
    vqa = VQASource(
        [VQASample(id=f"v{i}", image=str(img), turns=[Turn(role="user", text="?"), Turn(role="assistant", text="!")])
         for i in range(5)]
    )  # fmt: skip
    data = MixtureDataset([RecordSource(cached_dataset), vqa])
    assert len(data) == 8 and data[3]["id"] == "v0" and data[(0, 2, 1)]["id"] == "r2"
    sampler = data.sampler({"prg": 3, "vqa": 1}, seed=0, num_samples=12)
    loader = DataLoader(data, batch_size=4, sampler=sampler, collate_fn=list)
    batches = list(loader)
    assert [len(b) for b in batches] == [4, 4, 4]
    assert {it["source"] for b in batches for it in b} == {"prg", "vqa"}
    with pytest.raises(ValueError, match="miss"):
        data.sampler({"prg": 1})
