"""The index a server answers from: `open_index` (load, or build first) and `LiveIndex`.

A server holds one `LiveIndex` per collection (qa/collections.py). A change of documents (the
chat's uploads and removals, qa/manage.py) swaps a new index in whole; a change of its files
by anything else is noticed at the next request, and the folder is read again once it is whole.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from qa.config import Settings
from qa.errors import IndexChangedError, IndexMissingError, QAError
from qa.index import Index, build_index, load_index
from qa.index.files import folder_state
from qa.index.store import MEMORY_MB
from qa.index.text import SourceText

log = logging.getLogger(__name__)


def open_index(settings: Settings, log_line: Callable[[str], None] | None = None, *, update: bool = False) -> Index:
    """Load `settings.index`, building it from `settings.corpus` first when it is missing (or,
    with `update`, bringing it up to date with the corpus first: one process, one model load).

    Raises:
        IndexPathError: the index path cannot be built into.
        CorpusError: the index must be built and the corpus has no readable document.
        IndexCorruptError: the index on disk cannot be used.
    """
    if update:
        build_index(settings.corpus, settings.index, settings=settings, log=log_line)
        return load_index(settings.index, memory_mb=settings.index_memory_mb)
    try:
        return load_index(settings.index, memory_mb=settings.index_memory_mb)
    except IndexMissingError:
        if log_line is not None:
            log_line(f"No index at {settings.index}: building it from {settings.corpus} (first run only).")
        build_index(settings.corpus, settings.index, settings=settings, log=log_line)
        return load_index(settings.index, memory_mb=settings.index_memory_mb)


_T = TypeVar("_T")


class LiveIndex:
    """The index the chat answers from. A change of documents replaces it whole: each question
    takes the pair once, at its start, and keeps it to its end (old or new, never a mix).

    Anything else that changes its files on disk (a backup restore, an rsync, a second tool, a
    `qa index` in another process) is noticed by `get()`, at every request (one `stat` per file):
    the folder is read again when it is a whole, valid index, and until then every question is
    refused in one line. The old index is never read through a map its files may have left
    (qa/index/files.py)."""

    def __init__(self, index: Index, memory_mb: float = MEMORY_MB) -> None:
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._pair = (index, SourceText(index))
        self._views: dict[str, Any] = {}
        self._memory_mb = memory_mb
        self._refused: tuple[Any, str] | None = None   # the folder's state at the last failed reload, and why

    def get(self) -> tuple[Index, SourceText]:
        """The index to answer from, read again first if its files changed on disk.

        Raises:
            IndexChangedError: they changed, and the folder is not a whole index now.
        """
        pair = self._pair
        change = pair[0].files.changed()
        return pair if change is None else self._reload(pair[0], change)

    def shown(self) -> tuple[Index, SourceText]:
        """The index last answered from, or the one read again if that works: for what a page
        shows (header, documents list), which a damaged folder should not blank out."""
        try:
            return self.get()
        except QAError:
            return self._pair

    def swap(self, index: Index) -> None:
        with self._lock:
            self._pair = (index, SourceText(index))
            self._views = {}

    def _reload(self, old: Index, change: str) -> tuple[Index, SourceText]:
        with self._reload_lock:
            if self._pair[0] is not old and self._pair[0].files.changed() is None:
                return self._pair   # another request has read it again meanwhile
            state = folder_state(old.path)
            if self._refused is not None and self._refused[0] == state:
                raise IndexChangedError(self._refused[1])   # nothing changed since: not read again
            try:
                new = load_index(old.path, memory_mb=self._memory_mb)
            except QAError as exc:
                message = f"The index at {old.path} changed on disk ({change}) and cannot be used as it is now: {exc}"
                self._refused = (state, message)
                log.warning("%s", message)
                raise IndexChangedError(message) from None
            self._refused = None
            log.warning("The index at %s changed on disk (%s); it was read again and answers from its new files.",
                        old.path, change)
            self.swap(new)
            return self._pair

    def view(self, name: str, make: Callable[[Index], _T]) -> _T:
        """`make(index)` for the live index, computed once per index (the documents list and the
        first screen read every document row: seconds at 10^6 documents, so not per page load)."""
        with self._lock:
            index, views = self._pair[0], self._views
            if name not in views:
                views[name] = make(index)
            return views[name]  # type: ignore[no-any-return]
