"""The sentence scorer's weights (`SentenceWeights`), refitted as a conditional logit over each
question's candidate sentences."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize

from qa.bench.common import data_folder, read_jsonl, sample_items, write_corpus
from qa.bench.squad import squad_docs
from qa.config import Settings
from qa.evaluation import QAPair, load_qa_set
from qa.evaluation.metrics import contains_answer, overlaps
from qa.fitting.common import index_for, ranked
from qa.scoring import SENTENCE_WEIGHTS, ScoredSentence, SentenceWeights

FEATURES = ("cosine", "coverage", "focus", "passage", "type_match", "short_or_title_penalty")


def _candidates(scored: Sequence[ScoredSentence], gold: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Feature rows of a question's candidates and which hold the answer; None without both kinds."""
    rows, labels = [], []
    for s in scored:
        rows.append([s.cosine, s.coverage, s.focus, s.passage, s.type_match, -float(s.short_or_title)])
        labels.append(bool(gold(s)))
    if not any(labels) or all(labels):
        return None
    return np.asarray(rows), np.asarray(labels)


def fit_sentences(qa_set: Path, settings: Settings, squad: int, squad_folder: Path | None,
                  index: Any = None) -> dict[str, Any]:
    """Fit `SentenceWeights` on the QA set's answerable questions (plus a SQuAD sample);
    `index` as for `fit_confidence`."""
    groups: list[tuple[np.ndarray, np.ndarray]] = []
    with tempfile.TemporaryDirectory() as tmp:
        index = index or index_for(settings, settings.corpus, Path(tmp) / "seeds")
        for pair in (p for p in load_qa_set(qa_set) if p.answerable):
            _, scored = ranked(pair.question, pair.history, index, settings)
            found = _candidates(scored, _seed_gold(pair))
            if found is not None:
                groups.append(found)
        seeds = len(groups)
        if squad:
            groups += _squad_groups(squad, squad_folder, settings, Path(tmp) / "squad")

    def loss(w: np.ndarray) -> float:
        total = 0.0
        for x, gold in groups:
            z = x @ w
            top = z.max()
            total -= np.log(np.exp(z[gold] - top).sum()) - np.log(np.exp(z - top).sum())
        return total / len(groups)

    shipped = np.array([getattr(SENTENCE_WEIGHTS, f) for f in FEATURES])
    found = minimize(loss, shipped * 10, method="L-BFGS-B").x
    refit = SentenceWeights(**{f: float(v) for f, v in zip(FEATURES, found * SENTENCE_WEIGHTS.cosine / found[0],
                                                            strict=True)})
    weights_refit = np.array([getattr(refit, f) for f in FEATURES])
    return {"questions": len(groups), "seed_questions": seeds, "squad_questions": len(groups) - seeds,
            "refit": refit, "refit_gold_first": _gold_first(groups, weights_refit),
            "shipped": SENTENCE_WEIGHTS, "shipped_gold_first": _gold_first(groups, shipped),
            "cosine_only_gold_first": _gold_first(groups, np.eye(len(FEATURES))[0])}


def _seed_gold(pair: QAPair) -> Any:
    return lambda s: any(overlaps(s.sentence, span) for span in pair.evidence) and \
        contains_answer(s.sentence.text, pair.answers)


def _gold_first(groups: Sequence[tuple[np.ndarray, np.ndarray]], w: np.ndarray) -> float:
    # Ties go to the earlier candidate, as score_sentences orders them (a stable sort).
    return float(np.mean([gold[int(np.argmax(x @ w))] for x, gold in groups]))


def _squad_groups(sample: int, folder: Path | None, settings: Settings,
                  tmp: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    data = data_folder("squad", folder)
    paragraphs = read_jsonl(data / "paragraphs.jsonl")
    questions = sample_items(read_jsonl(data / "questions.jsonl"), sample)
    write_corpus(squad_docs(paragraphs), tmp / "corpus")
    index = index_for(settings, tmp / "corpus", tmp)
    groups = []
    for q in questions:
        _, scored = ranked(q["question"], (), index, settings)
        found = _candidates(scored, lambda s, golds=q["answers"]: contains_answer(s.sentence.text, golds))
        if found is not None:
            groups.append(found)
    return groups
