"""BEIR SciFact: tune the fusion on the train queries, score each retriever on test beside the
published figures, and compare with a LangChain peer (`qa.bench.peer`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.bench.common import (
    CACHE,
    SAMPLE_SEED,
    Doc,
    QueryVectors,
    chunk_doc_codes,
    data_folder,
    doc_ranking,
    prepare_index,
    progress,
    pyplot,
    read_jsonl,
    read_qrels,
    sample_items,
    settings_json,
)
from qa.bench.peer import peer_comparison
from qa.bench.registry import BenchRun
from qa.bench.report import Report
from qa.config import Settings
from qa.embed import embedder_for
from qa.evaluation.metrics import doc_recall, mean, ndcg10
from qa.lexical import bm25_scores
from qa.retrieval import MAX_BM25_QUERY_CHARS, clean_query, dense_scores, rank, zscore

# Published test figures (nDCG@10, Recall@100), from shared/benchmarks/beir-scifact/SOURCE.md.
PUBLISHED_SCIFACT: tuple[tuple[str, float, float | None], ...] = (
    ("BM25, Elasticsearch (BEIR paper)", 0.665, None),
    ("BM25 flat, Lucene (pyserini)", 0.6789, 0.9253),
    ("BM25, bm25s (MTEB baseline)", 0.68736, 0.91267),
    ("BM25 + cross-encoder rerank (BEIR paper)", 0.688, None),
    ("all-MiniLM-L6-v2, dense, whole abstract (MTEB)", 0.64508, 0.925),
    ("e5-small-v2 (MTEB)", 0.68854, 0.92767),
    ("bge-small-en-v1.5 (MTEB)", 0.71273, 0.945),
    ("gte-small (MTEB)", 0.72701, None),
)
TUNE_DENSE_WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
TUNE_SENTENCE_WEIGHTS = (0.0, 0.15, 0.3, 0.45, 0.6)
TUNE_CANDIDATES = (50, 100, 200, 300)
# Chunks per retriever when measuring Recall@100: 100 documents need well over 100 chunks.
RECALL_POOL = 300


def bench_scifact(folder: Path, settings: Settings, report_dir: Path, *, sample: int | None = None,
                  peer: bool = True, echo: Callable[[str], None] | None = None) -> Report:
    """BEIR SciFact: tune fusion on train queries, score bm25/dense/hybrid on test, compare a peer.

    Args:
        folder: the data folder (corpus.jsonl.gz, queries.jsonl, qrels/).
        settings: the pipeline as configured; test figures use it unchanged.
        report_dir: where the plots go (the caller saves report.md and results.json).
        sample: score a seeded sample of this many test queries (tuning always uses all train).
        peer: also compare with LangChain's FAISS vector store.

    Returns:
        The report, with every table already printed.
    """
    started = time.perf_counter()
    out = Report("BEIR SciFact (claim -> abstract retrieval)", report_dir, echo)
    docs = [Doc(str(d["_id"]), str(d.get("title") or ""), str(d.get("text") or ""))
            for d in read_jsonl(folder / "corpus.jsonl.gz")]
    queries = {str(q["_id"]): str(q["text"]) for q in read_jsonl(folder / "queries.jsonl")}
    train = read_qrels(folder / "qrels" / "train.tsv")
    test_all = read_qrels(folder / "qrels" / "test.tsv")
    test = dict(sample_items(list(test_all.items()), sample))
    out.text(f"Data: {folder} ({len(docs)} abstracts; {len(train)} train and {len(test_all)} test queries).")
    out.text("Test queries: " + ("all 300." if len(test) == len(test_all) else
                                 f"a seeded sample of {len(test)} (seed {SAMPLE_SEED}) of {len(test_all)}."))
    index, keys, build = prepare_index("scifact", docs, settings, log=out.echo)
    out.text(f"Index: {CACHE / 'scifact' / 'index'} ({build.documents} documents, {build.chunks} chunks, "
             f"{build.sentences} sentences; {settings.chunk_tokens}-token chunks, "
             f"{settings.chunk_overlap_tokens} overlap; model {index.model}).")
    codes, names = chunk_doc_codes(index, keys)
    number = {name: i for i, name in enumerate(names)}
    embedder = QueryVectors(embedder_for(settings, index.model),
                            [queries[q] for q in (*train, *test)], settings)

    def items(qrels: dict[str, set[str]]) -> list[tuple[str, set[int]]]:
        return [(queries[q], {number[d] for d in rel if d in number}) for q, rel in qrels.items()]

    train_items, test_items = items(train), items(test)
    tuned = _tune(out, index, embedder, codes, train_items, settings)
    results = _scifact_test(out, index, embedder, codes, test_items, settings, tuned)
    if peer:
        peer_comparison(out, docs, index, keys, codes, number, [(queries[q], rel) for q, rel in test.items()],
              settings)
    _scifact_plot(report_dir, results)
    out.data.update({
        "data": str(folder), "settings": settings_json(settings), "test_queries": len(test),
        "sample": sample, "sample_seed": SAMPLE_SEED if sample else None,
        "index": {"documents": build.documents, "chunks": build.chunks, "sentences": build.sentences,
                  "model": index.model},
        "seconds": round(time.perf_counter() - started, 1),
    })
    out.text(f"\nSciFact benchmark finished in {time.perf_counter() - started:.0f} s.")
    return out


@dataclass(frozen=True)
class _Pool:
    """One query's candidates at the largest pool, with every feature the fusion reads."""

    rows: np.ndarray        # union of the dense and BM25 top chunk rows, ascending
    chunk: np.ndarray       # chunk cosine
    sentence: np.ndarray    # best sentence cosine inside the chunk
    lexical: np.ndarray     # BM25 score
    dense_rank: np.ndarray  # place in the dense order (large when outside it)
    bm25_rank: np.ndarray   # place in the BM25 order (large when outside it or scoring 0)


def _pool(index: Any, embedder: Any, text: str, size: int) -> _Pool:
    text = clean_query(text)
    qvec = embedder.embed([text])[0]
    cosine = np.asarray(index.chunk_vectors @ qvec, dtype=np.float64)
    lexical = bm25_scores(index.bm25, text[:MAX_BM25_QUERY_CHARS]).astype(np.float64)
    dense_order = np.argsort(-cosine, kind="stable")[:size]
    bm25_order = np.argsort(-lexical, kind="stable")[:size]
    bm25_order = bm25_order[lexical[bm25_order] > 0]
    rows = np.union1d(dense_order, bm25_order)
    place = np.full(len(cosine), 1 << 30)
    place[dense_order] = np.arange(len(dense_order))
    dense_rank = place[rows]
    place[:] = 1 << 30
    place[bm25_order] = np.arange(len(bm25_order))
    return _Pool(rows, dense_scores(index, rows, qvec, 0.0), dense_scores(index, rows, qvec, 1.0),
                 lexical[rows], dense_rank, place[rows])


def _tune(out: Report, index: Any, embedder: Any, codes: np.ndarray,
          train: list[tuple[str, set[int]]], settings: Settings) -> dict[str, Any]:
    """Grid-search the fusion on train queries only; returns the best setting and the grid."""
    out.section(f"Tuning on the {len(train)} train queries (never on test)")
    started = time.perf_counter()
    pools = [_pool(index, embedder, text, max(TUNE_CANDIDATES))
             for text, _ in progress(train, settings, "train candidates")]
    scores: dict[tuple[str, int, float, float], list[float]] = {}
    recalls: dict[tuple[str, int, float, float], list[float]] = {}

    def score(key: tuple[str, int, float, float], rows: np.ndarray, fused: np.ndarray, rel: set[int]) -> None:
        ranked = doc_ranking(rows[np.argsort(-fused, kind="stable")], codes, 100)
        scores.setdefault(key, []).append(ndcg10(ranked, rel))
        recalls.setdefault(key, []).append(doc_recall(ranked, rel, 100))

    for pool, (_, rel) in progress(zip(pools, train, strict=True), settings, "grid", len(pools)):
        for c in TUNE_CANDIDATES:
            in_bm25, in_dense = pool.bm25_rank < c, pool.dense_rank < c
            both = in_bm25 | in_dense
            score(("bm25", c, 0.0, 0.0), pool.rows[in_bm25], pool.lexical[in_bm25], rel)
            z_lex = zscore(pool.lexical[both])
            for s in TUNE_SENTENCE_WEIGHTS:
                dense = (1 - s) * pool.chunk + s * pool.sentence
                score(("dense", c, 1.0, s), pool.rows[in_dense], dense[in_dense], rel)
                z_dense = zscore(dense[both])
                for w in TUNE_DENSE_WEIGHTS:
                    score(("hybrid", c, w, s), pool.rows[both], w * z_dense + (1 - w) * z_lex, rel)
    means = {k: mean(v) for k, v in scores.items()}
    hybrid = sorted((k for k in means if k[0] == "hybrid"), key=lambda k: -means[k])
    best = hybrid[0]
    configured = ("hybrid", settings.candidates, settings.dense_weight, settings.sentence_weight)
    # The grid re-implements rank()'s fusion for speed; check it against rank() itself.
    real = [ndcg10(doc_ranking(rank(text, index, settings=settings.replace(mode="hybrid"),
                                    embedder=embedder).rows, codes, 10), rel)
            for text, rel in progress(train, settings, "train, rank() as configured")]
    rows = [[k[1], k[2], k[3], means[k], mean(recalls[k]), "best" if k == best else ""] for k in hybrid[:10]]
    if configured in means and configured not in hybrid[:10]:
        rows.append([*configured[1:], means[configured], mean(recalls[configured]), "as configured"])
    for mode in ("dense", "bm25"):
        k = max((k for k in means if k[0] == mode), key=lambda k: means[k])
        rows.append([k[1], f"{mode} only", k[3] if mode == "dense" else "", means[k], mean(recalls[k]),
                     f"best {mode}"])
    out.text(f"Grid: candidates {TUNE_CANDIDATES} x dense_weight {TUNE_DENSE_WEIGHTS} x sentence_weight "
             f"{TUNE_SENTENCE_WEIGHTS}; ranked by mean train nDCG@10 (top 10 shown, all in results.json).")
    out.table(["candidates", "dense_weight", "sentence_weight", "train nDCG@10", "train R@100", ""], rows)
    gain = means[best] - means.get(configured, float("nan"))
    out.text(f"As configured (candidates={settings.candidates}, dense_weight={settings.dense_weight}, "
             f"sentence_weight={settings.sentence_weight}): train nDCG@10 {means.get(configured, float('nan')):.4f} "
             f"by the grid, {mean(real):.4f} through rank() itself (the two must agree).")
    interval = ""
    if configured in scores:
        diff = np.asarray(scores[best]) - np.asarray(scores[configured])
        draws = np.random.default_rng(SAMPLE_SEED).integers(0, len(diff), (2000, len(diff)))
        lo, hi = np.percentile(diff[draws].mean(axis=1), [2.5, 97.5])
        interval = f", 95% bootstrap interval {lo:+.4f} to {hi:+.4f}"
    out.text(f"Best on train: candidates={best[1]}, dense_weight={best[2]}, sentence_weight={best[3]}: "
             f"{means[best]:.4f} ({gain:+.4f} over as configured{interval}). Tuning took "
             f"{time.perf_counter() - started:.0f} s.")
    out.threads()
    out.data["tuning"] = {
        "split": "train", "queries": len(train), "metric": "nDCG@10",
        "best": {"candidates": best[1], "dense_weight": best[2], "sentence_weight": best[3],
                 "ndcg@10": means[best]},
        "configured": {"ndcg@10_grid": means.get(configured), "ndcg@10_rank": mean(real)},
        "grid": [{"mode": k[0], "candidates": k[1], "dense_weight": k[2], "sentence_weight": k[3],
                  "ndcg@10": means[k], "recall@100": mean(recalls[k])} for k in sorted(means)],
    }
    _heatmap(out.folder, means, sorted({settings.candidates, best[1]}))
    return {"candidates": best[1], "dense_weight": best[2], "sentence_weight": best[3]}


def _scifact_test(out: Report, index: Any, embedder: Any, codes: np.ndarray,
                  test: list[tuple[str, set[int]]], settings: Settings,
                  tuned: dict[str, Any]) -> dict[str, Any]:
    """Score each retriever on the test queries through `rank()`, beside the published figures."""
    out.section(f"Test: {len(test)} queries")
    started = time.perf_counter()
    variants: list[tuple[str, Settings]] = [
        ("qa bm25", settings.replace(mode="bm25")),
        ("qa dense, chunk only (sentence_weight=0)", settings.replace(mode="dense", sentence_weight=0.0)),
        ("qa dense (chunk + best sentence)", settings.replace(mode="dense")),
        ("qa hybrid, as configured", settings.replace(mode="hybrid")),
    ]
    configured = (settings.candidates, settings.dense_weight, settings.sentence_weight)
    if (tuned["candidates"], tuned["dense_weight"], tuned["sentence_weight"]) != configured:
        variants.append(("qa hybrid, train-tuned", settings.replace(mode="hybrid", **tuned)))
    per_query: dict[str, list[float]] = {}
    rows: list[list[Any]] = []
    figures: dict[str, dict[str, float]] = {}
    for label, s in variants:
        wide = s.replace(candidates=max(s.candidates, RECALL_POOL))
        ndcg, rec = [], []
        for text, rel in progress(test, settings, label):
            ranking = rank(text, index, settings=s, embedder=embedder)
            ndcg.append(ndcg10(doc_ranking(ranking.rows, codes, 10), rel))
            rows_wide = ranking.rows if wide == s else rank(text, index, settings=wide, embedder=embedder).rows
            rec.append(doc_recall(doc_ranking(rows_wide, codes, 100), rel, 100))
        per_query[label] = ndcg
        figures[label] = {"ndcg@10": mean(ndcg), "recall@100": mean(rec)}
        how = f"candidates={s.candidates}, dense_weight={s.dense_weight}, sentence_weight={s.sentence_weight}"
        rows.append([label, mean(ndcg), mean(rec), how if s.mode != "bm25" else f"candidates={s.candidates}"])
    for name, ndcg_pub, rec_pub in PUBLISHED_SCIFACT:
        rows.append([f"published: {name}", ndcg_pub, rec_pub if rec_pub is not None else float("nan"), ""])
        figures[f"published: {name}"] = {"ndcg@10": ndcg_pub}
    out.table(["system", "nDCG@10", "R@100", "settings"], rows)
    out.text(f"R@100 ranks a wider pool (candidates={max(settings.candidates, RECALL_POOL)} chunks per "
             "retriever) so that 100 documents can be reached; nDCG@10 uses the settings shown.")
    out.text("Published dense figures embed each whole abstract as one passage; qa chunks it "
             f"({settings.chunk_tokens} tokens) and scores a document by its best chunk.")
    out.text(f"Scored in {time.perf_counter() - started:.0f} s.")
    out.threads()
    out.text("")
    verdict = _verdict(per_query, "qa hybrid, as configured", "qa bm25", "qa dense (chunk + best sentence)")
    for line in verdict:
        out.text(line)
    out.data["test"] = figures
    out.data["verdict"] = verdict
    return figures


def _verdict(per_query: dict[str, list[float]], hybrid: str, bm25: str, dense: str) -> list[str]:
    """Whether hybrid beats each single retriever, with per-query wins and a bootstrap interval."""
    rng = np.random.default_rng(SAMPLE_SEED)
    h = np.asarray(per_query[hybrid])
    lines = []
    beats_both = True
    for other in (bm25, dense):
        o = np.asarray(per_query[other])
        diff = h - o
        boot = rng.integers(0, len(diff), (2000, len(diff)))
        lo, hi = np.percentile(diff[boot].mean(axis=1), [2.5, 97.5])
        wins, losses = int((diff > 1e-12).sum()), int((diff < -1e-12).sum())
        beats_both &= bool(diff.mean() > 0)
        lines.append(f"Hybrid vs {other}: nDCG@10 {h.mean():.4f} vs {o.mean():.4f} ({diff.mean():+.4f}, "
                     f"95% bootstrap interval {lo:+.4f} to {hi:+.4f}); better on {wins} queries, worse on "
                     f"{losses}, tied on {len(diff) - wins - losses}.")
    if beats_both:
        lines.append("Hybrid beats both single retrievers on test.")
    else:
        lines.append(
            "Hybrid does NOT beat both single retrievers on test. Fusion adds the other retriever's "
            "evidence to each ranking; on the queries where it loses, that evidence favoured an "
            "irrelevant abstract and pushed the relevant one down. The weights were fixed on train "
            "and were not re-fit to test.")
    return lines


def _heatmap(folder: Path, means: dict[tuple[str, int, float, float], float], pools: list[int]) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(pools), figsize=(5.5 * len(pools), 4.5), squeeze=False)
    for ax, pool in zip(axes[0], pools, strict=True):
        grid = np.array([[means.get(("hybrid", pool, w, s), float("nan")) for s in TUNE_SENTENCE_WEIGHTS]
                         for w in TUNE_DENSE_WEIGHTS])
        image = ax.imshow(grid, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(TUNE_SENTENCE_WEIGHTS)), [str(s) for s in TUNE_SENTENCE_WEIGHTS])
        ax.set_yticks(range(len(TUNE_DENSE_WEIGHTS)), [str(w) for w in TUNE_DENSE_WEIGHTS])
        ax.set_xlabel("sentence_weight")
        ax.set_ylabel("dense_weight")
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                ax.text(j, i, f"{grid[i, j]:.3f}", ha="center", va="center", color="w", fontsize=8)
        ax.set_title(f"train nDCG@10, hybrid, candidates={pool}")
        fig.colorbar(image, ax=ax)
    fig.suptitle("BEIR SciFact, fusion grid on the train queries")
    fig.tight_layout()
    fig.savefig(folder / "scifact_tuning.png", dpi=120)
    plt.close(fig)


def _scifact_plot(folder: Path, figures: dict[str, dict[str, float]]) -> None:
    plt = pyplot()
    names = list(figures)
    values = [figures[n]["ndcg@10"] for n in names]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1.2))
    colors = ["tab:blue" if n.startswith("qa") else "tab:gray" for n in names]
    ax.barh(range(len(names)), values, color=colors)
    ax.set_yticks(range(len(names)), [n.removeprefix("published: ") for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0.5, max(values) + 0.05)
    for i, v in enumerate(values):
        ax.text(v + 0.002, i, f"{v:.3f}", va="center", fontsize=8)
    ax.set_xlabel("nDCG@10 on the SciFact test queries (blue: qa, grey: published)")
    fig.tight_layout()
    fig.savefig(folder / "scifact_ndcg.png", dpi=120)
    plt.close(fig)


def run(job: BenchRun) -> Report:
    """`qa bench scifact` (qa.bench.registry)."""
    return bench_scifact(data_folder("scifact", job.data), job.settings, job.report_dir, sample=job.sample,
                         echo=job.echo)
