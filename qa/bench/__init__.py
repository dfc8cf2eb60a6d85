"""Public benchmarks over the real pipeline: BEIR SciFact, SQuAD v1.1 and v2.0, and a peer.

Each benchmark writes its documents as a corpus folder (title on the first line, a blank line,
then the text: the layout of `seeds/`) under `.qa_cache/bench/<name>/corpus`, indexes it with
`qa.index.build_index` (incremental, so reruns only load), and ranks with `qa.retrieve.rank`, so
chunking, the sentence table and the BM25+dense fusion are all measured as shipped. Retrieval
ranks chunks; a document's score is its best chunk's (documents in order of first appearance).
"""

from __future__ import annotations

from pathlib import Path

from qa.bench.common import (
    _FOLDERS,
    DATA_ROOT,
    Doc,
    _read_jsonl,
    _sample,
    data_folder,
    doc_ranking,
    write_corpus,
)
from qa.bench.metrics import average_precision, ndcg10, recall, roc_auc, squad_scores
from qa.bench.scifact import bench_scifact
from qa.bench.squad import bench_squad
from qa.config import Settings
from qa.errors import BenchmarkDataError

# The metrics and corpus helpers are re-exported for the tests and for notebooks (`bench.ndcg10`).
__all__ = [
    "DATA_ROOT", "Doc", "_read_jsonl", "_sample", "average_precision", "bench_scifact", "bench_squad",
    "data_folder", "doc_ranking", "ndcg10", "recall", "roc_auc", "run_bench", "squad_scores", "write_corpus",
]


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
