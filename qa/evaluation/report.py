"""The `qa eval` report: metrics.json, report.md with its tables, and the PNG plots, all read
from an `EvalResult` (qa/evaluation/run.py); `summary` is the table the CLI prints.
"""

# matplotlib is imported inside the functions that use them, on purpose: importing this module stays
# cheap (`import qa` loads neither torch nor FAISS, and `qa --help` starts at once).

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from qa.evaluation.run import EvalResult, RetrievalScores, to_json

# (column heading, RetrievalScores field)
_RETRIEVAL_COLUMNS = (("hit@1", "hit_1"), ("hit@5", "hit_5"), ("recall@5", "recall_5"),
                      ("recall@10", "recall_10"), ("mrr@10", "mrr_10"), ("ndcg@10", "ndcg_10"))
# (column heading, SetFigures field): the figures sets are compared by.
_SET_COLUMNS = (("correct", "correct"), ("citing the gold sentence", "gold_sentence_cited"),
                ("false abstentions", "false_abstentions"), ("abstained, unanswerable", "abstained_unanswerable"),
                ("confidence ROC AUC", "confidence_roc_auc"),
                ("abstention off: quotes hold the answer", "quotes_hold_answer_no_abstention"))
_SET_NOTE = (
    "Correct: answerable questions answered with a gold answer in the answer text. Citing the gold sentence: "
    "answerable questions whose first citation overlaps an evidence span. False abstentions: share of answerable "
    "questions abstained on; abstained, unanswerable: share of unanswerable ones. Confidence ROC AUC: "
    "Answer.confidence, answerable vs not. Abstention off: the same questions with abstain_threshold = 0, share "
    "of answerable ones whose quoted sentences hold a gold answer (the reader still refuses when no window it "
    "read holds a span: 'still refused').")
_FAILURES = (("answered_unanswerable", "Answered a question the corpus does not answer"),
             ("wrong_answers", "Answered without a gold answer"),
             ("false_abstentions", "Abstained on an answerable question"))


def write_report(result: EvalResult, report_dir: Path) -> list[Path]:
    """Write `metrics.json` (with per-question records, for threshold sweeps), the PNG plots and
    `report.md` into `report_dir` (created when missing).

    Returns:
        The files written.
    """
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "metrics.json").write_text(json.dumps(to_json(result), indent=2, ensure_ascii=False) + "\n",
                                             encoding="utf-8")
    plots = _plot(result, report_dir)
    (report_dir / "report.md").write_text(_markdown(result, plots), encoding="utf-8")
    return [report_dir / "metrics.json", report_dir / "report.md", *(report_dir / p for p in plots)]


def write_comparison(results: Sequence[EvalResult], report_dir: Path, folders: Sequence[Path]) -> list[Path]:
    """Write `report.md` and `sets.json` comparing several sets' figures side by side into
    `report_dir`; `folders` are where each set's own report went.

    Returns:
        The files written.
    """
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    rows = [{"qa_set": r.qa_set, "role": r.role, "report": str(folder),
             "figures": asdict(r.figures) if r.figures else None} for r, folder in zip(results, folders, strict=True)]
    (report_dir / "sets.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = ["# qa eval: sets side by side", "", set_table(results), "", _SET_NOTE, "",
             "Settings: " + ", ".join(f"{k}={v}" for k, v in results[0].settings.items()) + ".", "",
             "Each set's full report: " + ", ".join(f"[{Path(r.qa_set).name}]({Path(f).name}/report.md)"
                                                    for r, f in zip(results, folders, strict=True)) + ".", ""]
    (report_dir / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return [report_dir / "report.md", report_dir / "sets.json"]


def set_table(results: Sequence[EvalResult]) -> str:
    """The markdown table of each set's `SetFigures`, one row a set."""
    rows = []
    for r in results:
        f = r.figures
        if f is None:
            continue
        rows.append((Path(r.qa_set).name, r.role or "-", f"{f.answerable} / {f.unanswerable}",
                     *(getattr(f, name) for _, name in _SET_COLUMNS), f.still_abstained))
    return _table(("set", "role", "answerable / unanswerable", *(h for h, _ in _SET_COLUMNS), "still refused"), rows)


def _scores(s: RetrievalScores) -> list[float]:
    return [getattr(s, name) for _, name in _RETRIEVAL_COLUMNS]


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _markdown(r: EvalResult, plots: Sequence[str]) -> str:
    a, c, b = r.answers, r.citations, r.abstention
    latency = [("answer", r.answer_latency), *((f"retrieve ({m})", s) for m, s in r.retrieval_latency.items())]
    out = [
        f"# qa eval: {r.qa_set}",
        "",
        *([f"**{r.role}.**", ""] if r.role else []),
        f"{r.questions} questions ({a.answerable} answerable); kinds: "
        + ", ".join(f"{k} {v}" for k, v in r.kinds.items()) + ".",
        "Settings: " + ", ".join(f"{k}={v}" for k, v in r.settings.items()) + ".",
        "",
        *(["## Set figures (the answerer as configured)", "", set_table([r]), "", _SET_NOTE, ""] if r.figures else []),
        "## Retrieval (answerable questions, k=10; relevant = overlaps an evidence span)",
        "",
        _table(("mode", *(h for h, _ in _RETRIEVAL_COLUMNS)),
               ((mode, *_scores(s)) for mode, s in r.retrieval.items())),
        "",
        f"## Answers (mode {r.settings['mode']})",
        "",
        _table(("accuracy", "exact match", "F1", "overall accuracy", "wrong answers", "answered unanswerable",
                "false abstentions"),
               [(a.accuracy, a.exact_match, a.f1, a.overall_accuracy, a.wrong_answers, a.answered_unanswerable,
                 a.false_abstentions)]),
        "",
        "Accuracy: a gold answer is contained (normalized) in the answer text. EM/F1: SQuAD v1.1, on the "
        "short answer when the citation marks one.",
        "",
        "## Reader vs sentence scorer (same questions, same run)",
        "",
        _table(("answerer", "accuracy", "short answer EM", "short answer F1", "overall", "wrong",
                "answered unanswerable", "false abstentions",
                "citation precision", "citation recall", "abstention precision", "abstention recall",
                "sentences per answer", "short answer marked", "gold sentence first", "p50 ms"),
               [(x.name, x.answers.accuracy, x.answers.exact_match, x.answers.f1, x.answers.overall_accuracy,
                 x.answers.wrong_answers,
                 x.answers.answered_unanswerable, x.answers.false_abstentions, x.citations.precision,
                 x.citations.recall, x.abstention.precision, x.abstention.recall, x.sentences_per_answer,
                 x.marked_spans, x.gold_sentence_first, x.latency.p50) for x in r.answerers]),
        "",
        "## Citations",
        "",
        _table(("precision", "recall", "verbatim", "per answer"), [(c.precision, c.recall, c.verbatim, c.per_answer)]),
        "",
        "## Abstention (positive = abstained on an unanswerable question)",
        "",
        _table(("precision", "recall", "F1", "abstained", "unanswerable"),
               [(b.precision, b.recall, b.f1, b.abstained, b.unanswerable)]),
        "",
        "## By kind",
        "",
        _table(("kind", "questions", "correct", "hit@5"),
               ((k, v.questions, v.correct, v.hit_5) for k, v in r.by_kind.items())),
        "",
        "## Latency (ms, after one warm-up call)",
        "",
        _table(("step", "n", "p50", "p95", "mean", "max"),
               [(name, s.n, s.p50, s.p95, s.mean, s.max) for name, s in latency]),
        "",
        "Threads: " + ", ".join(f"{k}={v}" for k, v in r.threads.items()) + ".",
        "",
        "## Failures",
        "",
    ]
    for key, label in _FAILURES:
        rows = r.failures(key)
        out.append(f"**{label}** ({len(rows)}): " + (", ".join(x.id for x in rows) or "none"))
        out.append("")
        for x in rows:
            golds = " / ".join(x.golds) or "-"
            confidence = "-" if x.confidence is None else f"{x.confidence:.3f}"
            text = " ".join(x.text.split())
            out.append(f"- {x.id} ({x.kind}, confidence {confidence}; gold: {golds}): {text[:160]}")
        out.append("")
    out += ["## Plots", ""] + [f"![{name}]({name})" for name in plots] + [""]
    return "\n".join(out)


def _plot(r: EvalResult, report_dir: Path) -> list[str]:
    """Retrieval metrics by mode (bars) and answer latency (histogram), as PNG files."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(r.retrieval)
    x = np.arange(len(_RETRIEVAL_COLUMNS))
    for i, (mode, scores) in enumerate(r.retrieval.items()):
        ax.bar(x + i * width, _scores(scores), width, label=mode)
    ax.set_xticks(x + width * (len(r.retrieval) - 1) / 2, [h for h, _ in _RETRIEVAL_COLUMNS])
    ax.set_ylim(0, 1.15)  # headroom so the legend does not hide bars
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_title("Retrieval by mode")
    ax.legend(ncol=len(r.retrieval), loc="upper center")
    fig.tight_layout()
    fig.savefig(report_dir / "retrieval.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.hist([x.latency_ms for x in r.records], bins=30)
    for name in ("p50", "p95"):
        value = getattr(r.answer_latency, name)
        ax.axvline(value, linestyle="--", color="black")
        ax.annotate(f"{name} {value:.0f} ms", (value, ax.get_ylim()[1] * 0.9))
    ax.set_xlabel("answer latency (ms)")
    ax.set_ylabel("questions")
    ax.set_title("Answer latency")
    fig.tight_layout()
    fig.savefig(report_dir / "latency.png", dpi=100)
    plt.close(fig)
    return ["retrieval.png", "latency.png"]


def summary(r: EvalResult, report_dir: Path | None = None) -> str:
    """The few lines `qa eval` prints: retrieval by mode, answers, citations, abstention, latency."""
    a, c, b, lat = r.answers, r.citations, r.abstention, r.answer_latency
    lines = [f"{'mode':<8} " + " ".join(f"{h:>9}" for h, _ in _RETRIEVAL_COLUMNS)]
    for mode, s in r.retrieval.items():
        lines.append(f"{mode:<8} " + " ".join(f"{v:>9.3f}" for v in _scores(s)))
    lines += [
        f"answers   accuracy {a.accuracy:.3f}  EM {a.exact_match:.3f}  F1 {a.f1:.3f}  "
        f"overall {a.overall_accuracy:.3f}  wrong {a.wrong_answers}  "
        f"answered-unanswerable {a.answered_unanswerable}  false-abstentions {a.false_abstentions}",
        f"citations precision {c.precision:.3f}  recall {c.recall:.3f}  verbatim {c.verbatim:.3f}",
        f"abstain   precision {b.precision:.3f}  recall {b.recall:.3f}  F1 {b.f1:.3f}",
        f"latency   answer p50 {lat.p50:.1f} ms  p95 {lat.p95:.1f} ms",
    ]
    for x in r.answerers:
        lines.append(f"{x.name:<16} accuracy {x.answers.accuracy:.3f}  EM/F1 {x.answers.exact_match:.3f}/"
                     f"{x.answers.f1:.3f}  abstain precision "
                     f"{x.abstention.precision:.3f} recall {x.abstention.recall:.3f}  false-abstentions "
                     f"{x.answers.false_abstentions}  sentences/answer {x.sentences_per_answer:.2f}  "
                     f"marked {x.marked_spans:.2f}  gold-first {x.gold_sentence_first:.3f}  "
                     f"p50 {x.latency.p50:.1f} ms")
    if r.figures is not None:
        f = r.figures
        off = "-" if f.quotes_hold_answer_no_abstention is None else \
            f"{f.quotes_hold_answer_no_abstention:.3f} (still refused {f.still_abstained})"
        lines.append(f"set       {r.role or Path(r.qa_set).name}")
        lines.append(f"figures   correct {f.correct:.3f}  citing gold sentence {f.gold_sentence_cited:.3f}  "
                     f"false abstentions {f.false_abstentions:.3f}  abstained unanswerable "
                     f"{f.abstained_unanswerable:.3f}  confidence ROC AUC {f.confidence_roc_auc:.3f}  "
                     f"abstention off, quotes hold the answer {off}")
    if report_dir is not None:
        lines.append(f"report    {Path(report_dir) / 'report.md'}")
    return "\n".join(lines)


def comparison(results: Sequence[EvalResult]) -> str:
    """The sets' figures side by side, as the CLI prints them (one line a set)."""
    short = ("correct", "gold cited", "false abst.", "abst. unans.", "conf. AUC")
    head = f"{'set':<22} {'answerable/not':>14} " + " ".join(f"{h:>12}" for h in short) + \
        "  abstention off: quotes hold the answer"
    lines = [head]
    for r in results:
        f = r.figures
        if f is None:
            continue
        cells = " ".join(f"{getattr(f, name):>12.3f}" for _, name in _SET_COLUMNS[:5])
        off = "-" if f.quotes_hold_answer_no_abstention is None else \
            f"{f.quotes_hold_answer_no_abstention:.3f} (still refused {f.still_abstained})"
        test = "  [TEST set]" if r.role.startswith("TEST") else ""
        lines.append(f"{Path(r.qa_set).name:<22} {f'{f.answerable} / {f.unanswerable}':>14} {cells}  {off}{test}")
    return "\n".join(lines)
