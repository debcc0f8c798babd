"""Names every part of PRG shares: the special tokens, the label value the loss skips, and the prompt segments.

Kept in one leaf module (no imports) so the dataset schema, the model and the pipeline agree without importing
each other.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["IGNORE_INDEX", "IMAGE_TOKEN", "POSE_TOKEN", "Segment"]

POSE_TOKEN = "[POSE]"  # each one in an answer is a grasp; its hidden state prompts the grasp decoder
IMAGE_TOKEN = "<image>"  # one per image feature in the prompt
IGNORE_INDEX = -100  # label value the HF causal-LM loss skips


class Segment(IntEnum):
    """Which part of the prompt a token belongs to (AdaptiveMixture's router reads it; truncation cuts documents)."""

    IMAGE = 0
    DOCUMENT = 1
    INSTRUCTION = 2
    ANSWER = 3
