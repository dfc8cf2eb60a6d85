"""The index on disk: its layout, the typed `Manifest`, and `load_index`.

Layout of an index folder (no pickle anywhere; arrays are .npy, tables are JSON lines):

    .qa-index              marker: this folder is a qa index (see qa/index/atomic.py)
    manifest.json          model, dimension, chunking, pipeline version, sha256 per source file
    documents.jsonl        doc_id, title, date, tags, sha256, chars
    chunks.jsonl           doc_id, start, end, text, first/last overlapping sentence
    chunk_vectors.npy      float32 (chunks x dimension), unit length
    dense.faiss            faiss.IndexFlatIP over chunk_vectors (exact inner product = cosine)
    sentences.jsonl        doc_id, start, end, text
    sentence_vectors.npy   float32 (sentences x dimension), embedded once, never per question
    bm25/                  bm25s arrays and vocabulary
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from qa.errors import IndexCorruptError, IndexMissingError
from qa.index.atomic import MANIFEST, recover, tidy_if_idle
from qa.lexical import document_count, load_bm25, save_bm25
from qa.types import Chunk, DocumentInfo, Sentence

FORMAT_VERSION = 1
# Bump when loading, cleaning, chunking or sentence splitting changes what gets indexed:
# an index built by another pipeline version is rebuilt in full, with that reason given.
# 2: byte-order marks trimmed from bodies and titles, broken front matter read loosely,
#    symbolic links that leave the corpus skipped.
PIPELINE_VERSION = 2
TOKENIZER = "cl100k_base"
_FILES = ("documents.jsonl", "chunks.jsonl", "chunk_vectors.npy", "dense.faiss",
          "sentences.jsonl", "sentence_vectors.npy")


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
    encoder: str = ""   # the encoder that built it, for people (not compared)

    def signature(self) -> dict[str, Any]:
        """The fields that must match for an index to be updated rather than rebuilt."""
        return {k: getattr(self, k) for k in ("format_version", "pipeline_version", "model", "dimension",
                                              "chunk_tokens", "chunk_overlap_tokens", "tokenizer",
                                              "encoder_precision", "sentence_vectors")}

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
        if found != FORMAT_VERSION:
            raise IndexCorruptError(
                f"The index at {where} has format version {found!r}; this qa reads version "
                f"{FORMAT_VERSION}. {rebuild}")
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
                encoder=str(data.get("encoder", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexCorruptError(f"The index manifest {where / MANIFEST} is incomplete ({exc!r}). {rebuild}") \
                from exc
        return manifest


@dataclass(frozen=True)
class Index:
    """A loaded index, shared read-only by every query."""

    path: Path
    manifest: Manifest
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
        return self.manifest.model


def write_index_files(folder: Path, manifest: Manifest, infos: Iterable[DocumentInfo], chunks: list[Chunk],
                      chunk_sentences: np.ndarray, chunk_vectors: np.ndarray, sentences: list[Sentence],
                      sentence_vectors: np.ndarray, bm25: Any) -> None:
    """Write every file of an index into `folder`, the manifest last, and fsync them."""
    _write_jsonl(folder / "documents.jsonl", (asdict(d) for d in infos))
    _write_jsonl(folder / "chunks.jsonl", (
        {"doc_id": c.doc_id, "start": c.start, "end": c.end, "text": c.text, "sentences": [int(r[0]), int(r[1])]}
        for c, r in zip(chunks, chunk_sentences, strict=True)))
    _write_jsonl(folder / "sentences.jsonl", (asdict(s) for s in sentences))
    np.save(folder / "chunk_vectors.npy", chunk_vectors)
    np.save(folder / "sentence_vectors.npy", sentence_vectors)
    dense = faiss.IndexFlatIP(chunk_vectors.shape[1])
    dense.add(chunk_vectors)
    faiss.write_index(dense, str(folder / "dense.faiss"))
    (folder / "bm25").mkdir()
    save_bm25(bm25, folder / "bm25")
    # The manifest goes last: a folder without one is never loaded as an index.
    (folder / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2, ensure_ascii=False), encoding="utf-8")
    _fsync_tree(folder)


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


# Loaded indexes by (path, manifest mtime, manifest inode): a rebuild swaps in a new manifest,
# so the next load sees it; the old entries fall out as new ones arrive.
_CACHE: dict[tuple[str, int, int], Index] = {}
_CACHE_SIZE = 4
_cache_lock = threading.Lock()


def load_index(path: str | Path) -> Index:
    """Load the index at `path`, reusing the copy in memory while its files are unchanged.

    The first load also removes what killed builds left beside the index (when no build runs).

    Raises:
        IndexMissingError: there is no index there.
        IndexCorruptError: the index cannot be read, or was written by another format version.
    """
    path = Path(path)
    manifest = path / MANIFEST
    if not manifest.exists() and not recover(path):
        raise IndexMissingError(f"No index found at {path}. Build it with `qa index --corpus DIR --index {path}`.")
    try:
        stat = manifest.stat()
    except OSError as exc:
        raise IndexMissingError(f"No index found at {path} ({exc.strerror}). Build it with `qa index`.") from exc
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_ino)
    with _cache_lock:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    tidy_if_idle(path)
    loaded = _read(Path(key[0]))
    with _cache_lock:
        _CACHE[key] = loaded
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
    return loaded


def forget_loaded() -> None:
    """Drop every index held in memory (after a build, the next load reads the new files)."""
    with _cache_lock:
        _CACHE.clear()


def _read(path: Path) -> Index:
    rebuild = f"Rebuild it with `qa index --rebuild --index {path}`."
    try:
        data = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(f"The index manifest {path / MANIFEST} is unreadable ({exc}). {rebuild}") from exc
    if not isinstance(data, dict):
        raise IndexCorruptError(f"The index manifest {path / MANIFEST} is not a JSON object. {rebuild}")
    manifest = Manifest.from_json(data, path)
    missing = [name for name in (*_FILES, "bm25") if not (path / name).exists()]
    if missing:
        raise IndexCorruptError(f"The index at {path} is incomplete (missing {', '.join(missing)}). {rebuild}")
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
        raise IndexCorruptError(f"The index at {path} cannot be read ({type(exc).__name__}: {exc}). {rebuild}") \
            from exc
    consistent = (
        len(chunks) == chunk_vectors.shape[0] == dense.ntotal == document_count(bm25)
        and len(sentences) == sentence_vectors.shape[0]
        and chunk_vectors.shape[1] == dense.d == manifest.dimension
        and all(c.doc_id in documents for c in chunks)
    )
    if not consistent:
        raise IndexCorruptError(f"The index at {path} is inconsistent (its files disagree on sizes). {rebuild}")
    return Index(path, manifest, documents, chunks, ranges, chunk_vectors, dense, sentences, sentence_vectors, bm25)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
