"""Adding files to a corpus and removing them, each followed by an incremental index update.

The chat's upload control and its documents list call these; so can any program:

    report = qa.manage.add_files(["~/Downloads/report.pdf"], settings=settings)
    report = qa.manage.remove_document("uploads/report.pdf", settings=settings)

What they promise:

- **Checked before anything is written.** A file is added only when the index would keep it: a
  supported type, at most `settings.max_file_mb`, readable by the same reader the build uses
  (a broken or encrypted PDF, a zip bomb named .docx, a binary .txt are refused with the
  reader's one-line reason), and not already in the corpus: a file whose sha256 is already
  indexed is reported as the document it duplicates. At most `MAX_FILES_PER_ADD` files a call.
- **Nothing the user had is lost.** Added files are copied into `<corpus>/uploads/` under their
  own (cleaned) name, never over an existing file. A removed document's file is moved to
  `<corpus>/.removed/<UTC time>/<doc_id>` (hidden folders are not indexed), not deleted.
  When the index update fails, the files just added are taken out again and the old index
  stays as it was (the build swaps in a new index atomically, or nothing).
- **One change at a time.** Calls are serialised in this process (a second one waits up to
  `wait` seconds, then says another change is running), and the build's own lock keeps other
  processes out.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.errors import QAError, QueryError
from qa.index import Index, build_index, load_index
from qa.load import SkippedFile, check_size, load_document, sha256_file
from qa.ocr import ocr_reader
from qa.types import IndexReport

UPLOAD_FOLDER = "uploads"
REMOVED_FOLDER = ".removed"
MAX_FILES_PER_ADD = 20        # files in one upload
MAX_NAME_CHARS = 120          # a cleaned file name is cut to this many characters (suffix kept)
DOCUMENT_ROWS = 500           # the documents list shows at most this many rows (newest first)

_change_lock = threading.Lock()


@dataclass(frozen=True)
class Change:
    """What an `add_files` or `remove_document` call did."""

    added: tuple[str, ...] = ()              # doc_ids of the files now in the corpus and index
    removed: tuple[str, ...] = ()            # doc_ids taken out of the index
    refused: tuple[tuple[str, str], ...] = ()  # (file name, reason) of files not added
    moved_to: str | None = None              # where a removed file now lies
    report: IndexReport | None = None        # the index update, when one ran
    index: Index | None = None               # the index after the change (loaded)

    def summary(self) -> str:
        """One short paragraph for a person: what was added, removed and refused, and why."""
        parts = []
        if self.added:
            parts.append(f"Added {', '.join(self.added)}.")
        if self.removed:
            where = f" (the file was moved to {self.moved_to})" if self.moved_to else ""
            parts.append(f"Removed {', '.join(self.removed)}{where}.")
        parts += [f"Not added: {name}: {why}." for name, why in self.refused]
        return " ".join(parts) or "Nothing changed."


def clean_name(name: str) -> str:
    """A safe file name from an uploaded one: no folders, no control or path characters, not
    hidden, at most `MAX_NAME_CHARS` characters with its suffix kept.

    Raises:
        QueryError: nothing usable is left of the name.
    """
    base = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = re.sub(r"[<>:\"|?*]+", "_", base).strip().lstrip(".").strip()
    if not base:
        raise QueryError(f"The file name {name!r} has no usable characters; rename the file.")
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = stem[: MAX_NAME_CHARS - len(suffix) - 1].rstrip() or "document"
    return f"{stem}.{suffix.lower()}" if suffix else stem


def add_files(
    files: Iterable[str | Path | tuple[str | Path, str]],
    *,
    settings: Settings | None = None,
    log: Callable[[str], None] | None = None,
    wait: float = 0.0,
) -> Change:
    """Copy files into `settings.corpus`/uploads and update `settings.index` incrementally.

    Args:
        files: paths, or `(path, name)` pairs when the file's name differs from the path's
            (an upload kept under a temporary name).
        settings: corpus, index and limits (`max_file_mb`, `max_pdf_pages`); `Settings()` when
            left out.
        log: called with each line the update prints (progress for a person).
        wait: seconds to wait for a change already running in this process.

    Returns:
        A `Change`: `added` and `refused` (name, reason); `index` is the updated index, or the
        unchanged one when nothing was added.

    Raises:
        QueryError: more than `MAX_FILES_PER_ADD` files, or another change is running.
        CorpusError, IndexPathError, QAError: the index update failed (the files copied for it
            were taken out again; the old index is unchanged).
    """
    settings = settings or Settings()
    say = log or (lambda _line: None)
    items = [(Path(f[0]), f[1]) if isinstance(f, tuple) else (Path(f), Path(f).name) for f in files]
    if len(items) > MAX_FILES_PER_ADD:
        raise QueryError(f"{len(items)} files at once; at most {MAX_FILES_PER_ADD} can be added in one go.")
    with _one_change(wait):
        corpus = Path(settings.corpus)
        corpus.mkdir(parents=True, exist_ok=True)
        before = _current(settings)
        known = {sha: doc_id for doc_id, sha in before.manifest.files.items()} if before else {}
        refused: list[tuple[str, str]] = []
        chosen: list[tuple[Path, str, str]] = []   # (source, name, doc_id)
        seen: dict[str, str] = {}
        for path, name in items:
            try:
                target = _check_file(path, name, corpus, settings, known, seen)
            except SkippedFile as exc:
                refused.append((name, str(exc)))
                say(f"Not added: {name}: {exc}.")
                continue
            chosen.append((path, name, target))
        if not chosen:
            return Change(refused=tuple(refused), index=before)
        copied: list[Path] = []
        try:
            for source, name, doc_id in chosen:
                copied.append(_copy_into(source, corpus / doc_id))
                say(f"Copied {name} into the corpus as {doc_id}.")
            report = build_index(corpus, settings.index, settings=settings, log=say, progress=_every_tenth(say))
        except BaseException:
            for path in copied:
                path.unlink(missing_ok=True)
            raise
        return Change(added=tuple(doc_id for _, _, doc_id in chosen), refused=tuple(refused), report=report,
                      index=load_index(settings.index, memory_mb=settings.index_memory_mb))


def remove_document(
    doc_id: str,
    *,
    settings: Settings | None = None,
    log: Callable[[str], None] | None = None,
    wait: float = 0.0,
) -> Change:
    """Take `doc_id` out of the corpus and the index: its file moves to
    `<corpus>/.removed/<UTC time>/<doc_id>` and the index is updated incrementally.

    Raises:
        QueryError: the index has no such document, its file lies outside the corpus, or
            another change is running.
        QAError: the index update failed (the file was put back; the old index is unchanged).
    """
    settings = settings or Settings()
    say = log or (lambda _line: None)
    with _one_change(wait):
        index = load_index(settings.index, memory_mb=settings.index_memory_mb)
        if doc_id not in index.documents:
            raise QueryError(f"The index has no document {doc_id!r}; nothing was removed.")
        corpus = Path(settings.corpus).resolve()
        path = inside(corpus, doc_id)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        target = corpus / REMOVED_FOLDER / stamp / doc_id
        moved = False
        try:
            if path.is_file() or path.is_symlink():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
                moved = True
                say(f"Moved {doc_id} to {target.relative_to(corpus)}.")
            else:
                say(f"{doc_id} is no longer in the corpus folder; taking it out of the index.")
            report = build_index(corpus, settings.index, settings=settings, log=say)
        except BaseException:
            if moved:
                os.replace(target, path)
            raise
        return Change(removed=(doc_id,), moved_to=str(target.relative_to(corpus)) if moved else None,
                      report=report, index=load_index(settings.index, memory_mb=settings.index_memory_mb))


def inside(corpus: Path, doc_id: str) -> Path:
    """The corpus file of `doc_id`, checked to lie inside `corpus` (after resolving links).

    Raises:
        QueryError: the path would leave the corpus.
    """
    root = corpus.resolve()
    path = root / doc_id
    try:
        path.resolve().relative_to(root)
    except ValueError:
        raise QueryError(f"{doc_id} lies outside the corpus folder {root}; it is not served or changed "
                         "from here.") from None
    if ".." in Path(doc_id).parts or Path(doc_id).is_absolute():
        raise QueryError(f"{doc_id!r} is not a document name inside the corpus.")
    return path


def _every_tenth(say: Callable[[str], None]) -> Callable[[int, int], None]:
    """A progress callback that says "Embedded 120 of 480 texts (25%)" at each tenth done."""
    last = [0]

    def report(done: int, total: int) -> None:
        tenth = done * 10 // total
        if tenth > last[0] and total >= 50:    # a few texts take a second: no lines for them
            last[0] = tenth
            say(f"Embedded {done:,} of {total:,} texts ({tenth * 10}%).")

    return report


@contextlib.contextmanager
def _one_change(wait: float) -> Iterator[None]:
    """Hold the change lock (waiting up to `wait` seconds for it).

    Raises:
        QueryError: another change holds it.
    """
    got = _change_lock.acquire(timeout=wait) if wait > 0 else _change_lock.acquire(blocking=False)
    if not got:
        raise QueryError("Another change to the documents is running; try again when it has finished.")
    try:
        yield
    finally:
        _change_lock.release()


def _current(settings: Settings) -> Index | None:
    """The index as it is, or None when there is none yet (its manifest's sha256s say what it
    holds without reading a document row)."""
    try:
        return load_index(settings.index, memory_mb=settings.index_memory_mb)
    except QAError:
        return None


def _check_file(path: Path, name: str, corpus: Path, settings: Settings, known: dict[str, str],
                seen: dict[str, str]) -> str:
    """The doc_id the file will have in the corpus, once it is known to be addable.

    Raises:
        SkippedFile: why it is not added.
    """
    try:
        clean = clean_name(name)
    except QueryError as exc:
        raise SkippedFile(str(exc)) from None
    check_size(path, settings.max_file_mb)
    digest = sha256_file(path)
    if digest in known:
        raise SkippedFile(f"already in the corpus as {known[digest]} (same contents)")
    if digest in seen:
        raise SkippedFile(f"the same contents as {seen[digest]}, added with it")
    # Read it exactly as the build will, under its own name (the reader goes by the suffix). A scan
    # is read by OCR here; the build then finds its pages in the OCR cache (qa/ocr.py).
    with tempfile.TemporaryDirectory(prefix="qa-check-") as tmp:
        probe = Path(tmp) / clean
        shutil.copyfile(path, probe)
        load_document(probe, clean, max_pdf_pages=settings.max_pdf_pages, ocr=ocr_reader(settings))
    doc_id = _free_name(corpus, f"{UPLOAD_FOLDER}/{clean}", set(seen.values()))
    seen[digest] = doc_id
    return doc_id


def _free_name(corpus: Path, doc_id: str, taken: set[str]) -> str:
    """`doc_id`, or `name (2).ext`, `name (3).ext`, ... when a file or an earlier pick has it."""
    stem, suffix = Path(doc_id).stem, Path(doc_id).suffix
    parent = Path(doc_id).parent.as_posix()
    candidate, k = doc_id, 1
    while candidate in taken or (corpus / candidate).exists() or (corpus / candidate).is_symlink():
        k += 1
        candidate = f"{parent}/{stem} ({k}){suffix}"
    return candidate


def _copy_into(source: Path, target: Path) -> Path:
    """Copy `source` to `target` (a new file) through a hidden temporary name in its folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    shutil.copyfile(source, tmp)
    try:
        os.link(tmp, target)       # fails if `target` appeared meanwhile: never overwrite
    except FileExistsError:
        raise QAError(f"{target} appeared while it was being added; nothing was overwritten.") from None
    except OSError:
        if target.exists():
            raise QAError(f"{target} appeared while it was being added; nothing was overwritten.") from None
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def documents_table(rows: list[list[str]], needle: str = "", limit: int = DOCUMENT_ROWS) -> tuple[list[list[str]], int]:
    """The first `limit` of `rows` (from `document_rows`) whose file name or title holds
    `needle`; and how many match. Rows are plain text; whoever shows them escapes them."""
    found = matching(rows, needle)
    return found[:limit], len(found)


def document_rows(index: Index) -> list[list[str]]:
    """Every document's row for the documents list, newest first (reads every document row)."""
    counts = _chunk_counts(index)
    rows: list[tuple[str, list[str]]] = []
    for doc_id in index.documents:
        info = index.documents[doc_id]
        rows.append((info.indexed_at or "", [
            info.title, doc_id, info.date or "", str(info.pages) if info.pages else "",
            str(counts.get(doc_id, 0)), _short_time(info.indexed_at),
        ]))
    rows.sort(key=lambda r: (r[0], r[1][1]), reverse=True)
    return [row for _, row in rows]


def matching(rows: list[list[str]], needle: str) -> list[list[str]]:
    """The rows whose file name or title holds `needle` (case-insensitive); all for a blank one."""
    needle = needle.strip().lower()
    return [row for row in rows if needle in row[1].lower() or needle in row[0].lower()] if needle else rows


def _chunk_counts(index: Index) -> dict[str, int]:
    names = list(index.documents)
    counts = np.bincount(np.asarray(index.chunk_doc_rows(), dtype=np.int64), minlength=len(names))
    return {name: int(counts[i]) for i, name in enumerate(names)}


def _short_time(stamp: str | None) -> str:
    """"2026-11-23 06:49 UTC" from an ISO time (as written by the build, in UTC)."""
    if not stamp:
        return ""
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if when.tzinfo is None:
        return f"{when:%Y-%m-%d %H:%M}"
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
