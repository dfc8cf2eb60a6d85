"""Loading a corpus: metadata, body segments, and files that are skipped with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.errors import CorpusError
from qa.load import load_corpus

from .conftest import SEEDS


def test_seeds_load_with_titles_and_front_matter() -> None:
    docs, skipped = load_corpus(SEEDS)
    assert skipped == []
    by_id = {d.doc_id: d for d in docs}
    assert [d.doc_id for d in docs] == sorted(by_id)
    first = by_id["000_0cda244c9ed3ffe8.txt"]
    assert first.title == "US officials in contact with TikTok over political disinformation"
    # A page-furniture first line is not the title.
    assert by_id["001_176dacc757c32b0f.txt"].title.startswith("TikTok launches its own info hub")
    fm = by_id["004_99cfcbda6ab29d43.txt"]
    assert (fm.title, fm.date, fm.tags) == ("USA monitor with data from TikTok", "2020-08-24", ("State",))
    # Front matter is metadata, not body text.
    assert all("shorttext:" not in fm.text[s:e] for s, e in fm.segments)
    assert fm.segments[0][0] > fm.text.index("lang: en")


def test_markdown_front_matter_and_html_visible_text(tmp_path: Path) -> None:
    (tmp_path / "note.md").write_text(
        "---\ntitle: Field notes\ndate: 2021-03-04\ntags: [osint, tiktok]\n---\n# Heading\n\nBody text here.\n",
        encoding="utf-8")
    (tmp_path / "page.html").write_text(
        "<html><head><title>A &amp; B</title><meta name='date' content='2022-05-06'>"
        "<script>var secret = 1;</script><style>p {color: red}</style></head>"
        "<body><p>First <a href='x'>linked</a> sentence.</p><p>Second paragraph.</p></body></html>",
        encoding="utf-8")
    docs, skipped = load_corpus(tmp_path)
    assert skipped == []
    md, page = sorted(docs, key=lambda d: d.doc_id)
    assert (md.title, md.date, md.tags) == ("Field notes", "2021-03-04", ("osint", "tiktok"))
    assert md.text[md.segments[0][0]:].startswith("# Heading")
    assert (page.title, page.date) == ("A & B", "2022-05-06")
    body = [page.text[s:e] for s, e in page.segments]
    assert body == ["First <a href='x'>linked</a> sentence.", "Second paragraph."]
    assert not any("secret" in b or "color" in b for b in body)


def test_bad_files_are_skipped_with_one_clear_reason_each(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("A title\n\nA real sentence about TikTok.\n", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("  \n\n", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02PNG")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    (tmp_path / "slides.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / ".hidden.txt").write_text("ignored", encoding="utf-8")
    seen: list[tuple[str, str]] = []
    docs, skipped = load_corpus(tmp_path, on_skip=lambda d, r: seen.append((d, r)))
    assert [d.doc_id for d in docs] == ["good.txt"]
    reasons = dict(skipped)
    assert seen == skipped
    assert reasons["empty.txt"] == "empty file"
    assert "binary" in reasons["binary.txt"]
    assert "not UTF-8" in reasons["latin1.txt"] and "re-save" in reasons["latin1.txt"]
    assert "unsupported file type '.pdf'" in reasons["slides.pdf"]
    assert ".hidden.txt" not in reasons


def test_offsets_follow_read_text_newline_handling(tmp_path: Path) -> None:
    (tmp_path / "crlf.txt").write_bytes(b"Title line\r\n\r\nBody with Windows line ends.\r\n")
    docs, _ = load_corpus(tmp_path)
    text = (tmp_path / "crlf.txt").read_text(encoding="utf-8")
    assert docs[0].text == text
    s, e = docs[0].segments[0]
    assert text[s:e] == "Title line\n\nBody with Windows line ends."


def test_missing_corpus_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="Corpus folder not found"):
        load_corpus(tmp_path / "nope")
