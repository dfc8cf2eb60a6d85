"""Refit the answer composer's fitted constants and compare them with the shipped ones.

    python -m qa.fitting confidence              # ConfidenceModel, on eval/qa_pairs.jsonl + eval/calibration.jsonl
    python -m qa.fitting sentences [--squad 400] # SentenceWeights, on the QA set (+ a seeded SQuAD v1.1 sample)
    python -m qa.fitting answerability [--without coverage,lexical]
                                                 # AnswerabilityModel, on SQuAD v2.0 training articles as asked
                                                 # and paraphrased + eval/calibration.jsonl; threshold on both seed sets
    python -m qa.fitting ... --config F.toml     # any of them under other settings (e.g. pooled sentence vectors)

Both fit on features computed by the shipped pipeline (`qa.scoring.score_sentences`,
`qa.answerability.confidence_features`) over an index of seeds/ (built in a temporary folder), and
print the refit values beside the shipped defaults with the figure each was chosen for. Nothing is
written: to ship a refit, copy its values into `SentenceWeights` (qa/scoring.py) or
`ConfidenceModel` / `AnswerabilityModel` (qa/answerability.py) and rerun `qa eval` and
`qa bench squad`.

- **Confidence**: class-balanced logistic regression (answerable vs not, L2 with C = 30) on the
  best sentence's cosine, the share of the question's IDF weight in its passage and log1p of the
  passage's BM25 score; reported with leave-one-out ROC AUC. The shipped coefficients were fitted
  before this script was committed; it reproduces them to within 0.2 each, with the same AUC.
- **Answerability**: logistic regression over `qa.answerability.Evidence` (the reader's margins,
  the cosine of its sentence and how far below the best candidate's it is, whether its span is
  the kind of thing asked for, numbers the text never writes, and, unless left out with
  `--without`, coverage and BM25), on a seeded sample of SQuAD v2.0 questions of the *training*
  articles (their paragraphs indexed as an open corpus; held-out articles never enter), the same
  questions in the WordNet paraphrase `qa bench squad` uses, and the short seed questions of
  eval/calibration.jsonl, each set weighing the same and its two classes balanced; the
  abstention threshold is then the one with the lowest class-balanced error on
  eval/qa_pairs.jsonl and eval/calibration.jsonl: the share of answerable questions refused plus
  the share of unanswerable ones answered. Prints each set's ROC AUC and the trade-off. Yes/no
  questions are left out of the fit: the sentence scorer decides them (`qa.questions.is_polar`),
  so on the seed sets their errors are the same at every threshold.
- **Sentence weights**: a conditional logit over each question's candidate sentences (the
  probability of the sentences that hold the answer, softmax over the candidates), scaled so the
  cosine weight equals the shipped one; reported as the share of questions whose first sentence
  holds the answer ("gold first").
"""

# About 440 lines in one module: the three fits (confidence, sentence weights, answerability)
# share the evidence gathering and the SQuAD samples they are fitted on, and one `main`.

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from qa.answerability import (
    ANSWERABILITY,
    CONFIDENCE_MODEL,
    AnswerabilityModel,
    ConfidenceModel,
    Evidence,
    answer_confidence,
    confidence_features,
    evidence,
)
from qa.config import Settings
from qa.errors import SettingsError
from qa.evaluation import QAPair, load_qa_set
from qa.metrics import contains_answer, overlaps, roc_auc
from qa.questions import is_polar
from qa.reading import read_answer
from qa.scoring import SENTENCE_WEIGHTS, ScoredSentence, SentenceWeights, idf_weights, score_sentences

ROOT = Path(__file__).resolve().parent.parent
FEATURES = ("cosine", "coverage", "focus", "passage", "type_match", "short_or_title_penalty")


def _index(settings: Settings, corpus: Path, folder: Path) -> Any:
    from qa.index import build_index, load_index

    build_index(corpus, folder / "index", settings=settings)
    return load_index(folder / "index")


def _ranked(question: str, history: Sequence[str], index: Any, settings: Settings) -> tuple[Any, list[ScoredSentence]]:
    from qa.chat import standalone_query
    from qa.retrieval import rank

    ranking = rank(standalone_query(question, history), index, settings=settings)
    return ranking, score_sentences(question, ranking, index)


# ---- confidence -----------------------------------------------------------------------------

def fit_confidence(qa_set: Path, calibration: Path, settings: Settings, c: float = 30.0,
                   index: Any = None) -> dict[str, Any]:
    """Fit `ConfidenceModel` on both sets; returns the refit and shipped coefficients and their AUCs.

    `index` is an index of the corpus the sets were written over (default: one built from
    `settings.corpus` in a temporary folder).
    """
    from sklearn.linear_model import LogisticRegression

    pairs = load_qa_set(qa_set)
    short = [json.loads(line) for line in calibration.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = [(p.question, p.history, p.answerable) for p in pairs] + \
                [(row["question"], (), bool(row["answerable"])) for row in short]
    with tempfile.TemporaryDirectory() as tmp:
        index = index or _index(settings, settings.corpus, Path(tmp))
        x, y = [], []
        for question, history, answerable in questions:
            ranking, scored = _ranked(question, history, index, settings)
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


# ---- reader confidence ----------------------------------------------------------------------

def answer_evidence(question: str, history: Sequence[str], index: Any, settings: Settings) -> Evidence | None:
    """`AnswerabilityModel`'s inputs for one question, as `qa.answer` computes them; None when
    the reader finds no span (`qa.answer` then abstains whatever the model says)."""
    ranking, scored = _ranked(question, history, index, settings)
    if not scored:
        return None
    pick = read_answer(ranking.query, scored, index, settings, ranking)
    if pick is None:
        return None
    return evidence(ranking.query, pick, scored, ranking, index, idf_weights(index, ranking.query))


def scorer_answers(question: str, history: Sequence[str], index: Any, settings: Settings) -> bool:
    """Whether the sentence scorer's confidence clears its threshold: how `qa.answer` decides a
    yes/no question."""
    ranking, scored = _ranked(question, history, index, settings)
    return bool(scored) and answer_confidence(question, scored, ranking, index) >= CONFIDENCE_MODEL.threshold


THRESHOLD_GRID = [round(float(t), 3) for t in np.arange(0.05, 0.951, 0.025)]


def balanced_threshold(conf: np.ndarray, answerable: np.ndarray, grid: Sequence[float] = THRESHOLD_GRID,
                       fixed_refused: int = 0, fixed_answered: int = 0, polar_answerable: int = 0,
                       polar_total: int = 0) -> float:
    """The abstention threshold with the lowest class-balanced error on the seed questions: the
    share of answerable questions refused (confidence below it) plus the share of unanswerable
    ones answered; ties go to the value nearest 0.5. `fixed_*` are errors made at every threshold
    (yes/no questions, decided by the sentence scorer: `polar_answerable` of `polar_total`)."""
    n_answerable = int(answerable.sum()) + polar_answerable
    n_unanswerable = len(answerable) + polar_total - n_answerable

    def balanced_error(t: float) -> float:
        refused = int(((conf < t) & answerable).sum()) + fixed_refused
        answered = int(((conf >= t) & ~answerable).sum()) + fixed_answered
        return round(refused / max(1, n_answerable) + answered / max(1, n_unanswerable), 9)

    return min(grid, key=lambda t: (balanced_error(t), abs(t - 0.5)))


# The direction each piece of evidence must push the confidence, if at all: a fit may set a
# coefficient to 0 but never turn it around (a larger margin, a closer cosine or a span of the
# kind asked for never counts against answering; numbers the text lacks never count for it).
# Unconstrained, SQuAD v2.0's adversarial questions taught the opposite signs for cosine and
# type_fit (docs/reading.md).
EVIDENCE_SIGNS = {"margin": 1, "span_margin": 1, "cosine": 1, "cosine_gap": -1, "type_fit": 1,
                  "numbers_missing": -1, "coverage": 1, "lexical": 1}


def signed_logistic(x: np.ndarray, y: np.ndarray, weight: np.ndarray, signs: Sequence[int],
                    c: float) -> tuple[np.ndarray, float]:
    """Weighted logistic regression with an L2 penalty 1/(2c) on the coefficients (as
    scikit-learn's C), each coefficient held to the sign in `signs` (+1: >= 0, -1: <= 0, 0:
    free); returns the coefficients and the intercept."""
    from scipy.optimize import minimize

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


def _squad_training_sets(settings: Settings, sample: int, data: Path | None,
                         wordnet: Path) -> list[tuple[str, list[Evidence | None], np.ndarray]]:
    """Evidence for a seeded sample of SQuAD v2.0 questions of the *training* articles (their
    paragraphs an open corpus), as asked and (with WordNet installed) paraphrased."""
    from qa.bench.common import prepare_index, sample_items
    from qa.bench.paraphrase import paraphrase
    from qa.bench.squad import squad_docs
    from qa.bench.wordnet import WordNet
    from qa.reader.data import load_squad

    squad = load_squad(data)
    titles = squad.split.train | squad.split.valid
    paragraphs = [p for p in squad.v2_paragraphs if p["title"] in titles]
    index, _, _ = prepare_index("squad-v2.0-train-articles", squad_docs(paragraphs), settings)
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
        return sets
    reworded = [paraphrase(q.question, q.context, net).text for q in items]
    sets.append(("squad-v2.0 training articles, paraphrased",
                 [answer_evidence(q, (), index, settings) for q in reworded], labels))
    return sets


def fit_answerability(qa_set: Path, calibration: Path, settings: Settings, squad_sample: int = 1000,
                      data: Path | None = None, c: float = 30.0,
                      wordnet: Path | None = None, without: Sequence[str] = (), index: Any = None) -> dict[str, Any]:
    """Fit `AnswerabilityModel` (see the module docstring), leaving the features `without` out
    (their coefficients 0); returns the refit and shipped models, their ROC AUCs on each set and
    the threshold trade-off on the seed sets. `index`: an index of `settings.corpus` already
    built (default: one built in a temporary folder)."""

    from qa.bench.wordnet import DEBIAN_WORDNET

    fit_sets = _squad_training_sets(settings, squad_sample, data, wordnet or DEBIAN_WORDNET)
    pairs = load_qa_set(qa_set)
    short = [json.loads(line) for line in calibration.read_text(encoding="utf-8").splitlines() if line.strip()]
    short_questions = [(r["question"], (), bool(r["answerable"])) for r in short]
    pair_questions = [(p.question, p.history, p.answerable) for p in pairs]
    polar = [q for q in short_questions + pair_questions if is_polar(q[0])]
    cal = [q for q in short_questions if not is_polar(q[0])]
    qa = [q for q in pair_questions if not is_polar(q[0])]
    with tempfile.TemporaryDirectory() as tmp:
        seeds = index or _index(settings, settings.corpus, Path(tmp))
        cal_e = [answer_evidence(q, history, seeds, settings) for q, history, _ in cal]
        qa_e = [answer_evidence(q, history, seeds, settings) for q, history, _ in qa]
        polar_answered = [scorer_answers(q, history, seeds, settings) for q, history, _ in polar]
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

    def by_rule(conf: np.ndarray) -> float:
        return balanced_threshold(conf, seed_y, THRESHOLD_GRID, polar_refused, polar_wrong,
                                  polar_answerable=sum(a for *_, a in polar), polar_total=len(polar))

    refit = dataclasses.replace(draft, threshold=by_rule(confidences(draft, seed_e)))
    refit_conf, shipped_conf = confidences(refit, seed_e), confidences(ANSWERABILITY, seed_e)
    checked = [*sets, ("qa_pairs.jsonl", qa_e, qa_y)]
    return {
        "fit_sets": {name: {"questions": len(labels), "answerable": int(labels.sum()),
                            "no_span": sum(e is None for e in found)} for name, found, labels in sets},
        "seed_questions": len(seed_y) + len(polar), "seed_answerable": int(seed_y.sum()) + sum(a for *_, a in polar),
        "seed_polar": len(polar), "seed_polar_refused": polar_refused, "seed_polar_wrong": polar_wrong,
        "refit": refit, "shipped": ANSWERABILITY,
        "auc": {name: {"refit": roc_auc(confidences(refit, found), labels),
                       "shipped": roc_auc(confidences(ANSWERABILITY, found), labels)}
                for name, found, labels in checked},
        "shipped_threshold_by_rule": by_rule(shipped_conf),
        "trade_off": [{"threshold": t, "seed_refused_answerable": errors(refit_conf, t)[0],
                       "seed_answered_unanswerable": errors(refit_conf, t)[1],
                       "shipped_seed_errors": errors(shipped_conf, t)} for t in THRESHOLD_GRID],
    }


# ---- sentence weights -----------------------------------------------------------------------

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
    from scipy.optimize import minimize

    groups: list[tuple[np.ndarray, np.ndarray]] = []
    with tempfile.TemporaryDirectory() as tmp:
        index = index or _index(settings, settings.corpus, Path(tmp) / "seeds")
        for pair in (p for p in load_qa_set(qa_set) if p.answerable):
            _, scored = _ranked(pair.question, pair.history, index, settings)
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
    from qa.bench.common import data_folder, read_jsonl, sample_items, write_corpus
    from qa.bench.squad import squad_docs

    data = data_folder("squad", folder)
    paragraphs = read_jsonl(data / "paragraphs.jsonl")
    questions = sample_items(read_jsonl(data / "questions.jsonl"), sample)
    write_corpus(squad_docs(paragraphs), tmp / "corpus")
    index = _index(settings, tmp / "corpus", tmp)
    groups = []
    for q in questions:
        _, scored = _ranked(q["question"], (), index, settings)
        found = _candidates(scored, lambda s, golds=q["answers"]: contains_answer(s.sentence.text, golds))
        if found is not None:
            groups.append(found)
    return groups


def main(argv: Sequence[str] | None = None) -> int:
    from qa.runtime import configure_process

    parser = argparse.ArgumentParser(prog="python -m qa.fitting", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("confidence", "sentences", "answerability"))
    parser.add_argument("--set", type=Path, default=ROOT / "eval" / "qa_pairs.jsonl")
    parser.add_argument("--calibration", type=Path, default=ROOT / "eval" / "calibration.jsonl")
    parser.add_argument("--corpus", type=Path, default=ROOT / "seeds")
    parser.add_argument("--squad", type=int, help="SQuAD questions in the fit: v1.1 dev for sentences (default "
                        "400, 0: none), v2.0 training articles for answerability (default and at 0: 1000)")
    parser.add_argument("--data", type=Path, help="the SQuAD v1.1 dev folder, or for answerability the folder "
                        "holding squad-v1.1-dev and squad-v2.0-dev (default: ../shared/benchmarks)")
    parser.add_argument("--C", type=float, default=30.0, dest="c",
                        help="inverse L2 strength of the confidence fit (default 30)")
    parser.add_argument("--without", type=lambda v: [x.strip() for x in v.split(",") if x.strip()], default=[],
                        help="answerability: features to leave out, comma-separated (e.g. coverage,lexical)")
    parser.add_argument("--config", type=Path, help="a TOML file of settings to fit under (e.g. other sentence "
                        "vectors); --corpus wins over its corpus")
    args = parser.parse_args(argv)
    configure_process()
    try:
        settings = Settings.from_file(args.config, corpus=args.corpus) if args.config else Settings(corpus=args.corpus)
    except SettingsError as exc:
        print(f"python -m qa.fitting: {exc}", file=sys.stderr)
        return 2
    if args.what == "confidence":
        r = fit_confidence(args.set, args.calibration, settings, args.c)
        print(f"{r['questions']} questions ({r['answerable']} answerable), class-balanced logistic regression:")
        for label, key in (("refit", "refit"), ("shipped", "shipped")):
            m = r[key]
            print(f"  {label:8} cosine {m.cosine:6.2f}  coverage {m.coverage:6.2f}  lexical {m.lexical:6.2f}  "
                  f"bias {m.bias:6.2f}  ROC AUC {r[key + '_auc']:.3f}")
        print(f"  leave-one-out ROC AUC of the refit: {r['refit_leave_one_out_auc']:.3f}")
    elif args.what == "answerability":
        unknown = set(args.without) - {f.name for f in fields(Evidence)}
        if unknown:
            print(f"python -m qa.fitting: unknown feature(s) {', '.join(sorted(unknown))}; the features are "
                  f"{', '.join(f.name for f in fields(Evidence))}.", file=sys.stderr)
            return 2
        r = fit_answerability(args.set, args.calibration, settings, args.squad or 1000, args.data, args.c,
                              without=args.without)
        for name, info in r["fit_sets"].items():
            print(f"fitted on {name}: {info['questions']} questions ({info['answerable']} answerable; the reader "
                  f"found no span for {info['no_span']})")
        print(f"threshold on {r['seed_questions']} seed questions, {r['seed_polar']} of them yes/no (sentence "
              f"scorer: {r['seed_polar_refused']} refused answerable, {r['seed_polar_wrong']} answered "
              "unanswerable, counted at every threshold):")
        for label in ("refit", "shipped"):
            m = r[label]
            print(f"  {label:8} " + "  ".join(f"{f.name} {getattr(m, f.name):.3f}" for f in fields(m)))
        for name, aucs in r["auc"].items():
            print(f"  ROC AUC on {name}: refit {aucs['refit']:.3f}, shipped {aucs['shipped']:.3f}")
        print(f"  the shipped coefficients' threshold by the same rule: {r['shipped_threshold_by_rule']:.3f} "
              f"(shipped: {r['shipped'].threshold:.3f})")
        print("  threshold  refit, seeds: refused answerable / answered unanswerable   shipped, seeds: the same")
        for row in r["trade_off"]:
            shipped_refused, shipped_wrong = row["shipped_seed_errors"]
            print(f"  {row['threshold']:9.3f}  {row['seed_refused_answerable']:>21} / "
                  f"{row['seed_answered_unanswerable']:<24}  {shipped_refused:>14} / {shipped_wrong}")
    else:
        r = fit_sentences(args.set, settings, 400 if args.squad is None else args.squad, args.data)
        print(f"{r['questions']} questions with an answer among their candidates ({r['seed_questions']} seed, "
              f"{r['squad_questions']} SQuAD), conditional logit, scaled to cosine {SENTENCE_WEIGHTS.cosine}:")
        for label in ("refit", "shipped"):
            w = r[label]
            print(f"  {label:8} " + "  ".join(f"{f.name} {getattr(w, f.name):.3f}" for f in fields(w))
                  + f"  gold first {r[label + '_gold_first']:.3f}")
        print(f"  cosine alone: gold first {r['cosine_only_gold_first']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
