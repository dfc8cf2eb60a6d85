"""The index on disk: its layout, the typed `Manifest`, and `load_index`.

Layout of an index folder (format 3; no pickle anywhere). Opening one reads the manifest and the
document table; the other files are read into memory when small and memory-mapped when large
(`Settings.index_memory_mb`; maps under a read lease, see qa/index/files.py), so opening 10^6
chunks takes well under a second (docs/SCALING.md). Every file is checked against the manifest's
checksums as it is opened:

    .qa-index              marker: this folder is a qa index (see qa/index/atomic.py)
    manifest.json          model, dimension, chunking, dense layer, sha256 per source file, and
                           the size and XXH3-128 checksum of every other file here (format 3)
    documents.jsonl        one line per document: doc_id, title, date, tags, sha256, chars
    chunks.npy             int64 (chunks x 5): document row, start, end, [first, last) sentence rows
    chunk_text.bin         the chunks' texts, UTF-8, back to back; chunk_text.offsets.npy (chunks + 1)
    chunk_vectors.npy      float32 (chunks x dimension), unit length
    dense.faiss            the dense layer (qa/index/dense.py): Flat, IVF or HNSW over chunk_vectors
    sentences.npy          int64 (sentences x 3): document row, start, end
    sentence_text.bin      the sentences' texts; sentence_text.offsets.npy
    sentence_vectors.npy   float32 (sentences x dimension), embedded once, never per question
    bm25/                  bm25s arrays and vocabulary (memory-mapped)

Format 1 (qa 0.3: chunks.jsonl and sentences.jsonl read whole into Python objects) and format 2
(format 3's files without checksums) still load; the next `qa index` rewrites them as format 3
(their vectors are reused, nothing is embedded again).
"""

# About 760 lines in one module on purpose: it is the index format (format 3). The writers, the
# lazy row readers and `verify_index` must agree on every file's name, dtype and checksum, so the
# layout is defined, written and read in one place.

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, overload

import faiss
import numpy as np

from qa.errors import IndexCorruptError, IndexMissingError, QAError, QueryError
from qa.formats import EXTRACTED_KINDS
from qa.index.atomic import MANIFEST, MARKER, recover, tidy_if_idle
from qa.index.dense import DenseSpec, read_dense
from qa.index.files import (
    IndexFiles,
    check_digests,
    check_entry,
    corrupt_message,
    file_checksums,
    file_digests,
    npy_header,
    whole_digest,
)
from qa.lexical import BM25_ARRAYS, BM25_JSON, bm25_from_parts, document_count, save_bm25
from qa.types import Chunk, Document, DocumentInfo, Sentence

# 3: format 2 plus the checksums of every file in the manifest.
FORMAT_VERSION = 3
READABLE_FORMATS = (1, 2, 3)
# Bump when loading, cleaning, chunking or sentence splitting changes what gets indexed:
# an index built by another pipeline version is rebuilt in full, with that reason given.
# 2: byte-order marks trimmed from bodies and titles, broken front matter read loosely,
#    symbolic links that leave the corpus skipped.
# 3: a `Title:`/`Date:` header block opening a text file is metadata, not body; written dates
#    (`March 5, 2024`, RFC 2822) are stored as ISO, and a date that cannot be read as none.
# 4: sentences from pysbd on the layout view (wrapped lines joined, a PDF sentence carried over
#    a page break kept whole), chunks split on it; PDF running headers, footers and page
#    numbers left out of what is indexed.
# 5: scanned PDF pages (no text layer, or a sliver of one over a page-sized image) are read by
#    OCR; .png, .jpg and .tif files are indexed through OCR.
PIPELINE_VERSION = 5
TOKENIZER = "cl100k_base"
_FILES = {
    1: ("documents.jsonl", "chunks.jsonl", "chunk_vectors.npy", "dense.faiss", "sentences.jsonl",
        "sentence_vectors.npy"),
    2: ("documents.jsonl", "chunks.npy", "chunk_text.bin", "chunk_text.offsets.npy", "chunk_vectors.npy",
        "dense.faiss", "sentences.npy", "sentence_text.bin", "sentence_text.offsets.npy", "sentence_vectors.npy"),
}
_FILES[3] = _FILES[2]
_BM25_FILES = tuple(f"bm25/{name}" for name in (*BM25_JSON, *BM25_ARRAYS))
# Index files up to this size are read into memory, larger ones memory-mapped (Settings.index_memory_mb).
MEMORY_MB = 16.0


@dataclass(frozen=True)
class Manifest:
    """What an index was built from and with; `manifest.json` is its JSON form."""

    model: str
    dimension: int
    chunk_tokens: int
    chunk_overlap_tokens: int
    corpus: str
    created: str
    files: dict[str, str]                 # doc_id -> sha256 of the file's bytes
    counts: dict[str, int] = field(default_factory=dict)   # documents, chunks, sentences
    versions: dict[str, str] = field(default_factory=dict)  # library versions at build time
    format_version: int = FORMAT_VERSION
    pipeline_version: int = PIPELINE_VERSION
    tokenizer: str = TOKENIZER
    # How the vectors were made: the encoder's precision ("fp32" vectors are the same, to 1e-4,
    # in every backend) and where sentence vectors come from ("pooled" from the chunk pass, or
    # "separate"; indexes from before this field embedded sentences separately).
    encoder_precision: str = "fp32"
    sentence_vectors: str = "separate"
    # The share of the chunk's mean taken from pooled sentence vectors (qa.encoder.POOLED_CONTEXT;
    # 0 for separate vectors and for pooled indexes made before it existed).
    pooled_context: float = 0.0
    encoder: str = ""   # the encoder that built it, for people (not compared)
    # The dense layer (qa/index/dense.py DenseSpec as JSON; format 1 indexes are Flat).
    dense: dict[str, Any] = field(default_factory=dict)
    # Path in the folder -> {"bytes", "xxh3_128"[, "sampled"]} of every other file (format 3;
    # written by `write_manifest`, checked by `load_index` and `verify_index`).
    checksums: dict[str, dict[str, Any]] = field(default_factory=dict)

    def signature(self) -> dict[str, Any]:
        """The fields that must match for an index to be updated rather than rebuilt."""
        return {k: getattr(self, k) for k in ("format_version", "pipeline_version", "model", "dimension",
                                              "chunk_tokens", "chunk_overlap_tokens", "tokenizer",
                                              "encoder_precision", "sentence_vectors", "pooled_context")}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: Path) -> Manifest:
        """Read a parsed `manifest.json`.

        Raises:
            IndexCorruptError: another format version, or a field missing or of the wrong type.
        """
        rebuild = f"Rebuild it with `qa index --rebuild --index {where}`."
        found = data.get("format_version")
        if found not in READABLE_FORMATS:
            raise IndexCorruptError(
                f"The index at {where} has format version {found!r}; this qa reads versions "
                f"{', '.join(map(str, READABLE_FORMATS))}. {rebuild}")
        if found == 3 and data.get(SELF_CHECKSUM) != manifest_checksum(data):
            raise IndexCorruptError(corrupt_message(where / MANIFEST, "checksum mismatch", where))
        try:
            manifest = cls(
                model=str(data["model"]), dimension=int(data["dimension"]),
                chunk_tokens=int(data["chunk_tokens"]), chunk_overlap_tokens=int(data["chunk_overlap_tokens"]),
                corpus=str(data.get("corpus", "")), created=str(data.get("created", "")),
                files={str(k): str(v) for k, v in dict(data["files"]).items()},
                counts={str(k): int(v) for k, v in dict(data.get("counts") or {}).items()},
                versions={str(k): str(v) for k, v in dict(data.get("versions") or {}).items()},
                format_version=int(found), pipeline_version=int(data.get("pipeline_version", 0)),
                tokenizer=str(data.get("tokenizer", "")),
                encoder_precision=str(data.get("encoder_precision", "fp32")),
                sentence_vectors=str(data.get("sentence_vectors", "separate")),
                pooled_context=float(data.get("pooled_context", 0.0)),
                encoder=str(data.get("encoder", "")),
                dense=dict(data.get("dense") or {}),
                checksums={str(k): dict(v) for k, v in dict(data.get("checksums") or {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexCorruptError(f"The index manifest {where / MANIFEST} is incomplete ({exc!r}). {rebuild}") \
                from exc
        if manifest.format_version >= 3 and not manifest.checksums:
            raise IndexCorruptError(f"The index manifest {where / MANIFEST} has no checksums. {rebuild}")
        return manifest


@dataclass(frozen=True)
class Index:
    """A loaded index, shared read-only by every query.

    `files` knows what it was read from: `files.changed()` says whether the folder changed on
    disk since (cheap: call it per request), and code that reads the index runs inside
    `files.reading()`, which refuses a stale one (qa/index/files.py).
    """

    path: Path
    manifest: Manifest
    documents: Mapping[str, DocumentInfo]
    chunks: Sequence[Chunk]
    chunk_sentences: np.ndarray  # (chunks, 2): [first, last) sentence rows overlapping each chunk
    chunk_vectors: np.ndarray
    dense: faiss.Index
    sentences: Sequence[Sentence]
    sentence_vectors: np.ndarray
    bm25: Any
    files: IndexFiles

    @property
    def model(self) -> str:
        return self.manifest.model

    @property
    def dense_spec(self) -> DenseSpec:
        return DenseSpec.from_json(self.manifest.dense)

    def chunk_doc_rows(self) -> np.ndarray:
        """For each chunk, the row of its document in `documents` (their order)."""
        if isinstance(self.chunks, _Rows):
            return self.chunks.doc_rows()
        row_of = {d: i for i, d in enumerate(self.documents)}
        return np.fromiter((row_of[c.doc_id] for c in self.chunks), dtype=np.int64, count=len(self.chunks))

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        """The chunks of one document, in order (a binary search in format 2, not a scan)."""
        if isinstance(self.chunks, _Rows) and isinstance(self.documents, _Documents):
            if doc_id not in self.documents:
                return []
            lo, hi = self.chunks.rows_of(self.documents.row(doc_id))
            return [self.chunks[i] for i in range(lo, hi)]
        return [c for c in self.chunks if c.doc_id == doc_id]


def write_index_files(folder: Path, manifest: Manifest, infos: Sequence[DocumentInfo], chunks: Sequence[Chunk],
                      chunk_sentences: np.ndarray, chunk_vectors: np.ndarray, sentences: Sequence[Sentence],
                      sentence_vectors: np.ndarray, bm25: Any, dense: faiss.Index) -> None:
    """Write every file of an index (format 2) into `folder`, the manifest last, and fsync them."""
    row_of = {d.doc_id: i for i, d in enumerate(infos)}
    table = np.zeros((len(chunks), 5), dtype=np.int64)
    for i, c in enumerate(chunks):
        table[i, :3] = (row_of[c.doc_id], c.start, c.end)
    table[:, 3:5] = np.asarray(chunk_sentences, dtype=np.int64).reshape(-1, 2)
    sentence_table = np.array([(row_of[s.doc_id], s.start, s.end) for s in sentences], dtype=np.int64)
    write_columns(folder, manifest, infos, table, (c.text for c in chunks), sentence_table.reshape(-1, 3),
                  (s.text for s in sentences), chunk_vectors, sentence_vectors, bm25, dense)


def write_columns(folder: Path, manifest: Manifest, infos: Iterable[DocumentInfo], chunk_table: np.ndarray,
                  chunk_texts: Iterable[str], sentence_table: np.ndarray, sentence_texts: Iterable[str],
                  chunk_vectors: np.ndarray, sentence_vectors: np.ndarray, bm25: Any, dense: faiss.Index) -> None:
    """Write an index from its columns (tables as arrays, texts streamed), the manifest last.

    `chunk_table` is int64 (chunks x 5): document row, start, end, [first, last) sentence rows;
    `sentence_table` is int64 (sentences x 3): document row, start, end.
    """
    for kind, vectors in (("chunk", chunk_vectors), ("sentence", sentence_vectors)):
        _check_finite(kind, vectors)
    _write_jsonl(folder / "documents.jsonl", (asdict(d) for d in infos))
    np.save(folder / "chunks.npy", np.asarray(chunk_table, dtype=np.int64))
    write_texts(folder / "chunk_text", chunk_texts, len(chunk_table))
    np.save(folder / "sentences.npy", np.asarray(sentence_table, dtype=np.int64))
    write_texts(folder / "sentence_text", sentence_texts, len(sentence_table))
    _save_vectors(folder / "chunk_vectors.npy", chunk_vectors)
    _save_vectors(folder / "sentence_vectors.npy", sentence_vectors)
    faiss.write_index(dense, str(folder / "dense.faiss"))
    (folder / "bm25").mkdir()
    save_bm25(bm25, folder / "bm25")
    write_manifest(folder, manifest)


def _check_finite(kind: str, vectors: np.ndarray) -> None:
    """Refuse to write vectors that are not numbers: every score made from them would be NaN."""
    for lo in range(0, len(vectors), 1 << 16):
        block = np.asarray(vectors[lo:lo + (1 << 16)])
        if not np.isfinite(block).all():
            raise IndexCorruptError(f"The encoder gave {kind} vectors that are not numbers (NaN or infinite, from row "
                                    f"{lo + int(np.argmin(np.isfinite(block).all(axis=-1)))}); nothing was written. "
                                    "Try another encoder_backend or encoder_precision, and report it.")


def _save_vectors(path: Path, vectors: np.ndarray) -> None:
    """Save float32 vectors, unless they already are that file (a memory map made in place)."""
    if isinstance(vectors, np.memmap) and vectors.filename and Path(vectors.filename).resolve() == path.resolve():
        vectors.flush()
        return
    np.save(path, np.asarray(vectors, dtype=np.float32))


def write_sources(folder: Path, documents: Iterable[Document]) -> None:
    """The extracted text of every document whose format stores it (PDF, DOCX, e-mail, scan:
    `qa.formats.EXTRACTED_KINDS`), as `sources/<sha256>.txt` (UTF-8, written and read back without
    newline translation): what `qa.source_text` returns and offsets index."""
    target = folder / "sources"
    for doc in documents:
        if doc.kind in EXTRACTED_KINDS:
            target.mkdir(exist_ok=True)
            with open(target / f"{doc.sha256}.txt", "w", encoding="utf-8", newline="") as fh:
                fh.write(doc.text)


def read_source(index: Index, info: DocumentInfo) -> str:
    """The stored text of an extracted document (see `write_sources`), checked against its
    checksum (format 3).

    Raises:
        OSError: the file cannot be read.
        IndexCorruptError: it is not what the build wrote.
    """
    name = f"sources/{info.sha256}.txt"
    data = (index.path / name).read_bytes()
    if index.manifest.checksums:
        check_entry(index.path / name, data, index.manifest.checksums.get(name), index.path, whole=True)
    return data.decode("utf-8")   # bytes decoded as written: no newline translation


def source_text(doc_id: str, index: str | Path | Index = "index") -> str:
    """The text every offset of `doc_id` indexes: `source_text(c.doc_id)[c.start:c.end] == c.quote`
    for every citation and passage.

    For PDF, DOCX, e-mails and scans it is the text extracted at indexing time, kept in the index;
    for .txt, .md and .html it is the file itself, read from the corpus (and checked against its sha256).

    Raises:
        QueryError: the index has no document `doc_id`, or its file changed or went away since
            it was indexed (run `qa index` again).
        IndexMissingError, IndexCorruptError: the index cannot be used.
    """
    loaded = index if isinstance(index, Index) else load_index(index)
    if doc_id not in loaded.documents:
        raise QueryError(f"The index at {loaded.path} has no document {doc_id!r}.")
    info = loaded.documents[doc_id]
    if info.stored_text:
        try:
            return read_source(loaded, info)
        except OSError as exc:
            raise IndexCorruptError(f"The stored text of {doc_id} is missing from {loaded.path} ({exc.strerror}). "
                                    f"Rebuild it with `qa index --rebuild --index {loaded.path}`.") from None
    path = Path(loaded.manifest.corpus) / doc_id
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise QueryError(f"{doc_id} cannot be read from the corpus {loaded.manifest.corpus} ({exc.strerror}); "
                         "run `qa index` to bring the index up to date.") from None
    if hashlib.sha256(raw).hexdigest() != info.sha256:
        raise QueryError(f"{doc_id} changed since it was indexed, so its offsets no longer match; "
                         "run `qa index` to bring the index up to date.")
    return path.read_text(encoding="utf-8")


def replace_manifest(folder: Path, manifest: Manifest) -> None:
    """Swap in a new manifest for an index whose other files stay as they are (atomic rename)."""
    tmp = folder / (MANIFEST + ".new")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(_manifest_text(manifest))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, folder / MANIFEST)


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """The manifest goes last (a folder without one is never loaded as an index), with the
    checksum of every other file in the folder; then fsync all."""
    manifest = replace(manifest, checksums=file_checksums(folder))
    (folder / MANIFEST).write_text(_manifest_text(manifest), encoding="utf-8")
    _fsync_tree(folder)


def _manifest_text(manifest: Manifest) -> str:
    data = manifest.to_json()
    data[SELF_CHECKSUM] = manifest_checksum(data)
    return json.dumps(data, indent=2, ensure_ascii=False)


# The manifest's checksum of itself (format 3): damage to the manifest is named as such, not as
# damage to the file whose checksum it garbled.
SELF_CHECKSUM = "manifest_checksum"


def manifest_checksum(data: Mapping[str, Any]) -> str:
    """XXH3-128 of a manifest's fields (all but this one) as canonical JSON."""
    fields = {k: v for k, v in data.items() if k != SELF_CHECKSUM}
    return whole_digest(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode("utf-8"))


def write_texts(stem: Path, texts: Iterable[str], count: int) -> None:
    """`stem`.bin (UTF-8 texts back to back) and `stem`.offsets.npy (count + 1 byte offsets)."""
    offsets = np.zeros(count + 1, dtype=np.int64)
    with open(stem.with_name(stem.name + ".bin"), "wb") as fh:
        at = 0
        for i, text in enumerate(texts):
            data = text.encode("utf-8")
            fh.write(data)
            at += len(data)
            offsets[i + 1] = at
    np.save(stem.with_name(stem.name + ".offsets.npy"), offsets)


class _Texts:
    """Texts stored by `write_texts` (in memory or memory-mapped); `texts[i]` decodes one."""

    def __init__(self, files: IndexFiles, stem: str) -> None:
        self.offsets = files.array(stem + ".offsets.npy")
        self._blob = files.buffer(stem + ".bin")
        if self.offsets.ndim != 1 or len(self.offsets) < 1 or int(self.offsets[-1]) != len(self._blob):
            raise ValueError(f"{stem}.bin does not match its offsets")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:
        return bytes(self._blob[int(self.offsets[i]):int(self.offsets[i + 1])]).decode("utf-8")


class _Rows(Sequence[Any]):
    """A lazy, read-only sequence over a memory-mapped table: rows are built when asked for."""

    def __init__(self, table: np.ndarray, texts: _Texts, doc_ids: Sequence[str], make: Any) -> None:
        if len(texts) != len(table):
            raise ValueError("a table and its texts disagree on length")
        self._table, self._texts, self._doc_ids, self._make = table, texts, doc_ids, make

    def __len__(self) -> int:
        return len(self._table)

    def doc_rows(self) -> np.ndarray:
        return np.asarray(self._table[:, 0])

    def rows_of(self, doc_row: int) -> tuple[int, int]:
        """[first, last) rows of one document: rows are written in document order."""
        column = self._table[:, 0]
        lo = int(np.searchsorted(column, doc_row, side="left"))
        return lo, int(np.searchsorted(column, doc_row, side="right"))

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> list[Any]: ...

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self._table)
        if not -n <= i < n:
            raise IndexError(i)
        i = int(i) % n
        row = self._table[i]
        return self._make(self._doc_ids[int(row[0])], int(row[1]), int(row[2]), self._texts[i])

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]


class _Documents(Mapping[str, DocumentInfo]):
    """doc_id -> DocumentInfo; each line of documents.jsonl is parsed when first asked for."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._starts: list[int] = []
        self._ids: dict[str, int] = {}
        self.order: list[str] = []
        at = 0
        for line in data.split(b"\n"):
            if line.strip():
                doc_id = _first_id(line)
                self._ids[doc_id] = len(self.order)
                self.order.append(doc_id)
                self._starts.append(at)
            at += len(line) + 1
        self._cache: dict[str, DocumentInfo] = {}

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[str]:
        return iter(self.order)

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def row(self, key: str) -> int:
        return self._ids[key]

    def __getitem__(self, key: str) -> DocumentInfo:
        found = self._cache.get(key)
        if found is None:
            start = self._starts[self._ids[key]]
            end = self._data.find(b"\n", start)
            found = self._cache[key] = _document_info(json.loads(self._data[start:end if end >= 0 else None]))
        return found


_ID_PREFIX = b'{"doc_id": '


def _first_id(line: bytes) -> str:
    """The doc_id of a documents.jsonl line without parsing the rest: `asdict` writes doc_id
    first (any other line is parsed whole)."""
    if line.startswith(_ID_PREFIX):
        value, _ = json.JSONDecoder().raw_decode(line.decode("utf-8"), len(_ID_PREFIX))
        return str(value)
    return str(json.loads(line)["doc_id"])


def _document_info(row: dict[str, Any]) -> DocumentInfo:
    """A documents.jsonl row as a DocumentInfo (lists back to tuples; older rows lack fields)."""
    row["tags"] = tuple(row.get("tags") or ())
    row["page_starts"] = tuple(row.get("page_starts") or ())
    row["ocr_pages"] = tuple(row.get("ocr_pages") or ())
    return DocumentInfo(**row)


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
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


# Loaded indexes by (path, manifest mtime, manifest inode, memory limit): a rebuild swaps in a new
# manifest, so the next load sees it; the old entries fall out as new ones arrive. A cached index
# whose files changed some other way (`Index.files.changed()`) is read again.
_CACHE: dict[tuple[str, int, int, int], Index] = {}
_CACHE_SIZE = 4
_cache_lock = threading.Lock()


def load_index(path: str | Path, *, memory_mb: float = MEMORY_MB) -> Index:
    """Load the index at `path`, reusing the copy in memory while its files are unchanged.

    Every file is checked against the manifest's checksums as it is read (sizes always; files up
    to 16 MB hashed whole, larger ones sampled; `verify_index` hashes everything). The first load
    also removes what killed builds left beside the index (when no build runs).

    Args:
        path: the index folder.
        memory_mb: files up to this size are read into memory, larger ones memory-mapped under a
            read lease (`Settings.index_memory_mb`; 0 maps every file that can be mapped).

    Raises:
        IndexMissingError: there is no index there.
        IndexCorruptError: the index cannot be read, a file is missing or damaged (the message
            names it), or it was written by another format version.
    """
    path = Path(path)
    manifest = path / MANIFEST
    if not manifest.exists() and not recover(path):
        raise _no_manifest(path)
    try:
        stat = manifest.stat()
    except OSError as exc:
        raise IndexMissingError(f"No index found at {path} ({exc.strerror}). Build it with `qa index`.") from exc
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_ino, int(memory_mb * (1 << 20)))
    with _cache_lock:
        cached = _CACHE.get(key)
    if cached is not None and cached.files.changed() is None:
        return cached
    tidy_if_idle(path)
    loaded = _read(Path(key[0]), path, key[3])
    with _cache_lock:
        _CACHE[key] = loaded
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
    return loaded


def _no_manifest(path: Path) -> QAError:
    """The error for a folder without a manifest: no index at all, or a damaged one (a folder
    that holds index files or the marker), named as such, with the fix that works there."""
    if path.is_dir() and ((path / MARKER).is_file() or any((path / name).exists() for name in _FILES[2])):
        fix = (f"Rebuild it with `qa index --rebuild --index {path}`." if (path / MARKER).is_file() else
               f"Move the folder aside, then build it again with `qa index --index {path}`.")
        return IndexCorruptError(f"The index at {path} is missing {MANIFEST} (its other files are there): "
                                 f"a copy or a tool left it half-written, or the file was deleted. {fix}")
    return IndexMissingError(f"No index found at {path}. Build it with `qa index --corpus DIR --index {path}`.")


def forget_loaded() -> None:
    """Drop every index held in memory (after a build, the next load reads the new files)."""
    with _cache_lock:
        _CACHE.clear()


def _read(path: Path, shown: Path, memory_bytes: int) -> Index:
    """Read the index at `path` (resolved; messages name `shown`, the path as given)."""
    files = IndexFiles(path, memory_bytes, shown=shown)
    try:
        return _read_files(path, shown, files)
    except BaseException:
        files.defuse("it could not be loaded")   # its leases go now, not when the error is collected
        raise


def _read_files(path: Path, shown: Path, files: IndexFiles) -> Index:
    rebuild = f"Rebuild it with `qa index --rebuild --index {shown}`."
    try:
        data = json.loads(files.read(MANIFEST, checked=False).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(f"The index manifest {shown / MANIFEST} is unreadable ({exc}). {rebuild}") from exc
    if not isinstance(data, dict):
        raise IndexCorruptError(f"The index manifest {shown / MANIFEST} is not a JSON object. {rebuild}")
    manifest = Manifest.from_json(data, shown)
    expected = (*_FILES[manifest.format_version], *_BM25_FILES)
    missing = [name for name in expected if not (path / name).is_file()]
    if missing:
        raise IndexCorruptError(f"The index at {shown} is incomplete (missing {', '.join(missing)}). {rebuild}")
    if manifest.format_version >= 3:
        files.checksums = manifest.checksums
    spec = DenseSpec.from_json(manifest.dense)
    try:
        documents: Mapping[str, DocumentInfo]
        chunks: Sequence[Chunk]
        sentences: Sequence[Sentence]
        if manifest.format_version == 1:
            documents, chunks, ranges, sentences = _read_v1_tables(files)
        else:
            docs = _Documents(files.read("documents.jsonl"))
            table = files.array("chunks.npy")
            sentence_table = files.array("sentences.npy")
            if table.ndim != 2 or table.shape[1] != 5 or sentence_table.ndim != 2 or sentence_table.shape[1] != 3:
                raise ValueError("chunks.npy or sentences.npy has the wrong shape")
            _check_doc_rows(table, len(docs))
            _check_doc_rows(sentence_table, len(docs))
            documents = docs
            chunks = _Rows(table, _Texts(files, "chunk_text"), docs.order, Chunk)
            sentences = _Rows(sentence_table, _Texts(files, "sentence_text"), docs.order, Sentence)
            ranges = table[:, 3:5]
        chunk_vectors = files.array("chunk_vectors.npy")
        sentence_vectors = files.array("sentence_vectors.npy")
        if chunk_vectors.dtype != np.float32 or sentence_vectors.dtype != np.float32 or \
                chunk_vectors.ndim != 2 or sentence_vectors.ndim != 2:
            raise ValueError("the vector files are not float32 tables")
        # HNSW is read whole whatever its size (faiss cannot map it).
        dense = read_dense(files.buffer("dense.faiss", mappable=spec.kind != "hnsw"), spec)
        params, vocab = (files.read(f"bm25/{name}") for name in BM25_JSON)
        data, indices, indptr = (files.array(f"bm25/{name}") for name in BM25_ARRAYS)
        bm25 = bm25_from_parts(params, vocab, data, indices, indptr)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, UnicodeDecodeError) as exc:
        # json.JSONDecodeError is a ValueError.
        raise IndexCorruptError(f"The index at {shown} cannot be read ({type(exc).__name__}: {exc}). {rebuild}") \
            from exc
    consistent = (
        len(chunks) == chunk_vectors.shape[0] == dense.ntotal == document_count(bm25) == len(ranges)
        and len(sentences) == sentence_vectors.shape[0]
        and chunk_vectors.shape[1] == dense.d == manifest.dimension == sentence_vectors.shape[1]
        and (manifest.format_version >= 2 or all(c.doc_id in documents for c in chunks))
    )
    if not consistent:
        raise IndexCorruptError(f"The index at {shown} is inconsistent (its files disagree on sizes). {rebuild}")
    return Index(path, manifest, documents, chunks, ranges, chunk_vectors, dense, sentences, sentence_vectors, bm25,
                 files)


@dataclass(frozen=True)
class Verification:
    """What `verify_index` found: the files and bytes it hashed, and one line per problem."""

    files: int
    bytes: int
    problems: tuple[str, ...]
    seconds: float


def verify_index(path: str | Path) -> Verification:
    """Check the index at `path` through and through (`qa index --verify`): every file hashed
    whole against the manifest's checksums (a load samples files above 16 MB), every stored
    vector a unit vector, and then a full load.

    Raises:
        IndexMissingError: there is no index there.
        IndexCorruptError: the manifest itself cannot be read.
    """
    started = time.perf_counter()
    path = Path(path)
    if not (path / MANIFEST).exists() and not recover(path):
        raise _no_manifest(path)
    rebuild = f"Rebuild it with `qa index --rebuild --index {path}`."
    try:
        data = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(f"The index manifest {path / MANIFEST} is unreadable ({exc}). {rebuild}") from exc
    if not isinstance(data, dict):
        raise IndexCorruptError(f"The index manifest {path / MANIFEST} is not a JSON object. {rebuild}")
    manifest = Manifest.from_json(data, path)
    problems: list[str] = []
    hashed = hashed_bytes = 0
    if manifest.format_version < 3:
        problems.append(f"The index at {path} has no checksums (format {manifest.format_version}, written before "
                        f"they existed), so its files cannot be verified: `qa index --corpus DIR --index {path}` "
                        "adds them without embedding anything again.")
    for name, entry in sorted(manifest.checksums.items()):
        try:
            with open(path / name, "rb") as fh:
                found = file_digests(fh)
            check_digests(path / name, found, entry, path)
            hashed, hashed_bytes = hashed + 1, hashed_bytes + found["bytes"]
        except FileNotFoundError:
            problems.append(f"{path / name} is missing. {rebuild}")
        except (OSError, IndexCorruptError) as exc:
            problems.append(str(exc) if isinstance(exc, IndexCorruptError) else
                            f"{path / name} cannot be read ({exc.strerror}). {rebuild}")
    for name in ("chunk_vectors.npy", "sentence_vectors.npy"):
        if any(problem.startswith(f"{path / name} ") for problem in problems):
            continue   # named once is enough
        try:
            with open(path / name, "rb") as fh:
                bad = _bad_vectors(fh, path / name)
        except (OSError, ValueError):
            continue   # a missing or unreadable file is named above, or by the load below
        if bad:
            rows = f"{bad:,} rows are not unit vectors" if bad > 1 else "a row is not a unit vector"
            problems.append(corrupt_message(path / name, f"{rows}: NaN, infinite or damaged values", path))
    if not problems:
        try:
            _read(path.resolve(), path, 0)
        except QAError as exc:
            problems.append(str(exc))
    return Verification(hashed, hashed_bytes, tuple(problems), time.perf_counter() - started)


def _bad_vectors(fh: Any, path: Path) -> int:
    """How many rows of a float32 `.npy` table are neither unit vectors nor zero, or missing
    (read in blocks of 65,536 rows: never mapped, never whole in memory).

    Raises:
        ValueError: it is not a float32 table.
    """
    shape, fortran, dtype, offset = npy_header(fh.read(4096), path)
    if len(shape) != 2 or dtype != np.float32 or fortran or not shape[1]:
        raise ValueError(f"{path.name} is not a float32 table")
    rows, dim = shape
    fh.seek(offset)
    bad = 0
    for lo in range(0, rows, 1 << 16):
        want = min(1 << 16, rows - lo)
        block = fh.read(want * dim * 4)
        vectors = np.frombuffer(block, dtype=np.float32, count=len(block) // (dim * 4) * dim).reshape(-1, dim)
        with np.errstate(all="ignore"):   # damaged rows overflow: counted, not warned about
            norms = np.linalg.norm(vectors, axis=1)
        bad += int(np.count_nonzero(~((np.abs(norms - 1.0) < UNIT_TOLERANCE) | (norms == 0.0))))
        bad += want - len(vectors)   # rows the file is too short to hold
    return bad


# How far from length 1 a stored vector may be (normalized in float32: about 1e-7 off).
UNIT_TOLERANCE = 1e-3


def _check_doc_rows(table: np.ndarray, documents: int) -> None:
    """Every row names a document that exists (checked in blocks: the table stays on disk)."""
    for lo in range(0, len(table), 1 << 20):
        rows = table[lo:lo + (1 << 20), 0]
        if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= documents):
            raise ValueError("a table row names a document that is not in documents.jsonl")


def _read_v1_tables(files: IndexFiles) -> tuple[dict[str, DocumentInfo], tuple[Chunk, ...], np.ndarray,
                                                 tuple[Sentence, ...]]:
    """Format 1 (qa 0.3): JSON-lines tables read whole."""
    documents = {info.doc_id: info for info in map(_document_info, _read_jsonl(files, "documents.jsonl"))}
    chunk_rows = _read_jsonl(files, "chunks.jsonl")
    chunks = tuple(Chunk(r["doc_id"], r["start"], r["end"], r["text"]) for r in chunk_rows)
    ranges = np.array([r["sentences"] for r in chunk_rows], dtype=np.int64).reshape(-1, 2)
    sentences = tuple(Sentence(**r) for r in _read_jsonl(files, "sentences.jsonl"))
    return documents, chunks, ranges, sentences


def _read_jsonl(files: IndexFiles, name: str) -> list[dict[str, Any]]:
    # Split at newlines only: str.splitlines would also split inside strings holding U+2028.
    return [json.loads(line) for line in files.read(name).decode("utf-8").split("\n") if line.strip()]
