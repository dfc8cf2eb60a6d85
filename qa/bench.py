"""Public benchmarks over the real pipeline: BEIR SciFact, SQuAD v1.1 and v2.0, and a peer.

Each benchmark writes its documents as a corpus folder (title on the first line, a blank line,
then the text: the layout of `seeds/`) under `.qa_cache/bench/<name>/corpus`, indexes it with
`qa.index.build_index` (incremental, so reruns only load), and ranks with `qa.retrieve.rank`, so
chunking, the sentence table and the BM25+dense fusion are all measured as shipped. Retrieval
ranks chunks; a document's score is its best chunk's (documents in order of first appearance).
"""

from __future__ import annotations

import gzip
import json
import random
import re
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from qa.config import MODES, Settings
from qa.errors import BenchmarkDataError
from qa.evaluate import (
    contains_answer,
    exact_match,
    ndcg_at_k,
    normalize_answer,
    short_answer,
    strip_markers,
    token_f1,
)
from qa.types import IndexReport

DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
CACHE = Path(".qa_cache") / "bench"
SAMPLE_SEED = 13
_FOLDERS = {"scifact": "beir-scifact", "squad": "squad-v1.1-dev", "squad2": "squad-v2.0-dev"}
_SAFE_NAME = re.compile(r"[^\w.,()-]+")


def run_bench(
    name: str,
    *,
    data: Path | None = None,
    report_dir: Path | None = None,
    sample: int | None = None,
    settings: Settings,
) -> int:
    """Run one benchmark, print its table and write its report.

    Args:
        name: "scifact", "squad" or "latency".
        data: the benchmark's data folder (default: `../shared/benchmarks/<folder>`); for
            "squad", the SQuAD v1.1 folder, with v2.0 looked for beside it.
        report_dir: where report.md, results.json and plots go (default: eval/reports/<name>).
        sample: score a fixed, seeded sample of this many questions instead of all of them.
        settings: the pipeline's settings (fusion weights, model, threads...).

    Returns:
        The process exit status (0).

    Raises:
        BenchmarkDataError: the data folder is missing or incomplete.
    """
    report_dir = report_dir or Path("eval") / "reports" / name
    if name == "latency":
        from qa.speed import run_latency

        return int(run_latency(report_dir=report_dir, settings=settings) or 0)
    if name not in ("scifact", "squad"):
        raise BenchmarkDataError(f"Unknown benchmark {name!r}. Choose from scifact, squad, latency.")
    report_dir.mkdir(parents=True, exist_ok=True)
    if name == "scifact":
        report = bench_scifact(data_folder("scifact", data), settings, report_dir, sample=sample)
    else:
        folder = data_folder("squad", data)
        # With --data pointing at v1.1, v2.0 is looked for beside it.
        v2 = folder.parent / _FOLDERS["squad2"] if data is not None else None
        report = bench_squad(folder, data_folder("squad2", v2), settings, report_dir, sample=sample)
    report.save()
    print(f"\nReport written to {report_dir}/ (report.md, results.json, plots).")
    return 0


# ---------------------------------------------------------------------------------------------
# Data


def data_folder(name: str, data: Path | None = None) -> Path:
    """The folder of benchmark `name` ("scifact", "squad", "squad2"), checked to exist.

    Raises:
        BenchmarkDataError: the folder or one of its files is missing.
    """
    folder = Path(data) if data is not None else DATA_ROOT / _FOLDERS[name]
    needed = {
        "scifact": ("corpus.jsonl.gz", "queries.jsonl", "qrels/test.tsv", "qrels/train.tsv"),
        "squad": ("paragraphs.jsonl", "questions.jsonl"),
        "squad2": ("paragraphs.jsonl", "questions.jsonl"),
    }[name]
    missing = [f for f in needed if not (folder / f).is_file()]
    if missing:
        what = "folder not found" if not folder.is_dir() else f"missing {', '.join(missing)}"
        source = {
            "scifact": "BEIR's scifact.zip (https://github.com/beir-cellar/beir; unzip it and "
                       "gzip corpus.jsonl)",
            "squad": "SQuAD v1.1 dev (https://rajpurkar.github.io/SQuAD-explorer/), converted to "
                     "paragraphs.jsonl and questions.jsonl",
            "squad2": "SQuAD v2.0 dev (https://rajpurkar.github.io/SQuAD-explorer/), converted to "
                      "paragraphs.jsonl and questions.jsonl",
        }[name]
        raise BenchmarkDataError(
            f"Benchmark data for {name} not found at {folder} ({what}). Get {source}, "
            f"laid out as described in shared/benchmarks/{_FOLDERS[name]}/SOURCE.md, and pass "
            f"its folder with --data DIR."
        )
    return folder


class Doc(NamedTuple):
    """A benchmark document: its id in the benchmark, title and text."""

    key: str
    title: str
    text: str


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def read_qrels(path: Path) -> dict[str, set[str]]:
    """BEIR qrels (`query-id corpus-id score`, with a header): relevant doc ids per query."""
    qrels: dict[str, set[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        query_id, doc_id, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(query_id, set()).add(doc_id)
    return qrels


# ---------------------------------------------------------------------------------------------
# Corpus folder and index


def file_name(key: str) -> str:
    """A benchmark document id as a safe, readable file name."""
    return _SAFE_NAME.sub("_", key).strip("_") + ".txt"


def write_corpus(docs: Sequence[Doc], folder: Path) -> dict[str, str]:
    """Write one file per document (title, blank line, text); returns doc_id -> benchmark id.

    Files already holding the same text are left alone and files of no document are removed,
    so the folder always mirrors `docs` and an index over it updates incrementally.
    """
    folder.mkdir(parents=True, exist_ok=True)
    keys: dict[str, str] = {}
    for doc in docs:
        name = file_name(doc.key)
        if name in keys:
            raise BenchmarkDataError(f"Two documents map to the file name {name}: {keys[name]!r}, {doc.key!r}.")
        keys[name] = doc.key
        content = f"{doc.title.strip()}\n\n{doc.text.strip()}\n" if doc.title.strip() else f"{doc.text.strip()}\n"
        path = folder / name
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
    for path in folder.glob("*.txt"):
        if path.name not in keys:
            path.unlink()
    return keys


def prepare_index(name: str, docs: Sequence[Doc], settings: Settings,
                  log: Callable[[str], None] = print) -> tuple[Any, dict[str, str], IndexReport]:
    """Write the corpus of benchmark `name` and build (or update) its qa index.

    Returns:
        The loaded `Index`, the map from index doc_id to benchmark id, and the build report.
    """
    from qa.index import build_index, load_index

    base = CACHE / name
    keys = write_corpus(docs, base / "corpus")
    report = build_index(base / "corpus", base / "index", settings=settings, log=log)
    if report.chunks_embedded and not report.unchanged:
        # A build from scratch: keep its cost, which later (cached) runs report.
        stats = {"seconds": report.seconds, "documents": report.documents, "chunks": report.chunks,
                 "sentences": report.sentences, "when": time.strftime("%Y-%m-%d %H:%M")}
        (base / "build.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
    return load_index(base / "index"), keys, report


def chunk_doc_codes(index: Any, keys: dict[str, str]) -> tuple[np.ndarray, list[str]]:
    """For each chunk row, the number of its benchmark document; and the ids by number."""
    names = sorted({keys[c.doc_id] for c in index.chunks})
    number = {key: i for i, key in enumerate(names)}
    return np.array([number[keys[c.doc_id]] for c in index.chunks], dtype=np.int64), names


def doc_ranking(rows: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """The first `k` documents of a chunk ranking, each at its best chunk's place."""
    docs = codes[rows]
    _, first = np.unique(docs, return_index=True)
    return docs[np.sort(first)][:k]


class QueryVectors:
    """An `Embedder` that serves the benchmark's queries from one batched pass of the model.

    `rank()` embeds its query each call; embedding thousands of queries one by one would time
    the model, not retrieval. Unknown texts fall through to the model itself.
    """

    def __init__(self, embedder: Any, texts: Iterable[str], settings: Settings) -> None:
        from qa.retrieve import clean_query

        self.name = embedder.name
        self.dimension = embedder.dimension
        self._embedder = embedder
        unique = sorted({clean_query(t) for t in texts})
        vectors = embedder.embed(unique, batch_size=settings.embed_batch_size,
                                 progress=settings.show_progress)
        self._vectors = dict(zip(unique, vectors, strict=True))

    def embed(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if all(t in self._vectors for t in texts):
            return np.stack([self._vectors[t] for t in texts]) if texts else np.zeros((0, self.dimension))
        return np.asarray(self._embedder.embed(texts, batch_size=batch_size, progress=progress))


# ---------------------------------------------------------------------------------------------
# Metrics


def ndcg10(ranked: Iterable[Any], relevant: set[Any]) -> float:
    """nDCG@10 of a document ranking with binary relevance (as BEIR / pytrec_eval compute it)."""
    return ndcg_at_k([d in relevant for d in list(ranked)[:10]], len(relevant), 10)


def recall(ranked: Iterable[Any], relevant: set[Any], k: int) -> float:
    """The share of the relevant documents found in the first `k` (BEIR's Recall@k)."""
    return len(relevant & set(list(ranked)[:k])) / len(relevant) if relevant else 0.0


def squad_scores(predictions: dict[str, str], questions: Sequence[dict[str, Any]],
                 version: str = "1.1") -> dict[str, float]:
    """EM and F1 in percent, as the official `evaluate-v1.1.py` / `evaluate-v2.0.py` compute them.

    A question without a prediction scores 0. For "2.0", a question with no answers
    (unanswerable) has the gold answer "": only an empty prediction is right, and the
    HasAns/NoAns breakdowns are added.

    Raises:
        ValueError: `version` is not "1.1" or "2.0".
    """
    if version not in ("1.1", "2.0"):
        raise ValueError(f"Invalid SQuAD version: {version!r}. Choose from '1.1', '2.0'.")
    em: dict[str, float] = {}
    f1: dict[str, float] = {}
    for q in questions:
        pred = predictions.get(q["id"])
        golds = [a for a in q["answers"] if normalize_answer(a)] if version == "2.0" else q["answers"]
        if pred is None:
            em[q["id"]] = f1[q["id"]] = 0.0
        elif version == "2.0" and (not golds or not normalize_answer(pred)):
            # v2.0: "" (abstain) is right exactly when the gold is "" too.
            em[q["id"]] = f1[q["id"]] = float(not golds and not normalize_answer(pred))
        else:
            em[q["id"]] = exact_match(pred, golds)
            f1[q["id"]] = token_f1(pred, golds)
    scores = {"exact": 100 * _mean(em.values()), "f1": 100 * _mean(f1.values()), "total": len(em)}
    if version == "2.0":
        for label, unanswerable in (("HasAns", False), ("NoAns", True)):
            ids = [q["id"] for q in questions if (not q["answers"]) == unanswerable]
            scores[f"{label}_exact"] = 100 * _mean(em[i] for i in ids)
            scores[f"{label}_f1"] = 100 * _mean(f1[i] for i in ids)
            scores[f"{label}_total"] = len(ids)
    return scores


def roc_auc(scores: Sequence[float] | np.ndarray, positive: Sequence[bool] | np.ndarray) -> float:
    """Area under the ROC curve: the chance a random positive outscores a random negative."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not n_pos or not n_neg:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    # Average ranks over ties (Mann-Whitney U).
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(scores: Sequence[float] | np.ndarray, positive: Sequence[bool] | np.ndarray) -> float:
    """Area under the precision-recall curve (average precision, ties broken pessimistically)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positive, dtype=bool)
    if not y.any():
        return float("nan")
    order = np.lexsort((y, -s))  # among equal scores, negatives first
    hits = np.cumsum(y[order])
    precision = hits / np.arange(1, len(s) + 1)
    return float(precision[y[order]].sum() / y.sum())


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return float(sum(values) / len(values)) if values else 0.0


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if len(values) else float("nan")


# ---------------------------------------------------------------------------------------------
# Report: every table is printed and kept for report.md


class Report:
    """Tables and lines printed as they are made, and saved as report.md + results.json."""

    def __init__(self, title: str, folder: Path) -> None:
        self.folder = folder
        self.lines: list[str] = [f"# {title}", ""]
        self.data: dict[str, Any] = {"benchmark": title}
        print(f"== {title}")

    def text(self, line: str = "") -> None:
        print(line)
        self.lines.append(line)

    def section(self, heading: str) -> None:
        print(f"\n-- {heading}")
        self.lines += ["", f"## {heading}", ""]

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        cells = [[_cell(v) for v in row] for row in rows]
        widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
        lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
                 "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
        print("\n".join(lines))
        self.lines += [*lines, ""]

    def threads(self) -> dict[str, str]:
        """Print the thread settings that shape the timings above them."""
        from qa.runtime import thread_report

        threads = thread_report()
        self.text("Threads: " + ", ".join(f"{k}={v}" for k, v in threads.items()))
        return threads

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "report.md").write_text("\n".join(self.lines).rstrip() + "\n", encoding="utf-8")
        (self.folder / "results.json").write_text(
            json.dumps(self.data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.3f}"
    return "" if value is None else str(value)


def _settings_json(settings: Settings) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(settings).items()
            if not k.startswith("auth")}


def _progress(items: Iterable[Any], settings: Settings, desc: str, total: int | None = None) -> Iterable[Any]:
    from tqdm import tqdm

    return tqdm(items, desc=desc, total=total, disable=not settings.show_progress, leave=False)


def _sample(items: list[Any], sample: int | None) -> list[Any]:
    """A fixed, seeded sample of `items` in their original order (all of them without `sample`)."""
    if sample is None or sample >= len(items):
        return items
    if sample < 1:
        raise BenchmarkDataError(f"Invalid --sample value: {sample}. It must be 1 or more.")
    keep = set(random.Random(SAMPLE_SEED).sample(range(len(items)), sample))
    return [item for i, item in enumerate(items) if i in keep]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ---------------------------------------------------------------------------------------------
# BEIR SciFact

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
PEER_DOCS = 500   # documents both systems index from scratch for the build-time comparison
PEER_K = 30       # chunks asked of each system per query in the peer comparison


def bench_scifact(folder: Path, settings: Settings, report_dir: Path, *, sample: int | None = None,
                  peer: bool = True) -> Report:
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
    from qa.embed import load_embedder

    started = time.perf_counter()
    out = Report("BEIR SciFact (claim -> abstract retrieval)", report_dir)
    docs = [Doc(str(d["_id"]), str(d.get("title") or ""), str(d.get("text") or ""))
            for d in _read_jsonl(folder / "corpus.jsonl.gz")]
    queries = {str(q["_id"]): str(q["text"]) for q in _read_jsonl(folder / "queries.jsonl")}
    train = read_qrels(folder / "qrels" / "train.tsv")
    test_all = read_qrels(folder / "qrels" / "test.tsv")
    test = dict(_sample(list(test_all.items()), sample))
    out.text(f"Data: {folder} ({len(docs)} abstracts; {len(train)} train and {len(test_all)} test queries).")
    out.text("Test queries: " + ("all 300." if len(test) == len(test_all) else
                                 f"a seeded sample of {len(test)} (seed {SAMPLE_SEED}) of {len(test_all)}."))
    index, keys, build = prepare_index("scifact", docs, settings)
    out.text(f"Index: {CACHE / 'scifact' / 'index'} ({build.documents} documents, {build.chunks} chunks, "
             f"{build.sentences} sentences; {settings.chunk_tokens}-token chunks, "
             f"{settings.chunk_overlap_tokens} overlap; model {index.model}).")
    codes, names = chunk_doc_codes(index, keys)
    number = {name: i for i, name in enumerate(names)}
    embedder = QueryVectors(load_embedder(index.model, settings.threads),
                            [queries[q] for q in (*train, *test)], settings)

    def items(qrels: dict[str, set[str]]) -> list[tuple[str, set[int]]]:
        return [(queries[q], {number[d] for d in rel if d in number}) for q, rel in qrels.items()]

    train_items, test_items = items(train), items(test)
    tuned = _tune(out, index, embedder, codes, train_items, settings)
    results = _scifact_test(out, index, embedder, codes, test_items, settings, tuned)
    if peer:
        _peer(out, docs, index, keys, codes, number, [(queries[q], rel) for q, rel in test.items()],
              settings)
    _scifact_plot(report_dir, results)
    out.data.update({
        "data": str(folder), "settings": _settings_json(settings), "test_queries": len(test),
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
    from qa.lexical import bm25_scores
    from qa.retrieve import MAX_BM25_QUERY_CHARS, clean_query, dense_scores

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


def _z(values: np.ndarray) -> np.ndarray:
    # The same standardization as qa.retrieve's fusion.
    std = values.std()
    return (values - values.mean()) / std if std > 1e-9 else np.zeros_like(values)


def _tune(out: Report, index: Any, embedder: Any, codes: np.ndarray,
          train: list[tuple[str, set[int]]], settings: Settings) -> dict[str, Any]:
    """Grid-search the fusion on train queries only; returns the best setting and the grid."""
    from qa.retrieve import rank

    out.section(f"Tuning on the {len(train)} train queries (never on test)")
    started = time.perf_counter()
    pools = [_pool(index, embedder, text, max(TUNE_CANDIDATES))
             for text, _ in _progress(train, settings, "train candidates")]
    scores: dict[tuple[str, int, float, float], list[float]] = {}
    recalls: dict[tuple[str, int, float, float], list[float]] = {}

    def score(key: tuple[str, int, float, float], rows: np.ndarray, fused: np.ndarray, rel: set[int]) -> None:
        ranked = doc_ranking(rows[np.argsort(-fused, kind="stable")], codes, 100)
        scores.setdefault(key, []).append(ndcg10(ranked, rel))
        recalls.setdefault(key, []).append(recall(ranked, rel, 100))

    for pool, (_, rel) in _progress(zip(pools, train, strict=True), settings, "grid", len(pools)):
        for c in TUNE_CANDIDATES:
            in_bm25, in_dense = pool.bm25_rank < c, pool.dense_rank < c
            both = in_bm25 | in_dense
            score(("bm25", c, 0.0, 0.0), pool.rows[in_bm25], pool.lexical[in_bm25], rel)
            z_lex = _z(pool.lexical[both])
            for s in TUNE_SENTENCE_WEIGHTS:
                dense = (1 - s) * pool.chunk + s * pool.sentence
                score(("dense", c, 1.0, s), pool.rows[in_dense], dense[in_dense], rel)
                z_dense = _z(dense[both])
                for w in TUNE_DENSE_WEIGHTS:
                    score(("hybrid", c, w, s), pool.rows[both], w * z_dense + (1 - w) * z_lex, rel)
    means = {k: _mean(v) for k, v in scores.items()}
    hybrid = sorted((k for k in means if k[0] == "hybrid"), key=lambda k: -means[k])
    best = hybrid[0]
    configured = ("hybrid", settings.candidates, settings.dense_weight, settings.sentence_weight)
    # The grid re-implements rank()'s fusion for speed; check it against rank() itself.
    real = [ndcg10(doc_ranking(rank(text, index, settings=settings.replace(mode="hybrid"),
                                    embedder=embedder).rows, codes, 10), rel)
            for text, rel in _progress(train, settings, "train, rank() as configured")]
    rows = [[k[1], k[2], k[3], means[k], _mean(recalls[k]), "best" if k == best else ""] for k in hybrid[:10]]
    if configured in means and configured not in hybrid[:10]:
        rows.append([*configured[1:], means[configured], _mean(recalls[configured]), "as configured"])
    for mode in ("dense", "bm25"):
        k = max((k for k in means if k[0] == mode), key=lambda k: means[k])
        rows.append([k[1], f"{mode} only", k[3] if mode == "dense" else "", means[k], _mean(recalls[k]),
                     f"best {mode}"])
    out.text(f"Grid: candidates {TUNE_CANDIDATES} x dense_weight {TUNE_DENSE_WEIGHTS} x sentence_weight "
             f"{TUNE_SENTENCE_WEIGHTS}; ranked by mean train nDCG@10 (top 10 shown, all in results.json).")
    out.table(["candidates", "dense_weight", "sentence_weight", "train nDCG@10", "train R@100", ""], rows)
    gain = means[best] - means.get(configured, float("nan"))
    out.text(f"As configured (candidates={settings.candidates}, dense_weight={settings.dense_weight}, "
             f"sentence_weight={settings.sentence_weight}): train nDCG@10 {means.get(configured, float('nan')):.4f} "
             f"by the grid, {_mean(real):.4f} through rank() itself (the two must agree).")
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
        "configured": {"ndcg@10_grid": means.get(configured), "ndcg@10_rank": _mean(real)},
        "grid": [{"mode": k[0], "candidates": k[1], "dense_weight": k[2], "sentence_weight": k[3],
                  "ndcg@10": means[k], "recall@100": _mean(recalls[k])} for k in sorted(means)],
    }
    _heatmap(out.folder, means, sorted({settings.candidates, best[1]}))
    return {"candidates": best[1], "dense_weight": best[2], "sentence_weight": best[3]}


def _scifact_test(out: Report, index: Any, embedder: Any, codes: np.ndarray,
                  test: list[tuple[str, set[int]]], settings: Settings,
                  tuned: dict[str, Any]) -> dict[str, Any]:
    """Score each retriever on the test queries through `rank()`, beside the published figures."""
    from qa.retrieve import rank

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
        for text, rel in _progress(test, settings, label):
            ranking = rank(text, index, settings=s, embedder=embedder)
            ndcg.append(ndcg10(doc_ranking(ranking.rows, codes, 10), rel))
            rows_wide = ranking.rows if wide == s else rank(text, index, settings=wide, embedder=embedder).rows
            rec.append(recall(doc_ranking(rows_wide, codes, 100), rel, 100))
        per_query[label] = ndcg
        figures[label] = {"ndcg@10": _mean(ndcg), "recall@100": _mean(rec)}
        how = f"candidates={s.candidates}, dense_weight={s.dense_weight}, sentence_weight={s.sentence_weight}"
        rows.append([label, _mean(ndcg), _mean(rec), how if s.mode != "bm25" else f"candidates={s.candidates}"])
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
    plt = _plt()
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
    plt = _plt()
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

    def embed(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        started = time.perf_counter()
        try:
            return np.asarray(self._embedder.embed(texts, batch_size=batch_size, progress=progress))
        finally:
            self.calls.append((len(texts), time.perf_counter() - started))


def _peer(out: Report, docs: Sequence[Doc], index: Any, keys: dict[str, str], codes: np.ndarray,
          number: dict[str, int], test: list[tuple[str, set[str]]], settings: Settings) -> None:
    """LangChain's FAISS store over the same chunk texts and model, against qa's retrieve()."""
    from qa.embed import load_embedder
    from qa.index import _chunk_model_text, build_index, load_index
    from qa.retrieve import retrieve

    out.section("Peer comparison: LangChain FAISS vector store (same model, same chunk texts)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # langchain-community announces its own sunset on import
            from langchain_community.vectorstores import FAISS
            from langchain_core.embeddings import Embeddings
    except ImportError:
        out.text("Skipped: LangChain is not installed (pip install langchain-community).")
        return
    model = load_embedder(index.model, settings.threads)

    class QAEmbeddings(Embeddings):
        """LangChain's embeddings interface over qa's offline encoder (nothing is downloaded)."""

        def __init__(self) -> None:
            self.timed = _TimedEmbedder(model)

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return self.timed.embed(texts, batch_size=settings.embed_batch_size,
                                    progress=settings.show_progress).tolist()

        def embed_query(self, text: str) -> list[float]:
            return self.timed.embed([text])[0].tolist()

    # Build time: both index the same documents from scratch (a subset: embedding all of SciFact
    # takes many minutes per system on a laptop CPU, and it scales linearly).
    subset = list(docs)[:PEER_DOCS]
    write_corpus(subset, CACHE / "scifact-peer" / "corpus")
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        timed = _TimedEmbedder(model)
        built = build_index(CACHE / "scifact-peer" / "corpus", Path(tmp) / "index", settings=settings,
                            embedder=timed, rebuild=True, log=lambda _line: None)
        small = load_index(Path(tmp) / "index")
        texts = [_chunk_model_text(c, small.documents[c.doc_id].title) for c in small.chunks]
        lc_embeddings = QAEmbeddings()
        started = time.perf_counter()
        FAISS.from_texts(texts, lc_embeddings, metadatas=[{"doc_id": c.doc_id} for c in small.chunks])
        lc_seconds = time.perf_counter() - started
    # build_index embeds all chunks in one call, then all sentences in another.
    qa_chunk_s, qa_sentence_s = (timed.calls[0][1], timed.calls[1][1]) if len(timed.calls) == 2 else (
        timed.seconds, float("nan"))
    out.text(f"Build from scratch, the first {len(subset)} abstracts ({built.chunks} chunks):")
    out.table(["system", "build s", "chunk embedding s", "sentence embedding s", "what it builds"], [
        ["qa build_index", built.seconds, qa_chunk_s, qa_sentence_s,
         f"chunk + {built.sentences} sentence vectors, BM25, FAISS, fsynced atomic swap"],
        ["LangChain FAISS.from_texts", lc_seconds, lc_embeddings.timed.seconds, None,
         "chunk vectors, FAISS (in memory)"],
    ])
    out.threads()
    recorded = CACHE / "scifact" / "build.json"
    if recorded.exists():
        full = json.loads(recorded.read_text(encoding="utf-8"))
        out.text(f"The full qa SciFact index ({full['chunks']} chunks, {full['sentences']} sentences) took "
                 f"{full['seconds']:.0f} s from scratch when it was built ({full['when']}).")
    out.data["peer_build"] = {"documents": len(subset), "chunks": built.chunks,
                              "sentences": built.sentences, "qa_seconds": built.seconds,
                              "qa_chunk_embedding_seconds": qa_chunk_s,
                              "qa_sentence_embedding_seconds": qa_sentence_s, "langchain_seconds": lc_seconds,
                              "langchain_embedding_seconds": lc_embeddings.timed.seconds}

    # Quality and latency on the whole corpus. The LangChain store gets the very vectors the
    # model gives for these chunk texts (from_embeddings), which from_texts would compute again.
    titles = {d: info.title for d, info in index.documents.items()}
    store = FAISS.from_embeddings(
        zip([_chunk_model_text(c, titles[c.doc_id]) for c in index.chunks],
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
    for text, rel_ids in _progress(test, settings, "peer queries"):
        rel = {number[d] for d in rel_ids if d in number}
        for name, run in systems.items():  # interleaved, so load changes hit all systems alike
            started = time.perf_counter()
            ranked = run(text)
            latency[name].append(1000 * (time.perf_counter() - started))
            quality[name].append(ndcg10(ranked, rel))
    out.text(f"\nQueries: the {len(test)} test claims, each system asked for its top {PEER_K} chunks "
             "(documents ranked by their best chunk); the query is embedded on every call.")
    out.table(["system", "p50 ms", "p95 ms", "nDCG@10"], [
        [name, _percentile(latency[name], 50), _percentile(latency[name], 95), _mean(quality[name])]
        for name in systems])
    threads = out.threads()
    out.data["peer"] = {name: {"p50_ms": _percentile(latency[name], 50),
                               "p95_ms": _percentile(latency[name], 95),
                               "ndcg@10": _mean(quality[name])} for name in systems}
    out.data["peer"]["threads"] = threads


# ---------------------------------------------------------------------------------------------
# SQuAD v1.1 (open corpus) and v2.0 (abstention)

SQUAD_RECALL_AT = (1, 5, 20)
SQUAD_ANSWER_SENTENCES = 2


def bench_squad(folder: Path, folder_v2: Path, settings: Settings, report_dir: Path, *,
                sample: int | None = None) -> Report:
    """SQuAD v1.1 dev as one open corpus: gold-paragraph recall by retriever, cited-answer accuracy
    and short-answer EM/F1; then SQuAD v2.0 dev: answer-or-abstain, with a threshold curve.

    Args:
        folder: SQuAD v1.1 dev (paragraphs.jsonl, questions.jsonl).
        folder_v2: SQuAD v2.0 dev, same layout, with unanswerable questions.
        settings: the pipeline as configured (answers are capped at two sentences).
        report_dir: where the plots go.
        sample: score a seeded sample of this many questions of each version.

    Returns:
        The report, with every table already printed.
    """
    started = time.perf_counter()
    out = Report("SQuAD dev (open corpus of all dev paragraphs)", report_dir)
    paragraphs = _read_jsonl(folder / "paragraphs.jsonl")
    questions = _read_jsonl(folder / "questions.jsonl")
    chosen = _sample(questions, sample)
    out.text(f"Data: {folder} ({len(paragraphs)} paragraphs, {len(questions)} questions).")
    out.text("Questions scored: " + (f"all {len(chosen)}." if len(chosen) == len(questions) else
             f"a seeded sample of {len(chosen)} (seed {SAMPLE_SEED}) of {len(questions)}."))
    index, keys, build = prepare_index("squad-v1.1", _squad_docs(paragraphs), settings)
    out.text(f"Index: {CACHE / 'squad-v1.1' / 'index'} ({build.documents} paragraphs as documents, "
             f"titled by article; {build.chunks} chunks, {build.sentences} sentences).")
    retrieval = _squad_retrieval(out, index, keys, chosen, settings)
    answers = _squad_answers(out, index, keys, chosen, settings)
    out.data.update({"data": str(folder), "data_v2": str(folder_v2), "settings": _settings_json(settings),
                     "questions": len(chosen), "sample": sample,
                     "sample_seed": SAMPLE_SEED if sample else None,
                     "retrieval": retrieval, "answers": answers})
    paragraphs_v2 = _read_jsonl(folder_v2 / "paragraphs.jsonl")
    questions_v2 = _read_jsonl(folder_v2 / "questions.jsonl")
    chosen_v2 = _sample(questions_v2, sample)
    index_v2, keys_v2, _ = prepare_index("squad-v2.0", _squad_docs(paragraphs_v2), settings)
    out.data["abstention"] = _squad_abstention(out, index_v2, keys_v2, chosen_v2, len(questions_v2),
                                               settings)
    out.data["seconds"] = round(time.perf_counter() - started, 1)
    out.text(f"\nSQuAD benchmark finished in {time.perf_counter() - started:.0f} s.")
    return out


def _squad_docs(paragraphs: Sequence[dict[str, Any]]) -> list[Doc]:
    # The article title is the document's title, as a corpus of Wikipedia pages would have it.
    return [Doc(str(p["pid"]), str(p["title"]).replace("_", " "), str(p["context"])) for p in paragraphs]


def _squad_retrieval(out: Report, index: Any, keys: dict[str, str], questions: Sequence[dict[str, Any]],
                     settings: Settings) -> dict[str, Any]:
    """Is the question's own paragraph among the first k documents, for each retriever?"""
    from qa.embed import load_embedder
    from qa.retrieve import rank

    out.section("Retrieval: is the gold paragraph in the top k?")
    codes, names = chunk_doc_codes(index, keys)
    number = {name: i for i, name in enumerate(names)}
    embedder = QueryVectors(load_embedder(index.model, settings.threads),
                            [q["question"] for q in questions], settings)
    depth = max(SQUAD_RECALL_AT)
    results: dict[str, Any] = {}
    curves: dict[str, list[float]] = {}
    rows = []
    for mode in MODES:
        s = settings.replace(mode=mode)
        found_at: list[int] = []
        started = time.perf_counter()
        for q in _progress(questions, settings, f"retrieval, {mode}"):
            ranked = list(doc_ranking(rank(q["question"], index, settings=s, embedder=embedder).rows,
                                      codes, depth))
            gold = number[q["pid"]]
            found_at.append(ranked.index(gold) + 1 if gold in ranked else depth + 1)
        ms = 1000 * (time.perf_counter() - started) / max(1, len(questions))
        hits = np.asarray(found_at)
        curves[mode] = [float((hits <= k).mean()) for k in range(1, depth + 1)]
        results[mode] = {f"recall@{k}": float((hits <= k).mean()) for k in SQUAD_RECALL_AT}
        results[mode]["ms_per_query"] = ms
        rows.append([mode, *(results[mode][f"recall@{k}"] for k in SQUAD_RECALL_AT), ms])
    rows.append(["published sanity check: bm25s, contexts only (SOURCE.md)", 0.768, 0.925, 0.971, None])
    out.table(["retriever", *(f"R@{k}" for k in SQUAD_RECALL_AT), "ms/query (ranking only)"], rows)
    out.text(f"Settings: candidates={settings.candidates}, dense_weight={settings.dense_weight}, "
             f"sentence_weight={settings.sentence_weight}. Questions embedded in one batch first, so "
             "ms/query is ranking alone.")
    out.threads()
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for mode, curve in curves.items():
        ax.plot(range(1, depth + 1), curve, marker=".", label=mode)
    ax.set_xlabel("k (documents)")
    ax.set_ylabel("gold paragraph in top k")
    ax.set_title(f"SQuAD v1.1 dev, {len(questions)} questions, {len(index.documents)} paragraphs")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out.folder / "squad_recall.png", dpi=120)
    plt.close(fig)
    return results


def _squad_answers(out: Report, index: Any, keys: dict[str, str], questions: Sequence[dict[str, Any]],
                   settings: Settings) -> dict[str, Any]:
    """Does the cited answer (at most two sentences) contain a gold answer?"""
    from qa.answer import answer
    from qa.sentences import split_sentences

    out.section(f"Answers: qa.answer with at most {SQUAD_ANSWER_SENTENCES} sentences")
    s = settings.replace(max_answer_sentences=SQUAD_ANSWER_SENTENCES)
    correct, abstained, gold_retrieved, correct_given_gold = 0, 0, 0, 0
    sentence_counts: list[int] = []
    latency: list[float] = []
    predictions: dict[str, str] = {}
    with_span = 0
    for q in _progress(questions, settings, "answers"):
        started = time.perf_counter()
        reply = answer(q["question"], history=[], index=index, settings=s)
        latency.append(1000 * (time.perf_counter() - started))
        ok = not reply.abstained and contains_answer(reply.text, q["answers"])
        correct += ok
        abstained += reply.abstained
        if not reply.abstained:
            sentence_counts.append(len(split_sentences(strip_markers(reply.text))))
        if any(keys[p.doc_id] == q["pid"] for p in reply.passages):
            gold_retrieved += 1
            correct_given_gold += ok
        with_span += any(c.answer_start is not None for c in reply.citations)
        predictions[q["id"]] = short_answer(reply)
    n = max(1, len(questions))
    official = squad_scores(predictions, questions, "1.1")
    results: dict[str, Any] = {
        "answer_contains_gold": correct / n, "abstained": abstained / n,
        "gold_paragraph_in_passages": gold_retrieved / n,
        "contains_gold_when_gold_paragraph_retrieved": correct_given_gold / max(1, gold_retrieved),
        "mean_answer_sentences": _mean(sentence_counts), "max_answer_sentences": max(sentence_counts, default=0),
        "short_answer_coverage": with_span / n, "short_answer_em": official["exact"],
        "short_answer_f1": official["f1"], "p50_ms": _percentile(latency, 50), "p95_ms": _percentile(latency, 95),
    }
    out.table(["measure", "value"], [
        ["answer contains a gold answer (SQuAD-normalized, whole words)", f"{100 * correct / n:.1f}%"],
        ["abstained", f"{100 * abstained / n:.1f}%"],
        ["gold paragraph among the answer's passages", f"{100 * gold_retrieved / n:.1f}%"],
        ["answer contains gold, when the gold paragraph was retrieved",
         f"{100 * results['contains_gold_when_gold_paragraph_retrieved']:.1f}%"],
        ["sentences per answer (mean / max)", f"{results['mean_answer_sentences']:.2f} / "
                                              f"{results['max_answer_sentences']}"],
        ["questions with a marked short answer", f"{100 * with_span / n:.1f}%"],
        ["short answer EM / F1 (official v1.1; the whole answer where none is marked)",
         f"{official['exact']:.1f} / {official['f1']:.1f}"],
        ["latency per answer p50 / p95 (ms, query embedding included)",
         f"{results['p50_ms']:.1f} / {results['p95_ms']:.1f}"],
    ])
    out.text("For scale (a reader given the gold paragraph, not an open corpus): DrQA reader EM/F1 "
             "69.4 / 78.9, distilbert-base-cased-distilled-squad 79.6 / 87.0, BERT-large 84.1 / 90.9.")
    out.threads()
    return results


def _squad_abstention(out: Report, index: Any, keys: dict[str, str], questions: Sequence[dict[str, Any]],
                      total: int, settings: Settings) -> dict[str, Any]:
    """SQuAD v2.0: answer the answerable, abstain on the rest; how well confidence separates them."""
    from qa.answer import answer

    out.section("Abstention: SQuAD v2.0 dev (answerable vs unanswerable)")
    out.text("Questions scored: " + (f"all {len(questions)}." if len(questions) == total else
             f"a seeded sample of {len(questions)} (seed {SAMPLE_SEED}) of {total}."))
    s = settings.replace(max_answer_sentences=SQUAD_ANSWER_SENTENCES)
    confidence, answerable, right, answered = [], [], [], []
    predictions: dict[str, str] = {}
    for q in _progress(questions, settings, "v2.0 answers"):
        reply = answer(q["question"], history=[], index=index, settings=s)
        has_answer = bool(q["answers"])
        confidence.append(reply.confidence)
        answerable.append(has_answer)
        answered.append(not reply.abstained)
        right.append(has_answer and not reply.abstained and contains_answer(reply.text, q["answers"]))
        predictions[q["id"]] = "" if reply.abstained else short_answer(reply)
    conf = np.asarray(confidence)
    pos = np.asarray(answerable)
    ok = np.asarray(right)
    did = np.asarray(answered)
    auc = roc_auc(conf, pos)
    ap = average_precision(conf, pos)
    # The v2.0 rule, with "contains a gold answer" for answered questions: abstaining is right
    # exactly on the unanswerable ones.
    accuracy = float(np.where(pos, ok, ~did).mean()) if len(pos) else float("nan")
    thresholds = np.unique(conf)
    curve = []
    for t in thresholds:
        take = conf >= t
        n_take = int(take.sum())
        curve.append((float(t), float((take & pos).sum() / n_take) if n_take else 1.0,
                      float((take & pos).sum() / max(1, pos.sum())),
                      float((take & ok).sum() / n_take) if n_take else 1.0,
                      float(np.where(pos, ok & take, ~take).mean())))
    best = max(curve, key=lambda c: c[4]) if curve else (float("nan"),) * 5
    official = squad_scores(predictions, questions, "2.0")
    results: dict[str, Any] = {
        "roc_auc": auc, "average_precision": ap, "threshold": settings.abstain_threshold,
        "answered_when_answerable": float(did[pos].mean()) if pos.any() else float("nan"),
        "abstained_when_unanswerable": float((~did[~pos]).mean()) if (~pos).any() else float("nan"),
        "contains_gold_when_answerable": float(ok[pos].mean()) if pos.any() else float("nan"),
        "v2_accuracy": accuracy, "best_threshold": best[0], "best_threshold_accuracy": best[4],
        "official_em_f1": official,
    }
    out.table(["measure", "value"], [
        ["ROC AUC of Answer.confidence (answerable vs unanswerable)", f"{auc:.3f}"],
        ["average precision (answerable = positive)", f"{ap:.3f}"],
        [f"answered, answerable questions (threshold {settings.abstain_threshold})",
         f"{100 * results['answered_when_answerable']:.1f}%"],
        ["abstained, unanswerable questions", f"{100 * results['abstained_when_unanswerable']:.1f}%"],
        ["answer contains gold, answerable questions", f"{100 * results['contains_gold_when_answerable']:.1f}%"],
        ["accuracy, v2 rule (gold contained / rightly abstained)", f"{100 * accuracy:.1f}%"],
        [f"best threshold on this set (not a tuned default): {best[0]:.3f}", f"{100 * best[4]:.1f}%"],
        ["short answer EM / F1 (official v2.0; abstaining answers \"\")",
         f"{official['exact']:.1f} / {official['f1']:.1f}"],
        ["always abstain, EM / F1 (SOURCE.md)", "50.1 / 50.1"],
    ])
    out.text("AUC 0.5 is chance. SQuAD v2.0's unanswerable questions were written against the same "
             "paragraph as answerable ones, so they look relevant to a retriever by design.")
    _abstention_plot(out.folder, curve, settings.abstain_threshold, auc, len(questions))
    out.data["abstention_curve"] = [
        {"threshold": c[0], "precision": c[1], "recall": c[2], "correct_precision": c[3], "accuracy": c[4]}
        for c in curve[:: max(1, len(curve) // 200)]]
    return results


def _abstention_plot(folder: Path, curve: Sequence[tuple[float, ...]], threshold: float, auc: float,
                     n: int) -> None:
    plt = _plt()
    t = [c[0] for c in curve]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(t, [c[1] for c in curve], label="precision (answered that are answerable)")
    left.plot(t, [c[2] for c in curve], label="recall (answerable that are answered)")
    left.plot(t, [c[3] for c in curve], label="answered with a gold answer inside", alpha=0.7)
    left.plot(t, [c[4] for c in curve], label="accuracy, v2 rule", alpha=0.7)
    left.axvline(threshold, color="k", ls="--", lw=1, label=f"abstain_threshold={threshold}")
    left.set_xlabel("abstention threshold on Answer.confidence")
    left.legend(fontsize=7)
    left.grid(alpha=0.3)
    right.plot([c[2] for c in curve], [c[1] for c in curve])
    right.set_xlabel("recall")
    right.set_ylabel("precision")
    right.set_title(f"answerable vs unanswerable, ROC AUC {auc:.3f}")
    right.grid(alpha=0.3)
    fig.suptitle(f"SQuAD v2.0 dev, {n} questions")
    fig.tight_layout()
    fig.savefig(folder / "squad2_abstention.png", dpi=120)
    plt.close(fig)
