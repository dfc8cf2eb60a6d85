"""SQuAD data for the reader, and the fixed, honest split.

Held out (never trained on, never used for a choice): the 17 articles at even positions (2nd,
4th, ..., 34th) in the order titles first appear in `squad-v2.0-dev/paragraphs.jsonl`, in both
SQuAD versions. Model selection uses a few *training* articles (`VALID_EVERY`), which are then
not trained on either; everything else is training data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.bench.common import data_folder

# Every VALID_EVERY-th non-held-out article (v2.0's first, in their order, then v1.1's others)
# is kept for model selection, so that it holds unanswerable questions too.
VALID_EVERY = 6


@dataclass(frozen=True)
class QAItem:
    """One SQuAD question with its paragraph. `answers` is empty for an unanswerable one."""

    qid: str
    title: str
    question: str
    context: str
    answers: tuple[str, ...]

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass(frozen=True)
class Split:
    """Article titles of each part; `held_out_order` in the v2.0 order."""

    train: frozenset[str]
    valid: frozenset[str]
    held_out: frozenset[str]
    held_out_order: tuple[str, ...]


def _titles_in_order(paragraphs: Iterable[dict[str, object]]) -> list[str]:
    titles: list[str] = []
    for row in paragraphs:
        title = str(row["title"])
        if title not in titles:
            titles.append(title)
    return titles


def _read(path: Path) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def make_split(v1_paragraphs: Sequence[dict[str, object]],
               v2_paragraphs: Sequence[dict[str, object]]) -> Split:
    """The fixed split: even positions of the v2.0 title order are held out."""
    v2_titles = _titles_in_order(v2_paragraphs)
    held = tuple(v2_titles[1::2])
    rest = [t for t in v2_titles if t not in held]
    rest += [t for t in _titles_in_order(v1_paragraphs) if t not in held and t not in rest]
    valid = frozenset(rest[VALID_EVERY - 1::VALID_EVERY])
    return Split(train=frozenset(rest) - valid, valid=valid, held_out=frozenset(held),
                 held_out_order=held)


@dataclass(frozen=True)
class SquadData:
    """Both SQuAD dev sets, read once, with the split and each version's paragraphs (v2.0
    numbers their ids anew: 160 of 1,204 name a different paragraph in v1.1)."""

    split: Split
    v1: tuple[QAItem, ...]
    v2: tuple[QAItem, ...]
    v2_paragraphs: tuple[dict[str, object], ...]
    v1_paragraphs: tuple[dict[str, object], ...] = ()

    def part(self, version: int, titles: frozenset[str]) -> list[QAItem]:
        return [q for q in (self.v1 if version == 1 else self.v2) if q.title in titles]

    def training(self, titles: frozenset[str]) -> list[QAItem]:
        """v1.1 questions of `titles` plus v2.0's unanswerable ones (its answerable ones are
        the v1.1 questions again)."""
        return self.part(1, titles) + [q for q in self.part(2, titles) if not q.answerable]


def squad_folders(data: Path | None = None) -> tuple[Path, Path]:
    """The SQuAD v1.1 and v2.0 dev folders in `data` (a folder holding both) or in
    ../shared/benchmarks.

    Raises:
        BenchmarkDataError: one is missing, with what to get and where.
    """
    return (data_folder("squad", None if data is None else Path(data) / "squad-v1.1-dev"),
            data_folder("squad2", None if data is None else Path(data) / "squad-v2.0-dev"))


def load_squad(data: Path | None = None) -> SquadData:
    """Read `squad-v1.1-dev` and `squad-v2.0-dev` from `data` (a folder holding both) or from
    ../shared/benchmarks.

    Raises:
        BenchmarkDataError: a folder or file is missing, with what to get and where.
    """
    v1_dir, v2_dir = squad_folders(data)
    out: dict[int, tuple[QAItem, ...]] = {}
    paragraphs: dict[int, list[dict[str, object]]] = {}
    for version, folder in ((1, v1_dir), (2, v2_dir)):
        paragraphs[version] = _read(folder / "paragraphs.jsonl")
        contexts = {str(p["pid"]): str(p["context"]) for p in paragraphs[version]}
        out[version] = tuple(
            QAItem(qid=str(q["id"]), title=str(q["title"]), question=str(q["question"]),
                   context=contexts[str(q["pid"])],
                   answers=tuple(str(a) for a in q.get("answers") or ()))  # type: ignore[attr-defined]
            for q in _read(folder / "questions.jsonl")
        )
    return SquadData(split=make_split(paragraphs[1], paragraphs[2]), v1=out[1], v2=out[2],
                     v2_paragraphs=tuple(paragraphs[2]), v1_paragraphs=tuple(paragraphs[1]))
