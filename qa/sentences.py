"""Sentence boundaries with exact offsets: the author's sentences, not the file's lines.

Two layers, both exact to the character:

1. **Layout** (`layout_view`): which line breaks end a unit of text. A blank line, a heading, a
   list item, a table row, a byline or a short line ends one; a line break inside a wrapped
   paragraph (PDF lines, hard-wrapped .txt and e-mail, DOCX soft breaks) does not. The view is
   the text with every soft break turned into a space (and a continued e-mail quote's "> "
   into spaces), so it has the same length and every offset into it is an offset into the text.
2. **Sentences** inside each unit, from pysbd (Python Sentence Boundary Disambiguation, rule
   based, char spans). It was chosen by measurement over sentencex, blingfire, spaCy's
   sentencizer and the hand-written rules this module held before: `qa bench sentences` scores
   them on the annotated boundaries of eval/sentences/ (docs/sentences.md has the table).

Nothing here knows the seed corpus: no word lists of its own, no names.
"""

# pysbd (only for wrapped text) is imported inside the functions that use them, on purpose:
# importing this module stays cheap (`import qa` loads neither torch nor FAISS, and `qa --help`
# starts at once).

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

# A line that is a list item, a heading or a quote: its marker is left out of the sentence
# (`qa bench sentences` strips it from the gold the same way).
MARKER = re.compile(r"[ \t]*(?:#{1,6}[ \t]+|[-*•·–—▪◦>][ \t]+|\(?\d{1,3}[.)][ \t]+|\(?[a-z][)][ \t]+)+")
_QUOTE_PREFIX = re.compile(r"[ \t]*(?:>[ \t]?)+")
_BULLET = re.compile(r"[ \t]*[-*•·–—▪◦][ \t]+")
_NUMBERED = re.compile(r"[ \t]*(?:\(?\d{1,3}[.)][ \t]+|\(?[a-z][)][ \t]+)")
_HEADING = re.compile(r"[ \t]*#{1,6}[ \t]")
# Fixed-width or pipe tables: two cell gaps of 3+ spaces or a tab, or two pipes.
_TABLE_ROW = re.compile(r"\S(?: {3,}|\t)\S.*\S(?: {3,}|\t)\S|\|.*\|")
# Wrapped lines are at most this wide; a file whose lines run longer keeps a paragraph per line.
MAX_WRAP_WIDTH = 200
# A line at least this share of the wrap width, followed by more prose, was wrapped.
FULL_LINE = 0.7


def wrap_width(text: str) -> int | None:
    """The width a hard-wrapped text was wrapped at (the 90th percentile of its line lengths),
    or None when its lines are paragraphs (fewer than 4 lines, or wider than MAX_WRAP_WIDTH)."""
    lengths = sorted(len(line.rstrip()) for line in text.split("\n") if line.strip())
    if len(lengths) < 4:
        return None
    width = lengths[min(len(lengths) - 1, int(0.9 * len(lengths)))]
    return width if width <= MAX_WRAP_WIDTH else None


def layout_view(text: str, start: int = 0, end: int | None = None, width: int | None = None,
                skip: Sequence[tuple[int, int]] = ()) -> str:
    """`text[start:end]` with its soft line breaks turned into spaces (same length).

    A line break stays a break (it ends a unit) when the next line is blank, a list item, a
    heading or a table row, when this line is a heading, a table row, all capitals, ends in a
    colon before a capital, or is short (under FULL_LINE of `width`, or any length when the text
    is not wrapped) and the next line does not start in lower case. Otherwise the lines are one
    paragraph: the break becomes a space, and so does a continued quote's "> " prefix.

    `skip`: ranges that are not the author's text (a PDF's running header and footer between two
    pages); they become spaces, and the lines on either side are judged as if adjacent, so a
    sentence carried over to the next page stays one sentence.
    """
    end = len(text) if end is None else end
    view = list(text[start:end])
    hidden = [0] * (len(view) + 1)      # prefix sums: newlines inside skipped ranges
    for s, e in skip:
        s, e = max(s, start) - start, min(e, end) - start
        for i in range(s, e):
            if view[i] != "\n":
                view[i] = " "
            else:
                hidden[i + 1] = 1
    for i in range(len(view)):
        hidden[i + 1] += hidden[i]
    joined = "".join(view)
    lines, at = [], 0
    for line in joined.split("\n"):
        if line.strip():
            lines.append((at, at + len(line)))
        at += len(line) + 1
    for (a_start, a_end), (b_start, _b_end) in zip(lines, lines[1:], strict=False):
        shown_newlines = joined.count("\n", a_end, b_start) - (hidden[b_start] - hidden[a_end])
        if shown_newlines > 1:
            continue                                   # a blank line: a new paragraph
        a, b = joined[a_start:a_end], joined[b_start:_b_end]
        a_quote, b_quote = _QUOTE_PREFIX.match(a), _QUOTE_PREFIX.match(b)
        if bool(a_quote) != bool(b_quote):
            continue
        prefix = b_quote.end() if b_quote else 0
        soft = _soft_break(a[a_quote.end():] if a_quote else a, b[prefix:], width)
        for i in range(a_end, b_start + (prefix if soft else 0)):
            view[i] = " "
        if not soft:
            view[a_end] = "\n"
    return "".join(view)


def _soft_break(a: str, b: str, width: int | None) -> bool:
    """Whether the line break between lines `a` and `b` (quote prefixes removed) is a wrap."""
    a, b_text = a.rstrip(), b.strip()
    if not a.strip() or not b_text:
        return False
    wrapped = width is not None and len(a) >= FULL_LINE * width
    if _BULLET.match(b) or _HEADING.match(b) or _HEADING.match(a) or _TABLE_ROW.search(a) \
            or _TABLE_ROW.search(b) or _is_heading(a):
        return False
    if _NUMBERED.match(b) and (not wrapped or re.search(r"[.!?:;]\W*$", a)):
        return False                                   # "2. Findings" after a full line
    if b_text[0].islower():
        return True                                    # a sentence goes on ("… the\nauthority")
    if a.endswith(":"):
        return False
    return wrapped


def _is_heading(line: str) -> bool:
    """All capitals, or three or more words each capitalised (small words aside) and no sentence
    punctuation: a title, a heading or a signature line, not wrapped prose."""
    letters = [c for c in line if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return True
    words = [w for w in re.findall(r"[^\W\d_][\w'’-]*", line) if w.lower() not in _SMALL_WORDS]
    return (len(words) >= 3 and all(w[0].isupper() for w in words)
            and not re.search(r"[.!?:;,]\W*$|[.!?]\s", line))


_SMALL_WORDS = {"a", "an", "the", "of", "and", "or", "for", "in", "on", "at", "to", "by", "with", "from", "de"}
# Abbreviations after which a segmenter's cut is undone when the next word is lower case, a
# number or punctuation ("approx. 3.5", "Thurs., March", "Wed. afternoon"); the titles also
# before a capital ("Dr. Okafor"). General English, not any corpus's vocabulary.
ABBREVIATIONS = {
    "approx", "no", "nos", "vol", "vols", "fig", "figs", "tel", "ext", "dept", "est", "deg", "min", "max",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri", "sat", "sun", "p", "pp", "ch", "sec", "art",
    "vs", "etc", "e.g", "i.e", "cf", "al", "inc", "ltd", "co", "corp", "st", "ave", "blvd", "rd", "mt", "ft",
}
TITLES = {"mr", "mrs", "ms", "dr", "prof", "gen", "gov", "sen", "rep", "rev", "capt", "lt", "col", "sgt",
          "cmdr", "adm", "hon", "messrs", "mme", "mlle", "jr", "sr"}
_WORD_BEFORE = re.compile(r"([\w.]+)\.[\"'”’)\]]*\s*$")


def _keeps(unit: str, cut: int) -> bool:
    """Whether a cut a segmenter made at `unit[:cut]` ends a sentence (see ABBREVIATIONS)."""
    before = _WORD_BEFORE.search(unit, max(0, cut - 24), cut)
    after = unit[cut:].lstrip()
    if before is None or not after:
        return True
    word = before.group(1).lower()
    if word in TITLES:
        return False
    return not (word in ABBREVIATIONS and (after[0].islower() or after[0].isdigit() or after[0] in ",;:(+-–"))


Cuts = Callable[[str], list[int]]


def split_sentences(text: str, start: int = 0, end: int | None = None, width: int | None = -1,
                    skip: Sequence[tuple[int, int]] = (), *, layout: bool = True,
                    cuts: Cuts | None = None) -> list[tuple[int, int]]:
    """`(start, end)` offsets of the sentences of `text[start:end]`, trimmed, in order.

    `width`: the wrap width of the whole text (`wrap_width(text)`); -1 computes it here, so
    callers that split many ranges of one text pass it once. `skip`: see `layout_view`; a
    sentence that runs across a skipped range holds it. `layout=False` ends a sentence at every
    line break (as before qa 0.5); `cuts` replaces pysbd (`qa bench sentences` compares others).

    Every returned range satisfies `text[s:e].strip() == text[s:e]`, holds at least one letter or
    digit, and starts after any list, heading or quote marker.
    """
    end = len(text) if end is None else end
    if width == -1:
        width = wrap_width(text)
    view = layout_view(text, start, end, width, skip) if layout else text[start:end]
    cuts = cuts or pysbd_cuts
    spans: list[tuple[int, int]] = []
    for unit in re.finditer(r"[^\n]+", view):
        unit_start, unit_end = start + unit.start(), start + unit.end()
        marker = MARKER.match(text, unit_start, unit_end)
        if marker:   # a list, heading or quote marker is not part of the sentence
            unit_start = marker.end()
        line = view[unit_start - start:unit_end - start]
        cursor = unit_start
        # A table row (one line of the text) is one unit: its cells are not sentences.
        row = "\n" not in text[unit_start:unit_end] and _TABLE_ROW.search(line)
        for cut in ([] if row else [c for c in cuts(line) if _keeps(line, c)]):
            _add(text, view, start, cursor, unit_start + cut, spans)
            cursor = unit_start + cut
        _add(text, view, start, cursor, unit_end, spans)
    return spans


def pysbd_cuts(unit: str) -> list[int]:
    """Offsets inside `unit` (one line of the layout view) where pysbd ends a sentence."""
    # Only the ends of pysbd's spans are used: whatever it might leave out between two spans
    # stays in a sentence, so the sentences always cover the unit.
    with _LOCK:
        spans = _pysbd().segment(unit)
    return [s.end for s in spans[:-1]]


_LOCK = threading.Lock()   # a pysbd Segmenter keeps the text it works on in the instance


@lru_cache(maxsize=1)
def _pysbd() -> Any:
    import pysbd

    return pysbd.Segmenter(language="en", clean=False, char_span=True)


def _add(text: str, view: str, offset: int, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    """Add `text[start:end]`, trimmed where the layout view (`view[i - offset]`) is blank, so a
    skipped range (page furniture) never ends or starts a sentence."""
    marker = MARKER.match(text, start, end)
    if marker:
        start = marker.end()
    while start < end and view[start - offset].isspace():
        start += 1
    while end > start and view[end - 1 - offset].isspace():
        end -= 1
    if end > start and any(ch.isalnum() for ch in view[start - offset:end - offset]):
        spans.append((start, end))
