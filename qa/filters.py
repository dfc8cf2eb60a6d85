"""`DocFilter`: which documents a question may be answered from (doc_id globs, a date range).

The filter is applied before ranking, not after: BM25 scores only the allowed chunks, and the
dense search looks only among them (exactly, when they are few; through FAISS's ID selector
otherwise), so a filtered question gets its full `k` passages from the chosen documents.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from qa.errors import QueryError
from qa.types import DocumentInfo


@dataclass(frozen=True)
class DocFilter:
    """Documents whose doc_id matches one of `docs` (shell globs: `reports/*.pdf`, `*2024*`) and
    whose date lies in [`since`, `until`] (ISO dates, both ends included; an undated document
    is left out once either end is given). None: no condition."""

    docs: tuple[str, ...] | None = None
    since: str | None = None
    until: str | None = None

    @classmethod
    def make(cls, docs: str | Sequence[str] | None = None, since: str | None = None,
             until: str | None = None) -> DocFilter | None:
        """A filter from user input (None when nothing narrows); bad dates are a clear error."""
        patterns: tuple[str, ...] | None = None
        if docs is not None:
            items = [docs] if isinstance(docs, str) else list(docs)
            patterns = tuple(p.strip() for item in items for p in str(item).split(",") if p.strip()) or None
        since, until = _iso(since, "since"), _iso(until, "until")
        if since and until and since > until:
            raise QueryError(f"The date range is empty: since {since} is after until {until}.")
        if patterns is None and since is None and until is None:
            return None
        return cls(patterns, since, until)

    def allows(self, doc_id: str, date: str | None) -> bool:
        if self.docs is not None and not any(fnmatch.fnmatchcase(doc_id, p) for p in self.docs):
            return False
        if self.since is None and self.until is None:
            return True
        if not date:
            return False
        day = date[:10]
        return (self.since is None or day >= self.since) and (self.until is None or day <= self.until)

    def describe(self) -> str:
        parts = []
        if self.docs:
            parts.append("documents " + ", ".join(self.docs))
        if self.since or self.until:
            parts.append(f"dated {self.since or '...'} to {self.until or '...'}")
        return "; ".join(parts)


def no_document_message(doc_filter: DocFilter, documents: Mapping[str, DocumentInfo]) -> str:
    """What to tell a user whose `doc_filter` leaves none of `documents`: an answer from such a
    selection would only say the documents are silent, when none was read."""
    examples = ", ".join(sorted(documents)[:3]) + (", ..." if len(documents) > 3 else "")
    hint = ""
    paths = "; document patterns match these paths, relative to the corpus" if doc_filter.docs else ""
    if doc_filter.since or doc_filter.until:
        undated = sum(1 for info in documents.values() if not info.date)
        if undated:
            hint = (f" {undated:,} of the {len(documents):,} indexed documents have no date, and a "
                    "date range leaves undated documents out.")
    return (f"No indexed document matches the filter ({doc_filter.describe()}), so there is nothing to "
            f"answer from.{hint} Widen or clear the filter: the index holds {len(documents):,} "
            f"document(s) ({examples}){paths}.")


def allowed_rows(doc_filter: DocFilter, documents: Mapping[str, DocumentInfo],
                 chunk_doc_rows: np.ndarray) -> np.ndarray:
    """The chunk rows whose document passes `doc_filter`, ascending (`chunk_doc_rows`: each
    chunk's document, as a position in `documents`' order)."""
    keep = np.fromiter((doc_filter.allows(d, info.date) for d, info in documents.items()), dtype=bool,
                       count=len(documents))
    if not len(chunk_doc_rows):
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(keep[np.asarray(chunk_doc_rows)])


def _iso(value: str | None, name: str) -> str | None:
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise QueryError(f"Invalid {name} date {text!r}: use YYYY-MM-DD, e.g. 2024-01-31.") from None
