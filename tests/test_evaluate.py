"""Metrics on tiny inputs with answers worked out by hand, and `qa eval` end to end on the seeds."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from qa.evaluation import (
    AnswerRecord,
    QAPair,
    QASetError,
    Span,
    abstention_metrics,
    answer_metrics,
    calibrate_abstention,
    citation_is_correct,
    citation_metrics,
    load_qa_set,
    load_records,
    run_eval,
    score_answer,
    set_figures,
    set_role,
    summary,
    write_report,
)
from qa.types import Answer, Citation

DOC = "001_176dacc757c32b0f.txt"
OTHER = "004_99cfcbda6ab29d43.txt"


# ---- retrieval ----------------------------------------------------------------------------
















# ---- answers ------------------------------------------------------------------------------










def test_citation_is_right_by_overlap_or_by_quoting_a_gold_answer():
    gold = [Span(DOC, 100, 200)]
    inside = Citation(1, DOC, "t", "some quote", 150, 180)
    elsewhere = Citation(2, OTHER, "t", "stored in Virginia and backed up", 5, 37)
    wrong = Citation(3, OTHER, "t", "something else", 5, 19)
    assert citation_is_correct(inside, gold, ["Virginia"])
    assert citation_is_correct(elsewhere, gold, ["Virginia"])
    assert not citation_is_correct(wrong, gold, ["Virginia"])


def test_score_answer_uses_the_short_answer_for_em_and_checks_quotes():
    source = "Data is stored in Virginia with a back-up in Singapore."
    pair = QAPair("q1", "Where is the data?", True, ("Virginia",), (Span(DOC, 0, len(source)),))
    cite = Citation(1, DOC, "t", source, 0, len(source), None, 18, 26)
    reply = Answer(f"{source} [1]", (cite,), False, (), "Where is the data?", 0.8)
    record = score_answer(pair, reply, {DOC: source}, latency_ms=12.0)
    assert record.correct and record.exact_match == 1.0 and record.f1 == 1.0
    assert record.short_answer == "Virginia"
    assert (record.citations, record.citations_correct, record.citations_verbatim) == (1, 1, 1)

    bent = Citation(1, DOC, "t", "Data is kept in Virginia", 0, 24)    # not the source text
    record = score_answer(pair, Answer("Virginia [1]", (bent,), False, ()), {DOC: source}, 1.0)
    assert record.citations_verbatim == 0

    unanswerable = QAPair("q2", "Who founded it?", False, kind="unanswerable")
    assert score_answer(unanswerable, Answer("The documents don't say.", (), True, ()), {}, 1.0).correct


def records() -> list[AnswerRecord]:
    """Six questions: 4 answerable (2 right, 1 wrong, 1 abstained), 2 unanswerable (1 abstained)."""
    return [
        AnswerRecord("a", "fact", True, False, True, 1.0, 1.0, 2, 2, 2, 0.9),
        AnswerRecord("b", "fact", True, False, True, 0.0, 0.5, 1, 1, 1, 0.7),
        AnswerRecord("c", "name", True, False, False, 0.0, 0.0, 1, 0, 1, 0.4),
        AnswerRecord("d", "date", True, True, False, confidence=0.2),
        AnswerRecord("e", "unanswerable", False, True, True, confidence=0.1),
        AnswerRecord("f", "unanswerable", False, False, False, 0.0, 0.0, 1, 0, 1, 0.45),
    ]


def test_answer_metrics_count_each_kind_of_failure():
    m = answer_metrics(records())
    assert m.accuracy == 0.5                  # a, b of a-d
    assert m.exact_match == 0.25 and m.f1 == pytest.approx(1.5 / 4)
    assert m.wrong_answers == 1               # c
    assert m.answered_unanswerable == 1       # f
    assert m.false_abstentions == 1           # d
    assert m.overall_accuracy == pytest.approx(3 / 6)   # a, b, e


def test_citation_metrics():
    m = citation_metrics(records())
    assert m.precision == pytest.approx(3 / 4)   # 2 + 1 + 0 right of 2 + 1 + 1 given (answerable only)
    assert m.recall == pytest.approx(2 / 4)      # a and b have a right citation
    assert m.verbatim == 1.0
    assert m.per_answer == pytest.approx(5 / 4)  # a, b, c, f answered


def test_abstention_metrics_treat_abstaining_on_unanswerable_as_positive():
    m = abstention_metrics(records())
    assert m.precision == 0.5 and m.recall == 0.5 and m.f1 == 0.5   # e of {d, e}; e of {e, f}
    assert (m.abstained, m.unanswerable, m.correct_abstentions) == (2, 2, 1)


def test_the_first_citation_cites_the_gold_sentence_only_when_it_overlaps_the_evidence():
    source = "Data is stored in Virginia. A back-up is kept in Virginia too."
    pair = QAPair("q1", "Where is the data?", True, ("Virginia",), (Span(DOC, 0, 27),))
    on_evidence = Citation(1, DOC, "t", source[:27], 0, 27)
    elsewhere = Citation(1, DOC, "t", source[28:], 28, len(source))   # holds the answer, not the gold sentence
    first = score_answer(pair, Answer("x [1]", (on_evidence,), False, ()), {DOC: source}, 1.0)
    second = score_answer(pair, Answer("x [1]", (elsewhere,), False, ()), {DOC: source}, 1.0)
    assert first.first_cites_evidence and first.first_right
    assert not second.first_cites_evidence and second.first_right


def test_set_figures_are_shares_of_answerable_and_unanswerable_questions():
    from dataclasses import replace

    rows = records()
    rows[0] = replace(rows[0], first_cites_evidence=True)
    # With abstention off: d (abstained before) answers right, c stays wrong, b is refused anyway.
    opened = [rows[0], replace(rows[1], abstained=True, correct=False), rows[2],
              replace(rows[3], abstained=False, correct=True), rows[4], rows[5]]
    f = set_figures(rows, opened)
    assert (f.answerable, f.unanswerable) == (4, 2)
    assert f.correct == 0.5                          # a, b of a-d
    assert f.gold_sentence_cited == 0.25             # a
    assert f.false_abstentions == 0.25               # d
    assert f.abstained_unanswerable == 0.5           # e of e, f
    # Confidence: answerable 0.9, 0.7, 0.4, 0.2 vs unanswerable 0.1, 0.45: 6 of 8 pairs ordered right.
    assert f.confidence_roc_auc == pytest.approx(6 / 8)
    assert f.quotes_hold_answer_no_abstention == 0.5 and f.still_abstained == 1   # a, d; b refused
    assert set_figures(rows).quotes_hold_answer_no_abstention is None
    assert set_role("eval/own_words.jsonl").startswith("TEST") and set_role("mine.jsonl") == ""


def test_calibrate_abstention_sweeps_thresholds():
    result = calibrate_abstention(records(), [0.0, 0.42, 0.5, 0.8])
    by_t = {row.threshold: row for row in result.rows}
    assert by_t[0.0].overall_accuracy == pytest.approx(3 / 6)
    # At 0.5, c (0.4, wrong) and f (0.45, unanswerable) abstain: a, b, c->abstain-wrong, e, f right.
    assert by_t[0.5].overall_accuracy == pytest.approx(4 / 6)
    assert by_t[0.5].wrong_answers == 0 and by_t[0.5].false_abstentions == 2
    assert by_t[0.8].answer_accuracy == 0.25
    assert result.threshold == 0.5





# ---- the set file -------------------------------------------------------------------------

def test_a_missing_set_is_a_clear_error(tmp_path: Path):
    with pytest.raises(QASetError, match="QA set not found"):
        load_qa_set(tmp_path / "nope.jsonl")


def test_a_bad_json_line_names_its_line_number(tmp_path: Path):
    path = tmp_path / "set.jsonl"
    good = json.dumps({"id": "q1", "question": "Who?", "answerable": False, "kind": "unanswerable"})
    path.write_text(f"{good}\n\n{{not json\n", encoding="utf-8")
    with pytest.raises(QASetError, match="line 3"):
        load_qa_set(path)


@pytest.mark.parametrize("row, message", [
    ({"id": "q1", "question": "Who?", "answerable": True, "answers": ["x"]}, "needs 'answers' and 'evidence'"),
    ({"id": "q1", "question": "", "answerable": False}, "'question' must be"),
    ({"id": "q1", "question": "Who?", "answerable": False, "kind": "riddle"}, "invalid kind"),
    ({"id": "q1", "question": "Who?", "answerable": True, "answers": ["x"],
      "evidence": [{"doc_id": DOC, "start": 9, "end": 3}]}, "start < end"),
])
def test_schema_errors(tmp_path: Path, row: dict, message: str):
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(QASetError, match=message):
        load_qa_set(path)


def test_duplicate_ids_are_rejected(tmp_path: Path):
    row = json.dumps({"id": "q1", "question": "Who?", "answerable": False})
    path = tmp_path / "set.jsonl"
    path.write_text(f"{row}\n{row}\n", encoding="utf-8")
    with pytest.raises(QASetError, match="duplicate id 'q1'"):
        load_qa_set(path)


def test_cli_reports_a_missing_set_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from qa.cli import main

    assert main(["eval", "--set", str(tmp_path / "nope.jsonl"), "--report", str(tmp_path / "r")]) == 2
    assert "QA set not found" in capsys.readouterr().err


# ---- end to end ---------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("qa.answers") is None,
                    reason="qa/answers.py (the answer composer) is not written yet")
def test_run_eval_end_to_end(seeds_index: Path, settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    full_set = Path(__file__).resolve().parent.parent / "eval" / "qa_pairs.jsonl"
    rows = [json.loads(line) for line in full_set.read_text(encoding="utf-8").splitlines()]
    by_kind = {}
    for r in rows:
        by_kind.setdefault(r["kind"], r)
    chosen = [by_kind["number"], by_kind["follow_up"], by_kind["unanswerable"]]
    qa_set = tmp_path / "tiny.jsonl"
    qa_set.write_text("".join(json.dumps(r) + "\n" for r in chosen), encoding="utf-8")
    report = tmp_path / "report"

    result = run_eval(qa_set, settings.replace(index=seeds_index))
    files = write_report(result, report)

    for name in ("report.md", "metrics.json", "retrieval.png", "latency.png"):
        assert (report / name).stat().st_size > 0 and report / name in files, name
    assert set(result.retrieval) == {"hybrid", "dense", "bm25"}
    assert [r.id for r in result.records] == [r["id"] for r in chosen]
    assert 0.0 <= result.retrieval["hybrid"].ndcg_10 <= 1.0
    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    for key in ("retrieval", "answers", "citations", "abstention", "answer_latency", "threads", "failures",
                "records", "by_kind", "sweep"):
        assert key in metrics, key
    assert {"hit_5", "recall_10", "mrr_10", "ndcg_10"} <= set(metrics["retrieval"]["hybrid"])
    assert all("confidence" in r and "correct" in r and "status" in r for r in metrics["records"])
    reloaded = load_records(report / "metrics.json")
    assert [(r.id, r.correct, r.confidence, r.retrieval) for r in reloaded] == \
        [(r.id, r.correct, r.confidence, r.retrieval) for r in result.records]
    swept = calibrate_abstention(reloaded)
    assert swept.rows and swept.threshold in {row.threshold for row in swept.rows}
    text = (report / "report.md").read_text(encoding="utf-8")
    assert "## Retrieval" in text and "## Failures" in text
    # The processor is named beside the timings, with whether it has int8 VNNI (the shipped
    # reader's int8 arithmetic differs slightly without it: see qa.runtime.cpu_summary).
    if Path("/proc/cpuinfo").is_file():
        assert result.threads["cpu"].endswith(("(int8 VNNI)", "(no int8 VNNI)"))
        assert f"cpu={result.threads['cpu']}." in text
    assert "hybrid" in summary(result, report) and str(report) in summary(result, report)
    assert capsys.readouterr().out == ""   # the library prints nothing; the CLI prints the summary


@pytest.mark.slow
def test_qa_eval_reports_several_sets_side_by_side(seeds_index: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]):
    from qa.cli import main

    root = Path(__file__).resolve().parent.parent / "eval"
    sets = []
    for name in ("qa_pairs.jsonl", "own_words.jsonl"):
        rows = [json.loads(line) for line in (root / name).read_text(encoding="utf-8").splitlines() if line.strip()]
        # One answerable question without history and one unanswerable one of each set: fast.
        chosen = [next(r for r in rows if r["answerable"] and not r.get("history")),
                  next(r for r in rows if not r["answerable"] and not r.get("history"))]
        (tmp_path / "sets").mkdir(exist_ok=True)
        sets.append(tmp_path / "sets" / name)
        sets[-1].write_text("".join(json.dumps(r) + "\n" for r in chosen), encoding="utf-8")
    report = tmp_path / "report"

    assert main(["eval", "--index", str(seeds_index), "--set", str(sets[0]), "--set", str(sets[1]),
                 "--report", str(report)]) == 0
    printed = capsys.readouterr().out
    compared = json.loads((report / "sets.json").read_text(encoding="utf-8"))
    assert [Path(row["qa_set"]).name for row in compared] == ["qa_pairs.jsonl", "own_words.jsonl"]
    assert compared[1]["role"].startswith("TEST") and not compared[0]["role"].startswith("TEST")
    for row in compared:
        f = row["figures"]
        assert (f["answerable"], f["unanswerable"]) == (1, 1)
        # Abstention off only ever adds answers: what was right stays right.
        assert f["quotes_hold_answer_no_abstention"] >= f["correct"]
        assert f["gold_sentence_cited"] <= 1 - f["false_abstentions"]
        metrics = json.loads((Path(row["report"]) / "metrics.json").read_text(encoding="utf-8"))
        assert metrics["figures"]["correct"] == metrics["answers"]["accuracy"] == f["correct"]
    text = (report / "report.md").read_text(encoding="utf-8")
    assert "citing the gold sentence" in text and "TEST set" in text and "own_words/report.md" in text
    assert (report / "own_words" / "report.md").read_text(encoding="utf-8").startswith(
        f"# qa eval: {sets[1]}\n\n**TEST set")
    test_line = next(line for line in printed.splitlines() if line.startswith("own_words.jsonl"))
    assert test_line.endswith("[TEST set]")
    # A missing set is refused before any set runs.
    assert main(["eval", "--index", str(seeds_index), "--set", str(sets[0]), "--set", str(tmp_path / "nope.jsonl"),
                 "--report", str(tmp_path / "r2")]) == 2
    assert not (tmp_path / "r2").exists()
