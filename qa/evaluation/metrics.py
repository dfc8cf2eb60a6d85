"""Every metric `qa` reports, as pure functions in one place: ranking (hit, recall, MRR, nDCG),
answers (SQuAD EM/F1 and the official v1.1/v2.0 scores, "contains a gold answer"), classifiers
(ROC AUC, average precision), latency percentiles, and OCR's character error rate.

Each follows its reference implementation where there is one: nDCG@10 and Recall@k as BEIR
(pytrec_eval) computes them, EM/F1 as the official SQuAD scripts do. Nothing here reads files,
prints, or knows about indexes.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

_PUNCTUATION = frozenset(string.punctuation)  # SQuAD's: ASCII only
_MARKER = re.compile(r"\s*\[\d+\]")


class Located(Protocol):
    """Anything with a place in a source file: a passage, a citation, a chunk, an evidence span."""

    @property
    def doc_id(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


# ---- ranking ------------------------------------------------------------------------------

def overlaps(item: Located, span: Located) -> bool:
    """Whether two half-open character ranges of the same document share at least one character."""
    return item.doc_id == span.doc_id and item.start < span.end and span.start < item.end


def relevance(items: Iterable[Located], evidence: Sequence[Located]) -> list[bool]:
    """For each retrieved item in rank order, whether it overlaps any evidence span."""
    return [any(overlaps(item, span) for span in evidence) for item in items]


def hit_at_k(relevant: Sequence[bool], k: int) -> float:
    """1.0 when any of the first `k` results is relevant, else 0.0."""
    return float(any(relevant[:k]))


def recall_at_k(items: Sequence[Located], evidence: Sequence[Located], k: int) -> float:
    """The share of the evidence spans that at least one of the first `k` results overlaps.

    Counted over spans, not chunks: a question whose answer is stated in two documents scores
    0.5 when only one of them is retrieved, however many chunks of that one come back.
    """
    if not evidence:
        return 0.0
    top = items[:k]
    return sum(any(overlaps(item, span) for item in top) for span in evidence) / len(evidence)


def reciprocal_rank(relevant: Sequence[bool], k: int = 10) -> float:
    """1 / rank of the first relevant result within the first `k`, or 0.0 when there is none."""
    for rank, rel in enumerate(relevant[:k], 1):
        if rel:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(relevant: Sequence[bool], n_relevant: int, k: int = 10) -> float:
    """Normalized discounted cumulative gain with binary relevance.

    Args:
        relevant: relevance of each result in rank order.
        n_relevant: how many items in the whole collection are relevant; the ideal ranking
            puts `min(n_relevant, k)` of them first.
        k: the cut-off.

    Returns:
        DCG@k / IDCG@k in [0, 1], with gain 1 / log2(rank + 1); 0.0 when nothing is relevant.
    """
    ideal = min(n_relevant, k)
    if ideal <= 0:
        return 0.0
    dcg = sum(1.0 / math.log2(rank + 1) for rank, rel in enumerate(relevant[:k], 1) if rel)
    idcg = sum(1.0 / math.log2(rank + 1) for rank in range(1, ideal + 1))
    return dcg / idcg


def ndcg10(ranked: Iterable[Hashable], relevant: set[Any]) -> float:
    """nDCG@10 of a document ranking with binary relevance (as BEIR / pytrec_eval compute it)."""
    return ndcg_at_k([d in relevant for d in list(ranked)[:10]], len(relevant), 10)


def doc_recall(ranked: Iterable[Hashable], relevant: set[Any], k: int) -> float:
    """The share of the relevant documents found in the first `k` (BEIR's Recall@k)."""
    return len(relevant & set(list(ranked)[:k])) / len(relevant) if relevant else 0.0


# ---- answers (official SQuAD normalization) -------------------------------------------------

def normalize_answer(text: str) -> str:
    """Lower case, drop ASCII punctuation, the articles a/an/the and extra whitespace (SQuAD v1.1)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalized prediction equals a normalized gold answer (the best over golds)."""
    return max((float(normalize_answer(prediction) == normalize_answer(g)) for g in golds), default=0.0)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD token-overlap F1 between prediction and gold, the best over golds."""
    pred = normalize_answer(prediction).split()
    best = 0.0
    for gold in golds:
        truth = normalize_answer(gold).split()
        same = sum((Counter(pred) & Counter(truth)).values())
        if same:
            precision, recall = same / len(pred), same / len(truth)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def strip_markers(text: str) -> str:
    """An answer text without its `[n]` citation markers."""
    return _MARKER.sub("", text)


def contains_answer(text: str, golds: Sequence[str]) -> bool:
    """Whether a gold answer occurs in the text as whole words, both normalized.

    The normalization is SQuAD's plus Unicode punctuation (curly quotes, dashes), because answers
    quote source text verbatim and news text quotes with “ ” ’. Word boundaries matter: gold "15"
    is not found in "2015".
    """
    padded = f" {_normalize_unicode(strip_markers(text))} "
    return any(norm and f" {norm} " in padded for norm in (_normalize_unicode(g) for g in golds))


def _normalize_unicode(text: str) -> str:
    return normalize_answer("".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text))


def squad_scores(predictions: dict[str, str], questions: Sequence[dict[str, Any]],
                 version: str = "1.1") -> dict[str, float]:
    """EM and F1 in percent, as the official `evaluate-v1.1.py` / `evaluate-v2.0.py` compute them.

    A question without a prediction scores 0. For "2.0", a question with no answers
    (unanswerable) has the gold answer "": only an empty prediction is right, and the
    HasAns/NoAns breakdowns are added.

    Raises:
        ValueError: `version` is not "1.1" or "2.0".
    """
    if version not in ("1.1", "2.0"):
        raise ValueError(f"Invalid SQuAD version: {version!r}. Choose from '1.1', '2.0'.")
    em: dict[str, float] = {}
    f1: dict[str, float] = {}
    for q in questions:
        pred = predictions.get(q["id"])
        golds = [a for a in q["answers"] if normalize_answer(a)] if version == "2.0" else q["answers"]
        if pred is None:
            em[q["id"]] = f1[q["id"]] = 0.0
        elif version == "2.0" and (not golds or not normalize_answer(pred)):
            # v2.0: "" (abstain) is right exactly when the gold is "" too.
            em[q["id"]] = f1[q["id"]] = float(not golds and not normalize_answer(pred))
        else:
            em[q["id"]] = exact_match(pred, golds)
            f1[q["id"]] = token_f1(pred, golds)
    scores = {"exact": 100 * mean(em.values()), "f1": 100 * mean(f1.values()), "total": len(em)}
    if version == "2.0":
        for label, unanswerable in (("HasAns", False), ("NoAns", True)):
            ids = [q["id"] for q in questions if (not q["answers"]) == unanswerable]
            scores[f"{label}_exact"] = 100 * mean(em[i] for i in ids)
            scores[f"{label}_f1"] = 100 * mean(f1[i] for i in ids)
            scores[f"{label}_total"] = len(ids)
    return scores


# ---- classifiers --------------------------------------------------------------------------

def roc_auc(scores: Sequence[float] | np.ndarray, positive: Sequence[bool] | np.ndarray) -> float:
    """Area under the ROC curve: the chance a random positive outscores a random negative
    (ties count half; Mann-Whitney U). NaN when either class is empty."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not n_pos or not n_neg:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(scores: Sequence[float] | np.ndarray, positive: Sequence[bool] | np.ndarray) -> float:
    """Area under the precision-recall curve (average precision, ties broken pessimistically)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positive, dtype=bool)
    if not y.any():
        return float("nan")
    order = np.lexsort((y, -s))  # among equal scores, negatives first
    hits = np.cumsum(y[order])
    precision = hits / np.arange(1, len(s) + 1)
    return float(precision[y[order]].sum() / y.sum())


# ---- summaries ----------------------------------------------------------------------------

def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions and substitutions of one character each).

    Myers' bit-vector algorithm in Hyyrö's form, with Python integers as bit vectors: one pass
    over `b` of a few integer operations on len(a)-bit numbers, so two 3,000-character pages
    take milliseconds where the textbook table takes seconds in Python.
    """
    if not a or not b:
        return len(a) + len(b)
    peq: dict[str, int] = {}
    for i, ch in enumerate(a):
        peq[ch] = peq.get(ch, 0) | (1 << i)
    mask = (1 << len(a)) - 1
    last = 1 << (len(a) - 1)
    pv, mv, score = mask, 0, len(a)
    for ch in b:
        eq = peq.get(ch, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | (~(xh | pv) & mask)
        mh = pv & xh
        if ph & last:
            score += 1
        elif mh & last:
            score -= 1
        ph = ((ph << 1) | 1) & mask
        mh = (mh << 1) & mask
        pv = mh | (~(xv | ph) & mask)
        mv = ph & xv
    return score


def char_error_rate(hypothesis: str, reference: str) -> float:
    """Character error rate of recognized text: edit distance over the reference's length, both
    with every run of whitespace read as one space (line breaks are layout, not characters read)."""
    ref = " ".join(reference.split())
    hyp = " ".join(hypothesis.split())
    return edit_distance(ref, hyp) / max(1, len(ref))


def mean(values: Iterable[float]) -> float:
    """The arithmetic mean; 0.0 for no values."""
    values = list(values)
    return float(sum(values) / len(values)) if values else 0.0


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float:
    """The `q`-th percentile with linear interpolation (numpy's default); NaN for no values."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles of a list of latencies, in milliseconds."""

    n: int
    p50: float
    p95: float
    mean: float
    max: float


def latency_summary(values_ms: Sequence[float]) -> LatencySummary:
    """p50, p95, mean and max of latencies in milliseconds (zeros for no values)."""
    if not values_ms:
        return LatencySummary(0, 0.0, 0.0, 0.0, 0.0)
    arr = np.asarray(values_ms, dtype=np.float64)
    return LatencySummary(len(arr), percentile(arr, 50), percentile(arr, 95), float(arr.mean()), float(arr.max()))
