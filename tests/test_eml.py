"""E-mails (.eml): messages written by Python's own `email` package (and by hand where a mailer
would break the rules), indexed and answered with verbatim quotes, hostile ones refused in one
line each, and one uploaded in the chat in Chromium."""

from __future__ import annotations

import inspect
import sys
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

import qa
from qa.config import Settings
from qa.formats import ReadOptions, UnreadableDocument
from qa.formats.eml import MAX_PARTS, read_eml
from qa.index import build_index, load_index
from qa.load import load_corpus

from .conftest import SEEDS
from .test_web import _ask, _chat_over

CRANE_BODY = ("Hello desk,\n\nThe new container crane for the Tromsø quay will arrive eleven weeks late, "
              "because the shipyard in Gdańsk ran out of steel plate.\n\nThe harbour master expects it in "
              "the first week of June.\n\nAna\n")


def crane_mail() -> bytes:
    """A plain-text message with two attachments, as a mail client writes it (UTF-8, encoded)."""
    mail = EmailMessage()
    mail["From"] = "Ana Berg <ana.berg@portvale.example>"
    mail["To"] = "desk@gazette.example"
    mail["Subject"] = "Crane delay at the Tromsø quay"
    mail["Date"] = "Tue, 05 Mar 2024 10:00:00 +0100"
    mail.set_content(CRANE_BODY)
    mail.add_attachment(b"%PDF-1.4 not read", maintype="application", subtype="pdf", filename="crane-contract.pdf")
    mail.add_attachment(b"item,euros\ncrane,3200000\n", maintype="text", subtype="csv", filename="budget.csv")
    return bytes(mail)


def ferry_mail() -> bytes:
    """A message whose only body is HTML."""
    mail = EmailMessage()
    mail["From"] = "Ferry Office <office@ferries.example>"
    mail["Subject"] = "June passenger figures"
    mail["Date"] = "Mon, 01 Jul 2024 08:30:00 +0000"
    mail.set_content("<html><head><style>p {color: grey}</style></head><body><p>The night ferry <b>Nordlys</b> "
                     "carried 640 passengers on its crossings in June.</p><p>Kind regards</p></body></html>",
                     subtype="html")
    return bytes(mail)


def quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def mails(tmp_path_factory: pytest.TempPathFactory, embedder) -> tuple[Path, Path, list[str]]:
    """A corpus of two e-mails and one seed article, indexed."""
    root = tmp_path_factory.mktemp("eml")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "crane.eml").write_bytes(crane_mail())
    (corpus / "ferry.eml").write_bytes(ferry_mail())
    (corpus / "000_0cda244c9ed3ffe8.txt").write_bytes((SEEDS / "000_0cda244c9ed3ffe8.txt").read_bytes())
    lines: list[str] = []
    build_index(corpus, root / "index", settings=Settings(), embedder=embedder, log=lines.append)
    return corpus, root / "index", lines


def test_an_email_answers_with_a_verbatim_quote_from_its_body(mails) -> None:
    _, index, lines = mails
    info = load_index(index).documents["crane.eml"]
    assert (info.kind, info.title, info.date) == ("eml", "Crane delay at the Tromsø quay", "2024-03-05T10:00:00+01:00")
    assert info.author == "Ana Berg <ana.berg@portvale.example>" and info.stored_text and info.pages == 0
    assert qa.source_text("crane.eml", index=index) == CRANE_BODY
    reply = qa.answer("Why will the container crane for the Tromsø quay arrive late?", index=index)
    assert reply.citations and reply.status != "abstained"
    cite = reply.citations[0]
    assert cite.doc_id == "crane.eml" and cite.title == "Crane delay at the Tromsø quay"
    assert "ran out of steel plate" in cite.quote
    assert qa.source_text("crane.eml", index=index)[cite.start:cite.end] == cite.quote
    # The attachments are named in one line of the build log, and not read.
    assert ("crane.eml: 2 attachments skipped (crane-contract.pdf, budget.csv): save them as files of their "
            "own to index them") in lines
    assert all("3200000" not in p.text for p in qa.retrieve("crane budget euros", k=10, index=index))


def test_an_html_only_email_is_read_as_a_page(mails) -> None:
    _, index, _ = mails
    info = load_index(index).documents["ferry.eml"]
    assert (info.title, info.date, info.author) == ("June passenger figures", "2024-07-01T08:30:00+00:00",
                                                    "Ferry Office <office@ferries.example>")
    reply = qa.answer("How many passengers did the night ferry Nordlys carry in June?", index=index)
    assert reply.citations and reply.citations[0].doc_id == "ferry.eml"
    cite = reply.citations[0]
    assert "640 passengers" in cite.quote
    assert qa.source_text("ferry.eml", index=index)[cite.start:cite.end] == cite.quote
    # The style sheet is never body text.
    assert all("color: grey" not in p.text for p in qa.retrieve("grey colour", k=10, index=index))


def _read(raw: bytes) -> Any:
    return read_eml(Path("x.eml"), raw, ReadOptions(max_pages=1))


def test_malformed_headers_wrong_charsets_and_control_characters_still_read(tmp_path: Path) -> None:
    broken = (b"From: =?utf-8?b?!!!?=\nSubject: \x1b[31mQuay\x1b[0m \x07report\nDate: Tue, 99 Foo 2024\n"
              b"Content-Type: text/plain; charset=x-martian\n\nThe quay reopened \xc3\xa9 on Friday.\x1b[2J\n")
    got = _read(broken)
    assert got.title == "[31mQuay [0m report"            # escape and bell characters gone from the title
    assert got.author == "=?utf-8?b?!!!?="                # a From the parser cannot read is kept as written
    assert got.date is None and "\x1b" not in got.text and "The quay reopened é on Friday." in got.text
    assert got.notes == ("charset 'x-martian' is unknown: the body was read as UTF-8",
                         "date 'Tue, 99 Foo 2024' not understood: left undated (write it as YYYY-MM-DD)")
    latin = b"From: a@example.org\nSubject: Caf\xe9\nContent-Type: text/plain\n\nCaf\xe9 cr\xe8me on the quay.\n"
    got = _read(latin)
    assert got.title == "Caf\ufffd" and "Caf\ufffd cr\ufffdme" in got.text
    assert got.notes == ("some bytes of the body are not us-ascii: they are shown as \ufffd",)


@pytest.mark.parametrize("raw, says", [
    (b"Just some notes saved with the wrong suffix.\nNothing here is a header.\n", "not an e-mail (no From"),
    (b"From: a@example.org\x00\x01\x02", "binary file (contains NUL bytes)"),
    (b"From: a@example.org\nSubject: scan\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\n"
     b"Content-Type: application/pdf\nContent-Disposition: attachment; filename=scan.pdf\n\n%PDF\n--XX--\n",
     "no text in the e-mail: 1 attachment skipped (scan.pdf): save it as a file of its own to index it"),
    (b"From: a@example.org\nSubject: empty\n\n  \n", "the e-mail's body is empty"),
    (b"From: a@example.org\nContent-Type: multipart/mixed; boundary=XX\n\n"
     + b"".join(b"--XX\nContent-Type: text/plain\n\npart %d\n" % n for n in range(MAX_PARTS + 1)) + b"--XX--\n",
     f"more than {MAX_PARTS} MIME parts, the limit for an e-mail"),
])
def test_hostile_emails_are_one_line_each(raw: bytes, says: str) -> None:
    with pytest.raises(UnreadableDocument) as refused:
        _read(raw)
    assert str(refused.value).startswith(says) and "\n" not in str(refused.value)


def test_parts_nested_past_the_parsers_recursion_are_one_line() -> None:
    depth = 120
    raw = b"From: a@example.org\nContent-Type: multipart/mixed; boundary=b0\n\n" + b"".join(
        b"--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n" % (n - 1, n) for n in range(1, depth)
    ) + b"--b%d\nContent-Type: text/plain\n\nDeep down.\n" % (depth - 1)
    assert "Deep down." in _read(raw).text   # well inside the part limit: read
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 100)   # a caller already deep in its stack
    try:
        with pytest.raises(UnreadableDocument, match="MIME parts nested too deeply to read"):
            _read(raw)
    finally:
        sys.setrecursionlimit(limit)


def test_a_huge_email_is_held_to_the_file_size_limit(tmp_path: Path) -> None:
    mail = EmailMessage()
    mail["From"] = "a@example.org"
    mail["Subject"] = "Long minutes"
    mail.set_content("The committee met again.\n" * 4_000)
    (tmp_path / "minutes.eml").write_bytes(bytes(mail))
    docs, skipped = load_corpus(tmp_path, settings=Settings(max_file_mb=0.05))
    assert docs == [] and skipped == [("minutes.eml", "0.1 MB, above the 0.05 MB limit (setting max_file_mb)")]
    assert load_corpus(tmp_path, settings=Settings(max_file_mb=0.2))[0][0].text.count("met again") == 4_000


@pytest.mark.browser
def test_an_email_uploaded_in_the_chat_is_answered_and_downloads(browser: Any, settings: Settings,
                                                                 tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "000_0cda244c9ed3ffe8.txt").write_bytes((SEEDS / "000_0cda244c9ed3ffe8.txt").read_bytes())
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "crane.eml").write_bytes(crane_mail())
    with _chat_over(corpus, browser, settings, tmp_path) as (running, page, dialogs):
        page.click("#qa-docs .label-wrap")
        assert "e-mails (EML)" in page.inner_text("#qa-upload")
        page.set_input_files("#qa-upload input[type=file]", [str(inbox / "crane.eml")])
        page.wait_for_selector("#qa-docs-status .qa-docs-outcome", timeout=120_000)
        status = page.inner_text("#qa-docs-status")
        assert "Added uploads/crane.eml." in status
        assert "uploads/crane.eml: 2 attachments skipped (crane-contract.pdf, budget.csv)" in status
        assert "Crane delay at the Tromsø quay" in page.inner_text("#qa-docs-table")

        reply = _ask(page, "Why will the container crane for the Tromsø quay arrive late?")
        assert "Crane delay at the Tromsø quay" in reply.inner_text()
        card = page.locator("#qa-sources .qa-source").first
        assert "ran out of steel plate" in card.locator("mark.qa-quote").inner_text()
        link = card.locator("a.qa-open")
        assert link.inner_text() == "download" and link.get_attribute("href") == "qa/file?doc=uploads%2Fcrane.eml"
        original = page.request.get(running.url + "qa/file?doc=uploads%2Fcrane.eml")
        assert original.status == 200 and original.headers["content-type"] == "message/rfc822"
        assert original.headers["content-disposition"].startswith("attachment")
        assert original.body() == (inbox / "crane.eml").read_bytes()
        assert dialogs == []
