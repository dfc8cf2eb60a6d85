"""Lexical overlap between a question and the sentence that answers it, and the buckets
`qa bench squad` reports every open-corpus figure by.

SQuAD's crowdworkers wrote questions looking at the paragraph, so most borrow its words; a user
who has not read the documents does not. The share of a question's content words found in its
answer sentence separates the two: the low bucket (< 0.3) is the paraphrase case.

Content words: lower-cased runs of letters and digits (a possessive 's dropped), minus
scikit-learn's ENGLISH_STOP_WORDS (318 words: articles, pronouns, auxiliaries, prepositions,
question words and some number words), compared as written, without stemming ("played" and
"plays" are different words). Each distinct word counts once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from qa.sentences import split_sentences

STOP_LIST = "scikit-learn's ENGLISH_STOP_WORDS"
# The buckets, low to high: below 0.3, 0.3 to 0.6 (both included), above 0.6.
BUCKETS = ("< 0.3", "0.3-0.6", "> 0.6")
_WORD = re.compile(r"[^\W_]+")
_POSSESSIVE = re.compile(r"['’]s\b")


def content_words(text: str) -> set[str]:
    """The distinct content words of `text`: lower-cased, stop words left out."""
    words = _WORD.findall(_POSSESSIVE.sub("", text.lower()))
    return {w for w in words if w not in ENGLISH_STOP_WORDS}


def overlap(question: str, sentence: str) -> float:
    """Share of the question's content words that appear in `sentence` (0.0 when the question
    has none)."""
    asked = content_words(question)
    return len(asked & content_words(sentence)) / len(asked) if asked else 0.0


@dataclass(frozen=True)
class AnswerSentence:
    """The sentence of a paragraph that a question's overlap is measured against.

    `how`: "answer" (the sentence holding the first gold answer's first occurrence), or
    "best overlap" (no gold answer in the paragraph, as for SQuAD v2.0's unanswerable
    questions: the sentence sharing most of the question's content words).
    """

    start: int
    end: int
    text: str
    how: str


def answer_sentence(question: str, paragraph: str, answers: Sequence[str],
                    spans: Sequence[tuple[int, int]] | None = None) -> AnswerSentence:
    """The sentence of `paragraph` that holds the first gold answer, else the best-overlap one.

    SQuAD's converted files keep no answer_start, so the first occurrence of the first gold
    answer stands for it (exact case first, then ignoring case).

    Args:
        question: the question.
        paragraph: its paragraph.
        answers: the gold answers, first the one that locates the sentence; empty when none.
        spans: the paragraph's sentences (`qa.sentences.split_sentences`), if already split.
    """
    spans = list(spans) if spans is not None else split_sentences(paragraph) or [(0, len(paragraph))]
    if answers and answers[0]:
        at = paragraph.find(answers[0])
        if at < 0:
            at = paragraph.lower().find(answers[0].lower())
        if at >= 0:
            for start, end in spans:
                if start <= at < end:
                    return AnswerSentence(start, end, paragraph[start:end], "answer")
    start, end = max(spans, key=lambda s: (overlap(question, paragraph[s[0]:s[1]]), -s[0]))
    return AnswerSentence(start, end, paragraph[start:end], "best overlap")


def bucket_of(share: float) -> str:
    """The label of the bucket `share` falls in."""
    return BUCKETS[0] if share < 0.3 else BUCKETS[1] if share <= 0.6 else BUCKETS[2]


def by_bucket(shares: Sequence[float], rows: Sequence[Any],
              figures: Callable[[Sequence[Any]], Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """`figures` computed over the rows of each overlap bucket, with the bucket's size.

    Args:
        shares: each row's overlap.
        rows: per-question results, in the same order.
        figures: turns a bucket's rows into named figures (it is given an empty list for an
            empty bucket and should answer NaN there).

    Returns:
        {bucket label: {"questions": n, **figures(rows in it)}}, buckets in order.
    """
    if len(shares) != len(rows):
        raise ValueError(f"{len(shares)} overlaps for {len(rows)} rows: give one overlap per row.")
    out: dict[str, dict[str, float]] = {}
    for label in BUCKETS:
        inside = [row for share, row in zip(shares, rows, strict=True) if bucket_of(share) == label]
        out[label] = {"questions": len(inside), **figures(inside)}
    return out
