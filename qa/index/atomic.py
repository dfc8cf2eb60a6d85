"""The index folder as the product's own: what counts as ours, the build lock, the atomic swap,
and the clean-up of killed builds.

A build never writes into, renames or deletes anything it did not create:

- an index folder carries a marker file (`.qa-index`), written first into every folder a build
  makes, so a folder is recognised as ours before anything in it is replaced or removed;
- a path that exists and is not an index (a user's folder, a file, a symbolic link), or that
  is, contains or lies inside the corpus, is refused before anything is touched
  (`check_index_target`);
- the new index is written beside the old one (`<name>.tmp-<hex>`, marked) and swapped in with
  one `renameat2(RENAME_EXCHANGE)`, so a reader sees the old index or the new one, never neither;
- leftovers of killed builds are removed at the next build or load, only when they carry the
  marker, so at most one build folder exists beside an index at any time.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from qa.errors import IndexPathError, QAError

MARKER = ".qa-index"
MANIFEST = "manifest.json"
_MARKER_TEXT = (
    "This folder is a qa index (see manifest.json). qa replaces it as a whole when it rebuilds\n"
    "the index and never writes into a folder that lacks this file.\n"
)
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def is_index_folder(path: Path) -> bool:
    """Whether `path` is a folder that a qa build made: it has the marker, or (indexes written
    before the marker existed) a manifest that parses as a qa manifest."""
    if path.is_symlink() or not path.is_dir():
        return False
    if (path / MARKER).is_file():
        return True
    try:
        data = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and {"format_version", "model", "files"} <= set(data)


def check_index_target(index: Path, corpus: Path | None = None) -> None:
    """Refuse an index path that a build could damage; touch nothing.

    Raises:
        IndexPathError: the path is a file or a symbolic link, is an existing folder that is
            not empty and not a qa index, or is, contains or lies inside the corpus.
    """
    fix = "Pass a new folder (or an existing qa index) with --index."
    if index.is_symlink():
        raise IndexPathError(f"The index path {index} is a symbolic link; qa will not replace it. {fix}")
    if index.exists() and not index.is_dir():
        raise IndexPathError(f"The index path {index} is a file, not an index folder; it was left alone. {fix}")
    if corpus is not None:
        here, docs = index.resolve(), corpus.resolve()
        if here == docs:
            raise IndexPathError(f"The index path {index} is the corpus folder itself. {fix}")
        if docs in here.parents:
            raise IndexPathError(
                f"The index path {index} lies inside the corpus {corpus}; its files would be read as "
                f"documents. {fix}")
        if here in docs.parents:
            raise IndexPathError(
                f"The index path {index} contains the corpus {corpus}; a build replaces the whole "
                f"index folder. {fix}")
    if index.is_dir() and not is_index_folder(index) and _has_entries(index):
        raise IndexPathError(
            f"The folder {index} exists and is not a qa index (no {MARKER} or manifest.json); "
            f"nothing in it was touched. {fix}")


def _has_entries(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return any(True for _ in entries)
    except OSError:
        return True  # unreadable: treat as holding something of the user's


def new_build_folder(index: Path) -> Path:
    """A fresh, marked folder beside `index` for a build to write into."""
    tmp = index.parent / f"{index.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    # The marker goes first: a build killed a moment later leaves a folder we recognise.
    mark_index_folder(tmp)
    return tmp


def swap_in(new: Path, index: Path, corpus: Path | None = None) -> None:
    """Put the complete build `new` at `index`, so that a reader sees the old index or the new
    one, never neither; the old index is then removed.

    Linux swaps the two folders in one atomic `renameat2(RENAME_EXCHANGE)`. Elsewhere two
    renames are needed; `recover` puts the old index back if a build dies between them.

    Raises:
        IndexPathError: something that is not ours appeared at `index` during the build.
    """
    check_index_target(index, corpus)  # again: the build took a while
    if not index.exists():
        os.rename(new, index)
        return
    libc_name = ctypes.util.find_library("c")
    renameat2 = getattr(ctypes.CDLL(libc_name, use_errno=True), "renameat2", None) if libc_name else None
    if renameat2 is not None:
        rc = renameat2(_AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(index), _RENAME_EXCHANGE)
        if rc == 0:
            shutil.rmtree(new, ignore_errors=True)  # `new` now holds the old index (or an empty folder)
            return
        if ctypes.get_errno() not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(ctypes.get_errno(), f"cannot swap {new} into {index}")
    old = index.parent / f"{index.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(index, old)
    os.rename(new, index)
    shutil.rmtree(old, ignore_errors=True)


def recover(index: Path) -> bool:
    """If a build died between its two renames, move the old index back into place.

    Returns:
        Whether an index is at `index` now.
    """
    if (index / MANIFEST).exists():
        return True
    if index.exists() and (not index.is_dir() or _has_entries(index)):
        return False  # something else is there: never replaced here
    olds = sorted((p for p in _beside(index, "old") if (p / MANIFEST).exists()),
                  key=lambda p: p.stat().st_mtime)
    if not olds:
        return False
    if index.exists():
        index.rmdir()
    os.rename(olds[-1], index)
    return True


def remove_leftovers(index: Path) -> list[Path]:
    """Remove the folders of killed builds beside `index` (the caller holds the build lock).

    Only marked folders (or empty ones) named `<index>.tmp-*` / `<index>.old-*` are removed.

    Returns:
        The folders removed.
    """
    recover(index)
    removed = []
    for folder in (*_beside(index, "tmp"), *_beside(index, "old")):
        if (folder / MARKER).is_file() or is_index_folder(folder) or not _has_entries(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _beside(index: Path, kind: str) -> list[Path]:
    try:
        return [p for p in index.parent.glob(f"{index.name}.{kind}-*") if p.is_dir() and not p.is_symlink()]
    except OSError:
        return []


def _lock_path(index: Path) -> Path:
    return index.parent / f".{index.name}.lock"


@contextlib.contextmanager
def build_lock(index: Path) -> Iterator[None]:
    """Hold the one build lock of `index` (a lock file beside it).

    Raises:
        QAError: another build of the same index is running.
    """
    index.parent.mkdir(parents=True, exist_ok=True)
    with open(_lock_path(index), "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise QAError(f"Another build of {index} is running. Wait for it to finish, then try again.") from exc
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def tidy_if_idle(index: Path) -> None:
    """At load: remove leftovers of killed builds when no build of `index` is running.

    Best effort: a read-only location or a running build leaves everything as it is.
    """
    if not (_beside(index, "tmp") or _beside(index, "old")):
        return
    try:
        with build_lock(index):
            remove_leftovers(index)
    except (QAError, OSError):
        pass


def mark_index_folder(folder: Path) -> None:
    """Write the marker that says `folder` is a qa index (before anything else goes in)."""
    (folder / MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
