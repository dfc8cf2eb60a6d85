"""SQuAD v1.1 dev as one open corpus (gold-paragraph recall, cited answers, short-answer EM/F1)
and SQuAD v2.0 dev (answer or abstain, with a threshold curve).
"""

# About 470 lines in one module: one benchmark's report (gold-paragraph recall, open-corpus answers,
# abstention), its sections sharing the index, the questions and the answerers; the question
# variants are in qa/bench/squad_variants.py.

from __future__ import annotations

import gzip
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.answerability import effective_threshold
from qa.answers import answer
from qa.bench.common import (
    CACHE,
    FOLDERS,
    SAMPLE_SEED,
    Doc,
    QueryVectors,
    chunk_doc_codes,
    data_folder,
    doc_ranking,
    prepare_index,
    progress,
    pyplot,
    read_jsonl,
    sample_items,
    settings_json,
)
from qa.bench.overlap import by_bucket
from qa.bench.registry import BenchRun
from qa.bench.report import Report
from qa.bench.squad_variants import Variant, question_variants
from qa.bench.wordnet import DEBIAN_WORDNET
from qa.config import MODES, Settings
from qa.embed import embedder_for
from qa.encoder import resolve_device
from qa.evaluation.metrics import (
    average_precision,
    contains_answer,
    mean,
    percentile,
    roc_auc,
    squad_scores,
    strip_markers,
)
from qa.evaluation.run import short_answer
from qa.reader.model import WEIGHTS_DIR, load_reader, read_pairs
from qa.retrieval import rank
from qa.sentences import split_sentences
from qa.training.data import make_split

SQUAD_RECALL_AT = (1, 5, 20)
SQUAD_ANSWER_SENTENCES = 2


def bench_squad(folder: Path, folder_v2: Path, settings: Settings, report_dir: Path, *,
                sample: int | None = None, echo: Callable[[str], None] | None = None,
                wordnet: Path = DEBIAN_WORDNET, compare_reader: Path | None = None) -> Report:
    """SQuAD on the 17 held-out articles the reader never saw (qa/training/data.py): the reader
    with the gold paragraph given, beside the reference predictions on the same questions; the
    articles' v1.1 paragraphs as an open corpus (retrieval, then reader vs sentence scorer); and
    v2.0 (answer or abstain) in both settings. Every open-corpus figure is also given by the
    question's lexical overlap with its answer sentence (qa/bench/overlap.py), and again for a
    paraphrased variant of the same questions (qa/bench/paraphrase.py) when WordNet is installed.

    Args:
        folder: SQuAD v1.1 dev (paragraphs.jsonl, questions.jsonl, reference_predictions/).
        folder_v2: SQuAD v2.0 dev, same layout, with unanswerable questions.
        settings: the pipeline as configured (answers are capped at two sentences).
        report_dir: where the plots go.
        sample: score a seeded sample of this many questions of each set.
        wordnet: the WordNet 3.0 folder the paraphrases draw on; where it is missing the
            paraphrased variant is skipped, with one line saying so.
        compare_reader: another reader's folder (e.g. the previous weights, from git history),
            scored in the same pipeline beside the configured one.

    Returns:
        The report, with every table already printed.
    """
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
    variants, variants_v2 = question_variants(out, chosen, chosen_v2, paragraphs, paragraphs_v2, wordnet)
    index, keys, build = prepare_index("squad-v1.1-held-out", squad_docs(paragraphs), settings, log=out.echo)
    out.text(f"\nOpen corpus: {CACHE / 'squad-v1.1-held-out' / 'index'} ({build.documents} paragraphs as "
             f"documents, titled by article; {build.chunks} chunks, {build.sentences} sentences).")
    out.data["retrieval"] = _squad_retrieval(out, index, keys, chosen, settings)
    answerers = _answerers(settings, compare_reader)
    answers = _squad_answers(out, index, keys, variants, answerers)
    out.data["answers"] = answers["original"]
    index_v2, keys_v2, _ = prepare_index("squad-v2.0-held-out", squad_docs(paragraphs_v2), settings,
                                         log=out.echo)
    abstention = _squad_abstention(out, index_v2, keys_v2, variants_v2, len(questions_v2), answerers)
    out.data["abstention"] = abstention["original"]
    if "paraphrased" in answers:
        out.data["paraphrased"]["v1.1"]["answers"] = answers["paraphrased"]
        out.data["paraphrased"]["v2.0"]["abstention"] = abstention["paraphrased"]
    out.data["seconds"] = round(time.perf_counter() - started, 1)
    out.text(f"\nSQuAD benchmark finished in {time.perf_counter() - started:.0f} s.")
    return out


def _references(folder: Path) -> dict[str, dict[str, str]]:
    """The reference systems' predictions shipped with the data: {system: {question id: text}}."""
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


def _answerers(settings: Settings, compare_reader: Path | None = None) -> list[tuple[str, Settings]]:
    """The configured answerer first; with the reader on, the same reader over three windows
    around the sentence scorer's best sentences (the reading before whole passages) and, given
    `compare_reader`, that reader's weights in the same pipeline; then the sentence scorer."""
    s = settings.replace(max_answer_sentences=SQUAD_ANSWER_SENTENCES)
    if not s.reader:
        return [("sentence scorer", s), ("reader", s.replace(reader=True))]
    out = [("reader", s)]
    if s.reader_passages:
        out.append(("reader, 3 windows", s.replace(reader_passages=0)))
    if compare_reader is not None:
        out.append((f"reader {compare_reader.name}", s.replace(reader_model=compare_reader)))
    return [*out, ("sentence scorer", s.replace(reader=False))]


@dataclass(frozen=True)
class OpenReply:
    """What one open-corpus answer scored. `short` is its short answer ("" when it abstained)."""

    id: str
    contains_gold: bool
    abstained: bool
    confidence: float
    gold_retrieved: bool
    marked: bool
    sentences: int
    latency_ms: float
    short: str


def _ask(questions: Sequence[dict[str, Any]], index: Any, keys: dict[str, str], settings: Settings,
         desc: str) -> list[OpenReply]:
    """qa.answer on every question, scored against its gold answers and paragraph."""
    replies = []
    for q in progress(questions, settings, desc):
        started = time.perf_counter()
        reply = answer(q["question"], history=[], index=index, settings=settings)
        latency = 1000 * (time.perf_counter() - started)
        replies.append(OpenReply(
            id=q["id"], contains_gold=bool(q["answers"]) and not reply.abstained
            and contains_answer(reply.text, q["answers"]),
            abstained=reply.abstained, confidence=reply.confidence,
            gold_retrieved=any(keys[p.doc_id] == q["pid"] for p in reply.passages),
            marked=any(c.answer_start is not None for c in reply.citations),
            sentences=0 if reply.abstained else len(split_sentences(strip_markers(reply.text))),
            latency_ms=latency, short="" if reply.abstained else short_answer(reply)))
    return replies


def _v1_figures(pairs: Sequence[tuple[OpenReply, dict[str, Any]]]) -> dict[str, float]:
    """Contains gold, abstained and short-answer EM/F1 over (reply, question) pairs; NaN for none."""
    if not pairs:
        return dict.fromkeys(("answer_contains_gold", "abstained", "short_answer_em", "short_answer_f1"),
                             float("nan"))
    official = squad_scores({r.id: r.short for r, _ in pairs}, [q for _, q in pairs], "1.1")
    return {"answer_contains_gold": mean(r.contains_gold for r, _ in pairs),
            "abstained": mean(r.abstained for r, _ in pairs),
            "short_answer_em": official["exact"], "short_answer_f1": official["f1"]}


def _squad_answers(out: Report, index: Any, keys: dict[str, str], variants: Sequence[Variant],
                   answerers: Sequence[tuple[str, Settings]]) -> dict[str, dict[str, Any]]:
    """Does the cited answer (at most two sentences) contain a gold answer; how good is its
    short answer (the first marked span)? Reader and sentence scorer on the same questions, in
    each wording, overall and by overlap bucket. Returns {variant: {answerer: figures}}."""
    out.section(f"Open corpus: qa.answer with at most {SQUAD_ANSWER_SENTENCES} sentences, reader vs sentence scorer")
    results: dict[str, dict[str, Any]] = {v.name: {} for v in variants}
    rows: list[list[Any]] = []
    bucket_rows: list[list[Any]] = []
    for name, s in answerers:
        answer(variants[0].questions[0]["question"], index=index, settings=s)  # warm-up: model loads
        for v in variants:
            replies = _ask(v.questions, index, keys, s, f"answers, {name}, {v.name}")
            pairs = list(zip(replies, v.questions, strict=True))
            n = max(1, len(replies))
            retrieved = [r for r in replies if r.gold_retrieved]
            latency = [r.latency_ms for r in replies]
            r: dict[str, Any] = {
                **_v1_figures(pairs), "gold_paragraph_in_passages": len(retrieved) / n,
                "contains_gold_when_gold_paragraph_retrieved": sum(x.contains_gold for x in retrieved)
                / max(1, len(retrieved)),
                "mean_answer_sentences": mean(x.sentences for x in replies if not x.abstained),
                "max_answer_sentences": max((x.sentences for x in replies), default=0),
                "short_answer_coverage": sum(x.marked for x in replies) / n,
                "p50_ms": percentile(latency, 50), "p95_ms": percentile(latency, 95),
                "by_overlap": by_bucket(v.overlaps, pairs, _v1_figures),
            }
            results[v.name][name] = r
            label = name if v.name == "original" else f"{name}, {v.name}"
            rows.append([label, f"{100 * r['answer_contains_gold']:.1f}%", f"{100 * r['abstained']:.1f}%",
                         f"{100 * r['contains_gold_when_gold_paragraph_retrieved']:.1f}%",
                         f"{r['mean_answer_sentences']:.2f}", f"{100 * r['short_answer_coverage']:.1f}%",
                         f"{r['short_answer_em']:.1f} / {r['short_answer_f1']:.1f}",
                         f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f}"])
            for bucket, f in r["by_overlap"].items():
                bucket_rows.append([label, bucket, int(f["questions"]), _percent(f["answer_contains_gold"]),
                                    _percent(f["abstained"]), _em_f1(f["short_answer_em"], f["short_answer_f1"])])
    out.table(["answerer", "contains gold", "abstained", "contains gold, gold paragraph retrieved",
               "sentences / answer", "short answer marked", "short answer EM / F1", "p50 / p95 ms"], rows)
    out.text("Short answer: the first marked span; where none is marked, the whole answer text (official v1.1 "
             "scoring). Latency includes the question's embedding and retrieval.")
    out.text("\nBy lexical overlap with the answer sentence (each wording bucketed by its own overlap):")
    out.table(["answerer", "overlap", "questions", "contains gold", "abstained", "short answer EM / F1"], bucket_rows)
    out.threads()
    return results


def _percent(value: float) -> str:
    return "n/a" if value != value else f"{100 * value:.1f}%"


def _em_f1(em: float, f1: float) -> str:
    return "n/a" if em != em else f"{em:.1f} / {f1:.1f}"


def _v2_figures(pairs: Sequence[tuple[OpenReply, dict[str, Any]]]) -> dict[str, float]:
    """Confidence ROC AUC (answerable vs not) and the abstention rates over (reply, question)
    pairs; NaN where a class is empty."""
    pos = np.asarray([bool(q["answers"]) for _, q in pairs], dtype=bool)
    did = np.asarray([not r.abstained for r, _ in pairs], dtype=bool)
    ok = np.asarray([r.contains_gold for r, _ in pairs], dtype=bool)
    return {
        "answerable": int(pos.sum()), "unanswerable": int((~pos).sum()),
        "roc_auc": roc_auc([r.confidence for r, _ in pairs], pos),
        "answered_when_answerable": float(did[pos].mean()) if pos.any() else float("nan"),
        "abstained_when_unanswerable": float((~did[~pos]).mean()) if (~pos).any() else float("nan"),
        "contains_gold_when_answerable": float(ok[pos].mean()) if pos.any() else float("nan"),
    }


def _squad_abstention(out: Report, index: Any, keys: dict[str, str], variants: Sequence[Variant],
                      total: int, answerers: Sequence[tuple[str, Settings]]) -> dict[str, dict[str, Any]]:
    """SQuAD v2.0 as an open corpus: answer the answerable, abstain on the rest; how well the
    confidence separates them, for the reader and the sentence scorer, in each wording, overall
    and by overlap bucket. Returns {variant: {answerer: figures}}."""
    out.section("Open corpus, SQuAD v2.0 (answer or abstain), reader vs sentence scorer")
    questions = variants[0].questions
    out.text("Questions scored: " + (f"all {len(questions)}." if len(questions) == total else
             f"a seeded sample of {len(questions)} (seed {SAMPLE_SEED}) of {total}."))
    results: dict[str, dict[str, Any]] = {v.name: {} for v in variants}
    rows: list[list[Any]] = []
    bucket_rows: list[list[Any]] = []
    for name, s in answerers:
        threshold = effective_threshold(s)
        for v in variants:
            replies = _ask(v.questions, index, keys, s, f"v2.0 answers, {name}, {v.name}")
            pairs = list(zip(replies, v.questions, strict=True))
            conf = np.asarray([r.confidence for r in replies])
            pos = np.asarray([bool(q["answers"]) for q in v.questions], dtype=bool)
            ok = np.asarray([r.contains_gold for r in replies], dtype=bool)
            did = np.asarray([not r.abstained for r in replies], dtype=bool)
            accuracy = float(np.where(pos, ok, ~did).mean()) if len(pos) else float("nan")
            official = squad_scores({r.id: r.short for r in replies}, v.questions, "2.0")
            r: dict[str, Any] = {
                **_v2_figures(pairs), "average_precision": average_precision(conf, pos), "threshold": threshold,
                "v2_accuracy": accuracy, "official_em_f1": official,
                "by_overlap": by_bucket(v.overlaps, pairs, _v2_figures)}
            results[v.name][name] = r
            label = name if v.name == "original" else f"{name}, {v.name}"
            rows.append([label, f"{r['roc_auc']:.3f}", f"{threshold:.3f}",
                         _percent(r["answered_when_answerable"]), _percent(r["abstained_when_unanswerable"]),
                         _percent(r["contains_gold_when_answerable"]), _percent(accuracy),
                         f"{official['exact']:.1f} / {official['f1']:.1f}"])
            for bucket, f in r["by_overlap"].items():
                bucket_rows.append([label, bucket, f"{int(f['answerable'])} / {int(f['unanswerable'])}",
                                    f["roc_auc"], _percent(f["answered_when_answerable"]),
                                    _percent(f["abstained_when_unanswerable"]),
                                    _percent(f["contains_gold_when_answerable"])])
            if v.name == "original":
                _abstention_plot(out.folder, _threshold_curve(conf, pos, ok), threshold, r["roc_auc"],
                                 len(v.questions), name)
    out.table(["answerer", "confidence ROC AUC", "threshold", "answered, answerable", "abstained, unanswerable",
               "contains gold, answerable", "accuracy (v2 rule)", "short answer EM / F1"], rows)
    out.text("AUC 0.5 is chance. SQuAD v2.0's unanswerable questions were written against the same paragraph "
             "as answerable ones, so they look relevant to a retriever by design. Always abstaining scores EM/F1 "
             f"{100 * float(np.mean([not q['answers'] for q in questions])):.1f} on these questions.")
    out.text("\nBy lexical overlap with the answer sentence (an unanswerable question: with its paragraph's "
             "best-overlap sentence; each wording bucketed by its own overlap):")
    out.table(["answerer", "overlap", "answerable / unanswerable", "confidence ROC AUC", "answered, answerable",
               "abstained, unanswerable", "contains gold, answerable"], bucket_rows)
    return results


def _threshold_curve(conf: np.ndarray, pos: np.ndarray, ok: np.ndarray) -> list[tuple[float, ...]]:
    """For each threshold: precision and recall of "answered", answered with gold inside, v2 accuracy."""
    curve: list[tuple[float, ...]] = []
    for t in np.unique(conf):
        take = conf >= t
        n_take = int(take.sum())
        curve.append((float(t), float((take & pos).sum() / n_take) if n_take else 1.0,
                      float((take & pos).sum() / max(1, pos.sum())),
                      float((take & ok).sum() / n_take) if n_take else 1.0,
                      float(np.where(pos, ok & take, ~take).mean())))
    return curve


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
    fig.savefig(folder / f"squad2_abstention_{re.sub(r'[^A-Za-z0-9]+', '_', name).strip('_')}.png", dpi=120)
    plt.close(fig)


def run(job: BenchRun) -> Report:
    """`qa bench squad` (qa.bench.registry): with --data pointing at v1.1, v2.0 is looked for beside it."""
    folder = data_folder("squad", job.data)
    v2 = folder.parent / FOLDERS["squad2"] if job.data is not None else None
    return bench_squad(folder, data_folder("squad2", v2), job.settings, job.report_dir, sample=job.sample,
                       echo=job.echo, compare_reader=job.compare_reader)
