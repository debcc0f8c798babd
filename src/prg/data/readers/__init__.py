"""Readers for the field's grasp datasets: convert them into PRG dataset folders.

``convert("cornell" | "jacquard" | "reasongrasp", SRC, DST)`` writes a dataset folder and returns a
:class:`ConvertReport`; ``read_llava_instruct`` streams LLaVA-Instruct conversations for VQA mixing.
The layouts and how they map to records are described in ``docs/readers.md``.
"""

from prg.data.readers.common import ConvertReport, assign_split, convert, known_formats
from prg.data.readers.cornell import parse_cornell_grasps
from prg.data.readers.jacquard import parse_jacquard_grasps
from prg.data.readers.llava import read_llava_instruct

__all__ = [
    "ConvertReport",
    "assign_split",
    "convert",
    "known_formats",
    "parse_cornell_grasps",
    "parse_jacquard_grasps",
    "read_llava_instruct",
]
