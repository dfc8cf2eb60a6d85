"""Errors a user can act on: each message says what was wrong and what to do about it."""

from __future__ import annotations


class QAError(Exception):
    """Base class for every error `qa` raises on purpose; the message is meant for a person."""


class SettingsError(QAError):
    """A setting has an unknown name or a value outside its allowed range."""


class CorpusError(QAError):
    """The corpus folder is missing, empty, or holds no readable document."""


class IndexMissingError(QAError):
    """No index was found where one was expected; build it with `qa index`."""


class IndexPathError(QAError):
    """The index path cannot be built into: a file, a folder that is not a qa index, or the corpus."""


class IndexCorruptError(QAError):
    """The index on disk cannot be read or was built by an incompatible version or model."""


class IndexChangedError(IndexCorruptError):
    """The index's files changed on disk while it was in use (a copy, restore or other tool
    wrote into it): the question is refused, and the folder is read again when it is whole."""


class QueryError(QAError):
    """The question, search query or chat history cannot be used as given (empty, not text,
    too long, or of the wrong shape)."""


class DatabaseError(QAError):
    """The database of saved conversations and votes cannot be opened, read or written
    (damaged, locked by another program, or written by a newer qa)."""


class ModelMissingError(QAError):
    """The offline embedding model package is not installed."""


class BenchmarkDataError(QAError):
    """A public benchmark's files were not found where they were looked for."""
