"""What a user sees in an 80-column terminal: every help page, table and query hit whole (nothing ends in "…"),
and no transformers progress bar when a command loads weights."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from prg.cli.main import app
from prg.data.dataset import write_dataset
from prg.data.schema import DatasetInfo, DocRef, PRGRecord
from tests.cli_run import run_main

CLAUSE = (
    "**4.2.1** Before touching a busbar that has been switched off, the absence of voltage shall be verified with a "
    "two-pole voltage detector that has itself been proved on a known live source immediately before and after the "
    "test; a continuity tester, a multimeter on its resistance range or a neon screwdriver shall not be used, and "
    "the result shall be recorded on the isolation certificate together with the detector's serial number and the "
    "time of the test."
)
DOC = f"# EP-SAF-001 Safety rules for switching\n\n## 4 Tools for isolation work\n\n{CLAUSE}\n"
ACIDS = "# CH-SAF-002 Handling acids\n\n## 3 PPE\n\n**3.1.1** Wear nitrile gloves when decanting acids.\n"


def _commands(cmd: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _commands(sub, [*path, name])


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_every_help_page_shows_its_options_and_commands_whole_at_80_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    pages = list(_commands(typer.main.get_command(app), []))
    assert len(pages) > 20  # the whole tree, groups and commands
    for path, cmd in pages:
        code, out, err = run_main([*path, "--help"], capsys, monkeypatch)
        where = f"prg {' '.join(path)} --help"
        assert code == 0, f"{where}: {err}"
        assert "…" not in out and max(map(len, out.splitlines())) <= 80, f"{where}:\n{out}"
        for param in cmd.params:
            for name in [*param.opts, *param.secondary_opts]:
                if name.startswith("-"):
                    assert name in out.split() or f"{name}," in out, f"{where} lacks {name}:\n{out}"
        for sub in getattr(cmd, "commands", {}).values():
            first = sub.get_short_help_str(limit=sys.maxsize)
            assert first and _flat(first) in _flat(out), f"{where} cuts {sub.name}'s description:\n{out}"


def _prg(*args: str) -> subprocess.CompletedProcess[str]:
    """``prg ARGS`` as a user runs it in an 80-column terminal (rich reads COLUMNS when the console starts)."""
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"} | {"COLUMNS": "80"}
    cmd = [sys.executable, "-m", "prg.cli.main", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, env=env)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("narrow")
    (root / "docs" / "electric_power").mkdir(parents=True)
    (root / "docs" / "chemical").mkdir()
    (root / "docs" / "electric_power" / "EP-SAF-001.md").write_text(DOC)
    (root / "docs" / "chemical" / "CH-SAF-002.md").write_text(ACIDS)
    return root


def test_eval_retrieval_table_names_every_group_whole(corpus: Path) -> None:
    idx = corpus / "idx_hashing"
    assert _prg("index", "build", str(corpus / "docs"), "--out", str(idx), "--embedder", "hashing").returncode == 0
    queries = [  # two split names that an ellipsis made the same "split=zero_shot…"
        ("prove the busbar dead", ("EP-SAF-001", "4.2.1"), "zero_shot_industry", "electric_power"),
        ("which gloves for decanting acids", ("CH-SAF-002", "3.1.1"), "zero_shot_task", "chemical"),
    ]  # fmt: skip
    records = [PRGRecord(id=f"q{i}", image="unused.png", instruction=text, answer="", industry=industry,
                         documents=[DocRef(doc_id=d, clause=c)], split=split)
               for i, (text, (d, c), split, industry) in enumerate(queries)]  # fmt: skip
    write_dataset(corpus / "ds", DatasetInfo(name="narrow"), records)
    proc = _prg("eval", "retrieval", "--dataset", str(corpus / "ds"), "--index", str(idx), "--level", "clause")
    assert proc.returncode == 0, proc.stderr
    assert "…" not in proc.stdout and max(map(len, proc.stdout.splitlines())) <= 80, proc.stdout
    for group in ("split=zero_shot_industry", "split=zero_shot_task", "industry=electric_power", "industry=chemical"):
        assert group in proc.stdout.split(), proc.stdout  # one piece, not folded over two lines


def test_index_query_shows_the_whole_clause_and_no_loading_bar(corpus: Path) -> None:
    """MiniLM is loaded by ``from_pretrained``: transformers would draw its "Loading weights" bar on stderr."""
    idx = corpus / "idx_minilm"
    build = _prg("index", "build", str(corpus / "docs"), "--out", str(idx))
    assert build.returncode == 0, build.stderr
    proc = _prg("index", "query", str(idx), "how do I prove a busbar dead", "--k", "1")
    assert proc.returncode == 0, proc.stderr
    assert _flat(CLAUSE.replace("**", "")) in _flat(proc.stdout), proc.stdout  # the whole clause, its end included
    for p in (build, proc):
        assert "Loading weights" not in p.stderr, p.stderr


def test_transformers_draws_its_loading_bar_where_prg_does_not_silence_it(capsys: pytest.CaptureFixture[str]) -> None:
    """The control for the test above: the same load outside PRG's loader does print the bar (so its absence
    there is PRG's doing, not an environment without bars), and PRG's quiet block leaves the switch as it was."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    from prg.hfutil import quiet_loading
    from prg.retrieval.embed import MiniLMEmbedder, default_minilm_dir

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()
    try:
        AutoModel.from_pretrained(str(default_minilm_dir()), local_files_only=True)
        assert "Loading weights" in capsys.readouterr().err
        MiniLMEmbedder()
        assert "Loading weights" not in capsys.readouterr().err
        assert hf_logging.is_progress_bar_enabled()  # restored after PRG's load
        with quiet_loading(), quiet_loading():  # nested: still off inside, restored after the outer one
            assert not hf_logging.is_progress_bar_enabled()
        assert hf_logging.is_progress_bar_enabled()
    finally:
        (hf_logging.enable_progress_bar if was else hf_logging.disable_progress_bar)()
