"""Sentence boundaries against a gold set: which segmenter qa uses, chosen by measurement.

The gold set, `eval/sentences/gold.jsonl`, lists every sentence (and heading, list item, table
row, byline) of a few documents as their authors wrote them, annotated by hand from the texts
alone: two seed articles, a hard-wrapped plain-text report, an e-mail with a quoted reply, a
report printed to PDF by Chromium (its running header and footer listed as furniture), and
SQuAD v1.1 paragraphs of training articles (referenced by id; read from the benchmark data,
never copied into the repository).

Each segmenter is scored twice: on qa's layout view (wrapped lines joined, `layout`) and line
by line (every line break ends a sentence, as qa did before, `lines`). A predicted sentence
counts when its `(start, end)` equals a gold sentence's, both trimmed and without a leading
list, heading or quote marker. Reported: precision, recall and F1 per document kind and over
all, and milliseconds per 1,000 characters.
"""

# the other segmenters (sentencex, blingfire, spaCy), each optional are imported inside the
# functions that use them, on purpose: importing this module stays cheap (`import qa` loads neither
# torch nor FAISS, and `qa --help` starts at once).

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qa.bench.common import DATA_ROOT, FOLDERS, read_jsonl
from qa.bench.registry import BenchRun
from qa.bench.report import Report
from qa.errors import BenchmarkDataError
from qa.index.rows import sentence_runs
from qa.load import load_document
from qa.sentences import MARKER, Cuts, pysbd_cuts, split_sentences, wrap_width

GOLD = Path("eval") / "sentences" / "gold.jsonl"
KINDS = ("seed", "squad", "wrapped", "email", "pdf")


def _sentencex_cuts(unit: str) -> list[int]:
    import sentencex

    return _located([str(s) for s in sentencex.segment("en", unit)], unit)


def _blingfire_cuts(unit: str) -> list[int]:
    import blingfire

    return [int(end) for _, end in blingfire.text_to_sentences_and_offsets(unit)[1][:-1]]


_SPACY: list[Any] = []


def _spacy_cuts(unit: str) -> list[int]:
    if not _SPACY:
        import spacy

        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        _SPACY.append(nlp)
    return [int(s.end_char) for s in _SPACY[0](unit).sents][:-1]


def _located(pieces: list[str], unit: str) -> list[int]:
    """The end offsets in `unit` of consecutive `pieces` of it (whitespace may differ)."""
    cuts, at = [], 0
    for piece in pieces[:-1]:
        piece = piece.strip()
        found = unit.find(piece, at) if piece else -1
        if found >= 0:
            at = found + len(piece)
            cuts.append(at)
    return cuts


SEGMENTERS: dict[str, tuple[str, Cuts]] = {
    "pysbd": ("pysbd", pysbd_cuts),
    "sentencex": ("sentencex", _sentencex_cuts),
    "blingfire": ("blingfire", _blingfire_cuts),
    "spacy sentencizer": ("spacy", _spacy_cuts),
}


def gold_documents(gold: Path = GOLD, squad: Path | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """The gold documents with their text, body ranges and gold spans, and notes on any left out
    (SQuAD paragraphs when the benchmark data is not beside the repository)."""
    root = gold.resolve().parents[2]
    notes: list[str] = []
    contexts: dict[str, str] = {}
    squad_file = (squad or DATA_ROOT / FOLDERS["squad"]) / "paragraphs.jsonl"
    rows = [json.loads(line) for line in gold.read_text(encoding="utf-8").splitlines() if line.strip()]
    if any(r["source"].startswith("squad-v1.1:") for r in rows):
        if squad_file.is_file():
            contexts = {p["pid"]: p["context"] for p in read_jsonl(squad_file)}
        else:
            notes.append(f"SQuAD paragraphs left out: {squad_file} not found (the benchmark data lies in "
                         "../shared/benchmarks beside the repository)")
    docs = []
    for row in rows:
        source = row["source"]
        if source.startswith("squad-v1.1:"):
            pid = source.split(":", 1)[1]
            if pid not in contexts:
                continue
            text = contexts[pid]
            runs: list[tuple[int, int, list[tuple[int, int]]]] = [(0, len(text), [])]
            if hashlib.sha256(text.encode("utf-8")).hexdigest() != row["context_sha256"]:
                raise BenchmarkDataError(f"SQuAD paragraph {pid} differs from the one annotated in {gold}.")
            # SQuAD text is not copied into the repository: its gold sentences are offsets.
            spans = {_normal(text, s, e) for s, e in row["spans"]}
        else:
            document = load_document(root / source, Path(source).name)
            text, runs = document.text, sentence_runs(document)
            spans = align(text, row["sentences"], row.get("furniture", []))
        docs.append({"source": source, "kind": row["kind"], "text": text, "runs": runs, "gold": spans})
    return docs, notes


def align(text: str, units: list[str], furniture: list[str]) -> set[tuple[int, int]]:
    """The `(start, end)` of each gold unit in `text`, found in order; a whitespace run in a unit
    matches any run of whitespace and e-mail quote marks, a hyphen may be followed by a line
    break, and furniture lines (blanked first) may lie inside a unit.

    Raises:
        BenchmarkDataError: a unit is not found (the gold set and the document disagree).
    """
    blank = list(text)
    at = 0
    for line in furniture:   # whole lines, in order
        found = re.compile(r"^[ \t]*" + r"\s+".join(map(re.escape, line.split())) + r"[ \t]*$", re.M).search(text, at)
        if found:
            blank[found.start():found.end()] = " " * (found.end() - found.start())
            at = found.end()
    searchable = "".join(blank)
    spans: set[tuple[int, int]] = set()
    at = 0
    for unit in units:
        words = [re.escape(w).replace(r"\-", r"-\s*") for w in unit.split()]
        match = re.compile(r"[\s>]+".join(words)).search(searchable, at)
        if match is None:
            raise BenchmarkDataError(f"Gold sentence not found in order: {unit[:80]!r}")
        spans.add(_normal(text, match.start(), match.end()))
        at = match.end()
    return spans


def _normal(text: str, start: int, end: int) -> tuple[int, int]:
    marker = MARKER.match(text, start, end)
    start = marker.end() if marker else start
    while start < end and text[start].isspace():
        start += 1
    return start, end


def predict(doc: dict[str, Any], cuts: Cuts, layout: bool) -> set[tuple[int, int]]:
    text = doc["text"]
    width = wrap_width(text)
    spans: set[tuple[int, int]] = set()
    for start, end, skip in doc["runs"]:
        spans.update(_normal(text, s, e) for s, e in split_sentences(text, start, end, width, skip,
                                                                      layout=layout, cuts=cuts))
    return spans


def _prf(hits: int, predicted: int, gold: int) -> tuple[float, float, float]:
    p = hits / predicted if predicted else 0.0
    r = hits / gold if gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def bench_sentences(report_dir: Path, gold: Path = GOLD, squad: Path | None = None,
                    echo: Callable[[str], None] | None = None) -> Report:
    """Score every installed segmenter, with and without qa's layout view, on the gold set."""
    if not gold.is_file():
        raise BenchmarkDataError(f"Sentence gold set not found: {gold}. Run from the repository root.")
    out = Report("Sentence boundaries: segmenters against the annotated gold set", report_dir, echo)
    docs, notes = gold_documents(gold, squad)
    for note in notes:
        out.text(note)
    kinds = [k for k in KINDS if any(d["kind"] == k for d in docs)]
    units = {k: sum(len(d["gold"]) for d in docs if d["kind"] == k) for k in kinds}
    out.text(f"Gold: {len(docs)} documents, " + ", ".join(f"{k} {units[k]}" for k in kinds) + " sentences.")
    chars = sum(len(d["text"]) for d in docs)
    rows: list[list[Any]] = []
    results: dict[str, Any] = {}
    for name, (module, cuts) in SEGMENTERS.items():
        try:
            __import__(module)
        except ImportError:
            out.text(f"{name}: not installed (pip install -e '.[segmenters]'), left out.")
            continue
        cuts(" Warm up. ")
        for layout in (True, False):
            per_kind: dict[str, Any] = {}
            totals = [0, 0, 0]
            started = time.perf_counter()
            predicted = [predict(d, cuts, layout) for d in docs]
            ms = 1000 * (time.perf_counter() - started) / (chars / 1000)
            for kind in kinds:
                hits = n_pred = n_gold = 0
                for d, pred in zip(docs, predicted, strict=True):
                    if d["kind"] == kind:
                        hits += len(pred & d["gold"])
                        n_pred += len(pred)
                        n_gold += len(d["gold"])
                per_kind[kind] = _prf(hits, n_pred, n_gold)[2]
                totals = [totals[0] + hits, totals[1] + n_pred, totals[2] + n_gold]
            p, r, f1 = _prf(*totals)
            label = f"{name}, {'layout' if layout else 'lines'}"
            results[label] = {"precision": p, "recall": r, "f1": f1, "f1_by_kind": per_kind,
                              "ms_per_1k_chars": ms}
            rows.append([label, *(per_kind[k] for k in kinds), p, r, f1, f"{ms:.2f}"])
    out.table(["segmenter, line breaks", *(f"F1 {k}" for k in kinds), "precision", "recall", "F1",
               "ms / 1k chars"], rows)
    out.text("A sentence counts when its start and end equal a gold sentence's (trimmed, without a "
             "leading list, heading or quote marker). 'layout': wrapped lines joined by qa's layout view; "
             "'lines': every line break ends a sentence.")
    out.threads()
    out.data.update({"gold_documents": len(docs), "gold_sentences": units, "segmenters": results})
    return out


def run(job: BenchRun) -> Report:
    """`qa bench sentences` (qa.bench.registry): --data is the SQuAD v1.1 folder."""
    return bench_sentences(job.report_dir, squad=job.data, echo=job.echo)
