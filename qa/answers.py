"""`answer()`: an extractive, cited answer, or a plain statement that the documents are silent.

No generative model runs here, so the answer is faithful by construction: the one to three
sentences of the retrieved passages that best answer the question, quoted verbatim, each
followed by its `[n]` marker. Sentences were embedded once at index time; a question costs one
embedding (its own) plus a few small matrix products.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from qa.answerability import ANSWERABILITY, coverage, evidence
from qa.chat import Message, standalone_query, user_turns
from qa.clean import model_text
from qa.config import Settings
from qa.filters import DocFilter
from qa.index import Index, load_index
from qa.lexical import bm25_terms, idf
from qa.reading import SHORT_WORDS, ReaderSpan, read_answer
from qa.retrieval import Ranking, check_selects, clean_query, passages_for, rank, stored_vectors
from qa.types import Answer, AnswerStatus, Citation, Passage, Sentence

if TYPE_CHECKING:
    pass

# Sentences are drawn from this many of the best passages.
ANSWER_PASSAGES = 5
# Answers below this confidence (but above the abstain threshold) say that they may not answer
# the question directly: on the seed questions about half of them do not.
TENTATIVE_BELOW = 0.5
TENTATIVE_PREFIX = "The documents may not answer this directly; the closest passages say: "
# An abstention offers the best passage of at most this many documents as related reading.
RELATED_PASSAGES = 3
# An abstention repeats at most this much of the question.
ECHO_CHARS = 200


@dataclass(frozen=True)
class SentenceWeights:
    """How a candidate sentence's evidence adds up to its score (see `score_sentences`).

    Fitted so that a sentence holding the answer comes first, on the hand-written seed questions
    (eval/qa_pairs.jsonl) and a 400-question SQuAD v1.1 dev sample together; refit with
    `python -m qa.fitting sentences` (eval/README.md, "Fitted constants").
    """

    cosine: float = 0.55
    coverage: float = 0.32
    focus: float = 0.18
    passage: float = 0.04
    type_match: float = 0.08
    # Headings, bylines and titles restate topics; they rarely answer.
    short_or_title_penalty: float = 0.25


@dataclass(frozen=True)
class ConfidenceModel:
    """The logistic model behind `Answer.confidence` (see `answer_confidence`).

    `z = cosine * best sentence cosine + coverage * share of the question's IDF weight in the
    passage + lexical * log1p(passage BM25) + bias`; confidence = 1 / (1 + exp(-z)). Fitted
    class-balanced on eval/qa_pairs.jsonl and eval/calibration.jsonl (answerable or not);
    refit with `python -m qa.fitting confidence`. Refit when sentences came from pysbd on the
    layout view (cosine 6.24 -> 5.87, coverage 1.87 -> 1.84, lexical 1.99 -> 2.15): ROC AUC 0.881
    against 0.882 for the coefficients before, on the same sentences.
    """

    cosine: float = 5.87
    coverage: float = 1.84
    lexical: float = 2.15
    bias: float = -7.38
    # Below this the reply abstains (where total errors on the two seed sets are lowest).
    threshold: float = 0.275

    def __call__(self, cosine: float, coverage: float, lexical: float) -> float:
        z = self.cosine * cosine + self.coverage * coverage + self.lexical * lexical + self.bias
        return 1.0 / (1.0 + math.exp(-z))


SENTENCE_WEIGHTS = SentenceWeights()
CONFIDENCE_MODEL = ConfidenceModel()
# The sentence scorer's best sentence joins the reader's (room permitting): on the seed QA set
# the answer then holds a gold answer for 0.88 of answerable questions instead of 0.79 (1.55
# sentences per answer instead of 1.14), abstention off. Chosen on that set (eval/README.md).
ADD_SCORER_TOP = True


# A yes/no question ("Did TikTok ban political ads?"): an auxiliary verb first, after at most a
# joining word of a follow-up ("And did he ...?").
_POLAR = re.compile(r"^\W*(?:(?:and|but|so|then|also|ok|okay)\W+)?(?:is|are|was|were|am|do|does|did|has|have|had|"
                    r"can|could|will|would|shall|should|may|might|must)(?:n[’']t)?\b", re.IGNORECASE)
# "... or ...", unless "or not": a choice between options the passage names, a span the reader finds.
_ALTERNATIVE = re.compile(r"\bor\b(?!\s+not\b)", re.IGNORECASE)


def is_polar(question: str) -> bool:
    """True for a yes/no question ("Has TikTok been accused of censoring content?"), False for a
    wh-question or a choice ("Were the experiments high-voltage or low-voltage?").

    The reader learned from SQuAD, which has almost no yes/no questions (45 of 10,570 in v1.1
    dev, half of them choices): it reads one as having no answer span and its no-answer score
    wins, however plainly a sentence answers. So for these the sentence scorer chooses the
    sentences and its confidence decides (`polar_confidence`); nothing is marked, the quoted
    sentence is the answer.
    """
    return bool(_POLAR.match(question)) and not _ALTERNATIVE.search(question)


def polar_confidence(scorer_confidence: float) -> float:
    """The sentence scorer's confidence on the reader's scale: its logit shifted so that the
    scorer's fitted threshold falls on the reader's. A yes/no question is then answered exactly
    when the scorer alone would answer it, and one threshold (`effective_threshold`) still
    governs every reply."""
    if scorer_confidence <= 0.0 or scorer_confidence >= 1.0:
        return scorer_confidence
    shift = _logit(ANSWERABILITY.threshold) - _logit(CONFIDENCE_MODEL.threshold)
    return 1.0 / (1.0 + math.exp(-(_logit(scorer_confidence) + shift)))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def effective_threshold(settings: Settings) -> float:
    """The abstention threshold in force: the setting, or the one fitted with the confidence
    model in use (the reader's or the sentence scorer's)."""
    if settings.abstain_threshold is not None:
        return settings.abstain_threshold
    return ANSWERABILITY.threshold if settings.reader else CONFIDENCE_MODEL.threshold


class Answerer(Protocol):
    """Turns a ranking into an answer: the seam where a generative model could plug in."""

    def compose(self, question: str, ranking: Ranking, index: Index, settings: Settings) -> Answer: ...


@dataclass(frozen=True)
class ScoredSentence:
    """A candidate sentence and the evidence that it answers the question."""

    row: int
    sentence: Sentence
    cosine: float
    coverage: float      # share of the question's IDF weight that the sentence contains
    focus: float         # the same, over the question's words that are not names
    passage: float       # 1 / (1 + rank) of the best passage it came from
    rank: int            # that passage's position in the ranking
    type_match: float    # 1 when it holds what the question asks for (a number for "how many"...)
    short_or_title: bool  # under five words, or a document title: penalized
    score: float


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
        parts: list[str] = []
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
            parts.append(f"{sentence.text} [{n}]")
        text = " ".join(parts)
        if status == "tentative":
            text = TENTATIVE_PREFIX + text
        return Answer(text, tuple(citations), False, tuple(passages), ranking.query, confidence, status=status)


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


def score_sentences(question: str, ranking: Ranking, index: Index, weights: Mapping[str, float] | None = None,
                    fitted: SentenceWeights = SENTENCE_WEIGHTS) -> list[ScoredSentence]:
    """Score every sentence of the best passages for how well it answers `question`, best first.

    A sentence seen in several overlapping passages is scored once, credited to the best one.
    """
    best_rank: dict[int, int] = {}
    for rank_no, row in enumerate(ranking.rows[:ANSWER_PASSAGES]):
        lo, hi = index.chunk_sentences[int(row)]
        for srow in range(int(lo), int(hi)):
            best_rank.setdefault(srow, rank_no)
    if not best_rank:
        return []
    rows = np.fromiter(best_rank, dtype=np.int64)
    cosines = np.asarray(stored_vectors(index, "sentence", rows) @ ranking.query_vector, dtype=np.float64)
    weights = idf_weights(index, ranking.query) if weights is None else weights
    focus_weights = {t: w for t, w in weights.items() if t in _focus_terms(question)} or weights
    wanted = _answer_type(question)
    out = []
    for row, cosine in zip(rows.tolist(), cosines.tolist(), strict=True):
        sentence = index.sentences[row]
        words = len(sentence.text.split())
        present = set(bm25_terms(model_text(sentence.text)))
        covered = coverage(weights, present)
        focus = coverage(focus_weights, present)
        type_match = _type_match(question, sentence, wanted)
        passage = 1.0 / (1 + best_rank[row])
        # A document's own title line (reading all titles per answer cost 0.2 s at 251,251 documents).
        title = index.documents[sentence.doc_id].title.strip().lower()
        short_or_title = words < SHORT_WORDS or sentence.text.strip().lower() == title
        score = (fitted.cosine * cosine + fitted.coverage * covered + fitted.focus * focus
                 + fitted.passage * passage + fitted.type_match * type_match
                 - fitted.short_or_title_penalty * short_or_title)
        out.append(ScoredSentence(row, sentence, cosine, covered, focus, passage, best_rank[row], type_match,
                                  short_or_title, score))
    out.sort(key=lambda s: (-s.score, s.row))
    return out


def answer_confidence(question: str, scored: Sequence[ScoredSentence], ranking: Ranking, index: Index,
                      weights: Mapping[str, float] | None = None, model: ConfidenceModel = CONFIDENCE_MODEL
                      ) -> float:
    """How likely it is that the documents answer the question, in (0, 1).

    A logistic model over the best sentence and the passage it came from:

    - the sentence's cosine to the question;
    - the share of the question's IDF weight found in the passage (with its title): the rare
      words of a question the documents do not answer are usually missing;
    - the passage's BM25 score (log1p).

    Fitted class-balanced on two sets of seed questions labelled answerable or not: the 123 of
    `eval/qa_pairs.jsonl` (mostly long and specific) and the 44 short, generic ones of
    `eval/calibration.jsonl` ("Who owns TikTok?", "What is Douyin?"). Leave-one-out ROC AUC
    0.86. A model fitted on the long questions alone (passage cosine and BM25) refused 14 of the
    29 answerable short ones; this one refuses 5, for two more errors on the long set.
    """
    if not scored:
        return 0.0
    return model(*confidence_features(scored, ranking, index, weights))


def confidence_features(scored: Sequence[ScoredSentence], ranking: Ranking, index: Index,
                        weights: Mapping[str, float] | None = None) -> tuple[float, float, float]:
    """The inputs of `ConfidenceModel`: the best sentence's cosine, the share of the question's
    IDF weight in its passage (with the title), and log1p of the passage's BM25 score."""
    best = scored[0]
    weights = idf_weights(index, ranking.query) if weights is None else weights
    passage = index.chunks[int(ranking.rows[best.rank])]
    in_passage = set(bm25_terms(model_text(f"{index.documents[passage.doc_id].title} {passage.text}")))
    return best.cosine, coverage(weights, in_passage), math.log1p(max(float(ranking.bm25[best.rank]), 0.0))


def select_sentences(scored: Sequence[ScoredSentence], index: Index, limit: int) -> list[ScoredSentence]:
    """The best sentence plus up to `limit - 1` close runners-up that add something new.

    A runner-up that holds what the question asks for (a name, a number) while the best sentence
    does not may trail further behind: the best sentence often sets the scene ("An FCC
    commissioner called on Apple...") and the next one names the person.
    """
    top = scored[0]
    chosen = [top]
    for cand in scored[1:]:
        if len(chosen) >= limit:
            break
        completes = top.type_match < 1.0 and cand.type_match == 1.0
        # A neighbour of the best sentence often finishes its thought, so it may trail further.
        neighbour = cand.sentence.doc_id == top.sentence.doc_id and abs(cand.row - top.row) <= 2
        margin = 0.12 if completes else 0.10 if neighbour else 0.05
        if cand.score < top.score - margin or cand.cosine < 0.4:
            continue
        if cand.focus < 0.5 * top.focus and not completes:
            continue
        vec = index.sentence_vectors[cand.row]
        if any(float(vec @ index.sentence_vectors[c.row]) > 0.9 for c in chosen):
            continue  # a near-duplicate (the same lede in a teaser and the body)
        chosen.append(cand)
    return chosen


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


def idf_weights(index: Index, query: str) -> dict[str, float]:
    """IDF of each query term over the chunks; terms the corpus never uses get the highest IDF."""
    return idf(index.bm25, sorted(set(bm25_terms(model_text(query))) - _QUESTION_TERMS))


# Question words that bm25_terms keeps but that carry no content.
_QUESTION_TERMS = {"what", "who", "when", "where", "why", "how", "which", "whom", "whose", "mani",
                   "much", "did", "doe", "do", "say", "said", "accord", "articl", "document"}


def _focus_terms(question: str) -> set[str]:
    """Terms of the question's lower-case words: what is asked, as opposed to whom it is about.

    "Who founded ByteDance?" focuses on "founded"; a sentence that names ByteDance without it
    does not answer.
    """
    words = [w for i, w in enumerate(re.findall(r"[\w'’-]+", question)) if i == 0 or not w[0].isupper()]
    return set(bm25_terms(" ".join(words))) - _QUESTION_TERMS


_NUMBER = r"(?:\$|€|£)?\d[\d,.]*(?:\s?(?:%|percent|per cent))?(?:\s(?:million|billion|thousand|hundred))?"
_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_DATE = (rf"\b(?:{_MONTH}\s+\d{{1,2}}(?:,\s*\d{{4}})?|\d{{1,2}}\s+{_MONTH}(?:\s+\d{{4}})?|{_MONTH}\s+\d{{4}}"
         rf"|{_MONTH}|(?:19|20)\d{{2}}|(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday))\b")
_NAME = r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)+\b"


_PERSON_NOUNS = (r"(?:person|people|official|officials|senator|commissioner|secretary|minister|spokesman|"
                 r"spokeswoman|spokesperson|academic|professor|executive|officer|reporter|journalist|"
                 r"lawmaker|president|founder|ceo|chief|head|user|comedian|employee)")


def _answer_type(question: str) -> str | None:
    q = question.lower()
    if re.search(r"\bhow (?:many|much)\b|\bwhat (?:number|percentage|share)\b", q):
        return "number"
    if re.search(r"\bwhen\b|\bwhat (?:year|date|day|month)\b|\bwhich (?:year|date|day|month)\b", q):
        return "date"
    if re.search(rf"\bwho\b|\bwhose\b|\b(?:which|what) (?:[\w-]+ ){{0,2}}{_PERSON_NOUNS}\b", q):
        return "name"
    return None


def _type_match(question: str, sentence: Sentence, wanted: str | None) -> float:
    """1 when the sentence holds the kind of thing asked for, in the way an answer would.

    A number or date counts fully only where `short_answer_span` pins it down ("3,000 accounts"
    for "how many accounts"), half when merely present; a name must be one the question does
    not already contain.
    """
    if wanted in ("number", "date"):
        if short_answer_span(question, sentence) is not None:
            return 1.0
        present = re.search(r"\d", sentence.text) if wanted == "number" else re.search(_DATE, sentence.text)
        return 0.5 if present else 0.0
    if wanted == "name":
        asked = question.lower()
        return 1.0 if any(name.lower() not in asked for name in re.findall(_NAME, sentence.text)) else 0.0
    return 0.0


def short_answer_span(question: str, sentence: Sentence) -> tuple[int, int] | None:
    """Offsets (into the source) of the number or date that answers a how-many or when
    question, only when exactly one candidate fits; otherwise None (no mark beats a wrong one)."""
    wanted = _answer_type(question)
    if wanted == "number":
        nouns = [t for t in bm25_terms(question) if t not in _QUESTION_TERMS]
        # The counted noun follows the number ("3,000 accounts"), at most one word later
        # ("16 fake accounts"); the nearest reading wins.
        found = []
        for reach in (1, 2):
            found = [m.span() for m in re.finditer(_NUMBER, sentence.text)
                     if any(t in nouns for t in bm25_terms(sentence.text[m.end():m.end() + 40])[:reach])]
            if found:
                break
        if len(found) != 1:
            all_numbers = [m.span() for m in re.finditer(_NUMBER, sentence.text)]
            found = all_numbers if len(all_numbers) == 1 else []
    elif wanted == "date":
        found = [m.span() for m in re.finditer(_DATE, sentence.text)]
    else:
        return None
    if len(found) != 1:
        return None
    start, end = found[0]
    while end > start and sentence.text[end - 1] in ",.":
        end -= 1
    return sentence.start + start, sentence.start + end
