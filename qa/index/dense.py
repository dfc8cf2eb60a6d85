"""The dense layer of an index: exact `Flat` for small corpora, approximate IVF or HNSW above a
measured size, always built from the stored chunk vectors (so changing it never re-embeds).

Every kind searches by inner product over unit vectors (= cosine). Retrieval then re-scores the
candidates it gets with the exact stored vectors (qa/retrieval.py `dense_scores`), so an
approximate layer only decides *which* chunks are candidates, never their scores.

- `flat`: `IndexFlatIP`, exact. Its codes are memory-mapped at load (no copy in RAM).
- `ivf`: `IndexIVF` over a k-means coarse quantizer with `nlist` lists, codes `sq8` (8-bit
  scalar, 4x smaller than fp32), `pq` (product quantization, 48 bytes a vector: lossy, for when
  memory demands it; candidates are re-scored exactly) or `flat`; its
  inverted lists are memory-mapped at load, so opening it costs the centroids only.
- `hnsw`: `IndexHNSWFlat`; fastest per query, but its graph and vectors are read into memory
  (no memory-mapping), so opening grows with the corpus.

`auto` picks `flat` below `Settings.ann_threshold` chunks, `ivf` (sq8) at and above it.
"""

# tqdm is imported inside the functions that use them, on purpose: importing this module stays cheap
# (`import qa` loads neither torch nor FAISS, and `qa --help` starts at once).

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import faiss
import numpy as np

from qa.config import Settings

# PQ as 96 sub-quantizers of 4 bits, faiss's fast-scan layout: 48 bytes a 384-d vector (32x
# smaller than fp32). 8-bit PQ48 took 67 s to train on 4,000 vectors here; this takes 0.8 s.
PQ_CODE = "PQ96x4fs"
TRAIN_PER_LIST = 64  # k-means reads at most 64 training vectors per list (faiss warns below 39)
PROBES = 200        # sentence vectors used as probe queries for the recall check at build time


@dataclass(frozen=True)
class DenseSpec:
    """What dense layer an index has, as recorded in its manifest."""

    kind: str = "flat"           # flat | ivf | hnsw
    nlist: int = 0               # ivf: inverted lists
    nprobe: int = 0              # ivf: lists searched per query
    codec: str = "flat"          # ivf: sq8 | pq | flat
    hnsw_m: int = 0              # hnsw: links per node
    ef_search: int = 0           # hnsw: candidate list length at search
    recall_at_10: float | None = None   # measured against exact search at build time

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> DenseSpec:
        if not data:
            return cls()
        recall = data.get("recall_at_10")
        return cls(kind=str(data.get("kind", "flat")), nlist=int(data.get("nlist", 0)),
                   nprobe=int(data.get("nprobe", 0)), codec=str(data.get("codec", "flat")),
                   hnsw_m=int(data.get("hnsw_m", 0)), ef_search=int(data.get("ef_search", 0)),
                   recall_at_10=None if recall is None else float(recall))

    def same_layer(self, other: DenseSpec) -> bool:
        """True when both describe the same built structure (search-time knobs aside)."""
        return (self.kind, self.nlist, self.codec, self.hnsw_m) == (other.kind, other.nlist, other.codec,
                                                                   other.hnsw_m)

    def describe(self) -> str:
        if self.kind == "ivf":
            text = f"IVF{self.nlist},{self.codec.upper()} (nprobe {self.nprobe})"
        elif self.kind == "hnsw":
            text = f"HNSW{self.hnsw_m},Flat (efSearch {self.ef_search})"
        else:
            text = "Flat (exact)"
        if self.recall_at_10 is not None:
            text += f", recall@10 {self.recall_at_10:.3f} against exact"
        return text


def wanted_spec(settings: Settings, chunks: int) -> DenseSpec:
    """The dense layer `settings` ask for, for a corpus of `chunks` chunks."""
    kind = settings.dense_index
    if kind == "auto":
        kind = "ivf" if chunks >= settings.ann_threshold else "flat"
    if kind == "ivf":
        # About 4 sqrt(n) lists (a power of two), so that each holds some hundreds of vectors and
        # k-means has enough of them; never more lists than a 39th of the vectors.
        nlist = settings.ivf_nlist or max(1, min(2 ** round(math.log2(4 * math.sqrt(max(chunks, 1)))),
                                                 max(1, chunks // 39)))
        # 1/64 of the lists, never fewer than 32: at 10^6 synthetic MiniLM-like vectors (4,096
        # lists) 64 probes measured recall@10 0.969 against exact at 2.6 ms a query on 2 threads,
        # 128 probes 0.975 at 3.1 ms (docs/SCALING.md).
        nprobe = settings.ivf_nprobe or min(nlist, max(32, nlist // 64))
        return DenseSpec("ivf", nlist=nlist, nprobe=nprobe, codec=settings.ivf_codec)
    if kind == "hnsw":
        return DenseSpec("hnsw", hnsw_m=settings.hnsw_m, ef_search=settings.hnsw_ef_search)
    return DenseSpec("flat")


def build_dense(vectors: np.ndarray, spec: DenseSpec, *, probes: np.ndarray | None = None,
                log: Callable[[str], None] | None = None, progress: bool = False) -> tuple[faiss.Index, DenseSpec]:
    """The dense layer over `vectors` (unit rows), and its spec with the measured recall@10
    against exact search on `probes` (query-like vectors, e.g. stored sentence vectors)."""
    n, dim = vectors.shape
    if spec.kind == "flat":
        flat = faiss.IndexFlatIP(dim)
        flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return flat, spec
    started = time.perf_counter()
    if log:
        log(f"Building the dense layer {spec.describe()} over {n} chunks from the stored vectors...")
    index: faiss.Index
    if spec.kind == "ivf":
        codec = {"sq8": "SQ8", "pq": PQ_CODE, "flat": "Flat"}[spec.codec]
        index = faiss.index_factory(dim, f"IVF{spec.nlist},{codec}", faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        take = min(n, spec.nlist * TRAIN_PER_LIST)
        sample = vectors[np.sort(rng.choice(n, take, replace=False))] if take < n else vectors
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
    else:
        index = faiss.IndexHNSWFlat(dim, spec.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 40
    # Added in blocks so that a 10^6-row memory-mapped table never becomes one float32 copy.
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=f"Adding to {spec.kind.upper()}", unit="chunk", dynamic_ncols=True)
    try:
        for lo in range(0, n, 65536):
            block = np.ascontiguousarray(vectors[lo:lo + 65536], dtype=np.float32)
            index.add(block)
            if bar is not None:
                bar.update(len(block))
    finally:
        if bar is not None:
            bar.close()
    configure(index, spec)
    recall = None
    if probes is not None and len(probes):
        recall = measured_recall(index, vectors, probes)
    spec = DenseSpec(**{**spec.to_json(), "recall_at_10": recall})
    if log:
        log(f"Dense layer {spec.describe()} over {n} chunks, built in {time.perf_counter() - started:.1f} s.")
    return index, spec


def search_params(spec: DenseSpec, nprobe: int = 0, ef_search: int = 0) -> Any:
    """Per-call search parameters (thread-safe, unlike setting them on the shared index), with
    the settings' overrides when they are not 0."""
    params: Any = None
    if spec.kind == "ivf":
        params = faiss.SearchParametersIVF()
        params.nprobe = max(1, nprobe or spec.nprobe)
    elif spec.kind == "hnsw":
        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing from faiss's stubs
        params.efSearch = max(1, ef_search or spec.ef_search)
    return params


def with_selector(params: Any, selector: Any) -> Any:
    """`params` (or plain search parameters) restricted to the ids `selector` allows."""
    if params is None:
        params = faiss.SearchParameters()
    params.sel = selector
    return params


def configure(index: faiss.Index, spec: DenseSpec) -> None:
    """Set the search-time knobs of `spec` on a loaded index."""
    if spec.kind == "ivf":
        ivf = faiss.extract_index_ivf(index)
        ivf.nprobe = max(1, spec.nprobe)
        # One question is one query: split its lists over the threads (mode 0 splits queries only).
        ivf.parallel_mode = 1
    elif spec.kind == "hnsw":
        hnsw: Any = faiss.downcast_index(index)
        hnsw.hnsw.efSearch = max(1, spec.ef_search)


def measured_recall(index: faiss.Index, vectors: np.ndarray, probes: np.ndarray, k: int = 10) -> float:
    """Mean share of the exact top `k` that `index` also returns, for each probe query."""
    queries = np.ascontiguousarray(probes, dtype=np.float32)
    k = min(k, len(vectors))
    _, found = index.search(queries, k)
    exact = exact_top(vectors, queries, k)
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(found, exact, strict=True)]))


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact top-`k` rows by inner product, reading `vectors` in blocks (no full copy)."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.full((len(queries), k), -1, dtype=np.int64)
    for lo in range(0, len(vectors), 65536):
        block = np.ascontiguousarray(vectors[lo:lo + 65536], dtype=np.float32)
        scores = queries @ block.T
        kk = min(k, block.shape[0])
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        s = np.take_along_axis(scores, part, axis=1)
        all_s = np.concatenate([best_s, s], axis=1)
        all_i = np.concatenate([best_i, part + lo], axis=1)
        top = np.argsort(-all_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(all_s, top, axis=1), np.take_along_axis(all_i, top, axis=1)
    return best_i


def probe_vectors(sentence_vectors: np.ndarray, chunk_vectors: np.ndarray) -> np.ndarray:
    """Query-like vectors for the recall check: up to `PROBES` stored sentence vectors (a sentence
    is close to, but not the same as, the chunks that hold it), else chunk vectors."""
    source = sentence_vectors if len(sentence_vectors) else chunk_vectors
    if not len(source):
        return np.zeros((0, chunk_vectors.shape[1] if chunk_vectors.ndim == 2 else 0), dtype=np.float32)
    rows = np.random.default_rng(1).choice(len(source), min(PROBES, len(source)), replace=False)
    return np.asarray(source[np.sort(rows)], dtype=np.float32)


def read_dense(data: Any, spec: DenseSpec) -> faiss.Index:
    """The dense layer from the bytes of `dense.faiss` (in memory, or a map the index loader
    holds a lease on): flat codes and IVF lists are used where they lie, without a copy; HNSW is
    read into faiss's own memory.

    Raises:
        RuntimeError: faiss cannot read it.
    """
    buffer = np.frombuffer(data, dtype=np.uint8)
    if spec.kind in ("flat", "ivf") and hasattr(faiss, "ZeroCopyIOReader"):
        reader = faiss.ZeroCopyIOReader(faiss.swig_ptr(buffer), buffer.size)
        index = faiss.read_index(reader, faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        # faiss now points into `data`: it lives as long as the index does, wherever the index goes
        # (faiss's own attribute for objects an index depends on).
        index.referenced_objects = [data]  # type: ignore[attr-defined]
    else:
        index = faiss.deserialize_index(buffer)
    configure(index, spec)
    return index
