"""Questions in users' own words about the SQuAD training articles, for the reader's training and
for its choice of epoch.

SQuAD's questions borrow their paragraph's words, and its unanswerable questions are written
against one paragraph. Users ask in their own words and ask near misses: the same people and
things, one constraint changed. Helpers who never saw the code wrote such questions from
paragraphs alone:

- `training-data/squad_own_words_train.jsonl` (`OWN_WORDS_TRAIN`): about SQuAD v1.1 paragraphs of
  training articles that no development question is about; `--own-words-train` trains on them.
- `eval/squad_own_words_dev.jsonl` (`qa.evaluation.own_words_dev`): about v2.0 paragraphs of 18
  other training and validation articles; `--own-words-dev` adds their SQuAD 2.0 F1 (at the
  margin best on them) to the key the epoch is chosen by.

Neither is ever reported as a test (eval/own_words.jsonl is the test, about other documents).
"""

from __future__ import annotations

from pathlib import Path

from qa.evaluation.own_words_dev import DevSetError, load_own_words_dev
from qa.training.data import QAItem, SquadData

OWN_WORDS_TRAIN = Path(__file__).resolve().parents[2] / "training-data" / "squad_own_words_train.jsonl"


def own_words_items(path: Path, squad: SquadData, version: int, titles: frozenset[str],
                    prefix: str) -> list[QAItem]:
    """The questions of `path` as reader items; each must name a paragraph of SQuAD `version`
    in one of `titles` (the articles the file may be about) and, if answerable, hold its answer
    verbatim.

    Raises:
        DevSetError: a question names another paragraph or an answer the paragraph lacks; the
            file cannot be read (each says which).
    """
    paragraphs = [p for p in (squad.v1_paragraphs if version == 1 else squad.v2_paragraphs) if p["title"] in titles]
    contexts = {str(p["pid"]): (str(p["title"]), str(p["context"])) for p in paragraphs}
    try:
        questions = load_own_words_dev(Path(path), paragraphs)
    except OSError as exc:
        raise DevSetError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    return [QAItem(qid=f"{prefix}-{n}", title=contexts[q.pid][0], question=q.question, context=contexts[q.pid][1],
                   answers=(q.answer,) if q.answer is not None else ())
            for n, q in enumerate(questions, 1)]
