"""Import boundaries between parts (docs: DESIGN.md, "Parts and their boundaries"), read from the source with ast.

Every import counts: top-level, inside functions (lazy), under ``TYPE_CHECKING``, relative, and
``importlib.import_module("...")`` with a literal name. Nothing is imported, so the test is fast and a broken
module cannot hide a violation.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: (part, forbidden module) — the part and its submodules must not import the module or its submodules
RULES: list[tuple[str, str]] = [
    *[("prg.retrieval", m) for m in ("prg.data.synth", "prg.model", "prg.train", "prg.eval")],
    *[("prg.model", m) for m in ("prg.train", "prg.serve", "prg.retrieval", "prg.eval", "prg.cli")],
    *[("prg.grasp", m) for m in ("torch", "prg.model", "prg.data", "prg.retrieval")],
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(source: str, module: str, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """``(line, dotted name)`` of everything ``source`` (the text of ``module``) imports, relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:  # `from prg import model` imports prg.model
                yield node.lineno, f"{base}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(part: str, forbidden: str) -> list[str]:
    root = SRC.joinpath(*part.split("."))
    files = sorted(root.rglob("*.py")) if root.is_dir() else [root.with_suffix(".py")]
    assert files and all(f.is_file() for f in files), f"{part}: no source found under {SRC}"
    out = []
    for f in files:
        mod = _module_name(f)
        for line, name in imported_names(f.read_text(encoding="utf-8"), mod, f.name == "__init__.py"):
            if _within(name, forbidden):
                out.append(f"{f.relative_to(SRC.parent)}:{line}: {mod} imports {name}")
    return sorted(set(out))


#: rules the code breaks today, each with the offending import; strict, so fixing it makes the test say so
KNOWN: dict[tuple[str, str], str] = {}


@pytest.mark.parametrize(
    ("part", "forbidden"),
    [
        pytest.param(p, m, marks=pytest.mark.xfail(strict=True, reason=KNOWN[p, m])) if (p, m) in KNOWN else (p, m)
        for p, m in RULES
    ],
    ids=[f"{p}-not-{m}" for p, m in RULES],
)
def test_part_does_not_import(part: str, forbidden: str) -> None:
    found = violations(part, forbidden)
    assert not found, "\n".join(found)


def test_the_checker_sees_every_kind_of_import() -> None:
    src = """
from __future__ import annotations
import torch.nn as nn
from typing import TYPE_CHECKING
from .. import model
from ..data.synth import catalogue
if TYPE_CHECKING:
    from prg.train.tagger import train_tagger
def f():
    import importlib
    importlib.import_module("prg.eval.tagger")
"""
    names = {n for _, n in imported_names(src, "prg.retrieval.image")}
    assert {"torch.nn", "prg.model", "prg.data.synth.catalogue", "prg.train.tagger", "prg.eval.tagger"} <= names
    assert {n for _, n in imported_names("from . import image", "prg.retrieval", is_package=True)} >= {
        "prg.retrieval.image"
    }
    assert _within("prg.data.synth.catalogue", "prg.data.synth")
    assert not _within("prg.data.synthetic", "prg.data.synth")
