"""Documents that are not plain text: PDF (pypdfium2), Word .docx (python-docx), and scanned
images (.png, .jpg, .tif: Pillow, read by OCR, qa/ocr.py).

For these the indexed text is the *extracted* text: page texts in order (PDF, with the OCR text of
scanned pages; the frames of an image) or paragraphs and table rows in order (DOCX), joined by
blank lines. It is stored with the index (`qa.source_text`
returns it), so `source_text(doc_id)[start:end] == quote` holds for every citation. Nothing is
de-hyphenated or re-flowed: a word broken across lines in the PDF stays broken, and offsets stay
exact. `page_starts` are the offsets at which pages 1, 2, ... begin.

pypdfium2 was chosen over pypdf by measurement (README "Formats"): on a 40-page report printed by
Chromium both gave the same words and line breaks in reading order, pypdfium2 in 25 ms and pypdf
in 301 ms (best of 3, 2 cores).
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.ocr import OCR_DPI, OcrError, OcrReader, PageImage

if TYPE_CHECKING:
    from PIL.Image import Image

MAX_PDF_PAGES = 2_000
MAX_DOCX_UNZIPPED_MB = 100          # a zip bomb renamed .docx is refused before it is parsed
PAGE_SEPARATOR = "\n\n"


class UnreadableDocument(Exception):
    """The file cannot be used; the message is the one line a user reads."""


@dataclass(frozen=True)
class Extracted:
    text: str
    title: str
    date: str | None
    page_starts: tuple[int, ...]       # empty: the format has no pages
    notes: tuple[str, ...]             # lines for the user (pages without text...)
    ocr_pages: tuple[int, ...] = ()    # 1-based pages whose text OCR read


def read_pdf(path: Path, max_pages: int = MAX_PDF_PAGES, ocr: OcrReader | None = None, file_key: str = "") -> Extracted:
    """Text per page in reading order, title and date from the PDF's metadata.

    A page without a text layer (or with only a sliver of one over a scan, `OcrReader.wants`) is
    read by `ocr` when there is an engine; `file_key` (the file's sha256) finds an unchanged
    file's pages in the OCR cache without rendering them.
    """
    import pypdfium2 as pdfium

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
                    text = _clean(textpage.get_text_range())
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
                    notes.append(f"page {number + 1} has no text layer: skipped; {_no_ocr(ocr)}")
        meta = pdf.get_metadata_dict(skip_empty=True)
    finally:
        pdf.close()
    body, starts = _join_pages(texts)
    if not body.strip():
        if scanned:
            raise UnreadableDocument(f"no text layer on any page, and OCR found no text ({notes[0]})")
        raise UnreadableDocument(f"no text layer on any page (a scan?); {_no_ocr(ocr)}")
    return Extracted(body, _one_line(meta.get("Title", "")), _pdf_date(meta.get("CreationDate", "")),
                     starts, tuple(notes), tuple(ocr_pages))


def _join_pages(texts: list[str]) -> tuple[str, tuple[int, ...]]:
    """Page texts joined by PAGE_SEPARATOR, and the offsets where pages 1, 2, ... begin."""
    starts = []
    at = 0
    for number, text in enumerate(texts):
        at += len(PAGE_SEPARATOR) if number else 0
        starts.append(at)
        at += len(text)
    return PAGE_SEPARATOR.join(texts), tuple(starts)


def _no_ocr(ocr: OcrReader | None) -> str:
    """Why a page without a text layer was not read by OCR."""
    if ocr is None or ocr.mode == "off":
        return 'OCR is off (setting ocr = "off")'
    return ocr.missing


def image_share(page: Any) -> float:
    """The share of the page's area under images (at most 1; overlaps counted twice)."""
    import pypdfium2.raw as pdfium_c

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
    import pypdfium2 as pdfium

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
    return _take_ocr(read, texts, notes, layer=True)


def _take_ocr(read: dict[int, str | OcrError], texts: list[str], notes: list[str], layer: bool) -> list[int]:
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
        text = _clean(result).strip()
        if not text:
            if not had:
                notes.append(f"page {number} has no text layer and OCR found no text on it: skipped")
            continue
        texts[number - 1] = text
        done.append(number)
    return done


def read_image(path: Path, ocr: OcrReader | None, max_pages: int = MAX_PDF_PAGES, file_key: str = "") -> Extracted:
    """The OCR text of a scanned image (.png, .jpg, .tif), a multi-page TIFF's frames as pages.

    Raises:
        UnreadableDocument: no OCR engine (or `ocr = "off"`), a broken or over-large image, or
            no text found on any page.
    """
    if ocr is None or ocr.engine is None:
        raise UnreadableDocument(f"a scanned image needs OCR; {_no_ocr(ocr)}")
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow warns above 89 megapixels and refuses twice that; our own, lower limit
            # (max_image_megapixels) is checked on each frame before it is decoded.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            image = PILImage.open(path)
    except PILImage.DecompressionBombError:
        raise UnreadableDocument(f"an image above {ocr.max_pixels / 1e6:g} megapixels (setting "
                                 "max_image_megapixels)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UnreadableDocument(f"not a readable image ({_one_line(str(exc))[:120]})") from None
    with image:
        frames = int(getattr(image, "n_frames", 1) or 1)
        if frames > max_pages:
            raise UnreadableDocument(f"{frames:,} pages, above the {max_pages:,}-page limit (setting max_pdf_pages)")
        notes: list[str] = []
        if frames > ocr.max_pages:
            notes.append(f"{frames - ocr.max_pages:,} more pages (pages {ocr.max_pages + 1}-{frames}), above the "
                         f"{ocr.max_pages:,}-page limit (setting max_ocr_pages): skipped")
        wanted = min(frames, ocr.max_pages)
        dpi = _image_dpi(image.info.get("dpi"))

        def render(number: int) -> Callable[[], Image]:
            return lambda: _frame(image, number, ocr.max_pixels)

        read = ocr.read_pages((PageImage(n + 1, render(n), dpi) for n in range(wanted)), file_key)
    texts = [""] * wanted
    done = _take_ocr(read, texts, notes, layer=False)
    if not done:
        failed = [r for r in read.values() if isinstance(r, OcrError)]
        raise UnreadableDocument(str(failed[0]) if failed and wanted == 1 else
                                 f"OCR found no text in the image{f' ({notes[0]})' if notes else ''}")
    body, starts = _join_pages(texts)
    # A single image has no pages to name ("p. 1" on every citation would say nothing).
    # Its title is its file name: a scan's first line is as often a letterhead or a stamp.
    return Extracted(body, _one_line(path.stem.replace("_", " ")), None, starts if wanted > 1 else (), tuple(notes),
                     tuple(done))


def _frame(image: Any, number: int, max_pixels: int) -> Image:
    """Frame `number` of an open image as grey levels upright on white, checked for size first."""
    from PIL import Image as PILImage
    from PIL import ImageOps

    try:
        image.seek(number)
        width, height = image.size
        if width * height > max_pixels:
            raise OcrError(f"{width:,} x {height:,} px ({width * height / 1e6:,.0f} megapixels), above the "
                           f"{max_pixels / 1e6:g}-megapixel limit (setting max_image_megapixels)")
        frame = ImageOps.exif_transpose(image)   # a phone photo of a page, taken sideways
        if frame.mode in ("RGBA", "LA", "PA", "P") or "transparency" in frame.info:
            # Transparent pixels over white, as a viewer shows them (not over black).
            white = PILImage.new("RGBA", frame.size, "white")
            white.alpha_composite(frame.convert("RGBA"))
            frame = white
        return frame.convert("L")
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise OcrError(f"the image data is broken ({_one_line(str(exc))[:120]})") from None


def _image_dpi(value: object) -> int | None:
    """The resolution an image file states, when it is a plausible scanner's (else tesseract guesses)."""
    try:
        dpi = round(float(value[0]))  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return None
    return dpi if 70 <= dpi <= 1200 else None


def read_docx(path: Path, max_unzipped_mb: float = MAX_DOCX_UNZIPPED_MB) -> Extracted:
    """Paragraphs (headings included) and table rows in document order; title and date from the
    core properties; pages where the file marks them (explicit or last-rendered page breaks)."""
    _check_zip(path, max_unzipped_mb)
    import docx
    from docx.oxml.ns import qn

    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises many kinds on a damaged package
        raise UnreadableDocument(f"not a readable .docx ({type(exc).__name__})") from None
    pieces: list[str] = []
    starts: list[int] = [0]
    at = 0
    pending = False   # a page break ended the last block: the next block starts a page
    paragraph, table, text_tag, tab, br, rendered = (qn("w:p"), qn("w:tbl"), qn("w:t"), qn("w:tab"),
                                                     qn("w:br"), qn("w:lastRenderedPageBreak"))
    break_type = qn("w:type")

    def new_page(offset: int) -> None:
        if offset > starts[-1]:
            starts.append(offset)

    def add_block(block: str, breaks: list[int]) -> None:
        nonlocal at, pending
        if not block.strip():
            pending = pending or bool(breaks)
            return
        if pieces:
            pieces.append("\n\n")
            at += 2
        if pending:
            new_page(at)
            pending = False
        for offset in breaks:
            if offset >= len(block.rstrip()):
                pending = True
            else:
                new_page(at + offset)
        pieces.append(block)
        at += len(block)

    def paragraph_text(element: object) -> tuple[str, list[int]]:
        out: list[str] = []
        breaks: list[int] = []
        length = 0
        for node in element.iter():  # type: ignore[attr-defined]
            if node.tag == text_tag and node.text:
                out.append(node.text)
                length += len(node.text)
            elif node.tag == tab:
                out.append("\t")
                length += 1
            elif node.tag == br:
                if node.get(break_type) == "page":
                    breaks.append(length)
                else:
                    out.append("\n")
                    length += 1
            elif node.tag == rendered:
                breaks.append(length)
        return "".join(out), breaks

    for child in document.element.body.iterchildren():
        if child.tag == paragraph:
            text, breaks = paragraph_text(child)
            add_block(text, breaks)
        elif child.tag == table:
            rows = []
            for row in child.iter(qn("w:tr")):
                cells = [paragraph_text(cell)[0].strip() for cell in row.iter(qn("w:tc"))]
                rows.append(" | ".join(cells))
            add_block("\n".join(r for r in rows if r.strip()), [])
    body = "".join(pieces)
    if not body.strip():
        raise UnreadableDocument("no text in the document")
    core = document.core_properties
    date = core.created.date().isoformat() if isinstance(core.created, dt.datetime) else None
    return Extracted(body, _one_line(core.title or ""), date, tuple(starts) if len(starts) > 1 else (), ())


def _check_zip(path: Path, max_unzipped_mb: float) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnreadableDocument(f"not a readable .docx (not a zip package: {exc})") from None
    if total > max_unzipped_mb * 1024 * 1024:
        raise UnreadableDocument(f"unpacks to {total / 1024 / 1024:,.0f} MB, above the {max_unzipped_mb:g} MB "
                                 "limit for a .docx (a zip bomb?)")
    if "word/document.xml" not in names:
        raise UnreadableDocument("not a Word document (no word/document.xml)")


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    """pdfium's text with universal newlines and without control characters (which nothing can
    quote); this is the text that is stored and cited."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:200]


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
