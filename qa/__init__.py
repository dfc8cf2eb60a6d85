"""qa: cited answers over a document corpus, offline.

    import qa
    report = qa.build_index(corpus="seeds", index="index")
    hits = qa.retrieve("Where is US user data stored?", k=5, index="index")
    reply = qa.answer("Where is US user data stored?", history=[], index="index")

Importing does no work: models and indexes load on first use. The functions live in modules
whose names differ from theirs (`qa.retrieval.retrieve`, `qa.answers.answer`,
`qa.index.build_index`), so importing a module never replaces a function of the package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from qa.config import Settings
from qa.errors import (
    CorpusError,
    IndexCorruptError,
    IndexMissingError,
    IndexPathError,
    ModelMissingError,
    QAError,
    QueryError,
    SettingsError,
)
from qa.types import Answer, AnswerStatus, Chunk, Citation, Document, IndexReport, Passage

if TYPE_CHECKING:
    from qa.answers import answer
    from qa.filters import DocFilter
    from qa.index import Index, build_index, load_index, source_text
    from qa.retrieval import retrieve

__all__ = [
    "Answer", "AnswerStatus", "Chunk", "Citation", "CorpusError", "Document", "Index", "IndexCorruptError",
    "IndexMissingError", "IndexPathError", "IndexReport", "ModelMissingError", "Passage", "QAError", "QueryError",
    "Settings", "SettingsError", "answer", "build_index", "load_index", "retrieve", "source_text", "DocFilter",
]

# Public name -> the module that defines it; imported on first use (torch and faiss are heavy).
_LAZY = {"build_index": "qa.index", "load_index": "qa.index", "Index": "qa.index", "retrieve": "qa.retrieval",
         "source_text": "qa.index", "DocFilter": "qa.filters",
         "answer": "qa.answers"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'qa' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
