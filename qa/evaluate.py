"""Scores for the whole pipeline over a hand-written QA set: retrieval, answers, citations,
abstention and latency; `qa.eval_report` writes them as a Markdown report, a JSON file and plots.

Labels are character spans in the source files, not chunk ids, so they survive re-chunking: a
retrieved passage (or a citation) is relevant when its `[start, end)` overlaps an evidence span
of the same document.

The set is JSON lines, one question per line:

    {"id": "q001", "question": "...", "history": ["earlier user turn", ...],
     "answerable": true, "answers": ["gold string", ...],
     "evidence": [{"doc_id": "001_x.txt", "start": 0, "end": 120}], "kind": "fact"}
"""

from __future__ import annotations

import json
import math
import re
import string
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np
from tqdm import tqdm

from qa.config import MODES, Settings
from qa.errors import QAError
from qa.eval_report import write_report

if TYPE_CHECKING:
    from qa.index import Index
    from qa.types import Answer, Citation

RETRIEVAL_K = 10
KINDS = ("fact", "number", "date", "name", "paraphrase", "multi_doc", "follow_up", "unanswerable")
_MARKER = re.compile(r"\s*\[\d+\]")
_PUNCTUATION = frozenset(string.punctuation)  # SQuAD's: ASCII only


class QASetError(QAError):
    """The QA set file is missing, is not valid JSON lines, or does not match the corpus."""


class Located(Protocol):
    """Anything with a place in a source file: a passage, a citation, a chunk, an evidence span."""

    @property
    def doc_id(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


@dataclass(frozen=True)
class Span:
    """A gold evidence span: `source[start:end]` states the answer."""

    doc_id: str
    start: int
    end: int


@dataclass(frozen=True)
class QAPair:
    """One question of the set; `history` holds the earlier user turns of a dialogue."""

    id: str
    question: str
    answerable: bool
    answers: tuple[str, ...] = ()
    evidence: tuple[Span, ...] = ()
    history: tuple[str, ...] = ()
    kind: str = "fact"


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
    retrieval: dict[str, dict[str, float]] = field(default_factory=dict)


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


# ---- the QA set ---------------------------------------------------------------------------

def load_qa_set(path: str | Path) -> list[QAPair]:
    """Read and check a QA set (JSON lines; see the module docstring for the schema).

    Raises:
        QASetError: the file is missing, a line is not JSON or breaks the schema (the message
            names the line number), or two questions share an id.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise QASetError(f"QA set not found: {path}. Pass an existing JSONL file with --set.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise QASetError(f"QA set {path} cannot be read ({exc}). Pass a UTF-8 JSONL file with --set.") from exc
    pairs: list[QAPair] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QASetError(f"{where} is not valid JSON ({exc.msg}). Each line must be one JSON object.") from exc
        pair = _pair_from_row(row, where)
        if pair.id in seen:
            raise QASetError(f"{where}: duplicate id {pair.id!r}. Give every question its own id.")
        seen.add(pair.id)
        pairs.append(pair)
    if not pairs:
        raise QASetError(f"QA set {path} holds no questions. Add one JSON object per line.")
    return pairs


def _pair_from_row(row: Any, where: str) -> QAPair:
    if not isinstance(row, dict):
        raise QASetError(f"{where} is a JSON {type(row).__name__}, not an object.")
    for key in ("id", "question"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise QASetError(f"{where}: {key!r} must be a non-empty string.")
    answerable = row.get("answerable", True)
    if not isinstance(answerable, bool):
        raise QASetError(f"{where}: 'answerable' must be true or false, not {answerable!r}.")
    answers = row.get("answers", [])
    history = row.get("history", [])
    for key, value in (("answers", answers), ("history", history)):
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise QASetError(f"{where}: {key!r} must be a list of non-empty strings.")
    evidence = []
    for item in row.get("evidence", []):
        ok = (isinstance(item, dict) and isinstance(item.get("doc_id"), str)
              and all(isinstance(item.get(k), int) for k in ("start", "end")) and 0 <= item["start"] < item["end"])
        if not ok:
            raise QASetError(f"{where}: evidence {item!r} must be {{'doc_id': str, 'start': int, 'end': int}} "
                             "with 0 <= start < end.")
        evidence.append(Span(item["doc_id"], item["start"], item["end"]))
    if answerable and not (answers and evidence):
        raise QASetError(f"{where}: an answerable question needs 'answers' and 'evidence'.")
    kind = row.get("kind", "fact" if answerable else "unanswerable")
    if kind not in KINDS:
        raise QASetError(f"{where}: invalid kind {kind!r}. Choose from {', '.join(KINDS)}.")
    return QAPair(row["id"], row["question"], answerable, tuple(answers), tuple(evidence), tuple(history), kind)


# ---- retrieval ----------------------------------------------------------------------------

def overlaps(item: Located, span: Located) -> bool:
    """Whether two half-open character ranges of the same document share at least one character."""
    return item.doc_id == span.doc_id and item.start < span.end and span.start < item.end


def relevance(items: Iterable[Located], evidence: Sequence[Located]) -> list[bool]:
    """For each retrieved item in rank order, whether it overlaps any evidence span."""
    return [any(overlaps(item, span) for span in evidence) for item in items]


def hit_at_k(relevant: Sequence[bool], k: int) -> float:
    """1.0 when any of the first `k` results is relevant, else 0.0."""
    return float(any(relevant[:k]))


def recall_at_k(items: Sequence[Located], evidence: Sequence[Located], k: int) -> float:
    """The share of the evidence spans that at least one of the first `k` results overlaps.

    Counted over spans, not chunks: a question whose answer is stated in two documents scores
    0.5 when only one of them is retrieved, however many chunks of that one come back.
    """
    if not evidence:
        return 0.0
    top = items[:k]
    return sum(any(overlaps(item, span) for item in top) for span in evidence) / len(evidence)


def reciprocal_rank(relevant: Sequence[bool], k: int = RETRIEVAL_K) -> float:
    """1 / rank of the first relevant result within the first `k`, or 0.0 when there is none."""
    for rank, rel in enumerate(relevant[:k], 1):
        if rel:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(relevant: Sequence[bool], n_relevant: int, k: int = RETRIEVAL_K) -> float:
    """Normalized discounted cumulative gain with binary relevance.

    Args:
        relevant: relevance of each result in rank order.
        n_relevant: how many items in the whole collection are relevant (here: the index chunks
            that overlap an evidence span); the ideal ranking puts `min(n_relevant, k)` of them first.
        k: the cut-off.

    Returns:
        DCG@k / IDCG@k in [0, 1], with gain 1 / log2(rank + 1); 0.0 when nothing is relevant.
    """
    ideal = min(n_relevant, k)
    if ideal <= 0:
        return 0.0
    dcg = sum(1.0 / math.log2(rank + 1) for rank, rel in enumerate(relevant[:k], 1) if rel)
    idcg = sum(1.0 / math.log2(rank + 1) for rank in range(1, ideal + 1))
    return dcg / idcg


def retrieval_scores(items: Sequence[Located], evidence: Sequence[Located], n_relevant: int) -> dict[str, float]:
    """Every retrieval metric of one ranked list: hit@1/3/5/10, recall@5/10, MRR@10 and nDCG@10."""
    rel = relevance(items, evidence)
    scores = {f"hit@{k}": hit_at_k(rel, k) for k in (1, 3, 5, 10)}
    scores.update({f"recall@{k}": recall_at_k(items, evidence, k) for k in (5, 10)})
    scores["mrr@10"] = reciprocal_rank(rel, 10)
    scores["ndcg@10"] = ndcg_at_k(rel, n_relevant, 10)
    return scores


# ---- answers (official SQuAD v1.1 normalization) -------------------------------------------

def normalize_answer(text: str) -> str:
    """Lower case, drop ASCII punctuation, the articles a/an/the and extra whitespace (SQuAD v1.1)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalized prediction equals a normalized gold answer (the best over golds)."""
    return max((float(normalize_answer(prediction) == normalize_answer(g)) for g in golds), default=0.0)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD token-overlap F1 between prediction and gold, the best over golds."""
    pred = normalize_answer(prediction).split()
    best = 0.0
    for gold in golds:
        truth = normalize_answer(gold).split()
        same = sum((Counter(pred) & Counter(truth)).values())
        if same:
            precision, recall = same / len(pred), same / len(truth)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains_answer(text: str, golds: Sequence[str]) -> bool:
    """Whether a gold answer occurs in the text as whole words, both normalized.

    The normalization is SQuAD's plus Unicode punctuation (curly quotes, dashes), because answers
    quote source text verbatim and news text quotes with “ ” ’. Word boundaries matter: gold "15"
    is not found in "2015".
    """
    padded = f" {_normalize_unicode(strip_markers(text))} "
    return any(norm and f" {norm} " in padded for norm in (_normalize_unicode(g) for g in golds))


def _normalize_unicode(text: str) -> str:
    return normalize_answer("".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text))


def strip_markers(text: str) -> str:
    """An answer text without its `[n]` citation markers."""
    return _MARKER.sub("", text)


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
        golds=pair.answers, query=reply.query,
    )


# ---- aggregates ---------------------------------------------------------------------------

def answer_metrics(records: Sequence[AnswerRecord]) -> dict[str, float]:
    """Answer quality over a run.

    Returns:
        `accuracy` (answerable questions answered with a gold answer contained), `exact_match`
        and `f1` (SQuAD, on the short answer; abstaining scores 0), `wrong_answers` (answerable
        questions answered without a gold answer), `answered_unanswerable` (the corpus does not
        answer, the system answered anyway), `false_abstentions` (abstained on an answerable
        question), and `overall_accuracy` (answerable answered correctly plus unanswerable
        abstained on, over all questions).
    """
    answerable = [r for r in records if r.answerable]
    n = max(len(answerable), 1)
    return {
        "questions": len(records),
        "answerable": len(answerable),
        "accuracy": sum(r.correct for r in answerable) / n,
        "exact_match": sum(r.exact_match for r in answerable) / n,
        "f1": sum(r.f1 for r in answerable) / n,
        "wrong_answers": sum(not r.abstained and not r.correct for r in answerable),
        "answered_unanswerable": sum(not r.answerable and not r.abstained for r in records),
        "false_abstentions": sum(r.abstained for r in answerable),
        "overall_accuracy": sum(r.correct for r in records) / max(len(records), 1),
    }


def citation_metrics(records: Sequence[AnswerRecord]) -> dict[str, float]:
    """Citation quality over the answerable questions.

    Returns:
        `precision`: correct citations / all citations given in answers to answerable questions
        (citations on unanswerable questions are judged by the abstention metrics instead);
        `recall`: the share of answerable questions with at least one correct citation
        (an abstention counts as a miss); `verbatim`: the share of all citations whose quote is
        exactly `source[start:end]`; `per_answer`: mean citations per non-abstained answer.
    """
    answerable = [r for r in records if r.answerable]
    given = sum(r.citations for r in answerable)
    total = sum(r.citations for r in records)
    answered = [r for r in records if not r.abstained]
    return {
        "precision": sum(r.citations_correct for r in answerable) / given if given else 0.0,
        "recall": sum(r.citations_correct > 0 for r in answerable) / max(len(answerable), 1),
        "verbatim": sum(r.citations_verbatim for r in records) / total if total else 1.0,
        "per_answer": sum(r.citations for r in answered) / len(answered) if answered else 0.0,
    }


def abstention_metrics(records: Sequence[AnswerRecord]) -> dict[str, float]:
    """Abstention as a classifier whose positive class is "abstained on an unanswerable question".

    Returns:
        `precision` (abstentions that were on unanswerable questions / all abstentions), `recall`
        (unanswerable questions abstained on / all unanswerable questions), `f1`, and the counts.
    """
    true_pos = sum(r.abstained and not r.answerable for r in records)
    abstained = sum(r.abstained for r in records)
    unanswerable = sum(not r.answerable for r in records)
    precision = true_pos / abstained if abstained else 0.0
    recall = true_pos / unanswerable if unanswerable else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "abstained": abstained,
            "unanswerable": unanswerable, "correct_abstentions": true_pos}


def latency_summary(values_ms: Sequence[float]) -> dict[str, float]:
    """p50, p95, mean and max of a list of latencies in milliseconds (linear interpolation)."""
    if not values_ms:
        return {"n": 0, "p50": 0.0, "p95": 0.0, "mean": 0.0, "max": 0.0}
    arr = np.asarray(values_ms, dtype=np.float64)
    return {"n": len(arr), "p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95)),
            "mean": float(arr.mean()), "max": float(arr.max())}


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
        rows.append(SweepRow(float(t), b["precision"], b["recall"], a["accuracy"], a["overall_accuracy"],
                             int(a["wrong_answers"] + a["answered_unanswerable"]), int(a["false_abstentions"])))
    best = max(rows, key=lambda row: (row.overall_accuracy, -row.threshold)) if rows else None
    return AbstentionCalibration(best.threshold if best else 0.0, rows)


def load_records(metrics_json: str | Path) -> list[AnswerRecord]:
    """The per-question records of a `metrics.json` written by `run_eval`, for `calibrate_abstention`.

    Raises:
        QASetError: the file is missing or holds no records.
    """
    try:
        rows = json.loads(Path(metrics_json).read_text(encoding="utf-8"))["records"]
        return [AnswerRecord(**{**row, "golds": tuple(row["golds"])}) for row in rows]
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise QASetError(f"No per-question records in {metrics_json} ({exc}). Run `qa eval` first.") from exc


def _abstain_below(record: AnswerRecord, threshold: float) -> AnswerRecord:
    if record.abstained or record.confidence is None or record.confidence >= threshold:
        return record
    return AnswerRecord(record.id, record.kind, record.answerable, abstained=True,
                        correct=not record.answerable, confidence=record.confidence)


# ---- the run ------------------------------------------------------------------------------

def run_eval(qa_set: Path, report_dir: Path, settings: Settings) -> int:
    """Score retrieval (every mode), answers, citations, abstention and latency on a QA set.

    Builds the index from `settings.corpus` first when there is none at `settings.index`.
    Writes `report.md`, `metrics.json` (with per-question records for threshold sweeps) and
    PNG plots into `report_dir`, and prints a summary table.

    Returns:
        0.

    Raises:
        QASetError: the set is missing or malformed, or cites documents the index lacks.
        QAError: the index cannot be built or read.
    """
    pairs = load_qa_set(qa_set)
    index = _ensure_index(settings)
    sources = _check_against_index(pairs, index, qa_set, settings)
    records = _run(pairs, index, sources, settings)
    metrics = _metrics(pairs, records, settings, qa_set)
    write_report(metrics, records, Path(report_dir))
    return 0


def _ensure_index(settings: Settings) -> Index:
    from qa.errors import IndexMissingError
    from qa.index import build_index, load_index

    try:
        return load_index(settings.index)
    except IndexMissingError:
        print(f"No index at {settings.index}; building it from {settings.corpus}.")
        build_index(settings=settings)
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
    roots = [Path(index.manifest["corpus"])] if index.manifest.get("corpus") else []
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


def _run(pairs: Sequence[QAPair], index: Index, sources: Mapping[str, str], settings: Settings) -> list[AnswerRecord]:
    from qa.answer import answer
    from qa.retrieve import retrieve

    query_for = _query_builder()
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
    for pair in tqdm(pairs, desc="qa eval", unit="question", disable=not settings.show_progress):
        query = query_for(pair.question, list(pair.history))
        n_relevant = sum(any(overlaps(c, s) for s in pair.evidence) for c in index.chunks)
        per_mode: dict[str, dict[str, float]] = {}
        for mode in MODES:
            started = time.perf_counter()
            passages = retrieve(query, k=RETRIEVAL_K, index=index, mode=mode, settings=settings)
            elapsed = (time.perf_counter() - started) * 1000
            scores = retrieval_scores(passages, pair.evidence, n_relevant) if pair.answerable else {}
            per_mode[mode] = {**scores, "latency_ms": elapsed}
        history = history_messages(pair.history) if pair.history else []
        started = time.perf_counter()
        reply = answer(pair.question, history=history, index=index, settings=settings)
        elapsed = (time.perf_counter() - started) * 1000
        record = score_answer(pair, reply, sources, elapsed)
        records.append(replace(record, retrieval=per_mode))
    return records


def _query_builder() -> Any:
    """`qa.chat.standalone_query` when that module is installed, else the question alone."""
    try:
        from qa.chat import standalone_query
    except ImportError:
        return lambda question, history: question
    return standalone_query


def _metrics(pairs: Sequence[QAPair], records: Sequence[AnswerRecord], settings: Settings,
             qa_set: Path) -> dict[str, Any]:
    from qa.runtime import thread_report

    answerable = [r for r in records if r.answerable]
    retrieval = {}
    for mode in MODES:
        names = [k for k in answerable[0].retrieval[mode] if k != "latency_ms"] if answerable else []
        retrieval[mode] = {k: float(np.mean([r.retrieval[mode][k] for r in answerable])) for k in names}
    by_kind: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[AnswerRecord]] = defaultdict(list)
    for r in records:
        groups[r.kind].append(r)
    for kind in sorted(groups, key=lambda k: KINDS.index(k) if k in KINDS else len(KINDS)):
        group = groups[kind]
        hits = [r.retrieval[settings.mode]["hit@5"] for r in group if r.answerable]
        by_kind[kind] = {"questions": len(group), "correct": sum(r.correct for r in group) / len(group),
                         "hit@5": float(np.mean(hits)) if hits else None}
    calibration = calibrate_abstention(records, sorted({settings.abstain_threshold} | {
        round(t, 2) for t in np.arange(0.0, 1.0001, 0.05) if t >= settings.abstain_threshold}))
    wrong = [r for r in records if not r.abstained and not r.correct]
    return {
        "set": str(qa_set),
        "questions": len(pairs),
        "kinds": dict(Counter(p.kind for p in pairs)),
        "settings": {k: getattr(settings, k) for k in (
            "mode", "model", "chunk_tokens", "chunk_overlap_tokens", "top_k", "candidates", "dense_weight",
            "sentence_weight", "max_answer_sentences", "abstain_threshold", "threads")},
        "threads": thread_report(),
        "retrieval": retrieval,
        "answers": answer_metrics(records),
        "citations": citation_metrics(records),
        "abstention": abstention_metrics(records),
        "latency_ms": {
            "answer": latency_summary([r.latency_ms for r in records]),
            "retrieval": {m: latency_summary([r.retrieval[m]["latency_ms"] for r in records]) for m in MODES},
        },
        "by_kind": by_kind,
        "abstention_sweep": {"note": "exact for thresholds >= the one used (see calibrate_abstention)",
                             "best_threshold": calibration.threshold,
                             "rows": [row._asdict() for row in calibration.rows]},
        "failures": {
            "answered_unanswerable": [_failure(r) for r in wrong if not r.answerable],
            "wrong_answers": [_failure(r) for r in wrong if r.answerable],
            "false_abstentions": [_failure(r) for r in records if r.answerable and r.abstained],
        },
        "records": [_record_json(r) for r in records],
    }


def _failure(r: AnswerRecord) -> dict[str, Any]:
    return {"id": r.id, "kind": r.kind, "golds": list(r.golds), "confidence": r.confidence,
            "answer": " ".join(r.text.split())[:300]}


def _record_json(r: AnswerRecord) -> dict[str, Any]:
    row = asdict(r)
    row["golds"] = list(r.golds)
    row["text"] = " ".join(r.text.split())
    return row
