"""OCR for scanned pages: Debian's tesseract, run as a program, with results cached by page image.

The engine was chosen by measurement (`qa bench ocr`, docs/ocr.md): on pages printed here from
known text, rendered at 200 dpi, turned slightly and speckled, tesseract 5.3 read them with a
character error rate of a fraction of a percent in about 2 CPU-seconds a page; rapidocr-onnxruntime
(whose wheel does carry its models) made 6-12% errors, mostly lost spaces, in 22-28 CPU-seconds.
tesseract is called as a program (no pytesseract or tesserocr: neither adds anything that one
`subprocess.run` does not, and tesserocr must be compiled against the library).

Each page runs in its own tesseract process on one thread (`OMP_THREAD_LIMIT=1`), `threads` pages
at a time: tesseract's own OpenMP threads made a page slower, not faster, on a busy 2-core machine.

Results are cached in `<cache_dir>/ocr/` (default `~/.cache/qa/ocr`), not in the index folder:
the upload check reads a file before the build does, `--rebuild` and a second index of the same
files read it again, and a build killed after an hour of OCR must not lose it; the index folder
is replaced whole by every build. Two keys lead to a page's text: the rendered page image
(sha256 of its pixels, with the engine and its settings), so a changed file reuses its unchanged
pages, and the file's sha256 with the page number and resolution, so an unchanged file is not
even rendered again. The cache holds recognized text of your documents; it is kept under
`max_ocr_cache_mb`, least recently used first out, and may be deleted at any time.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from qa.config import Settings

if TYPE_CHECKING:
    from PIL.Image import Image

# Scanned PDF pages are rendered at this resolution for OCR. Measured on 200-dpi scans (docs/ocr.md):
# 300 dpi made the scanner's specks into blobs tesseract read as letters (3% of characters wrong
# against 0.2%) and took a third longer; 150 dpi read 10-point text as well and 11% faster, but a
# fax's 8-point small print needs the 200.
OCR_DPI = 200
LANGUAGE = "eng"
# A page tesseract has not read after this long is given up with one line (a page takes 2-5 s).
PAGE_TIMEOUT_S = 120
# The rule for "auto": a PDF page is read by OCR when it has no text layer, or only a sliver of
# one (fewer than SLIVER_CHARS characters other than spaces) while images cover at least
# SCAN_IMAGE_SHARE of it: a scanned page with a typed header, a Bates number or a fax line. Printed
# pages of running text hold 1,500-3,500 characters, and a last page of a few lines or a title page
# has no page-sized image; typed headers over scans measured 12-120 characters (docs/ocr.md).
SLIVER_CHARS = 200
SCAN_IMAGE_SHARE = 0.5
# Bump when what is sent to the engine changes (resolution, grey levels, engine options): cached
# texts made the old way are then never found.
RECIPE = 1
INSTALL_HINT = "apt-get install tesseract-ocr tesseract-ocr-eng"


@dataclass(frozen=True)
class Tesseract:
    """The tesseract program, checked once: where it is, its version and its languages."""

    path: str
    version: str

    @property
    def key(self) -> str:
        """What the cache keys depend on besides the image: engine, version, language, recipe."""
        return f"tesseract {self.version} {LANGUAGE} psm3 recipe{RECIPE}"

    def read(self, image: Image, dpi: int | None) -> str:
        """The text tesseract reads on `image` (grey levels), lines as it found them.

        Raises:
            OcrError: tesseract failed on the page or took longer than PAGE_TIMEOUT_S.
        """
        data = io.BytesIO()
        # PGM (raw grey levels) through a pipe: no compression to pay for, no temporary file.
        image.convert("L").save(data, format="PPM")
        command = [self.path, "stdin", "stdout", "-l", LANGUAGE, "--psm", "3"]
        if dpi:
            command += ["--dpi", str(dpi)]
        # One thread per tesseract process: pages run side by side instead (see the module docstring).
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        try:
            done = subprocess.run(command, input=data.getvalue(), capture_output=True, env=env,
                                  timeout=PAGE_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise OcrError(f"OCR took over {PAGE_TIMEOUT_S} s") from None
        except OSError as exc:
            raise OcrError(f"tesseract could not be run ({exc.strerror or exc})") from None
        if done.returncode != 0:
            said = [line for line in done.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
            raise OcrError(f"tesseract failed ({said[-1][:120] if said else f'exit status {done.returncode}'})")
        return done.stdout.decode("utf-8", "replace")


class OcrError(Exception):
    """One page that OCR could not read; the message is the reason a user reads."""


@lru_cache(maxsize=1)
def find_tesseract() -> tuple[Tesseract | None, str]:
    """The tesseract program with English, or None and why not (checked once per process)."""
    path = shutil.which("tesseract")
    if path is None:
        return None, f"OCR is not installed ({INSTALL_HINT})"
    try:
        version = subprocess.run([path, "--version"], capture_output=True, timeout=30, check=False)
        langs = subprocess.run([path, "--list-langs"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"OCR is not usable: {path} could not be run ({exc})"
    words = (version.stdout + version.stderr).decode("utf-8", "replace").split()
    found = words[1] if len(words) > 1 and words[0] == "tesseract" else ""
    if not found:
        return None, f"OCR is not usable: {path} is not tesseract ({INSTALL_HINT})"
    if LANGUAGE not in (langs.stdout + langs.stderr).decode("utf-8", "replace").split():
        return None, f"OCR is not usable: tesseract has no English data (apt-get install tesseract-ocr-{LANGUAGE})"
    return Tesseract(path, found), ""


class OcrCache:
    """Page texts by key, one small file each under `folder` (written whole, then renamed in)."""

    def __init__(self, folder: Path, max_mb: float) -> None:
        self.folder = folder
        self.max_bytes = int(max_mb * 1024 * 1024)
        self.wrote = False

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.txt"

    def get(self, key: str) -> str | None:
        path = self._path(key)
        try:
            with open(path, encoding="utf-8", newline="") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError):
            return None
        with contextlib.suppress(OSError):
            os.utime(path)   # recently used: pruned last
        return text

    def put(self, key: str, text: str) -> None:
        """Keep `text` under `key`; a cache that cannot be written is only slower, never an error."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", newline="", dir=path.parent,
                                             prefix=".tmp-", suffix=".txt", delete=False) as fh:
                fh.write(text)
            os.replace(fh.name, path)
            self.wrote = True
        except OSError:
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(fh.name)

    def prune(self) -> int:
        """Remove the least recently used entries until the cache fits `max_bytes`; returns how many."""
        try:
            entries = [(e.stat().st_mtime, e.stat().st_size, Path(e.path)) for sub in os.scandir(self.folder)
                       if sub.is_dir() for e in os.scandir(sub.path) if e.name.endswith(".txt")]
        except OSError:
            return 0
        total = sum(size for _, size, _ in entries)
        removed = 0
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size
                removed += 1
        return removed


class PageProgress(Protocol):
    """Told about pages sent to the engine (a build's progress bar, qa/index/progress.py)."""

    def pages_found(self, n: int) -> None: ...

    def page_done(self) -> None: ...


@dataclass(frozen=True)
class PageImage:
    """A page to read: its 1-based number and how to get its image (called in the reading thread,
    as pdfium is not thread-safe), or why it cannot be had."""

    number: int
    render: Callable[[], Image]
    dpi: int | None


@dataclass
class OcrStats:
    """What OCR cost in one build: pages read by the engine, seconds, pages found in the cache."""

    pages: int = 0
    seconds: float = 0.0
    cached: int = 0


@dataclass
class OcrReader:
    """Reads pages for the loaders (qa/formats/pdf.py, qa/formats/image.py) as the settings say; one per build."""

    mode: str
    engine: Tesseract | None
    missing: str                       # why there is no engine ("" when there is one)
    cache: OcrCache | None
    max_pages: int
    max_pixels: int
    threads: int
    progress: PageProgress | None = None
    stats: OcrStats = field(default_factory=OcrStats)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wants(self, text: str, image_share: Callable[[], float]) -> bool:
        """Whether a PDF page with this text layer is read by OCR (see SLIVER_CHARS)."""
        if self.mode == "force":
            return True
        if self.mode == "off":
            return False
        chars = sum(not ch.isspace() for ch in text)
        return chars == 0 or (chars < SLIVER_CHARS and image_share() >= SCAN_IMAGE_SHARE)

    def read_pages(self, pages: Iterable[PageImage], file_key: str = "") -> dict[int, str | OcrError]:
        """The text of each page, or the OcrError that says why it could not be read.

        `file_key` (the file's sha256) lets an unchanged file's pages come from the cache without
        being rendered. Pages are rendered here, in order, and read `threads` at a time.
        """
        assert self.engine is not None
        engine = self.engine
        out: dict[int, str | OcrError] = {}
        running: dict[Future[str], tuple[int, list[str]]] = {}

        def collect(block: bool) -> None:
            if not running:
                return
            done, _ = wait(list(running), return_when=FIRST_COMPLETED) if block else (
                [f for f in running if f.done()], None)
            for future in done:
                number, keys = running.pop(future)
                try:
                    text = future.result()
                except OcrError as exc:
                    out[number] = exc
                else:
                    out[number] = text
                    for key in keys:
                        if self.cache is not None:
                            self.cache.put(key, text)
                if self.progress is not None:
                    self.progress.page_done()

        started = time.perf_counter()
        sent = 0
        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="qa-ocr") as pool:
            for page in pages:
                file_page = _key(engine.key, f"file {file_key} page {page.number} dpi {page.dpi}") if file_key else ""
                if file_page and (hit := self._cached(file_page)) is not None:
                    out[page.number] = hit
                    continue
                try:
                    image = page.render()
                except OcrError as exc:
                    out[page.number] = exc
                    continue
                image_key = _key(engine.key, f"{image.mode} {image.size} dpi {page.dpi}", image.tobytes())
                if (hit := self._cached(image_key)) is not None:
                    out[page.number] = hit
                    if self.cache is not None and file_page:
                        self.cache.put(file_page, hit)
                    continue
                # At most two pages a thread wait, rendered: a page's grey levels are 4 MB at 200 dpi.
                while len(running) >= 2 * self.threads:
                    collect(block=True)
                if self.progress is not None:
                    self.progress.pages_found(1)
                keys = [k for k in (image_key, file_page) if k]
                running[pool.submit(engine.read, image, page.dpi)] = (page.number, keys)
                sent += 1
                collect(block=False)
            while running:
                collect(block=True)
        with self._lock:
            self.stats.pages += sent
            self.stats.seconds += time.perf_counter() - started if sent else 0.0
        return out

    def _cached(self, key: str) -> str | None:
        if self.cache is None:
            return None
        text = self.cache.get(key)
        if text is not None:
            with self._lock:
                self.stats.cached += 1
        return text


def _key(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def ocr_reader(settings: Settings, progress: PageProgress | None = None) -> OcrReader:
    """The OCR reader the settings ask for (the engine found once per process)."""
    engine, missing = find_tesseract() if settings.ocr != "off" else (None, "")
    cache = OcrCache(settings.cache_dir.expanduser() / "ocr", settings.max_ocr_cache_mb)
    return OcrReader(mode=settings.ocr, engine=engine, missing=missing, cache=cache,
                     max_pages=settings.max_ocr_pages, max_pixels=int(settings.max_image_megapixels * 1_000_000),
                     threads=settings.threads, progress=progress)

