"""The web chat, end to end: the real app over the real index, driven by Chromium and gradio_client.

Browser tests need Debian's Chromium at /usr/bin/chromium (`make browser` installs it) and skip
without it. Run with `QA_SCREENSHOT=1` to refresh docs/screenshot.png.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from qa.config import Settings
from qa.index import load_index
from qa.index.text import SourceText
from qa.types import Answer, Citation, Passage
from qa.web import serve
from qa.web.html import Turn, answer_html, sources_html

from .conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
REPLIES = "#qa-chat .qa-reply"

# A document that tries every way of running code in a page; none of it may run.
HOSTILE_MD = "\n".join([
    "---",
    "title: \"Zorblax <img src=x onerror=\\\"window.__pwned='title';alert('title')\\\"> report\"",
    "date: 2021-03-04",
    "---",
    "",
    "Zorblax Corporation keeps its customer records in a vault in Reykjavik "
    "<script>window.__pwned='script';alert('script')</script> according to the annual filing.",
    "",
    "The vault's backup copy sits in Tromso <img src=x onerror=\"window.__pwned='img';alert('img')\"> "
    "under a glacier, the filing says.",
    "",
    "Investors can read more at <a href=\"javascript:window.__pwned='link';alert('link')\">the investor "
    "page</a> or in [the appendix](javascript:alert('md')) of the report, which also mentions "
    "${window.__pwned='tpl'} and {{constructor.constructor('window.__pwned=1')()}} in a footnote "
    "about Zorblax auditors.",
    "",
])
PLAIN_TXT = "Weather in Oslo\n\nOslo had a cold winter with heavy snow in January, the weather office said.\n"


@dataclass(frozen=True)
class Running:
    url: str
    settings: Settings


def _free_port() -> int:
    return free_port()


@contextmanager
def _serving(settings: Settings, **kwargs: Any) -> Iterator[Running]:
    """The real app, started as `python app.py` starts it, on `settings.port`; closed after."""
    app = serve(settings, block=False, **kwargs)
    try:
        yield Running(f"http://127.0.0.1:{settings.port}/", settings)
    finally:
        app.close()


@pytest.fixture(scope="module")
def seeds_app(seeds_index: Path, settings: Settings,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The real app over the session's seeds index, on a free port."""
    database = tmp_path_factory.mktemp("web") / "qa.sqlite3"
    running = settings.replace(index=seeds_index, port=_free_port(), database=database)
    with _serving(running, index=load_index(seeds_index)) as app:
        yield app


def _open(browser: Any, url: str) -> Any:
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.set_default_timeout(20_000)
    page.goto(url)
    page.wait_for_selector("#qa-chat")
    return page


@contextmanager
def _chat_over(corpus: Path, browser: Any, settings: Settings,
               tmp_path: Path) -> Iterator[tuple[Running, Any, list[str]]]:
    """The real app over `corpus` (indexed first, as `python app.py` does when there is no index)
    and a page on it that records every dialog a script opens (there must be none)."""
    here = settings.replace(corpus=corpus, index=tmp_path / "index", port=_free_port(),
                            database=tmp_path / "qa.sqlite3")
    with _serving(here) as running:
        page = _open(browser, running.url)
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        try:
            yield running, page, dialogs
        finally:
            page.close()


def _ask(page: Any, question: str) -> Any:
    """Type a question, send it, and return the locator of its reply once it is shown."""
    count = page.locator(REPLIES).count()
    page.fill("#qa-question textarea", question)
    page.keyboard.press("Enter")
    page.wait_for_function("n => document.querySelectorAll('#qa-chat .qa-reply').length > n",
                           arg=count)
    return page.locator(REPLIES).nth(count)


@pytest.mark.browser
def test_chat_answers_with_sources_follows_up_and_abstains(seeds_app: Running, browser: Any,
                                                           tmp_path: Path) -> None:
    page = _open(browser, seeds_app.url)
    try:
        # First screen: the corpus and example questions that work on it.
        header = page.locator(".qa-header").inner_text()
        assert "seeds" in header and "5 documents" in header and "indexed" in header
        example = page.get_by_text("Where is TikTok's US user data stored?", exact=True)
        assert example.is_visible()
        # The question box stops at the length limit.
        page.fill("#qa-question textarea", "why " * 1000)
        assert len(page.input_value("#qa-question textarea")) == seeds_app.settings.max_question_chars
        page.fill("#qa-question textarea", "")

        # An example question is answered with a [1] marker...
        example.click()
        page.wait_for_selector(REPLIES)
        first = page.locator(REPLIES).first
        assert "[1]" in first.inner_text() and "Virginia" in first.inner_text()
        assert "qa-answered" in (first.get_attribute("class") or "")

        # ...that leads to its source: the quote highlighted inside its passage, with the file.
        first.locator(".qa-text a.qa-cite", has_text="[1]").click()
        card = page.locator("#qa-src-1-1")
        page.wait_for_function("() => document.getElementById('qa-src-1-1')"
                               ".classList.contains('qa-active')")
        assert card.is_visible()
        quote = card.locator("mark.qa-quote").inner_text()
        assert "stored in Virginia" in quote
        passage = card.locator(".qa-passage").inner_text()
        assert len(passage) > len(quote)  # the quote is shown in its context
        assert ".txt" in card.locator(".qa-meta").inner_text()

        # A follow-up that only makes sense after the first question.
        second = _ask(page, "And where is the backup kept?")
        assert "Singapore" in second.inner_text() and "[1]" in second.inner_text()
        second.locator(".qa-text a.qa-cite").first.click()
        page.wait_for_function("() => document.getElementById('qa-src-2-1')"
                               ".classList.contains('qa-active')")
        # A question the documents do not answer: labelled as such, with related reading.
        third = _ask(page, "How old is Roland Cloutier?")
        assert "qa-abstained" in (third.get_attribute("class") or "")
        assert "not in the documents" in third.inner_text().lower()
        assert "[1]" not in third.inner_text()
        assert page.locator("#qa-turn-3 .qa-related").count() >= 1
        third.locator("a.qa-cite").first.click()
        assert page.locator("#qa-rel-3-1").is_visible()

        # New conversation: the chat and the sources panel start over.
        page.click("#qa-new")
        page.wait_for_function("() => document.querySelectorAll('#qa-chat .qa-reply').length === 0")
        assert page.locator("#qa-sources .qa-docs").is_visible()

        # The picture for the README: an answer with two quotes, then one with a short answer.
        _ask(page, "Why did FCC commissioner Brendan Carr want TikTok removed from app stores?")
        downloads = _ask(page, "How many times has TikTok been downloaded?")
        assert "1.5 billion" in downloads.inner_text()
        downloads.locator(".qa-text a.qa-cite").first.click()
        page.wait_for_function("() => document.getElementById('qa-src-2-1')"
                               ".classList.contains('qa-active')")
        page.mouse.move(0, 0)  # no hover state in the picture
        shot = page.screenshot()
        (tmp_path / "screenshot.png").write_bytes(shot)
        if os.environ.get("QA_SCREENSHOT"):
            (ROOT / "docs").mkdir(exist_ok=True)
            (ROOT / "docs" / "screenshot.png").write_bytes(shot)
    finally:
        page.close()


@pytest.mark.browser
def test_hostile_document_is_shown_as_text_and_never_runs(
        browser: Any, settings: Settings, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "zorblax.md").write_text(HOSTILE_MD, encoding="utf-8")
    (corpus / "plain.txt").write_text(PLAIN_TXT, encoding="utf-8")
    # No index yet: serving builds it from the corpus first, as `python app.py` does.
    with _chat_over(corpus, browser, settings, tmp_path) as (_, page, dialogs):
        hostile_question = "Where does Zorblax keep its customer records? <img src=x onerror=alert(9)>"
        for question in (hostile_question, "Where is the backup copy of the Zorblax vault?",
                         "What does the footnote about Zorblax auditors mention?",
                         "<script>window.__pwned='q'</script> Who founded Zorblax?"):
            _ask(page, question)
        page.locator("#qa-sources details").evaluate_all("ds => ds.forEach(d => d.open = true)")
        page.wait_for_timeout(300)  # give any onerror handler time to fire, were it rendered

        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert dialogs == []
        chat = page.locator("#qa-chat").inner_text()
        sources = page.locator("#qa-sources").inner_text()
        assert "<script>window.__pwned='script'" in chat
        assert "<script>window.__pwned='script'" in sources
        assert '<img src=x onerror="window.__pwned=\'img\'' in chat + sources
        assert "javascript:window.__pwned='link'" in sources
        assert "${window.__pwned='tpl'}" in sources
        assert "<img src=x onerror=alert(9)>" in chat  # the user's own text, too
        assert "Zorblax <img src=x" in sources  # the title
        assert page.locator("#qa-chat img, #qa-sources img, #qa-chat script, "
                            "#qa-sources script").count() == 0
        assert page.evaluate("document.querySelectorAll('a[href^=\"javascript:\"]').length") == 0
        # The saved conversation is titled with the first question: listed as text, too.
        page.click("#qa-convs .label-wrap")
        page.wait_for_selector("#qa-conv-list label")
        assert hostile_question in page.inner_text("#qa-conv-list")
        assert page.locator("#qa-convs img, #qa-convs script").count() == 0
        page.wait_for_timeout(300)
        assert page.evaluate("typeof window.__pwned") == "undefined" and dialogs == []


@pytest.mark.browser
def test_upload_ask_open_and_remove_in_the_chat(browser: Any, settings: Settings, tmp_path: Path) -> None:
    from .test_formats import DRAWING, FERRY_PAGES, REPORT, javascript_pdf, print_pdf, zip_bomb

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("000_0cda244c9ed3ffe8.txt", "001_176dacc757c32b0f.txt"):
        (corpus / name).write_bytes((ROOT / "seeds" / name).read_bytes())
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    harbour = print_pdf(REPORT.format(middle=DRAWING), inbox / "harbour.pdf")   # printed by Chromium
    ferry = javascript_pdf(inbox / "ferry.pdf", FERRY_PAGES)                    # JavaScript everywhere
    bomb = zip_bomb(inbox / "bomb.docx")
    with _chat_over(corpus, browser, settings, tmp_path) as (running, page, dialogs):
        page.click("#qa-docs .label-wrap")
        page.set_input_files("#qa-upload input[type=file]", [str(harbour), str(ferry), str(bomb)])
        page.wait_for_selector("#qa-docs-status .qa-docs-outcome", timeout=120_000)
        status = page.inner_text("#qa-docs-status")
        assert "Added uploads/harbour.pdf, uploads/ferry.pdf." in status
        assert "bomb.docx: unpacks to" in status and "zip bomb" in status
        assert "uploads/harbour.pdf: page 3 has no text layer" in status    # OCR found none, or is missing
        assert sorted(p.name for p in (corpus / "uploads").iterdir()) == ["ferry.pdf", "harbour.pdf"]
        page.wait_for_function("document.querySelector('#qa-docs').innerText.includes('Documents (4)')")
        table = page.inner_text("#qa-docs-table")
        assert "Harbour Survey 2024" in table and "uploads/ferry.pdf" in table

        reply = _ask(page, "How many fishing boats were moored in the northern harbour?")
        assert "412" in reply.inner_text() and "Harbour Survey 2024, p. 2" in reply.inner_text()
        card = page.locator("#qa-sources .qa-source").first
        assert "412 fishing boats" in card.locator("mark.qa-quote").inner_text()
        assert "p. 2" in card.locator(".qa-page").inner_text()
        href = card.locator("a.qa-open").get_attribute("href")
        assert href == "qa/file?doc=uploads%2Fharbour.pdf#page=2"
        original = page.request.get(running.url + href.split("#")[0])
        assert original.status == 200 and original.headers["content-type"] == "application/pdf"
        assert original.body() == harbour.read_bytes()

        reply = _ask(page, "How many passengers did the night ferry carry in June?")
        assert "640" in reply.inner_text() and "p. 2" in reply.inner_text()
        page.locator("#qa-sources details").evaluate_all("ds => ds.forEach(d => d.open = true)")
        assert "<script>alert(1)</script>" in page.inner_text("#qa-sources")
        assert page.locator("#qa-sources script, #qa-chat script").count() == 0

        # Remove the harbour report: pick its row, then the button names what it removes.
        page.locator("#qa-docs-table [role=row]:has-text('harbour.pdf') [role=gridcell]").first.click()
        page.wait_for_function("document.querySelector('#qa-remove').innerText.includes('harbour.pdf')")
        page.click("#qa-remove")
        page.wait_for_function("document.querySelector('#qa-docs-status').innerText.includes('Removed')",
                               timeout=120_000)
        assert "Documents (3)" in page.inner_text("#qa-docs")
        assert "harbour.pdf" not in page.inner_text("#qa-docs-table")
        reply = _ask(page, "How many fishing boats were moored in the northern harbour?")
        assert "412" not in reply.inner_text() and "Harbour Survey" not in reply.inner_text()
        assert not (corpus / "uploads" / "harbour.pdf").exists()
        assert any(p.name == "harbour.pdf" for p in (corpus / ".removed").rglob("*"))
        assert dialogs == []


def test_many_questions_at_once_each_get_their_own_answer(seeds_app: Running) -> None:
    from gradio_client import Client

    expected = {
        "Where is TikTok's US user data stored?": "Virginia",
        "How many times has TikTok been downloaded?": "1.5 billion",
        "By what percentage did TikTok's US user base grow in 2019?": "97.5%",
        "Who is TikTok's chief information and security officer?": "Roland Cloutier",
        "Which British politician said she planned to scrutinize Chinese companies such as "
        "TikTok's owner?": "Liz Truss",
        "How many followers had the network of accounts run from China gathered?": "110,000",
        "Which US Secretary of State accused TikTok of passing user data to the Communist "
        "leadership in Beijing?": "Mike Pompeo",
        "What was the name of ByteDance's defunct news aggregator app?": "Top Buzz",
        "How old is Roland Cloutier?": None,  # not in the documents
    }
    client = Client(seeds_app.url, verbose=False)
    with ThreadPoolExecutor(max_workers=len(expected)) as pool:
        futures = {q: pool.submit(client.predict, question=q, api_name="/ask") for q in expected}
        replies = {q: f.result(timeout=60) for q, f in futures.items()}
    corpus = ROOT / "seeds"
    for question, want in expected.items():
        reply = replies[question]
        assert reply["query"] == question
        if want is None:
            assert reply["abstained"] and not reply["citations"]
            continue
        assert not reply["abstained"], question
        assert want in reply["answer"], (question, reply["answer"])
        assert "[1]" in reply["answer"]
        for c in reply["citations"]:
            source = (corpus / c["doc_id"]).read_text(encoding="utf-8")
            assert source[c["start"]:c["end"]] == c["quote"]

    # The conversation goes over the API as well.
    follow = client.predict("And where is the backup kept?",
                            [{"role": "user", "content": "Where is TikTok's US user data stored?"}],
                            api_name="/ask")
    assert "Singapore" in follow["answer"]


@pytest.mark.browser
def test_thumbs_up_and_down_are_kept_in_the_database(seeds_app: Running, browser: Any) -> None:
    from qa.conversations import ConversationStore

    store = ConversationStore(seeds_app.settings.database)
    before = len(store.votes())
    page = _open(browser, seeds_app.url)
    try:
        _ask(page, "How many accounts did TikTok remove?")
        page.get_by_role("button", name="Like", exact=True).last.click()
        _wait_for_votes(store, before + 1)
        page.get_by_role("button", name="Dislike", exact=True).last.click()
        votes = _wait_for_votes(store, before + 2)
    finally:
        page.close()
    up, down = votes[before:]
    assert (up["vote"], down["vote"]) == ("up", "down")
    assert up["question"] == "How many accounts did TikTok remove?" and up["collection"] == "seeds"
    assert "3,000" in up["answer"] and "[1]" in up["answer"] and up["status"] == "answered"
    assert up["citations"] and up["citations"][0]["quote"] in up["answer"]
    assert up["created"].endswith("+00:00")
    assert up["conversation"] and up["conversation"] == down["conversation"]   # the saved conversation voted on


@pytest.mark.browser
def test_a_question_typed_while_an_answer_comes_is_kept(seeds_app: Running, browser: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import qa.web.handlers

    answer_now = qa.web.handlers.next_reply

    def slow_reply(*args: Any, **kwargs: Any) -> Any:  # as on a loaded machine
        time.sleep(1.0)
        return answer_now(*args, **kwargs)

    monkeypatch.setattr(qa.web.handlers, "next_reply", slow_reply)   # as the page's handler finds it
    page = _open(browser, seeds_app.url)
    try:
        page.fill("#qa-question textarea", "Where is TikTok's US user data stored?")
        page.keyboard.press("Enter")
        page.wait_for_selector("#qa-chat .qa-q")  # the question is taken; its answer is coming
        typed = "How many times has TikTok been downloaded?"
        page.fill("#qa-question textarea", typed)
        assert page.locator(REPLIES).count() == 0
        page.wait_for_selector(REPLIES)
        page.wait_for_timeout(500)  # the event's completion may arrive after the reply is shown
        assert page.input_value("#qa-question textarea") == typed  # not wiped by the first answer
        # Sent while an answer is on its way, a question is answered after it, not dropped.
        page.keyboard.press("Enter")
        page.wait_for_selector("#qa-chat .qa-q >> nth=1")
        page.fill("#qa-question textarea", "Who is TikTok's chief information and security officer?")
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.querySelectorAll('#qa-chat .qa-reply').length === 3")
        assert "1.5 billion" in page.locator(REPLIES).nth(1).inner_text()
        assert "Cloutier" in page.locator(REPLIES).nth(2).inner_text()
        assert page.input_value("#qa-question textarea") == ""
    finally:
        page.close()


@pytest.mark.browser
def test_the_chat_answers_from_the_documents_chosen(seeds_app: Running, browser: Any) -> None:
    page = _open(browser, seeds_app.url)
    try:
        page.get_by_text("Only some documents").click()
        page.fill("#qa-filter-docs textarea, #qa-filter-docs input", "002_*")
        reply = _ask(page, "Who owns TikTok?")
        assert "ByteDance" in reply.inner_text()
        files = page.locator("#qa-sources .qa-meta .qa-file").all_inner_texts()
        assert files and set(files) == {"002_370be3bb71d92220.txt"}
        page.fill("#qa-filter-since textarea, #qa-filter-since input", "yesterday")
        bad = _ask(page, "Who owns TikTok?")
        assert "Invalid since date 'yesterday'" in bad.inner_text()
    finally:
        page.close()


def _wait_for_votes(store: Any, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        votes = store.votes()
        if len(votes) >= count:
            return list(votes)
        time.sleep(0.05)
    raise AssertionError(f"{store.path} did not reach {count} vote(s) within {timeout_s} s")


def test_only_the_app_is_served(seeds_app: Running) -> None:
    page = urllib.request.urlopen(seeds_app.url, timeout=10).read().decode("utf-8")
    assert str(ROOT) not in page and str(seeds_app.settings.index) not in page
    source = (ROOT / "seeds" / "000_0cda244c9ed3ffe8.txt").resolve()
    for path in (f"gradio_api/file={source}", "gradio_api/file=seeds/000_0cda244c9ed3ffe8.txt",
                 f"gradio_api/file={seeds_app.settings.index.resolve() / 'manifest.json'}",
                 "monitoring"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(seeds_app.url + path, timeout=10)
        assert refused.value.code in (403, 404), path


def test_basic_auth_when_configured(seeds_index: Path, settings: Settings, tmp_path: Path) -> None:
    from gradio_client import Client

    locked = settings.replace(index=seeds_index, port=_free_port(), auth_user="ana",
                              auth_password="s3cret", database=tmp_path / "qa.sqlite3")
    with _serving(locked, index=load_index(seeds_index)) as running:
        with pytest.raises(Exception):  # noqa: B017 - the client raises a bare ValueError
            Client(running.url, verbose=False)
        client = Client(running.url, auth=("ana", "s3cret"), verbose=False)
        assert "Virginia" in client.predict("Where is TikTok's US user data stored?", api_name="/ask")["answer"]


def test_rendered_html_escapes_document_text(seeds_index: Path) -> None:
    index = load_index(seeds_index)
    evil = "<script>alert(1)</script> & \"quotes\" <img src=x onerror=alert(2)>"
    cite = Citation(1, "doc<u>.txt", evil, evil, 0, len(evil), evil, answer_start=0, answer_end=8)
    reply = Answer(text=f"{evil} [1]", citations=(cite,), abstained=False,
                   passages=(Passage("doc<u>.txt", evil, evil, evil, 0, len(evil), 1.0),))
    chat = answer_html(1, reply)
    panel = sources_html([Turn(evil, reply)], index, SourceText(index))
    for rendered in (chat, panel):
        assert "<script>" not in rendered and "<img" not in rendered and "<u>" not in rendered
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered or \
            '<strong class="qa-span">&lt;script&gt;</strong>alert(1)&lt;/script&gt;' in rendered
    # Rendered from the citation's fields: the short answer in bold, the marker a link to its card.
    assert '<strong class="qa-span">&lt;script&gt;</strong>' in chat and 'href="#qa-src-1-1"' in chat
    assert 'id="qa-src-1-1"' in panel and '<mark class="qa-quote">' in panel
    # Text that is not the citations' quotes (a custom answerer's own words) is shown as written:
    # nothing in it is parsed, so a "[7]" or "[1]" there links nowhere.
    free = Answer(text=f"{evil} [1] and [7]", citations=(cite,), abstained=False, passages=())
    shown = answer_html(1, free)
    body = shown.split('<div class="qa-text">', 1)[1].split("</div>", 1)[0]
    assert not free.is_composed() and "<a " not in body
    assert body == ("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot; "
                    "&lt;img src=x onerror=alert(2)&gt; [1] and [7]")
    assert 'href="#qa-src-1-1"' in shown   # its source is still one click away, on the chip


# ---- the surface: what a client may send, and what it gets back --------------------------------

def _call_ask(url: str, payload: bytes) -> tuple[int, str]:
    """POST to Gradio's /ask route as curl would, then read the event stream: (status, text)."""
    request = urllib.request.Request(url + "gradio_api/call/ask", data=payload,
                                     headers={"Content-Type": "application/json"})
    try:
        event_id = json.load(urllib.request.urlopen(request, timeout=30))["event_id"]
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode("utf-8")
    return 200, urllib.request.urlopen(f"{url}gradio_api/call/ask/{event_id}", timeout=60).read().decode("utf-8")


@pytest.mark.parametrize("payload, message", [
    (b'{"data": ["Where is \\ud800 the data?", null]}', "not valid text"),          # a lone surrogate
    (json.dumps({"data": ["And where?", "a history sent as one string"]}).encode(), "must be a list of"),
    (json.dumps({"data": ["And where?", [["user", "hi"]]]}).encode(), "History message 0 is not"),
    (json.dumps({"data": ["where is the data " * 6000, None]}).encode(), "the limit is 2,000"),
])
def test_bad_requests_get_one_line_errors(seeds_app: Running, payload: bytes, message: str) -> None:
    status, stream = _call_ask(seeds_app.url, payload)
    assert status == 200 and stream.startswith("event: error")
    error = json.loads(stream.split("data: ", 1)[1])["error"]
    assert message in error and "\n" not in error and len(error) < 300   # the question is never echoed


def test_oversized_requests_are_refused_before_parsing(seeds_app: Running) -> None:
    from qa.web import MAX_REQUEST_BYTES

    turns = [{"role": "user", "content": f"question {i}"} for i in range(20_000)]
    payload = json.dumps({"data": ["And where is the backup kept?", turns]}).encode()
    assert len(payload) > MAX_REQUEST_BYTES
    status, text = _call_ask(seeds_app.url, payload)
    assert status == 413 and "Request too large" in text
    # The last turns of a long conversation are what counts: 500 messages still fit.
    status, stream = _call_ask(seeds_app.url, json.dumps(
        {"data": ["And where is the backup kept?", turns[:499] + [
            {"role": "user", "content": "Where is TikTok's US user data stored?"}]]}).encode())
    assert status == 200 and stream.startswith("event: complete") and "Singapore" in stream


def test_bodies_without_a_length_are_bounded_too(seeds_app: Running) -> None:
    import http.client
    from urllib.parse import urlsplit

    from qa.web import MAX_REQUEST_BYTES

    where = urlsplit(seeds_app.url)

    def post_chunked(body: bytes) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
        pieces = (body[i:i + 65536] for i in range(0, len(body), 65536))
        conn.request("POST", "/gradio_api/call/ask", body=pieces, encode_chunked=True,
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()

    big = json.dumps({"data": ["Where is the data?", [{"role": "user", "content": "x" * 1000}] * 400]}).encode()
    assert len(big) > MAX_REQUEST_BYTES
    status, text = post_chunked(big)
    assert status == 413 and b"Request too large" in text
    status, text = post_chunked(json.dumps({"data": ["Where is TikTok's US user data stored?", None]}).encode())
    assert status == 200 and "event_id" in json.loads(text)


@pytest.mark.parametrize("route, payload, status, message", [
    ("call/ask", b'{"data": []}', 422, "/ask takes 2 input(s) in data (question, history), not 0."),
    ("call/ask", b'{"data": ["Where is the data?"]}', 422, "/ask takes 2 input(s) in data (question, history), not 1."),
    ("run/ask", b'{"data": []}', 422, "/ask takes 2 input(s)"),
    ("api/ask", b'{"data": ["a", null, "c"]}', 422, "not 3"),
    ("call/ask", b"where is the data", 400, "The request body is not JSON."),
    ("call/ask", b'["Where is the data?", null]', 400, "must be a JSON object"),
    ("call/ask", b'{"data": "Where is the data?"}', 422, 'must hold "data": a JSON list'),
    ("call/nope", b'{"data": []}', 404, "There is no API endpoint /nope"),
    ("call/v2/ask", b'{"data": []}', 422, "/ask takes the named inputs question, history; unknown: data."),
    ("call/v2/ask", b'{"history": null}', 422, "missing: question."),
    ("queue/join", b'{"data": [], "fn_index": 999, "session_hash": "x"}', 404, "fn_index"),
    ("run/predict", b'{"data": [], "fn_index": {refresh}, "session_hash": "x"}', 422, "/refresh takes 1 input(s)"),
    ("queue/join", b'{"data": [], "fn_index": {ask}, "session_hash": "x"}', 422, "/ask takes 2 input(s)"),
])
def test_malformed_api_bodies_get_a_one_line_4xx(seeds_app: Running, capfd: pytest.CaptureFixture[str], route: str,
                                                  payload: bytes, status: int, message: str) -> None:
    """Gradio took these into its queue and failed deep inside: `{"error": null}` for the client and
    a traceback in the server's log."""
    config = json.loads(urllib.request.urlopen(seeds_app.url + "config", timeout=10).read())
    for event in config["dependencies"]:   # the page's events by number, as the page calls them
        payload = payload.replace(b"{%s}" % str(event["api_name"]).encode(), str(event["id"]).encode())
    request = urllib.request.Request(seeds_app.url + "gradio_api/" + route, data=payload,
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    body = refused.value.read().decode("utf-8")
    assert refused.value.code == status and message in body and body.count("\n") == 1, body
    assert "Traceback" not in capfd.readouterr().err


def _multipart(name: str, content: bytes) -> tuple[bytes, str]:
    boundary = "qa-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("where", ["beyond loopback, no login", "setting uploads off"])
def test_the_upload_route_is_closed_when_uploads_are_off(seeds_index: Path, settings: Settings, tmp_path: Path,
                                                         where: str) -> None:
    from qa.web import uploads_allowed

    off = settings.replace(index=seeds_index, port=_free_port(), database=tmp_path / "qa.sqlite3",
                           **({"host": "0.0.0.0"} if where.startswith("beyond") else {"uploads": False}))
    allowed, why = uploads_allowed(off)
    assert not allowed and ("without a login" in why if where.startswith("beyond") else "setting uploads" in why)
    body, kind = _multipart("evil.html", b"<script>alert(1)</script>")
    with _serving(off, index=load_index(seeds_index)) as running:
        for path in ("gradio_api/upload", "gradio_api/upload?upload_id=x", "gradio_api//upload/",
                     "gradio_api/./upload"):
            request = urllib.request.Request(running.url + path, data=body, headers={"Content-Type": kind})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code == 403, path
            assert b"Uploads are off" in refused.value.read()
        config = urllib.request.urlopen(running.url + "config", timeout=10).read().decode("utf-8")
        assert '"qa-upload-off"' in config and '"qa-upload"' not in config and '"qa-remove"' not in config
        assert why in config
        if where.startswith("beyond"):   # no key, beyond loopback: the OpenAI-compatible API is off too
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(running.url + "v1/models", timeout=10)
            error = json.loads(refused.value.read())["error"]
            assert refused.value.code == 403 and error["type"] == "permission_error"
            assert "Set api_key" in error["message"]
            assert '"qa-convs-off"' in config and "Conversations are not saved" in config


def test_uploads_need_the_login_when_there_is_one(seeds_index: Path, settings: Settings, tmp_path: Path) -> None:
    from qa.web import uploads_allowed

    locked = settings.replace(index=seeds_index, port=_free_port(), database=tmp_path / "qa.sqlite3",
                              host="0.0.0.0", auth_user="ana", auth_password="s3cret")
    assert uploads_allowed(locked) == (True, "")
    assert uploads_allowed(settings.replace(host="::1"))[0] and uploads_allowed(settings.replace(host="localhost"))[0]
    body, kind = _multipart("note.txt", b"hello")
    with _serving(locked, index=load_index(seeds_index)) as running:
        for path in ("gradio_api/upload", "qa/file?doc=000_0cda244c9ed3ffe8.txt"):
            request = urllib.request.Request(running.url + path, data=body if "upload" in path else None,
                                             headers={"Content-Type": kind})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code == 401, path


def test_original_files_are_served_by_doc_id_only(seeds_app: Running) -> None:
    doc = "000_0cda244c9ed3ffe8.txt"
    response = urllib.request.urlopen(f"{seeds_app.url}qa/file?doc={doc}", timeout=10)
    assert response.read() == (ROOT / "seeds" / doc).read_bytes()
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"].startswith("sandbox;")
    for asked in ("", "nope.txt", "../seeds/" + doc, str(ROOT / "seeds" / doc), "../../../../etc/passwd",
                  "%2e%2e/%2e%2e/etc/passwd"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{seeds_app.url}qa/file?doc={asked}", timeout=10)
        assert refused.value.code == 404 and b"in the index" in refused.value.read(), asked


def test_an_original_that_changed_or_left_is_not_served(tmp_path: Path, settings: Settings, embedder) -> None:
    from qa.index import build_index
    from qa.web import original_file

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "page.html").write_text("<html><head><title>Tide table</title><script>alert(1)</script></head>"
                                      "<body><p>High tide at the harbour is at 06:12 on Monday.</p></body></html>",
                                      encoding="utf-8")
    (corpus / "notes.txt").write_text(PLAIN_TXT, encoding="utf-8")
    build_index(corpus, tmp_path / "index", settings=settings, embedder=embedder, log=lambda _line: None)
    index = load_index(tmp_path / "index")
    served = original_file(index, "page.html")
    assert served.status_code == 200 and served.media_type == "text/html; charset=utf-8"
    assert served.headers["content-security-policy"].startswith("sandbox; default-src 'none'")   # no script runs
    (corpus / "notes.txt").write_text(PLAIN_TXT + "An added line.\n", encoding="utf-8")
    changed = original_file(index, "notes.txt")
    assert changed.status_code == 409 and b"changed since it was indexed" in bytes(changed.body)
    (corpus / "page.html").unlink()
    assert original_file(index, "page.html").status_code == 404


def _app_py(*args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, stdin=subprocess.DEVNULL)


def test_app_py_says_in_one_line_when_the_port_is_busy(seeds_index: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _app_py("--index", str(seeds_index), "--port", str(port))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("qa: error: Cannot serve on 127.0.0.1:") and "port is in use" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize("toml, message", [
    ('port = 70000', "Invalid port value: 70000"),
    ('top_k = "eight"', "Invalid top_k value: 'eight'. It must be a whole number"),
    ('concurency = 4', "Unknown setting(s): concurency"),
    ('port = ', "not valid TOML"),
])
def test_app_py_reports_bad_settings_in_one_line(tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "qa.toml"
    config.write_text(toml + "\n", encoding="utf-8")
    result = _app_py("--config", str(config))
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1



def test_a_conversation_holds_fifty_questions(seeds_index: Path, settings: Settings) -> None:
    from qa.web import MAX_TURNS, next_reply

    index = load_index(seeds_index)
    first, problem = next_reply("Where is TikTok's US user data stored?", [], index, settings)
    assert first is not None and problem == ""
    turns = [Turn("Where is TikTok's US user data stored?", first)] * (MAX_TURNS - 1)
    follow, _ = next_reply("And where is the backup kept?", turns, index, settings)
    assert follow is not None and "Singapore" in follow.text      # the 50th question is answered
    full, problem = next_reply("And where is the backup kept?", [*turns, Turn("x", first)], index, settings)
    assert full is None and "holds 50 questions" in problem and "New conversation" in problem
    empty, problem = next_reply("   ", [], index, settings)
    assert empty is None and problem.startswith("The question is empty")
