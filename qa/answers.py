"""`answer()`: an extractive, cited answer, or a plain statement that the documents are silent.

No generative model runs here, so the answer is faithful by construction: the one to three
sentences of the retrieved passages that best answer the question, quoted verbatim, each
followed by its `[n]` marker. Sentences were embedded once at index time; a question costs one
embedding (its own) plus a few small matrix products.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from qa.answerability import (
    ANSWERABILITY,
    TENTATIVE_BELOW,
    answer_confidence,
    effective_threshold,
    evidence,
    polar_confidence,
)
from qa.chat import Message, standalone_query, user_turns
from qa.config import Settings
from qa.filters import DocFilter
from qa.index import Index, load_index
from qa.questions import is_polar, short_answer_span
from qa.reading import ReaderSpan, read_answer
from qa.retrieval import Ranking, check_selects, clean_query, passages_for, rank
from qa.scoring import ANSWER_PASSAGES, idf_weights, score_sentences, select_sentences
from qa.types import Answer, AnswerStatus, Citation, Passage, Sentence, composed_text

TENTATIVE_PREFIX = "The documents may not answer this directly; the closest passages say: "
# An abstention offers the best passage of at most this many documents as related reading.
RELATED_PASSAGES = 3
# An abstention repeats at most this much of the question.
ECHO_CHARS = 200


# The sentence scorer's best sentence joins the reader's (room permitting): on the seed QA set
# the answer then holds a gold answer for 0.88 of answerable questions instead of 0.79 (1.55
# sentences per answer instead of 1.14), abstention off. Chosen on that set (eval/README.md).
ADD_SCORER_TOP = True


class Answerer(Protocol):
    """Turns a ranking into an answer: the seam where a generative model could plug in."""

    def compose(self, question: str, ranking: Ranking, index: Index, settings: Settings) -> Answer: ...


def answer(
    question: str,
    history: Sequence[Message] | None = None,
    index: str | Path | Index = "index",
    *,
    settings: Settings | None = None,
    answerer: Answerer | None = None,
    docs: str | Sequence[str] | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Answer:
    """Answer `question` from the indexed documents, quoting and citing them.

    Args:
        question: the user's question, at most `settings.max_question_chars` characters.
        history: earlier messages of the conversation, `{"role", "content"}` dicts (Gradio's
            form); a follow-up is turned into a standalone query from the user's last
            `settings.history_turns` questions. Older messages are not read.
        index: an index folder, or an `Index` already loaded.
        settings: retrieval and composition knobs; `Settings()` when left out.
        answerer: composes the answer from the ranking (default: `ExtractiveAnswerer`).
        docs, since, until: answer only from documents whose doc_id matches one of the globs in
            `docs` and dated from `since` to `until` (see `qa.retrieve`).

    Returns:
        An `Answer`; every citation satisfies `source[start:end] == quote`. When the documents
        do not support an answer, `abstained` is True, there are no citations, and `passages`
        are the closest related reading.

    Raises:
        QueryError: the question is empty, not text or too long, the history is not a list
            of messages, or `docs`/`since`/`until` leave no indexed document to answer from.
        IndexMissingError, IndexCorruptError: the index cannot be used (IndexChangedError: its
            files changed on disk while it was read).
    """
    started = time.perf_counter()
    settings = settings or Settings()
    text = clean_query(question, settings.max_question_chars)
    turns = user_turns(history, settings.history_turns, settings.max_question_chars)
    where = DocFilter.make(docs, since, until)
    loaded = index if isinstance(index, Index) else load_index(index, memory_mb=settings.index_memory_mb)
    # Refused, in one line, if the index's files changed underneath while it was read.
    with loaded.files.reading():
        if where is not None:
            check_selects(loaded, where)
        query = standalone_query(text, turns)
        ranking = rank(query, loaded, settings=settings, where=where)
        reply = (answerer or ExtractiveAnswerer()).compose(text, ranking, loaded, settings)
    return dataclasses.replace(reply, latency_ms=(time.perf_counter() - started) * 1000)


class ExtractiveAnswerer:
    """Quotes the sentences that hold the answer; abstains when the evidence is too weak.

    With `settings.reader` (the default), the shipped reading model reads windows around the
    best candidate sentences: the sentence holding its best span is quoted and the span marked;
    its no-answer evidence enters the confidence. Without it, and for yes/no questions (which the
    reader never learned, see `is_polar`), the sentence scorer alone chooses.
    """

    def compose(self, question: str, ranking: Ranking, index: Index, settings: Settings) -> Answer:
        passages = passages_for(index, ranking, max(settings.top_k, ANSWER_PASSAGES))
        weights = idf_weights(index, ranking.query)
        scored = score_sentences(question, ranking, index, weights)
        if not scored:
            return abstention(question, passages, ranking.query, 0.0)
        # A yes/no question goes to the sentence scorer (see `is_polar`).
        reading = settings.reader and not is_polar(question)
        # A follow-up is read as its standalone query ("Who did he write to? FCC commissioner ..."):
        # the reader cannot resolve "he" alone.
        pick = read_answer(ranking.query, scored, index, settings, ranking) if reading else None
        if reading:
            confidence = ANSWERABILITY(evidence(ranking.query, pick, scored, ranking, index, weights)) if pick else 0.0
        else:
            confidence = answer_confidence(question, scored, ranking, index, weights)
            if settings.reader:  # a yes/no question: the scorer's confidence on the reader's scale
                confidence = polar_confidence(confidence)
        threshold = effective_threshold(settings)
        tentative = max(TENTATIVE_BELOW, threshold)
        if confidence < threshold or (reading and pick is None):
            return abstention(question, passages, ranking.query, confidence)
        status: AnswerStatus = "tentative" if confidence < tentative else "answered"
        if pick is not None:
            rows = [row for span in pick.spans for row in span.rows]
            top = scored[0]
            if (ADD_SCORER_TOP and top.row not in rows and len(rows) < settings.max_answer_sentences
                    and not top.short_or_title):
                rows.append(top.row)
        else:
            rows = [s.row for s in select_sentences(scored, index, settings.max_answer_sentences)]
        quoted = _reading_order([index.sentences[r] for r in rows])
        citations: list[Citation] = []
        for sentence in quoted:
            info = index.documents[sentence.doc_id]
            n = len(citations) + 1
            if pick is not None:
                span = next((x for x in (_span_inside(p, sentence) for p in pick.spans) if x), None)
            else:
                span = short_answer_span(question, sentence)
            a_start, a_end = span or (None, None)
            citations.append(Citation(n, sentence.doc_id, info.title, sentence.text, sentence.start,
                                      sentence.end, info.date, a_start, a_end, page=info.page_of(sentence.start),
                                      ocr=info.read_by_ocr(sentence.start, sentence.end)))
        lead = TENTATIVE_PREFIX if status == "tentative" else ""
        return Answer(composed_text(lead, citations), tuple(citations), False, tuple(passages), ranking.query,
                      confidence, status=status, lead=lead)


def _reading_order(sentences: Sequence[Sentence]) -> list[Sentence]:
    """`sentences` (best first) in document order: documents by their best sentence, sentences
    by position; each once."""
    doc_rank = {d: i for i, d in reversed(list(enumerate(s.doc_id for s in sentences)))}
    return sorted(set(sentences), key=lambda s: (doc_rank[s.doc_id], s.start))


def _span_inside(span: ReaderSpan, sentence: Sentence) -> tuple[int, int] | None:
    """The part of the reader's span inside `sentence` (offsets into the document), if any."""
    if sentence.doc_id != span.doc_id:
        return None
    start, end = max(span.answer_start, sentence.start), min(span.answer_end, sentence.end)
    if end <= start:
        return None
    return _trim_span(sentence.text, start - sentence.start, end - sentence.start, sentence.start)


_BRACKETS = {"(": ")", "[": "]", "{": "}"}


def _trim_span(text: str, start: int, end: int, base: int) -> tuple[int, int] | None:
    """`text[start:end]` (a span in a sentence beginning at document offset `base`) without what
    a sentence boundary or the tokenizer left at its edges: spaces, a trailing comma, semicolon
    or colon, and a bracket whose partner lies outside the span ("Virginia with a back-up in
    Singapore)" -> "... Singapore"). Returns document offsets, or None if nothing is left."""
    while True:
        before = (start, end)
        while start < end and text[start].isspace():
            start += 1
        while end > start and (text[end - 1].isspace() or text[end - 1] in ",;:"):
            end -= 1
        span = text[start:end]
        for opening, closing in _BRACKETS.items():
            if span.endswith(closing) and span.count(closing) > span.count(opening):
                end -= 1
            elif span.startswith(opening) and span.count(opening) > span.count(closing):
                start += 1
        if (start, end) == before:
            return (base + start, base + end) if end > start else None


def abstention(question: str, passages: Sequence[Passage], query: str, confidence: float) -> Answer:
    """An answer that says plainly that the documents are silent. Its `related` holds the best
    passage of each of the first `RELATED_PASSAGES` documents, offered as related reading."""
    asked = " ".join(question.split())
    if len(asked) > ECHO_CHARS:
        asked = asked[:ECHO_CHARS - 1].rstrip() + "…"
    text = f"The documents don't say. None of the indexed passages answers “{asked}”."
    return Answer(text, (), True, tuple(passages), query, confidence, status="abstained",
                  related=tuple(related_passages(passages)))


def related_passages(passages: Sequence[Passage], limit: int = RELATED_PASSAGES) -> list[Passage]:
    """The best passage of each document, in rank order, for at most `limit` documents."""
    seen: set[str] = set()
    out = []
    for p in passages:
        if p.doc_id not in seen:
            seen.add(p.doc_id)
            out.append(p)
        if len(out) == limit:
            break
    return out


def answer_to_json(reply: Answer) -> dict[str, Any]:
    """The `qa ask --json` object: answer, status, abstained, citations, passages and related."""
    return {
        "answer": reply.text,
        "status": reply.status,
        "abstained": reply.abstained,
        "confidence": round(reply.confidence, 4),
        "query": reply.query,
        "latency_ms": round(reply.latency_ms, 2),
        "citations": [asdict(c) for c in reply.citations],
        "passages": [asdict(p) for p in reply.passages],
        "related": [asdict(p) for p in reply.related],
    }


