"""What the fits share: an index of the corpus, the pipeline's ranking and the reader's evidence
for one question, and the abstention threshold rule."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.answerability import (
    CONFIDENCE_MODEL,
    Evidence,
    answer_confidence,
    evidence,
)
from qa.chat import standalone_query
from qa.config import Settings
from qa.index import build_index, load_index
from qa.reading import read_answer
from qa.retrieval import rank
from qa.scoring import ScoredSentence, idf_weights, score_sentences

ROOT = Path(__file__).resolve().parent.parent.parent


def index_for(settings: Settings, corpus: Path, folder: Path) -> Any:
    build_index(corpus, folder / "index", settings=settings)
    return load_index(folder / "index")


def ranked(question: str, history: Sequence[str], index: Any, settings: Settings) -> tuple[Any, list[ScoredSentence]]:
    ranking = rank(standalone_query(question, history), index, settings=settings)
    return ranking, score_sentences(question, ranking, index)



def answer_evidence(question: str, history: Sequence[str], index: Any, settings: Settings) -> Evidence | None:
    """`AnswerabilityModel`'s inputs for one question, as `qa.answer` computes them; None when
    the reader finds no span (`qa.answer` then abstains whatever the model says)."""
    ranking, scored = ranked(question, history, index, settings)
    if not scored:
        return None
    pick = read_answer(ranking.query, scored, index, settings, ranking)
    if pick is None:
        return None
    return evidence(ranking.query, pick, scored, ranking, index, idf_weights(index, ranking.query))


def scorer_answers(question: str, history: Sequence[str], index: Any, settings: Settings) -> bool:
    """Whether the sentence scorer's confidence clears its threshold: how `qa.answer` decides a
    yes/no question."""
    ranking, scored = ranked(question, history, index, settings)
    return bool(scored) and answer_confidence(question, scored, ranking, index) >= CONFIDENCE_MODEL.threshold


THRESHOLD_GRID = [round(float(t), 3) for t in np.arange(0.05, 0.951, 0.025)]


def balanced_threshold(conf: np.ndarray, answerable: np.ndarray, grid: Sequence[float] = THRESHOLD_GRID,
                       fixed_refused: int = 0, fixed_answered: int = 0, polar_answerable: int = 0,
                       polar_total: int = 0,
                       also: Sequence[tuple[np.ndarray, np.ndarray]] = (), smooth: int = 0) -> float:
    """The abstention threshold with the lowest class-balanced error on the seed questions: the
    share of answerable questions refused (confidence below it) plus the share of unanswerable
    ones answered; ties go to the value nearest 0.5. `fixed_*` are errors made at every threshold
    (yes/no questions, decided by the sentence scorer: `polar_answerable` of `polar_total`).
    `also`: other sets as (confidences, answerable), each adding its own class-balanced error, so
    that it weighs as much as all the seed questions together. `smooth`: each threshold's error is
    the mean over it and this many grid neighbours each side, so that a dip at one grid point (one
    question of a small set crossing it) does not decide against a broad valley."""
    n_answerable = int(answerable.sum()) + polar_answerable
    n_unanswerable = len(answerable) + polar_total - n_answerable

    def balanced_error(t: float) -> float:
        refused = int(((conf < t) & answerable).sum()) + fixed_refused
        answered = int(((conf >= t) & ~answerable).sum()) + fixed_answered
        other = sum(float(((c < t) & y).sum()) / max(1, int(y.sum()))
                    + float(((c >= t) & ~y).sum()) / max(1, int((~y).sum())) for c, y in also)
        return round(refused / max(1, n_answerable) + answered / max(1, n_unanswerable) + other, 9)

    errors = [balanced_error(t) for t in grid]

    def smoothed(k: int) -> float:
        near = errors[max(0, k - smooth):k + smooth + 1]
        return round(sum(near) / len(near), 9)

    best = min(range(len(grid)), key=lambda k: (smoothed(k), abs(grid[k] - 0.5)))
    return grid[best]


# The direction each piece of evidence must push the confidence, if at all: a fit may set a
# coefficient to 0 but never turn it around (a larger margin, a closer cosine or a span of the
# kind asked for never counts against answering; numbers the text lacks never count for it).
# Unconstrained, SQuAD v2.0's adversarial questions taught the opposite signs for cosine and
