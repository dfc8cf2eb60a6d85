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

The coefficients are fitted by `python -m qa.fitting answerability` (qa/fitting/) on SQuAD v2.0
training articles as an open corpus, their WordNet paraphrase and eval/calibration.jsonl; the
threshold by the balanced rule on the seed development sets. Nothing is fitted on a test set.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

from qa.clean import model_text
from qa.config import Settings
from qa.index import Index
from qa.lexical import bm25_terms
from qa.questions import answer_type
from qa.reading import ReaderPick
from qa.retrieval import Ranking, stored_vectors
from qa.scoring import ScoredSentence, coverage, idf_weights

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
# Answers below this confidence (but above the abstain threshold) say that they may not answer
# the question directly: on the seed questions about half of them do not. The reader's fitted
# threshold (0.35) lies below it, so answers from 0.35 to 0.5 are tentative.
TENTATIVE_BELOW = 0.5
# The reader's margin is clipped to this range: beyond it the evidence says nothing more.
MARGIN_CLIP = 10.0


@dataclass(frozen=True)
class AnswerabilityModel:
    """`confidence = 1 / (1 + exp(-(sum of coefficient * evidence) - bias))`; answers below
    `threshold` abstain. Fitted by `python -m qa.fitting answerability` (its report gives the
    ROC AUC on each set it was fitted and checked on)."""

    # Fitted with each coefficient held to the sign its evidence should have
    # (`qa.fitting.EVIDENCE_SIGNS`), for the reader trained on 3,255 questions in users' own words
    # (2026-12-03, third run): cosine, span_margin and type_fit came out 0, so the reader's
    # margin, the numbers the text lacks and how far the span's sentence falls below the best
    # sentence in meaning decide.
    margin: float = 0.310
    span_margin: float = 0.0
    cosine: float = 0.0
    cosine_gap: float = -0.759
    type_fit: float = 0.0
    numbers_missing: float = -3.024
    # Left out of the fit (`--without coverage,lexical`): they reward the words a question shares
    # with the text, which near misses share and paraphrases do not.
    coverage: float = 0.0
    lexical: float = 0.0
    bias: float = 0.452
    threshold: float = 0.350

    def coefficients(self) -> tuple[float, ...]:
        return tuple(getattr(self, name) for name in FEATURES)

    def __call__(self, evidence: Evidence) -> float:
        z = float(np.dot(self.coefficients(), evidence.values())) + self.bias
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


ANSWERABILITY = AnswerabilityModel()


def type_fit(question: str, span: str) -> float:
    """+1 when `span` is the kind of thing `question` asks for, -1 when it is not, 0 when the
    question asks for no particular kind (see `qa.questions.answer_type`)."""
    kind = answer_type(question)
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
    """The numbers a question writes ("2015", "1,000"), without separators, read as the models
    read it (`qa.clean.model_text`: markup such as `<img src=x onerror=alert(9)>` is not text)."""
    return [n.replace(",", "") for n in _NUMBER.findall(model_text(question))]


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
        scored: the candidate sentences, best first (`qa.scoring.score_sentences`).
        ranking: the retrieval that found them.
        index: the index they come from.
        weights: the question's IDF weights (`qa.scoring.idf_weights`).
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


def _span_text(index: Index, rows: Sequence[int], start: int, end: int) -> str:
    """The span's text, from the sentences holding it (offsets are the document's)."""
    out = []
    for r in rows:
        s = index.sentences[r]
        a, b = max(start, s.start), min(end, s.end)
        if b > a:
            out.append(s.text[a - s.start:b - s.start])
    return " ".join(out)


# ---- the sentence scorer's confidence (reader off, and yes/no questions) -------------------

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


CONFIDENCE_MODEL = ConfidenceModel()


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
