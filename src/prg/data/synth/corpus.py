"""The PRG-Synth regulation corpus: Markdown (and PDF) documents that state the rules, with figures.

Each industry gets training documents, which state the non-zero-shot rules (each in at least two documents, in
different wording), and held-out documents (``zero_shot=True``) that state only the zero-shot rules, so the
zero_shot_task split leaks nothing into training. Around the rule clauses every document carries what real
regulations carry: scope, definitions written from catalogue facts, general PPE/training/record clauses, tables
and figures. Clause numbers ("4.2.1") are printed in the Markdown, so an answer can cite "EP-SAF-003 §4.2.1".
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from pathlib import Path

from prg.data.synth.catalogue import CATALOGUE, VISUAL_CUES, is_plural
from prg.data.synth.figures import draw_object_figure
from prg.data.synth.rules import RULES
from prg.data.synth.types import Clause, Document, Rule

__all__ = ["build_corpus", "rule_citations", "write_corpus"]

N_TRAIN_DOCS = 26  # per industry
N_ZERO_SHOT_DOCS = 5  # per industry
_PREFIX = {"electric_power": "EP", "chemical": "CH", "mechanical": "ME", "home_appliance": "HA"}
_SERIES = ("SAF", "PRC", "GUI", "WI", "STD")
_TOPICS = {
    "electric_power": ("work on low-voltage installations", "switchgear maintenance", "isolation and earthing",
                       "live working with hand tools", "substation operation", "distribution board servicing"),
    "chemical": ("handling of corrosive substances", "laboratory operations", "etching and cleaning baths",
                 "solvent handling", "spill response", "furnace and high-temperature work"),
    "mechanical": ("engine and gearbox maintenance", "workshop safety", "bolted joints", "work in hazardous areas",
                   "sheet metal fabrication", "rotating equipment alignment"),
    "home_appliance": ("refrigeration service", "microwave oven repair", "washing machine servicing",
                       "electronic module replacement", "cooking appliance repair", "field service visits"),
}  # fmt: skip
_KINDS = ("Safety rules for", "Procedure for", "Code of practice for", "Work instruction:", "Guideline on")
_TOOL_HEADINGS = ("Tools and equipment", "Selection of tools", "Tools for the task", "Equipment requirements",
                  "Permitted and prohibited equipment")  # fmt: skip
_DISTRACTORS = (
    "Personal protective equipment shall be inspected before each use and removed from service when damaged.",
    "Only persons who have completed the relevant training may carry out the work described in this document.",
    "Training records shall be kept for at least five years and be available to the supervisor on request.",
    "A pre-task risk assessment shall be recorded on the job card before work begins.",
    "Tools shall be stored clean and dry in the designated cabinet after use.",
    "Any incident or near miss shall be reported to the supervisor before the end of the shift.",
    "The supervisor shall review this document every two years or after any serious incident.",
    "Work clothing shall be close-fitting; loose sleeves and jewellery are not permitted.",
    "Calibration certificates of measuring instruments shall be filed with the maintenance records.",
    "Contractors shall be briefed on this document before they start work on site.",
    "Emergency exits and eye-wash stations shall be kept free of obstructions at all times.",
    "Lone working is not permitted for the tasks covered by this document.",
)
_INTERVALS = ("before each use", "every 6 months", "every 12 months", "weekly", "after any drop or impact")


def _name(key: str) -> str:
    return CATALOGUE[key].name


def _a(name: str) -> str:
    """'a steel hammer', 'an insulated screwdriver', 'cotton gloves' (plural names take no article)."""
    if is_plural(name):
        return name
    return ("an " if name[0].lower() in "aeiou" else "a ") + name


def _is(names: Sequence[str]) -> str:
    return "are" if len(names) > 1 or (names and is_plural(names[0])) else "is"


def _state_single(rule: Rule, style: int, fig: str) -> str:
    tool, forb = _name(rule.required[0]), " or ".join(_a(_name(k)) for k in rule.forbidden)
    forb_the = " or the ".join(_name(k) for k in rule.forbidden)
    templates = (
        f"When the task is to {rule.task}, only the {tool} shall be used{fig}. {forb[0].upper() + forb[1:]} shall "
        f"not be used, because {rule.reason}.",
        f"Personnel must only use the {tool} to {rule.task}{fig}; {rule.reason}.",
        f"The use of {forb} to {rule.task} is prohibited, since {rule.reason}. The {tool} shall be used instead{fig}.",
        f"To {rule.task}, the {tool} {_is([tool])} required{fig}. NOTE: the {forb_the} may look similar but "
        f"{_is([_name(k) for k in rule.forbidden])} not permitted, because {rule.reason}.",
        f"Workers who {rule.task} shall select the {tool}{fig} and never {forb}: {rule.reason}.",
    )
    return templates[style % len(templates)] if rule.forbidden else templates[1]


def _state_two_step(rule: Rule, style: int, fig: str) -> str:
    t1, t2 = (_name(k) for k in rule.required)
    forb = " and the ".join(_name(k) for k in rule.forbidden)
    templates = (
        f"To {rule.task}, first use the {t1}, then the {t2}{fig}; {rule.reason}.",
        f"The following sequence is mandatory to {rule.task}: (a) the {t1}; (b) the {t2}{fig}. The {forb} are not "
        f"permitted for this work.",
        f"Before the {t2} is used, the {t1} shall be used{fig}. This applies whenever workers {rule.task}, because "
        f"{rule.reason}.",
    )
    return templates[style % len(templates)] if rule.forbidden else templates[0]


def _statement(rule: Rule, style: int, fig: str = "") -> str:
    return (_state_two_step if len(rule.required) == 2 else _state_single)(rule, style, fig)


# Real regulations say where a rule applies by listing situations, places and equipment; these sentences carry
# 2-3 of a rule's scope phrases, so the words people use to describe a job appear next to the rule.
_SCOPE_SENTENCES = (
    "This applies in particular to {list}.",
    "Typical situations: {semi}.",
    "The requirement covers, for example, {list}.",
    "Examples within the scope of this clause: {semi}.",
    "This includes {list}.",
)


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _pick_scope(rule: Rule, rng: random.Random) -> list[str]:
    """2-3 of the rule's scope phrases (all if it has fewer), chosen by the document's ``rng``."""
    if len(rule.scope) <= 2:
        return list(rule.scope)
    return rng.sample(rule.scope, k=rng.randint(2, 3))


def _scope_sentence(rule: Rule, rng: random.Random) -> str:
    """' This applies in particular to a, b and c.' (leading space) or '' for a rule without scope."""
    picks = _pick_scope(rule, rng)
    if not picks:
        return ""
    return " " + rng.choice(_SCOPE_SENTENCES).format(list=_join(picks), semi="; ".join(picks))


class _DocBuilder:
    """Accumulates numbered sections, clauses and Markdown lines of one document."""

    def __init__(self, doc_id: str, title: str) -> None:
        self.doc_id, self.title = doc_id, title
        self.lines = [f"# {doc_id} {title}", ""]
        self.clauses: list[Clause] = []
        self.figures: list[str] = []
        self.section = 0
        self.heading = ""

    def h2(self, title: str) -> int:
        self.section += 1
        self.heading = f"{self.section} {title}"
        self.lines += [f"## {self.heading}", ""]
        return self.section

    def h3(self, number: str, title: str) -> None:
        self.lines += [f"### {number} {title}", ""]

    def clause(self, number: str, text: str, rule_id: str | None = None) -> None:
        self.clauses.append(Clause(number, text, rule_id, (self.title, self.heading)))
        self.lines += [f"**{number}** {text}", ""]

    def figure(self, key: str) -> str:
        n = len(self.figures) + 1
        path = f"figures/{self.doc_id}_fig{n}.png"
        self.figures.append(path)
        caption = f"Figure {n}: {_name(key)}, {VISUAL_CUES.get(key, 'general view')}"
        self.lines += [f"![{caption}]({path})", "", f"*{caption}*", ""]
        return f" (see Figure {n})"

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]], caption: str) -> None:
        self.lines += [f"*{caption}*", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        self.lines += ["| " + " | ".join(r) + " |" for r in rows] + [""]


def _build_document(doc_id: str, industry: str, rules: list[Rule], rng: random.Random, zero_shot: bool,
                    pdf: bool) -> Document:  # fmt: skip
    topic = rng.choice(_TOPICS[industry])
    b = _DocBuilder(doc_id, f"{rng.choice(_KINDS)} {topic}")
    s = b.h2("Scope")
    b.clause(f"{s}.1", f"This document applies to {topic} within the {industry.replace('_', ' ')} sector.")
    b.clause(f"{s}.2", rng.choice(("It applies to employees and contractors alike.",
                                   "It does not replace the manufacturer's instructions.",
                                   "Site-specific rules may add to, but not relax, these requirements.")))  # fmt: skip
    # Definitions from catalogue facts: the rule tools, their look-alikes and a few other tools of the industry.
    keys = list(dict.fromkeys(k for r in rules for k in (*r.required, *r.forbidden)))
    others = [k for k, t in CATALOGUE.items() if t.industry == industry and k not in keys]
    keys += rng.sample(others, k=min(len(others), rng.randint(1, 3)))
    s = b.h2(rng.choice(("Terms and definitions", "Definitions", "Terms used in this document")))
    for i, k in enumerate(keys[:6], 1):
        t = CATALOGUE[k]
        b.clause(f"{s}.{i}", f"*{t.name}* (also: {', '.join(t.aliases)}): {' '.join(t.facts)}")
    s = b.h2(rng.choice(("General requirements", "Responsibilities", "General")))
    for i, text in enumerate(rng.sample(_DISTRACTORS, k=rng.randint(2, 4)), 1):
        b.clause(f"{s}.{i}", text)
    if rules:
        s = b.h2(rng.choice(_TOOL_HEADINGS))
        b.h3(f"{s}.1", "General")
        b.clause(f"{s}.1.1", rng.choice(_DISTRACTORS))
        in_table = [r for r in rules if len(rules) >= 2 and rng.random() < 0.35]
        in_text = [r for r in rules if r not in in_table]
        b.h3(f"{s}.2", "Selection of equipment")
        for i, r in enumerate(in_text, 1):
            fig = b.figure(r.required[-1]) if len(b.figures) < 2 and rng.random() < 0.6 else ""
            b.clause(f"{s}.2.{i}", _statement(r, rng.randrange(5), fig) + _scope_sentence(r, rng), r.id)
            if rng.random() < 0.3:
                b.lines += [f"NOTE {i}: {rng.choice(_DISTRACTORS)}", ""]
        if in_table:
            b.h3(f"{s}.3", "Equipment by task")
            b.clause(f"{s}.3", "Table 1 gives the equipment required for each task and the equipment that is not "
                               "permitted. The table is normative.")  # fmt: skip
            rows = []
            for i, r in enumerate(in_table, 1):
                req = " then ".join(_name(k) for k in r.required)
                forb = ", ".join(_name(k) for k in r.forbidden)
                applies = "; ".join(_pick_scope(r, rng))
                rows.append((f"{s}.3.{i}", r.task, applies, req, forb))
                text = f"Task: {r.task}; applies to: {applies}; required: {req}; not permitted: {forb}."
                b.clauses.append(Clause(f"{s}.3.{i}", text, r.id, (b.title, b.heading)))
            b.table(("Item", "Task", "Applies to", "Required equipment", "Not permitted"), rows,
                    "Table 1: equipment by task")  # fmt: skip
    # A non-normative table (inspection intervals) so that not every table is a rule.
    s = b.h2(rng.choice(("Inspection and records", "Records", "Inspection, testing and records")))
    b.clause(f"{s}.1", "Equipment shall be inspected at the intervals given in the inspection table.")
    b.table(("Equipment", "Inspection"), [(_name(k), rng.choice(_INTERVALS)) for k in keys[:4]],
            "Inspection intervals")  # fmt: skip
    b.clause(f"{s}.2", rng.choice(_DISTRACTORS))
    return Document(doc_id, industry, b.title, b.clauses, "\n".join(b.lines).rstrip() + "\n", b.figures, pdf,
                    zero_shot)  # fmt: skip


def build_corpus(seed: int) -> list[Document]:
    """All documents of the four industries, deterministic for ``seed``.

    Per industry: ``N_TRAIN_DOCS`` training documents that state the training rules (every rule in at least two
    of them) and ``N_ZERO_SHOT_DOCS`` held-out documents that state only the zero-shot rules.
    """
    docs: list[Document] = []
    for industry, prefix in _PREFIX.items():
        rng = random.Random(f"prg-corpus-{seed}-{industry}")  # str seeds are stable across processes
        train = [r for r in RULES if r.industry == industry and not r.zero_shot]
        held = [r for r in RULES if r.industry == industry and r.zero_shot]
        plan: list[tuple[list[Rule], bool]] = []
        for i in range(N_TRAIN_DOCS):
            # Every 7th document is a policy document with no rule at all; the rotation covers every rule often.
            chosen = [] if i % 7 == 6 else [train[i % len(train)], train[(i + 4) % len(train)]]
            chosen += rng.sample(train, k=rng.randint(0, 2)) if chosen else []
            plan.append((list(dict.fromkeys(chosen)), False))
        for j in range(N_ZERO_SHOT_DOCS):
            chosen = [held[j % len(held)]] + ([held[(j + 1) % len(held)]] if rng.random() < 0.5 else [])
            plan.append((list(dict.fromkeys(chosen)), True))
        order = list(range(len(plan)))
        rng.shuffle(order)  # document numbers do not reveal which documents are held out
        for n, idx in enumerate(order, 1):
            rules, zs = plan[idx]
            doc_id = f"{prefix}-{rng.choice(_SERIES)}-{n:03d}"
            docs.append(_build_document(doc_id, industry, rules, rng, zs, pdf=n % 3 == 0))
    return docs


def rule_citations(docs: Sequence[Document]) -> dict[str, list[tuple[str, str]]]:
    """rule id -> every (doc_id, clause number) that states it, in corpus order."""
    out: dict[str, list[tuple[str, str]]] = {}
    for d in docs:
        for c in d.clauses:
            if c.rule_id is not None:
                out.setdefault(c.rule_id, []).append((d.doc_id, c.number))
    return out


_FIGURE_RE = re.compile(r"^!\[Figure \d+: ([^,\]]+),[^\]]*\]\((figures/[^)]+)\)$")
_BY_NAME = {t.name: k for k, t in CATALOGUE.items()}


def write_corpus(docs: Sequence[Document], out_dir: str | Path) -> None:
    """Write ``out_dir/<industry>/<doc_id>.md`` (+ ``.pdf`` where ``doc.pdf``), figure PNGs and ``index.json``."""
    out = Path(out_dir)
    index = []
    for i, d in enumerate(docs):
        folder = out / d.industry
        (folder / "figures").mkdir(parents=True, exist_ok=True)
        (folder / f"{d.doc_id}.md").write_text(d.markdown, encoding="utf-8")
        files = [f"{d.industry}/{d.doc_id}.md"]
        for line in d.markdown.splitlines():
            m = _FIGURE_RE.match(line)
            if m:  # the caption names the tool: that is what the figure shows
                draw_object_figure(CATALOGUE[_BY_NAME[m.group(1)]], 256, seed=i).save(folder / m.group(2))
                files.append(f"{d.industry}/{m.group(2)}")
        if d.pdf:
            from prg.data.synth.corpus_pdf import markdown_to_pdf

            markdown_to_pdf(d.markdown, folder / f"{d.doc_id}.pdf", base_dir=folder)
            files.append(f"{d.industry}/{d.doc_id}.pdf")
        index.append({"doc_id": d.doc_id, "industry": d.industry, "title": d.title, "files": files,
                      "zero_shot": d.zero_shot,
                      "clauses": {c.number: c.rule_id for c in d.clauses if c.rule_id is not None}})  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "index.json").write_text(json.dumps({"documents": index}, indent=1), encoding="utf-8")
