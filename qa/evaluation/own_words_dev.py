"""Development questions in users' own words about the SQuAD v2.0 *training* articles
(eval/squad_own_words_dev.jsonl; eval/README.md says how they were written).

Helpers who never saw the code wrote them from 54 paragraphs alone: paraphrases and descriptions
instead of the text's words, a distractor nearby, and near misses that change one constraint.
They are development data: `python -m qa.fitting answerability` checks every fit on them, and
`qa bench reading` compares readings on them. They are never reported as a test
(eval/own_words.jsonl is the test).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.errors import QAError

OWN_WORDS_DEV = Path(__file__).resolve().parents[2] / "eval" / "squad_own_words_dev.jsonl"
OWN_WORDS_DEV_SET = "squad-v2.0 training articles, users' own words (development)"
# Development questions in users' own words about seeds/ (a qa set, eval/README.md): written by
# helpers from the five articles alone; the abstention threshold is chosen with them in the rule.
SEEDS_OWN_WORDS_DEV = OWN_WORDS_DEV.with_name("seeds_own_words_dev.jsonl")
SEEDS_OWN_WORDS_DEV_SET = "seeds, users' own words (development)"


REQUIRED = frozenset({"pid", "question", "answerable", "answer"})


class DevSetError(QAError, ValueError):
    """Questions in users' own words do not match the SQuAD data they were written for (the
    command line prints the message alone)."""


@dataclass(frozen=True)
class DevQuestion:
    pid: str               # the SQuAD paragraph it was written from
    question: str
    answer: str | None     # None: unanswerable (a near miss)
    kind: str              # "paraphrase", "distractor" or "near_miss" ("" where a file does not say)

    @property
    def answerable(self) -> bool:
        return self.answer is not None


def load_own_words_dev(path: Path, paragraphs: Sequence[dict[str, object]]) -> list[DevQuestion]:
    """The questions of `path`; each names a paragraph of `paragraphs` by pid, and an answerable
    one's answer lies verbatim in that paragraph (checked: a set that drifted from the data is an
    error, not a silent change of what is measured)."""
    contexts = {str(p["pid"]): str(p["context"]) for p in paragraphs}
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise DevSetError(f"{path}: line {exc.lineno} is not JSON ({exc.msg})") from None
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not set(row) >= REQUIRED:
            raise DevSetError(f"{path}: question {n} lacks one of {', '.join(sorted(REQUIRED))}")
        context = contexts.get(row["pid"])
        if context is None or (row["answerable"] and row["answer"] not in context):
            raise DevSetError(f"{path}: {row['question']!r} names paragraph {row['pid']!r}, which is not among the "
                              "training articles' or does not hold its answer")
    return [DevQuestion(str(r["pid"]), str(r["question"]), str(r["answer"]) if r["answerable"] else None,
                        str(r.get("kind", ""))) for r in rows]
