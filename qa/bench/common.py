"""Shared pieces of the benchmarks: the data folders, the corpus folder and index each benchmark
builds, document rankings from chunk rankings, batched query vectors, and small helpers.
"""

# matplotlib and tqdm are imported inside the functions that use them, on purpose: importing this
# module stays cheap (`import qa` loads neither torch nor FAISS, and `qa --help` starts at once).

from __future__ import annotations

import gzip
import json
import random
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from qa.config import Settings
from qa.encoder import Progress
from qa.errors import BenchmarkDataError
from qa.index import build_index, load_index
from qa.retrieval import clean_query
from qa.types import IndexReport

# qa/bench/common.py -> the folder holding the repository, beside which shared/ lies.
DATA_ROOT = Path(__file__).resolve().parents[3] / "shared" / "benchmarks"
CACHE = Path(".qa_cache") / "bench"
SAMPLE_SEED = 13
FOLDERS = {"scifact": "beir-scifact", "squad": "squad-v1.1-dev", "squad2": "squad-v2.0-dev"}
_SAFE_NAME = re.compile(r"[^\w.,()-]+")


# ---------------------------------------------------------------------------------------------
# Data


def data_folder(name: str, data: Path | None = None) -> Path:
    """The folder of benchmark `name` ("scifact", "squad", "squad2"), checked to exist.

    Raises:
        BenchmarkDataError: the folder or one of its files is missing.
    """
    folder = Path(data) if data is not None else DATA_ROOT / FOLDERS[name]
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
            f"laid out as described in shared/benchmarks/{FOLDERS[name]}/SOURCE.md, and pass "
            f"its folder with --data DIR."
        )
    return folder


class Doc(NamedTuple):
    """A benchmark document: its id in the benchmark, title and text."""

    key: str
    title: str
    text: str


def read_jsonl(path: Path) -> list[dict[str, Any]]:
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
                  log: Callable[[str], None] | None = None) -> tuple[Any, dict[str, str], IndexReport]:
    """Write the corpus of benchmark `name` and build (or update) its qa index.

    Returns:
        The loaded `Index`, the map from index doc_id to benchmark id, and the build report.
    """
    base = CACHE / name
    keys = write_corpus(docs, base / "corpus")
    index, report = prepare_folder_index(base, settings, log)
    return index, keys, report


def prepare_folder_index(base: Path, settings: Settings,
                         log: Callable[[str], None] | None = None) -> tuple[Any, IndexReport]:
    """Build (or update) the index of the corpus folder `base/corpus` in `base/index`, keeping a
    from-scratch build's cost in `base/build.json`; returns the loaded index and the report."""
    report = build_index(base / "corpus", base / "index", settings=settings, log=log)
    if report.chunks_embedded and not report.unchanged:
        # A build from scratch: keep its cost, which later (cached) runs report.
        stats = {"seconds": report.seconds, "documents": report.documents, "chunks": report.chunks,
                 "sentences": report.sentences, "when": time.strftime("%Y-%m-%d %H:%M")}
        (base / "build.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
    return load_index(base / "index"), report


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
        self.name = embedder.name
        self.dimension = embedder.dimension
        self._embedder = embedder
        unique = sorted({clean_query(t) for t in texts})
        vectors = embedder.embed(unique, batch_size=settings.embed_batch_size,
                                 progress=settings.show_progress)
        self._vectors = dict(zip(unique, vectors, strict=True))

    def embed(self, texts: Sequence[str], *, batch_size: int = 64,
              progress: bool | Progress = False) -> np.ndarray:
        if all(t in self._vectors for t in texts):
            return np.stack([self._vectors[t] for t in texts]) if texts else np.zeros((0, self.dimension))
        return np.asarray(self._embedder.embed(texts, batch_size=batch_size, progress=progress))


# ---------------------------------------------------------------------------------------------
# Helpers shared by the benchmarks


def settings_json(settings: Settings) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(settings).items()
            if not k.startswith("auth")}


def progress(items: Iterable[Any], settings: Settings, desc: str, total: int | None = None) -> Iterable[Any]:
    from tqdm import tqdm

    return tqdm(items, desc=desc, total=total, disable=not settings.show_progress, leave=False)


def sample_items(items: list[Any], sample: int | None) -> list[Any]:
    """A fixed, seeded sample of `items` in their original order (all of them without `sample`)."""
    if sample is None or sample >= len(items):
        return items
    if sample < 1:
        raise BenchmarkDataError(f"Invalid --sample value: {sample}. It must be 1 or more.")
    keep = set(random.Random(SAMPLE_SEED).sample(range(len(items)), sample))
    return [item for i, item in enumerate(items) if i in keep]


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


CHROMIUM = Path("/usr/bin/chromium")


def print_pdf(page: str, target: Path, furniture: bool = False) -> Path:
    """Print an HTML page to PDF with Chromium; with `furniture`, its default running header
    (date, title) and footer (file address, page "n/m") on every page, as users' PDFs have."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "page.html"
        source.write_text(page, encoding="utf-8")
        subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", *([] if furniture else ["--no-pdf-header-footer"]),
                        f"--user-data-dir={tmp}/profile", f"--print-to-pdf={target}", source.as_uri()],
                       check=True, capture_output=True, timeout=180)
    return target
