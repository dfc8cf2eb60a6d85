"""The reader's figures on SQuAD questions with the gold paragraph given: EM/F1 by the official
rules, the abstention threshold, and the validation figures a model choice is made on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa.evaluation.metrics import roc_auc, squad_scores
from qa.reader.model import Logits, Reading, read_pairs
from qa.training.data import QAItem


@dataclass
class Scores:
    """Reader figures on one set of questions, gold paragraph given."""

    questions: int
    em: float
    f1: float
    has_ans_em: float = float("nan")
    has_ans_f1: float = float("nan")
    no_ans_acc: float = float("nan")
    auc: float = float("nan")
    threshold: float = 0.0


def read_gold(items: Sequence[QAItem], logits: Logits, max_len: int) -> list[Reading]:
    return read_pairs([(q.question, q.context) for q in items], logits, max_len)


def prediction(item: QAItem, reading: Reading) -> str:
    if reading.start is None or reading.end is None:
        return ""
    return item.context[reading.start:reading.end]


def score(items: Sequence[QAItem], readings: Sequence[Reading],
          threshold: float | None = None) -> Scores:
    """EM/F1 (x100) by the official SQuAD rules (`qa.evaluation.metrics.squad_scores`, as `qa bench
    squad` scores). With `threshold`, the reader abstains when margin < threshold: an abstention
    is right exactly when the question is unanswerable."""
    if not items:
        return Scores(questions=0, em=float("nan"), f1=float("nan"))
    predictions = {q.qid: "" if threshold is not None and r.margin < threshold else prediction(q, r)
                   for q, r in zip(items, readings, strict=True)}
    rows = [{"id": q.qid, "answers": list(q.answers)} for q in items]
    has_no_answer = any(not q.answerable for q in items)
    official = squad_scores(predictions, rows, "2.0" if has_no_answer else "1.1")

    def pct(key: str) -> float:
        return round(official[key], 2) if key in official else float("nan")

    auc = float("nan")
    if has_no_answer and any(q.answerable for q in items):
        auc = round(roc_auc([r.margin for r in readings], [q.answerable for q in items]), 4)
    return Scores(questions=len(items), em=pct("exact"), f1=pct("f1"),
                  has_ans_em=pct("HasAns_exact") if has_no_answer else pct("exact"),
                  has_ans_f1=pct("HasAns_f1") if has_no_answer else pct("f1"),
                  no_ans_acc=pct("NoAns_exact"), auc=auc,
                  threshold=round(threshold, 3) if threshold is not None else 0.0)


def best_threshold(items: Sequence[QAItem], readings: Sequence[Reading]) -> float:
    """The abstention threshold on the margin that maximises SQuAD 2.0 F1 on `items`."""
    margins = sorted({round(r.margin, 2) for r in readings})
    if not margins:
        return 0.0
    grid = np.quantile(margins, np.linspace(0, 1, 101))
    return float(max(grid, key=lambda t: (score(items, readings, float(t)).f1, -abs(t))))


def validate(v1_items: Sequence[QAItem], v2_items: Sequence[QAItem], logits: Logits,
             max_len: int) -> tuple[Scores, Scores, float]:
    """Validation figures for a model choice: v1.1 scores, v2.0 scores at the margin threshold
    best on the same v2.0 questions, and that threshold."""
    v1 = score(v1_items, read_gold(v1_items, logits, max_len))
    r2 = read_gold(v2_items, logits, max_len)
    threshold = best_threshold(v2_items, r2)
    return v1, score(v2_items, r2, threshold), threshold


# ---------------------------------------------------------------------------------------------
# Training


def reworded_score(items: Sequence[QAItem], logits: Logits, max_len: int) -> Scores | None:
    """v1.1 scores on the reworded validation questions, or None without any."""
    return score(items, read_gold(items, logits, max_len)) if items else None


def own_words_score(items: Sequence[QAItem], logits: Logits, max_len: int) -> Scores | None:
    """SQuAD 2.0 scores of questions in users' own words at the margin best on them (answerable
    and near misses: `qa.training.own_words`), or None without any."""
    if not items:
        return None
    readings = read_gold(items, logits, max_len)
    return score(items, readings, best_threshold(items, readings))
