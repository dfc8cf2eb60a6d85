"""`run_eval`: the whole pipeline scored over a QA set, as typed results.

Retrieval (every mode), answers, citations, abstention and latency are computed here; the
report (qa/evaluation/report.py) only reads the `EvalResult`, and only the CLI prints.
"""

# About 590 lines in one module: the typed results, the metrics that fill them and the run that
# produces them change together (a new figure is a field, its metric and its line in `_run`);
# the report (qa/evaluation/report.py) only reads them.

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from tqdm import tqdm

from qa.answerability import effective_threshold
from qa.answers import answer
from qa.chat import standalone_query
from qa.config import MODES, Settings
from qa.errors import IndexMissingError
from qa.evaluation.dataset import KINDS, QAPair, QASetError, load_qa_set, set_role
from qa.evaluation.metrics import (
    LatencySummary,
    Located,
    contains_answer,
    exact_match,
    hit_at_k,
    latency_summary,
    ndcg_at_k,
    overlaps,
    recall_at_k,
    reciprocal_rank,
    relevance,
    roc_auc,
    strip_markers,
    token_f1,
)
from qa.index import build_index, load_index
from qa.retrieval import retrieve
from qa.runtime import thread_report

if TYPE_CHECKING:
    from qa.index import Index
    from qa.types import Answer, Citation

RETRIEVAL_K = 10


@dataclass(frozen=True)
class RetrievalScores:
    """Ranking metrics of one ranked list (or their means over a set), k = 10 at most."""

    hit_1: float
    hit_3: float
    hit_5: float
    hit_10: float
    recall_5: float
    recall_10: float
    mrr_10: float
    ndcg_10: float
    latency_ms: float = 0.0


@dataclass(frozen=True)
class AnswerRecord:
    """What one answer scored; the inputs of every answer, citation and abstention metric."""

    id: str
    kind: str
    answerable: bool
    abstained: bool
    correct: bool
    exact_match: float = 0.0
    f1: float = 0.0
    citations: int = 0
    citations_correct: int = 0
    citations_verbatim: int = 0
    confidence: float | None = None
    latency_ms: float = 0.0
    text: str = ""
    short_answer: str = ""
    golds: tuple[str, ...] = ()
    query: str = ""
    status: str = ""
    marked: bool = False           # a citation marks a short answer
    first_right: bool = False      # the first quoted sentence holds the answer (answerable only)
    retrieval: dict[str, RetrievalScores] = field(default_factory=dict)
    first_cites_evidence: bool = False   # the first citation overlaps an evidence span


@dataclass(frozen=True)
class AnswerMetrics:
    """Answer quality over a run.

    `accuracy`: answerable questions answered with a gold answer contained; `exact_match` and
    `f1`: SQuAD, on the short answer (abstaining scores 0); `wrong_answers`: answerable
    questions answered without a gold answer; `answered_unanswerable`: the corpus does not
    answer, the system answered anyway; `false_abstentions`: abstained on an answerable
    question; `overall_accuracy`: answerable answered correctly plus unanswerable abstained on,
    over all questions.
    """

    questions: int
    answerable: int
    accuracy: float
    exact_match: float
    f1: float
    wrong_answers: int
    answered_unanswerable: int
    false_abstentions: int
    overall_accuracy: float


@dataclass(frozen=True)
class CitationMetrics:
    """Citation quality. `precision`: correct citations / citations given to answerable
    questions; `recall`: answerable questions with at least one correct citation; `verbatim`:
    citations whose quote is exactly `source[start:end]`; `per_answer`: mean per answer given."""

    precision: float
    recall: float
    verbatim: float
    per_answer: float


@dataclass(frozen=True)
class AbstentionMetrics:
    """Abstention as a classifier whose positive class is "abstained on an unanswerable question"."""

    precision: float
    recall: float
    f1: float
    abstained: int
    unanswerable: int
    correct_abstentions: int


class SweepRow(NamedTuple):
    """The answer and abstention scores if every answer below `threshold` confidence abstained."""

    threshold: float
    abstention_precision: float
    abstention_recall: float
    answer_accuracy: float
    overall_accuracy: float
    wrong_answers: int        # answerable answered wrongly + unanswerable answered
    false_abstentions: int


class AbstentionCalibration(NamedTuple):
    """The threshold with the best overall accuracy, and the whole sweep behind it."""

    threshold: float
    rows: list[SweepRow]


@dataclass(frozen=True)
class KindScores:
    """How one kind of question fared: share correct and retrieval hit@5 (answerable only)."""

    questions: int
    correct: float
    hit_5: float | None


@dataclass(frozen=True)
class Answerer:
    """One way of composing answers, scored on the same questions in the same run."""

    name: str
    answers: AnswerMetrics
    citations: CitationMetrics
    abstention: AbstentionMetrics
    sentences_per_answer: float    # citations per answer given (one citation per quoted sentence)
    marked_spans: float            # answers given whose citation marks a short answer
    latency: LatencySummary
    # Answerable questions answered whose first quote holds the answer (overlaps the evidence or
    # contains a gold answer): is the right sentence the one read first?
    gold_sentence_first: float = 0.0


@dataclass(frozen=True)
class SetFigures:
    """The figures sets are compared by, side by side (`qa eval --set A --set B`).

    `correct`: answerable questions answered with a gold answer contained (= `AnswerMetrics.accuracy`);
    `gold_sentence_cited`: answerable questions whose first citation overlaps an evidence span
    (an abstention misses); `false_abstentions`: share of answerable questions abstained on;
    `abstained_unanswerable`: share of unanswerable ones abstained on; `confidence_roc_auc`:
    `Answer.confidence`, answerable (positive) vs not (NaN without both);
    `quotes_hold_answer_no_abstention`: with `abstain_threshold = 0`, answerable questions whose
    quoted sentences hold a gold answer, where `still_abstained` of them were refused anyway (the
    reader abstains when no window it read holds a span). The last two are None where that run
    was not made; a share over no questions is NaN.
    """

    answerable: int
    unanswerable: int
    correct: float
    gold_sentence_cited: float
    false_abstentions: float
    abstained_unanswerable: float
    confidence_roc_auc: float
    quotes_hold_answer_no_abstention: float | None = None
    still_abstained: int | None = None


@dataclass(frozen=True)
class EvalResult:
    """Everything `qa eval` measured; `report.py` writes it, the CLI prints its summary."""

    qa_set: str
    questions: int
    kinds: dict[str, int]
    settings: dict[str, Any]
    threads: dict[str, str]
    retrieval: dict[str, RetrievalScores]
    answers: AnswerMetrics
    citations: CitationMetrics
    abstention: AbstentionMetrics
    answer_latency: LatencySummary
    retrieval_latency: dict[str, LatencySummary]
    by_kind: dict[str, KindScores]
    sweep: AbstentionCalibration
    records: tuple[AnswerRecord, ...]
    # The settings' answerer first, then the other one (reader vs sentence scorer).
    answerers: tuple[Answerer, ...] = ()
    # What the set is for ("TEST set: nothing fitted or chosen on it", ...; `dataset.set_role`).
    role: str = ""
    figures: SetFigures | None = None

    def failures(self, kind: str) -> list[AnswerRecord]:
        """The records of one kind of failure: "answered_unanswerable", "wrong_answers" or
        "false_abstentions"."""
        if kind == "answered_unanswerable":
            return [r for r in self.records if not r.answerable and not r.abstained]
        if kind == "wrong_answers":
            return [r for r in self.records if r.answerable and not r.abstained and not r.correct]
        if kind == "false_abstentions":
            return [r for r in self.records if r.answerable and r.abstained]
        raise ValueError(f"Invalid failure kind {kind!r}.")


# ---- one question ---------------------------------------------------------------------------

def retrieval_scores(items: Sequence[Located], evidence: Sequence[Located], n_relevant: int) -> RetrievalScores:
    """Every ranking metric of one ranked list: hit@1/3/5/10, recall@5/10, MRR@10 and nDCG@10."""
    rel = relevance(items, evidence)
    return RetrievalScores(
        hit_at_k(rel, 1), hit_at_k(rel, 3), hit_at_k(rel, 5), hit_at_k(rel, 10),
        recall_at_k(items, evidence, 5), recall_at_k(items, evidence, 10),
        reciprocal_rank(rel, 10), ndcg_at_k(rel, n_relevant, 10))


def short_answer(reply: Answer) -> str:
    """The short answer marked inside the first citation that has one, else the answer text."""
    for c in reply.citations:
        if c.answer_start is not None and c.answer_end is not None and c.start <= c.answer_start < c.answer_end:
            return c.quote[c.answer_start - c.start:c.answer_end - c.start]
    return "" if reply.abstained else strip_markers(reply.text)


def citation_is_correct(citation: Citation, evidence: Sequence[Located], golds: Sequence[str]) -> bool:
    """A citation is right when it overlaps an evidence span or its quote contains a gold answer."""
    return any(overlaps(citation, span) for span in evidence) or contains_answer(citation.quote, golds)


def score_answer(pair: QAPair, reply: Answer, sources: Mapping[str, str], latency_ms: float) -> AnswerRecord:
    """Score one reply against its QA pair.

    `correct` means: for an answerable question, not abstained and a gold answer is contained in
    the answer text; for an unanswerable one, abstained. `sources` maps doc_id to the full source
    text, to check each quote is verbatim.
    """
    answered = not reply.abstained
    correct = (answered and contains_answer(reply.text, pair.answers)) if pair.answerable else reply.abstained
    short = short_answer(reply)
    right = sum(citation_is_correct(c, pair.evidence, pair.answers) for c in reply.citations) if pair.answerable else 0
    verbatim = sum(sources.get(c.doc_id, "")[c.start:c.end] == c.quote for c in reply.citations)
    return AnswerRecord(
        id=pair.id, kind=pair.kind, answerable=pair.answerable, abstained=reply.abstained, correct=correct,
        exact_match=exact_match(short, pair.answers) if pair.answerable and answered else 0.0,
        f1=token_f1(short, pair.answers) if pair.answerable and answered else 0.0,
        citations=len(reply.citations), citations_correct=right, citations_verbatim=verbatim,
        confidence=float(reply.confidence), latency_ms=latency_ms, text=reply.text, short_answer=short,
        golds=pair.answers, query=reply.query, status=reply.status,
        marked=any(c.answer_start is not None for c in reply.citations),
        first_right=bool(pair.answerable and answered and reply.citations
                         and citation_is_correct(reply.citations[0], pair.evidence, pair.answers)),
        first_cites_evidence=bool(pair.answerable and answered and reply.citations
                                  and any(overlaps(reply.citations[0], span) for span in pair.evidence)),
    )


# ---- aggregates -----------------------------------------------------------------------------

def answer_metrics(records: Sequence[AnswerRecord]) -> AnswerMetrics:
    """Answer quality over a run (see `AnswerMetrics`)."""
    answerable = [r for r in records if r.answerable]
    n = max(len(answerable), 1)
    return AnswerMetrics(
        questions=len(records),
        answerable=len(answerable),
        accuracy=sum(r.correct for r in answerable) / n,
        exact_match=sum(r.exact_match for r in answerable) / n,
        f1=sum(r.f1 for r in answerable) / n,
        wrong_answers=sum(not r.abstained and not r.correct for r in answerable),
        answered_unanswerable=sum(not r.answerable and not r.abstained for r in records),
        false_abstentions=sum(r.abstained for r in answerable),
        overall_accuracy=sum(r.correct for r in records) / max(len(records), 1),
    )


def citation_metrics(records: Sequence[AnswerRecord]) -> CitationMetrics:
    """Citation quality over the answerable questions (see `CitationMetrics`); citations on
    unanswerable questions are judged by the abstention metrics instead."""
    answerable = [r for r in records if r.answerable]
    given = sum(r.citations for r in answerable)
    total = sum(r.citations for r in records)
    answered = [r for r in records if not r.abstained]
    return CitationMetrics(
        precision=sum(r.citations_correct for r in answerable) / given if given else 0.0,
        recall=sum(r.citations_correct > 0 for r in answerable) / max(len(answerable), 1),
        verbatim=sum(r.citations_verbatim for r in records) / total if total else 1.0,
        per_answer=sum(r.citations for r in answered) / len(answered) if answered else 0.0,
    )


def abstention_metrics(records: Sequence[AnswerRecord]) -> AbstentionMetrics:
    """Precision (abstentions that were on unanswerable questions / all abstentions), recall
    (unanswerable questions abstained on / all unanswerable ones), F1 and the counts."""
    true_pos = sum(r.abstained and not r.answerable for r in records)
    abstained = sum(r.abstained for r in records)
    unanswerable = sum(not r.answerable for r in records)
    precision = true_pos / abstained if abstained else 0.0
    recall = true_pos / unanswerable if unanswerable else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return AbstentionMetrics(precision, recall, f1, abstained, unanswerable, true_pos)


def set_figures(records: Sequence[AnswerRecord],
                open_records: Sequence[AnswerRecord] | None = None) -> SetFigures:
    """The figures sets are compared by (see `SetFigures`).

    Args:
        records: the run as configured.
        open_records: the same questions run with `abstain_threshold = 0`, if made.
    """
    answerable = [r for r in records if r.answerable]
    unanswerable = [r for r in records if not r.answerable]
    scored = [r for r in records if r.confidence is not None]
    open_answerable = [r for r in open_records or () if r.answerable]

    def share(flags: Sequence[bool]) -> float:
        return sum(flags) / len(flags) if flags else float("nan")

    return SetFigures(
        answerable=len(answerable), unanswerable=len(unanswerable),
        correct=share([r.correct for r in answerable]),
        gold_sentence_cited=share([r.first_cites_evidence for r in answerable]),
        false_abstentions=share([r.abstained for r in answerable]),
        abstained_unanswerable=share([r.abstained for r in unanswerable]),
        confidence_roc_auc=roc_auc([float(r.confidence or 0.0) for r in scored], [r.answerable for r in scored]),
        quotes_hold_answer_no_abstention=share([r.correct for r in open_answerable])
        if open_records is not None else None,
        still_abstained=sum(r.abstained for r in open_answerable) if open_records is not None else None,
    )


def calibrate_abstention(records: Sequence[AnswerRecord], thresholds: Sequence[float] | None = None
                         ) -> AbstentionCalibration:
    """Sweep an abstain threshold over recorded answers: below it, an answer would have abstained.

    An abstained answer has no text to score, so the sweep is exact only for thresholds at or
    above the one the records were made with. To calibrate from scratch, run `qa eval` with
    `abstain_threshold = 0.0` and sweep its `records`.

    Args:
        records: per-question records carrying `confidence`.
        thresholds: candidates; default: 0 and every distinct confidence seen.

    Returns:
        The threshold with the best overall accuracy (the lowest one on ties) and every row.
    """
    if thresholds is None:
        thresholds = sorted({0.0} | {r.confidence for r in records if r.confidence is not None})
    rows = []
    for t in thresholds:
        swept = [_abstain_below(r, t) for r in records]
        a, b = answer_metrics(swept), abstention_metrics(swept)
        rows.append(SweepRow(float(t), b.precision, b.recall, a.accuracy, a.overall_accuracy,
                             a.wrong_answers + a.answered_unanswerable, a.false_abstentions))
    best = max(rows, key=lambda row: (row.overall_accuracy, -row.threshold)) if rows else None
    return AbstentionCalibration(best.threshold if best else 0.0, rows)


def _abstain_below(record: AnswerRecord, threshold: float) -> AnswerRecord:
    if record.abstained or record.confidence is None or record.confidence >= threshold:
        return record
    return AnswerRecord(record.id, record.kind, record.answerable, abstained=True,
                        correct=not record.answerable, confidence=record.confidence)


def load_records(metrics_json: str | Path) -> list[AnswerRecord]:
    """The per-question records of a `metrics.json` written by `qa eval`, for `calibrate_abstention`.

    Raises:
        QASetError: the file is missing or holds no records.
    """
    try:
        rows = json.loads(Path(metrics_json).read_text(encoding="utf-8"))["records"]
        return [AnswerRecord(**{**row, "golds": tuple(row["golds"]),
                                "retrieval": {m: RetrievalScores(**s) for m, s in row["retrieval"].items()}})
                for row in rows]
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise QASetError(f"No per-question records in {metrics_json} ({exc}). Run `qa eval` first.") from exc


def to_json(result: EvalResult) -> dict[str, Any]:
    """The JSON form of a result (`metrics.json`): the same names, failures listed by id."""
    data = asdict(result)
    data["sweep"] = {"best_threshold": result.sweep.threshold,
                     "note": "exact for thresholds >= the one used (see calibrate_abstention)",
                     "rows": [row._asdict() for row in result.sweep.rows]}
    data["failures"] = {kind: [r.id for r in result.failures(kind)]
                        for kind in ("answered_unanswerable", "wrong_answers", "false_abstentions")}
    for row in data["records"]:
        row["text"] = " ".join(row["text"].split())
    return data


# ---- the run --------------------------------------------------------------------------------

def run_eval(qa_set: Path, settings: Settings, log: Callable[[str], None] | None = None, *,
             abstention_off: bool = True) -> EvalResult:
    """Score retrieval (every mode), answers, citations, abstention and latency on a QA set.

    Builds the index from `settings.corpus` first when there is none at `settings.index`. With
    `abstention_off`, the set is also answered with `abstain_threshold = 0`, for
    `SetFigures.quotes_hold_answer_no_abstention`.

    Raises:
        QASetError: the set is missing or malformed, or cites documents the index lacks.
        QAError: the index cannot be built or read.
    """
    pairs = load_qa_set(qa_set)
    index = _ensure_index(settings, log)
    sources = _check_against_index(pairs, index, qa_set, settings)
    records = _run(pairs, index, sources, settings)
    answerable = [r for r in records if r.answerable]
    retrieval = {mode: _mean_scores([r.retrieval[mode] for r in answerable]) for mode in MODES}
    groups: dict[str, list[AnswerRecord]] = defaultdict(list)
    for r in records:
        groups[r.kind].append(r)
    by_kind = {}
    for kind in sorted(groups, key=lambda k: KINDS.index(k) if k in KINDS else len(KINDS)):
        group = groups[kind]
        hits = [r.retrieval[settings.mode].hit_5 for r in group if r.answerable]
        by_kind[kind] = KindScores(len(group), sum(r.correct for r in group) / len(group),
                                   float(np.mean(hits)) if hits else None)
    threshold = effective_threshold(settings)
    sweep = calibrate_abstention(records, sorted({threshold} | {
        round(float(t), 2) for t in np.arange(0.0, 1.0001, 0.05) if t >= threshold}))
    other = settings.replace(reader=not settings.reader)
    other_records = _run(pairs, index, sources, other, retrieval=False)
    answerers = tuple(answerer_scores(name, recs) for name, recs in (
        (answerer_name(settings), records), (answerer_name(other), other_records)))
    open_records = _run(pairs, index, sources, settings.replace(abstain_threshold=0.0), retrieval=False) \
        if abstention_off else None
    return EvalResult(
        qa_set=str(qa_set), questions=len(pairs), kinds=dict(Counter(p.kind for p in pairs)),
        settings={k: getattr(settings, k) for k in (
            "mode", "model", "chunk_tokens", "chunk_overlap_tokens", "top_k", "candidates", "dense_weight",
            "sentence_weight", "max_answer_sentences", "reader", "abstain_threshold", "threads")}
        | {"abstain_threshold": threshold},
        threads=thread_report(), retrieval=retrieval, answers=answer_metrics(records),
        citations=citation_metrics(records), abstention=abstention_metrics(records),
        answer_latency=latency_summary([r.latency_ms for r in records]),
        retrieval_latency={m: latency_summary([r.retrieval[m].latency_ms for r in records]) for m in MODES},
        by_kind=by_kind, sweep=sweep, records=tuple(records), answerers=answerers,
        role=set_role(qa_set), figures=set_figures(records, open_records),
    )


def answerer_name(settings: Settings) -> str:
    return "reader" if settings.reader else "sentence scorer"


def answerer_scores(name: str, records: Sequence[AnswerRecord]) -> Answerer:
    answered = [r for r in records if not r.abstained]
    return Answerer(
        name=name, answers=answer_metrics(records), citations=citation_metrics(records),
        abstention=abstention_metrics(records),
        sentences_per_answer=float(np.mean([r.citations for r in answered])) if answered else 0.0,
        marked_spans=float(np.mean([r.marked for r in answered])) if answered else 0.0,
        latency=latency_summary([r.latency_ms for r in records]),
        gold_sentence_first=float(np.mean([r.first_right for r in answered if r.answerable]))
        if any(r.answerable for r in answered) else 0.0)


def _mean_scores(scores: Sequence[RetrievalScores]) -> RetrievalScores:
    if not scores:
        return RetrievalScores(0, 0, 0, 0, 0, 0, 0, 0)
    rows = [asdict(s) for s in scores]
    return RetrievalScores(**{k: float(np.mean([row[k] for row in rows])) for k in rows[0]})


def _ensure_index(settings: Settings, log: Callable[[str], None] | None) -> Index:
    try:
        return load_index(settings.index)
    except IndexMissingError:
        if log is not None:
            log(f"No index at {settings.index}; building it from {settings.corpus}.")
        build_index(settings=settings, log=log)
        return load_index(settings.index)


def _check_against_index(pairs: Sequence[QAPair], index: Index, qa_set: Path, settings: Settings) -> dict[str, str]:
    """Source texts of the indexed documents; every evidence document must be indexed, spans in range."""
    missing = sorted({s.doc_id for p in pairs for s in p.evidence} - set(index.documents))
    if missing:
        raise QASetError(
            f"QA set {qa_set} cites document(s) the index at {index.path} lacks: {', '.join(missing[:5])}. "
            "Index the corpus the set was written over (qa eval --corpus DIR, or qa index --corpus DIR)."
        )
    sources = {}
    # The corpus the index was built from holds the text its offsets point into.
    roots = [Path(index.manifest.corpus)] if index.manifest.corpus else []
    for doc_id in index.documents:
        sources[doc_id] = ""
        for root in (*roots, settings.corpus):
            if (root / doc_id).is_file():
                sources[doc_id] = (root / doc_id).read_text(encoding="utf-8", errors="replace")
                break
    for p in pairs:
        for s in p.evidence:
            if s.end > index.documents[s.doc_id].chars:
                raise QASetError(f"QA set {qa_set}, {p.id}: evidence {s.doc_id} {s.start}-{s.end} runs past "
                                 "the end of the document. Recompute the offsets.")
    return sources


def _run(pairs: Sequence[QAPair], index: Index, sources: Mapping[str, str], settings: Settings,
         retrieval: bool = True) -> list[AnswerRecord]:
    history_cache: dict[tuple[str, ...], list[dict[str, str]]] = {}

    def history_messages(turns: tuple[str, ...]) -> list[dict[str, str]]:
        # Each earlier turn is answered with the turns before it, as a person would have seen it.
        if turns not in history_cache:
            before = history_messages(turns[:-1]) if len(turns) > 1 else []
            reply = answer(turns[-1], history=list(before), index=index, settings=settings)
            history_cache[turns] = [*before, {"role": "user", "content": turns[-1]},
                                    {"role": "assistant", "content": reply.text}]
        return history_cache[turns]

    # Warm up (model load, first-call allocations) so latencies measure steady-state questions.
    retrieve(pairs[0].question, k=RETRIEVAL_K, index=index, settings=settings)
    answer(pairs[0].question, history=[], index=index, settings=settings)

    records = []
    for pair in tqdm(pairs, desc=f"qa eval ({answerer_name(settings)})", unit="question",
                     disable=not settings.show_progress):
        query = standalone_query(pair.question, pair.history[-settings.history_turns:])
        n_relevant = sum(any(overlaps(c, s) for s in pair.evidence) for c in index.chunks)
        per_mode: dict[str, RetrievalScores] = {}
        for mode in MODES if retrieval else ():
            started = time.perf_counter()
            passages = retrieve(query, k=RETRIEVAL_K, index=index, mode=mode, settings=settings)
            elapsed = (time.perf_counter() - started) * 1000
            scores = retrieval_scores(passages, pair.evidence, n_relevant) if pair.answerable \
                else RetrievalScores(0, 0, 0, 0, 0, 0, 0, 0)
            per_mode[mode] = replace(scores, latency_ms=elapsed)
        history = history_messages(pair.history) if pair.history else []
        started = time.perf_counter()
        reply = answer(pair.question, history=history, index=index, settings=settings)
        elapsed = (time.perf_counter() - started) * 1000
        records.append(replace(score_answer(pair, reply, sources, elapsed), retrieval=per_mode))
    return records
