"""The one progress bar of a build: pages read by OCR first (pages per second), then the chunks
and sentences embedded (texts per second), on the same line.

OCR pages are counted as they are sent to the engine (a page found in the cache costs nothing and
is not counted), so the bar's total grows document by document while scans are read. Library
calls show nothing unless asked (`show_progress`); the chat passes a callback instead and gets a
line at each tenth.
"""

# tqdm is imported inside the functions that use them, on purpose: importing this module stays cheap
# (`import qa` loads neither torch nor FAISS, and `qa --help` starts at once).

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from qa.encoder import Progress


class BuildProgress:
    """Implements qa.ocr.PageProgress for the OCR phase, then hands out the embedding Progress."""

    def __init__(self, show: bool, report: Callable[[int, int], None] | None = None,
                 say: Callable[[str], None] | None = None) -> None:
        self.show = show
        self.report = report
        self.say = say
        self._bar: Any = None
        self.pages = 0
        self.pages_done = 0
        self._started = 0.0
        self._said = 0

    def _tqdm(self, desc: str, unit: str, total: int) -> Any:
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)
        else:
            self._bar.set_description(desc, refresh=False)
            self._bar.unit = unit
            self._bar.reset(total=total)
        return self._bar

    # -- OCR (qa.ocr.PageProgress) --------------------------------------------------------------

    def pages_found(self, n: int) -> None:
        if not self.pages:
            self._started = time.perf_counter()
        self.pages += n
        if self._bar is None and self.show:
            self._tqdm("OCR", "page", self.pages)
        elif self._bar is not None:
            self._bar.total = self.pages
            self._bar.refresh()

    def page_done(self) -> None:
        self.pages_done += 1
        if self._bar is not None:
            self._bar.update(1)
        elif self.report is not None and self.say is not None:
            # The chat: one line at each tenth (and the last page), with the rate so far.
            tenth = self.pages_done * 10 // max(self.pages, 1)
            if tenth > self._said or self.pages_done == self.pages:
                self._said = tenth
                rate = self.pages_done / max(time.perf_counter() - self._started, 1e-9)
                self.say(f"OCR: {self.pages_done:,} of {self.pages:,} pages read ({rate:.2f} pages/s).")

    # -- embedding ------------------------------------------------------------------------------

    def embedding(self, total: int) -> Progress | None:
        """The bar (or callback) for `total` texts to embed; None when nothing is shown."""
        if total == 0:
            return None
        if self.report is not None:
            return _Counter(self.report, total)
        if not self.show:
            return None
        return self._tqdm("Embedding chunks and sentences", "text", total)  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class _Counter:
    """tqdm's `update`, reporting `(done, total)` to a callback."""

    def __init__(self, report: Callable[[int, int], None], total: int) -> None:
        self.report, self.total, self.done = report, total, 0

    def update(self, n: int = 1) -> None:
        self.done += n
        self.report(min(self.done, self.total), self.total)
