"""Tests for qa/bench/: the data-missing message, the corpus and ranking helpers, and both
benchmarks end to end on tiny fixtures written in the layout of the real data."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import qa
from qa.bench import BENCHMARKS, common, run_bench
from qa.bench.wordnet import DEBIAN_WORDNET
from qa.cli import main
from qa.errors import BenchmarkDataError

from .conftest import ROOT


def test_doc_ranking_keeps_each_document_at_its_best_chunk() -> None:
    import numpy as np

    codes = np.array([0, 0, 1, 2, 1])
    assert common.doc_ranking(np.array([4, 1, 2, 0, 3]), codes, 10).tolist() == [1, 0, 2]
    assert common.doc_ranking(np.array([4, 1, 2, 0, 3]), codes, 2).tolist() == [1, 0]


def test_sample_is_seeded_and_keeps_order() -> None:
    items = list(range(100))
    first = common.sample_items(items, 10)
    assert first == common.sample_items(items, 10) == sorted(first)
    assert len(first) == 10
    assert common.sample_items(items, None) == items
    with pytest.raises(BenchmarkDataError, match="--sample"):
        common.sample_items(items, 0)


def test_write_corpus_mirrors_the_documents(tmp_path: Path) -> None:
    docs = [common.Doc("Super_Bowl_50#0", "Super Bowl 50", "Denver won."), common.Doc("7", "", "No title.")]
    (tmp_path / "stale.txt").parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "stale.txt").write_text("old", encoding="utf-8")
    keys = common.write_corpus(docs, tmp_path)
    assert keys == {"Super_Bowl_50_0.txt": "Super_Bowl_50#0", "7.txt": "7"}
    assert (tmp_path / "Super_Bowl_50_0.txt").read_text(encoding="utf-8") == "Super Bowl 50\n\nDenver won.\n"
    assert not (tmp_path / "stale.txt").exists()


def test_missing_data_tells_the_user_where_to_get_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(BenchmarkDataError, match="--data"):
        common.data_folder("scifact", tmp_path / "nowhere")
    assert main(["bench", "squad", "--data", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "SQuAD v1.1" in err and "--data" in err and "nowhere" in err and "Traceback" not in err


def test_every_benchmark_is_one_module_registered_once_and_listed_by_qa_bench(
        capsys: pytest.CaptureFixture[str]) -> None:
    import importlib

    names = [b.name for b in BENCHMARKS]
    assert len(names) == len(set(names)) and {"latency", "fairness", "squad", "scifact"} <= set(names)
    for entry in BENCHMARKS:
        assert entry.module == f"qa.bench.{entry.name}" and entry.description
        assert callable(importlib.import_module(entry.module).run)
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    shown = capsys.readouterr().out
    assert all(f"  {b.name:<10} {b.description}" in shown for b in BENCHMARKS)
    with pytest.raises(BenchmarkDataError, match="Choose from scifact, squad"):
        run_bench("nosuch", settings=qa.Settings())


# ---- end to end, on tiny fixtures in the real layout ------------------------------------------

SCIFACT_DOCS = [
    ("101", "Vitamin D and bone fractures", "Vitamin D supplements reduce hip fractures in elderly women."),
    ("102", "Statins and muscle pain", "Statin therapy causes muscle pain in a minority of patients."),
    ("103", "Coffee and sleep", "Caffeine taken late in the day shortens sleep duration in adults."),
    ("104", "Exercise and depression", "Aerobic exercise lowers depressive symptoms in adolescents."),
    ("105", "Salt and blood pressure", "Reducing dietary sodium lowers systolic blood pressure."),
]
SCIFACT_QUERIES = [("1", "Vitamin D prevents fractures.", "101"), ("2", "Statins cause muscle pain.", "102"),
                   ("3", "Caffeine shortens sleep.", "103"), ("4", "Exercise helps depression.", "104"),
                   ("5", "Less salt lowers blood pressure.", "105")]


def _tiny_scifact(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    with gzip.open(folder / "corpus.jsonl.gz", "wt", encoding="utf-8") as fh:
        for key, title, text in SCIFACT_DOCS:
            fh.write(json.dumps({"_id": key, "title": title, "text": text, "metadata": {}}) + "\n")
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t, "metadata": {}}) + "\n" for q, t, _ in SCIFACT_QUERIES),
        encoding="utf-8")
    header = "query-id\tcorpus-id\tscore\n"
    rows = [f"{q}\t{d}\t1\n" for q, _, d in SCIFACT_QUERIES]
    (folder / "qrels" / "train.tsv").write_text(header + "".join(rows[:3]), encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text(header + "".join(rows[3:]), encoding="utf-8")
    return folder


@pytest.mark.slow
def test_scifact_end_to_end_on_a_tiny_fixture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _tiny_scifact(tmp_path / "scifact")
    monkeypatch.chdir(tmp_path)  # the benchmark's cache goes under ./.qa_cache
    lines: list[str] = []
    returned = run_bench("scifact", data=data, report_dir=tmp_path / "report", settings=settings,
                               echo=lines.append)
    printed = "\n".join(lines)
    assert "nDCG@10" in printed and "Threads:" in printed and "LangChain" in printed
    assert capsys.readouterr().out == ""   # the library prints nothing; `echo` shows the tables
    results = json.loads((tmp_path / "report" / "results.json").read_text(encoding="utf-8"))
    assert results == json.loads(json.dumps(returned, default=str))
    assert results["test"]["qa hybrid, as configured"]["ndcg@10"] == 1.0
    assert results["tuning"]["split"] == "train"
    assert {"scifact_ndcg.png", "scifact_tuning.png", "report.md"} <= {
        p.name for p in (tmp_path / "report").iterdir()}
    assert (tmp_path / ".qa_cache" / "bench" / "scifact" / "corpus" / "101.txt").exists()


@pytest.mark.slow
def test_indexing_bench_end_to_end_on_a_tiny_fixture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _tiny_scifact(tmp_path / "scifact")
    monkeypatch.chdir(tmp_path)
    lines: list[str] = []
    results = run_bench("indexing", data=data, report_dir=tmp_path / "report", settings=settings,
                              full=True, echo=lines.append)
    printed = "\n".join(lines)
    assert "LangChain split + SentenceTransformer.encode" in printed and "Threads:" in printed
    assert capsys.readouterr().out == ""
    against = results["against_langchain"]
    assert against["documents"] == len(SCIFACT_DOCS) and against["langchain_chunks"] == len(SCIFACT_DOCS)
    assert set(against["median_ratio"]) == {"qa, sentences pooled", "qa, sentences separate"}
    assert all(ratio > 0 for ratio in against["median_ratio"].values())
    full = results["full"]
    assert list(full)[0].startswith("before") and len(full) == 4
    for figures in full.values():
        assert figures["chunks"] == len(SCIFACT_DOCS) and figures["seconds"] > 0
        assert figures["ndcg@10"] == 1.0  # two test claims, each naming its one abstract
    assert (tmp_path / "report" / "report.md").exists()


@pytest.mark.slow
def test_scale_bench_end_to_end_on_a_tiny_fixture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from dataclasses import replace

    data = _tiny_scifact(tmp_path / "scifact")
    monkeypatch.chdir(tmp_path)
    lines: list[str] = []
    results = run_bench("scale", data=data, report_dir=tmp_path / "report",
                              settings=replace(settings, ann_threshold=1500), sizes=(1000, 2000), echo=lines.append)
    printed = "\n".join(lines)
    assert "synthetic vectors to the same statistics" in printed and "Threads:" in printed
    assert capsys.readouterr().out == ""
    small, large = results["sizes"]["1000"], results["sizes"]["2000"]
    assert small["dense"].startswith("Flat") and large["dense"].startswith("IVF")
    assert small["recall_at_10"] == 1.0 and large["recall_at_10"] >= 0.8
    for figures in (small, large):
        assert figures["open_s"] > 0 and figures["rss_after_open_bytes"] > figures["rss_before_open_bytes"]
        assert figures["dense_p50_ms"] > 0 and figures["retrieve_p50_ms"] > 0
    assert small["synthetic_chunks"] == 1000 - len(SCIFACT_DOCS)
    built = qa.load_index(tmp_path / ".qa_cache" / "bench" / "scale" / "2000")
    assert len(built.chunks) == 2000 and built.dense.ntotal == 2000
    doc = built.documents["synthetic/0000000.txt"]
    first = built.chunks_of(doc.doc_id)
    assert len(first) == 4 and first[0].start == 0 and first[-1].end == doc.chars
    assert {"scale.png", "report.md"} <= {p.name for p in (tmp_path / "report").iterdir()}


def _tiny_squad(root: Path) -> Path:
    paragraphs = [
        {"pid": "Super_Bowl_50#0", "title": "Super_Bowl_50", "para_index": 0,
         "context": "The Denver Broncos defeated the Carolina Panthers 24–10. The game was played at "
                    "Levi's Stadium in Santa Clara, California."},
        {"pid": "Warsaw#0", "title": "Warsaw", "para_index": 0,
         "context": "Warsaw is the capital of Poland. The Vistula River flows through the city."},
    ]
    questions = [
        {"id": "q1", "pid": "Super_Bowl_50#0", "title": "Super_Bowl_50",
         "question": "Where was Super Bowl 50 played?", "answers": ["Levi's Stadium"]},
        {"id": "q2", "pid": "Warsaw#0", "title": "Warsaw",
         "question": "Which river flows through Warsaw?", "answers": ["Vistula River", "Vistula"]},
    ]
    for name, extra in (("squad-v1.1-dev", {}), ("squad-v2.0-dev", {"is_impossible": False})):
        folder = root / name
        folder.mkdir(parents=True)
        rows = [{**q, **extra} for q in questions]
        if extra:
            rows.append({"id": "q3", "pid": "Warsaw#0", "title": "Warsaw",
                         "question": "Which river flows through Berlin?", "answers": [], "is_impossible": True})
        (folder / "paragraphs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in paragraphs), encoding="utf-8")
        (folder / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in rows), encoding="utf-8")
    return root / "squad-v1.1-dev"


@pytest.mark.slow
def test_squad_end_to_end_on_a_tiny_fixture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _tiny_squad(tmp_path / "benchmarks")
    monkeypatch.chdir(tmp_path)
    lines: list[str] = []
    run_bench("squad", data=data, report_dir=tmp_path / "report", settings=settings, echo=lines.append)
    printed = "\n".join(lines)
    assert "R@5" in printed and "ROC AUC" in printed and "all 2." in printed
    results = json.loads((tmp_path / "report" / "results.json").read_text(encoding="utf-8"))
    # Only the held-out article (Warsaw, the second title) is scored: one v1.1 question, two v2.0 ones.
    assert results["held_out_articles"] == ["Warsaw"] and results["questions"] == 1
    assert results["retrieval"]["hybrid"]["recall@1"] == 1.0
    assert results["gold_paragraph"]["1.1"]["reader"]["total"] == 1
    assert results["gold_paragraph"]["1.1"]["reader"]["f1"] == 100.0   # "Vistula River", read from the paragraph
    # The shipped reading (whole passages) beside the reading before it (three windows), same reader.
    assert list(results["answers"]) == ["reader", "reader, 3 windows", "sentence scorer"]
    for answerer in ("reader", "reader, 3 windows", "sentence scorer"):
        assert 0.0 <= results["answers"][answerer]["answer_contains_gold"] <= 1.0
        assert 0.0 <= results["abstention"][answerer]["v2_accuracy"] <= 1.0
        assert (tmp_path / "report" / f"squad2_abstention_{answerer.replace(', ', '_').replace(' ', '_')}.png").exists()
        # By overlap: "Which river flows through Warsaw?" shares river and flows (of three) with
        # "The Vistula River flows through the city.", so it sits in the top bucket.
        by_overlap = results["answers"][answerer]["by_overlap"]
        assert [b["questions"] for b in by_overlap.values()] == [0, 0, 1]
        assert by_overlap["> 0.6"]["answer_contains_gold"] == results["answers"][answerer]["answer_contains_gold"]
        v2_buckets = results["abstention"][answerer]["by_overlap"].values()
        assert sum(b["answerable"] + b["unanswerable"] for b in v2_buckets) == 2
    assert results["overlap"]["v1.1 all"]["mean_overlap"] == pytest.approx(2 / 3)
    assert results["overlap"]["v2.0 unanswerable"]["by_best_overlap_sentence"] == 1
    report = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "## Lexical overlap" in report and "> 0.6" in report
    if (DEBIAN_WORDNET / "data.noun").is_file():
        paraphrased = results["paraphrased"]
        assert paraphrased["v1.1"]["changed"] == 1 and paraphrased["v2.0"]["questions"] == 2
        assert paraphrased["v1.1"]["mean_overlap_after"] < paraphrased["v1.1"]["mean_overlap_before"]
        assert set(paraphrased["v1.1"]["answers"]) == set(paraphrased["v2.0"]["abstention"]) == {
            "reader", "reader, 3 windows", "sentence scorer"}
        assert paraphrased["examples"][0]["question"] == "Which river flows through Warsaw?"
        assert "reader, paraphrased" in report


def test_squad_without_wordnet_skips_the_paraphrased_variant_in_one_line(tmp_path: Path) -> None:
    from qa.bench.common import read_jsonl
    from qa.bench.report import Report
    from qa.bench.squad import question_variants

    data = _tiny_squad(tmp_path / "benchmarks")
    lines: list[str] = []
    out = Report("tiny", tmp_path / "report", lines.append)
    paragraphs = read_jsonl(data / "paragraphs.jsonl")
    questions = read_jsonl(data / "questions.jsonl")
    questions_v2 = read_jsonl(data.parent / "squad-v2.0-dev" / "questions.jsonl")
    variants, variants_v2 = question_variants(out, questions, questions_v2, paragraphs, paragraphs, tmp_path / "none")
    assert [v.name for v in variants] == [v.name for v in variants_v2] == ["original"]
    # super, bowl, 50, played: only "played" is in "The game was played at Levi's Stadium ..."
    assert variants[0].overlaps == pytest.approx([1 / 4, 2 / 3])
    skipped = [line for line in lines if "Paraphrased variant skipped" in line]
    assert len(skipped) == 1 and "apt-get install wordnet-base" in skipped[0]
    assert "apt-get install wordnet-base" in out.data["paraphrased"]["skipped"]


@pytest.mark.slow
def test_fairness_refuses_hostile_requests_and_answers_the_rest(tmp_path: Path, settings) -> None:
    from qa.bench.fairness import run_fairness

    lines: list[str] = []
    r = run_fairness(tmp_path / "report", settings.replace(corpus=ROOT / "seeds"), echo=lines.append, rounds=1)
    assert r["idle_ms"]["n"] == r["in_flight_ms"]["n"] == r["maximal_ms"]["n"] == r["flood_ms"]["n"] == 6
    assert r["v1_ms"]["n"] == 6 and sum(r["in_flight_requests"].values()) == 3 * 4 * 6
    assert r["in_flight_requests"] == {
        "history as an 8,000-character string: error": 6, "10,000-turn history: HTTP 413": 6,
        "1,000,000-character question: HTTP 413": 6, "history of 3,000 plain strings: error": 6,
        "2,000-character question, 400-message history: answered": 24,
        "v1 10,000 messages: HTTP 413": 6, "v1 1,000,000-character question: HTTP 413": 6,
        "v1 1,001 messages: HTTP 400": 6, "v1 2,000-character question: answered": 6}
    assert "p50 / idle" in "\n".join(lines) and (tmp_path / "report" / "report.md").exists()


def test_documents_bench_writes_each_form_and_judges_quotes_by_the_article(tmp_path: Path) -> None:
    from qa.bench.documents import CHROMIUM, WRAP_COLUMNS, article_files, starts_mid_sentence
    from qa.load import load_document

    paragraphs = [{"title": "Harbour_Town", "context": "The harbour opened in 1901. Its first master was "
                   "Ingrid Solvang, who ran it for thirty years and kept a diary of every ship. " * 3},
                  {"title": "Harbour_Town", "context": "A second paragraph follows."}]
    for form in ("plain", "wrapped"):
        article_files(paragraphs, form, tmp_path / form, lambda _line: None)
        text = (tmp_path / form / "Harbour_Town.txt").read_text(encoding="utf-8")
        assert text.startswith("Harbour Town\n\nThe harbour opened in 1901.")
        assert max(len(line) for line in text.splitlines()) <= (WRAP_COLUMNS if form == "wrapped" else 10_000)
    assert (tmp_path / "wrapped" / "Harbour_Town.txt").read_text(encoding="utf-8").count("\n") > 4
    paras = [" ".join(p["context"].split()) for p in paragraphs]
    assert starts_mid_sentence("Its first master was Ingrid Solvang", paras) is False
    assert starts_mid_sentence("who ran it for thirty years", paras) is True
    assert starts_mid_sentence("A title that is nowhere", paras) is None
    if CHROMIUM.exists():
        article_files(paragraphs, "pdf", tmp_path / "pdf", lambda _line: None)
        doc = load_document(tmp_path / "pdf" / "Harbour_Town.pdf", "Harbour_Town.pdf")
        assert doc.kind == "pdf" and "Ingrid Solvang" in doc.text
        body = "".join(doc.text[s:e] for s, e in doc.segments)
        assert "file://" in doc.text and "file://" not in body      # Chromium's footer is furniture


@pytest.mark.slow
def test_reading_bench_compares_every_reading_on_the_same_questions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings
) -> None:
    from qa.bench.reading import SETTINGS, bench_reading

    data = _tiny_squad(tmp_path / "benchmarks")
    rows = [json.loads(line) for line in (ROOT / "eval" / "qa_pairs.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    kept = [next(r for r in rows if r["answerable"]), next(r for r in rows if not r["answerable"])]
    qa_set = tmp_path / "two.jsonl"
    qa_set.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    own_words = tmp_path / "own_words_dev.jsonl"
    own_words.write_text(json.dumps({"pid": "Super_Bowl_50#0", "question": "Which arena hosted the big game?",
                                     "answerable": True, "answer": "Levi's Stadium", "kind": "paraphrase",
                                     "note": ""}) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    lines: list[str] = []
    report = bench_reading(settings.replace(corpus=ROOT / "seeds"), tmp_path / "report", data=data.parent,
                           echo=lines.append, qa_set=qa_set, own_words=own_words)
    report.save()
    seeds = report.data["two.jsonl"]
    assert list(seeds) == [label for label, *_ in SETTINGS]
    for figures in seeds.values():
        assert 0.0 <= figures["holds_answer"] <= 1.0 and figures["auc"] is not None and figures["p50_ms"] > 0
    assert seeds[SETTINGS[0][0]]["ratio"] == 1.0
    # The training article (Super_Bowl_50) only: its one question, as asked and paraphrased.
    assert "SQuAD v2.0 training articles" in report.data
    dev = report.data["SQuAD v2.0 training articles, users' own words (development)"]
    assert all(f["auc"] is None and 0.0 <= f["holds_answer"] <= 1.0 for f in dev.values())
    assert "Threads: " in "\n".join(lines) and (tmp_path / "report" / "report.md").is_file()
