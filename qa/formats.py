"""Documents that are not plain text: PDF (pypdfium2) and Word .docx (python-docx).

For these the indexed text is the *extracted* text: page texts in order (PDF) or paragraphs and
table rows in order (DOCX), joined by blank lines. It is stored with the index (`qa.source_text`
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
import zipfile
from dataclasses import dataclass
from pathlib import Path

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


def read_pdf(path: Path, max_pages: int = MAX_PDF_PAGES) -> Extracted:
    """Text per page in reading order, title and date from the PDF's metadata."""
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
        parts: list[str] = []
        starts: list[int] = []
        notes: list[str] = []
        at = 0
        for number in range(count):
            page = pdf[number]
            try:
                textpage = page.get_textpage()
                try:
                    text = _clean(textpage.get_text_range())
                finally:
                    textpage.close()
            finally:
                page.close()
            if number:
                parts.append(PAGE_SEPARATOR)
                at += len(PAGE_SEPARATOR)
            starts.append(at)
            if not text.strip():
                notes.append(f"page {number + 1} has no text layer: skipped; OCR is not installed")
                text = ""
            parts.append(text)
            at += len(text)
        meta = pdf.get_metadata_dict(skip_empty=True)
    finally:
        pdf.close()
    body = "".join(parts)
    if not body.strip():
        raise UnreadableDocument("no text layer on any page (a scan?); OCR is not installed")
    return Extracted(body, _one_line(meta.get("Title", "")), _pdf_date(meta.get("CreationDate", "")),
                     tuple(starts), tuple(notes))


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
