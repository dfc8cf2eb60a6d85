"""`qa bench scale`: how an index behaves at 10^5 and 10^6 chunks on this machine.

Where the vectors come from (printed in the report, too):
- The real ones: every chunk and sentence vector of the SciFact index (`qa bench scifact`'s,
  built here if missing), and the SciFact claims, embedded by the shipped encoder, as queries.
- Above that, synthetic vectors "to the same statistics": a 1,024-centre spherical k-means of the
  real vectors, then centre + residual drawn from the real residuals' full covariance (scaled
  per centre), normalized. Synthetic chunks reuse real chunk texts (and their sentences) in
  synthetic documents of 4 chunks; a synthetic sentence vector is its chunk's vector plus noise
  sized so that sentence-to-chunk cosines match the real mean.
Synthetic neighbourhoods are flatter than real ones (a real vector's nearest other vector is at
cosine 0.92 on average, a synthetic one's at 0.75), which makes approximate search *harder*:
the recall figures are conservative.

Each size is written through the index store (`write_columns`) with the dense layer
`dense_index = "auto"` picks, then opened and queried in a fresh process, which reports open
time, RSS after open, dense search p50/p95 (approximate and exact), recall@10 against exact,
and `qa.retrieve` p50 (hybrid: BM25 + dense + sentence re-scoring).
"""

# FAISS is imported inside the functions that use them, on purpose: importing this module stays
# cheap (`import qa` loads neither torch nor FAISS, and `qa --help` starts at once).

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from qa.bench.common import CACHE, Doc, data_folder, prepare_index, pyplot, read_jsonl
from qa.bench.registry import BenchRun
from qa.bench.report import Report
from qa.config import Settings
from qa.embed import embedder_for
from qa.errors import BenchmarkDataError
from qa.index import load_index
from qa.index.atomic import mark_index_folder
from qa.index.dense import build_dense, exact_top, probe_vectors, search_params, wanted_spec
from qa.index.rows import chunk_model_text
from qa.index.store import Manifest, write_columns
from qa.lexical import build_bm25
from qa.retrieval import retrieve
from qa.runtime import set_threads
from qa.types import DocumentInfo

SIZES = (100_000, 1_000_000)
CHUNKS_PER_DOC = 4
CENTRES = 1024
QUERIES = 1000        # SciFact claims used as queries (recall, dense latency)
RETRIEVE_QUERIES = 200
SEED = 7
BYTES_PER_CHUNK = 8_300   # measured: 8.22 GiB for 10^6 chunks (texts, tables, vectors, layers)


def bench_scale(folder: Path, settings: Settings, report_dir: Path, *, sizes: Sequence[int] = SIZES,
                echo: Callable[[str], None] | None = None) -> Report:
    """Build and measure an index at each of `sizes` chunks (see the module's docstring)."""
    out = Report("Scale: ANN and memory-mapped indexes at 10^5-10^6 chunks", report_dir, echo)
    for n in sizes:
        if n < 1000:
            raise BenchmarkDataError(f"Invalid size {n}: qa bench scale measures 1,000 chunks or more.")
    need = max(sizes) * BYTES_PER_CHUNK
    free = shutil.disk_usage(CACHE.parent if CACHE.parent.exists() else Path.cwd()).free
    if need > free:
        raise BenchmarkDataError(f"qa bench scale at {max(sizes):,} chunks needs about {need / 2**30:.0f} GiB "
                                 f"of disk under {CACHE}; {free / 2**30:.0f} GiB are free.")
    docs = [Doc(str(d["_id"]), str(d.get("title") or ""), str(d.get("text") or ""))
            for d in read_jsonl(folder / "corpus.jsonl.gz")]
    real, _, _ = prepare_index("scifact", docs, settings, log=out.echo)
    claims = [str(q["text"]) for q in read_jsonl(folder / "queries.jsonl")][:QUERIES]
    embedder = embedder_for(settings)
    queries = np.asarray(embedder.embed(claims, batch_size=settings.embed_batch_size), dtype=np.float32)
    base = CACHE / "scale"
    base.mkdir(parents=True, exist_ok=True)
    np.save(base / "queries.npy", queries)
    (base / "queries.json").write_text(json.dumps(claims[:RETRIEVE_QUERIES]), encoding="utf-8")
    out.text(f"Real vectors: {len(real.chunks):,} chunks and {len(real.sentences):,} sentences of SciFact "
             f"(encoder {getattr(embedder, 'description', embedder.name)}); queries: {len(claims)} SciFact claims.")
    out.text("Above that: synthetic vectors to the same statistics (k-means centres + residual covariance), "
             "synthetic documents reusing real chunk texts. Page cache warm (files just written).")
    generator = Generator(np.asarray(real.chunk_vectors), np.asarray(real.sentence_vectors),
                          real.chunk_sentences)
    rows = []
    figures: dict[str, Any] = {}
    for n in sizes:
        folder_n = base / f"{n}"
        built = build_synthetic(real, generator, n, folder_n, settings, log=out.echo)
        measured = measure_in_subprocess(folder_n, base, settings)
        size = sum(p.stat().st_size for p in folder_n.rglob("*") if p.is_file())
        compressed = (folder_n / "dense.faiss").stat().st_size
        limit = 1.5 * compressed + 2**30
        figures[str(n)] = {**built, **measured, "index_bytes": size, "dense_bytes": compressed,
                           "rss_limit_bytes": limit}
        rows.append([f"{n:,}", built["dense"], f"{built['build_s']:.0f}", f"{size / 2**30:.2f}",
                     f"{compressed / 2**20:.0f}", f"{measured['rss_after_open_bytes'] / 2**20:.0f}",
                     f"{limit / 2**20:.0f}", f"{measured['open_s']:.2f}",
                     f"{measured['dense_p50_ms']:.2f} / {measured['dense_p95_ms']:.2f}",
                     f"{measured['exact_p50_ms']:.1f}", f"{measured['recall_at_10']:.3f}",
                     f"{measured['retrieve_p50_ms']:.1f}"])
        out.text(f"{n:,} chunks measured.")
    out.section("Per size (one run)")
    out.table(["chunks", "dense layer", "build s", "index GiB", "dense MiB", "RSS after open MiB",
               "RSS limit MiB", "open s", "ANN p50/p95 ms", "exact p50 ms", "recall@10", "retrieve p50 ms"], rows)
    out.text("build s: BM25, dense layer (k-means, adds, recall probe) and writing; not embedding, which "
             "`qa bench indexing` measures. RSS limit: 1.5 x dense-layer bytes + 1 GiB (the issue's bound). "
             "exact p50: one query against all chunk vectors (faiss.knn, memory-mapped).")
    out.threads()
    out.data["sizes"] = figures
    _plot(figures, report_dir / "scale.png")
    out.text("Plot: scale.png")
    return out


class Generator:
    """Synthetic unit vectors with the real ones' cluster structure and residual covariance."""

    def __init__(self, chunk_vectors: np.ndarray, sentence_vectors: np.ndarray, ranges: np.ndarray) -> None:
        import faiss

        real = np.ascontiguousarray(np.concatenate([chunk_vectors, sentence_vectors]), dtype=np.float32)
        self.dim = real.shape[1]
        kmeans = faiss.Kmeans(self.dim, max(1, min(CENTRES, len(real) // 40)), niter=15, seed=SEED, spherical=True)
        kmeans.train(real)
        assert kmeans.centroids is not None
        self.centres = kmeans.centroids.astype(np.float32)
        _, assigned = kmeans.index.search(real, 1)
        assigned = assigned[:, 0]
        residual = real - self.centres[assigned]
        self.chol = np.linalg.cholesky(np.cov(residual.T) + 1e-6 * np.eye(self.dim)).astype(np.float32)
        counts = np.bincount(assigned, minlength=len(self.centres)).astype(np.float64)
        self.weights = counts / counts.sum()
        energy = (residual ** 2).sum(axis=1)
        per_centre = np.bincount(assigned, weights=energy, minlength=len(self.centres)) / np.maximum(counts, 1)
        self.scale = np.sqrt(per_centre / energy.mean()).astype(np.float32)
        # Sentence-to-chunk cosine of the real index, matched by the noise added to sentences.
        cos = [float(np.mean(sentence_vectors[lo:hi] @ chunk_vectors[i]))
               for i, (lo, hi) in enumerate(ranges[:5000]) if hi > lo]
        self.sentence_cosine = float(np.mean(cos)) if cos else 0.7
        self.sentence_noise = float(np.sqrt((1 / self.sentence_cosine ** 2 - 1) / self.dim))

    def chunks(self, n: int, rng: np.random.Generator) -> np.ndarray:
        centre = rng.choice(len(self.centres), n, p=self.weights)
        z = rng.standard_normal((n, self.dim), dtype=np.float32) @ self.chol.T
        x = self.centres[centre] + z * self.scale[centre, None]
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    def sentences(self, chunk_vectors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = chunk_vectors + rng.standard_normal(chunk_vectors.shape, dtype=np.float32) * self.sentence_noise
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class _Tables:
    """A synthetic index's rows: the real ones, then copies in synthetic documents of CHUNKS_PER_DOC."""

    source: np.ndarray           # the real chunk each row copies
    real_rows: int               # rows that are the real index's own
    docs_real: list[Any]         # the real index's documents
    n_docs: int
    n_sent: int
    table: np.ndarray            # per chunk: document row, start, end, first and end sentence row
    doc_chars: np.ndarray        # each document's length in characters
    sent_counts: np.ndarray      # sentences of each real chunk
    sentence_table: np.ndarray   # per sentence: document row, start, end
    sentence_source: np.ndarray  # the real sentence each sentence row copies


def build_synthetic(real: Any, generator: Generator, n: int, folder: Path, settings: Settings,
                    log: Callable[[str], None]) -> dict[str, Any]:
    """Write an index of `n` chunks into `folder`: the real SciFact rows first, synthetic after."""
    rng = np.random.default_rng(SEED)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    log(f"Writing {n:,} chunks into {folder} ...")
    r = len(real.chunks)
    chunk_texts = [c.text for c in real.chunks]
    started = time.perf_counter()
    t = _tables(real, n)
    titles = {d.doc_id: d.title for d in t.docs_real}
    infos = [*t.docs_real, *(DocumentInfo(f"synthetic/{k:07d}.txt", f"Synthetic document {k}", None, (), "",
                                          int(t.doc_chars[len(t.docs_real) + k]))
                             for k in range(t.n_docs - len(t.docs_real)))]
    sentence_texts = _sentence_texts(real, t)
    cvec, svec = _vectors(real, generator, t, n, folder, rng)
    log(f"  tables and vectors ready in {time.perf_counter() - started:.0f} s; BM25 over {n:,} chunks ...")
    timer = time.perf_counter()
    titled = [chunk_model_text(real.chunks[int(j)], titles.get(real.chunks[int(j)].doc_id, "")) for j in t.source[:r]]
    bm25 = build_bm25([titled[int(j)] for j in t.source])
    bm25_s = time.perf_counter() - timer
    spec = wanted_spec(replace(settings, dense_index="auto"), n)
    timer = time.perf_counter()
    dense, spec = build_dense(cvec, spec, probes=probe_vectors(svec, cvec), log=log)
    dense_s = time.perf_counter() - timer
    manifest = Manifest(
        model=real.manifest.model, dimension=generator.dim, chunk_tokens=real.manifest.chunk_tokens,
        chunk_overlap_tokens=real.manifest.chunk_overlap_tokens, corpus=f"synthetic ({n} chunks)",
        created=datetime.now(UTC).isoformat(timespec="seconds"), files={}, encoder=real.manifest.encoder,
        counts={"documents": t.n_docs, "chunks": n, "sentences": t.n_sent},
        encoder_precision=real.manifest.encoder_precision, sentence_vectors=real.manifest.sentence_vectors,
        dense=spec.to_json())
    timer = time.perf_counter()
    mark_index_folder(folder)
    write_columns(folder, manifest, infos, t.table, (chunk_texts[int(j)] for j in t.source), t.sentence_table,
                  sentence_texts, cvec, svec, bm25, dense)
    write_s = time.perf_counter() - timer
    del dense, bm25
    return {"dense": spec.describe(), "build_s": bm25_s + dense_s + write_s, "bm25_s": bm25_s,
            "dense_s": dense_s, "write_s": write_s, "documents": t.n_docs, "sentences": t.n_sent,
            "synthetic_chunks": n - t.real_rows, "probe_recall_at_10": spec.recall_at_10}


def _tables(real: Any, n: int) -> _Tables:
    """The chunk and sentence tables of `n` rows copied from `real`'s (see `_Tables`)."""
    r = len(real.chunks)
    real_ranges = np.asarray(real.chunk_sentences)
    # Which real chunk each row copies, and its synthetic document (4 chunks each).
    source = np.arange(n) % r
    real_rows = min(n, r)
    docs_real = list(real.documents.values())
    doc_row_of_real = {d.doc_id: i for i, d in enumerate(docs_real)}
    # Rows < r: the real index's own chunks and documents. Rows >= r: synthetic documents.
    synthetic = n - real_rows
    n_docs = len(docs_real) + (synthetic + CHUNKS_PER_DOC - 1) // CHUNKS_PER_DOC
    table = np.zeros((n, 5), dtype=np.int64)
    doc_chars = np.zeros(n_docs, dtype=np.int64)
    sent_counts = np.array([hi - lo for lo, hi in real_ranges], dtype=np.int64)
    n_sent = int(sent_counts[source].sum())
    sentence_table = np.zeros((n_sent, 3), dtype=np.int64)
    sentence_source = np.zeros(n_sent, dtype=np.int64)
    at = 0
    for i in range(n):
        j = int(source[i])
        c = real.chunks[j]
        lo, hi = (int(v) for v in real_ranges[j])
        if i < r:
            d, start = doc_row_of_real[c.doc_id], c.start
            shift = 0
        else:
            d = len(docs_real) + (i - r) // CHUNKS_PER_DOC
            start = int(doc_chars[d]) + (2 if doc_chars[d] else 0)   # chunks joined by a blank line
            shift = start - c.start
            doc_chars[d] = start + (c.end - c.start)
        table[i] = (d, start, start + c.end - c.start, at, at + hi - lo)
        for k in range(lo, hi):
            s = real.sentences[k]
            sentence_table[at] = (d, max(s.start, c.start) + shift, min(s.end, c.end) + shift)
            sentence_source[at] = k
            at += 1
    for i, d in enumerate(docs_real):
        doc_chars[i] = d.chars
    return _Tables(source=source, real_rows=real_rows, docs_real=docs_real, n_docs=n_docs, n_sent=n_sent,
                   table=table, doc_chars=doc_chars, sent_counts=sent_counts, sentence_table=sentence_table,
                   sentence_source=sentence_source)


def _sentence_texts(real: Any, t: _Tables) -> Iterator[str]:
    """The sentence rows' texts, made as they are written."""
    real_sentences = list(real.sentences)
    owner = np.repeat(np.arange(len(t.source)), t.sent_counts[t.source])

    def texts() -> Iterator[str]:
        # Every chunk has its own copies of the sentences it overlaps, clipped to the chunk.
        for k in range(t.n_sent):
            s = real_sentences[int(t.sentence_source[k])]
            if t.sentence_table[k, 2] - t.sentence_table[k, 1] == s.end - s.start:
                yield s.text
            else:
                c = real.chunks[int(t.source[owner[k]])]
                yield c.text[int(max(s.start, c.start) - c.start):int(min(s.end, c.end) - c.start)]

    return texts()


def _vectors(real: Any, generator: Generator, t: _Tables, n: int, folder: Path,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Chunk and sentence vectors, memory-mapped in `folder`: the real rows' own, then generated."""
    real_rows, table = t.real_rows, t.table
    cvec = np.lib.format.open_memmap(folder / "chunk_vectors.npy", mode="w+", dtype=np.float32,
                                     shape=(n, generator.dim))
    cvec[:real_rows] = np.asarray(real.chunk_vectors)[:real_rows]
    for lo in range(real_rows, n, 100_000):
        cvec[lo:min(n, lo + 100_000)] = generator.chunks(min(n, lo + 100_000) - lo, rng)
    svec = np.lib.format.open_memmap(folder / "sentence_vectors.npy", mode="w+", dtype=np.float32,
                                     shape=(t.n_sent, generator.dim))
    real_sent_rows = int(table[real_rows - 1, 4]) if real_rows else 0
    svec[:real_sent_rows] = np.asarray(real.sentence_vectors)[t.sentence_source[:real_sent_rows]]
    for lo in range(real_rows, n, 100_000):
        hi = min(n, lo + 100_000)
        s_lo, s_hi = int(table[lo, 3]), int(table[hi - 1, 4])
        hosts = np.repeat(np.arange(lo, hi), table[lo:hi, 4] - table[lo:hi, 3])
        svec[s_lo:s_hi] = generator.sentences(np.asarray(cvec[hosts]), rng)
    return cvec, svec


def measure_in_subprocess(folder: Path, base: Path, settings: Settings) -> dict[str, Any]:
    """Open and query `folder` in a fresh Python (so RSS and open time are the index's own)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(settings.threads)}
    done = subprocess.run([sys.executable, "-m", "qa.bench.scale", str(folder), str(base), str(settings.threads)],
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise BenchmarkDataError(f"Measuring {folder} failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _rss() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _measure(folder: Path, base: Path, threads: int) -> dict[str, Any]:
    import faiss

    set_threads(threads)
    queries = np.load(base / "queries.npy")
    claims = json.loads((base / "queries.json").read_text(encoding="utf-8"))
    before = _rss()
    timer = time.perf_counter()
    index = load_index(folder)
    open_s = time.perf_counter() - timer
    rss = _rss()
    spec = index.dense_spec
    params = search_params(spec)
    times, found = [], []
    for q in queries:
        timer = time.perf_counter()
        _, rows = index.dense.search(q[None, :], 10, params=params)
        times.append(time.perf_counter() - timer)
        found.append(rows[0])
    rss_after_search = _rss()
    exact_times = []
    vectors = index.chunk_vectors
    for q in queries[:20]:
        timer = time.perf_counter()
        faiss.knn(q[None, :], vectors, 10, metric=faiss.METRIC_INNER_PRODUCT)
        exact_times.append(time.perf_counter() - timer)
    exact = exact_top(vectors, queries, 10)
    recall = float(np.mean([len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(found, exact, strict=True)]))
    settings = Settings(threads=threads)
    embedder_for(settings)
    retrieve(claims[0], index=folder, settings=settings)
    retrieve_times = []
    for claim in claims:
        timer = time.perf_counter()
        retrieve(claim, index=folder, settings=settings)
        retrieve_times.append(time.perf_counter() - timer)
    return {"open_s": open_s, "rss_before_open_bytes": before, "rss_after_open_bytes": rss,
            "rss_after_searches_bytes": rss_after_search,
            "dense_p50_ms": 1000 * float(np.percentile(times, 50)),
            "dense_p95_ms": 1000 * float(np.percentile(times, 95)),
            "exact_p50_ms": 1000 * float(np.percentile(exact_times, 50)), "recall_at_10": recall,
            "retrieve_p50_ms": 1000 * float(np.percentile(retrieve_times, 50)),
            "retrieve_p95_ms": 1000 * float(np.percentile(retrieve_times, 95)),
            "dense_layer": spec.describe(), "queries": len(queries), "retrieve_queries": len(claims)}


def _plot(figures: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    sizes = [int(k) for k in figures]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(sizes, [figures[str(n)]["dense_p50_ms"] for n in sizes], "o-", label="ANN p50")
    axes[0].plot(sizes, [figures[str(n)]["exact_p50_ms"] for n in sizes], "s--", label="exact p50")
    axes[0].plot(sizes, [figures[str(n)]["retrieve_p50_ms"] for n in sizes], "^-", label="qa.retrieve p50")
    axes[0].set_ylabel("ms per query")
    axes[1].plot(sizes, [figures[str(n)]["rss_after_open_bytes"] / 2**20 for n in sizes], "o-", label="RSS after open")
    axes[1].plot(sizes, [figures[str(n)]["rss_limit_bytes"] / 2**20 for n in sizes], "k:", label="limit")
    axes[1].set_ylabel("MiB")
    axes[2].plot(sizes, [figures[str(n)]["recall_at_10"] for n in sizes], "o-", label="recall@10 vs exact")
    axes[2].axhline(0.95, color="k", linestyle=":")
    axes[2].set_ylim(0.8, 1.0)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("chunks")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(job: BenchRun) -> Report:
    """`qa bench scale` (qa.bench.registry)."""
    return bench_scale(data_folder("scifact", job.data), job.settings, job.report_dir, sizes=job.sizes or SIZES,
                       echo=job.echo)


if __name__ == "__main__":
    print(json.dumps(_measure(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))))
