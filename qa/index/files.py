"""The files of a loaded index: checked against the manifest's checksums, kept from changing
under the process that reads them, and watched for changes.

A loaded index reads its files in one of two ways (`Settings.index_memory_mb` decides, per file):

- **into memory** (files up to 16 MB by default): read once through one descriptor, hashed whole,
  and used from that copy. Nothing on disk can change what the process reads afterwards.
- **memory-mapped** (larger files, where the numbers matter: 10^6 chunks open in under a second):
  the process takes a read *lease* on the file first (Linux `F_SETLEASE`). The kernel then holds
  back anyone who opens the file for writing or truncates it, and tells the lease holder; a
  watcher thread notices within `WATCH_S`, marks the index stale, replaces every page of its
  maps with zeros (the same addresses, now anonymous memory) and only then lets the lease go.
  So a truncated file is never read through a stale map (no SIGBUS); a question that was being
  answered meanwhile sees `stale` when it ends and is refused. Where no lease can be had (not the
  file's owner, a network file system, not Linux), the file is read into memory instead.

Replacing a file by renaming another over it, or deleting it, never touches what is mapped (the
old inode lives while it is mapped); `changed()` notices it (device, inode, size and
modification time against what was opened: one `stat` per file, cheap enough for every request),
and the caller reloads the folder or refuses.

Checksums: format 3 manifests record, for every file, its size and XXH3-128 digest, and for files
above `CHECK_WHOLE_BYTES` also a digest of `SAMPLE_BLOCKS` blocks spread over it. A load checks
every size, hashes files up to `CHECK_WHOLE_BYTES` whole and samples larger ones; `qa index
--verify` hashes everything (`qa.index.store.verify_index`). XXH3 because a load pays for it:
4.4 GB/s here against blake2b's 0.41 and sha256's 0.87 (one 64 MB buffer, this 2-core machine);
it finds damage, not forgery, and a forger who can rewrite files can rewrite the manifest too.
"""

# About 470 lines in one module: checksums, read leases on memory maps and the watcher that
# drops an index whose files change are one mechanism (a lease broken by a writer is what the
# watcher reacts to); split, each half would be wrong without the other.

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import io
import logging
import mmap
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from qa.errors import IndexChangedError, IndexCorruptError

CHECK_WHOLE_BYTES = 16 << 20   # hashed whole at every load up to this size (about 40 ms); sampled above
SAMPLE_BLOCKS = 64
SAMPLE_BYTES = 64 << 10        # 64 blocks of 64 KiB: 4 MiB read to check a file of any size
WATCH_S = 0.05                 # how often leases are polled: a writer waits about this long
NOT_HASHED = (".qa-index", "manifest.json")   # the marker, and the manifest that holds the checksums

_F_SETLEASE, _F_GETLEASE = 1024, 1025   # Linux fcntl commands (not in Python's fcntl module)
_LEASES = sys.platform.startswith("linux")


# ---- checksums ----------------------------------------------------------------------------------

def whole_digest(data: Any) -> str:
    """XXH3-128 (hex) of a buffer."""
    return xxhash.xxh3_128_hexdigest(memoryview(data))


def sampled_digest(data: Any) -> str:
    """XXH3-128 of the size and `SAMPLE_BLOCKS` blocks of `SAMPLE_BYTES` spread evenly over
    `data`, first and last included: catches truncation, and damage where it samples."""
    view = memoryview(data)
    return _sampled(len(view), lambda at: view[at:at + SAMPLE_BYTES])


def _sampled(size: int, block_at: Any) -> str:
    digest = xxhash.xxh3_128(size.to_bytes(8, "little"))
    span = max(size - SAMPLE_BYTES, 0)
    for i in range(SAMPLE_BLOCKS):
        digest.update(block_at(span * i // (SAMPLE_BLOCKS - 1)))
    return digest.hexdigest()


def file_digests(fh: Any) -> dict[str, Any]:
    """The checksum entry of an open file, read in blocks (never mapped: a file truncated while
    it is hashed gives a wrong digest, not a crash)."""
    fh.seek(0)
    whole = xxhash.xxh3_128()
    size = 0
    for block in iter(lambda: fh.read(1 << 20), b""):
        whole.update(block)
        size += len(block)
    entry: dict[str, Any] = {"bytes": size, "xxh3_128": whole.hexdigest()}
    if size > CHECK_WHOLE_BYTES:
        def block_at(at: int) -> bytes:
            fh.seek(at)
            return bytes(fh.read(SAMPLE_BYTES))

        entry["sampled"] = _sampled(size, block_at)
    return entry


def file_checksums(folder: Path) -> dict[str, dict[str, Any]]:
    """The checksum entry of every file in an index folder (see the module docstring), by path
    relative to the folder with `/` separators."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_file() or path.is_symlink() or rel in NOT_HASHED or rel.startswith(NOT_HASHED[1]):
            continue
        with open(path, "rb") as fh:
            found[rel] = file_digests(fh)
    return found


def corrupt_message(path: Path, why: str, index: Path) -> str:
    return f"{path} is corrupt ({why}): rebuild it with `qa index --rebuild --index {index}`."


def check_entry(path: Path, data: Any, entry: Mapping[str, Any] | None, index: Path, *, whole: bool) -> None:
    """Raise IndexCorruptError unless `data` (the bytes of `path`) matches its checksum entry:
    the size always; the whole digest when `whole` or the file is small, else the sampled one."""
    size = len(memoryview(data))
    found: dict[str, Any] = {"bytes": size}
    if whole or size <= CHECK_WHOLE_BYTES or "sampled" not in (entry or {}):
        found["xxh3_128"] = whole_digest(data)
    else:
        found["sampled"] = sampled_digest(data)
    check_digests(path, found, entry, index)


def check_open_file(path: Path, fh: Any, entry: Mapping[str, Any] | None, index: Path, *, whole: bool) -> None:
    """`check_entry` for an open file, read in blocks (never mapped)."""
    size = os.fstat(fh.fileno()).st_size
    if whole or size <= CHECK_WHOLE_BYTES or "sampled" not in (entry or {}):
        found = file_digests(fh)
        found.pop("sampled", None)
    else:
        def block_at(at: int) -> bytes:
            fh.seek(at)
            return bytes(fh.read(SAMPLE_BYTES))

        found = {"bytes": size, "sampled": _sampled(size, block_at)}
    check_digests(path, found, entry, index)


def check_digests(path: Path, found: Mapping[str, Any], entry: Mapping[str, Any] | None, index: Path) -> None:
    """Raise IndexCorruptError unless the size and digests `found` for `path` match `entry`."""
    if entry is None:
        raise IndexCorruptError(corrupt_message(path, "it has no checksum in the manifest", index))
    if found["bytes"] != int(entry.get("bytes", -1)):
        raise IndexCorruptError(corrupt_message(
            path, f"{found['bytes']:,} bytes, the manifest says {int(entry.get('bytes', -1)):,}", index))
    if any(found[k] != entry.get(k) for k in ("xxh3_128", "sampled") if k in found):
        raise IndexCorruptError(corrupt_message(path, "checksum mismatch", index))


# ---- one opened file ----------------------------------------------------------------------------

@dataclass(frozen=True)
class FileState:
    """What a file was when it was opened: compared with `os.stat` to notice a change."""

    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileState:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def change(self, now: os.stat_result) -> str | None:
        """How the file at the same path differs now (None: not at all)."""
        if (now.st_dev, now.st_ino) != (self.device, self.inode):
            return "was replaced"
        if now.st_size != self.size:
            return f"changed size ({self.size:,} -> {now.st_size:,} bytes)"
        if now.st_mtime_ns != self.mtime_ns:
            return "was written to"
        return None


class IndexFiles:
    """The files one loaded index was read from: their states, leases and maps.

    Args:
        folder: the index folder.
        memory_bytes: files up to this size are read into memory; larger ones are mapped.
        shown: the folder as messages name it (default: `folder`).
    """

    def __init__(self, folder: Path, memory_bytes: int, *, shown: Path | None = None) -> None:
        self.folder = folder
        self.shown = shown or folder
        self.memory_bytes = memory_bytes
        self.checksums: Mapping[str, Mapping[str, Any]] | None = None
        self.states: dict[str, FileState] = {}
        self.stale: str | None = None    # why the maps may no longer be read (set once, never cleared)
        self._maps: list[mmap.mmap] = []
        self._leases: dict[str, int] = {}
        self._lock = threading.Lock()
        # Collected while an array over a map may live on elsewhere: zeros first, then the leases.
        self._finalizer = weakref.finalize(self, _defuse, self._maps, self._leases)
        self._finalizer.atexit = False   # the process's end releases everything anyway

    @property
    def mapped(self) -> list[str]:
        """The files read through a memory map (under a lease)."""
        return sorted(self._leases)

    def path(self, name: str) -> Path:
        return self.folder / name

    def read(self, name: str, *, checked: bool = True) -> bytes:
        """The whole file, read into memory (and checked against its checksum, when there are
        checksums and `checked`)."""
        with open(self.path(name), "rb") as fh:
            st = os.fstat(fh.fileno())
            data = fh.read()
        self.states[name] = FileState.of(st)
        if checked:
            self._check(name, data)
        return data

    def buffer(self, name: str, *, mappable: bool = True) -> Any:
        """The file's bytes: read into memory when small (or not `mappable`, or no lease can be
        had), else a read-only map of it under a read lease. Checked against its checksum."""
        fh = open(self.path(name), "rb")   # noqa: SIM115 - closed below, or kept open under the lease
        try:
            st = os.fstat(fh.fileno())
            if not mappable or st.st_size <= self.memory_bytes or not st.st_size or not _take_lease(fh.fileno()):
                data: Any = fh.read()
                self.states[name] = FileState.of(st)
                self._check(name, data)
                return data
            lease_fd = os.dup(fh.fileno())   # the lease belongs to this descriptor's open file
            self._leases[name] = lease_fd
            self._watch()
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            self._maps.append(mapped)
            self.states[name] = FileState.of(st)
            if self.checksums is not None:
                # Read through the descriptor, not the map: the same bytes (the lease holds them),
                # but faulting sampled blocks in through the map made each large file cost 130 MiB
                # of resident pages here (the kernel maps whole 2 MiB folios).
                check_open_file(self.shown / name, fh, self.checksums.get(name), self.shown, whole=False)
            return mapped
        finally:
            fh.close()

    def array(self, name: str, *, mappable: bool = True) -> np.ndarray:
        """A `.npy` file as a read-only array over `buffer(name)` (no pickle, no copy)."""
        return npy_array(self.buffer(name, mappable=mappable), self.path(name))

    def _check(self, name: str, data: Any) -> None:
        if self.checksums is not None:
            check_entry(self.shown / name, data, self.checksums.get(name), self.shown, whole=False)

    # ---- while in use --------------------------------------------------------------------------

    def changed(self) -> str | None:
        """What changed since the files were opened: `"chunk_vectors.npy was replaced"`, or why
        the index went stale; None when nothing did. One `stat` per file (and one `fcntl` per
        lease): cheap enough to call for every request."""
        self.poll()
        if self.stale:
            return self.stale
        for name, state in self.states.items():
            try:
                now = os.stat(self.path(name))
            except FileNotFoundError:
                return f"{name} was deleted"
            except OSError as exc:
                return f"{name} cannot be read ({exc.strerror})"
            change = state.change(now)
            if change:
                return f"{name} {change}"
        return None

    def check(self) -> None:
        """Raise IndexChangedError when the maps may no longer be read."""
        self.poll()
        if self.stale:
            raise IndexChangedError(f"The index at {self.shown} changed on disk while in use ({self.stale}); "
                                    "ask again.")

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Around anything that reads the index: refused when it is stale before, and when it went
        stale meanwhile (what was read may be the zeros that replaced a map), whatever it raised."""
        self.check()
        try:
            yield
        except Exception:
            self.check()
            raise
        self.check()

    def poll(self) -> None:
        """Let go of the leases once any of them is being broken (a writer is waiting)."""
        if not self._leases or self.stale:
            return
        for name, fd in list(self._leases.items()):
            try:
                held = fcntl.fcntl(fd, _F_GETLEASE) == fcntl.F_RDLCK
            except OSError:
                held = False
            if not held:
                self.defuse(f"{name} was opened for writing")
                return

    def defuse(self, why: str) -> None:
        """Mark the index stale, put zero pages where its files were mapped, then release the
        leases, in that order: nothing reads a file that a writer may be truncating."""
        with self._lock:
            if self.stale:
                return
            self.stale = why
            _defuse(self._maps, self._leases)

    def _watch(self) -> None:
        with _watcher_lock:
            _WATCHED.add(self)
        _start_watcher()


def folder_state(folder: Path) -> tuple[Any, ...]:
    """What an index folder (and its bm25/) holds now: names, inodes, sizes and modification
    times. Equal states mean nothing was changed in between (a failed reload is not retried)."""
    found: list[tuple[Any, ...]] = []
    for sub in (folder, folder / "bm25"):
        try:
            with os.scandir(sub) as entries:
                for entry in entries:
                    with contextlib.suppress(OSError):
                        st = entry.stat(follow_symlinks=False)
                        found.append((entry.path, st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError as exc:
            found.append((str(sub), exc.errno, 0, 0))
    return tuple(sorted(found))


# ---- the lease and the zero pages ---------------------------------------------------------------

def _take_lease(fd: int) -> bool:
    """A read lease on `fd`'s file, with no signal on its break (`poll` reads the state instead):
    True when granted."""
    if not _LEASES:
        return False
    _ignore_sigio()
    try:
        fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_RDLCK)
    except OSError:   # EAGAIN (open for writing somewhere), EACCES (not our file), EINVAL (NFS...)
        return False
    # The kernel signals the lease holder with SIGIO, which by default ends the process: no owner,
    # no signal (the watcher polls the lease instead).
    fcntl.fcntl(fd, fcntl.F_SETOWN, 0)
    return True


def _ignore_sigio() -> None:
    """SIGIO's default action ends the process; a lease break signals it before `F_SETOWN` can
    take the owner away. Ignore it, when the main thread may still say so and nobody handles it."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGIO) == signal.SIG_DFL:
        signal.signal(signal.SIGIO, signal.SIG_IGN)


def _defuse(maps: list[mmap.mmap], leases: dict[str, int]) -> None:
    """Zero pages over every map, then release the leases; if a map cannot be replaced, the
    leases are kept (a writer then waits for the kernel to break them, /proc/sys/fs/lease-break-time)."""
    try:
        for mapped in maps:
            _zero_map(mapped)
    except OSError:
        logging.getLogger("qa.index").exception("An index file's map could not be replaced; its lease is kept")
        return
    _release(leases)


def _release(leases: dict[str, int]) -> None:
    for fd in leases.values():
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_UNLCK)
        with contextlib.suppress(OSError):
            os.close(fd)
    leases.clear()


_libc: Any = None


def _zero_map(mapped: mmap.mmap) -> None:
    """Replace the pages of `mapped` with anonymous zero pages at the same address (one
    `mmap(MAP_FIXED)`): whatever still points there reads zeros, never a truncated file."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mmap.restype = ctypes.c_void_p
        _libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                               ctypes.c_long]
    if mapped.closed or not len(mapped):
        return
    address = np.frombuffer(mapped, dtype=np.uint8).ctypes.data
    prot_read, private, fixed, anonymous = 0x1, 0x02, 0x10, 0x20
    got = _libc.mmap(address, len(mapped), prot_read, private | fixed | anonymous, -1, 0)
    if got != address:
        raise OSError(ctypes.get_errno(), "cannot replace a mapped index file with zero pages")


_WATCHED: weakref.WeakSet[IndexFiles] = weakref.WeakSet()
_watcher_lock = threading.Lock()
_watcher: threading.Thread | None = None


def _start_watcher() -> None:
    global _watcher
    with _watcher_lock:
        if _watcher is None or not _watcher.is_alive():
            _watcher = threading.Thread(target=_watch_leases, name="qa-index-leases", daemon=True)
            _watcher.start()


def _watch_leases() -> None:
    """Poll every leased index: a writer waits about `WATCH_S`, not the kernel's 45 s."""
    while True:
        with _watcher_lock:
            watched = list(_WATCHED)
        for files in watched:
            files.poll()
        del watched
        time.sleep(WATCH_S)


# ---- .npy without numpy's file handling ----------------------------------------------------------

def npy_header(head: bytes, path: Path) -> tuple[tuple[int, ...], bool, np.dtype[Any], int]:
    """`(shape, fortran order, dtype, data offset)` from the first bytes of a `.npy` file.

    Raises:
        ValueError: it is not a `.npy` header, or the array holds Python objects.
    """
    stream = io.BytesIO(head)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    except Exception as exc:   # numpy raises ValueError, but also SyntaxError for a mangled header
        raise ValueError(f"{path.name} has no readable .npy header ({exc})") from None
    if dtype.hasobject:
        raise ValueError(f"{path.name} holds Python objects, which an index never stores")
    return tuple(shape), bool(fortran), dtype, stream.tell()


def npy_array(buffer: Any, path: Path) -> np.ndarray:
    """The array stored in a `.npy` buffer, as a read-only view over it (no pickle, no copy).

    Raises:
        ValueError: the header is not a `.npy` header, or the buffer is shorter than the array.
    """
    view = memoryview(buffer)
    shape, fortran, dtype, offset = npy_header(bytes(view[:4096]), path)
    count = int(np.prod(shape, dtype=np.int64))
    if offset + count * dtype.itemsize > len(view):
        raise ValueError(f"{path.name} is shorter than its header says")
    array = np.ndarray(shape, dtype=dtype, buffer=buffer, offset=offset, order="F" if fortran else "C")
    array.flags.writeable = False
    return array
