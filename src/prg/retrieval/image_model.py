"""The scene tagger's network: a small CNN that names one object crop.

Input is a canonical crop (see :func:`prg.retrieval.image.canonical_crop`): the object rotated so its long axis
is horizontal, background zeroed, plus its mask as a fourth channel and two size features. Colour is kept on
purpose: look-alike tools in the catalogue differ mainly by a sleeve, tip or band colour.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

__all__ = ["TaggerConfig", "TaggerNet"]


@dataclass
class TaggerConfig:
    """Everything needed to rebuild the network and its pre-processing (saved as JSON with the weights)."""

    labels: list[str]
    names: dict[str, str] = field(default_factory=dict)  # label -> what a person calls it
    crop: int = 64  # crop side in pixels
    channels: tuple[int, ...] = (16, 32, 64, 128)  # narrow early layers: CPU training in minutes
    n_extra: int = 2  # size features: long and short extent / image side

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_json(cls, d: dict[str, object]) -> TaggerConfig:
        return cls(
            labels=list(d["labels"]),  # type: ignore[call-overload]
            names=dict(d.get("names") or {}),  # type: ignore[call-overload]
            crop=int(d["crop"]),  # type: ignore[call-overload]
            channels=tuple(d["channels"]),  # type: ignore[arg-type]
            n_extra=int(d["n_extra"]),  # type: ignore[call-overload]
        )


class TaggerNet(nn.Module):
    """``[B x 4 x crop x crop]`` crops + ``[B x n_extra]`` size features -> ``[B x n_labels]`` logits."""

    def __init__(self, cfg: TaggerConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 4
        for c in cfg.channels:
            # conv-BN-ReLU then halve: 64 -> 4 px after four blocks, enough context for part layout
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            layers += [nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Linear(c_in + cfg.n_extra, 128), nn.ReLU(inplace=True), nn.Dropout(0.2), nn.Linear(128, len(cfg.labels))
        )

    def forward(self, x: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        f = self.features(x)  # [B, C, s, s]
        # mean + max pooling: max keeps small colour cues (a 2 cm band) that averaging would dilute
        pooled = f.mean(dim=(2, 3)) + f.amax(dim=(2, 3))
        return self.head(torch.cat([pooled, extra], dim=1))
