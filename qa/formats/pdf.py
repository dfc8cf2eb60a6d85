"""PDF (pypdfium2): text per page in reading order, title and date from the metadata; scanned
pages are read by OCR (qa/ocr.py).

The indexed text is the *extracted* text: page texts in order, with the OCR text of scanned pages,
joined by blank lines. It is stored with the index (`qa.source_text` returns it), so
`source_text(doc_id)[start:end] == quote` holds for every citation. Nothing is de-hyphenated or
re-flowed: a word broken across lines in the PDF stays broken, and offsets stay exact.
`page_starts` are the offsets at which pages 1, 2, ... begin.

pypdfium2 was chosen over pypdf by measurement (docs/documents.md): on a 40-page report printed by
Chromium both gave the same words and line breaks in reading order, pypdfium2 in 25 ms and pypdf
in 301 ms (best of 3, 2 cores).
"""

# pypdfium2 is imported inside the functions that use them, on purpose: importing this module stays
# cheap (`import qa` loads neither torch nor FAISS, and `qa --help` starts at once).

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.formats.common import (
    Extracted,
    ReadOptions,
    UnreadableDocument,
    clean_text,
    join_pages,
    no_ocr,
    one_line,
    take_ocr,
)
from qa.ocr import OCR_DPI, OcrError, OcrReader, PageImage

if TYPE_CHECKING:
    from PIL.Image import Image


def read_pdf(path: Path, raw: bytes, options: ReadOptions) -> Extracted:
    """Text per page in reading order, title and date from the PDF's metadata.

    A page without a text layer (or with only a sliver of one over a scan, `OcrReader.wants`) is
    read by `ocr` when there is an engine; `file_key` (the file's sha256) finds an unchanged
    file's pages in the OCR cache without rendering them.

    Raises:
        UnreadableDocument: not a PDF, encrypted, over `options.max_pages` pages (setting
            max_pdf_pages), or no text on any page.
    """
    import pypdfium2 as pdfium  # here, not at the top: 44 ms that commands reading no PDF skip

    max_pages, ocr, file_key = options.max_pages, options.ocr, options.file_key

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        reason = str(exc)
        if "password" in reason.lower():
            raise UnreadableDocument("encrypted PDF (it needs a password)") from None
        raise UnreadableDocument(f"not a readable PDF ({reason})") from None
    try:
        count = len(pdf)
        if count > max_pages:
            raise UnreadableDocument(f"{count:,} pages, above the {max_pages:,}-page limit (setting "
                                     "max_pdf_pages)")
        texts: list[str] = []
        scanned: list[int] = []          # 0-based pages OCR reads
        for number in range(count):
            page = pdf[number]
            try:
                textpage = page.get_textpage()
                try:
                    text = clean_text(textpage.get_text_range())
                finally:
                    textpage.close()
                if ocr is not None and ocr.engine is not None and ocr.wants(text, partial(image_share, page)):
                    scanned.append(number)
            finally:
                page.close()
            texts.append(text)
        notes: list[str] = []
        ocr_pages: list[int] = []
        if scanned and ocr is not None:
            ocr_pages = _ocr_pdf_pages(pdf, scanned, texts, ocr, file_key, notes)
        for number, text in enumerate(texts):
            if not text.strip():
                texts[number] = ""
                if number not in scanned:
                    notes.append(f"page {number + 1} has no text layer: skipped; {no_ocr(ocr)}")
        meta = pdf.get_metadata_dict(skip_empty=True)
    finally:
        pdf.close()
    body, starts = join_pages(texts)
    if not body.strip():
        if scanned:
            raise UnreadableDocument(f"no text layer on any page, and OCR found no text ({notes[0]})")
        raise UnreadableDocument(f"no text layer on any page (a scan?); {no_ocr(ocr)}")
    return Extracted(body, one_line(meta.get("Title", "")), _pdf_date(meta.get("CreationDate", "")),
                     starts, tuple(notes), tuple(ocr_pages))


def image_share(page: Any) -> float:
    """The share of the page's area under images (at most 1; overlaps counted twice)."""
    import pypdfium2.raw as pdfium_c  # see read_pdf

    width, height = page.get_size()
    area = max(width * height, 1.0)
    covered = 0.0
    for image in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=3):
        left, bottom, right, top = image.get_bounds()
        covered += max(0.0, min(right, width) - max(left, 0.0)) * max(0.0, min(top, height) - max(bottom, 0.0))
    return min(1.0, covered / area)


def _ocr_pdf_pages(pdf: Any, scanned: list[int], texts: list[str], ocr: OcrReader, file_key: str,
                   notes: list[str]) -> list[int]:
    """Read `scanned` pages by OCR into `texts`; returns the 1-based pages whose text it read.

    Past `max_ocr_pages`, pages keep their text layer (a sliver, or nothing) and one line says so.
    A page OCR cannot read keeps its text layer too, with one line saying why.
    """
    import pypdfium2 as pdfium  # see read_pdf

    if len(scanned) > ocr.max_pages:
        over = scanned[ocr.max_pages:]
        notes.append(f"{len(over):,} more pages need OCR (pages {over[0] + 1}-{over[-1] + 1}), above the "
                     f"{ocr.max_pages:,}-page limit (setting max_ocr_pages): skipped")
        del scanned[ocr.max_pages:]
    scale = OCR_DPI / 72

    def render(number: int) -> Callable[[], Image]:
        def go() -> Image:
            page = pdf[number]
            try:
                width, height = page.get_size()
                pixels = width * scale * height * scale
                if pixels > ocr.max_pixels:
                    raise OcrError(f"{width / 72:,.0f} x {height / 72:,.0f} in, {pixels / 1e6:,.0f} megapixels at "
                                   f"{OCR_DPI} dpi, above the {ocr.max_pixels / 1e6:g}-megapixel limit "
                                   "(setting max_image_megapixels)")
                return page.render(scale=scale, grayscale=True).to_pil()
            except pdfium.PdfiumError as exc:
                raise OcrError(f"the page could not be rendered ({exc})") from None
            finally:
                page.close()
        return go

    read = ocr.read_pages((PageImage(n + 1, render(n), OCR_DPI) for n in scanned), file_key)
    return take_ocr(read, texts, notes, layer=True)


_PDF_DATE = re.compile(r"^(?:D:)?(\d{4})(\d{2})?(\d{2})?")


def _pdf_date(value: str) -> str | None:
    found = _PDF_DATE.match(str(value).strip())
    if not found:
        return None
    year, month, day = found.group(1), found.group(2) or "01", found.group(3) or "01"
    try:
        return dt.date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        return None
