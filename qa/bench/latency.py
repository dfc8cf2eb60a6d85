"""`qa bench latency`: how fast the product is on this machine, with the thread settings shown.

Measures, on a corpus (default: seeds/): a full index build (model load timed apart), passages
and sentences embedded per second, and warm latency p50/p95 of `retrieve` by mode and of
`answer`. Figures are for the report, never asserted in tests. Registered in qa.bench.registry.
"""

from __future__ import annotations

import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

from qa.answers import answer
from qa.bench.registry import BenchRun
from qa.bench.report import Report
from qa.config import MODES, Settings
from qa.embed import embedder_for
from qa.evaluation.metrics import latency_summary
from qa.index import build_index, load_index
from qa.reading import read_answer
from qa.retrieval import rank, retrieve
from qa.runtime import thread_report
from qa.scoring import idf_weights, score_sentences

QUESTIONS = [
    "Where is TikTok's US user data stored?",
    "How many accounts did TikTok remove?",
    "Who founded ByteDance?",
    "Why did FCC commissioner Brendan Carr want TikTok removed from app stores?",
    "What did the leaked BlueLeaks documents show about TikTok and police?",
    "When did the Chinese PR arm ask about a TikTok account?",
    "Which agency reached out to TikTok about disinformation?",
    "What did Liz Truss say about Chinese companies?",
    "How many downloads has TikTok amassed?",
    "What is the capital of France?",
]
REPEATS = 5
# The two readings timed side by side: the comparison setting, then the shipped one.
READINGS: dict[str, dict[str, Any]] = {
    "3 windows around the scorer's sentences (reader_passages = 0)": {"reader_passages": 0},
    "whole passages (the shipped settings)": {},
}
PARTS = ("retrieval", "sentence scoring", "reading", "rest")


def run(job: BenchRun) -> Report:
    """`qa bench latency`: measure on `job.settings.corpus`, then the report of the figures."""
    return latency_report(measure_latency(job.settings), job.report_dir, job.echo)


def measure_latency(settings: Settings) -> dict[str, Any]:
    """Time index build, embedding throughput, retrieval and answers on `settings.corpus`;
    returns the figures (the keys of results.json)."""
    settings = settings.replace(show_progress=False)
    started = time.perf_counter()
    embedder = embedder_for(settings)
    model_load_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        index_path = Path(tmp) / "index"
        started = time.perf_counter()
        report = build_index(settings.corpus, index_path, settings=settings, embedder=embedder, log=lambda _: None)
        build_s = time.perf_counter() - started
        index = load_index(index_path)
        texts = [c.text for c in index.chunks]
        sentences = [s.text for s in index.sentences]
        started = time.perf_counter()
        embedder.embed(texts, batch_size=settings.embed_batch_size)
        chunks_per_s = len(texts) / (time.perf_counter() - started)
        started = time.perf_counter()
        embedder.embed(sentences, batch_size=settings.embed_batch_size)
        sentences_per_s = len(sentences) / (time.perf_counter() - started)
        timings = _timings(settings, index)
        reading = {f"answer, reader: {label}": settings.replace(reader=True, **changes)
                   for label, changes in READINGS.items()}
        timings.update(_interleaved(reading, index))
        parts = {label: _breakdown(s, index) for label, s in reading.items()}

    return {
        "corpus": str(settings.corpus),
        "documents": report.documents, "chunks": report.chunks, "sentences": report.sentences,
        "model_load_s": round(model_load_s, 2),
        "index_build_s": round(build_s, 2),
        "chunks_embedded_per_s": round(chunks_per_s, 1),
        "sentences_embedded_per_s": round(sentences_per_s, 1),
        "latency_ms": {name: {k: round(v, 2) for k, v in asdict(latency_summary(values)).items()}
                       for name, values in timings.items()},
        "reader_breakdown_ms": parts,
        "encoder": getattr(embedder, "description", settings.encoder_backend),
        "threads": thread_report(),
        "machine": platform.machine(),   # the processor and CPU count are in "threads"
    }


def _timings(settings: Settings, index: Any) -> dict[str, list[float]]:
    """Warm latencies (ms) of the question's embedding on each encoder path, of `retrieve` by
    mode and of `answer` with the sentence scorer, each after one warm-up call."""
    timings: dict[str, list[float]] = {}

    def measure(label: str, run: Callable[[str], Any]) -> None:
        run(QUESTIONS[0])  # warm-up: models load and caches fill on first use
        timings[label] = []
        for _ in range(REPEATS):
            for q in QUESTIONS:
                t = time.perf_counter()
                run(q)
                timings[label].append((time.perf_counter() - t) * 1000)

    # The encoder the settings use, then the torch paths beside it, in the same run.
    paths = {_path_name(settings): settings}
    for backend in ("torch", "sentence-transformers"):
        if backend != settings.encoder_backend:
            paths[_path_name(settings.replace(encoder_backend=backend, encoder_precision="fp32"))] = \
                settings.replace(encoder_backend=backend, encoder_precision="fp32")
    for name, s in paths.items():
        measure(f"question embedding, {name}", partial(_embed_one, embedder_for(s)))
    for mode in MODES:
        measure(f"retrieve ({mode})", partial(retrieve, k=settings.top_k, index=index, mode=mode,
                                              settings=settings))
    for name, s in paths.items():
        measure(f"answer, sentence scorer (reader off), {name}",
                partial(answer, index=index, settings=s.replace(reader=False)))
    return timings


def _interleaved(variants: dict[str, Settings], index: Any) -> dict[str, list[float]]:
    """Answer latency of each settings variant, interleaved question by question (so that they
    share whatever else the machine is doing), after one warm-up answer each."""
    for s in variants.values():
        answer(QUESTIONS[0], index=index, settings=s)
    out: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(REPEATS):
        for q in QUESTIONS:
            for name, s in variants.items():
                t = time.perf_counter()
                answer(q, index=index, settings=s)
                out[name].append((time.perf_counter() - t) * 1000)
    return out


def _breakdown(settings: Settings, index: Any) -> dict[str, float]:
    """Where an answer's time goes: the p50 over the questions of retrieval (with the question's
    embedding), sentence scoring, reading, and the rest (answerability, composing)."""
    parts: dict[str, list[float]] = {"retrieval": [], "sentence scoring": [], "reading": [], "rest": []}
    for _ in range(REPEATS):
        for q in QUESTIONS:
            t0 = time.perf_counter()
            ranking = rank(q, index, settings=settings)
            t1 = time.perf_counter()
            scored = score_sentences(q, ranking, index, idf_weights(index, ranking.query))
            t2 = time.perf_counter()
            read_answer(ranking.query, scored, index, settings, ranking)
            t3 = time.perf_counter()
            answer(q, index=index, settings=settings)
            total = time.perf_counter() - t3
            for name, seconds in (("retrieval", t1 - t0), ("sentence scoring", t2 - t1), ("reading", t3 - t2),
                                  ("rest", max(0.0, total - (t3 - t0)))):
                parts[name].append(seconds * 1000)
    return {name: round(latency_summary(values).p50, 2) for name, values in parts.items()}


def _embed_one(embedder: Any, question: str) -> Any:
    return embedder.embed([question])


def _path_name(settings: Settings) -> str:
    if settings.encoder_backend == "sentence-transformers":
        return "SentenceTransformer (torch, as before)"
    return f"{settings.encoder_backend} {settings.encoder_precision}"


def latency_report(r: dict[str, Any], folder: Path, echo: Callable[[str], None] | None = None) -> Report:
    """The report of `measure_latency`'s figures `r` (results.json holds them as they are)."""
    report = Report("Speed on this machine", folder, echo)
    report.data.update(r)
    report.text(f"Corpus `{r['corpus']}`: {r['documents']} documents, {r['chunks']} chunks, "
                f"{r['sentences']} sentences.")
    report.text(f"Encoder: {r['encoder']}.")
    report.text(f"Threads: {', '.join(f'{k}={v}' for k, v in r['threads'].items())}.")
    report.text()
    report.table(["what", "value"], [
        ["model load", f"{r['model_load_s']:.2f} s"],
        ["index build (load, chunk, embed, write; model already loaded)", f"{r['index_build_s']:.2f} s"],
        ["chunks embedded per second", f"{r['chunks_embedded_per_s']:.1f}"],
        ["sentences embedded per second", f"{r['sentences_embedded_per_s']:.1f}"],
    ])
    report.table(["warm latency", "p50 ms", "p95 ms", "mean ms", "n"],
                 [[name, f"{v['p50']:.2f}", f"{v['p95']:.2f}", f"{v['mean']:.2f}", str(v["n"])]
                  for name, v in r["latency_ms"].items()])
    names = [n for n in r["latency_ms"] if n.startswith("answer, reader: ")]
    if len(names) == 2:
        first, second = (r["latency_ms"][n]["p50"] for n in names)
        report.text(f"The two readings were timed interleaved, question by question: p50 ratio "
                    f"{second / first:.2f}x ({names[1][16:]} against {names[0][16:]}).")
        report.text()
    report.table(["where an answer's time goes (p50 ms)", *PARTS],
                 [[name[16:], *(f"{parts[p]:.1f}" for p in PARTS)] for name, parts in r["reader_breakdown_ms"].items()])
    return report
