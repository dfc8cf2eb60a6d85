"""The peer comparison on SciFact: LangChain's FAISS vector store over the same chunk texts and
model as qa, for query latency and nDCG@10 (build time: `qa bench indexing`).
"""

# LangChain's vector store (the peer being compared) is imported inside the functions that use them,
# on purpose: importing this module stays cheap (`import qa` loads neither torch nor FAISS, and `qa
# --help` starts at once).

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from qa.bench.common import CACHE, Doc, progress
from qa.bench.report import Report
from qa.config import Settings
from qa.embed import embedder_for
from qa.encoder import Progress
from qa.evaluation.metrics import mean, ndcg10, percentile
from qa.index import chunk_model_text
from qa.retrieval import retrieve

PEER_K = 30       # chunks asked of each system per query in the peer comparison


class _TimedEmbedder:
    """Wraps an embedder to add up the seconds spent embedding (the bulk of a build)."""

    def __init__(self, embedder: Any) -> None:
        self.name = embedder.name
        self.dimension = embedder.dimension
        self._embedder = embedder
        self.calls: list[tuple[int, float]] = []  # (texts, seconds) of each call, in order

    @property
    def seconds(self) -> float:
        return sum(seconds for _, seconds in self.calls)

    def embed(self, texts: Sequence[str], *, batch_size: int = 64,
              progress: bool | Progress = False) -> np.ndarray:
        started = time.perf_counter()
        try:
            return np.asarray(self._embedder.embed(texts, batch_size=batch_size, progress=progress))
        finally:
            self.calls.append((len(texts), time.perf_counter() - started))


def peer_comparison(out: Report, docs: Sequence[Doc], index: Any, keys: dict[str, str], codes: np.ndarray,
          number: dict[str, int], test: list[tuple[str, set[str]]], settings: Settings) -> None:
    """LangChain's FAISS store over the same chunk texts and model, against qa's retrieve()."""
    out.section("Peer comparison: LangChain FAISS vector store (same model, same chunk texts)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # langchain-community announces its own sunset on import
            from langchain_community.vectorstores import FAISS
            from langchain_core.embeddings import Embeddings
    except ImportError:
        out.text("Skipped: LangChain is not installed (pip install langchain-community).")
        return
    model = embedder_for(settings, index.model)

    class QAEmbeddings(Embeddings):
        """LangChain's embeddings interface over qa's offline encoder (nothing is downloaded)."""

        def __init__(self) -> None:
            self.timed = _TimedEmbedder(model)

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return self.timed.embed(texts, batch_size=settings.embed_batch_size,
                                    progress=settings.show_progress).tolist()

        def embed_query(self, text: str) -> list[float]:
            return self.timed.embed([text])[0].tolist()

    # Build time against LangChain is `qa bench indexing` (its own, interleaved runs).
    recorded = CACHE / "scifact" / "build.json"
    if recorded.exists():
        full = json.loads(recorded.read_text(encoding="utf-8"))
        out.text(f"The full qa SciFact index ({full['chunks']} chunks, {full['sentences']} sentences) took "
                 f"{full['seconds']:.0f} s from scratch when it was built ({full['when']}); build times against "
                 "LangChain: `qa bench indexing`.")

    # Quality and latency on the whole corpus. The LangChain store gets the very vectors the
    # model gives for these chunk texts (from_embeddings), which from_texts would compute again.
    titles = {d: info.title for d, info in index.documents.items()}
    store = FAISS.from_embeddings(
        zip([chunk_model_text(c, titles[c.doc_id]) for c in index.chunks],
            np.asarray(index.chunk_vectors).tolist(), strict=True),
        QAEmbeddings(), metadatas=[{"doc_id": c.doc_id} for c in index.chunks])

    def ranked_docs(doc_ids: Iterable[str]) -> list[int]:
        return list(dict.fromkeys(number[keys[d]] for d in doc_ids))

    systems: dict[str, Callable[[str], list[int]]] = {
        "LangChain FAISS similarity_search": lambda q: ranked_docs(
            d.metadata["doc_id"] for d, _ in store.similarity_search_with_score(q, k=PEER_K)),
        "qa retrieve, dense": lambda q: ranked_docs(
            p.doc_id for p in retrieve(q, k=PEER_K, index=index, settings=settings, mode="dense")),
        "qa retrieve, hybrid": lambda q: ranked_docs(
            p.doc_id for p in retrieve(q, k=PEER_K, index=index, settings=settings, mode="hybrid")),
    }
    for run in systems.values():  # warm-up: first calls load models and fill caches
        for text, _ in test[:3]:
            run(text)
    latency: dict[str, list[float]] = {name: [] for name in systems}
    quality: dict[str, list[float]] = {name: [] for name in systems}
    for text, rel_ids in progress(test, settings, "peer queries"):
        rel = {number[d] for d in rel_ids if d in number}
        for name, run in systems.items():  # interleaved, so load changes hit all systems alike
            started = time.perf_counter()
            ranked = run(text)
            latency[name].append(1000 * (time.perf_counter() - started))
            quality[name].append(ndcg10(ranked, rel))
    out.text(f"\nQueries: the {len(test)} test claims, each system asked for its top {PEER_K} chunks "
             "(documents ranked by their best chunk); the query is embedded on every call.")
    out.table(["system", "p50 ms", "p95 ms", "nDCG@10"], [
        [name, percentile(latency[name], 50), percentile(latency[name], 95), mean(quality[name])]
        for name in systems])
    threads = out.threads()
    out.data["peer"] = {name: {"p50_ms": percentile(latency[name], 50),
                               "p95_ms": percentile(latency[name], 95),
                               "ndcg@10": mean(quality[name])} for name in systems}
    out.data["peer"]["threads"] = threads
