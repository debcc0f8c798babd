"""Train the embedding rows of PRG's new tokens (``[POSE]``, ``<image>``) while the tables stay frozen.

Adapters (AdaptiveMixture, LoRA) freeze the language model, embeddings included, so a token the base never saw
would keep its random (or padding-row) embedding and output row for ever: the model could not learn to *emit*
``[POSE]``. LISA trains the whole ``embed_tokens`` and ``lm_head`` for this; that is 2 x V x H parameters (262M on
LLaVA-7B) for two rows. Here a :class:`TokenRows` parameter ``[n x H]`` overrides just those rows:

* input: ``embed(ids)`` with the rows of the new ids replaced by ``rows_in[slot(id)]``;
* output: ``logits[..., new_ids] = h @ rows_out.T`` (plus the head's bias, if any).

For a model with tied embeddings (SmolLM2) one parameter serves both, so the tie survives. ``fold_token_rows``
writes the rows back into the tables (exact) and removes the wrappers, for merged/standalone checkpoints.
Written by hand: PEFT's ``trainable_token_indices`` covers the same idea only for PEFT models, and PRG's
AdaptiveMixture is not one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from transformers import PreTrainedModel

__all__ = ["RowOverrideEmbedding", "RowOverrideHead", "fold_token_rows", "train_token_rows"]


class _Slots(nn.Module):
    """``lookup[id]`` = the row slot of a new token id, -1 for every other id (a non-persistent buffer)."""

    def __init__(self, vocab: int, ids: Sequence[int]) -> None:
        super().__init__()
        lookup = torch.full((vocab,), -1, dtype=torch.long)
        lookup[torch.tensor(list(ids), dtype=torch.long)] = torch.arange(len(ids))
        self.register_buffer("lookup", lookup, persistent=False)
        self.ids = list(ids)


class RowOverrideEmbedding(nn.Module):
    """An ``nn.Embedding`` whose rows for ``ids`` come from the trainable ``rows`` ``[n x H]``."""

    def __init__(self, base: nn.Embedding, ids: Sequence[int], rows: nn.Parameter | None = None) -> None:
        super().__init__()
        self.base = base
        self.slots = _Slots(base.num_embeddings, ids)
        self.rows = rows if rows is not None else nn.Parameter(base.weight.detach()[list(ids)].clone())

    @property
    def weight(self) -> torch.Tensor:  # what callers of get_input_embeddings().weight expect
        return self.base.weight

    @property
    def num_embeddings(self) -> int:
        return self.base.num_embeddings

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        out = self.base(input_ids)  # [B x T x H]
        lookup: torch.Tensor = self.slots.lookup  # type: ignore[assignment]
        slot = lookup[input_ids]
        hit = slot >= 0
        # torch.where keeps the graph to `rows` and costs no host sync (no boolean indexing)
        return torch.where(hit[..., None], self.rows[slot.clamp(min=0)].to(out.dtype), out)


class RowOverrideHead(nn.Module):
    """An output ``nn.Linear`` (``lm_head``) whose logits for ``ids`` are computed from the trainable ``rows``."""

    def __init__(self, base: nn.Linear, ids: Sequence[int], rows: nn.Parameter | None = None) -> None:
        super().__init__()
        self.base = base
        self.ids = list(ids)
        self.register_buffer("index", torch.tensor(self.ids, dtype=torch.long), persistent=False)
        self.rows = rows if rows is not None else nn.Parameter(base.weight.detach()[self.ids].clone())

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.base(hidden)  # [..., V]
        new = hidden @ self.rows.to(hidden.dtype).T  # [..., n]
        if self.base.bias is not None:
            index: torch.Tensor = self.index  # type: ignore[assignment]
            new = new + self.base.bias[index]
        return logits.index_copy(-1, self.index, new.to(logits.dtype))


def _tied(lm: PreTrainedModel) -> bool:
    head, embed = lm.get_output_embeddings(), lm.get_input_embeddings()
    return head is not None and embed is not None and head.weight is embed.weight


def train_token_rows(lm: PreTrainedModel, ids: Sequence[int]) -> list[nn.Parameter]:
    """Wrap ``lm``'s input embedding and output head so the rows of ``ids`` train; returns the new parameters.

    The wrapped tables keep their ``requires_grad`` (frozen under adapters). Idempotent.
    """
    embed = lm.get_input_embeddings()
    if isinstance(embed, RowOverrideEmbedding):
        return [p for p in (embed.rows, getattr(lm.get_output_embeddings(), "rows", None)) if p is not None]
    if not isinstance(embed, nn.Embedding):
        raise TypeError(f"expected an nn.Embedding as the input embeddings, got {type(embed).__name__}")
    head = lm.get_output_embeddings()
    tied = _tied(lm)
    new_embed = RowOverrideEmbedding(embed, ids)
    lm.set_input_embeddings(new_embed)
    params = [new_embed.rows]
    if isinstance(head, nn.Linear):
        new_head = RowOverrideHead(head, ids, rows=new_embed.rows if tied else None)
        lm.set_output_embeddings(new_head)
        if not tied:
            params.append(new_head.rows)
    return params


@torch.no_grad()
def fold_token_rows(lm: PreTrainedModel) -> None:
    """Write the trained rows into the tables and remove the wrappers (exact); a no-op without wrappers."""
    embed, head = lm.get_input_embeddings(), lm.get_output_embeddings()
    if not isinstance(embed, RowOverrideEmbedding):
        return
    ids = embed.slots.ids
    base_embed = embed.base
    was_frozen = not base_embed.weight.requires_grad
    base_embed.weight[ids] = embed.rows.to(base_embed.weight.dtype)
    lm.set_input_embeddings(base_embed)
    if isinstance(head, RowOverrideHead):
        if head.base.weight is not base_embed.weight:
            head.base.weight[ids] = head.rows.to(head.base.weight.dtype)
        lm.set_output_embeddings(head.base)
    if was_frozen:
        base_embed.weight.requires_grad_(False)
