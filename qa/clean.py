"""Which parts of a file are the article: boilerplate detection, and the text shown to the models.

News pages carry lines that are not the article ("Advertisement", donation pleas, "Editors'
Recommendations", "3 min read"). Left in, they become chunks of their own that match many
questions weakly and crowd real passages out of the top k. They are cut out of a document's
*segments* (the ranges that get chunked and indexed), never out of its text, so offsets into
the source file stay exact.
"""

from __future__ import annotations

import html
import re

# Whole lines that are page furniture, not article text (matched case-insensitively, stripped).
_BOILERPLATE_LINES = [
    r"advertisement",
    r"skip to (?:main )?content",
    r"editors?['’]? ?(?:recommendations?|picks?)",
    r"\d+ min(?:ute)?s? read",
    r"comments?(?: \(\d+\))?",
    r"join (?:our|the) (?:commenting forum|conversation|discussion)",
    r"join thought-provoking conversations.*",
    r"(?:sign up|subscribe|register)\b.{0,160}",
    r".{0,60}\bnewsletters?\b.{0,60}",
    r"watch this:.*",
    r"(?:read more|related(?: articles?| stories)?|recommended(?: stories)?|more from .{1,60})[:.]?.{0,160}",
    r"(?:share|follow us)(?: (?:this|on) .{0,60})?",
    r"complimentary tech event",
    r"know more",
    r"\{\{.*\}\}",
    r"(?:photo|image|credit|getty images)[:.]?.{0,80}",
    r"your support (?:helps us|makes all the difference)\b.{0,80}",
    # A donation plea names both the donation and the journalism it pays for.
    r"(?=.{0,400}\b(?:support|journalism|journalists|reporting)\b).{0,400}\b(?:donation|donate|paywalls?)\b.{0,400}",
]
_LINE_RE = re.compile(r"^[ \t]*(?:" + "|".join(_BOILERPLATE_LINES) + r")[ \t]*$", re.I | re.M)

# Multi-line blocks and glued phrases: a donation box from its heading to its sign-off, and an
# advertorial box from its heading to its "Know More" button or the next blank line.
_BLOCKS = [
    re.compile(r"Your support helps us to tell the story.{0,3000}?Your support makes all the difference\.",
               re.S),
    re.compile(r"^Complimentary Tech Event\n(?:.*\S.*\n?)*?(?:.*Know More[ \t]*\n?|(?=\n))", re.M),
]


def boilerplate_ranges(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Ranges of `text[start:end]` that are page furniture, as sorted, merged `(start, end)` pairs.

    Besides the patterns above, a line that repeats an earlier line of the same document word
    for word (a title printed twice, a teaser bullet repeating the lede) is dropped too.
    """
    end = len(text) if end is None else end
    found: list[tuple[int, int]] = []
    for block in _BLOCKS:
        found.extend(m.span() for m in block.finditer(text, start, end))
    found.extend(m.span() for m in _LINE_RE.finditer(text, start, end))
    seen: set[str] = set()
    for m in re.finditer(r"[^\n]+", text[start:end]):
        key = " ".join(m.group().split()).lower().lstrip("•*-– ")
        if len(key) < 20:
            continue
        if key in seen:
            found.append((start + m.start(), start + m.end()))
        seen.add(key)
    return merge_ranges(found)


# A line that is only a page number: "7", "- 7 -", "Page 7", "Page 7 of 12", "7/12", "7 | Report".
_PAGE_NUMBER = re.compile(r"[\W_]*(?:page|p\.|seite)?\s*\d{1,4}\s*(?:(?:of|/|\|)\s*\d{1,4})?[\W_]*", re.I)
# Page furniture sits in the first or last few lines of a page.
FURNITURE_LINES = 3


def page_furniture(text: str, page_starts: tuple[int, ...]) -> list[tuple[int, int]]:
    """Running headers, footers and page numbers of a paged document, as `(start, end)` ranges.

    The rule: among the first and last FURNITURE_LINES non-blank lines of each page, a line is
    furniture when, with its digits ignored, the same line stands in that place on at least half
    of the pages (and two or more), when it is only a page number, or when it ends with this
    page's own "n/m" or "Page n of m" (a footer such as Chromium's "file:///report.html 1/1",
    which marks a one-page document too). A page whose every line repeats is left whole (it is
    the author's text, not furniture around it). The ranges are left out of what is indexed,
    never out of the text.
    """
    if not page_starts:
        return []
    bounds = [*page_starts[1:], len(text)]
    places: list[list[tuple[str, int, int]]] = []
    counts: list[int] = []
    for page_start, page_end in zip(page_starts, bounds, strict=True):
        lines = [(m.start(), m.end()) for m in re.finditer(r"[^\n]*\S[^\n]*", text[page_start:page_end])]
        counts.append(len(lines))
        edge = lines[:FURNITURE_LINES] + lines[max(FURNITURE_LINES, len(lines) - FURNITURE_LINES):]
        places.append([(_furniture_key(text[page_start + s:page_start + e]), page_start + s, page_start + e)
                       for s, e in edge])
    pages_with: dict[str, int] = {}
    for page in places:
        for key in {key for key, _, _ in page}:
            pages_with[key] = pages_with.get(key, 0) + 1
    needed = max(2, (len(page_starts) + 1) // 2)
    total = len(page_starts)
    found: list[tuple[int, int]] = []
    for number, (page, count) in enumerate(zip(places, counts, strict=True), start=1):
        numbered = [(s, e) for _, s, e in page
                    if (total > 1 and _PAGE_NUMBER.fullmatch(text[s:e].strip()))
                    or re.search(rf"(?:^|\s)(?:page\s*)?{number}\s*(?:/|of)\s*{total}\s*$", text[s:e], re.I)]
        repeated = [(s, e) for key, s, e in page if total > 1 and pages_with[key] >= needed]
        # A page made only of repeated lines is the author's text repeated (a form, a slide
        # deck's boilerplate page), not furniture around a body: it stays.
        if len({*numbered, *repeated}) >= count:
            repeated = []
        found += numbered + repeated
    return merge_ranges(found)


def _furniture_key(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split()).lower())


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in sorted(ranges):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def subtract(span: tuple[int, int], holes: list[tuple[int, int]], text: str) -> list[tuple[int, int]]:
    """`span` minus the `holes`, each piece trimmed of surrounding whitespace, empty ones dropped."""
    pieces: list[tuple[int, int]] = []
    cursor = span[0]
    for s, e in holes:
        if e <= cursor or s >= span[1]:
            continue
        pieces.append((cursor, max(cursor, s)))
        cursor = max(cursor, e)
    pieces.append((cursor, span[1]))
    return [t for t in (trim(text, s, e) for s, e in pieces) if t[1] > t[0]]


def trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink `[start, end)` past leading and trailing whitespace (a byte-order mark counts)."""
    while start < end and (text[start].isspace() or text[start] == "\ufeff"):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] == "\ufeff"):
        end -= 1
    return start, end


_MD_LINK = re.compile(r"\[([^\]\n]*)\]\((?:[^()\s]|\([^()\s]*\))*(?:\s+\"[^\"\n]*\")?\)")
_TAG = re.compile(r"<[^>]*>")
_HEADING = re.compile(r"^[ \t]*#{1,6}[ \t]+", re.M)
# A word broken across a line ("infor-\nmation"): mended for the models, kept in the source.
_LINE_HYPHEN = re.compile(r"(?<=[^\W\d_])-\n(?=[a-z])")


def model_text(raw: str) -> str:
    """What the embedding model and BM25 read for a piece of source text.

    Markdown link targets and HTML tags add URL noise without meaning; they are dropped here,
    and a word hyphenated across a line break is mended (the quote the user sees is still the
    verbatim source).
    """
    text = _MD_LINK.sub(r"\1", raw)
    if "-\n" in text:
        text = _LINE_HYPHEN.sub("", text)
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    return _HEADING.sub("", text)
