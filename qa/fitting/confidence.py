"""The sentence scorer's confidence model (`ConfidenceModel`), refitted on the seed sets."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from qa.answerability import (
    CONFIDENCE_MODEL,
    ConfidenceModel,
    confidence_features,
)
from qa.config import Settings
from qa.evaluation import load_qa_set
from qa.evaluation.metrics import roc_auc
from qa.fitting.common import index_for, ranked


def fit_confidence(qa_set: Path, calibration: Path, settings: Settings, c: float = 30.0,
                   index: Any = None) -> dict[str, Any]:
    """Fit `ConfidenceModel` on both sets; returns the refit and shipped coefficients and their AUCs.

    `index` is an index of the corpus the sets were written over (default: one built from
    `settings.corpus` in a temporary folder).
    """
    pairs = load_qa_set(qa_set)
    short = [json.loads(line) for line in calibration.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = [(p.question, p.history, p.answerable) for p in pairs] + \
                [(row["question"], (), bool(row["answerable"])) for row in short]
    with tempfile.TemporaryDirectory() as tmp:
        index = index or index_for(settings, settings.corpus, Path(tmp))
        x, y = [], []
        for question, history, answerable in questions:
            ranking, scored = ranked(question, history, index, settings)
            x.append(confidence_features(scored, ranking, index) if scored else (0.0, 0.0, 0.0))
            y.append(answerable)
    features, labels = np.asarray(x), np.asarray(y)

    def model(data: np.ndarray, target: np.ndarray) -> Any:
        return LogisticRegression(class_weight="balanced", C=c, max_iter=10_000).fit(data, target)

    fitted = model(features, labels)
    held_out = np.empty(len(labels))
    for i in range(len(labels)):  # leave-one-out: each question scored by a model fitted without it
        keep = np.arange(len(labels)) != i
        held_out[i] = model(features[keep], labels[keep]).decision_function(features[i:i + 1])[0]
    w = [float(v) for v in fitted.coef_[0]]
    refit = ConfidenceModel(cosine=w[0], coverage=w[1], lexical=w[2], bias=float(fitted.intercept_[0]))
    shipped = np.array([CONFIDENCE_MODEL(*row) for row in features])
    return {
        "questions": len(labels), "answerable": int(labels.sum()),
        "refit": refit, "refit_auc": roc_auc([refit(*row) for row in features], labels),
        "refit_leave_one_out_auc": roc_auc(held_out, labels),
        "shipped": CONFIDENCE_MODEL, "shipped_auc": roc_auc(shipped, labels),
    }


