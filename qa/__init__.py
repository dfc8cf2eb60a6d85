"""qa: cited answers over a document corpus, offline.

    import qa
    report = qa.build_index(corpus="seeds", index="index")
    hits = qa.retrieve("Where is US user data stored?", k=5, index="index")
    reply = qa.answer("Where is US user data stored?", history=[], index="index")

Importing does no work: models and indexes load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qa.config import Settings
from qa.errors import (
    CorpusError,
    IndexCorruptError,
    IndexMissingError,
    ModelMissingError,
    QAError,
    QueryError,
    SettingsError,
)
from qa.types import Answer, Chunk, Citation, Document, IndexReport, Passage

if TYPE_CHECKING:
    from qa.index import build_index, load_index
    from qa.retrieve import retrieve

__all__ = [
    "Answer", "Chunk", "Citation", "CorpusError", "Document", "IndexCorruptError", "IndexMissingError",
    "IndexReport", "ModelMissingError", "Passage", "QAError", "QueryError", "Settings", "SettingsError",
    "answer", "build_index", "load_index", "retrieve",
]

_LAZY = {"build_index": "qa.index", "load_index": "qa.index", "retrieve": "qa.retrieve",
         "answer": "qa.answer"}


def __getattr__(name: str) -> Any:
    # Heavy modules (torch, faiss) are imported on first use, not by `import qa`.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'qa' has no attribute {name!r}")
