"""Answerability: whether the documents answer the question, judged from what the reader found.

One logistic model turns the evidence about the reader's best span into `Answer.confidence`, and
its threshold decides answered / tentative / abstained. The evidence is chosen so that sharing
the question's words is not rewarded for its own sake (near misses share them all and change one
constraint; paraphrases share few):

- `margin`: the reader's best span score minus its no-answer score, over every window read, and
  `span_margin`: the same in the window holding the span it chose (the best span score);
- `cosine`: the embedding model's cosine between the question and the sentence holding that
  span (does the meaning agree with the reader's choice?), and `cosine_gap`: how far below the
  best candidate sentence's cosine it is;
- `type_fit`: whether the span is the kind of thing asked for (a number for "how many", a date
  for "when", a name for "who"): +1 yes, -1 no, 0 when the question asks for no such kind;
- `numbers_missing`: the share of the question's numbers (a year, an amount) that the text
  around the span never writes: a near miss often asks about another year;
- `coverage` and `lexical`: the share of the question's IDF weight in the span's passage and the
  best passage's BM25 (log1p), as before; the fit, not a rule, says how much they count.

The coefficients are fitted by `python -m qa.fitting answerability` (qa/fitting.py) on SQuAD v2.0
training articles as an open corpus, their WordNet paraphrase and eval/calibration.jsonl; the
threshold by the balanced rule on the seed development sets. Nothing is fitted on a test set.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from qa.clean import model_text
from qa.index import Index
from qa.lexical import bm25_terms
from qa.retrieval import Ranking, stored_vectors

if TYPE_CHECKING:
    from qa.answers import ScoredSentence
    from qa.reading import ReaderPick

# The text around the reader's span that `numbers_missing` looks in: this many sentences of its
# document on each side (with the document's title).
NEAR_SENTENCES = 6
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NUMBER_WORDS = frozenset({
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "twenty", "thirty", "forty", "fifty", "hundred", "thousand", "million", "billion", "dozen", "half",
    "first", "second", "third",
})
_MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
          r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\b")
_DATE = re.compile(rf"\b(?:1\d{{3}}|20\d{{2}})\b|\b{_MONTH}|\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|"
                   r"Saturday|Sunday|century|decade|year|years|spring|summer|autumn|fall|winter)\b", re.I)
_CAPITALISED = re.compile(r"\b[A-Z][\w'’.-]*")


@dataclass(frozen=True)
class Evidence:
    """What `AnswerabilityModel` reads (see the module docstring)."""

    margin: float
    span_margin: float
    cosine: float
    cosine_gap: float
    type_fit: float
    numbers_missing: float
    coverage: float
    lexical: float

    def values(self) -> tuple[float, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))


FEATURES = tuple(f.name for f in fields(Evidence))
# The reader's margin is clipped to this range: beyond it the evidence says nothing more.
MARGIN_CLIP = 10.0


@dataclass(frozen=True)
class AnswerabilityModel:
    """`confidence = 1 / (1 + exp(-(sum of coefficient * evidence) - bias))`; answers below
    `threshold` abstain. Fitted by `python -m qa.fitting answerability` (its report gives the
    ROC AUC on each set it was fitted and checked on)."""

    margin: float = 0.356
    span_margin: float = 0.0
    cosine: float = 1.625
    cosine_gap: float = 0.0
    type_fit: float = 0.0
    numbers_missing: float = 0.0
    coverage: float = 1.706
    lexical: float = -0.558
    bias: float = -1.287
    threshold: float = 0.425

    def coefficients(self) -> tuple[float, ...]:
        return tuple(getattr(self, name) for name in FEATURES)

    def __call__(self, evidence: Evidence) -> float:
        z = float(np.dot(self.coefficients(), evidence.values())) + self.bias
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


ANSWERABILITY = AnswerabilityModel()


def answer_kind(question: str) -> str | None:
    """What kind of thing the question asks for: "number", "date", "name" or None."""
    q = question.lower()
    if re.search(r"\bhow (?:many|much|long|old|far|big|large|tall)\b|\bwhat (?:number|percentage|share|amount|"
                 r"proportion|fraction)\b", q):
        return "number"
    if re.search(r"\bwhen\b|\b(?:what|which) (?:year|date|day|month|decade|century|time)\b", q):
        return "date"
    if re.search(r"\bwho\b|\bwhom\b|\bwhose\b", q):
        return "name"
    return None


def type_fit(question: str, span: str) -> float:
    """+1 when `span` is the kind of thing `question` asks for, -1 when it is not, 0 when the
    question asks for no particular kind (see `answer_kind`)."""
    kind = answer_kind(question)
    if kind is None:
        return 0.0
    words = {w.lower() for w in re.findall(r"[\w'’-]+", span)}
    if kind == "number":
        fits = bool(_NUMBER.search(span)) or bool(words & _NUMBER_WORDS)
    elif kind == "date":
        fits = bool(_DATE.search(span))
    else:
        asked = question.lower()
        fits = any(name.lower().strip(".") not in asked for name in _CAPITALISED.findall(span))
    return 1.0 if fits else -1.0


def question_numbers(question: str) -> list[str]:
    """The numbers a question writes ("2015", "1,000"), without separators."""
    return [n.replace(",", "") for n in _NUMBER.findall(question)]


def numbers_missing(question: str, near: str) -> float:
    """The share of the question's numbers that `near` never writes (0 when it writes none)."""
    asked = question_numbers(question)
    if not asked:
        return 0.0
    present = {n.replace(",", "") for n in _NUMBER.findall(near)}
    return sum(n not in present for n in asked) / len(asked)


def _near_text(index: Index, row: int) -> str:
    """The span's sentence with `NEAR_SENTENCES` neighbours each side in its document, after
    the document's title."""
    doc_id = index.sentences[row].doc_id
    lo, hi = max(0, row - NEAR_SENTENCES), min(len(index.sentences), row + NEAR_SENTENCES + 1)
    near = [index.sentences[r].text for r in range(lo, hi) if index.sentences[r].doc_id == doc_id]
    return " ".join([index.documents[doc_id].title, *near])


def evidence(question: str, pick: ReaderPick, scored: Sequence[ScoredSentence], ranking: Ranking, index: Index,
             weights: Mapping[str, float]) -> Evidence:
    """The evidence about the reader's best span (`pick.spans[0]`) for `question`.

    Args:
        question: the question as the reader read it (a follow-up's standalone query).
        pick: what the reader found.
        scored: the candidate sentences, best first (`qa.answers.score_sentences`).
        ranking: the retrieval that found them.
        index: the index they come from.
        weights: the question's IDF weights (`qa.answers.idf_weights`).
    """
    best = pick.spans[0]
    row = best.rows[0]
    cosines = {s.row: s.cosine for s in scored}
    if row in cosines:
        cosine = cosines[row]
    else:
        cosine = float(stored_vectors(index, "sentence", np.asarray([row], dtype=np.int64))[0] @ ranking.query_vector)
    top_cosine = max([cosine, *cosines.values()])
    span_text = _span_text(index, best.rows, best.answer_start, best.answer_end)
    near = _near_text(index, row)
    passage_terms = set(bm25_terms(model_text(near)))
    top = scored[0] if scored else None
    lexical = math.log1p(max(float(ranking.bm25[top.rank]), 0.0)) if top is not None else 0.0
    return Evidence(
        margin=max(-MARGIN_CLIP, min(MARGIN_CLIP, pick.margin)),
        span_margin=max(-MARGIN_CLIP, min(MARGIN_CLIP, best.margin)),
        cosine=cosine,
        cosine_gap=top_cosine - cosine,
        type_fit=type_fit(question, span_text),
        numbers_missing=numbers_missing(question, near),
        coverage=coverage(weights, passage_terms),
        lexical=lexical,
    )


def coverage(weights: Mapping[str, float], present: set[str]) -> float:
    """The share of the question's IDF weight (`weights`) whose terms are in `present`."""
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in present) / total if total else 0.0


def _span_text(index: Index, rows: Sequence[int], start: int, end: int) -> str:
    """The span's text, from the sentences holding it (offsets are the document's)."""
    out = []
    for r in rows:
        s = index.sentences[r]
        a, b = max(start, s.start), min(end, s.end)
        if b > a:
            out.append(s.text[a - s.start:b - s.start])
    return " ".join(out)
