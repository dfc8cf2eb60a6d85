"""The file formats qa reads: one module each, one entry each in FORMATS.

The loader (qa/load.py) finds a file's reader here by its suffix, the index stores the text of
the formats marked `stored`, the chat's upload control lists `label`s and accepts the suffixes,
and the file route serves each suffix with its media type. Adding a format is a module with a
reader `(path, raw bytes, ReadOptions) -> Extracted` and one entry below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath

from qa.formats.common import PAGE_SEPARATOR, Extracted, ReadOptions, UnreadableDocument
from qa.formats.docx import read_docx
from qa.formats.eml import read_eml
from qa.formats.html import read_html_file
from qa.formats.image import read_image
from qa.formats.pdf import image_share, read_pdf
from qa.formats.text import read_text_file

__all__ = ["EXTRACTED_KINDS", "FORMATS", "KINDS", "PAGE_SEPARATOR", "SUFFIXES", "Extracted", "Format", "ReadOptions",
           "Served", "UnreadableDocument", "format_for", "image_share", "serving", "upload_label", "upload_types"]

Reader = Callable[[Path, bytes, ReadOptions], Extracted]
_TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Format:
    """One file format: how it is read, named and served.

    `media_types` maps each suffix (lower case, with its dot) to what the file route sends.
    """

    kind: str                      # DocumentInfo.kind of its documents
    label: str                     # how the chat's upload control names it
    read: Reader
    media_types: Mapping[str, str]
    stored: bool = False           # its text is extracted and kept in the index (qa.source_text)
    paged: bool = False            # it can have pages (page_starts; citations name their page)
    flowing: bool = False          # its sentences run on across page breaks (a PDF's text does)
    saved: tuple[str, ...] = ()    # suffixes a browser saves rather than shows
    sandboxed: bool = True         # served under a CSP sandbox (a browser's PDF viewer needs its scripts)

    @property
    def suffixes(self) -> tuple[str, ...]:
        return tuple(self.media_types)


FORMATS: tuple[Format, ...] = (
    Format("pdf", "PDF", read_pdf, {".pdf": "application/pdf"}, stored=True, paged=True, flowing=True,
           sandboxed=False),
    Format("docx", "DOCX", read_docx,
           {".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
           stored=True, paged=True, saved=(".docx",), sandboxed=False),
    Format("text", "TXT", read_text_file, {".txt": _TEXT, ".text": _TEXT}),
    Format("markdown", "MD", read_text_file, {".md": _TEXT, ".markdown": _TEXT}),
    Format("html", "HTML", read_html_file, {".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8"}),
    Format("eml", "e-mails (EML)", read_eml, {".eml": "message/rfc822"}, stored=True, saved=(".eml",)),
    Format("image", "scans as PNG, JPG, TIFF read by OCR", read_image,
           {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".tif": "image/tiff",
            ".tiff": "image/tiff"}, stored=True, paged=True, saved=(".tif", ".tiff")),
)
SUFFIXES: dict[str, Format] = {suffix: f for f in FORMATS for suffix in f.suffixes}
KINDS: dict[str, Format] = {f.kind: f for f in FORMATS}
EXTRACTED_KINDS: tuple[str, ...] = tuple(f.kind for f in FORMATS if f.stored)


def format_for(name: str | PurePath) -> Format | None:
    """The format of a file by its suffix (any case), or None when qa does not read it."""
    return SUFFIXES.get(PurePath(name).suffix.lower())


def upload_types() -> list[str]:
    """Every suffix qa reads, sorted: what the upload control accepts and messages list."""
    return sorted(SUFFIXES)


def upload_label() -> str:
    """The formats as the upload control names them: "PDF, DOCX, TXT, ..."."""
    return ", ".join(f.label for f in FORMATS)


@dataclass(frozen=True)
class Served:
    """How the file route sends an original file: media type, shown or saved, sandboxed or not."""

    media_type: str = "application/octet-stream"
    shown: bool = False
    sandboxed: bool = True


def serving(doc_id: str) -> Served:
    """How a browser gets the file `doc_id` (a format qa does not read is saved, sandboxed)."""
    found = format_for(doc_id)
    if found is None:
        return Served()
    suffix = PurePath(doc_id).suffix.lower()
    return Served(found.media_types[suffix], suffix not in found.saved, found.sandboxed)
