"""HTML pages (.html, .htm): the file's own text is the document's, offsets index it, and the
body is the visible text (script, style and head contents are never text; markup is dropped only
in what the models read, `qa.clean.model_text`).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from qa.clean import trim
from qa.formats.common import Extracted, ReadOptions, clip_title
from qa.formats.text import dated, decode_text


def read_html_file(path: Path, raw: bytes, options: ReadOptions) -> Extracted:
    """An HTML page: its text, title, date and the visible-text spans.

    Raises:
        UnreadableDocument: binary, or not UTF-8.
    """
    text = decode_text(path, raw)
    title, raw_date, tags, spans = parse_html(text)
    date, notes = dated(raw_date)
    return Extracted(text, title, date, notes=notes, spans=tuple(spans), tags=tags)


_SKIP_CONTENT = re.compile(r"<(script|style|head|noscript|template|svg|iframe)\b[^>]*>.*?</\1\s*>",
                           re.S | re.I)
_TAG_OR_COMMENT = re.compile(r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<![^>]*>|<\?[^>]*>|</?[A-Za-z][^>]*>", re.S)
_BLOCK_TAGS = re.compile(
    r"</?(?:p|div|br|hr|h[1-6]|li|ul|ol|table|tr|td|th|section|article|header|footer|nav|aside|"
    r"main|blockquote|pre|figure|figcaption|dl|dt|dd|form|title|body|html)\b", re.I)


def parse_html(text: str) -> tuple[str, str | None, tuple[str, ...], list[tuple[int, int]]]:
    """Title, date and the visible-text spans of an HTML page.

    A span runs across inline tags (`<a>`, `<b>`...) but stops at block tags, so a sentence
    with a link in it stays one piece; script, style and head contents are never text.
    """
    title_match = re.search(r"<title\b[^>]*>(.*?)</title\s*>", text, re.S | re.I) or re.search(
        r"<h1\b[^>]*>(.*?)</h1\s*>", text, re.S | re.I)
    title = clip_title(html.unescape(re.sub(r"<[^>]*>", " ", title_match.group(1)))) if title_match else ""
    date = None
    meta_date = re.search(
        r"<meta\b[^>]*(?:name|property)=[\"'](?:date|article:published_time|dc\.date|pubdate)[\"']"
        r"[^>]*content=[\"']([^\"']+)[\"']", text, re.I) or re.search(
        r"<time\b[^>]*datetime=[\"']([^\"']+)[\"']", text, re.I)
    if meta_date:
        date = meta_date.group(1)
    hidden = [m.span() for m in _SKIP_CONTENT.finditer(text)]
    spans: list[tuple[int, int]] = []
    cursor = 0
    run_start: int | None = None
    run_end = 0

    def close_run() -> None:
        nonlocal run_start
        if run_start is not None:
            spans.append(trim(text, run_start, run_end))
        run_start = None

    for tag in _iter_tags(text, hidden):
        if text[cursor:tag[0]].strip():
            if run_start is None:
                run_start = cursor
            run_end = tag[0]
        if _BLOCK_TAGS.match(text, tag[0]) or not text.startswith("<", tag[0]) or tag[2]:
            close_run()
        cursor = tag[1]
    if text[cursor:].strip():
        if run_start is None:
            run_start = cursor
        run_end = len(text)
    close_run()
    return title, date, (), [s for s in spans if s[1] > s[0]]


def _iter_tags(text: str, hidden: list[tuple[int, int]]) -> list[tuple[int, int, bool]]:
    """Tags, comments and hidden blocks in order, as `(start, end, breaks_text)` triples."""
    marks = [(s, e, True) for s, e in hidden]
    for m in _TAG_OR_COMMENT.finditer(text):
        if not any(s <= m.start() < e for s, e in hidden):
            marks.append((m.start(), m.end(), m.group().startswith("<!") or m.group().startswith("<?")))
    return sorted(marks)
