"""Reading: the windows of retrieved text the reader reads, and what it found in them.

Two ways to choose what is read (`Settings.reader_passages`):

- **the whole of the retrieved passages** (N > 0, the default): the first N passages in rank
  order, passages of one document that overlap merged, packed by whole sentences into windows
  that fit the reader (`passage_windows`), until `Settings.reader_tokens` word pieces are read
  (the first passage is always read whole). What the reader reads no longer depends on the
  words a sentence shares with the question, so a question in the asker's own words reaches
  the answer's sentence as often as one in the documents' words;
- **windows around the sentence scorer's best sentences** (0; the comparison setting): each a
  candidate sentence with up to two neighbours (`reader_windows`).

Each window is read after its document's title. The quoted sentence is the one holding the
reader's best span.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from qa.abbreviations import long_forms, spelled_out
from qa.config import Settings
from qa.encoder import resolve_device
from qa.index import Index
from qa.reader.model import READ_BATCH, WEIGHTS_DIR, Reading, load_reader, tokenizer
from qa.retrieval import Ranking, stored_vectors
from qa.scoring import SHORT_WORDS, ScoredSentence

# The reader reads this many windows: each a candidate sentence with its neighbours.
READER_WINDOWS = 3
# A second span (in other sentences) is quoted too when it scores within this much of the best:
# the reader hesitates between two readings, and the user sees both.
READER_SECOND_GAP = 2.0

# The reader reads each window after its document's title (see `reader_windows`): a report's
# sentences say "the authority" where the question names it. On the seed sets the confidence's
# ROC AUC rose from 0.865 to 0.890 (qa_pairs.jsonl) and from 0.942 to 0.966 (calibration.jsonl);
# on the SQuAD v2.0 training articles it moved from 0.839 to 0.835 (docs/layouts.md).
READER_TITLE = True
# A window around a scorer's sentence holds at most this many characters (about 100 word pieces).
WINDOW_CHARS = 500
# The chunk holding the sentence closest to the question among the first this many retrieved is
# read second (`reading_order`). On the development questions in users' own words, training
# articles as an open corpus, quotes holding the answer with abstention off rose from 0.815 to
# 0.864, and on eval/seeds_own_words_dev.jsonl from 0.600 to 0.633; qa_pairs.jsonl stayed 0.900.
SENTENCE_DEPTH = 20
# A window of a passage holds at most this many word pieces with its title: with the question
# (at most 64, most under 25) and three markers it fits the reader's 192.
WINDOW_TOKENS = 150


@dataclass(frozen=True)
class ReaderSpan:
    """A span the reader found: the sentence rows holding it and its offsets in the document."""

    rows: tuple[int, ...]
    doc_id: str
    answer_start: int
    answer_end: int
    score: float
    margin: float  # its window's span score minus no-answer score


@dataclass(frozen=True)
class ReaderPick:
    """What the reader found: its best span first, then any close runner-up in other sentences,
    and its evidence (the best margin over the windows: span score minus no-answer score)."""

    spans: tuple[ReaderSpan, ...]
    margin: float


@dataclass(frozen=True)
class Window:
    """Sentences of one document joined by spaces, after its title (`text[:prefix]`, context
    the reader reads but never answers from); `offsets[i]` is where `rows[i]` begins."""

    rows: tuple[int, ...]
    text: str
    offsets: tuple[int, ...]
    prefix: int = 0



def reader_windows(scored: Sequence[ScoredSentence], index: Index, limit: int = READER_WINDOWS,
                   max_chars: int = WINDOW_CHARS, with_title: bool | None = None) -> list[Window]:
    """Windows around the best `limit` candidate sentences not already inside a window: the
    sentence with up to two neighbours on each side in the same document, while the window
    stays under `max_chars` (the candidate itself is always whole). Headings, titles and
    bylines (under five words) are left out: they restate topics or credit photos."""
    out: list[Window] = []
    covered: set[int] = set()
    for cand in scored:
        if len(out) >= limit:
            break
        if cand.row in covered or cand.short_or_title:
            continue
        rows = [cand.row]
        length = len(cand.sentence.text)
        for step in (-1, 1, -2, 2):
            row = cand.row + step
            if not 0 <= row < len(index.sentences) or row in covered:
                continue
            near = index.sentences[row]
            if near.doc_id != cand.sentence.doc_id or length + 1 + len(near.text) > max_chars:
                continue
            if len(near.text.split()) < SHORT_WORDS:
                continue  # a byline or photo credit ("James Martin/CNET") is never the answer
            if step < 0 and rows[0] != row + 1 or step > 0 and rows[-1] != row - 1:
                continue
            rows = [row, *rows] if step < 0 else [*rows, row]
            length += 1 + len(near.text)
        out.append(_window(rows, index, READER_TITLE if with_title is None else with_title))
        covered.update(rows)
    return out


def _window(rows: Sequence[int], index: Index, titled: bool) -> Window:
    """The sentences `rows` (of one document) joined by spaces, after the document's title when
    `titled`: the title tells the reader what "the authority" is. It is left out when the window
    already holds it (a window at the top of its document)."""
    body = " ".join(index.sentences[r].text for r in rows)
    title = index.documents[index.sentences[rows[0]].doc_id].title.strip() if titled else ""
    prefix = "" if not title or title in body else title + (" " if title[-1] in ".!?:" else ". ")
    offsets, at = [], len(prefix)
    for row in rows:
        offsets.append(at)
        at += len(index.sentences[row].text) + 1
    return Window(tuple(rows), prefix + body, tuple(offsets), len(prefix))


def reading_order(ranking: Ranking, index: Index, depth: int = SENTENCE_DEPTH) -> list[int]:
    """The retrieved chunk rows in the order they are read: the ranking's, except that the chunk
    holding the sentence closest in meaning to the question (the embedding model's cosine, over
    the sentences of the first `depth` chunks) is read second when the ranking put it lower.

    A chunk's rank mixes its own vector, its best sentence and BM25; a question in the asker's
    own words can leave the one sentence that answers it in a chunk ranked sixth, where the
    reading budget never reaches (docs/reading.md)."""
    rows = [int(r) for r in ranking.rows]
    owners = [(row, r) for row in rows[:depth] for r in range(*(int(v) for v in index.chunk_sentences[row]))]
    if not owners:
        return rows
    sentences = np.asarray([r for _, r in owners], dtype=np.int64)
    cosines = stored_vectors(index, "sentence", sentences) @ ranking.query_vector
    best_row = owners[int(np.argmax(cosines))][0]   # one read of the vectors; ties: the higher-ranked chunk
    if rows.index(best_row) > 1:
        rows.remove(best_row)
        rows.insert(1, best_row)
    return rows


def passage_windows(ranking: Ranking, index: Index, limit: int, with_title: bool | None = None,
                    budget: int = 0, room: int = WINDOW_TOKENS, depth: int = SENTENCE_DEPTH) -> list[Window]:
    """The whole of the first `limit` passages in reading order (`reading_order`, with `depth`;
    0: the ranking's order), as windows of whole sentences.

    Each passage's sentences (those overlapping it) form a group; groups of one document that
    overlap or touch are merged; in that order, each group is packed into windows of at most
    `room` word pieces (title included; a longer sentence is a window of its own, which the
    reader cuts into overlapping pieces). With a `budget` (word pieces), groups are read in
    order until it is spent: the first always, then each that still fits.
    """
    order = reading_order(ranking, index, depth) if depth else [int(r) for r in ranking.rows]
    groups: list[list[int]] = []          # [first, last) sentence rows, in reading order
    for row in order[:limit]:
        lo, hi = (int(v) for v in index.chunk_sentences[int(row)])
        if hi <= lo:
            continue
        doc_id = index.sentences[lo].doc_id
        for group in groups:
            if index.sentences[group[0]].doc_id == doc_id and lo <= group[1] and hi >= group[0]:
                group[0], group[1] = min(group[0], lo), max(group[1], hi)
                break
        else:
            groups.append([lo, hi])
    titled = READER_TITLE if with_title is None else with_title
    out: list[Window] = []
    spent = 0
    for lo, hi in groups:
        sizes = [word_pieces(index.sentences[r].text) for r in range(lo, hi)]
        if budget and out and spent + sum(sizes) > budget:
            continue
        spent += sum(sizes)
        title = word_pieces(index.documents[index.sentences[lo].doc_id].title) if titled else 0
        start, used = lo, title
        for r, size in zip(range(lo, hi), sizes, strict=True):
            if r > start and used + size > room:
                out.append(_window(range(start, r), index, titled))
                start, used = r, title
            used += size
        out.append(_window(range(start, hi), index, titled))
    return out


@lru_cache(maxsize=1 << 16)
def word_pieces(text: str) -> int:
    """How many of the reader's word pieces `text` is."""
    return len(tokenizer().encode(text, add_special_tokens=False).ids)


def read_answer(question: str, scored: Sequence[ScoredSentence], index: Index,
                settings: Settings, ranking: Ranking | None = None) -> ReaderPick | None:
    """Run the reader over the whole of the first retrieved passages (`passage_windows`, with
    `settings.reader_passages` and a ranking) or else around the sentence scorer's best
    sentences (`reader_windows`); the sentence(s) holding its best span, or None when no
    window has one.

    A question with an abbreviation the documents spell out ("CISA") is read a second time with
    it spelled out (`qa.abbreviations`), and the reading with the larger margin stands."""
    windows = (passage_windows(ranking, index, settings.reader_passages, budget=settings.reader_tokens)
               if settings.reader_passages and ranking is not None else reader_windows(scored, index))
    if not windows:
        return None
    stop = settings.reader_stop_margin if settings.reader_passages and ranking is not None else 0.0
    pick = _read(question, windows, index, settings, stop)
    if ranking is not None:
        forms = long_forms(question, index, ranking.rows[:max(1, settings.top_k)])
        if forms:
            other = _read(spelled_out(question, forms), windows, index, settings, stop)
            if other is not None and (pick is None or other.margin > pick.margin):
                pick = other
    return pick


def _read(question: str, windows: list[Window], index: Index, settings: Settings, stop: float) -> ReaderPick | None:
    """Read `windows` in order, two at a time, until one's span beats its no-answer score by
    `stop` (0: read them all); the sentence(s) holding the best span, or None."""
    reader = load_reader(settings.reader_model or WEIGHTS_DIR, threads=settings.threads,
                         device=resolve_device(settings.device))
    step = READ_BATCH if stop else len(windows)
    readings: list[Reading] = []
    for at in range(0, len(windows), step):
        part = windows[at:at + step]
        readings += reader.read(question, [w.text for w in part], [w.prefix for w in part])
        if stop and any(r.start is not None and r.margin >= stop for r in readings):
            windows = windows[:len(readings)]   # the rest, further down the ranking, is not read
            break
    found = [(r, w) for r, w in zip(readings, windows, strict=True) if r.start is not None]
    if not found:
        return None
    best, *others = sorted((_located(r, w, index) for r, w in found), key=lambda x: -x.score)
    # The best runner-up that is close enough and leaves room joins, unless it shares a sentence.
    runner = next((x for x in others if x.score >= best.score - READER_SECOND_GAP and x.margin > 0
                   and len(best.rows) + len(x.rows) <= settings.max_answer_sentences), None)
    spans = (best,) if runner is None or set(runner.rows) & set(best.rows) else (best, runner)
    return ReaderPick(spans=spans, margin=max(r.margin for r, _ in found))


def _located(reading: Reading, window: Window, index: Index) -> ReaderSpan:
    """The document rows and offsets of a reading's span in `window`."""
    assert reading.start is not None and reading.end is not None

    def at(offset: int) -> tuple[int, int]:
        """(position in the window, offset into the document) of a window offset."""
        k = max(i for i, o in enumerate(window.offsets) if o <= offset)
        return k, index.sentences[window.rows[k]].start + offset - window.offsets[k]

    first, start = at(reading.start)
    last, end = at(max(reading.start, reading.end - 1))
    return ReaderSpan(rows=window.rows[first:last + 1], doc_id=index.sentences[window.rows[first]].doc_id,
                      answer_start=start, answer_end=end + 1, score=reading.span_score, margin=reading.margin)


