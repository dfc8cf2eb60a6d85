"""Loading a corpus: metadata, body segments, and files that are skipped with a reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qa.errors import CorpusError
from qa.formats.text import read_date
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


def test_a_header_block_is_metadata_and_written_dates_become_iso(tmp_path: Path) -> None:
    (tmp_path / "harbour.txt").write_text(
        "\ufeffTitle: Harbour report\nDate: March 5, 2024\nSource: Portvale Gazette\nTags: ports; cranes\n\n"
        "The harbour handled 4.2 million containers.\n", encoding="utf-8")
    # Prose that opens with "Note:" is not a header: no title or date key, and "Note" is none.
    (tmp_path / "note.txt").write_text("Note: this file is a draft.\nDate: 2024-01-02\n\nIt says little.\n",
                                       encoding="utf-8")
    (tmp_path / "odd.md").write_text("---\ntitle: Odd date\ndate: 03/05/2024\n---\nThe body.\n", encoding="utf-8")
    (tmp_path / "rfc.md").write_text("---\ndate: Tue, 05 Mar 2024 10:00:00 +0000\n---\nMail body.\n",
                                     encoding="utf-8")
    (tmp_path / "page.html").write_text(
        "<html><head><meta name='date' content='5 Mar. 2024'></head><body><p>A page.</p></body></html>",
        encoding="utf-8")
    (tmp_path / "mail.txt").write_text(
        "From: Ana <ana@example.org>\nTo: desk@example.org\nSubject: Crane delay\n"
        "Date: Tue, 05 Mar 2024 10:00:00 +0000\n\nThe crane is late.\n", encoding="utf-8")
    docs = {d.doc_id: d for d in load_corpus(tmp_path)[0]}
    mail = docs["mail.txt"]
    assert (mail.title, mail.date) == ("Crane delay", "2024-03-05T10:00:00+00:00")
    assert [mail.text[s:e] for s, e in mail.segments] == ["The crane is late."]
    harbour = docs["harbour.txt"]
    assert (harbour.title, harbour.date, harbour.tags) == ("Harbour report", "2024-03-05", ("ports", "cranes"))
    assert [harbour.text[s:e] for s, e in harbour.segments] == ["The harbour handled 4.2 million containers."]
    assert harbour.notes == ()
    note = docs["note.txt"]
    assert (note.title, note.date) == ("Note: this file is a draft.", None)
    assert note.text[note.segments[0][0]:].startswith("Note: this file")
    # Ambiguous (March 5 or May 3?) is not guessed: no date, and the build says so.
    odd = docs["odd.md"]
    assert (odd.title, odd.date) == ("Odd date", None)
    assert odd.notes == ("date '03/05/2024' not understood: left undated (write it as YYYY-MM-DD)",)
    assert docs["rfc.md"].date == "2024-03-05T10:00:00+00:00"
    assert docs["page.html"].date == "2024-03-05"


@pytest.mark.parametrize("written, iso", [
    ("2024-03-05", "2024-03-05"), ("2024-03-05T10:00:00Z", "2024-03-05T10:00:00+00:00"),
    ("March 5, 2024", "2024-03-05"), ("Sept. 5th, 2024", "2024-09-05"), ("12 June 1999", "1999-06-12"),
    ("Monday, March 4, 2024", "2024-03-04"), ("Tue, 5 Mar 2024", "2024-03-05"), ("5 Mar 2024", "2024-03-05"),
    ("2024/03/05", "2024-03-05"), ("2024.03.05", "2024-03-05"), ("March 2024", "2024-03-01"),
    ("2024", "2024-01-01"), ("03/05/2024", None), ("Spring 2024", None), ("yesterday", None), ("", None),
])
def test_written_dates(written: str, iso: str | None) -> None:
    assert read_date(written) == iso


def test_date_filters_compare_written_dates_as_dates(tmp_path: Path) -> None:
    # Kept as written, "12 June 1999" sorted as text before "1990-01-01" and fell out of the range.
    from qa.filters import DocFilter

    (tmp_path / "old.md").write_text("---\ndate: 12 June 1999\n---\nThe old ferry sank.\n", encoding="utf-8")
    (tmp_path / "new.md").write_text("---\ndate: March 5, 2024\n---\nThe new ferry sails.\n", encoding="utf-8")
    dates = {d.doc_id: d.date for d in load_corpus(tmp_path)[0]}
    nineties = DocFilter.make(since="1990-01-01", until="1999-12-31")
    assert nineties is not None
    assert [d for d, date in sorted(dates.items()) if nineties.allows(d, date)] == ["old.md"]


def test_bad_files_are_skipped_with_one_clear_reason_each(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("A title\n\nA real sentence about TikTok.\n", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("  \n\n", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02PNG")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    (tmp_path / "slides.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "slides.pptx").write_bytes(b"PK\x03\x04")
    (tmp_path / ".hidden.txt").write_text("ignored", encoding="utf-8")
    seen: list[tuple[str, str]] = []
    docs, skipped = load_corpus(tmp_path, on_skip=lambda d, r: seen.append((d, r)))
    assert [d.doc_id for d in docs] == ["good.txt"]
    reasons = dict(skipped)
    assert seen == skipped
    assert reasons["empty.txt"] == "empty file"
    assert "binary" in reasons["binary.txt"]
    assert "not UTF-8" in reasons["latin1.txt"] and "re-save" in reasons["latin1.txt"]
    assert "not a readable PDF" in reasons["slides.pdf"]
    assert "unsupported file type '.pptx'" in reasons["slides.pptx"]
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


# ---- the corpus stays inside the corpus --------------------------------------------------------

def test_links_that_leave_the_corpus_are_skipped_with_one_line(tmp_path: Path, settings) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "a.txt").write_text("Alpha\n\nThe alpha report says the budget was 12 million.\n", encoding="utf-8")
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "diary.txt").write_text("Diary\n\nMy private thoughts.\n", encoding="utf-8")
    (corpus / "passwd_link.txt").symlink_to("/etc/passwd")
    (corpus / "private_link").symlink_to(outside)
    (corpus / "alias.txt").symlink_to(corpus / "a.txt")    # inside the corpus: the same file, read once
    (corpus / "sub" / "up").symlink_to(corpus)              # a loop back to the root: walked once
    (corpus / "dangling.txt").symlink_to(corpus / "gone.txt")
    lines: list[str] = []
    docs, skipped = load_corpus(corpus, on_skip=lambda d, r: lines.append(f"skipped {d}: {r}"))
    assert sorted(d.doc_id for d in docs) == ["a.txt"]
    reasons = dict(skipped)
    assert "outside the corpus" in reasons["passwd_link.txt"] and "/etc/passwd" in reasons["passwd_link.txt"]
    assert "outside the corpus" in reasons["private_link"] and "follow_external_links" in reasons["private_link"]
    assert "broken symbolic link" in reasons["dangling.txt"]
    assert reasons["alias.txt"] == "symbolic link to a.txt, which is indexed under that name"
    assert "corpus folder itself" in reasons["sub/up"]
    assert len(lines) == 5 and all("\n" not in line for line in lines)
    allowed, _ = load_corpus(corpus, settings=settings.replace(follow_external_links=True))
    assert "private_link/diary.txt" in {d.doc_id for d in allowed}


def test_the_passwd_link_never_reaches_the_index(tmp_path: Path, settings, embedder) -> None:
    from qa.index import build_index, load_index

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Alpha\n\nThe alpha report says the budget was 12 million.\n", encoding="utf-8")
    (corpus / "passwd_link.txt").symlink_to("/etc/passwd")
    lines: list[str] = []
    report = build_index(corpus, tmp_path / "index", settings=settings, embedder=embedder, log=lines.append)
    assert [d for d, _ in report.skipped] == ["passwd_link.txt"]
    assert any(line.startswith("skipped passwd_link.txt: symbolic link to /etc/passwd") for line in lines)
    index = load_index(tmp_path / "index")
    assert set(index.documents) == {"a.txt"} and not any("root:" in c.text for c in index.chunks)


def test_files_over_the_size_limit_are_skipped(tmp_path: Path, settings) -> None:
    (tmp_path / "small.txt").write_text("Small\n\nA short note.\n", encoding="utf-8")
    (tmp_path / "huge.txt").write_text("Huge\n\n" + "word " * 300_000, encoding="utf-8")   # 1.5 MB
    docs, skipped = load_corpus(tmp_path, settings=settings.replace(max_file_mb=1))
    assert [d.doc_id for d in docs] == ["small.txt"]
    assert "above the 1 MB limit" in dict(skipped)["huge.txt"]


def test_titles_lose_the_byte_order_mark_and_survive_broken_front_matter(tmp_path: Path) -> None:
    (tmp_path / "bom.txt").write_bytes("\ufeffBudget report\n\nThe budget grew.\n".encode())
    (tmp_path / "broken.md").write_text(
        "---\ntitle: Budget: the sequel: part 2\ndate: 2021-03-04\ntags: [a, b\n---\n\nThe budget shrank.\n",
        encoding="utf-8")
    (tmp_path / "rule.md").write_text("---\n\nOnly a rule above; the body starts here.\n", encoding="utf-8")
    docs = {d.doc_id: d for d in load_corpus(tmp_path)[0]}
    assert docs["bom.txt"].title == "Budget report"
    assert docs["bom.txt"].text[docs["bom.txt"].segments[0][0]] == "B"
    broken = docs["broken.md"]
    assert (broken.title, broken.date) == ("Budget: the sequel: part 2", "2021-03-04")
    assert broken.text[broken.segments[0][0]:].startswith("The budget shrank.")
    assert docs["rule.md"].title == "Only a rule above; the body starts here."


def test_a_file_reached_twice_is_indexed_once_under_its_own_name(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "reports").mkdir(parents=True)
    (corpus / "reports" / "q1.txt").write_text("Q1\n\nThe first quarter ended with 12 stores open.\n",
                                               encoding="utf-8")
    (corpus / "a_alias.txt").symlink_to(corpus / "reports" / "q1.txt")   # sorts first, still skipped
    (corpus / "latest").symlink_to(corpus / "reports")                    # the folder again
    os.link(corpus / "reports" / "q1.txt", corpus / "reports" / "copy.txt")
    lines: list[str] = []
    docs, skipped = load_corpus(corpus, on_skip=lambda d, r: lines.append(f"skipped {d}: {r}"))
    assert [d.doc_id for d in docs] == ["reports/copy.txt"]   # of two equal names, the first
    reasons = dict(skipped)
    assert reasons["a_alias.txt"] == "symbolic link to reports/copy.txt, which is indexed under that name"
    assert reasons["reports/q1.txt"] == ("the same file as reports/copy.txt (a hard link), which is indexed "
                                         "under that name")
    assert reasons["latest"] == "symbolic link to the folder reports, which is read once, under its own name"
    assert len(lines) == 3


def test_names_that_are_not_utf8_are_skipped_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("Good\n\nA sentence about the harbour.\n", encoding="utf-8")
    os.close(os.open(os.path.join(os.fsencode(tmp_path), b"bad\x9bname.txt"), os.O_CREAT | os.O_WRONLY))
    docs, skipped = load_corpus(tmp_path)
    assert [d.doc_id for d in docs] == ["good.txt"]
    assert [r for _, r in skipped] == ["the name is not valid UTF-8; rename it to index it"]
