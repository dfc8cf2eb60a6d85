"""SQuAD v1.1 dev as one open corpus (gold-paragraph recall, cited answers, short-answer EM/F1)
and SQuAD v2.0 dev (answer or abstain, with a threshold curve).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.bench.common import (
    CACHE,
    SAMPLE_SEED,
    Doc,
    QueryVectors,
    chunk_doc_codes,
    doc_ranking,
    prepare_index,
    progress,
    pyplot,
    read_jsonl,
    sample_items,
    settings_json,
)
from qa.bench.report import Report
from qa.config import MODES, Settings
from qa.evaluation.run import short_answer
from qa.metrics import average_precision, contains_answer, mean, percentile, roc_auc, squad_scores, strip_markers

SQUAD_RECALL_AT = (1, 5, 20)
SQUAD_ANSWER_SENTENCES = 2


def bench_squad(folder: Path, folder_v2: Path, settings: Settings, report_dir: Path, *,
                sample: int | None = None, echo: Callable[[str], None] | None = None) -> Report:
    """SQuAD v1.1 dev as one open corpus: gold-paragraph recall by retriever, cited-answer accuracy
    and short-answer EM/F1; then SQuAD v2.0 dev: answer-or-abstain, with a threshold curve.

    Args:
        folder: SQuAD v1.1 dev (paragraphs.jsonl, questions.jsonl).
        folder_v2: SQuAD v2.0 dev, same layout, with unanswerable questions.
        settings: the pipeline as configured (answers are capped at two sentences).
        report_dir: where the plots go.
        sample: score a seeded sample of this many questions of each version.

    Returns:
        The report, with every table already printed.
    """
    started = time.perf_counter()
    out = Report("SQuAD dev (open corpus of all dev paragraphs)", report_dir, echo)
    paragraphs = read_jsonl(folder / "paragraphs.jsonl")
    questions = read_jsonl(folder / "questions.jsonl")
    chosen = sample_items(questions, sample)
    out.text(f"Data: {folder} ({len(paragraphs)} paragraphs, {len(questions)} questions).")
    out.text("Questions scored: " + (f"all {len(chosen)}." if len(chosen) == len(questions) else
             f"a seeded sample of {len(chosen)} (seed {SAMPLE_SEED}) of {len(questions)}."))
    index, keys, build = prepare_index("squad-v1.1", squad_docs(paragraphs), settings, log=out.echo)
    out.text(f"Index: {CACHE / 'squad-v1.1' / 'index'} ({build.documents} paragraphs as documents, "
             f"titled by article; {build.chunks} chunks, {build.sentences} sentences).")
    retrieval = _squad_retrieval(out, index, keys, chosen, settings)
    answers = _squad_answers(out, index, keys, chosen, settings)
    out.data.update({"data": str(folder), "data_v2": str(folder_v2), "settings": settings_json(settings),
                     "questions": len(chosen), "sample": sample,
                     "sample_seed": SAMPLE_SEED if sample else None,
                     "retrieval": retrieval, "answers": answers})
    paragraphs_v2 = read_jsonl(folder_v2 / "paragraphs.jsonl")
    questions_v2 = read_jsonl(folder_v2 / "questions.jsonl")
    chosen_v2 = sample_items(questions_v2, sample)
    index_v2, keys_v2, _ = prepare_index("squad-v2.0", squad_docs(paragraphs_v2), settings, log=out.echo)
    out.data["abstention"] = _squad_abstention(out, index_v2, keys_v2, chosen_v2, len(questions_v2),
                                               settings)
    out.data["seconds"] = round(time.perf_counter() - started, 1)
    out.text(f"\nSQuAD benchmark finished in {time.perf_counter() - started:.0f} s.")
    return out


def squad_docs(paragraphs: Sequence[dict[str, Any]]) -> list[Doc]:
    # The article title is the document's title, as a corpus of Wikipedia pages would have it.
    return [Doc(str(p["pid"]), str(p["title"]).replace("_", " "), str(p["context"])) for p in paragraphs]


def _squad_retrieval(out: Report, index: Any, keys: dict[str, str], questions: Sequence[dict[str, Any]],
                     settings: Settings) -> dict[str, Any]:
    """Is the question's own paragraph among the first k documents, for each retriever?"""
    from qa.embed import load_embedder
    from qa.retrieval import rank

    out.section("Retrieval: is the gold paragraph in the top k?")
    codes, names = chunk_doc_codes(index, keys)
    number = {name: i for i, name in enumerate(names)}
    embedder = QueryVectors(load_embedder(index.model, settings.threads),
                            [q["question"] for q in questions], settings)
    depth = max(SQUAD_RECALL_AT)
    results: dict[str, Any] = {}
    curves: dict[str, list[float]] = {}
    rows = []
    for mode in MODES:
        s = settings.replace(mode=mode)
        found_at: list[int] = []
        started = time.perf_counter()
        for q in progress(questions, settings, f"retrieval, {mode}"):
            ranked = list(doc_ranking(rank(q["question"], index, settings=s, embedder=embedder).rows,
                                      codes, depth))
            gold = number[q["pid"]]
            found_at.append(ranked.index(gold) + 1 if gold in ranked else depth + 1)
        ms = 1000 * (time.perf_counter() - started) / max(1, len(questions))
        hits = np.asarray(found_at)
        curves[mode] = [float((hits <= k).mean()) for k in range(1, depth + 1)]
        results[mode] = {f"recall@{k}": float((hits <= k).mean()) for k in SQUAD_RECALL_AT}
        results[mode]["ms_per_query"] = ms
        rows.append([mode, *(results[mode][f"recall@{k}"] for k in SQUAD_RECALL_AT), ms])
    rows.append(["published sanity check: bm25s, contexts only (SOURCE.md)", 0.768, 0.925, 0.971, None])
    out.table(["retriever", *(f"R@{k}" for k in SQUAD_RECALL_AT), "ms/query (ranking only)"], rows)
    out.text(f"Settings: candidates={settings.candidates}, dense_weight={settings.dense_weight}, "
             f"sentence_weight={settings.sentence_weight}. Questions embedded in one batch first, so "
             "ms/query is ranking alone.")
    out.threads()
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for mode, curve in curves.items():
        ax.plot(range(1, depth + 1), curve, marker=".", label=mode)
    ax.set_xlabel("k (documents)")
    ax.set_ylabel("gold paragraph in top k")
    ax.set_title(f"SQuAD v1.1 dev, {len(questions)} questions, {len(index.documents)} paragraphs")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out.folder / "squad_recall.png", dpi=120)
    plt.close(fig)
    return results


def _squad_answers(out: Report, index: Any, keys: dict[str, str], questions: Sequence[dict[str, Any]],
                   settings: Settings) -> dict[str, Any]:
    """Does the cited answer (at most two sentences) contain a gold answer?"""
    from qa.answers import answer
    from qa.sentences import split_sentences

    out.section(f"Answers: qa.answer with at most {SQUAD_ANSWER_SENTENCES} sentences")
    s = settings.replace(max_answer_sentences=SQUAD_ANSWER_SENTENCES)
    correct, abstained, gold_retrieved, correct_given_gold = 0, 0, 0, 0
    sentence_counts: list[int] = []
    latency: list[float] = []
    predictions: dict[str, str] = {}
    with_span = 0
    for q in progress(questions, settings, "answers"):
        started = time.perf_counter()
        reply = answer(q["question"], history=[], index=index, settings=s)
        latency.append(1000 * (time.perf_counter() - started))
        ok = not reply.abstained and contains_answer(reply.text, q["answers"])
        correct += ok
        abstained += reply.abstained
        if not reply.abstained:
            sentence_counts.append(len(split_sentences(strip_markers(reply.text))))
        if any(keys[p.doc_id] == q["pid"] for p in reply.passages):
            gold_retrieved += 1
            correct_given_gold += ok
        with_span += any(c.answer_start is not None for c in reply.citations)
        predictions[q["id"]] = short_answer(reply)
    n = max(1, len(questions))
    official = squad_scores(predictions, questions, "1.1")
    results: dict[str, Any] = {
        "answer_contains_gold": correct / n, "abstained": abstained / n,
        "gold_paragraph_in_passages": gold_retrieved / n,
        "contains_gold_when_gold_paragraph_retrieved": correct_given_gold / max(1, gold_retrieved),
        "mean_answer_sentences": mean(sentence_counts), "max_answer_sentences": max(sentence_counts, default=0),
        "short_answer_coverage": with_span / n, "short_answer_em": official["exact"],
        "short_answer_f1": official["f1"], "p50_ms": percentile(latency, 50), "p95_ms": percentile(latency, 95),
    }
    out.table(["measure", "value"], [
        ["answer contains a gold answer (SQuAD-normalized, whole words)", f"{100 * correct / n:.1f}%"],
        ["abstained", f"{100 * abstained / n:.1f}%"],
        ["gold paragraph among the answer's passages", f"{100 * gold_retrieved / n:.1f}%"],
        ["answer contains gold, when the gold paragraph was retrieved",
         f"{100 * results['contains_gold_when_gold_paragraph_retrieved']:.1f}%"],
        ["sentences per answer (mean / max)", f"{results['mean_answer_sentences']:.2f} / "
                                              f"{results['max_answer_sentences']}"],
        ["questions with a marked short answer", f"{100 * with_span / n:.1f}%"],
        ["short answer EM / F1 (official v1.1; the whole answer where none is marked)",
         f"{official['exact']:.1f} / {official['f1']:.1f}"],
        ["latency per answer p50 / p95 (ms, query embedding included)",
         f"{results['p50_ms']:.1f} / {results['p95_ms']:.1f}"],
    ])
    out.text("For scale (a reader given the gold paragraph, not an open corpus): DrQA reader EM/F1 "
             "69.4 / 78.9, distilbert-base-cased-distilled-squad 79.6 / 87.0, BERT-large 84.1 / 90.9.")
    out.threads()
    return results


def _squad_abstention(out: Report, index: Any, keys: dict[str, str], questions: Sequence[dict[str, Any]],
                      total: int, settings: Settings) -> dict[str, Any]:
    """SQuAD v2.0: answer the answerable, abstain on the rest; how well confidence separates them."""
    from qa.answers import answer

    out.section("Abstention: SQuAD v2.0 dev (answerable vs unanswerable)")
    out.text("Questions scored: " + (f"all {len(questions)}." if len(questions) == total else
             f"a seeded sample of {len(questions)} (seed {SAMPLE_SEED}) of {total}."))
    s = settings.replace(max_answer_sentences=SQUAD_ANSWER_SENTENCES)
    confidence, answerable, right, answered = [], [], [], []
    predictions: dict[str, str] = {}
    for q in progress(questions, settings, "v2.0 answers"):
        reply = answer(q["question"], history=[], index=index, settings=s)
        has_answer = bool(q["answers"])
        confidence.append(reply.confidence)
        answerable.append(has_answer)
        answered.append(not reply.abstained)
        right.append(has_answer and not reply.abstained and contains_answer(reply.text, q["answers"]))
        predictions[q["id"]] = "" if reply.abstained else short_answer(reply)
    conf = np.asarray(confidence)
    pos = np.asarray(answerable)
    ok = np.asarray(right)
    did = np.asarray(answered)
    auc = roc_auc(conf, pos)
    ap = average_precision(conf, pos)
    # The v2.0 rule, with "contains a gold answer" for answered questions: abstaining is right
    # exactly on the unanswerable ones.
    accuracy = float(np.where(pos, ok, ~did).mean()) if len(pos) else float("nan")
    thresholds = np.unique(conf)
    curve = []
    for t in thresholds:
        take = conf >= t
        n_take = int(take.sum())
        curve.append((float(t), float((take & pos).sum() / n_take) if n_take else 1.0,
                      float((take & pos).sum() / max(1, pos.sum())),
                      float((take & ok).sum() / n_take) if n_take else 1.0,
                      float(np.where(pos, ok & take, ~take).mean())))
    best = max(curve, key=lambda c: c[4]) if curve else (float("nan"),) * 5
    official = squad_scores(predictions, questions, "2.0")
    results: dict[str, Any] = {
        "roc_auc": auc, "average_precision": ap, "threshold": settings.abstain_threshold,
        "answered_when_answerable": float(did[pos].mean()) if pos.any() else float("nan"),
        "abstained_when_unanswerable": float((~did[~pos]).mean()) if (~pos).any() else float("nan"),
        "contains_gold_when_answerable": float(ok[pos].mean()) if pos.any() else float("nan"),
        "v2_accuracy": accuracy, "best_threshold": best[0], "best_threshold_accuracy": best[4],
        "official_em_f1": official,
    }
    out.table(["measure", "value"], [
        ["ROC AUC of Answer.confidence (answerable vs unanswerable)", f"{auc:.3f}"],
        ["average precision (answerable = positive)", f"{ap:.3f}"],
        [f"answered, answerable questions (threshold {settings.abstain_threshold})",
         f"{100 * results['answered_when_answerable']:.1f}%"],
        ["abstained, unanswerable questions", f"{100 * results['abstained_when_unanswerable']:.1f}%"],
        ["answer contains gold, answerable questions", f"{100 * results['contains_gold_when_answerable']:.1f}%"],
        ["accuracy, v2 rule (gold contained / rightly abstained)", f"{100 * accuracy:.1f}%"],
        [f"best threshold on this set (not a tuned default): {best[0]:.3f}", f"{100 * best[4]:.1f}%"],
        ["short answer EM / F1 (official v2.0; abstaining answers \"\")",
         f"{official['exact']:.1f} / {official['f1']:.1f}"],
        ["always abstain, EM / F1 (SOURCE.md)", "50.1 / 50.1"],
    ])
    out.text("AUC 0.5 is chance. SQuAD v2.0's unanswerable questions were written against the same "
             "paragraph as answerable ones, so they look relevant to a retriever by design.")
    _abstention_plot(out.folder, curve, settings.abstain_threshold, auc, len(questions))
    out.data["abstention_curve"] = [
        {"threshold": c[0], "precision": c[1], "recall": c[2], "correct_precision": c[3], "accuracy": c[4]}
        for c in curve[:: max(1, len(curve) // 200)]]
    return results


def _abstention_plot(folder: Path, curve: Sequence[tuple[float, ...]], threshold: float, auc: float,
                     n: int) -> None:
    plt = pyplot()
    t = [c[0] for c in curve]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(t, [c[1] for c in curve], label="precision (answered that are answerable)")
    left.plot(t, [c[2] for c in curve], label="recall (answerable that are answered)")
    left.plot(t, [c[3] for c in curve], label="answered with a gold answer inside", alpha=0.7)
    left.plot(t, [c[4] for c in curve], label="accuracy, v2 rule", alpha=0.7)
    left.axvline(threshold, color="k", ls="--", lw=1, label=f"abstain_threshold={threshold}")
    left.set_xlabel("abstention threshold on Answer.confidence")
    left.legend(fontsize=7)
    left.grid(alpha=0.3)
    right.plot([c[2] for c in curve], [c[1] for c in curve])
    right.set_xlabel("recall")
    right.set_ylabel("precision")
    right.set_title(f"answerable vs unanswerable, ROC AUC {auc:.3f}")
    right.grid(alpha=0.3)
    fig.suptitle(f"SQuAD v2.0 dev, {n} questions")
    fig.tight_layout()
    fig.savefig(folder / "squad2_abstention.png", dpi=120)
    plt.close(fig)
