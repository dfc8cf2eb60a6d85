"""The sentence scorer: every sentence of the best passages scored for how well it answers.

Each candidate's evidence (its cosine to the question, the share of the question's IDF weight it
holds, the same over the words that say what is asked, its passage's rank, whether it holds the
kind of thing asked for, whether it is a heading or title) adds up with fitted weights
(`SentenceWeights`). The reader's quote is joined by the scorer's best sentence, yes/no
questions are answered from it alone, and with `reader = false` it chooses every quote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from qa.clean import model_text
from qa.index import Index
from qa.lexical import bm25_terms, idf
from qa.questions import QUESTION_TERMS, answer_type, focus_terms, type_match
from qa.retrieval import Ranking, stored_vectors
from qa.types import Sentence

# Sentences are drawn from this many of the best passages.
ANSWER_PASSAGES = 5
# Sentences under this many words are headings, titles or bylines.
SHORT_WORDS = 5


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


SENTENCE_WEIGHTS = SentenceWeights()


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
    focus_weights = {t: w for t, w in weights.items() if t in focus_terms(question)} or weights
    wanted = answer_type(question)
    out = []
    for row, cosine in zip(rows.tolist(), cosines.tolist(), strict=True):
        sentence = index.sentences[row]
        words = len(sentence.text.split())
        present = set(bm25_terms(model_text(sentence.text)))
        covered = coverage(weights, present)
        focus = coverage(focus_weights, present)
        matched = type_match(question, sentence, wanted)
        passage = 1.0 / (1 + best_rank[row])
        # A document's own title line (reading all titles per answer cost 0.2 s at 251,251 documents).
        title = index.documents[sentence.doc_id].title.strip().lower()
        short_or_title = words < SHORT_WORDS or sentence.text.strip().lower() == title
        score = (fitted.cosine * cosine + fitted.coverage * covered + fitted.focus * focus
                 + fitted.passage * passage + fitted.type_match * matched
                 - fitted.short_or_title_penalty * short_or_title)
        out.append(ScoredSentence(row, sentence, cosine, covered, focus, passage, best_rank[row], matched,
                                  short_or_title, score))
    out.sort(key=lambda s: (-s.score, s.row))
    return out


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


def idf_weights(index: Index, query: str) -> dict[str, float]:
    """IDF of each query term over the chunks; terms the corpus never uses get the highest IDF."""
    return idf(index.bm25, sorted(set(bm25_terms(model_text(query))) - QUESTION_TERMS))


def coverage(weights: Mapping[str, float], present: set[str]) -> float:
    """The share of the question's IDF weight (`weights`) whose terms are in `present`."""
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in present) / total if total else 0.0
