"""Text metrics for PRG answers: corpus BLEU-4, mean ROUGE-L F1 and CIDEr-D against the reference answers.

Every text is normalised first (:func:`normalise`): the ``[POSE]`` token is removed, since it marks a grasp and is
not language, and runs of whitespace collapse to one space. References are given per hypothesis, one string or a
sequence of strings each. Definitions and conventions: ``docs/eval_metrics.md``.

- :func:`bleu4`: sacrebleu's corpus BLEU (4-grams, ``13a`` tokeniser, exponential brevity penalty), 0-100.
- :func:`rouge_l`: rouge-score's ROUGE-L F1 (Porter stemming on, best reference per hypothesis), mean, 0-1.
- :func:`cider`: CIDEr-D as the COCO caption evaluation computes it (our own implementation), 0-10 or so.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from prg.tokens import POSE_TOKEN

__all__ = ["bleu4", "cider", "cider_d_tokens", "cider_tokens", "normalise", "rouge_l", "text_scores"]

#: one reference string, or several, for each hypothesis
References = Sequence[str | Sequence[str]]

_WS = re.compile(r"\s+")
# a word, with inner hyphens and dots kept (``ep-saf-004``, ``4.2.1``), or the section sign; other punctuation goes
_TOKEN = re.compile(r"\w+(?:[-.]\w+)*|§")


def normalise(text: str) -> str:
    """``text`` without ``[POSE]`` tokens, whitespace collapsed to single spaces and stripped at the ends."""
    return _WS.sub(" ", text.replace(POSE_TOKEN, " ")).strip()


def cider_tokens(text: str) -> list[str]:
    """The tokens CIDEr-D counts: the normalised text lower-cased, split into words (inner ``-`` and ``.`` kept,
    so ``EP-SAF-004`` and ``4.2.1`` stay whole) and ``§``; all other punctuation dropped. It stands in for the
    Java PTB tokeniser of the COCO evaluation (lower-cases, drops punctuation)."""
    return _TOKEN.findall(normalise(text).lower())


def _refs(hyps: Sequence[str], refs: References) -> list[list[str]]:
    if isinstance(hyps, str) or isinstance(refs, str):
        raise TypeError("hypotheses and references are sequences (one entry per hypothesis), not one string")
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} reference entries")
    out = [[r] if isinstance(r, str) else list(r) for r in refs]
    if any(not r for r in out):
        raise ValueError("every hypothesis needs at least one reference")
    return out


def bleu4(hypotheses: Sequence[str], references: References) -> float:
    """Corpus BLEU-4 (sacrebleu defaults: ``13a`` tokeniser, case-sensitive, no smoothing beyond sacrebleu's
    ``exp``), 0-100, over normalised texts. A hypothesis may have several references; their number may vary."""
    import sacrebleu  # deferred: evaluation-only dependency

    refs = _refs(hypotheses, references)
    if not refs:
        return 0.0
    # sacrebleu takes reference *streams*; a missing reference in a stream is None (variable reference counts)
    width = max(len(r) for r in refs)
    streams = [[normalise(r[j]) if j < len(r) else None for r in refs] for j in range(width)]
    hyps = [normalise(h) for h in hypotheses]
    return float(sacrebleu.corpus_bleu(hyps, streams).score)  # type: ignore[arg-type]


def rouge_l(hypotheses: Sequence[str], references: References) -> float:
    """Mean ROUGE-L F1 (rouge-score, Porter stemming on, its lower-casing alphanumeric tokeniser), 0-1, over
    normalised texts; with several references the best one counts for each hypothesis."""
    from rouge_score import rouge_scorer  # deferred: evaluation-only dependency

    refs = _refs(hypotheses, references)
    if not refs:
        return 0.0
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    f1 = [
        scorer.score_multi([normalise(r) for r in rr], normalise(h))["rougeL"].fmeasure
        for h, rr in zip(hypotheses, refs, strict=True)
    ]
    return float(sum(f1) / len(f1))


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + k]) for k in range(1, n + 1) for i in range(len(tokens) - k + 1))


def cider_d_tokens(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]]) -> list[float]:
    """CIDEr-D of each tokenised hypothesis against its tokenised references (the COCO definition, n = 1..4).

    For each n-gram order n: a sentence is a vector of tf-idf weights ``tf * (log N - log max(1, df))``, with
    ``N`` the number of hypotheses and ``df`` the number of hypotheses whose references hold the n-gram. The score
    against one reference is the clipped cosine ``sum_g min(h_g, r_g) r_g / (|h| |r|)`` times the length
    penalty ``exp(-(l_h - l_r)^2 / (2 sigma^2))``, sigma = 6; orders are averaged, references averaged, times 10.
    The length ``l`` is the number of bigrams (``max(len - 1, 0)``), as the COCO code counts it.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference entries")
    n_max, sigma = 4, 6.0
    ref_counts = [[_ngrams(r, n_max) for r in rr] for rr in references]
    df: Counter[tuple[str, ...]] = Counter(g for rr in ref_counts for g in {g for c in rr for g in c})
    log_n = math.log(len(hypotheses)) if hypotheses else 0.0

    def vec(c: Counter[tuple[str, ...]]) -> tuple[list[dict[tuple[str, ...], float]], list[float], int]:
        v: list[dict[tuple[str, ...], float]] = [{} for _ in range(n_max)]
        for g, tf in c.items():
            v[len(g) - 1][g] = tf * (log_n - math.log(max(1.0, df[g])))
        norms = [math.sqrt(sum(w * w for w in vn.values())) for vn in v]
        return v, norms, sum(c[g] for g in v[1])  # length: bigram count

    scores = []
    for h, rr in zip(hypotheses, ref_counts, strict=True):
        vh, nh, lh = vec(_ngrams(h, n_max))
        total = 0.0
        for rc in rr:
            vr, nr, lr = vec(rc)
            penalty = math.exp(-((lh - lr) ** 2) / (2 * sigma**2))
            for k in range(n_max):
                dot = sum(min(w, vr[k].get(g, 0.0)) * vr[k].get(g, 0.0) for g, w in vh[k].items())
                if nh[k] != 0 and nr[k] != 0:
                    dot /= nh[k] * nr[k]
                total += dot * penalty
        scores.append(10.0 * total / n_max / len(rr))
    return scores


def cider(hypotheses: Sequence[str], references: References) -> float:
    """Mean CIDEr-D over the corpus (see :func:`cider_d_tokens`), texts tokenised by :func:`cider_tokens`. The
    idf comes from these references, so the score depends on the whole corpus, not only on each pair."""
    refs = _refs(hypotheses, references)
    if not refs:
        return 0.0
    scores = cider_d_tokens([cider_tokens(h) for h in hypotheses], [[cider_tokens(r) for r in rr] for rr in refs])
    return float(sum(scores) / len(scores))


def text_scores(hypotheses: Sequence[str], references: References) -> dict[str, float]:
    """``{"bleu4": 0-100, "rouge_l": 0-1, "cider": CIDEr-D}`` over the same normalised texts."""
    return {
        "bleu4": bleu4(hypotheses, references),
        "rouge_l": rouge_l(hypotheses, references),
        "cider": cider(hypotheses, references),
    }
