"""The evaluation report: ``metrics.json``, ``report.md`` and a self-contained ``report.html``, with figures.

``write_report(evaluation, out)`` writes into ``out/``:

* ``metrics.json``: settings, per-split and per-industry summaries, every record's row;
* ``figures/``: ``splits.png`` (target recognition, grasp success, citations per split), ``industries.png``
  (target recognition per industry), ``success_vs_iou.png`` (grasp success of the top-1 against the IoU threshold,
  angle within 30 degrees), ``latency.png`` (per-record pipeline time);
* ``gallery/``: the best and the worst records drawn with the pipeline's overlay (``prg.viz.result_overlay``);
* ``report.md`` (figures linked) and ``report.html`` (figures embedded as data URIs: one file to send).

A look-alike confusion table (the object each ``[POSE]``'s top-1 landed on against the target named for it) is in
both reports. Results on PRG-Synth are labelled synthetic.
"""

from __future__ import annotations

import base64
import html
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SECTIONS", "write_report"]

SECTIONS = ("Settings", "Summary per split", "Per industry", "Figures", "Look-alike confusion", "Gallery")
_COLUMNS = (
    ("target_recognition", "target rec."),
    ("grasp_success", "grasp succ."),
    ("grasp_success_topk", "grasp succ. top-k"),
    ("any_object_success", "any-object succ."),
    ("abstention_correct", "abstention"),
    ("abstention_no_pose", "no [POSE]"),
    ("format_ok", "format"),
    ("cites_rule", "cites rule"),
    ("hallucinated_any", "hallucinated"),
    ("bleu4", "BLEU-4"),
    ("rouge_l", "ROUGE-L"),
    ("cider", "CIDEr-D"),
    ("latency_ms_p50", "latency p50 ms"),
)


def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if key in ("bleu4", "latency_ms_p50"):
        return f"{value:.1f}"
    if key in ("rouge_l", "cider"):
        return f"{value:.3f}"
    return f"{100 * value:.1f}%"


def _table(rows: dict[str, dict[str, float]], first: str) -> list[list[str]]:
    keys = [k for k, _ in _COLUMNS if any(k in m for m in rows.values())]
    header = [first, "n", *[dict(_COLUMNS)[k] for k in keys]]
    body = [[name, f"{m.get('n', 0):.0f}", *[_fmt(k, m.get(k)) for k in keys]] for name, m in rows.items()]
    return [header, *body]


def _md(table: list[list[str]]) -> str:
    lines = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    lines += ["| " + " | ".join(r) + " |" for r in table[1:]]
    return "\n".join(lines)


def _html_table(table: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in table[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figures(ev: Any, folder: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    splits = list(ev.splits)

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        out[name] = folder / f"{name}.png"
        fig.savefig(out[name], dpi=110)
        plt.close(fig)

    def bars(groups: list[str], series: dict[str, list[float]], ylabel: str, title: str = "") -> Any:
        """Grouped bars: one group per entry of ``groups``, one bar per series (values in %)."""
        fig, ax = plt.subplots(figsize=(7, 3.5))
        width = 0.8 / max(1, len(series))
        for j, (label, vals) in enumerate(series.items()):
            ax.bar(np.arange(len(groups)) + j * width, vals, width, label=label)
        ax.set_xticks(np.arange(len(groups)) + width * (len(series) - 1) / 2, groups, fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 100)
        ax.legend(fontsize=8)
        ax.set_title(title)
        return fig

    synthetic = "synth" in str(ev.settings.get("dataset", "")).lower()
    metrics = {
        "target recognition": "target_recognition",
        "grasp success": "grasp_success",
        "cites the rule": "cites_rule",
    }
    series = {label: [100 * ev.splits[s].get(key, float("nan")) for s in splits] for label, key in metrics.items()}
    save(bars(splits, series, "%", "per split (synthetic: PRG-Synth)" if synthetic else "per split"), "splits")

    inds = sorted({i for d in ev.industries.values() for i in d})
    series = {
        s: [100 * ev.industries[s].get(i, {}).get("target_recognition", float("nan")) for i in inds] for s in splits
    }
    save(bars(inds, series, "target recognition %"), "industries")

    thresholds = np.linspace(0.0, 0.9, 37)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for s in splits:
        rows = [r for r in ev.records if r.split == s and not r.abstention]
        if not rows:
            continue
        # a record succeeds at t when every target's top-1 has IoU > t with one of its grasps within 30 degrees
        rates = [100 * np.mean([bool(r.iou) and min(r.iou) > t for r in rows]) for t in thresholds]
        ax.plot(thresholds, rates, label=s)
    ax.axvline(0.25, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("IoU threshold (angle < 30°)")
    ax.set_ylabel("grasp success %")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    save(fig, "success_vs_iou")

    totals = [sum(r.timings_ms.values()) for r in ev.records if r.timings_ms]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(totals or [0.0], **hist_bins(totals))
    ax.set_xlabel("pipeline time per record, ms (batched)")
    ax.set_ylabel("records")
    save(fig, "latency")
    return out


def hist_bins(values: list[float], bins: int = 20) -> dict[str, Any]:
    """``bins`` / ``range`` for ``ax.hist``: numpy refuses 20 bins over a range that the values' magnitude makes
    too fine to split (batched records share one timing, off by rounding), so such data get one bin around it."""
    if not values:
        return {"bins": 1, "range": (-0.5, 0.5)}
    lo, hi = min(values), max(values)
    if hi - lo <= 1e-6 * max(1.0, abs(hi)):
        return {"bins": 1, "range": (lo - 0.5, hi + 0.5)}
    return {"bins": bins}


def _confusion(ev: Any, top: int = 15) -> list[list[str]]:
    pairs: Counter[tuple[str, str]] = Counter()
    for r in ev.records:
        for i, target in enumerate(r.targets):
            pairs[(target, r.chosen[i] if i < len(r.chosen) else "none")] += 1
    rows = [["target", "top-1 landed on", "count"]]
    wrong = [(k, v) for k, v in pairs.most_common() if k[0] != k[1]]
    right = sum(v for k, v in pairs.items() if k[0] == k[1])
    rows += [[t, c, str(v)] for (t, c), v in wrong[:top]]
    rows.append(["(on the target)", "", str(right)])
    return rows


def _gallery(ev: Any, folder: Path, n: int = 3) -> list[tuple[str, Path]]:
    from prg.data.dataset import iter_records, load_image
    from prg.viz import result_overlay

    if not ev.results:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    by_id = {r.id: r for r in iter_records(ev.settings["dataset"])}
    scored = [(bool(r.recognised) + r.grasp_success + r.cites_rule, i) for i, r in enumerate(ev.records)]
    order = sorted(scored, key=lambda x: (-x[0], x[1]))
    picks = [("best", i) for _, i in order[:n]] + [("worst", i) for _, i in order[::-1][:n]]
    out = []
    for kind, i in picks:
        row = ev.records[i]
        image = load_image(ev.settings["dataset"], by_id[row.id])
        path = folder / f"{kind}-{row.id}.png"
        result_overlay(image, ev.results[i]).save(path)
        out.append((f"{kind}: {row.id} ({row.split})", path))
    return out


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def write_report(
    ev: Any, out: str | Path, title: str = "PRG evaluation", sim: dict[str, Any] | None = None
) -> dict[str, Path]:
    """Write ``metrics.json``, ``report.md``, ``report.html``, ``figures/`` and ``gallery/`` into ``out``.

    ``sim``: a ``prg eval sim`` result (its ``sim.json``), shown as the simulated lift success section."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(ev.to_dict(), indent=2) + "\n", encoding="utf-8")
    figures = _figures(ev, out / "figures")
    gallery = _gallery(ev, out / "gallery")
    synthetic = "synth" in str(ev.settings.get("dataset", "")).lower()
    label = " (synthetic: PRG-Synth)" if synthetic else ""
    settings = [["setting", "value"], *[[k, json.dumps(v)] for k, v in ev.settings.items()],
                ["wall seconds", f"{ev.seconds:.1f}"]]  # fmt: skip
    split_table = _table(ev.splits, "split")
    industry_tables = {s: _table(d, "industry") for s, d in ev.industries.items()}
    confusion = _confusion(ev)

    md = [f"# {title}{label}", "", "## Settings", "", _md(settings), "", "## Summary per split", "", _md(split_table)]
    md += ["", "## Per industry", ""]
    for s, t in industry_tables.items():
        md += [f"### {s}", "", _md(t), ""]
    md += ["## Figures", ""] + [f"![{k}](figures/{p.name})" for k, p in figures.items()]
    md += ["", "## Look-alike confusion", "", _md(confusion), "", "## Gallery", ""]
    md += [f"**{cap}**\n\n![{cap}](gallery/{p.name})\n" for cap, p in gallery] or ["(no results kept)"]
    sim_rows = None
    if sim is not None:
        from prg.sim.evaluate import summary_rows

        sim_rows = summary_rows(sim["summary"])
        n = sim.get("settings", {}).get("n_records", "?")
        sim_note = f"MuJoCo trials on {n} records of {sim.get('settings', {}).get('dataset', '?')} (prg eval sim)."
        md += ["", "## Simulated lift success", "", sim_note, "", _md(sim_rows)]
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")

    parts = [f"<h1>{html.escape(title + label)}</h1>", "<h2>Settings</h2>", _html_table(settings),
             "<h2>Summary per split</h2>", _html_table(split_table), "<h2>Per industry</h2>"]  # fmt: skip
    for s, t in industry_tables.items():
        parts += [f"<h3>{html.escape(s)}</h3>", _html_table(t)]
    parts.append("<h2>Figures</h2>")
    parts += [f'<figure><img alt="{k}" src="{_data_uri(p)}"></figure>' for k, p in figures.items()]
    parts += ["<h2>Look-alike confusion</h2>", _html_table(confusion), "<h2>Gallery</h2>"]
    parts += [
        f'<figure><img alt="{html.escape(c)}" src="{_data_uri(p)}"><figcaption>{html.escape(c)}</figcaption></figure>'
        for c, p in gallery
    ]
    if sim_rows is not None:
        parts += ["<h2>Simulated lift success</h2>", f"<p>{html.escape(sim_note)}</p>", _html_table(sim_rows)]
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;margin:8px 0}"
             "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px}img{max-width:100%}")  # fmt: skip
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style>"
    page += "</head><body>" + "\n".join(parts) + "</body></html>\n"
    (out / "report.html").write_text(page, encoding="utf-8")
    return {"metrics": out / "metrics.json", "md": out / "report.md", "html": out / "report.html", **figures}
