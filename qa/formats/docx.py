"""Word documents (.docx; python-docx): paragraphs (headings included) and table rows in
document order, joined by blank lines; pages where the file marks them. The extracted text is
stored with the index."""

# python-docx is imported inside the functions that use them, on purpose: importing this module
# stays cheap (`import qa` loads neither torch nor FAISS, and `qa --help` starts at once).

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

from qa.formats.common import Extracted, ReadOptions, UnreadableDocument, one_line

MAX_DOCX_UNZIPPED_MB = 100          # a zip bomb renamed .docx is refused before it is parsed


def read_docx(path: Path, raw: bytes, options: ReadOptions) -> Extracted:
    """Paragraphs (headings included) and table rows in document order; title and date from the
    core properties; pages where the file marks them (explicit or last-rendered page breaks)."""
    _check_zip(path, MAX_DOCX_UNZIPPED_MB)
    # python-docx here, not at the top: 74 ms (lxml) that commands reading no .docx skip.
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
    return Extracted(body, one_line(core.title or ""), date, tuple(starts) if len(starts) > 1 else (), ())


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
