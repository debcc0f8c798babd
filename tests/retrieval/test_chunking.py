"""Chunking rules on hand-built block streams: clauses, headings, long clauses, tables, figures, ids."""

from __future__ import annotations

import pytest

from prg.retrieval.chunking import Figure, Heading, Para, Table, chunk_blocks, match_clause, split_sentences


@pytest.mark.parametrize(
    ("text", "num"),
    [
        ("4.2.1 Tools shall be insulated.", "4.2.1"),
        ("4.2.1. Tools shall be insulated.", "4.2.1"),
        ("Clause 4.2.1 Tools shall be insulated.", "4.2.1"),
        ("§4.2.1 Tools shall be insulated.", "4.2.1"),
        ("§ 7 Scope of this part.", "7"),
        ("4.3", "4.3"),
        ("3 workers shall attend.", None),  # a bare integer is not a clause
        ("NOTE 2: not a clause", None),
        ("4.2.1x is a part number", None),
    ],
)
def test_match_clause(text: str, num: str | None) -> None:
    assert match_clause(text) == num


def test_split_sentences_respects_limit_and_boundaries() -> None:
    text = " ".join(f"Sentence number {i} says something long enough." for i in range(40))
    pieces = split_sentences(text, 200)
    assert len(pieces) > 1 and all(len(p) <= 200 for p in pieces)
    assert all(p.endswith(".") for p in pieces)  # cut at sentence ends, never mid-sentence
    assert " ".join(pieces) == text
    long_word_run = "x" * 50 + " " + "y" * 500  # one "sentence" longer than a chunk is cut at spaces/hard
    assert all(len(p) <= 200 for p in split_sentences(long_word_run, 200))


def _doc() -> list:
    return [
        Heading(1, "Safety rules"),
        Heading(2, "1 Scope"),
        Para("1.1 This applies to all work."),
        Para("NOTE 1: contractors too."),
        Heading(2, "2 Tools"),
        Heading(3, "2.1 Selection"),
        Figure("Figure 1: insulated pliers", "fig1.png"),
        Para("2.1.1 Use insulated pliers (see Figure 1)."),
        Para("2.1.2 " + " ".join(f"Rule sentence {i} is here." for i in range(60))),
        Table([["Item", "Task"], ["2.1.3", "earthing"], ["2.1.4", "testing"]], caption="Table 1: by task"),
        Table([["Tool", "Interval"], ["pliers", "weekly"]]),
    ]


def test_chunks_follow_clauses_and_headings() -> None:
    chunks = chunk_blocks(_doc(), doc_id="D-1", title="Safety rules", chunk_chars=300)
    text = [c for c in chunks if c.kind == "text"]
    assert text[0].clause == "1.1" and "NOTE 1" in text[0].text and text[0].section == "1 Scope"
    assert text[1].clause == "2.1.1" and text[1].section == "2 Tools > 2.1 Selection"
    long = [c for c in text if c.clause == "2.1.2"]
    assert len(long) > 1 and all(len(c.text) <= 300 for c in long)
    assert long[0].text.startswith("2.1.2 ") and len({c.id for c in long}) == len(long)
    rows = [c for c in chunks if c.kind == "table" and c.clause in ("2.1.3", "2.1.4")]
    assert [c.clause for c in rows] == ["2.1.3", "2.1.4"]
    assert rows[0].text.splitlines() == ["Table 1: by task", "Item | Task", "2.1.3 | earthing"]
    plain = [c for c in chunks if c.kind == "table" and "Interval" in c.text]
    assert plain[0].clause == "2.1.2"  # unnumbered table: the enclosing clause
    fig = next(c for c in chunks if c.kind == "figure")
    # placed before 2.1.1 under the heading, but 2.1.1 cites it
    assert fig.clause == "2.1.1" and fig.figure == "fig1.png"
    assert all(c.doc_id == "D-1" and c.title == "Safety rules" for c in chunks)


def test_ids_stable_and_text_sensitive() -> None:
    a = chunk_blocks(_doc(), doc_id="D-1")
    b = chunk_blocks(_doc(), doc_id="D-1")
    assert [c.id for c in a] == [c.id for c in b]
    assert len({c.id for c in a}) == len(a)
    changed = _doc()
    changed[2] = Para("1.1 This applies to most work.")
    c = chunk_blocks(changed, doc_id="D-1")
    assert c[0].id != a[0].id and [x.id for x in c[1:]] == [x.id for x in a[1:]]
    assert chunk_blocks(_doc(), doc_id="D-1", fmt="pdf")[0].id != a[0].id


def test_unnumbered_prose_is_packed_and_section_scoped() -> None:
    blocks = [Heading(2, "Intro"), *[Para(f"Paragraph {i} " + "word " * 30) for i in range(10)], Heading(2, "Next"),
              Para("Tail text.")]  # fmt: skip
    chunks = chunk_blocks(blocks, doc_id="D", chunk_chars=500)
    assert all(len(c.text) <= 500 for c in chunks)
    assert {c.section for c in chunks} == {"Intro", "Next"}
    assert chunks[-1].text == "Tail text." and chunks[-1].section == "Next"
    assert all(c.clause is None for c in chunks)


def test_long_table_is_split_into_row_groups_with_header() -> None:
    rows = [["Tool", "Interval"]] + [[f"tool number {i}", "every 6 months"] for i in range(80)]
    blocks = [Heading(2, "5 Records"), Para("5.1 See the table."), Table(rows, caption="Intervals")]
    tables = [c for c in chunk_blocks(blocks, doc_id="D", chunk_chars=400) if c.kind == "table"]
    assert len(tables) > 1 and all(len(t.text) <= 400 for t in tables)
    assert all(t.text.startswith("Intervals\nTool | Interval\n") and t.clause == "5.1" for t in tables)
    assert sum(t.text.count("every 6 months") for t in tables) == 80
