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
from qa.encoder import resolve_device
from qa.evaluation.run import short_answer
from qa.metrics import average_precision, contains_answer, mean, percentile, roc_auc, squad_scores, strip_markers

SQUAD_RECALL_AT = (1, 5, 20)
SQUAD_ANSWER_SENTENCES = 2


def bench_squad(folder: Path, folder_v2: Path, settings: Settings, report_dir: Path, *,
                sample: int | None = None, echo: Callable[[str], None] | None = None) -> Report:
    """SQuAD on the 17 held-out articles the reader never saw (qa/reader/data.py): the reader
    with the gold paragraph given, beside the reference predictions on the same questions; the
    articles' v1.1 paragraphs as an open corpus (retrieval, then reader vs sentence scorer); and
    v2.0 (answer or abstain) in both settings.

    Args:
        folder: SQuAD v1.1 dev (paragraphs.jsonl, questions.jsonl, reference_predictions/).
        folder_v2: SQuAD v2.0 dev, same layout, with unanswerable questions.
        settings: the pipeline as configured (answers are capped at two sentences).
        report_dir: where the plots go.
        sample: score a seeded sample of this many questions of each set.

    Returns:
        The report, with every table already printed.
    """
    from qa.reader.data import make_split

    started = time.perf_counter()
    out = Report("SQuAD dev, held-out articles (reader never trained on them)", report_dir, echo)
    paragraphs = read_jsonl(folder / "paragraphs.jsonl")
    paragraphs_v2 = read_jsonl(folder_v2 / "paragraphs.jsonl")
    split = make_split(paragraphs, paragraphs_v2)
    held = split.held_out
    paragraphs = [p for p in paragraphs if p["title"] in held]
    paragraphs_v2 = [p for p in paragraphs_v2 if p["title"] in held]
    questions = [q for q in read_jsonl(folder / "questions.jsonl") if q["title"] in held]
    questions_v2 = [q for q in read_jsonl(folder_v2 / "questions.jsonl") if q["title"] in held]
    chosen = sample_items(questions, sample)
    chosen_v2 = sample_items(questions_v2, sample)
    out.text(f"Held out: the {len(held)} articles at even positions of the v2.0 title order "
             f"({len(paragraphs)} paragraphs; {len(questions)} v1.1 questions, {len(questions_v2)} v2.0 "
             f"questions, {sum(not q['answers'] for q in questions_v2)} unanswerable). The reader was "
             "trained on the other articles only.")
    if sample:
        out.text(f"Questions scored: a seeded sample (seed {SAMPLE_SEED}) of {len(chosen)} v1.1 and "
                 f"{len(chosen_v2)} v2.0 questions.")
    out.data.update({"data": str(folder), "data_v2": str(folder_v2), "settings": settings_json(settings),
                     "held_out_articles": sorted(held), "questions": len(chosen),
                     "questions_v2": len(chosen_v2), "sample": sample,
                     "sample_seed": SAMPLE_SEED if sample else None})
    if settings.reader:
        out.data["gold_paragraph"] = _gold_paragraph(out, folder, folder_v2, chosen, chosen_v2, paragraphs,
                                                     paragraphs_v2, settings)
    index, keys, build = prepare_index("squad-v1.1-held-out", squad_docs(paragraphs), settings, log=out.echo)
    out.text(f"\nOpen corpus: {CACHE / 'squad-v1.1-held-out' / 'index'} ({build.documents} paragraphs as "
             f"documents, titled by article; {build.chunks} chunks, {build.sentences} sentences).")
    out.data["retrieval"] = _squad_retrieval(out, index, keys, chosen, settings)
    out.data["answers"] = _squad_answers(out, index, keys, chosen, settings)
    index_v2, keys_v2, _ = prepare_index("squad-v2.0-held-out", squad_docs(paragraphs_v2), settings,
                                         log=out.echo)
    out.data["abstention"] = _squad_abstention(out, index_v2, keys_v2, chosen_v2, len(questions_v2), settings)
    out.data["seconds"] = round(time.perf_counter() - started, 1)
    out.text(f"\nSQuAD benchmark finished in {time.perf_counter() - started:.0f} s.")
    return out


def _references(folder: Path) -> dict[str, dict[str, str]]:
    """The reference systems' predictions shipped with the data: {system: {question id: text}}."""
    import gzip
    import json

    out = {}
    for path in sorted((folder / "reference_predictions").glob("*.json.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            out[path.name.removesuffix(".json.gz")] = json.load(fh)
    return out


def _gold_paragraph(out: Report, folder: Path, folder_v2: Path, questions: Sequence[dict[str, Any]],
                    questions_v2: Sequence[dict[str, Any]], paragraphs: Sequence[dict[str, Any]],
                    paragraphs_v2: Sequence[dict[str, Any]], settings: Settings) -> dict[str, Any]:
    """The reader alone, given each question's own paragraph, beside the reference systems'
    predictions scored on exactly the same questions."""
    from qa.reader.model import WEIGHTS_DIR, load_reader, read_pairs

    reader = load_reader(settings.reader_model or WEIGHTS_DIR, settings.threads,
                         resolve_device(settings.device))
    threshold = float(reader.config.details.get("threshold", 0.0))
    # Paragraph ids are "<title>#<position>" in each version's own order: v2.0 numbers them anew.
    contexts_v1 = {p["pid"]: p["context"] for p in paragraphs}
    contexts_v2 = {p["pid"]: p["context"] for p in paragraphs_v2}
    results: dict[str, Any] = {}
    for version, items, refs, contexts in (("1.1", questions, _references(folder), contexts_v1),
                                           ("2.0", questions_v2, _references(folder_v2), contexts_v2)):
        out.section(f"Reader, gold paragraph given: SQuAD v{version}, held-out articles ({len(items)} questions)")
        started = time.perf_counter()
        readings = []
        for at in progress(range(0, len(items), 64), settings, f"reader v{version}"):
            part = items[at:at + 64]
            readings += read_pairs([(q["question"], contexts[q["pid"]]) for q in part], reader.logits,
                                   reader.config.max_len)
        seconds = time.perf_counter() - started
        predictions = {}
        for q, r in zip(items, readings, strict=True):
            text = contexts[q["pid"]][r.start:r.end] if r.start is not None and r.end is not None else ""
            predictions[q["id"]] = "" if version == "2.0" and r.margin < threshold else text
        ours = squad_scores(predictions, items, version)
        rows: list[list[Any]] = [["qa reader (int8, this run)", ours["exact"], ours["f1"],
                 *( [ours["HasAns_f1"], ours["NoAns_exact"]] if version == "2.0" else [])]]
        ref_scores = {}
        for name, preds in refs.items():
            score = squad_scores(preds, items, version)
            ref_scores[name] = score
            rows.append([name, score["exact"], score["f1"],
                         *([score["HasAns_f1"], score["NoAns_exact"]] if version == "2.0" else [])])
        entry: dict[str, Any] = {"reader": ours, "references": ref_scores,
                                 "ms_per_question": 1000 * seconds / max(1, len(items))}
        headers = ["system", "EM", "F1"]
        if version == "2.0":
            headers += ["HasAns F1", "NoAns EM"]
            auc = roc_auc([r.margin for r in readings], [bool(q["answers"]) for q in items])
            entry["margin_roc_auc"] = auc
            entry["threshold"] = threshold
            rows[0][0] += f", abstains below margin {threshold:.2f} (chosen on validation articles)"
        out.table(headers, rows)
        if version == "2.0":
            out.text("Reader margin (span minus no-answer score) ROC AUC, answerable vs not: "
                     f"{entry['margin_roc_auc']:.3f}.")
        out.text(f"Reader time: {entry['ms_per_question']:.1f} ms per question (whole paragraph, batches of 64).")
        results[version] = entry
    out.threads()
    return results


def squad_docs(paragraphs: Sequence[dict[str, Any]]) -> list[Doc]:
    # The article title is the document's title, as a corpus of Wikipedia pages would have it.
    return [Doc(str(p["pid"]), str(p["title"]).replace("_", " "), str(p["context"])) for p in paragraphs]


def _squad_retrieval(out: Report, index: Any, keys: dict[str, str], questions: Sequence[dict[str, Any]],
                     settings: Settings) -> dict[str, Any]:
    """Is the question's own paragraph among the first k documents, for each retriever?"""
    from qa.embed import embedder_for
    from qa.retrieval import rank

    out.section("Retrieval: is the gold paragraph in the top k?")
    codes, names = chunk_doc_codes(index, keys)
    number = {name: i for i, name in enumerate(names)}
    embedder = QueryVectors(embedder_for(settings, index.model),
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


def _answerers(settings: Settings) -> list[tuple[str, Settings]]:
    """The configured answerer first, then the other (reader vs sentence scorer)."""
    s = settings.replace(max_answer_sentences=SQUAD_ANSWER_SENTENCES)
    return [(("reader" if x.reader else "sentence scorer"), x) for x in (s, s.replace(reader=not s.reader))]


def _squad_answers(out: Report, index: Any, keys: dict[str, str], questions: Sequence[dict[str, Any]],
                   settings: Settings) -> dict[str, Any]:
    """Does the cited answer (at most two sentences) contain a gold answer; how good is its
    short answer (the first marked span)? Reader and sentence scorer on the same questions."""
    from qa.answers import answer
    from qa.sentences import split_sentences

    out.section(f"Open corpus: qa.answer with at most {SQUAD_ANSWER_SENTENCES} sentences, reader vs sentence scorer")
    results: dict[str, Any] = {}
    rows: list[list[Any]] = []
    for name, s in _answerers(settings):
        correct, abstained, gold_retrieved, correct_given_gold, with_span = 0, 0, 0, 0, 0
        sentence_counts: list[int] = []
        latency: list[float] = []
        predictions: dict[str, str] = {}
        answer(questions[0]["question"], index=index, settings=s)  # warm-up: model loads
        for q in progress(questions, settings, f"answers, {name}"):
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
        r = {
            "answer_contains_gold": correct / n, "abstained": abstained / n,
            "gold_paragraph_in_passages": gold_retrieved / n,
            "contains_gold_when_gold_paragraph_retrieved": correct_given_gold / max(1, gold_retrieved),
            "mean_answer_sentences": mean(sentence_counts), "max_answer_sentences": max(sentence_counts, default=0),
            "short_answer_coverage": with_span / n, "short_answer_em": official["exact"],
            "short_answer_f1": official["f1"], "p50_ms": percentile(latency, 50), "p95_ms": percentile(latency, 95),
        }
        results[name] = r
        rows.append([name, f"{100 * r['answer_contains_gold']:.1f}%", f"{100 * r['abstained']:.1f}%",
                     f"{100 * r['contains_gold_when_gold_paragraph_retrieved']:.1f}%",
                     f"{r['mean_answer_sentences']:.2f}", f"{100 * r['short_answer_coverage']:.1f}%",
                     f"{r['short_answer_em']:.1f} / {r['short_answer_f1']:.1f}",
                     f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f}"])
    out.table(["answerer", "contains gold", "abstained", "contains gold, gold paragraph retrieved",
               "sentences / answer", "short answer marked", "short answer EM / F1", "p50 / p95 ms"], rows)
    out.text("Short answer: the first marked span; where none is marked, the whole answer text (official v1.1 "
             "scoring). Latency includes the question's embedding and retrieval.")
    out.threads()
    return results


def _squad_abstention(out: Report, index: Any, keys: dict[str, str], questions: Sequence[dict[str, Any]],
                      total: int, settings: Settings) -> dict[str, Any]:
    """SQuAD v2.0 as an open corpus: answer the answerable, abstain on the rest; how well the
    confidence separates them, for the reader and the sentence scorer."""
    from qa.answers import answer, effective_threshold

    out.section("Open corpus, SQuAD v2.0 (answer or abstain), reader vs sentence scorer")
    out.text("Questions scored: " + (f"all {len(questions)}." if len(questions) == total else
             f"a seeded sample of {len(questions)} (seed {SAMPLE_SEED}) of {total}."))
    results: dict[str, Any] = {}
    rows: list[list[Any]] = []
    for name, s in _answerers(settings):
        threshold = effective_threshold(s)
        confidence, answerable, right, answered = [], [], [], []
        predictions: dict[str, str] = {}
        for q in progress(questions, settings, f"v2.0 answers, {name}"):
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
        accuracy = float(np.where(pos, ok, ~did).mean()) if len(pos) else float("nan")
        curve = []
        for t in np.unique(conf):
            take = conf >= t
            n_take = int(take.sum())
            curve.append((float(t), float((take & pos).sum() / n_take) if n_take else 1.0,
                          float((take & pos).sum() / max(1, pos.sum())),
                          float((take & ok).sum() / n_take) if n_take else 1.0,
                          float(np.where(pos, ok & take, ~take).mean())))
        official = squad_scores(predictions, questions, "2.0")
        results[name] = {
            "roc_auc": auc, "average_precision": average_precision(conf, pos), "threshold": threshold,
            "answered_when_answerable": float(did[pos].mean()) if pos.any() else float("nan"),
            "abstained_when_unanswerable": float((~did[~pos]).mean()) if (~pos).any() else float("nan"),
            "contains_gold_when_answerable": float(ok[pos].mean()) if pos.any() else float("nan"),
            "v2_accuracy": accuracy, "official_em_f1": official,
        }
        r = results[name]
        rows.append([name, f"{auc:.3f}", f"{threshold:.3f}", f"{100 * r['answered_when_answerable']:.1f}%",
                     f"{100 * r['abstained_when_unanswerable']:.1f}%",
                     f"{100 * r['contains_gold_when_answerable']:.1f}%", f"{100 * accuracy:.1f}%",
                     f"{official['exact']:.1f} / {official['f1']:.1f}"])
        _abstention_plot(out.folder, curve, threshold, auc, len(questions), name)
    out.table(["answerer", "confidence ROC AUC", "threshold", "answered, answerable", "abstained, unanswerable",
               "contains gold, answerable", "accuracy (v2 rule)", "short answer EM / F1"], rows)
    out.text("AUC 0.5 is chance. SQuAD v2.0's unanswerable questions were written against the same paragraph "
             "as answerable ones, so they look relevant to a retriever by design. Always abstaining scores EM/F1 "
             f"{100 * float(np.mean([not q['answers'] for q in questions])):.1f} on these questions.")
    return results


def _abstention_plot(folder: Path, curve: Sequence[tuple[float, ...]], threshold: float, auc: float,
                     n: int, name: str) -> None:
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
    fig.suptitle(f"SQuAD v2.0 dev, held-out articles, {n} questions, {name}")
    fig.tight_layout()
    fig.savefig(folder / f"squad2_abstention_{name.replace(' ', '_')}.png", dpi=120)
    plt.close(fig)
