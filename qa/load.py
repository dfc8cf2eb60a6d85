"""Reading a corpus folder: every file whose format qa reads (qa/formats: text, Markdown, HTML,
PDF, DOCX, e-mails, scanned images), found by its suffix.

Every document keeps its whole text (for text, Markdown and HTML the file decoded exactly as
`Path.read_text(encoding="utf-8")` does, so offsets agree with what a user reads back; for the
other formats the extracted text the index stores) and the segments of it that are body.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from qa.clean import boilerplate_ranges, merge_ranges, page_furniture, subtract
from qa.config import Settings
from qa.errors import CorpusError
from qa.formats import ReadOptions, UnreadableDocument, format_for, upload_types
from qa.formats.common import clip_title
from qa.ocr import OcrReader, ocr_reader
from qa.types import Document


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


def load_document(path: Path, doc_id: str, *, max_pdf_pages: int | None = None,
                  ocr: OcrReader | None = None) -> Document:
    """Read one file into a `Document` by its format (qa/formats); scanned pages and images are
    read by `ocr` (default: as `Settings()` says), at most `max_pdf_pages` pages (default: as
    `Settings()` says).

    Raises:
        SkippedFile: the file is empty, unsupported, unreadable in its format, or has no body text.
    """
    found = format_for(path)
    if found is None:
        raise SkippedFile(f"unsupported file type {path.suffix or '(none)'!r}; supported: {', '.join(upload_types())}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SkippedFile(f"cannot be read ({exc.strerror})") from exc
    if not raw.strip():
        raise SkippedFile("empty file")
    sha256 = hashlib.sha256(raw).hexdigest()
    options = ReadOptions(Settings().max_pdf_pages if max_pdf_pages is None else max_pdf_pages, sha256, ocr)
    try:
        got = found.read(path, raw, options)
    except UnreadableDocument as exc:
        raise SkippedFile(str(exc)) from None
    text = got.text
    furniture = page_furniture(text, got.page_starts)
    spans = got.spans if got.spans is not None else ((0, len(text)),)
    segments = tuple(piece for span in spans
                     for piece in subtract(span, merge_ranges(boilerplate_ranges(text, *span) + furniture), text))
    if not segments:
        # A reader that marks the body (spans) read past front matter or markup to find it.
        raise SkippedFile("no body text (only front matter, markup or boilerplate)" if got.spans is not None
                          else "no body text (only boilerplate)")
    title = got.title or _first_line(text, segments) or clip_title(path.stem.replace("_", " "))
    return Document(doc_id=doc_id, title=title, date=got.date, text=text, segments=segments, tags=got.tags,
                    sha256=sha256, kind=found.kind, page_starts=got.page_starts, notes=got.notes,
                    ocr_pages=got.ocr_pages, author=got.author)


def _first_line(text: str, segments: tuple[tuple[int, int], ...]) -> str:
    """The first line of the body that has words once list and heading marks are removed."""
    for start, end in segments[:5]:
        for line in text[start:end].split("\n")[:20]:
            title = clip_title(re.sub(r"^[#>*•\-=_\s]+", "", line))
            if any(ch.isalnum() for ch in title):
                return title
    return ""
