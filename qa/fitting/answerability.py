"""The reader's answerability model (`AnswerabilityModel`), refitted on SQuAD v2.0 training
articles (as asked and paraphrased) and eval/calibration.jsonl; its threshold on the seed sets."""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize

from qa.answerability import (
    ANSWERABILITY,
    AnswerabilityModel,
    Evidence,
)
from qa.bench.common import prepare_index, sample_items
from qa.bench.paraphrase import paraphrase
from qa.bench.squad import squad_docs
from qa.bench.wordnet import DEBIAN_WORDNET, WordNet
from qa.config import Settings
from qa.evaluation import load_qa_set
from qa.evaluation.metrics import roc_auc
from qa.evaluation.own_words_dev import (
    OWN_WORDS_DEV,
    OWN_WORDS_DEV_SET,
    SEEDS_OWN_WORDS_DEV,
    SEEDS_OWN_WORDS_DEV_SET,
    load_own_words_dev,
)
from qa.fitting.common import THRESHOLD_GRID, answer_evidence, balanced_threshold, index_for, scorer_answers
from qa.questions import is_polar
from qa.training.data import load_squad

# The threshold's balanced error is averaged with its grid neighbours (one each side, 0.025
# apart): with three development sets the error is flat from 0.2 to 0.65, and a dip at a single
# grid point (one question of the 47 about the seeds crossing it) should not swing the threshold.
THRESHOLD_SMOOTHING = 1

EVIDENCE_SIGNS = {"margin": 1, "span_margin": 1, "cosine": 1, "cosine_gap": -1, "type_fit": 1,
                  "numbers_missing": -1, "coverage": 1, "lexical": 1}


def signed_logistic(x: np.ndarray, y: np.ndarray, weight: np.ndarray, signs: Sequence[int],
                    c: float) -> tuple[np.ndarray, float]:
    """Weighted logistic regression with an L2 penalty 1/(2c) on the coefficients (as
    scikit-learn's C), each coefficient held to the sign in `signs` (+1: >= 0, -1: <= 0, 0:
    free); returns the coefficients and the intercept."""
    target = y.astype(np.float64)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:-1], theta[-1]
        z = x @ w + b
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
        nll = float(np.sum(weight * (np.logaddexp(0.0, z) - target * z)))
        grad_z = weight * (p - target)
        grad = np.append(x.T @ grad_z + w / c, grad_z.sum())
        return nll + float(w @ w) / (2 * c), grad

    bounds = [(0.0, None) if s > 0 else (None, 0.0) if s < 0 else (None, None) for s in signs] + [(None, None)]
    found = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B", bounds=bounds)
    return found.x[:-1], float(found.x[-1])


def _rows(found: Sequence[Evidence | None]) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows of the questions the reader found a span for, and which those are."""
    kept = np.array([e is not None for e in found], dtype=bool)
    rows = np.array([e.values() for e in found if e is not None]).reshape(-1, len(fields(Evidence)))
    return rows, kept


def users_wording(fit_sets: Sequence[tuple[str, list[Evidence | None], np.ndarray]]
                  ) -> list[tuple[str, list[Evidence | None], np.ndarray]]:
    """The failure users meet, on development data (checked, never fitted on): the answerable
    SQuAD questions paraphrased against the unanswerable ones as asked. Near misses share the
    text's words and paraphrases do not, so evidence that follows shared words ranks them the
    wrong way round here (ROC AUC below 0.5) even where it separates each set on its own."""
    paraphrased = [found for name, found, _ in fit_sets if name.endswith(", paraphrased")]
    if not paraphrased:
        return []
    (_, asked, labels), reworded = fit_sets[0], paraphrased[0]
    mixed = [r if answerable else a for a, r, answerable in zip(asked, reworded, labels, strict=True)]
    return [("squad-v2.0 training articles, answerable paraphrased / unanswerable as asked", mixed, labels)]


def _squad_training_sets(settings: Settings, sample: int, data: Path | None, wordnet: Path,
                         own_words: Path | None = OWN_WORDS_DEV) -> list[tuple[str, list[Evidence | None], np.ndarray]]:
    """Evidence for a seeded sample of SQuAD v2.0 questions of the *training* articles (their
    paragraphs an open corpus), as asked and (with WordNet installed) paraphrased, and for the
    development questions in users' own words about the same articles (`own_words`; None: left out),
    each set named."""
    squad = load_squad(data)
    titles = squad.split.train | squad.split.valid
    paragraphs = [p for p in squad.v2_paragraphs if p["title"] in titles]
    index, _, _ = prepare_index("squad-v2.0-train-articles", squad_docs(paragraphs), settings)
    dev: list[tuple[str, list[Evidence | None], np.ndarray]] = []
    if own_words is not None:
        written = load_own_words_dev(own_words, paragraphs)
        dev.append((OWN_WORDS_DEV_SET, [answer_evidence(q.question, (), index, settings) for q in written],
                    np.array([q.answerable for q in written])))
    # Yes/no questions never reach the reader (`qa.questions.is_polar`): they are left out.
    items = [q for q in sample_items(list(squad.part(2, titles)), sample) if not is_polar(q.question)]
    labels = np.array([q.answerable for q in items])
    sets = [("squad-v2.0 training articles", [answer_evidence(q.question, (), index, settings) for q in items],
             labels)]
    try:
        net = WordNet.load(wordnet)
    except (OSError, ValueError):
        print(f"WordNet is not installed at {wordnet}: the paraphrased variant is left out of the fit.",
              file=sys.stderr)
        return [*sets, *dev]
    reworded = [paraphrase(q.question, q.context, net).text for q in items]
    sets.append(("squad-v2.0 training articles, paraphrased",
                 [answer_evidence(q, (), index, settings) for q in reworded], labels))
    return [*sets, *dev]


def fit_answerability(qa_set: Path, calibration: Path, settings: Settings, squad_sample: int = 1000,
                      data: Path | None = None, c: float = 30.0,
                      wordnet: Path | None = None, without: Sequence[str] = (), index: Any = None,
                      own_words: Path | None = OWN_WORDS_DEV, fit_own_words: bool = False,
                      threshold_own_words: bool = True,
                      seeds_own_words: Path | None = SEEDS_OWN_WORDS_DEV) -> dict[str, Any]:
    """Fit `AnswerabilityModel` (see the module docstring), leaving the features `without` out
    (their coefficients 0); returns the refit and shipped models, their ROC AUCs on each set and
    the threshold trade-off on the seed sets. `index`: an index of `settings.corpus` already
    built (default: one built in a temporary folder). `own_words`: the development questions in
    users' own words about the training articles (None: left out), checked, and fitted on too
    with `fit_own_words`. The threshold minimises the class-balanced error on the seed sets plus,
    with `threshold_own_words` and those questions given, theirs: the articles' wording and the
    users' weigh the same. `seeds_own_words`: development questions in users' own words about
    `settings.corpus` (eval/seeds_own_words_dev.jsonl is about seeds/; None: left out), checked and,
    like `own_words`, weighed in the threshold."""

    training_sets = _squad_training_sets(settings, squad_sample, data, wordnet or DEBIAN_WORDNET, own_words)
    dev_sets = [s for s in training_sets if s[0] == OWN_WORDS_DEV_SET]
    fit_sets = training_sets if fit_own_words else [s for s in training_sets if s[0] != OWN_WORDS_DEV_SET]
    pairs = load_qa_set(qa_set)
    short = [json.loads(line) for line in calibration.read_text(encoding="utf-8").splitlines() if line.strip()]
    short_questions = [(r["question"], (), bool(r["answerable"])) for r in short]
    pair_questions = [(p.question, p.history, p.answerable) for p in pairs]
    polar = [q for q in short_questions + pair_questions if is_polar(q[0])]
    cal = [q for q in short_questions if not is_polar(q[0])]
    qa = [q for q in pair_questions if not is_polar(q[0])]
    with tempfile.TemporaryDirectory() as tmp:
        seeds = index or index_for(settings, settings.corpus, Path(tmp))
        cal_e = [answer_evidence(q, history, seeds, settings) for q, history, _ in cal]
        qa_e = [answer_evidence(q, history, seeds, settings) for q, history, _ in qa]
        polar_answered = [scorer_answers(q, history, seeds, settings) for q, history, _ in polar]
        if seeds_own_words is not None:
            written = [p for p in load_qa_set(seeds_own_words) if not is_polar(p.question)]
            dev_sets.append((SEEDS_OWN_WORDS_DEV_SET,
                             [answer_evidence(p.question, p.history, seeds, settings) for p in written],
                             np.array([p.answerable for p in written])))
    cal_y = np.array([a for *_, a in cal])
    qa_y = np.array([a for *_, a in qa])
    polar_refused = sum(a and not did for (_, _, a), did in zip(polar, polar_answered, strict=True))
    polar_wrong = sum(did and not a for (_, _, a), did in zip(polar, polar_answered, strict=True))
    sets = [*fit_sets, ("calibration.jsonl", cal_e, cal_y)]

    def balanced(y: np.ndarray) -> np.ndarray:
        return np.where(y, 0.5 / max(1, y.sum()), 0.5 / max(1, (~y).sum()))

    xs, ys, ws = [], [], []
    for _, found, labels in sets:   # each set weighs the same, its two classes balanced
        rows, kept = _rows(found)
        xs.append(rows)
        ys.append(labels[kept])
        ws.append(balanced(labels[kept]))
    y = np.concatenate(ys)
    names = [f.name for f in fields(Evidence)]
    used = [k for k, name in enumerate(names) if name not in without]
    weights, bias = signed_logistic(np.vstack(xs)[:, used], y, np.concatenate(ws) * len(y),
                                    [EVIDENCE_SIGNS[names[k]] for k in used], c)
    coef = dict.fromkeys(names, 0.0) | {names[k]: float(v) for k, v in zip(used, weights, strict=True)}
    draft = AnswerabilityModel(**coef, bias=bias)

    def confidences(model: AnswerabilityModel, found: Sequence[Evidence | None]) -> np.ndarray:
        """One confidence per question; 0 where the reader found no span (it abstains)."""
        return np.array([model(e) if e is not None else 0.0 for e in found])

    seed_e, seed_y = [*qa_e, *cal_e], np.concatenate([qa_y, cal_y])

    def errors(conf: np.ndarray, t: float) -> tuple[int, int]:
        return (int(((conf < t) & seed_y).sum()) + polar_refused, int(((conf >= t) & ~seed_y).sum()) + polar_wrong)

    rule_sets = dev_sets if threshold_own_words else []

    def by_rule(model: AnswerabilityModel) -> float:
        return balanced_threshold(confidences(model, seed_e), seed_y, THRESHOLD_GRID, polar_refused, polar_wrong,
                                  polar_answerable=sum(a for *_, a in polar), polar_total=len(polar),
                                  also=[(confidences(model, found), labels) for _, found, labels in rule_sets],
                                  smooth=THRESHOLD_SMOOTHING)

    refit = dataclasses.replace(draft, threshold=by_rule(draft))
    refit_conf, shipped_conf = confidences(refit, seed_e), confidences(ANSWERABILITY, seed_e)
    dev_trade_off = [(name, confidences(refit, found), confidences(ANSWERABILITY, found), labels)
                     for name, found, labels in dev_sets]
    checked = [*sets, ("qa_pairs.jsonl", qa_e, qa_y), *users_wording(fit_sets),
               *(s for s in dev_sets if s not in sets)]
    return {
        "fit_sets": {name: {"questions": len(labels), "answerable": int(labels.sum()),
                            "no_span": sum(e is None for e in found)} for name, found, labels in sets},
        "seed_questions": len(seed_y) + len(polar), "seed_answerable": int(seed_y.sum()) + sum(a for *_, a in polar),
        "seed_polar": len(polar), "seed_polar_refused": polar_refused, "seed_polar_wrong": polar_wrong,
        "refit": refit, "shipped": ANSWERABILITY,
        "auc": {name: {"refit": roc_auc(confidences(refit, found), labels),
                       "shipped": roc_auc(confidences(ANSWERABILITY, found), labels)}
                for name, found, labels in checked},
        "shipped_threshold_by_rule": by_rule(ANSWERABILITY),
        "threshold_sets": ["qa_pairs.jsonl", "calibration.jsonl", *(name for name, *_ in rule_sets)],
        "trade_off": [{"threshold": t, "seed_refused_answerable": errors(refit_conf, t)[0],
                       "seed_answered_unanswerable": errors(refit_conf, t)[1],
                       "shipped_seed_errors": errors(shipped_conf, t),
                       **{f"{name}: refused answerable / answered unanswerable": {
                           "refit": (int(((r < t) & y).sum()), int(((r >= t) & ~y).sum())),
                           "shipped": (int(((s < t) & y).sum()), int(((s >= t) & ~y).sum()))}
                          for name, r, s, y in dev_trade_off}} for t in THRESHOLD_GRID],
    }


