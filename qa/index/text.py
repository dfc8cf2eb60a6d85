"""`SourceText`: a document's indexed text, pieced together from its chunks, and the sentences
around a quote (the context the chat's source cards and `qa.live` show)."""

from __future__ import annotations

import re

from qa.index.store import Index

# Characters of source text shown on each side of a quote, before snapping to sentence ends.
CONTEXT_CHARS = 360
# A sentence ends at . ! ? (maybe followed by a closing quote or bracket) and then whitespace.
SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*\s+|\n\s*\n")


class SourceText:
    """Continuous source text of each document, pieced together from the index's chunks.

    Chunks overlap, so neighbours join into runs of exact source text; a quote is shown inside
    the run that holds it. No file is read: what the panel shows is what was indexed.
    """

    def __init__(self, index: Index) -> None:
        # A document's chunks are looked up when first shown (not all at start: 10^6 chunks).
        self._index = index
        self._runs: dict[str, list[tuple[int, str]]] = {}

    def runs(self, doc_id: str) -> list[tuple[int, str]]:
        """`(start, text)` runs of `doc_id`'s indexed text, in order; `text == source[start:...]`."""
        if doc_id not in self._runs:
            runs: list[tuple[int, str]] = []
            for c in sorted(self._index.chunks_of(doc_id), key=lambda c: (c.start, c.end)):
                if runs and c.start <= runs[-1][0] + len(runs[-1][1]):
                    start, text = runs[-1]
                    end = start + len(text)
                    if c.end > end:
                        runs[-1] = (start, text + c.text[end - c.start:])
                else:
                    runs.append((c.start, c.text))
            self._runs[doc_id] = runs
        return self._runs[doc_id]

    def _page_bounds(self, doc_id: str, start: int, end: int) -> tuple[int, int]:
        """[first, last) offsets of the page holding `[start, end)`; the whole text when the
        document has no pages or the range crosses a page break."""
        info = self._index.documents.get(doc_id)
        if info is None or not info.page_starts:
            return 0, 1 << 62
        page = info.page_of(start) or 1
        floor = info.page_starts[page - 1]
        ceiling = info.page_starts[page] if page < len(info.page_starts) else 1 << 62
        return (floor, ceiling) if end <= ceiling else (0, 1 << 62)

    def window(self, doc_id: str, start: int, end: int) -> tuple[int, str, bool, bool] | None:
        """Source text around `[start, end)`: whole sentences within `CONTEXT_CHARS` each side.

        Returns:
            `(window_start, text, cut_before, cut_after)`, or None when no run holds the range.
        """
        floor, ceiling = self._page_bounds(doc_id, start, end)
        for run_start, text in self.runs(doc_id):
            run_end = run_start + len(text)
            if run_start <= start and end <= run_end:
                # On a paged document the context stays on the quote's page.
                lo = max(run_start, start - CONTEXT_CHARS, floor)
                hi = min(run_end, end + CONTEXT_CHARS, ceiling)
                before = text[lo - run_start:start - run_start]
                if lo > max(run_start, floor):
                    cut = SENTENCE_END.search(before)
                    lo += cut.end() if cut else 0
                after = text[end - run_start:hi - run_start]
                if hi < min(run_end, ceiling):
                    ends = [m.end() for m in SENTENCE_END.finditer(after)]
                    hi = end + (len(after[:ends[-1]].rstrip()) if ends else len(after))
                return lo, text[lo - run_start:hi - run_start], lo > run_start, hi < run_end
        return None
