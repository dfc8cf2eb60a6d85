"""What every format's reader shares: its options, its result, its one error, and the small text
helpers that keep stored text quotable (see `qa.formats` for the registry)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property

from qa.config import Settings
from qa.ocr import OcrError, OcrReader, ocr_reader

PAGE_SEPARATOR = "\n\n"
MAX_TITLE_CHARS = 200


class UnreadableDocument(Exception):
    """The file cannot be used; the message is the one line a user reads."""


@dataclass(frozen=True)
class Extracted:
    """What a reader found in one file.

    `text` is what every offset of the document indexes: the file's own text for text, Markdown
    and HTML (decoded as `Path.read_text` does), the extracted text for the formats whose text
    the index stores. `spans` are the body's ranges before boilerplate is cut out (None: the
    whole text).
    """

    text: str
    title: str
    date: str | None
    page_starts: tuple[int, ...] = ()       # empty: the format has no pages
    notes: tuple[str, ...] = ()             # lines for the user (pages without text...)
    ocr_pages: tuple[int, ...] = ()         # 1-based pages whose text OCR read
    spans: tuple[tuple[int, int], ...] | None = None
    tags: tuple[str, ...] = ()
    author: str = ""                        # who wrote it, as the file says (an e-mail's From)


@dataclass(frozen=True)
class ReadOptions:
    """What a reader may need besides the file: the page limit, the file's sha256 (it finds an
    unchanged file's pages in the OCR cache) and the OCR reader, made when a reader first asks
    for it (as `Settings()` says unless one is given)."""

    max_pages: int
    file_key: str = ""
    given_ocr: OcrReader | None = None

    @cached_property
    def ocr(self) -> OcrReader:
        return self.given_ocr or ocr_reader(Settings())


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def clean_text(text: str) -> str:
    """Extracted text with universal newlines and without control characters (which nothing can
    quote); this is the text that is stored and cited."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def one_line(text: str) -> str:
    """Metadata as one line of at most MAX_TITLE_CHARS characters (cut, without an ellipsis)."""
    return " ".join(str(text).split())[:MAX_TITLE_CHARS]


def without_controls(text: str) -> str:
    """Text from a file that may be hostile with every control character (any Unicode `Cc`,
    escape sequences and line breaks included) turned into a space: for metadata, which is
    shown on one line."""
    return "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)


def clip_title(title: str) -> str:
    """A title on one line, without byte-order marks, cut to MAX_TITLE_CHARS with an ellipsis."""
    title = " ".join(title.replace("\ufeff", "").split())
    return title if len(title) <= MAX_TITLE_CHARS else title[: MAX_TITLE_CHARS - 1].rstrip() + "…"


def join_pages(texts: list[str]) -> tuple[str, tuple[int, ...]]:
    """Page texts joined by PAGE_SEPARATOR, and the offsets where pages 1, 2, ... begin."""
    starts = []
    at = 0
    for number, text in enumerate(texts):
        at += len(PAGE_SEPARATOR) if number else 0
        starts.append(at)
        at += len(text)
    return PAGE_SEPARATOR.join(texts), tuple(starts)


def no_ocr(ocr: OcrReader | None) -> str:
    """Why a page without a text layer was not read by OCR."""
    if ocr is None or ocr.mode == "off":
        return 'OCR is off (setting ocr = "off")'
    return ocr.missing


def take_ocr(read: dict[int, str | OcrError], texts: list[str], notes: list[str], layer: bool) -> list[int]:
    """Put what OCR read into `texts` (by 1-based page), with one note for each page it could not
    read or found empty; returns the pages whose text is OCR's."""
    done = []
    kept = "; its text layer is kept" if layer else ""
    for number in sorted(read):
        result = read[number]
        had = texts[number - 1].strip() if number - 1 < len(texts) else ""
        if isinstance(result, OcrError):
            notes.append(f"page {number} could not be read by OCR ({result}): "
                         + (kept.lstrip("; ") if had else "skipped"))
            continue
        text = clean_text(result).strip()
        if not text:
            if not had:
                notes.append(f"page {number} has no text layer and OCR found no text on it: skipped")
            continue
        texts[number - 1] = text
        done.append(number)
    return done
