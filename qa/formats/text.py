"""Plain text (.txt) and Markdown (.md): the file's own text is the document's, offsets index it.

Metadata comes from YAML front matter (a file that opens with `---`: title, date, tags) or from a
header block of `Key: value` lines (`Title:`, `Date:`, `Subject:`...), in either kind of file; the
body is what follows. Dates written in the usual ways are stored as ISO (`read_date`).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from pathlib import Path

import yaml

from qa.clean import trim
from qa.formats.common import Extracted, ReadOptions, UnreadableDocument, clip_title


def read_text_file(path: Path, raw: bytes, options: ReadOptions) -> Extracted:
    """A text or Markdown file: its text, title, date and tags, and the body's span.

    Raises:
        UnreadableDocument: binary, or not UTF-8.
    """
    text = decode_text(path, raw)
    title, raw_date, tags, body = _parse_front_matter(text) or _parse_header(text) or (
        "", None, (), trim(text, 0, len(text)))
    date, notes = dated(raw_date)
    return Extracted(text, title, date, notes=notes, spans=(body,), tags=tags)


def decode_text(path: Path, raw: bytes) -> str:
    """The file's text as `Path.read_text(encoding="utf-8")` gives it (what users read back).

    Raises:
        UnreadableDocument: binary (NUL bytes near the start), or not UTF-8.
    """
    if b"\x00" in raw[:8192]:
        raise UnreadableDocument("binary file (contains NUL bytes)")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableDocument(f"not UTF-8 text (bad byte at position {exc.start}); re-save it as UTF-8") from exc
    # Universal newlines, exactly as Path.read_text does: offsets must index what users read back.
    return path.read_text(encoding="utf-8")


def dated(raw_date: object) -> tuple[str | None, tuple[str, ...]]:
    """A date as written, read as ISO (`read_date`), and the note for the user when it cannot be."""
    date = read_date(raw_date)
    notes = () if date or raw_date in (None, "") else (
        f"date {clip_title(str(raw_date))[:60]!r} not understood: left undated (write it as YYYY-MM-DD)",)
    return date, notes


_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\n(.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)


def _parse_front_matter(text: str) -> tuple[str, object, tuple[str, ...], tuple[int, int]] | None:
    """YAML front matter (in any text or Markdown file that opens with `---`): title, date as
    written, tags and the body span; None when the file has none."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return None
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        # Broken YAML ("title: Foo: bar"): read its plain `key: value` lines, as a person would.
        meta = _loose_front_matter(match.group(1))
    if not isinstance(meta, dict):
        # Not front matter after all (a horizontal rule): index it as text.
        return None
    title = clip_title(str(meta.get("title") or ""))
    tags = meta.get("tags") or ()
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",")]
    elif not isinstance(tags, list | tuple):
        tags = [tags]
    return (title, meta.get("date"), tuple(str(t) for t in tags if str(t).strip()),
            trim(text, match.end(), len(text)))


# A plain-text header block, as news databases and saved e-mails write one (`Subject:` is a title):
#   Title: Harbour report
#   Date: March 5, 2024
#   Source: The Portvale Gazette
# Every line must name one of these keys, and a title or a date must be among them, so prose that
# happens to open with "Note: ..." stays text.
HEADER_KEYS = {
    "title": "title", "headline": "title", "subject": "title",
    "date": "date", "published": "date", "publication date": "date", "date published": "date",
    "load-date": "date", "load date": "date",
    "tags": "tags", "keywords": "tags",
    **{k: "" for k in ("author", "authors", "by", "byline", "source", "publication", "publisher",
                       "url", "link", "section", "language", "length", "words", "copyright",
                       "from", "to", "cc")},
}
MAX_HEADER_LINES = 30
# A `key: value` line, in a header block or in front matter that YAML rejects.
_KEY_LINE = re.compile(r"([A-Za-z_][\w -]{0,40}?)[ \t]*:[ \t]*(.*?)[ \t]*")


def _parse_header(text: str) -> tuple[str, object, tuple[str, ...], tuple[int, int]] | None:
    """A header block of `Key: value` lines opening a text file (see `HEADER_KEYS`): title, date
    as written, tags and the body span after it; None when the file does not open with one."""
    offset = 1 if text.startswith("\ufeff") else 0
    meta: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        end = text.find("\n", offset)
        end = len(text) if end < 0 else end
        found = _KEY_LINE.fullmatch(text, offset, end)
        role = HEADER_KEYS.get(" ".join(found.group(1).lower().split())) if found and found.group(2) else None
        if found is None or role is None:
            break
        if role:
            meta.setdefault(role, found.group(2))
        offset = end + 1
        if offset >= len(text):
            break
    if "title" not in meta and "date" not in meta:
        return None
    tags = tuple(t.strip() for t in re.split(r"[,;]", meta.get("tags", "")) if t.strip())
    return clip_title(meta.get("title", "")), meta.get("date"), tags, trim(text, min(offset, len(text)), len(text))


def _loose_front_matter(block: str) -> dict[str, str] | None:
    """`key: value` lines of front matter that YAML rejects; None when there are none."""
    meta = {}
    for line in block.splitlines():
        m = _KEY_LINE.fullmatch(line)
        if m and m.group(1).lower() not in meta:
            meta[m.group(1).lower()] = m.group(2).strip("\"'")
    return meta or None


_DATE_FORMATS = ("%B %d, %Y", "%b %d, %Y", "%B %d %Y", "%b %d %Y", "%d %B %Y", "%d %b %Y",
                 "%d %B, %Y", "%d %b, %Y", "%Y/%m/%d", "%Y %m %d", "%B %Y", "%b %Y", "%Y-%m")
_WEEKDAY = re.compile(r"^(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+", re.I)


def read_date(value: object) -> str | None:
    """A document's date as an ISO string, or None when there is none or it cannot be read.

    Dates stay dates and timestamps keep their time (`2024-03-05`, `2024-03-05T10:00:00+00:00`);
    RFC 2822 (`Tue, 05 Mar 2024 10:00:00 +0000`) and the usual written forms (`March 5, 2024`,
    `5 Mar. 2024`, `Sept. 5th, 2024`, `2024/03/05`; a month or a year alone is its first day) become ISO.
    Ambiguous forms such as `03/05/2024` are not guessed. Date filters compare ISO strings, so a
    date kept as written would be compared as text."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):   # a datetime is a date too
        return value.isoformat()
    text = " ".join(str(value).split())
    for parse in (dt.date.fromisoformat, dt.datetime.fromisoformat):
        try:
            return parse(text).isoformat()
        except ValueError:
            continue
    try:
        return email.utils.parsedate_to_datetime(text).isoformat()
    except (TypeError, ValueError, IndexError):
        pass
    if re.fullmatch(r"[12]\d{3}", text):   # a year alone: its first day
        return f"{text}-01-01"
    plain = re.sub(r"(?<=\d)(?:st|nd|rd|th)\b", "", text, flags=re.I)
    plain = re.sub(r"\b(Sept)\b", "Sep", plain.replace(".", " ").replace(" ,", ","), flags=re.I)
    plain = _WEEKDAY.sub("", " ".join(plain.split()))
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(plain, fmt).date().isoformat()
        except ValueError:
            continue
    return None
