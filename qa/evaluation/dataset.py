"""The hand-written QA set: its schema, `QAPair`s and `load_qa_set`.

Labels are character spans in the source files, not chunk ids, so they survive re-chunking: a
retrieved passage (or a citation) is relevant when its `[start, end)` overlaps an evidence span
of the same document.

The set is JSON lines, one question per line:

    {"id": "q001", "question": "...", "history": ["earlier user turn", ...],
     "answerable": true, "answers": ["gold string", ...],
     "evidence": [{"doc_id": "001_x.txt", "start": 0, "end": 120}], "kind": "fact"}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.errors import QAError

KINDS = ("fact", "number", "date", "name", "paraphrase", "multi_doc", "follow_up", "unanswerable")
# What each set in eval/ is for, by file name; reports print it beside the set's figures. Nothing
# may be fitted or chosen on a TEST set (eval/README.md, "Fitted constants").
SET_ROLES = {
    "qa_pairs.jsonl": "seed set: constants are fitted or chosen on it (confidence, abstain thresholds)",
    "calibration.jsonl": "calibration set: the confidence models are fitted on it",
    "own_words.jsonl": "TEST set (users' own words): nothing is fitted or chosen on it",
    "seeds_own_words_dev.jsonl": "development set (users' own words): thresholds are chosen on it",
}


class QASetError(QAError):
    """The QA set file is missing, is not valid JSON lines, or does not match the corpus."""


@dataclass(frozen=True)
class Span:
    """A gold evidence span: `source[start:end]` states the answer."""

    doc_id: str
    start: int
    end: int


@dataclass(frozen=True)
class QAPair:
    """One question of the set; `history` holds the earlier user turns of a dialogue."""

    id: str
    question: str
    answerable: bool
    answers: tuple[str, ...] = ()
    evidence: tuple[Span, ...] = ()
    history: tuple[str, ...] = ()
    kind: str = "fact"


def set_role(path: str | Path) -> str:
    """What the set at `path` is for (`SET_ROLES`), or "" for a set of the user's own."""
    return SET_ROLES.get(Path(path).name, "")


def load_qa_set(path: str | Path) -> list[QAPair]:
    """Read and check a QA set (JSON lines; see the module docstring for the schema).

    Raises:
        QASetError: the file is missing, a line is not JSON or breaks the schema (the message
            names the line number), or two questions share an id.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise QASetError(f"QA set not found: {path}. Pass an existing JSONL file with --set.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise QASetError(f"QA set {path} cannot be read ({exc}). Pass a UTF-8 JSONL file with --set.") from exc
    pairs: list[QAPair] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QASetError(f"{where} is not valid JSON ({exc.msg}). Each line must be one JSON object.") from exc
        pair = _pair_from_row(row, where)
        if pair.id in seen:
            raise QASetError(f"{where}: duplicate id {pair.id!r}. Give every question its own id.")
        seen.add(pair.id)
        pairs.append(pair)
    if not pairs:
        raise QASetError(f"QA set {path} holds no questions. Add one JSON object per line.")
    return pairs


def _pair_from_row(row: Any, where: str) -> QAPair:
    if not isinstance(row, dict):
        raise QASetError(f"{where} is a JSON {type(row).__name__}, not an object.")
    for key in ("id", "question"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise QASetError(f"{where}: {key!r} must be a non-empty string.")
    answerable = row.get("answerable", True)
    if not isinstance(answerable, bool):
        raise QASetError(f"{where}: 'answerable' must be true or false, not {answerable!r}.")
    answers = row.get("answers", [])
    history = row.get("history", [])
    for key, value in (("answers", answers), ("history", history)):
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise QASetError(f"{where}: {key!r} must be a list of non-empty strings.")
    evidence = []
    for item in row.get("evidence", []):
        ok = (isinstance(item, dict) and isinstance(item.get("doc_id"), str)
              and all(isinstance(item.get(k), int) for k in ("start", "end")) and 0 <= item["start"] < item["end"])
        if not ok:
            raise QASetError(f"{where}: evidence {item!r} must be {{'doc_id': str, 'start': int, 'end': int}} "
                             "with 0 <= start < end.")
        evidence.append(Span(item["doc_id"], item["start"], item["end"]))
    if answerable and not (answers and evidence):
        raise QASetError(f"{where}: an answerable question needs 'answers' and 'evidence'.")
    kind = row.get("kind", "fact" if answerable else "unanswerable")
    if kind not in KINDS:
        raise QASetError(f"{where}: invalid kind {kind!r}. Choose from {', '.join(KINDS)}.")
    return QAPair(row["id"], row["question"], answerable, tuple(answers), tuple(evidence), tuple(history), kind)
