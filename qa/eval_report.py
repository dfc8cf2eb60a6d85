"""The `qa eval` report: metrics.json, report.md with its tables, the PNG plots, and the summary
printed at the end of a run. The figures themselves are computed in `qa.evaluate`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from qa.evaluate import AnswerRecord


def write_report(metrics: dict[str, Any], records: Sequence[AnswerRecord], report_dir: Path) -> None:
    """Write `metrics.json`, the PNG plots and `report.md` into `report_dir`, and print a summary.

    Args:
        metrics: every figure of the run, as `qa.evaluate.run_eval` gathers them (per-question
            records included, for threshold sweeps).
        records: the per-question records, for the latency histogram.
        report_dir: the folder written into; created when missing.
    """
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n",
                                             encoding="utf-8")
    plots = _plot(metrics, records, report_dir)
    (report_dir / "report.md").write_text(_markdown(metrics, plots), encoding="utf-8")
    print(_summary(metrics, report_dir))


_RETRIEVAL_COLUMNS = ("hit@1", "hit@5", "recall@5", "recall@10", "mrr@10", "ndcg@10")


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _markdown(m: dict[str, Any], plots: Sequence[str]) -> str:
    a, c, b, lat = m["answers"], m["citations"], m["abstention"], m["latency_ms"]
    out = [
        f"# qa eval: {m['set']}",
        "",
        f"{m['questions']} questions ({a['answerable']} answerable); kinds: "
        + ", ".join(f"{k} {v}" for k, v in m["kinds"].items()) + ".",
        "Settings: " + ", ".join(f"{k}={v}" for k, v in m["settings"].items()) + ".",
        "",
        "## Retrieval (answerable questions, k=10; relevant = overlaps an evidence span)",
        "",
        _table(("mode", *_RETRIEVAL_COLUMNS),
               ((mode, *(s[k] for k in _RETRIEVAL_COLUMNS)) for mode, s in m["retrieval"].items())),
        "",
        f"## Answers (mode {m['settings']['mode']})",
        "",
        _table(("accuracy", "exact match", "F1", "overall accuracy", "wrong answers", "answered unanswerable",
                "false abstentions"),
               [(a["accuracy"], a["exact_match"], a["f1"], a["overall_accuracy"], a["wrong_answers"],
                 a["answered_unanswerable"], a["false_abstentions"])]),
        "",
        "Accuracy: a gold answer is contained (normalized) in the answer text. EM/F1: SQuAD v1.1, on the "
        "short answer when the citation marks one.",
        "",
        "## Citations",
        "",
        _table(("precision", "recall", "verbatim", "per answer"),
               [(c["precision"], c["recall"], c["verbatim"], c["per_answer"])]),
        "",
        "## Abstention (positive = abstained on an unanswerable question)",
        "",
        _table(("precision", "recall", "F1", "abstained", "unanswerable"),
               [(b["precision"], b["recall"], b["f1"], b["abstained"], b["unanswerable"])]),
        "",
        "## By kind",
        "",
        _table(("kind", "questions", "correct", "hit@5"),
               ((k, v["questions"], v["correct"], v["hit@5"]) for k, v in m["by_kind"].items())),
        "",
        "## Latency (ms, after one warm-up call)",
        "",
        _table(("step", "n", "p50", "p95", "mean", "max"),
               [("answer", *(lat["answer"][k] for k in ("n", "p50", "p95", "mean", "max")))]
               + [(f"retrieve ({mode})", *(s[k] for k in ("n", "p50", "p95", "mean", "max")))
                  for mode, s in lat["retrieval"].items()]),
        "",
        "Threads: " + ", ".join(f"{k}={v}" for k, v in m["threads"].items()) + ".",
        "",
        "## Failures",
        "",
    ]
    labels = (("answered_unanswerable", "Answered a question the corpus does not answer"),
              ("wrong_answers", "Answered without a gold answer"),
              ("false_abstentions", "Abstained on an answerable question"))
    for key, label in labels:
        rows = m["failures"][key]
        out.append(f"**{label}** ({len(rows)}): " + (", ".join(r["id"] for r in rows) or "none"))
        out.append("")
        for r in rows:
            golds = " / ".join(r["golds"]) or "-"
            confidence = "-" if r["confidence"] is None else f"{r['confidence']:.3f}"
            out.append(f"- {r['id']} ({r['kind']}, confidence {confidence}; gold: {golds}): "
                       f"{r['answer'][:160]}")
        out.append("")
    out += ["## Plots", ""] + [f"![{name}]({name})" for name in plots] + [""]
    return "\n".join(out)


def _plot(m: dict[str, Any], records: Sequence[AnswerRecord], report_dir: Path) -> list[str]:
    """Retrieval metrics by mode (bars) and answer latency (histogram), as PNG files."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(m["retrieval"])
    x = np.arange(len(_RETRIEVAL_COLUMNS))
    for i, (mode, scores) in enumerate(m["retrieval"].items()):
        ax.bar(x + i * width, [scores.get(k, 0.0) for k in _RETRIEVAL_COLUMNS], width, label=mode)
    ax.set_xticks(x + width * (len(m["retrieval"]) - 1) / 2, _RETRIEVAL_COLUMNS)
    ax.set_ylim(0, 1.15)  # headroom so the legend does not hide bars
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_title("Retrieval by mode")
    ax.legend(ncol=len(m["retrieval"]), loc="upper center")
    fig.tight_layout()
    fig.savefig(report_dir / "retrieval.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.hist([r.latency_ms for r in records], bins=30)
    lat = m["latency_ms"]["answer"]
    for name in ("p50", "p95"):
        ax.axvline(lat[name], linestyle="--", color="black")
        ax.annotate(f"{name} {lat[name]:.0f} ms", (lat[name], ax.get_ylim()[1] * 0.9))
    ax.set_xlabel("answer latency (ms)")
    ax.set_ylabel("questions")
    ax.set_title("Answer latency")
    fig.tight_layout()
    fig.savefig(report_dir / "latency.png", dpi=100)
    plt.close(fig)
    return ["retrieval.png", "latency.png"]


def _summary(m: dict[str, Any], report_dir: Path) -> str:
    a, c, b = m["answers"], m["citations"], m["abstention"]
    lat = m["latency_ms"]["answer"]
    lines = [f"{'mode':<8} " + " ".join(f"{k:>9}" for k in _RETRIEVAL_COLUMNS)]
    for mode, s in m["retrieval"].items():
        lines.append(f"{mode:<8} " + " ".join(f"{s[k]:>9.3f}" for k in _RETRIEVAL_COLUMNS))
    lines += [
        f"answers   accuracy {a['accuracy']:.3f}  EM {a['exact_match']:.3f}  F1 {a['f1']:.3f}  "
        f"overall {a['overall_accuracy']:.3f}  wrong {a['wrong_answers']}  "
        f"answered-unanswerable {a['answered_unanswerable']}  false-abstentions {a['false_abstentions']}",
        f"citations precision {c['precision']:.3f}  recall {c['recall']:.3f}  verbatim {c['verbatim']:.3f}",
        f"abstain   precision {b['precision']:.3f}  recall {b['recall']:.3f}  F1 {b['f1']:.3f}",
        f"latency   answer p50 {lat['p50']:.1f} ms  p95 {lat['p95']:.1f} ms",
        f"report    {report_dir / 'report.md'}",
    ]
    return "\n".join(lines)
