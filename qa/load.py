"""Reading a corpus folder: plain text, Markdown with YAML front matter, HTML, PDF, DOCX and
scanned images (the last three through qa/formats.py; scans are read by OCR, qa/ocr.py).

Every document keeps its whole file text (decoded exactly as `Path.read_text(encoding="utf-8")`
does, so offsets agree with what a user reads back) and the segments of it that are article body.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import html
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

from qa.clean import boilerplate_ranges, merge_ranges, page_furniture, subtract, trim
from qa.config import Settings
from qa.errors import CorpusError
from qa.formats import MAX_PDF_PAGES, UnreadableDocument, read_docx, read_image, read_pdf
from qa.ocr import OcrReader, ocr_reader
from qa.types import Document

SUFFIXES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
            ".html": "html", ".htm": "html", ".pdf": "pdf", ".docx": "docx",
            ".png": "image", ".jpg": "image", ".jpeg": "image", ".tif": "image", ".tiff": "image"}
MAX_TITLE_CHARS = 200


class SkippedFile(Exception):
    """A file that is not loaded, with the reason a user reads."""


def load_corpus(
    corpus: str | Path,
    on_skip: Callable[[str, str], None] | None = None,
    settings: Settings | None = None,
    ocr: OcrReader | None = None,
) -> tuple[list[Document], list[tuple[str, str]]]:
    """Load every supported file under `corpus`, sorted by path.

    Hidden files and folders are ignored. A file that cannot be used (empty, binary, not UTF-8,
    unsupported type, larger than `settings.max_file_mb`) is skipped with one reason and never
    stops the load. The corpus stays inside the corpus: a file or folder reached through a
    symbolic link whose target lies outside the corpus folder is skipped, unless
    `settings.follow_external_links` is True.

    Args:
        corpus: the corpus folder.
        on_skip: called with `(doc_id, reason)` for each skipped file, as it is found.
        settings: the limits above; `Settings()` when left out.
        ocr: reads scanned pages and images (default: as `settings.ocr` says).

    Returns:
        The documents, and the `(doc_id, reason)` pairs of the skipped files.

    Raises:
        CorpusError: the folder does not exist or is not a folder.
    """
    settings = settings or Settings()
    ocr = ocr or ocr_reader(settings)
    root = Path(corpus)
    check_corpus_folder(root)
    documents: list[Document] = []
    skipped: list[tuple[str, str]] = []

    def skip(doc_id: str, reason: str) -> None:
        skipped.append((doc_id, reason))
        if on_skip is not None:
            on_skip(doc_id, reason)

    for path, doc_id in _walk(root, settings.follow_external_links, skip):
        try:
            check_size(path, settings.max_file_mb)
            documents.append(load_document(path, doc_id, max_pdf_pages=settings.max_pdf_pages, ocr=ocr))
        except SkippedFile as exc:
            skip(doc_id, str(exc))
    return documents, skipped


def check_size(path: Path, max_file_mb: float) -> None:
    """Raises SkippedFile when `path` cannot be read or is larger than `max_file_mb`."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SkippedFile(f"cannot be read ({exc.strerror})") from None
    if size > int(max_file_mb * 1024 * 1024):
        raise SkippedFile(f"{size / 1024 / 1024:.1f} MB, above the {max_file_mb:g} MB limit (setting max_file_mb)")


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_corpus_folder(root: Path) -> None:
    """Raises CorpusError when `root` does not exist or is not a folder."""
    if not root.exists():
        raise CorpusError(f"Corpus folder not found: {root}. Pass an existing folder with --corpus.")
    if not root.is_dir():
        raise CorpusError(f"Corpus path is not a folder: {root}. Pass the folder that holds the documents.")


def corpus_files(root: Path, follow_external: bool = False) -> Iterator[tuple[Path, str]]:
    """`(path, doc_id)` of every file a build looks at (skipped links and folders left out)."""
    return _walk(root, follow_external, lambda _d, _r: None)


def _walk(root: Path, follow_external: bool,
          skip: Callable[[str, str], None]) -> Iterator[tuple[Path, str]]:
    """`(path, doc_id)` of every visible file under `root`, sorted by doc_id.

    Symbolic links are followed only when their target lies inside the corpus (or when
    `follow_external` says so). Each folder and each file is read once, under the name that
    reaches it without a link where there is one: linked folders are walked after every real
    one, and a file reached again (through a link, or a hard link: the same device and inode) is
    skipped with a line naming the one indexed. A name that is not valid UTF-8 is skipped too
    (it could not be stored in the index or shown safely).
    """
    real_root = root.resolve()
    seen_folders = {real_root}
    found: list[tuple[str, Path]] = []
    stack = [(root, "")]
    linked: list[tuple[Path, str]] = []   # folders reached through a link: walked after the real ones
    while stack or linked:
        if stack:
            folder, prefix = stack.pop()
        else:
            folder, name = linked.pop(0)
            real = folder.resolve()
            if real in seen_folders:
                where = "the corpus folder itself" if real == real_root else \
                    f"the folder {_shown_path(real, real_root)}"
                skip(name, f"symbolic link to {where}, which is read once, under its own name")
                continue
            seen_folders.add(real)
            prefix = name + "/"
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            skip(prefix.rstrip("/") or ".", f"folder cannot be read ({exc.strerror})")
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            doc_id = prefix + entry.name
            if not _is_utf8(entry.name):
                skip(doc_id, "the name is not valid UTF-8; rename it to index it")
                continue
            path = Path(entry.path)
            if entry.is_symlink():
                target = path.resolve()
                inside = target == real_root or real_root in target.parents
                if not inside and not follow_external:
                    skip(doc_id, f"symbolic link to {target}, outside the corpus; skipped "
                                 "(setting follow_external_links allows it)")
                    continue
                if not target.exists():
                    skip(doc_id, f"broken symbolic link (to {target})")
                    continue
            if path.is_dir():
                if entry.is_symlink():
                    linked.append((path, doc_id))
                    continue
                real = path.resolve()
                if real not in seen_folders:
                    seen_folders.add(real)
                    stack.append((path, doc_id + "/"))
            elif path.is_file():
                found.append((doc_id, path))
    yield from _once(found, real_root, skip)


def _once(found: list[tuple[str, Path]], real_root: Path,
          skip: Callable[[str, str], None]) -> Iterator[tuple[Path, str]]:
    """`found` sorted by doc_id, each file once: a file reached under two names (a symbolic or
    a hard link) keeps the name that reaches it without a link (else the first), and the other
    name is skipped with a line that names the one kept."""
    direct = {doc_id: path.resolve() == real_root / doc_id for doc_id, path in found}
    kept: dict[tuple[int, int], str] = {}
    chosen: dict[str, Path] = {}
    for doc_id, path in sorted(found, key=lambda f: (not direct[f[0]], f[0])):
        try:
            stat = path.stat()
        except OSError as exc:
            skip(doc_id, f"cannot be read ({exc.strerror})")
            continue
        key = (stat.st_dev, stat.st_ino)
        if key in kept:
            how = f"symbolic link to {kept[key]}" if not direct[doc_id] else \
                f"the same file as {kept[key]} (a hard link)"
            skip(doc_id, f"{how}, which is indexed under that name")
            continue
        kept[key] = doc_id
        chosen[doc_id] = path
    for doc_id in sorted(chosen):
        yield chosen[doc_id], doc_id


def _shown_path(real: Path, real_root: Path) -> str:
    return real.relative_to(real_root).as_posix() if real_root in real.parents else str(real)


def _is_utf8(name: str) -> bool:
    """Whether a name read from the file system was valid UTF-8 (Python keeps undecodable bytes
    as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def load_document(path: Path, doc_id: str, *, max_pdf_pages: int = MAX_PDF_PAGES,
                  ocr: OcrReader | None = None) -> Document:
    """Read one file into a `Document`; scanned pages and images are read by `ocr` (default: as
    `Settings()` says).

    Raises:
        SkippedFile: the file is empty, binary, not UTF-8, unsupported, or has no body text.
    """
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        supported = ", ".join(sorted(SUFFIXES))
        raise SkippedFile(f"unsupported file type {path.suffix or '(none)'!r}; supported: {supported}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SkippedFile(f"cannot be read ({exc.strerror})") from exc
    if not raw.strip():
        raise SkippedFile("empty file")
    if kind in ("pdf", "docx", "image"):
        return _load_extracted(path, doc_id, kind, raw, max_pdf_pages, ocr or ocr_reader(Settings()))
    if b"\x00" in raw[:8192]:
        raise SkippedFile("binary file (contains NUL bytes)")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SkippedFile(f"not UTF-8 text (bad byte at position {exc.start}); re-save it as UTF-8") from exc
    # Universal newlines, exactly as Path.read_text does: offsets must index what users read back.
    text = path.read_text(encoding="utf-8")
    sha256 = hashlib.sha256(raw).hexdigest()
    raw_date: object
    if kind == "html":
        title, raw_date, tags, spans = _parse_html(text)
    else:
        title, raw_date, tags, body = _parse_front_matter(text) or _parse_header(text) or (
            "", None, (), trim(text, 0, len(text)))
        spans = [body]
    date = read_date(raw_date)
    notes = () if date or raw_date in (None, "") else (
        f"date {_clip(str(raw_date))[:60]!r} not understood: left undated (write it as YYYY-MM-DD)",)
    segments = tuple(
        piece for span in spans for piece in subtract(span, boilerplate_ranges(text, *span), text)
    )
    if not segments:
        raise SkippedFile("no body text (only front matter, markup or boilerplate)")
    if not title:
        title = _first_line(text, segments) or _clip(path.stem.replace("_", " "))
    return Document(doc_id=doc_id, title=title, date=date, text=text, segments=segments,
                    tags=tags, sha256=sha256, notes=notes)


def _load_extracted(path: Path, doc_id: str, kind: str, raw: bytes, max_pdf_pages: int, ocr: OcrReader) -> Document:
    """A PDF, DOCX or scanned image: its extracted text is the document's text (stored with the index)."""
    sha256 = hashlib.sha256(raw).hexdigest()
    try:
        if kind == "pdf":
            got = read_pdf(path, max_pdf_pages, ocr, file_key=sha256)
        elif kind == "image":
            got = read_image(path, ocr, max_pdf_pages, file_key=sha256)
        else:
            got = read_docx(path)
    except UnreadableDocument as exc:
        raise SkippedFile(str(exc)) from None
    text = got.text
    holes = merge_ranges(boilerplate_ranges(text, 0, len(text)) + page_furniture(text, got.page_starts))
    segments = tuple(subtract((0, len(text)), holes, text))
    if not segments:
        raise SkippedFile("no body text (only boilerplate)")
    title = got.title or _first_line(text, segments) or _clip(path.stem.replace("_", " "))
    return Document(doc_id=doc_id, title=title, date=got.date, text=text, segments=segments,
                    sha256=sha256, kind=kind, page_starts=got.page_starts, notes=got.notes,
                    ocr_pages=got.ocr_pages)


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
    title = _clip(str(meta.get("title") or ""))
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
    return _clip(meta.get("title", "")), meta.get("date"), tags, trim(text, min(offset, len(text)), len(text))


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


_SKIP_CONTENT = re.compile(r"<(script|style|head|noscript|template|svg|iframe)\b[^>]*>.*?</\1\s*>",
                           re.S | re.I)
_TAG_OR_COMMENT = re.compile(r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<![^>]*>|<\?[^>]*>|</?[A-Za-z][^>]*>", re.S)
_BLOCK_TAGS = re.compile(
    r"</?(?:p|div|br|hr|h[1-6]|li|ul|ol|table|tr|td|th|section|article|header|footer|nav|aside|"
    r"main|blockquote|pre|figure|figcaption|dl|dt|dd|form|title|body|html)\b", re.I)


def _parse_html(text: str) -> tuple[str, str | None, tuple[str, ...], list[tuple[int, int]]]:
    """Title, date and the visible-text spans of an HTML page.

    A span runs across inline tags (`<a>`, `<b>`...) but stops at block tags, so a sentence
    with a link in it stays one piece; script, style and head contents are never text.
    """
    title_match = re.search(r"<title\b[^>]*>(.*?)</title\s*>", text, re.S | re.I) or re.search(
        r"<h1\b[^>]*>(.*?)</h1\s*>", text, re.S | re.I)
    title = _clip(html.unescape(re.sub(r"<[^>]*>", " ", title_match.group(1)))) if title_match else ""
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


def _first_line(text: str, segments: tuple[tuple[int, int], ...]) -> str:
    """The first line of the body that has words once list and heading marks are removed."""
    for start, end in segments[:5]:
        for line in text[start:end].split("\n")[:20]:
            title = _clip(re.sub(r"^[#>*•\-=_\s]+", "", line))
            if any(ch.isalnum() for ch in title):
                return title
    return ""


def _clip(title: str) -> str:
    title = " ".join(title.replace("\ufeff", "").split())
    return title if len(title) <= MAX_TITLE_CHARS else title[: MAX_TITLE_CHARS - 1].rstrip() + "…"
