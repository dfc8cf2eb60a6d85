"""What a build makes of documents, the same on every engine (local or Ray): chunks and
sentences (`split_documents`), the text the encoder and BM25 read (`chunk_model_text`), and the
vectors (`embed_rows`, with sentence vectors pooled from the chunk pass or embedded on their own).
"""

# tqdm is imported inside the functions that use them, on purpose: importing this module stays cheap
# (`import qa` loads neither torch nor FAISS, and `qa --help` starts at once).

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from qa.chunk import chunk_document
from qa.clean import model_text
from qa.config import Settings
from qa.embed import Embedder
from qa.encoder import Progress
from qa.formats import KINDS, PAGE_SEPARATOR
from qa.sentences import split_sentences, wrap_width
from qa.types import Chunk, Document, Sentence


def chunk_model_text(chunk: Chunk, title: str) -> str:
    """What the encoder and BM25 read for a chunk: its document's title, then its cleaned text.

    The title gives every chunk its document's topic ("contextual chunk header").
    """
    return f"{title}\n{model_text(chunk.text)}" if title else model_text(chunk.text)


def embed_rows(embedder: Embedder, chunks: Sequence[Chunk], sentences: Sequence[Sentence],
               titles: dict[str, str], settings: Settings, *, pooled: bool,
               bar: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Vectors for new chunks and sentences, under one progress bar (texts done of all texts).

    `pooled`: each sentence's vector is the mean of its tokens in the chunk pass (the chunk that
    holds it with the most context on both sides), so the encoder reads every token once.
    Sentences no chunk holds whole, or that fall past the model's 256 word pieces, are embedded
    on their own. Otherwise every sentence is embedded again on its own ("separate").

    `bar` is updated as texts are done (a build's bar, qa/index/progress.py); left out, a bar of
    its own is shown when `settings.show_progress` says so.
    """
    chunk_texts = [chunk_model_text(c, titles[c.doc_id]) for c in chunks]
    total = len(chunks) + len(sentences)
    own = _progress_bar(settings.show_progress, total) if bar is None else None
    shown: Progress | bool = bar or own or False
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
        if not isinstance(shown, bool):
            shown.update(len(sentences) - len(alone))
        if len(alone):
            sent_vecs[alone] = embedder.embed([model_text(sentences[int(i)].text) for i in alone], batch_size=batch,
                                              progress=shown)
        return chunk_vecs, sent_vecs
    finally:
        if own is not None:
            own.close()


def sentence_spans(chunks: Sequence[Chunk], sentences: Sequence[Sentence],
                   chunk_texts: Sequence[str]) -> tuple[list[list[tuple[int, int]]], list[list[int]]]:
    """For each chunk, the character spans, in its model text, of the sentences it hosts, and
    those sentences' rows. A sentence is hosted by the chunk that holds it whole with the most
    text on its shorter side; a sentence no chunk holds whole, or whose cleaned text cannot be
    found where it should be, is hosted by none."""
    ranges = chunk_sentence_ranges(chunks, sentences)
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
        width = wrap_width(doc.text)
        for run_start, run_end, skip in sentence_runs(doc):
            sentences.extend(Sentence(doc.doc_id, s, e, doc.text[s:e])
                             for s, e in split_sentences(doc.text, run_start, run_end, width, skip))
    return chunks, sentences


def sentence_runs(doc: Document) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """The ranges a document's sentences are split in, with the ranges inside them to skip.

    Each body segment is a run of its own, except in a format whose text flows over its pages
    (`Format.flowing`: a PDF), where a page break is not the author's: segments separated only by
    a page break (and the running header and footer cut out around it) form one run, with the
    gap and the page separator skipped, so a sentence carried over to the next page is one
    sentence (its range holds the furniture between).
    """
    found = KINDS.get(doc.kind)
    if found is None or not found.flowing or len(doc.page_starts) < 2:
        return [(s, e, []) for s, e in doc.segments]
    breaks = doc.page_starts[1:]
    runs: list[tuple[int, int, list[tuple[int, int]]]] = []
    for seg_start, seg_end in doc.segments:
        inner = [(p - len(PAGE_SEPARATOR), p) for p in breaks if seg_start < p - len(PAGE_SEPARATOR) < seg_end]
        if runs and any(runs[-1][1] < p <= seg_start for p in breaks):
            start, last_end, skip = runs[-1]
            runs[-1] = (start, seg_end, [*skip, (last_end, seg_start), *inner])
        else:
            runs.append((seg_start, seg_end, inner))
    return runs


def chunk_sentence_ranges(chunks: Sequence[Chunk], sentences: Sequence[Sentence]) -> np.ndarray:
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
