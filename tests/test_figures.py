"""Figures in the docs agree with benchmarks/results/*.json (scripts/figures.py), and the marker machinery works."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("prg_figures", ROOT / "scripts" / "figures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is being built
    spec.loader.exec_module(module)
    return module


figures = _load()


def test_docs_agree_with_the_json() -> None:
    problems = figures.run(ROOT, write=False)
    report = "\n".join(f"{p.path}:{p.line}: {p.name or 'stale'}\n{p.message}" for p in problems)
    assert not problems, f"run `.venv/bin/python scripts/figures.py --write`:\n{report}"


def _tree(tmp_path: Path, doc: str, speed: float = 19.04) -> Path:
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "toy.json").write_text(json.dumps({"speed": speed, "rows": [1, 2]}))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "toy.md").write_text(doc, encoding="utf-8")
    return tmp_path


SECTIONS = {
    "speed": lambda r: f"{r('toy')['speed']:.1f} records/s",
    "rows": lambda r: "| row |\n| --- |\n" + "\n".join(f"| {x} |" for x in r("toy")["rows"]),
}
DOC = """Speed: <!-- figures:speed -->STALE<!-- /figures:speed --> on two cores.

<!-- figures:rows -->
old table
<!-- /figures:rows -->
"""


def test_stale_text_is_reported_then_rewritten_from_the_json(tmp_path: Path) -> None:
    root = _tree(tmp_path, DOC)
    problems = figures.run(root, write=False, sections=SECTIONS)
    assert [(str(p.path), p.line) for p in problems] == [("docs/toy.md", 1)]
    assert "-Speed: <!-- figures:speed -->STALE" in problems[0].message
    assert (root / "docs" / "toy.md").read_text() == DOC  # --check writes nothing
    figures.run(root, write=True, sections=SECTIONS)
    assert (root / "docs" / "toy.md").read_text() == (
        "Speed: <!-- figures:speed -->19.0 records/s<!-- /figures:speed --> on two cores.\n\n"
        "<!-- figures:rows -->\n\n| row |\n| --- |\n| 1 |\n| 2 |\n\n<!-- /figures:rows -->\n"
    )
    assert figures.run(root, write=False, sections=SECTIONS) == []
    # a new measurement makes the text stale again
    (root / "benchmarks" / "results" / "toy.json").write_text(json.dumps({"speed": 25.0, "rows": [1, 2]}))
    assert len(figures.run(root, write=False, sections=SECTIONS)) == 1


def test_unused_section_is_reported(tmp_path: Path) -> None:
    root = _tree(tmp_path, "<!-- figures:speed -->19.0 records/s<!-- /figures:speed -->\n")
    problems = figures.run(root, write=False, sections=SECTIONS)
    assert [p.name for p in problems] == ["rows"]


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ("<!-- figures:nope -->x<!-- /figures:nope -->", "unknown figures section 'nope'"),
        ("a\n<!-- figures:speed -->x\n", r"docs/toy.md:2: unmatched marker"),
        ("<!-- figures:speed -->x<!-- /figures:rows -->", "unmatched marker"),
        ("<!-- figures:rows -->x<!-- /figures:rows -->", "several lines; use block markers"),
    ],
)
def test_bad_markers_raise(tmp_path: Path, doc: str, match: str) -> None:
    root = _tree(tmp_path, doc)
    with pytest.raises(figures.FiguresError, match=match):
        figures.run(root, write=False, sections=SECTIONS)


def test_missing_results_file_raises(tmp_path: Path) -> None:
    root = _tree(tmp_path, "<!-- figures:speed -->x<!-- /figures:speed -->")
    (root / "benchmarks" / "results" / "toy.json").unlink()
    with pytest.raises(figures.FiguresError, match=r"toy\.json: no such results file"):
        figures.run(root, write=False, sections={"speed": SECTIONS["speed"]})


def test_cli_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert figures.main(["--check"]) == 0
    root = _tree(tmp_path, "<!-- figures:speed -->x<!-- /figures:speed -->")
    assert figures.main(["--check", "--root", str(root)]) == 1  # the repo's sections are unknown to this doc
    assert "unknown figures section 'speed'" in capsys.readouterr().err


def test_quoted_figures_are_the_json_values() -> None:
    """Spot checks that the sections read the right fields (a wrong key or row would quote another number)."""
    r = figures.Results(ROOT / "benchmarks" / "results")
    agree = json.loads((ROOT / "benchmarks/results/render_agreement.json").read_text())
    assert f"mask IoU of {agree['all']['iou_min']:.3f} or more" in figures.SECTIONS["render"](r)
    ingest = json.loads((ROOT / "benchmarks/results/ingest.json").read_text())
    chunks = sum(x["chunks"] for x in ingest["ingest"] if not x["figure_crops"])
    assert f"PRG-Synth index ({chunks} chunks" in figures.SECTIONS["index-recall"](r)
    merge = json.loads((ROOT / "benchmarks/results/merge_error.json").read_text())
    assert f"{merge['summary']['ratio']['max']:.2f}" in figures.SECTIONS["merge-error"](r)
