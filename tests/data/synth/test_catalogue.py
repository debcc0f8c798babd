"""The object catalogue: counts, look-alike pairs, geometry and colour roles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from prg.data.schema import INDUSTRIES
from prg.data.synth.catalogue import CATALOGUE, VISUAL_CUES, get_type, types_for_industry
from prg.data.synth.figures import draw_object_figure

REQUIRED_PAIRS = [
    ("screwdriver_insulated", "screwdriver_plain"),
    ("voltage_detector", "continuity_tester"),
    ("gloves_nitrile", "gloves_cotton"),
    ("gloves_butyl", "gloves_cotton"),
    ("torque_wrench", "spanner_plain"),
    ("tongs_ptfe", "tongs_steel"),
    ("fuse_puller_rated", "fuse_puller_plain"),
    ("pliers_insulated", "pliers_plain"),
    ("earthing_clamp", "jumper_clamp"),
    ("safety_goggles", "reading_glasses"),
    ("wash_bottle_ptfe", "wash_bottle_glass"),
    ("wrench_bronze", "wrench_steel"),
    ("anti_static_strap", "rubber_band"),
    ("manifold_gauge", "tyre_gauge"),
]


def test_counts_per_industry() -> None:
    tools = [t for t in CATALOGUE.values() if t.industry != "general"]
    assert len(tools) >= 48
    for ind in INDUSTRIES:
        assert len(types_for_industry(ind)) >= 12, ind
    assert len(types_for_industry("general")) >= 3
    assert all(t.key.startswith("clutter_") for t in types_for_industry("general"))


def test_counts_stated_in_the_docs_match_the_catalogue() -> None:
    # docs/prg_synth_corpus.md states "<N> tools (<lo>-<hi> per industry) + <C> `clutter_*` types"; the text is
    # checked here so it cannot drift from the catalogue again
    doc = (Path(__file__).resolve().parents[3] / "docs" / "prg_synth_corpus.md").read_text(encoding="utf-8")
    m = re.search(r"(\d+) tools \((\d+)-(\d+) per industry\) \+ (\d+) `clutter_\*` types", doc)
    assert m, "docs/prg_synth_corpus.md no longer states the catalogue counts in the expected words"
    total, lo, hi, clutter = map(int, m.groups())
    per_industry = [len(types_for_industry(ind)) for ind in INDUSTRIES]
    assert (total, lo, hi) == (sum(per_industry), min(per_industry), max(per_industry)), per_industry
    assert clutter == len(types_for_industry("general"))
    assert sum(per_industry) + clutter == len(CATALOGUE)


@pytest.mark.parametrize(("a", "b"), REQUIRED_PAIRS)
def test_lookalike_pairs_present_and_symmetric(a: str, b: str) -> None:
    assert b in CATALOGUE[a].lookalikes and a in CATALOGUE[b].lookalikes


def test_all_lookalikes_symmetric_same_industry_and_visually_distinct() -> None:
    for t in CATALOGUE.values():
        for other_key in t.lookalikes:
            other = CATALOGUE[other_key]
            assert t.key in other.lookalikes, (t.key, other_key)
            assert other.industry == t.industry
            # a renderer must be able to tell them apart: some role's first colour differs, or the geometry does
            first = {r: c[0] for r, c in t.colours.items()}
            other_first = {r: c[0] for r, c in other.colours.items()}
            assert first != other_first or t.parts != other.parts, (t.key, other_key)


def test_parts_sizes_roles_and_metadata() -> None:
    for t in CATALOGUE.values():
        assert t.parts and t.name and t.mass > 0
        assert any(p.graspable for p in t.parts), t.key
        for p in t.parts:
            assert all(s > 0 for s in p.size), (t.key, p)
            assert t.colours.get(p.role), (t.key, p.role)
        if t.industry != "general":
            assert t.facts and t.aliases and t.key in VISUAL_CUES


def test_realistic_sizes() -> None:
    def length(key: str) -> float:
        return sum(p.size[0] for p in CATALOGUE[key].parts if p.offset[1] == 0.0)

    assert 0.15 < length("screwdriver_insulated") < 0.3
    extent = {k: max(p.offset[0] + p.size[0] / 2 for p in t.parts) - min(p.offset[0] - p.size[0] / 2 for p in t.parts)
              for k, t in CATALOGUE.items()}  # fmt: skip
    assert extent["torque_wrench"] > extent["spanner_plain"]
    assert all(0.02 < e < 0.6 for e in extent.values()), extent


def test_get_type_error_message() -> None:
    assert get_type("torque_wrench").name == "torque wrench"
    with pytest.raises(KeyError, match=r"unknown object type 'screwdriver_magic'.*screwdriver_insulated"):
        get_type("screwdriver_magic")


def test_figure_shows_the_cue_colour() -> None:
    img = draw_object_figure(CATALOGUE["screwdriver_insulated"], size=128)
    assert img.size == (128, 128) and img.mode == "RGB"
    colours = {c for _, c in img.getcolors(128 * 128)}
    assert CATALOGUE["screwdriver_insulated"].colours["sleeve"][0] in colours
    plain = draw_object_figure(CATALOGUE["screwdriver_plain"], size=128)
    assert plain.tobytes() != img.tobytes()
