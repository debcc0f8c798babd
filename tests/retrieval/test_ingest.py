"""Ingestion of Markdown, plain text and images: structure, metadata, figures and stable ids."""

from __future__ import annotations

import json
import re
from pathlib import Path

from PIL import Image

from prg.retrieval.ingest import ingest_path

MD = """\
# EP-SAF-004 Rules for live-line work

## 1 Scope

**1.1** This document applies to work near live parts.

**1.2** It applies to contractors as well.

## 4 Tools for isolation work

### 4.1 General

4.1.1 A risk assessment shall be made.
It is recorded on the job card.

NOTE 1: the supervisor keeps the card.

### 4.2 Testing for absence of voltage

![Figure 3: two-pole voltage detector, note the probe guards](figures/detector.png)

*Figure 3: two-pole voltage detector, note the probe guards*

4.2.1. The absence of voltage shall be verified with a voltage detector (see Figure 3).

Clause 4.2.2 The detector shall be proved on a known live source before and after use.

§4.2.3 A multimeter shall not be used for this test.

*Table 1: equipment by task*

| Item | Task | Required |
|---|---|---|
| 4.2.4 | apply earthing | earthing clamp |
| 4.2.5 | test for voltage | voltage detector |

## 5 Records

5.1 Records shall be kept for five years.
"""

LINE_START_CLAUSE = re.compile(r"^(?:Clause\s+|§\s*)?(\d+(?:\.\d+)+)\.?\s", re.MULTILINE)


def _write_md(folder: Path, text: str = MD, name: str = "EP-SAF-004.md") -> Path:
    (folder / "figures").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 24), (200, 30, 30)).save(folder / "figures" / "detector.png")
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


def test_markdown_structure(tmp_path: Path) -> None:
    src = _write_md(tmp_path / "docs" / "electric_power")
    res = ingest_path(tmp_path / "docs", figure_dir=tmp_path / "figs")
    assert res.skipped == [] and res.warnings == []
    (doc,) = res.documents
    assert (doc.doc_id, doc.title, doc.industry, doc.pages) == ("EP-SAF-004", "Rules for live-line work",
                                                                "electric_power", None)  # fmt: skip
    assert doc.n_chunks == len(res.chunks) and doc.source == str(src)
    for c in res.chunks:
        assert len(set(LINE_START_CLAUSE.findall(c.text))) <= 1, c.text  # never two clauses in one chunk
        assert c.section.count("1 Scope") + c.section.count("4 Tools") + c.section.count("5 Records") == 1
    text = {c.clause: c for c in res.chunks if c.kind == "text"}
    assert set(text) == {"1.1", "1.2", "4.1.1", "4.2.1", "4.2.2", "4.2.3", "5.1"}
    assert "job card" in text["4.1.1"].text and "NOTE 1" in text["4.1.1"].text  # continuation lines stay
    assert text["4.2.1"].section == "4 Tools for isolation work > 4.2 Testing for absence of voltage"
    assert text["5.1"].section == "5 Records"
    assert text["4.2.2"].citation() == "EP-SAF-004 §4.2.2"
    tables = [c for c in res.chunks if c.kind == "table"]
    assert [t.clause for t in tables] == ["4.2.4", "4.2.5"]
    assert tables[0].text.splitlines() == ["Table 1: equipment by task", "Item | Task | Required",
                                           "4.2.4 | apply earthing | earthing clamp"]  # fmt: skip
    (fig,) = [c for c in res.chunks if c.kind == "figure"]
    assert fig.text == "Figure 3: two-pole voltage detector, note the probe guards"
    assert fig.clause == "4.2.1" and fig.figure == "EP-SAF-004_detector.png"
    assert (tmp_path / "figs" / "EP-SAF-004_detector.png").is_file()
    # the caption repeated in italics under the image is not indexed a second time
    assert sum("probe guards" in c.text for c in res.chunks) == 1


def test_ids_stable_across_ingestions_and_change_with_text(tmp_path: Path) -> None:
    _write_md(tmp_path)
    a = ingest_path(tmp_path)
    b = ingest_path(tmp_path)
    assert [c.id for c in a.chunks] == [c.id for c in b.chunks]
    assert len({c.id for c in a.chunks}) == len(a.chunks)
    _write_md(tmp_path, MD.replace("five years", "ten years"))
    c = ingest_path(tmp_path)
    old, new = (
        {x.clause: x.id for x in a.chunks if x.kind == "text"},
        {x.clause: x.id for x in c.chunks if x.kind == "text"},
    )
    assert old["5.1"] != new["5.1"]
    assert {k: v for k, v in old.items() if k != "5.1"} == {k: v for k, v in new.items() if k != "5.1"}
    assert a.documents[0].sha256 != c.documents[0].sha256


def test_front_matter_and_industry_argument(tmp_path: Path) -> None:
    _write_md(tmp_path, "---\ndoc_id: CH-X-1\ntitle: Acid rules\n---\n\n## 1 Scope\n\n1.1 Acids.\n", "notes.md")
    res = ingest_path(tmp_path / "notes.md", industry="chemical")
    assert [(d.doc_id, d.title, d.industry) for d in res.documents] == [("CH-X-1", "Acid rules", "chemical")]
    assert res.chunks[0].clause == "1.1" and res.chunks[0].industry == "chemical"
    plain = ingest_path(_write_md(tmp_path / "other", "Just a note without structure.\n", "memo.md"))
    assert plain.documents[0].doc_id == "memo" and plain.documents[0].industry == ""


def test_plain_text(tmp_path: Path) -> None:
    txt = ("Machine guarding rules\n\n1 Scope\n\n1.1 This covers lathes and mills. It also covers drills.\n\n"
           "2 Guards\n\n2.1 Guards shall be fitted\nbefore the machine is started.\n"
           "2.2 Guards shall not be removed.\n")  # fmt: skip
    (tmp_path / "mechanical").mkdir()
    (tmp_path / "mechanical" / "ME-GRD-001.txt").write_text(txt, encoding="utf-8")
    res = ingest_path(tmp_path)
    (doc,) = res.documents
    assert (doc.doc_id, doc.title, doc.industry) == ("ME-GRD-001", "Machine guarding rules", "mechanical")
    got = [(c.section, c.clause, c.text) for c in res.chunks]
    assert got == [("1 Scope", "1.1", "1.1 This covers lathes and mills. It also covers drills."),
                   ("2 Guards", "2.1", "2.1 Guards shall be fitted before the machine is started."),
                   ("2 Guards", "2.2", "2.2 Guards shall not be removed.")]  # fmt: skip


def test_images_with_and_without_captions(tmp_path: Path) -> None:
    Image.new("RGB", (16, 16)).save(tmp_path / "lockout_padlock.png")
    Image.new("RGB", (16, 16)).save(tmp_path / "hasp.jpg")
    (tmp_path / "hasp.caption").write_text("A lockout hasp taking six padlocks.", encoding="utf-8")
    res = ingest_path(tmp_path, figure_dir=tmp_path / "out")
    assert res.skipped == []
    assert sorted((c.doc_id, c.kind, c.text, c.figure) for c in res.chunks) == [
        ("hasp", "figure", "A lockout hasp taking six padlocks.", "hasp.jpg"),
        ("lockout_padlock", "figure", "lockout padlock", "lockout_padlock.png"),
    ]
    assert (tmp_path / "out" / "hasp.jpg").is_file()


def test_index_json_metadata_and_md_pdf_pair(tmp_path: Path) -> None:
    from prg.data.synth.corpus_pdf import markdown_to_pdf

    folder = tmp_path / "c" / "misc"
    _write_md(folder)
    markdown_to_pdf(MD, folder / "EP-SAF-004.pdf", base_dir=folder)
    index = {"documents": [{"doc_id": "EP-SAF-004", "industry": "electric_power", "title": "Live-line rules",
                            "files": ["misc/EP-SAF-004.md", "misc/EP-SAF-004.pdf"]}]}  # fmt: skip
    (tmp_path / "c" / "index.json").write_text(json.dumps(index), encoding="utf-8")
    res = ingest_path(tmp_path / "c")
    assert res.skipped == []
    assert sorted((d.doc_id, d.industry, d.title, d.pages is not None) for d in res.documents) == [
        ("EP-SAF-004", "electric_power", "Live-line rules", False),
        ("EP-SAF-004", "electric_power", "Live-line rules", True),
    ]
    md = [c for c in res.chunks if c.metadata["format"] == "md"]
    pdf = [c for c in res.chunks if c.metadata["format"] == "pdf"]
    assert md and pdf and not {c.id for c in md} & {c.id for c in pdf}
    key = lambda cs: sorted((c.kind, c.clause, c.section) for c in cs)  # noqa: E731
    assert key(md) == key(pdf)  # the same structure is found in both formats
    assert all(c.page is not None for c in pdf) and all(c.page is None for c in md)


def test_markdown_with_h1_sections_and_missing_figure(tmp_path: Path) -> None:
    md = ("# Pump rules\n\n# 1 Scope\n\n1.1 Pumps.\n\n# 2 Seals\n\n## 2.1 Checks\n\n"
          "![Figure 1: seal](nowhere/seal.png)\n\n2.1.1 Seals shall be checked.\n")  # fmt: skip
    (tmp_path / "pumps.md").write_text(md, encoding="utf-8")
    res = ingest_path(tmp_path, figure_dir=tmp_path / "figs")
    assert res.documents[0].title == "Pump rules"
    got = {(c.kind, c.clause, c.section, c.figure) for c in res.chunks}
    assert got == {
        ("text", "1.1", "1 Scope", None),
        ("text", "2.1.1", "2 Seals > 2.1 Checks", None),
        ("figure", "2.1", "2 Seals > 2.1 Checks", None),
    }  # not cited: the enclosing heading
    assert any("seal.png" in w and "not found" in w for w in res.warnings)
