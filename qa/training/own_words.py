"""Questions in users' own words about the SQuAD training articles, for the reader's training and
for its choice of epoch.

SQuAD's questions borrow their paragraph's words, and its unanswerable questions are written
against one paragraph. Users ask in their own words and ask near misses: the same people and
things, one constraint changed. Helpers who never saw the code wrote such questions from
paragraphs alone:

- `training-data/squad_own_words_train.jsonl` (`OWN_WORDS_TRAIN`): about SQuAD v1.1 paragraphs of
  training articles that no development question is about; `--own-words-train` trains on them.
- `training-data/news_own_words_train.jsonl` (`NEWS_OWN_WORDS_TRAIN`): news articles helpers wrote
  themselves, each line carrying its paragraph (`title`, `context`), so the reader also learns
  from news prose: descriptions for names ("the Berlin-based carmaker"), dates given relatively,
  several facts of one kind side by side. Any file whose lines carry `context` is read this way.
- `eval/squad_own_words_dev.jsonl` (`qa.evaluation.own_words_dev`): about v2.0 paragraphs of 18
  other training and validation articles; `--own-words-dev` adds their SQuAD 2.0 F1 (at the
  margin best on them) to the key the epoch is chosen by.

Neither is ever reported as a test (eval/own_words.jsonl is the test, about other documents).
"""

from __future__ import annotations

import json
from pathlib import Path

from qa.evaluation.own_words_dev import DevSetError, load_own_words_dev
from qa.training.data import QAItem, SquadData

OWN_WORDS_TRAIN = Path(__file__).resolve().parents[2] / "training-data" / "squad_own_words_train.jsonl"
NEWS_OWN_WORDS_TRAIN = OWN_WORDS_TRAIN.with_name("news_own_words_train.jsonl")
# What a line that carries its own text needs (besides `kind` and `note`, which are optional).
TEXT_FIELDS = frozenset({"title", "context", "question", "answerable", "answer"})


def own_words_items(path: Path, squad: SquadData | None, version: int, titles: frozenset[str],
                    prefix: str) -> list[QAItem]:
    """The questions of `path` as reader items. Where the file's lines carry their paragraph
    (`context`, `title`) they are read as they stand; otherwise each must name a paragraph of SQuAD
    `version` in one of `titles` (the articles the file may be about) by `pid` (`squad` is needed
    for those alone). An answerable
    question's answer must lie verbatim in its paragraph.

    Raises:
        DevSetError: a question names another paragraph or an answer the paragraph lacks; a line
            is not JSON or lacks a field; the file cannot be read (each says which).
    """
    rows = _rows(Path(path))
    if any(isinstance(row, dict) and "context" in row for row in rows):
        return _text_items(Path(path), rows, prefix)
    if squad is None:
        raise DevSetError(f"{path} names SQuAD paragraphs, and the SQuAD data is not loaded")
    paragraphs = [p for p in (squad.v1_paragraphs if version == 1 else squad.v2_paragraphs) if p["title"] in titles]
    contexts = {str(p["pid"]): (str(p["title"]), str(p["context"])) for p in paragraphs}
    try:
        questions = load_own_words_dev(Path(path), paragraphs)
    except OSError as exc:
        raise DevSetError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    return [QAItem(qid=f"{prefix}-{n}", title=contexts[q.pid][0], question=q.question, context=contexts[q.pid][1],
                   answers=(q.answer,) if q.answer is not None else ())
            for n, q in enumerate(questions, 1)]


def _rows(path: Path) -> list[object]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DevSetError(f"Cannot read {path}: {getattr(exc, 'strerror', None) or exc}.") from None
    rows: list[object] = []
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DevSetError(f"{path}: line {n} is not JSON ({exc.msg})") from None
    return rows


def _text_items(path: Path, rows: list[object], prefix: str) -> list[QAItem]:
    """Lines that carry their own paragraph: checked like the SQuAD ones (every field there, the
    answer verbatim in the paragraph), then read as they stand."""
    items = []
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not set(row) >= TEXT_FIELDS or not isinstance(row["answerable"], bool):
            raise DevSetError(f"{path}: question {n} lacks one of {', '.join(sorted(TEXT_FIELDS))}, or its answerable "
                              "is not true or false "
                              "(a file either carries every paragraph or names SQuAD paragraphs by pid)")
        context, answer = str(row["context"]), str(row["answer"])
        if row["answerable"] and (not answer or answer not in context):
            raise DevSetError(f"{path}: question {n} ({row['question']!r}) has an answer its paragraph does not hold")
        items.append(QAItem(qid=f"{prefix}-{n}", title=str(row["title"]), question=str(row["question"]),
                            context=context, answers=(answer,) if row["answerable"] else ()))
    return items
