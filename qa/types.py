"""Frozen dataclasses that cross module boundaries: Document -> Chunk -> Passage -> Answer."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from qa.formats import EXTRACTED_KINDS

# What an answer is: quoted with confidence, quoted tentatively (the documents may not answer
# directly), or an abstention (the documents do not say; `related` holds the closest reading).
AnswerStatus = Literal["answered", "tentative", "abstained"]
ANSWER_STATUSES: tuple[str, ...] = get_args(AnswerStatus)


@dataclass(frozen=True)
class Document:
    """One source file of the corpus.

    `text` is the whole file decoded as UTF-8; every offset in `qa` indexes into it.
    `segments` are the `(start, end)` ranges of `text` that hold the article body: front matter,
    markup and boilerplate lines (advertisements, donation pleas...) fall outside them.
    """

    doc_id: str
    title: str
    date: str | None
    text: str
    segments: tuple[tuple[int, int], ...]
    tags: tuple[str, ...] = ()
    sha256: str = ""
    # The format's kind (qa/formats: "text", "markdown", "html", "pdf", "docx", "eml", "image"),
    # the offsets where pages 1, 2, ... begin (empty without pages), lines for the user about what
    # was left out (a page without a text layer, an e-mail's attachments...), the 1-based pages
    # whose text OCR read (every page of an image), and who wrote it as the file says (an
    # e-mail's From; empty where the format does not say).
    kind: str = "text"
    page_starts: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()
    ocr_pages: tuple[int, ...] = ()
    author: str = ""


@dataclass(frozen=True)
class DocumentInfo:
    """What the index keeps of a document besides its chunks: metadata and content hash."""

    doc_id: str
    title: str
    date: str | None
    tags: tuple[str, ...]
    sha256: str
    chars: int
    kind: str = "text"                      # the format (qa/formats): text, markdown, html, pdf, docx, eml, image
    page_starts: tuple[int, ...] = ()       # offsets where pages 1, 2, ... begin; empty: no pages
    indexed_at: str | None = None           # when this content was chunked and embedded (ISO, UTC)
    ocr_pages: tuple[int, ...] = ()         # 1-based pages whose text OCR read (a scan's)
    author: str = ""                        # an e-mail's From; empty where the format does not say

    @property
    def pages(self) -> int:
        return len(self.page_starts)

    @property
    def stored_text(self) -> bool:
        """True when the indexed text is extracted (PDF, DOCX, e-mail, scan) and kept in the index."""
        return self.kind in EXTRACTED_KINDS

    def page_of(self, offset: int) -> int | None:
        """The 1-based page that holds `offset`, or None for formats without pages."""
        if not self.page_starts:
            return None
        return bisect.bisect_right(self.page_starts, offset)

    def read_by_ocr(self, start: int, end: int) -> bool:
        """Whether any of `[start, end)` is text that OCR read (to be checked against the page image)."""
        if self.kind == "image":
            return True
        if not self.ocr_pages or not self.page_starts:
            return False
        first, last = self.page_of(start) or 1, self.page_of(max(start, end - 1)) or 1
        return any(first <= p <= last for p in self.ocr_pages)


@dataclass(frozen=True)
class Chunk:
    """A token-bounded piece of one document; `text == document.text[start:end]`."""

    doc_id: str
    start: int
    end: int
    text: str

    @property
    def chunk_id(self) -> str:
        return f"{self.doc_id}#{self.start}-{self.end}"


@dataclass(frozen=True)
class Sentence:
    """A sentence of a chunk's document, with exact offsets into the document text."""

    doc_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its document's metadata and its retrieval score."""

    doc_id: str
    title: str
    date: str | None
    text: str
    start: int
    end: int
    score: float
    page: int | None = None      # 1-based page of `start` (PDF, DOCX with page breaks); None otherwise
    ocr: bool = False            # the text was read by OCR from a scan: check it against the page image

    @property
    def chunk_id(self) -> str:
        return f"{self.doc_id}#{self.start}-{self.end}"


@dataclass(frozen=True)
class Citation:
    """A verbatim quote backing part of an answer: `source[start:end] == quote`.

    `answer_start`/`answer_end`, when set, mark the short answer (a number, date or name) inside
    the quote, as offsets into the same source text.
    """

    n: int
    doc_id: str
    title: str
    quote: str
    start: int
    end: int
    date: str | None = None
    answer_start: int | None = None
    answer_end: int | None = None
    page: int | None = None      # 1-based page of `start` (PDF, DOCX with page breaks); None otherwise
    ocr: bool = False            # the quote was read by OCR from a scan: check it against the page image


def composed_text(lead: str, citations: Sequence[Citation]) -> str:
    """The text of an answer composed from its citations: `lead`, then each quote followed by its
    `[n]` marker, joined by spaces."""
    return lead + " ".join(f"{c.quote} [{c.n}]" for c in citations)


@dataclass(frozen=True)
class Answer:
    """What `qa.answer` returns: text with `[n]` markers, the citations behind them, and the
    passages that were retrieved.

    `status` says what kind of reply it is, so that callers never parse the text or compare
    the confidence with thresholds themselves: "answered", "tentative" (quoted, but the
    documents may not answer directly), or "abstained" (no citations; `related` holds the
    closest passages, one per document, offered as related reading). `abstained` is
    `status == "abstained"` (left out, `status` follows `abstained`).

    An answer `qa.answer` composes is `lead` (the words before the first quote: the caveat of a
    tentative answer, else empty) followed by each citation's quote and marker, so a caller can
    render it from the fields alone (`composed_text`, `is_composed`); a custom `Answerer`'s free
    text need not be.
    """

    text: str
    citations: tuple[Citation, ...]
    abstained: bool
    passages: tuple[Passage, ...]
    query: str = ""
    confidence: float = 0.0
    latency_ms: float = 0.0
    status: AnswerStatus = "answered"
    related: tuple[Passage, ...] = ()
    lead: str = ""

    def __post_init__(self) -> None:
        if self.status not in ANSWER_STATUSES:
            raise ValueError(f"Invalid status {self.status!r}. Choose from {', '.join(ANSWER_STATUSES)}.")
        if self.abstained and self.status == "answered":
            object.__setattr__(self, "status", "abstained")  # the default follows `abstained`
        if self.abstained != (self.status == "abstained"):
            raise ValueError(f"abstained={self.abstained} contradicts status={self.status!r}.")

    def composed_text(self) -> str:
        """`lead`, then each citation's quote followed by its `[n]` marker (`composed_text`)."""
        return composed_text(self.lead, self.citations)

    def is_composed(self) -> bool:
        """Whether `text` is exactly `composed_text()`: then the fields alone render it."""
        return not self.abstained and bool(self.citations) and self.text == self.composed_text()


@dataclass(frozen=True)
class IndexReport:
    """What `build_index` did: counts by change kind and the work it took."""

    documents: int
    chunks: int
    sentences: int
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    chunks_embedded: int
    sentences_embedded: int
    rebuilt_reason: str | None
    seconds: float
    ocr_pages: int = 0           # pages the OCR engine read in this build (cached pages not counted)
    ocr_seconds: float = 0.0
