"""The benchmarks, each registered once: its name, one line on what it measures, and the module
that runs it. `qa bench` takes its choices and its help from `BENCHMARKS`; `run_bench` runs one.

Each benchmark module has `run(job: BenchRun) -> Report`: it measures, fills the report (every
table shown as it is made) and leaves saving to `run_bench`. Adding a benchmark is one module
and one entry here. A module is imported only when its benchmark runs: the modules load numpy,
scikit-learn and the retrieval stack (seconds on 2 cores), which `qa --help` and every other
`qa` command would otherwise pay for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from qa.bench.report import Report
from qa.config import Settings
from qa.errors import BenchmarkDataError


@dataclass(frozen=True)
class BenchRun:
    """One run's arguments, as `qa bench` takes them; each benchmark reads those it uses.

    Attributes:
        settings: the pipeline's settings (fusion weights, model, threads, corpus...).
        report_dir: where report.md, results.json and plots go.
        data: the benchmark's data folder (default: `../shared/benchmarks/<folder>`).
        sample: score a fixed, seeded sample of this many questions instead of all of them.
        full: for "indexing", also build the whole SciFact corpus before/now.
        sizes: for "scale", the index sizes in chunks (default 10^5 and 10^6).
        echo: shows each line and table as it is made (the CLI passes `print`).
        compare_reader: for "squad", another reader's folder scored beside the configured one.
    """

    settings: Settings
    report_dir: Path
    data: Path | None = None
    sample: int | None = None
    full: bool = False
    sizes: tuple[int, ...] | None = None
    echo: Callable[[str], None] | None = None
    compare_reader: Path | None = None


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: `name` (what `qa bench` takes), one line on what it measures, and the
    module whose `run(job: BenchRun) -> Report` runs it."""

    name: str
    description: str
    module: str

    def runner(self) -> Callable[[BenchRun], Report]:
        """The module's `run`, imported now."""
        return cast(Callable[[BenchRun], Report], importlib.import_module(self.module).run)


BENCHMARKS = (
    Benchmark("scifact", "BEIR SciFact retrieval: each retriever beside the published figures, and a LangChain "
                         "peer", "qa.bench.scifact"),
    Benchmark("squad", "SQuAD v1.1 and v2.0 held-out articles: the reader with the gold paragraph, then cited "
                       "answers and abstention over open corpora", "qa.bench.squad"),
    Benchmark("documents", "real layouts: the same SQuAD articles as plain text, wrapped text and Chromium PDFs",
              "qa.bench.documents"),
    Benchmark("sentences", "sentence segmenters against hand-annotated boundaries", "qa.bench.sentences"),
    Benchmark("reading", "what the reader reads: each reading setting on the same development questions",
              "qa.bench.reading"),
    Benchmark("indexing", "indexing speed: qa's build against plain LangChain split-and-embed (SciFact)",
              "qa.bench.indexing"),
    Benchmark("latency", "speed on this machine: index build, embedding, retrieval and answer latency",
              "qa.bench.latency"),
    Benchmark("fairness", "a normal question's latency while hostile requests hit the chat server",
              "qa.bench.fairness"),
    Benchmark("scale", "an index of 10^5 and 10^6 chunks: open time, memory, ANN recall and latency",
              "qa.bench.scale"),
    Benchmark("ocr", "OCR engines on scans made here from known text", "qa.bench.ocr"),
)


def benchmark(name: str) -> Benchmark:
    """The benchmark called `name`.

    Raises:
        BenchmarkDataError: there is none; the message lists those there are.
    """
    for entry in BENCHMARKS:
        if entry.name == name:
            return entry
    raise BenchmarkDataError(f"Unknown benchmark {name!r}. Choose from {', '.join(b.name for b in BENCHMARKS)}.")


def run_bench(
    name: str,
    *,
    data: Path | None = None,
    report_dir: Path | None = None,
    sample: int | None = None,
    settings: Settings,
    full: bool = False,
    sizes: tuple[int, ...] | None = None,
    echo: Callable[[str], None] | None = None,
    compare_reader: Path | None = None,
) -> dict[str, Any]:
    """Run one benchmark, print its tables and write its report.

    Args:
        name: one of `BENCHMARKS` ("scifact", "squad", "documents", ...).
        data, sample, full, sizes, echo, compare_reader: as `BenchRun` reads them.
        report_dir: where report.md, results.json and plots go (default: eval/reports/<name>).
        settings: the pipeline's settings.

    Returns:
        The figures written to results.json.

    Raises:
        BenchmarkDataError: an unknown benchmark, or its data folder is missing or incomplete.
    """
    entry = benchmark(name)
    report_dir = report_dir or Path("eval") / "reports" / name
    report_dir.mkdir(parents=True, exist_ok=True)
    job = BenchRun(settings=settings, report_dir=report_dir, data=data, sample=sample, full=full, sizes=sizes,
                   echo=echo, compare_reader=compare_reader)
    report = entry.runner()(job)
    report.save()
    report.echo(f"\nReport written to {report_dir}/ (report.md, results.json, plots).")
    return report.data
