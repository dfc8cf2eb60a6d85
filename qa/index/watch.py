"""`qa index --watch`: keep an index up to date with its corpus folder.

The folder is polled (every `interval` seconds: no platform-specific file events, so it works the
same on network drives and in containers). Changes are collected until the folder has been quiet
for `debounce` seconds (an editor's save or a copy in progress is one change, not ten), then one
line per changed file is printed and the index is updated incrementally and atomically, exactly
as `qa index` does: questions served meanwhile are answered from the old or the new index.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from qa.config import Settings
from qa.errors import QAError
from qa.index.build import build_index
from qa.load import corpus_files

Snapshot = dict[str, tuple[int, int]]


def snapshot(corpus: Path, settings: Settings) -> Snapshot:
    """doc_id -> (mtime in ns, size) of every file a build would look at."""
    found: Snapshot = {}
    for path, doc_id in corpus_files(corpus, settings.follow_external_links):
        try:
            stat = path.stat()
        except OSError:
            continue
        found[doc_id] = (stat.st_mtime_ns, stat.st_size)
    return found


def changes(before: Snapshot, after: Snapshot) -> list[str]:
    """One line per file that was added, changed or removed, sorted by doc_id."""
    lines = []
    for doc_id in sorted(set(before) | set(after)):
        if doc_id not in before:
            lines.append(f"added: {doc_id}")
        elif doc_id not in after:
            lines.append(f"removed: {doc_id}")
        elif before[doc_id] != after[doc_id]:
            lines.append(f"changed: {doc_id}")
    return lines


def watch(settings: Settings, *, log: Callable[[str], None] = print, interval: float = 1.0,
          debounce: float = 2.0, stop: threading.Event | None = None) -> None:
    """Build the index, then update it whenever the corpus changes, until `stop` is set (or the
    process is interrupted). A failed update (say, every file was removed) is reported and the
    old index kept; watching goes on."""
    corpus = Path(settings.corpus)
    stop = stop or threading.Event()
    build_index(settings=settings, log=log)
    seen = snapshot(corpus, settings)
    log(f"Watching {corpus} for changes (every {interval:g} s; Ctrl-C stops).")
    pending: Snapshot | None = None
    quiet_since = 0.0
    indexed = seen
    while not stop.wait(interval):
        now = snapshot(corpus, settings)
        if now != seen:
            seen, pending, quiet_since = now, now, time.monotonic()
            continue
        if pending is not None and time.monotonic() - quiet_since >= debounce:
            for line in changes(indexed, pending):
                log(line)
            try:
                build_index(settings=settings, log=log)
            except QAError as exc:
                log(f"Not updated: {exc}")
            indexed, pending = pending, None
