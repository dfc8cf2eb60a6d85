"""Public benchmarks over the real pipeline: BEIR SciFact, SQuAD v1.1 and v2.0, and a peer.

Each benchmark writes its documents as a corpus folder (title on the first line, a blank line,
then the text: the layout of `seeds/`) under `.qa_cache/bench/<name>/corpus`, indexes it with
`qa.index.build_index` (incremental, so reruns only load), and ranks with `qa.retrieval.rank`, so
chunking, the sentence table and the BM25+dense fusion are all measured as shipped. Retrieval
ranks chunks; a document's score is its best chunk's (documents in order of first appearance).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from qa.bench.common import DATA_ROOT, FOLDERS, Doc, data_folder, doc_ranking, read_jsonl, sample_items, write_corpus
from qa.bench.scifact import bench_scifact
from qa.bench.squad import bench_squad
from qa.config import Settings
from qa.errors import BenchmarkDataError

__all__ = ["DATA_ROOT", "Doc", "bench_scifact", "bench_squad", "data_folder", "doc_ranking", "read_jsonl",
           "run_bench", "sample_items", "write_corpus"]


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
    """Run one benchmark, print its table and write its report.

    Args:
        name: "scifact", "squad", "documents", "sentences", "indexing", "scale", "latency",
            "fairness" or "ocr".
        data: the benchmark's data folder (default: `../shared/benchmarks/<folder>`); for
            "squad", the SQuAD v1.1 folder, with v2.0 looked for beside it.
        report_dir: where report.md, results.json and plots go (default: eval/reports/<name>).
        sample: score a fixed, seeded sample of this many questions instead of all of them.
        sizes: for "scale", the index sizes in chunks (default 10^5 and 10^6).
        full: for "indexing", also build the whole SciFact corpus before/now (about 45 minutes
            on 2 cores).
        settings: the pipeline's settings (fusion weights, model, threads...).
        echo: shows each line and table as it is made (the CLI passes `print`).
        compare_reader: for "squad", another reader's folder scored beside the configured one.

    Returns:
        The figures written to results.json.

    Raises:
        BenchmarkDataError: the data folder is missing or incomplete.
    """
    report_dir = report_dir or Path("eval") / "reports" / name
    if name == "latency":
        from qa.speed import run_latency

        return run_latency(report_dir=report_dir, settings=settings, echo=echo)
    if name == "fairness":
        from qa.bench.fairness import run_fairness

        return run_fairness(report_dir=report_dir, settings=settings, echo=echo)
    if name not in ("scifact", "squad", "indexing", "scale", "sentences", "documents", "ocr", "reading"):
        raise BenchmarkDataError(
            f"Unknown benchmark {name!r}. Choose from scifact, squad, documents, sentences, reading, indexing, "
            "latency, fairness, scale, ocr.")
    report_dir.mkdir(parents=True, exist_ok=True)
    if name == "ocr":
        from qa.bench.ocr import bench_ocr

        report = bench_ocr(settings, report_dir, echo=echo)
    elif name == "sentences":
        from qa.bench.sentences import bench_sentences

        report = bench_sentences(report_dir, squad=data, echo=echo)
    elif name == "reading":
        from qa.bench.reading import bench_reading

        report = bench_reading(settings, report_dir, sample=sample, data=data, echo=echo)
    elif name == "documents":
        from qa.bench.documents import bench_documents

        report = bench_documents(data_folder("squad", data), data_folder("squad2", None if data is None else
                                 data.parent / FOLDERS["squad2"]), settings, report_dir, sample=sample, echo=echo)
    elif name == "scale":
        from qa.bench.scale import SIZES, bench_scale

        report = bench_scale(data_folder("scifact", data), settings, report_dir, sizes=sizes or SIZES, echo=echo)
    elif name == "indexing":
        from qa.bench.indexing import bench_indexing

        report = bench_indexing(data_folder("scifact", data), settings, report_dir, full=full, echo=echo)
    elif name == "scifact":
        report = bench_scifact(data_folder("scifact", data), settings, report_dir, sample=sample, echo=echo)
    else:
        folder = data_folder("squad", data)
        # With --data pointing at v1.1, v2.0 is looked for beside it.
        v2 = folder.parent / FOLDERS["squad2"] if data is not None else None
        report = bench_squad(folder, data_folder("squad2", v2), settings, report_dir, sample=sample, echo=echo,
                             compare_reader=compare_reader)
    report.save()
    report.echo(f"\nReport written to {report_dir}/ (report.md, results.json, plots).")
    return report.data
