"""How long indexing takes: qa's `build_index` against plain LangChain split-and-embed, and, with
`--full`, the whole SciFact corpus built by today's pipeline against the one qa shipped before.

The LangChain side is the simplest thing a user could write: `RecursiveCharacterTextSplitter.
from_tiktoken_encoder("cl100k_base", 200, 40)` over each file, then `SentenceTransformer.encode`
of the chunks (dense vectors only, in memory). qa's side is a complete index: chunks, sentence
vectors, BM25, FAISS, written and swapped in atomically. Both read the same files with their
models already loaded, and the rounds alternate so that a change in machine load hits both.
"""

# LangChain's splitter and sentence-transformers (the peer being compared) is imported inside the
# functions that use them, on purpose: importing this module stays cheap (`import qa` loads neither
# torch nor FAISS, and `qa --help` starts at once).

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qa.bench.common import CACHE, Doc, data_folder, progress, read_jsonl, read_qrels, write_corpus
from qa.bench.registry import BenchRun
from qa.bench.report import Report
from qa.config import Settings
from qa.embed import embedder_for, model_path
from qa.encoder import quiet_loading
from qa.evaluation.metrics import mean, ndcg10
from qa.index import build_index, load_index
from qa.retrieval import retrieve

COMPARE_DOCS = 300
ROUNDS = 2
# The pipeline qa shipped before this encoder: SentenceTransformer.encode (batches sorted by
# characters) and every sentence embedded again on its own.
BEFORE = {"encoder_backend": "sentence-transformers", "sentence_vectors": "separate", "encoder_precision": "fp32"}


def bench_indexing(folder: Path, settings: Settings, report_dir: Path, *, full: bool = False,
                   documents: int = COMPARE_DOCS, echo: Callable[[str], None] | None = None) -> Report:
    """Time index builds on BEIR SciFact abstracts (see the module's docstring)."""
    out = Report("Indexing speed (BEIR SciFact abstracts)", report_dir, echo)
    docs = [Doc(str(d["_id"]), str(d.get("title") or ""), str(d.get("text") or ""))
            for d in read_jsonl(folder / "corpus.jsonl.gz")]
    out.text(f"Encoder: {getattr(_encoder(settings), 'description', settings.encoder_backend)}.")
    _against_langchain(out, docs[:documents], settings)
    if full:
        _full_corpus(out, folder, docs, settings)
    return out


def _encoder(settings: Settings) -> Any:
    return embedder_for(settings)


def _against_langchain(out: Report, docs: list[Doc], settings: Settings) -> None:
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from sentence_transformers import SentenceTransformer

    out.section(f"qa.build_index against LangChain split + SentenceTransformer.encode, {len(docs)} abstracts")
    corpus = CACHE / "indexing" / "corpus"
    write_corpus(docs, corpus)
    files = sorted(corpus.glob("*.txt"))
    splitter = RecursiveCharacterTextSplitter.from_tiktoken_encoder(
        encoding_name="cl100k_base", chunk_size=200, chunk_overlap=40)
    with quiet_loading():
        st = SentenceTransformer(str(model_path(settings.model)), device="cpu", local_files_only=True)
    encoder = _encoder(settings)
    encoder.embed(["warm up the encoder", "and its runtime"])
    st.encode(["warm up the encoder", "and its runtime"])

    def langchain() -> tuple[float, int]:
        started = time.perf_counter()
        chunks = [c for path in files for c in splitter.split_text(path.read_text(encoding="utf-8"))]
        st.encode(chunks, normalize_embeddings=True, convert_to_numpy=True)
        return time.perf_counter() - started, len(chunks)

    def qa_build(config: Settings) -> tuple[float, Any]:
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            started = time.perf_counter()
            report = build_index(corpus, Path(tmp) / "index", settings=config.replace(show_progress=False),
                                 embedder=encoder, rebuild=True, log=lambda _line: None)
            return time.perf_counter() - started, report

    # The settings as given, and the other way of making sentence vectors beside them.
    other = "separate" if settings.sentence_vectors == "pooled" else "pooled"
    configs = {f"qa, sentences {settings.sentence_vectors}": settings,
               f"qa, sentences {other}": settings.replace(sentence_vectors=other)}
    rows: list[list[Any]] = []
    ratios: dict[str, list[float]] = {name: [] for name in configs}
    built: Any = None
    for round_no in range(1, ROUNDS + 1):
        lc_s, lc_chunks = langchain()
        rows.append([round_no, "LangChain split + SentenceTransformer.encode", lc_s, 1.0])
        for name, config in configs.items():
            qa_s, report = qa_build(config)
            built = built or report
            ratios[name].append(qa_s / lc_s)
            rows.append([round_no, name, qa_s, qa_s / lc_s])
    out.table(["round", "what", "seconds", "ratio to LangChain"], rows)
    medians = {name: statistics.median(r) for name, r in ratios.items()}
    out.text(f"qa builds {built.chunks} chunk and {built.sentences} sentence vectors, BM25 and FAISS, written "
             f"to disk and swapped in; LangChain {lc_chunks} chunk vectors, in memory. Median ratios: "
             + ", ".join(f"{name} {m:.2f}" for name, m in medians.items()) + ".")
    out.threads()
    out.data["against_langchain"] = {"documents": len(docs), "rounds": rows, "median_ratio": medians,
                                     "qa_chunks": built.chunks, "qa_sentences": built.sentences,
                                     "langchain_chunks": lc_chunks, "encoder": getattr(encoder, "description", "")}


def _full_corpus(out: Report, folder: Path, docs: list[Doc], settings: Settings) -> None:
    out.section(f"The whole corpus ({len(docs)} abstracts): before and now, built from scratch")
    corpus = CACHE / "indexing-full" / "corpus"
    keys = write_corpus(docs, corpus)
    queries = {str(q["_id"]): str(q["text"]) for q in read_jsonl(folder / "queries.jsonl")}
    test = read_qrels(folder / "qrels" / "test.tsv")
    configs = {"before: SentenceTransformer.encode, sentences separate": settings.replace(**BEFORE)}
    for vectors in ("pooled", "separate"):
        configs[f"now: onnx fp32, sentences {vectors}"] = settings.replace(
            encoder_backend="onnx", encoder_precision="fp32", sentence_vectors=vectors)
    configs["now: onnx int8, sentences pooled"] = settings.replace(
        encoder_backend="onnx", encoder_precision="int8", sentence_vectors="pooled")
    rows: list[list[Any]] = []
    figures: dict[str, dict[str, Any]] = {}
    for name, config in configs.items():
        index_path = CACHE / "indexing-full" / ("index-" + str(len(figures)))
        encoder = _encoder(config)
        encoder.embed(["warm up"])
        started = time.perf_counter()
        built = build_index(corpus, index_path, settings=config, embedder=encoder, rebuild=True,
                            log=lambda _line: None)
        seconds = time.perf_counter() - started
        index = load_index(index_path)
        score = _ndcg(index, keys, queries, test, config)
        figures[name] = {"seconds": seconds, "chunks": built.chunks, "sentences": built.sentences, "ndcg@10": score}
        rows.append([name, seconds, built.chunks, built.sentences, score])
        shutil.rmtree(index_path, ignore_errors=True)
    base = next(iter(figures.values()))["seconds"]
    out.table(["pipeline", "build s", "chunks", "sentences", "nDCG@10 (qa.retrieve, 300 test claims)"], rows)
    out.text("Speed-up against before: " + ", ".join(
        f"{name.split(':')[0]} {base / f['seconds']:.2f}x" for name, f in list(figures.items())[1:]) + ".")
    out.threads()
    out.data["full"] = figures


def _ndcg(index: Any, keys: dict[str, str], queries: dict[str, str], test: dict[str, set[str]],
          settings: Settings) -> float:
    scores = []
    for qid, relevant in progress(test.items(), settings, "test claims", total=len(test)):
        passages = retrieve(queries[qid], k=30, index=index, settings=settings)
        scores.append(ndcg10(list(dict.fromkeys(keys[p.doc_id] for p in passages)), relevant))
    return mean(scores)


def run(job: BenchRun) -> Report:
    """`qa bench indexing` (qa.bench.registry)."""
    return bench_indexing(data_folder("scifact", job.data), job.settings, job.report_dir, full=job.full,
                          echo=job.echo)
