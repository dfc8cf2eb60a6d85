"""Benchmarks over the real pipeline: public ones (BEIR SciFact, SQuAD v1.1 and v2.0, with a
LangChain peer), real layouts, what the reader reads, speed, fairness, scale and OCR, one module
each, registered once in `qa.bench.registry` (`qa bench NAME` runs one).

The public benchmarks write their documents as a corpus folder (title on the first line, a blank
line, then the text: the layout of `seeds/`) under `.qa_cache/bench/<name>/corpus`, index it with
`qa.index.build_index` (incremental, so reruns only load), and rank with `qa.retrieval.rank`, so
chunking, the sentence table and the BM25+dense fusion are all measured as shipped. Retrieval
ranks chunks; a document's score is its best chunk's (documents in order of first appearance).

This package's own import is light (the registry): `qa bench` lists the benchmarks without
loading them. Shared helpers are in `qa.bench.common`, the report writer in `qa.bench.report`.
"""

from __future__ import annotations

from qa.bench.registry import BENCHMARKS, Benchmark, BenchRun, benchmark, run_bench

__all__ = ["BENCHMARKS", "BenchRun", "Benchmark", "benchmark", "run_bench"]
