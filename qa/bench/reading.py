"""`qa bench reading`: what the reader should read, compared on development sets only.

Each reading setting answers the same questions, interleaved question by question so that the
settings share the machine's load: the seed development set eval/qa_pairs.jsonl over seeds/,
a seeded sample of SQuAD v2.0 questions of the reader's *training* articles (their
paragraphs an open corpus), as asked and in the WordNet paraphrase `qa bench squad` uses, and the
development questions in users' own words about those articles (eval/squad_own_words_dev.jsonl).
Reported per setting: how often the quotes hold a gold answer with abstention off, the
confidence's ROC AUC (answerable vs not), the answer latency p50 and its ratio to the first
setting's, and the windows and word pieces read. No test set is read here: the choice of
`reader_passages` and `reader_tokens` is made on these figures.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.answers import answer
from qa.bench.common import prepare_index, sample_items
from qa.bench.paraphrase import paraphrase
from qa.bench.registry import BenchRun
from qa.bench.report import Report
from qa.bench.squad import squad_docs
from qa.bench.wordnet import DEBIAN_WORDNET, WordNet
from qa.config import Settings
from qa.evaluation import load_qa_set
from qa.evaluation.metrics import contains_answer, roc_auc
from qa.evaluation.own_words_dev import OWN_WORDS_DEV, OWN_WORDS_DEV_SET, load_own_words_dev
from qa.index import build_index, load_index
from qa.training.data import load_squad

ROOT = Path(__file__).resolve().parents[2]
QA_SET = ROOT / "eval" / "qa_pairs.jsonl"
_SHIPPED = Settings()
# The settings compared: (label, reader_passages, reader_tokens, reader_stop_margin); the last is
# whatever Settings() ships.
SETTINGS = (("3 windows around the scorer's sentences", 0, 0, 0.0),
            ("whole passages, top 5", 5, 0, 0.0),
            ("whole passages, top 5, at most 700 word pieces", 5, 700, 0.0),
            ("whole passages, top 5, stop at margin 6", 5, 0, 6.0),
            ("whole passages, top 5, stop at margin 4", 5, 0, 4.0),
            ("whole passages, top 5, stop at margin 2", 5, 0, 2.0),
            (f"as shipped: top {_SHIPPED.reader_passages}, at most {_SHIPPED.reader_tokens} word pieces, stop at "
             f"margin {_SHIPPED.reader_stop_margin:g}", _SHIPPED.reader_passages, _SHIPPED.reader_tokens,
             _SHIPPED.reader_stop_margin))


@dataclass(frozen=True)
class Question:
    question: str
    history: tuple[str, ...]
    answers: tuple[str, ...]   # () = unanswerable


def _seed_questions(qa_set: Path) -> list[Question]:
    return [Question(p.question, p.history, p.answers if p.answerable else ()) for p in load_qa_set(qa_set)]


def _squad_questions(sample: int, data: Path | None, settings: Settings,
                     own_words_file: Path) -> tuple[Any, list[Question], list[Question], list[Question]]:
    """The training articles' open corpus; the sample as asked, paraphrased (empty without
    WordNet), and the development questions in users' own words."""
    squad = load_squad(data)
    titles = squad.split.train | squad.split.valid
    paragraphs = [p for p in squad.v2_paragraphs if p["title"] in titles]
    index, _, _ = prepare_index("squad-v2.0-train-articles", squad_docs(paragraphs), settings)
    items = sample_items(list(squad.part(2, titles)), sample)
    asked = [Question(q.question, (), tuple(q.answers)) for q in items]
    own_words = [Question(q.question, (), (q.answer,) if q.answer is not None else ())
                 for q in load_own_words_dev(own_words_file, paragraphs)]
    try:
        net = WordNet.load(DEBIAN_WORDNET)
    except (OSError, ValueError):
        return index, asked, [], own_words
    return index, asked, [Question(paraphrase(q.question, q.context, net).text, (), tuple(q.answers))
                          for q in items], own_words


def _run(questions: Sequence[Question], index: Any, settings: Sequence[Settings]) -> list[dict[str, Any]]:
    """Each setting's figures over `questions`, the settings interleaved per question."""
    held: list[list[bool]] = [[] for _ in settings]
    conf: list[list[float]] = [[] for _ in settings]
    ms: list[list[float]] = [[] for _ in settings]
    for q in questions:
        history = [{"role": "user", "content": h} for h in q.history]
        for k, s in enumerate(settings):
            started = time.perf_counter()
            reply = answer(q.question, history=history, index=index, settings=s)
            ms[k].append((time.perf_counter() - started) * 1000)
            conf[k].append(reply.confidence)
            if q.answers:
                held[k].append(not reply.abstained and contains_answer(reply.text, q.answers))
    labels = [bool(q.answers) for q in questions]
    base = statistics.median(ms[0])
    return [{"holds_answer": sum(h) / max(1, len(h)),
             "auc": roc_auc(c, labels) if any(labels) and not all(labels) else None,
             "p50_ms": statistics.median(m), "ratio": statistics.median(m) / base}
            for h, c, m in zip(held, conf, ms, strict=True)]


def bench_reading(settings: Settings, report_dir: Path, *, sample: int | None = None, data: Path | None = None,
                  echo: Callable[[str], None] | None = None, qa_set: Path = QA_SET,
                  own_words: Path = OWN_WORDS_DEV) -> Report:
    """Compare `SETTINGS` on the development sets (`qa_set` over `settings.corpus`, and SQuAD
    v2.0 training articles from `data`, the folder holding both SQuAD dev sets, with the
    development questions `own_words` about them); returns the report (tables printed)."""
    out = Report("What the reader reads, on development sets", report_dir, echo)
    base = settings.replace(abstain_threshold=0.0, show_progress=False)
    variants = [base.replace(reader_passages=n, reader_tokens=t, reader_stop_margin=m) for _, n, t, m in SETTINGS]
    out.threads()
    out.text("Abstention off (threshold 0): 'holds the answer' counts answerable questions whose quotes hold "
             "a gold answer. Settings interleaved per question.")
    with tempfile.TemporaryDirectory() as tmp:
        build_index(settings.corpus, Path(tmp) / "index", settings=base, log=lambda _: None)
        seeds = load_index(Path(tmp) / "index")
        sets = [(qa_set.name, seeds, _seed_questions(qa_set))]
        index, asked, reworded, dev_questions = _squad_questions(sample or 300, data, base, own_words)
        sets.append(("SQuAD v2.0 training articles", index, asked))
        if reworded:
            sets.append(("SQuAD v2.0 training articles, paraphrased", index, reworded))
        sets.append((OWN_WORDS_DEV_SET.replace("squad-v2.0", "SQuAD v2.0"), index, dev_questions))
        for name, idx, questions in sets:
            figures = _run(questions, idx, variants)
            out.data[name] = {label: f for (label, *_), f in zip(SETTINGS, figures, strict=True)}
            out.section(f"{name} ({len(questions)} questions, {sum(bool(q.answers) for q in questions)} answerable)")
            out.table(["reading", "holds the answer", "confidence ROC AUC", "answer p50", "vs first"],
                      [[label, f"{f['holds_answer']:.3f}", "" if f["auc"] is None else f"{f['auc']:.3f}",
                        f"{f['p50_ms']:.0f} ms", f"{f['ratio']:.2f}x"]
                       for (label, *_), f in zip(SETTINGS, figures, strict=True)])
    return out


def run(job: BenchRun) -> Report:
    """`qa bench reading` (qa.bench.registry)."""
    return bench_reading(job.settings, job.report_dir, sample=job.sample, data=job.data, echo=job.echo)
