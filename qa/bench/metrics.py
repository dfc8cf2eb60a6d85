"""Benchmark metrics as their reference implementations compute them: nDCG@10 and Recall@k (BEIR),
SQuAD EM/F1 (the official v1.1 and v2.0 scripts), ROC AUC and average precision.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from qa.evaluate import exact_match, ndcg_at_k, normalize_answer, token_f1


def ndcg10(ranked: Iterable[Any], relevant: set[Any]) -> float:
    """nDCG@10 of a document ranking with binary relevance (as BEIR / pytrec_eval compute it)."""
    return ndcg_at_k([d in relevant for d in list(ranked)[:10]], len(relevant), 10)


def recall(ranked: Iterable[Any], relevant: set[Any], k: int) -> float:
    """The share of the relevant documents found in the first `k` (BEIR's Recall@k)."""
    return len(relevant & set(list(ranked)[:k])) / len(relevant) if relevant else 0.0


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
    scores = {"exact": 100 * _mean(em.values()), "f1": 100 * _mean(f1.values()), "total": len(em)}
    if version == "2.0":
        for label, unanswerable in (("HasAns", False), ("NoAns", True)):
            ids = [q["id"] for q in questions if (not q["answers"]) == unanswerable]
            scores[f"{label}_exact"] = 100 * _mean(em[i] for i in ids)
            scores[f"{label}_f1"] = 100 * _mean(f1[i] for i in ids)
            scores[f"{label}_total"] = len(ids)
    return scores


def roc_auc(scores: Sequence[float] | np.ndarray, positive: Sequence[bool] | np.ndarray) -> float:
    """Area under the ROC curve: the chance a random positive outscores a random negative."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not n_pos or not n_neg:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    # Average ranks over ties (Mann-Whitney U).
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


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return float(sum(values) / len(values)) if values else 0.0


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if len(values) else float("nan")
