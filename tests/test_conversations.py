"""Saved conversations (qa/conversations.py, qa/web/saved.py): the SQLite store with real
answers, and the chat in Chromium keeping conversations over a restart, per login."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from qa.config import Settings
from qa.conversations import (
    MAX_TURNS,
    ConversationStore,
    answer_from_record,
    answer_record,
    conversation_markdown,
    markdown_text,
)
from qa.errors import DatabaseError, QueryError
from qa.index import load_index
from qa.types import Answer

from .conftest import LOGINS, QaServer
from .test_web import REPLIES, _ask

QUESTIONS = ("Where is TikTok's US user data stored?", "And where is the backup kept?")


@pytest.fixture(scope="module")
def replies(seeds_index: Path, settings: Settings) -> list[Answer]:
    """Real answers: a question, its follow-up, and an abstention."""
    from qa.answers import answer

    index = load_index(seeds_index)
    first = answer(QUESTIONS[0], [], index=index, settings=settings)
    follow = answer(QUESTIONS[1], [{"role": "user", "content": QUESTIONS[0]}], index=index, settings=settings)
    unknown = answer("How old is Roland Cloutier?", [], index=index, settings=settings)
    assert not first.abstained and "Singapore" in follow.text and unknown.abstained
    return [first, follow, unknown]


def test_conversations_are_kept_per_owner_and_read_back_after_a_restart(tmp_path: Path,
                                                                        replies: list[Answer]) -> None:
    store = ConversationStore(tmp_path / "qa.sqlite3")
    ana = store.create("ana", "seeds", QUESTIONS[0])
    for question, reply in zip(QUESTIONS, replies, strict=False):
        store.add_turn("ana", ana, question, reply)
    ben = store.create("ben", "notes", "Ferries")
    reopened = ConversationStore(tmp_path / "qa.sqlite3").open("ana", ana)   # a new process: read from the file
    assert [q for q, _ in reopened.turns] == list(QUESTIONS)
    for (_, saved), reply in zip(reopened.turns, replies, strict=False):
        assert saved.text == reply.text and saved.citations == reply.citations and saved.status == reply.status
        cited = {(c.doc_id, c.start, c.end) for c in reply.citations}
        assert all(any((p.doc_id, p.start) <= (d, s) and e <= p.end for d, s, e in cited) for p in saved.passages)
    assert reopened.info.questions == 2 and reopened.info.collection == "seeds"
    assert [c.id for c in store.conversations("ana")] == [ana] and [c.id for c in store.conversations("ben")] == [ben]
    assert store.conversations("") == []
    for act in (lambda: store.open("ben", ana), lambda: store.rename("ben", ana, "mine now"),
                lambda: store.delete("ben", ana), lambda: store.add_turn("ben", ana, "x", replies[0])):
        with pytest.raises(QueryError, match="not among your saved conversations"):
            act()
    assert store.rename("ana", ana, "  Where\tthe data\x1b lives  ") == "Where the data lives"
    store.delete("ana", ana)
    assert store.conversations("ana") == [] and [c.id for c in store.conversations("ben")] == [ben]


def test_an_answer_survives_its_json_record(replies: list[Answer]) -> None:
    for reply in replies:
        back = answer_from_record(answer_record(reply))
        assert (back.text, back.citations, back.related, back.status, back.confidence) == \
            (reply.text, reply.citations, reply.related, reply.status, reply.confidence)
    # A record written before a field existed still reads (the field takes its default).
    old = answer_record(replies[0])
    for c in old["citations"]:
        del c["ocr"]
    old["unknown_field_from_the_future"] = 1
    assert answer_from_record(old).citations[0].ocr is False


def test_limits_on_titles_conversations_and_questions(tmp_path: Path, replies: list[Answer],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import qa.conversations

    store = ConversationStore(tmp_path / "qa.sqlite3")
    with pytest.raises(QueryError, match="the limit is 120"):
        store.create("ana", "seeds", "x" * 121)
    with pytest.raises(QueryError, match="The title is empty"):
        store.create("ana", "seeds", " \n\t ")
    full = store.create("ana", "seeds", "Full")
    for _ in range(MAX_TURNS):
        store.add_turn("ana", full, QUESTIONS[0], replies[0])
    with pytest.raises(QueryError, match="holds 50 questions"):
        store.add_turn("ana", full, QUESTIONS[0], replies[0])
    monkeypatch.setattr(qa.conversations, "MAX_CONVERSATIONS", 3)   # 200 in use; the same check
    store.create("ana", "seeds", "Two")
    store.create("ana", "seeds", "Three")
    with pytest.raises(QueryError, match="Not saved: 3 conversations are saved"):
        store.create("ana", "seeds", "Four")
    assert len(store.conversations("ana")) == 3 and store.create("ben", "seeds", "Ben's first")
    monkeypatch.setattr(qa.conversations, "MAX_VOTES", 2)
    for vote in ("up", "down", "up"):
        store.record_vote("ana", "seeds", full, QUESTIONS[0], replies[0], vote)
    assert [v["vote"] for v in store.votes()] == ["down", "up"]   # the oldest vote went


def test_migrations_run_in_order_and_a_newer_or_damaged_file_is_refused(tmp_path: Path, replies: list[Answer],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import qa.conversations

    path = tmp_path / "qa.sqlite3"
    store = ConversationStore(path)
    kept = store.create("ana", "seeds", "Kept")
    store.add_turn("ana", kept, QUESTIONS[0], replies[0])
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(qa.conversations.MIGRATIONS)
    # A later version adds a column: the next open applies it once, and the rows stay.
    later = (*qa.conversations.MIGRATIONS, "ALTER TABLE conversations ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0")
    monkeypatch.setattr(qa.conversations, "MIGRATIONS", later)
    ConversationStore(path)
    ConversationStore(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(later)
        assert conn.execute("SELECT pinned FROM conversations").fetchall() == [(0,)]
    assert ConversationStore(path).open("ana", kept).turns[0][1].text == replies[0].text
    monkeypatch.undo()
    with pytest.raises(DatabaseError, match="written by a newer qa"):
        ConversationStore(path)
    damaged = tmp_path / "damaged.sqlite3"
    damaged.write_bytes(b"not a database at all" * 100)
    with pytest.raises(DatabaseError, match="damaged.sqlite3 cannot be read or written"):
        ConversationStore(damaged)


def test_the_export_is_markdown_with_quotes_and_sources_and_document_text_stays_text(replies: list[Answer]) -> None:
    from qa.conversations import ConversationInfo, SavedConversation
    from qa.types import Citation

    evil = "<script>alert(1)</script> [click](javascript:alert(2)) *bold*"
    hostile = Answer(text=f"{evil} [1]", abstained=False, passages=(),
                     citations=(Citation(1, "evil.md", f"Evil {evil}", evil, 0, len(evil)),))
    info = ConversationInfo("id", "seeds", "Data <b>and</b> backups", "2026-01-01T00:00:00+00:00",
                            "2026-01-01T00:01:00+00:00", 4)
    turns = ((QUESTIONS[0], replies[0]), (QUESTIONS[1], replies[1]), ("How old is Roland Cloutier?", replies[2]),
             ("Evil?", hostile))
    text = conversation_markdown(SavedConversation(info, turns), file_url="http://127.0.0.1:7860/qa/file?doc=")
    assert text.startswith("# Data \\<b\\>and\\</b\\> backups\n")
    assert "## 1. Where is TikTok's US user data stored?" in text and "## 2. And where is the backup kept?" in text
    for c in replies[0].citations + replies[1].citations:
        assert f"   > “{markdown_text(c.quote)}”" in text and f"(`{c.doc_id}`, chars {c.start}-{c.end})" in text
        assert f"<http://127.0.0.1:7860/qa/file?doc={c.doc_id}>" in text
    assert "*Not in the documents.*" in text and "Related reading" in text
    assert "<script>" not in text and "\\<script\\>alert(1)\\</script\\>" in text
    assert "[click](javascript:" not in text and "\\[click\\](javascript:alert(2))" in text


# ---- in the chat -------------------------------------------------------------------------------

def login(browser: Any, url: str, user: str) -> Any:
    """A new browser context, logged in as `user` through the page's own login form."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.set_default_timeout(30_000)
    page.goto(url)
    sign_in(page, user)
    return page


def sign_in(page: Any, user: str) -> None:
    page.get_by_label("username").fill(user)
    page.get_by_label("password").fill(LOGINS[user])
    page.get_by_role("button", name="Login").click()
    page.wait_for_selector("#qa-chat")


def saved_titles(page: Any) -> list[str]:
    """The Conversations list as shown (the panel opened first)."""
    if not page.locator("#qa-conv-list").is_visible():
        page.locator("#qa-convs .label-wrap").click()
    page.wait_for_selector("#qa-conv-list")
    return [t.strip() for t in page.locator("#qa-conv-list label").all_inner_texts()]


@pytest.mark.browser
def test_conversations_survive_a_restart_export_and_stay_with_their_login(qa_server: QaServer,
                                                                          browser: Any) -> None:
    page = login(browser, qa_server.url, "ana")
    try:
        first = _ask(page, QUESTIONS[0])
        second = _ask(page, QUESTIONS[1])
        answers = [first.inner_text(), second.inner_text()]
        assert "Virginia" in answers[0] and "Singapore" in answers[1]
        assert any(t.startswith(QUESTIONS[0]) and "2 questions" in t for t in saved_titles(page))

        qa_server.restart()
        page.reload()
        sign_in(page, "ana")   # a login lasts as long as the server process
        assert page.locator(REPLIES).count() == 0
        assert any(t.startswith(QUESTIONS[0]) for t in saved_titles(page))
        page.locator("#qa-conv-list label", has_text=QUESTIONS[0]).first.click()
        page.wait_for_function("document.querySelectorAll('#qa-chat .qa-reply').length === 2")
        assert [r.inner_text() for r in page.locator(REPLIES).all()] == answers
        # The source cards work: [1] of the second answer opens its card, quote highlighted.
        page.locator(REPLIES).nth(1).locator(".qa-text a.qa-cite", has_text="[1]").click()
        page.wait_for_function("document.getElementById('qa-src-2-1').classList.contains('qa-active')")
        assert "Singapore" in page.locator("#qa-src-2-1 mark.qa-quote").inner_text()

        # A third question goes on the same conversation; then rename it and export it.
        _ask(page, "How many times has TikTok been downloaded?")
        page.fill("#qa-conv-title textarea, #qa-conv-title input", "TikTok and its data")
        page.click("#qa-conv-rename")
        page.wait_for_function("document.querySelector('#qa-conv-list').innerText.includes('TikTok and its data')")
        assert any(t.startswith("TikTok and its data") and "3 questions" in t for t in saved_titles(page))
        href = page.locator("#qa-conv-export a").get_attribute("href")
        exported = page.request.get(qa_server.url + href)
        text = exported.text()
        with page.expect_download() as download:   # what a click on the link saves
            page.click("#qa-conv-export a")
        assert download.value.suggested_filename == "TikTok-and-its-data.md"
        assert Path(download.value.path()).read_text(encoding="utf-8") == text
        assert exported.status == 200 and exported.headers["content-type"] == "text/markdown; charset=utf-8"
        assert 'filename="TikTok-and-its-data.md"' in exported.headers["content-disposition"]
        assert text.startswith("# TikTok and its data\n") and f"## 2. {QUESTIONS[1]}" in text
        assert "Singapore" in text and "Sources:" in text and "1.5 billion" in text
        quote = page.locator("#qa-src-2-1 mark.qa-quote").inner_text()
        assert markdown_text(quote) in text
    finally:
        page.close()

    other = login(browser, qa_server.url, "ben")
    try:
        assert not any("TikTok and its data" in t for t in saved_titles(other))
        stolen = other.request.get(qa_server.url + href)
        assert stolen.status == 404 and "not among your saved conversations" in stolen.text()
        _ask(other, QUESTIONS[0])
        assert len(saved_titles(other)) == 1
    finally:
        other.close()
    anonymous = browser.new_page()
    try:
        assert anonymous.request.get(qa_server.url + href).status == 401   # behind the login
    finally:
        anonymous.close()

    page = login(browser, qa_server.url, "ana")
    try:
        assert any(t.startswith("TikTok and its data") for t in saved_titles(page))
        page.locator("#qa-conv-list label", has_text="TikTok and its data").first.click()
        page.wait_for_function("document.querySelectorAll('#qa-chat .qa-reply').length === 3")
        page.click("#qa-conv-delete")
        page.wait_for_function("document.querySelectorAll('#qa-chat .qa-reply').length === 0")
        assert not any("TikTok and its data" in t for t in saved_titles(page))
        assert page.request.get(qa_server.url + href).status == 404
    finally:
        page.close()


def test_logins_and_the_old_feedback_setting_get_one_line_each(settings: Settings) -> None:
    from qa.errors import SettingsError

    assert settings.replace(logins=("ana:pw:with:colons", "ben:x")).login_pairs() == [("ana", "pw:with:colons"),
                                                                                      ("ben", "x")]
    for logins, message in ((("ana",), 'write it as "user:password"'), ((":pw",), "neither empty"),
                            (("ana:a", "ana:b"), "The login 'ana' is given more than once")):
        with pytest.raises(SettingsError, match=message):
            settings.replace(logins=logins)
    with pytest.raises(SettingsError, match="The login 'ana' is given more than once"):
        settings.replace(auth_user="ana", auth_password="x", logins=("ana:y",))
    with pytest.raises(SettingsError, match="votes are stored in the database .setting database"):
        Settings.from_mapping({"feedback_path": "feedback.jsonl"})
    shown = repr(settings.replace(logins=("ana:pw-secret",), api_key="k" * 20))
    assert "pw-secret" not in shown and "k" * 20 not in shown   # secrets stay out of logs
