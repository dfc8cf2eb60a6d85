"""The format registry (qa/formats/__init__.py): each suffix read by one format, the formats
tables of README.md and docs/documents.md in step with it, and the loader's refusal naming what
it reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qa.formats import FORMATS, KINDS, SUFFIXES, format_for, serving, upload_label, upload_types
from qa.load import SkippedFile, load_document

from .conftest import ROOT


def test_every_suffix_and_kind_belongs_to_one_format() -> None:
    suffixes = [s for f in FORMATS for s in f.suffixes]
    assert len(suffixes) == len(set(suffixes)) == len(SUFFIXES)
    assert len(KINDS) == len(FORMATS)
    assert all(s == s.lower() and s.startswith(".") for s in suffixes)
    assert format_for("Mail/Crane.EML") is KINDS["eml"] and format_for("notes") is None
    assert upload_types() == sorted(suffixes)
    assert all(f.label in upload_label() for f in FORMATS)


@pytest.mark.parametrize("page", ["README.md", "docs/documents.md"])   # the short table and the full one
def test_the_formats_tables_list_what_the_registry_reads(page: str) -> None:
    text = (ROOT / page).read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `.")]
    listed: dict[str, str] = {}
    for row in rows:
        first, _, _, pages = (cell.strip() for cell in row.strip("|").split(" | ")[:4])
        for suffix in re.findall(r"`(\.\w+)`", first):
            listed[suffix] = pages
    assert set(listed) == set(SUFFIXES)
    for suffix, pages in listed.items():
        assert (pages == "none") == (not SUFFIXES[suffix].paged), suffix


@pytest.mark.parametrize("doc_id, media, shown, sandboxed", [
    ("a.pdf", "application/pdf", True, False),      # the browser's PDF viewer runs its own scripts
    ("a.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", False, False),
    ("a.html", "text/html; charset=utf-8", True, True),
    ("a.md", "text/plain; charset=utf-8", True, True),
    ("a.eml", "message/rfc822", False, True),
    ("a.png", "image/png", True, True),
    ("a.tiff", "image/tiff", False, True),
    ("a.exe", "application/octet-stream", False, True),
])
def test_originals_are_served_as_their_format_says(doc_id: str, media: str, shown: bool, sandboxed: bool) -> None:
    served = serving(doc_id)
    assert (served.media_type, served.shown, served.sandboxed) == (media, shown, sandboxed)


def test_an_unsupported_file_is_refused_naming_what_is_read(tmp_path: Path) -> None:
    (tmp_path / "slides.pptx").write_bytes(b"PK\x03\x04")
    with pytest.raises(SkippedFile) as refused:
        load_document(tmp_path / "slides.pptx", "slides.pptx")
    assert str(refused.value) == f"unsupported file type '.pptx'; supported: {', '.join(sorted(SUFFIXES))}"
    assert ".eml" in str(refused.value)
