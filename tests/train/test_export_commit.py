"""The commit a shipped model records: the override, or HEAD marked dirty when tracked files differ from it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from prg.train.export import _commit


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_commit_names_head_and_marks_a_changed_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRG_COMMIT", raising=False)
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("one\n")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = _git(tmp_path, "rev-parse", "HEAD")
    monkeypatch.chdir(tmp_path)
    assert _commit() == head
    (tmp_path / "b.txt").write_text("untracked files do not count\n")
    assert _commit() == head
    (tmp_path / "a.txt").write_text("two\n")  # a copied tree whose .git is older than its files
    assert _commit() == head + "-dirty"
    monkeypatch.setenv("PRG_COMMIT", "ee8503e")
    assert _commit() == "ee8503e"


def test_commit_outside_a_repository_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRG_COMMIT", raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.chdir(tmp_path)
    assert _commit() is None
