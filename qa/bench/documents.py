"""Real layouts: the same articles as plain paragraphs, hard-wrapped text and Chromium PDFs.

The 17 held-out SQuAD articles (the reader never trained on them), one file per article, in
three forms: plain paragraphs separated by blank lines (.txt), the same paragraphs hard-wrapped
at 72 columns (.txt), and an HTML page of the article printed to PDF by Chromium with its
default running header and footer (date, title, file address, page "n/m"). The same questions
go to each form in one run. Reported per form: answer contains gold and short-answer F1 (v1.1
questions), confidence ROC AUC answerable vs not (v2.0 questions), and the share of quotes that
start mid-sentence, judged against the article's own paragraphs, not against qa's sentences.
"""

from __future__ import annotations

import hashlib
import html
import re
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.answers import answer
from qa.bench.common import (
    CACHE,
    CHROMIUM,
    FOLDERS,
    SAMPLE_SEED,
    data_folder,
    prepare_folder_index,
    print_pdf,
    progress,
    read_jsonl,
    sample_items,
    settings_json,
)
from qa.bench.registry import BenchRun
from qa.bench.report import Report
from qa.config import Settings
from qa.evaluation.metrics import contains_answer, roc_auc, squad_scores
from qa.evaluation.run import short_answer
from qa.training.data import make_split
from qa.types import Answer

FORMS = ("plain", "wrapped", "pdf")
WRAP_COLUMNS = 72
DEFAULT_SAMPLE = 300
# A quote starts a sentence when what precedes it in the paragraph ends one (or nothing does).
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")


def article_files(paragraphs: Sequence[dict[str, Any]], form: str, folder: Path,
                  log: Callable[[str], None]) -> None:
    """Write each article of `paragraphs` into `folder` as one file in `form`; files already
    holding the same content are kept (a PDF is printed again only when its article changed)."""
    folder.mkdir(parents=True, exist_ok=True)
    articles: dict[str, list[str]] = {}
    for p in paragraphs:
        articles.setdefault(str(p["title"]), []).append(str(p["context"]).strip())
    wanted = set()
    for title, texts in articles.items():
        name = re.sub(r"[^\w.-]+", "_", title)
        heading = title.replace("_", " ")
        if form == "pdf":
            body = "".join(f"<p>{html.escape(t)}</p>\n" for t in texts)
            page = (f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(heading)}</title>'
                    f"</head><body><h1>{html.escape(heading)}</h1>\n{body}</body></html>")
            target = folder / f"{name}.pdf"
            stamp = folder / f".{name}.sha256"
            digest = hashlib.sha256(page.encode()).hexdigest()
            wanted |= {target.name, stamp.name}
            if not target.exists() or not stamp.exists() or stamp.read_text() != digest:
                print_pdf(page, target, furniture=True)
                stamp.write_text(digest)
                log(f"printed {target.name}")
            continue
        paras = texts if form == "plain" else [textwrap.fill(t, WRAP_COLUMNS) for t in texts]
        content = f"{heading}\n\n" + "\n\n".join(paras) + "\n"
        target = folder / f"{name}.txt"
        wanted.add(target.name)
        if not target.exists() or target.read_text(encoding="utf-8") != content:
            target.write_text(content, encoding="utf-8")
    for path in folder.iterdir():
        if path.name not in wanted and path.is_file():
            path.unlink()


def _normal(text: str) -> str:
    return " ".join(text.replace("-\n", "-").split())


def starts_mid_sentence(quote: str, paragraphs: Sequence[str]) -> bool | None:
    """Whether `quote` starts inside a sentence of the article: its first words are found in a
    paragraph after text that does not end a sentence. None when they are not found (a title,
    or page furniture)."""
    words = _normal(quote).split()[:8]
    if not words:
        return None
    head = " ".join(words)
    for para in paragraphs:
        at = para.find(head)
        if at >= 0:
            before = para[:at].rstrip()
            return bool(before) and not _SENTENCE_END.search(before)
    return None


def bench_documents(folder: Path, folder_v2: Path, settings: Settings, report_dir: Path, *,
                    sample: int | None = None, echo: Callable[[str], None] | None = None) -> Report:
    """Score the three forms of the held-out SQuAD articles in one run (see the module docstring).

    Args:
        folder: SQuAD v1.1 dev; folder_v2: SQuAD v2.0 dev.
        sample: questions of each version scored (seeded); default 300.
    """
    started = time.perf_counter()
    out = Report("Real layouts: held-out SQuAD articles as plain text, hard-wrapped text and PDF", report_dir, echo)
    paragraphs = read_jsonl(folder / "paragraphs.jsonl")
    paragraphs_v2 = read_jsonl(folder_v2 / "paragraphs.jsonl")
    held = make_split(paragraphs, paragraphs_v2).held_out
    sample = sample or DEFAULT_SAMPLE
    versions = {
        "1.1": ([p for p in paragraphs if p["title"] in held],
                sample_items([q for q in read_jsonl(folder / "questions.jsonl") if q["title"] in held], sample)),
        "2.0": ([p for p in paragraphs_v2 if p["title"] in held],
                sample_items([q for q in read_jsonl(folder_v2 / "questions.jsonl") if q["title"] in held], sample)),
    }
    forms = [f for f in FORMS if f != "pdf" or CHROMIUM.exists()]
    if "pdf" not in forms:
        out.text(f"PDF form left out: no Chromium at {CHROMIUM} (apt-get install chromium).")
    out.text(f"{len(held)} held-out articles, one file per article; {len(versions['1.1'][1])} v1.1 and "
             f"{len(versions['2.0'][1])} v2.0 questions (seeded sample, seed {SAMPLE_SEED}); plain, wrapped at "
             f"{WRAP_COLUMNS} columns, and printed by Chromium with its default header and footer.")
    out.data.update({"settings": settings_json(settings), "questions": {v: len(q) for v, (_, q) in versions.items()},
                     "sample_seed": SAMPLE_SEED, "forms": forms})
    s = settings.replace(max_answer_sentences=2)
    results: dict[str, Any] = {}
    rows: list[list[Any]] = []
    for form in forms:
        r: dict[str, Any] = {}
        for version, (paras, questions) in versions.items():
            base = CACHE / f"documents-{form}-v{version}"
            article_files(paras, form, base / "corpus", out.echo)
            index, build = prepare_folder_index(base, settings, log=None)
            by_title: dict[str, list[str]] = {}
            for p in paras:
                by_title.setdefault(str(p["title"]), []).append(_normal(str(p["context"])))
            replies: list[Answer] = []
            answer(questions[0]["question"], index=index, settings=s)  # warm-up: the models load
            for q in progress(questions, settings, f"{form} v{version}"):
                replies.append(answer(q["question"], history=[], index=index, settings=s))
            mid = [starts_mid_sentence(c.quote, by_title[q["title"]])
                   for q, reply in zip(questions, replies, strict=True) for c in reply.citations]
            judged = [m for m in mid if m is not None]
            r[f"v{version}_quotes"] = len(mid)
            r[f"v{version}_mid_sentence"] = float(np.mean(judged)) if judged else float("nan")
            r[f"v{version}_chunks"], r[f"v{version}_sentences"] = build.chunks, build.sentences
            if version == "1.1":
                r["contains_gold"] = float(np.mean([not a.abstained and contains_answer(a.text, q["answers"])
                                                    for q, a in zip(questions, replies, strict=True)]))
                r["abstained"] = float(np.mean([a.abstained for a in replies]))
                shorts = {q["id"]: short_answer(a) for q, a in zip(questions, replies, strict=True)}
                r["short_f1"] = squad_scores(shorts, questions, "1.1")["f1"]
            else:
                r["roc_auc"] = roc_auc([a.confidence for a in replies], [bool(q["answers"]) for q in questions])
        shares = [(r[f"v{v}_quotes"], r[f"v{v}_mid_sentence"]) for v in versions]
        measured = [(n, share) for n, share in shares if share == share]    # NaN: no quote judged
        r["mid_sentence"] = (sum(n * share for n, share in measured) / max(1, sum(n for n, _ in measured))
                             if measured else float("nan"))   # over both versions' quotes
        results[form] = r
        rows.append([form, f"{100 * r['contains_gold']:.1f}%", f"{r['short_f1']:.1f}", f"{r['roc_auc']:.3f}",
                     f"{100 * r['mid_sentence']:.1f}%", f"{100 * r['abstained']:.1f}%",
                     f"{r['v1.1_chunks']} / {r['v1.1_sentences']}"])
    out.table(["form", "contains gold (v1.1)", "short F1 (v1.1)", "confidence ROC AUC (v2.0)",
               "quotes starting mid-sentence", "abstained (v1.1)", "chunks / sentences (v1.1)"], rows)
    out.text("Answers hold at most two sentences. Mid-sentence: the quote's first words follow text that does "
             "not end a sentence in the article's own paragraph (quotes not found there, such as titles, are "
             "not judged).")
    out.threads()
    out.data["forms_results"] = results
    out.data["seconds"] = round(time.perf_counter() - started, 1)
    return out


def run(job: BenchRun) -> Report:
    """`qa bench documents` (qa.bench.registry): with --data pointing at SQuAD v1.1, v2.0 is looked for
    beside it."""
    v2 = None if job.data is None else job.data.parent / FOLDERS["squad2"]
    return bench_documents(data_folder("squad", job.data), data_folder("squad2", v2), job.settings, job.report_dir,
                           sample=job.sample, echo=job.echo)
