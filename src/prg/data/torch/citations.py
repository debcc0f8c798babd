"""Training answers cite what their prompt shows.

A PRG-Synth answer cites the clause its generator drew the rule from (``EP-SAF-025 §4.2.1``), but the prompt
holds what the retriever returned, which often states the same rule in another document (``EP-WI-023 §4.2.1``).
Trained on the raw answer, a model would learn to cite ids it was never shown: hallucinated citations. So each
cited gold clause that the prompt lacks is replaced by the first prompt document stating the same rule (the
corpus's clause -> rule map, ``prg.retrieval.rules``). When no prompt document states it, the answer is kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prg.retrieval.rules import clause_key

__all__ = ["align_citations"]


def _parse(label: str) -> tuple[str, str | None]:
    doc, _, clause = label.partition(" §")
    return doc, clause or None


def align_citations(
    answer: str,
    gold: Sequence[tuple[str, str | None]],
    prompt_labels: Sequence[str],
    groups: Mapping[str, str],
) -> str:
    """``answer`` with every cited gold ``DOC §clause`` missing from ``prompt_labels`` replaced by the first
    prompt label whose clause states the same rule (``groups``: clause key -> rule id)."""
    shown = set(prompt_labels)
    for doc, clause in gold:
        if clause is None:
            continue
        cited = f"{doc} §{clause}"
        if cited in shown or cited not in answer:
            continue
        rule = groups.get(clause_key(doc, clause))
        if rule is None:
            continue
        for label in prompt_labels:
            d, c = _parse(label)
            if groups.get(clause_key(d, c)) == rule:
                answer = answer.replace(cited, label)
                break
    return answer
