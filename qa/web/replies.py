"""What the chat answers with: the next reply of a conversation (or the one line shown instead),
the filter boxes as `qa.answer` arguments, the sources panel, and whether this server may change
its documents. Plain functions, no Gradio events: qa/web/handlers.py calls them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import gradio as gr

from qa.answers import answer
from qa.config import Settings, is_loopback
from qa.conversations import MAX_TURNS
from qa.errors import IndexChangedError, QAError
from qa.index import Index
from qa.index.text import SourceText
from qa.types import Answer
from qa.web.html import Turn, sources_html

log = logging.getLogger(__name__)

# Shown on the first screen when they are answered from the loaded corpus (checked at start-up).
EXAMPLE_QUESTIONS = (
    "Where is TikTok's US user data stored?",
    "How many times has TikTok been downloaded?",
    "Why did FCC commissioner Brendan Carr want TikTok removed from app stores?",
)

FILTER_CHARS = 200   # the filter boxes take at most this many characters


def working_examples(index: Index, settings: Settings,
                     questions: Sequence[str] = EXAMPLE_QUESTIONS) -> list[str]:
    """The example questions the index answers (not abstains on). Also warms the model up."""
    found = []
    for question in questions:
        try:
            if not answer(question, [], index=index, settings=settings).abstained:
                found.append(question)
        except QAError:
            continue
    return found


def history_messages(turns: Sequence[Turn]) -> list[dict[str, str]]:
    """The conversation as plain `{"role", "content"}` messages, the form `qa.answer` reads."""
    messages = []
    for turn in turns:
        messages.append({"role": "user", "content": turn.question})
        messages.append({"role": "assistant", "content": turn.reply.text})
    return messages


def next_reply(question: str, turns: Sequence[Turn], index: Index, settings: Settings,
               filters: dict[str, str | None] | None = None) -> tuple[Answer | None, str]:
    """The answer to the next question of a conversation, or None and the one line to show instead
    (the conversation is full, the question or a filter cannot be used, or a bug, which the log
    records). `filters`: `docs`, `since`, `until` as `qa.answer` takes them."""
    if len(turns) >= MAX_TURNS:
        return None, (f"This conversation holds {MAX_TURNS} questions, the most one conversation keeps. "
                      "Click “New conversation” to go on.")
    return answer_or_problem(question, history_messages(turns[-settings.history_turns:]), index, settings,
                             filters)


def chat_filters(docs: str | None, since: str | None, until: str | None) -> dict[str, str | None]:
    """The filter boxes' values as `qa.answer` arguments (blank boxes narrow nothing; at most
    200 characters each)."""
    def value(text: str | None) -> str | None:
        text = (text or "").strip()[:FILTER_CHARS]
        return text or None

    return {"docs": value(docs), "since": value(since), "until": value(until)}


def answer_or_problem(question: str, history: Any, index: Index, settings: Settings,
                      filters: dict[str, str | None] | None = None) -> tuple[Answer | None, str]:
    """`answer(...)`, or None and the one line a user sees instead: the error's message for bad
    input, a generic line for a bug (whose traceback goes to the server log)."""
    try:
        where = filters or {}
        return answer(question, history, index=index, settings=settings, docs=where.get("docs"),
                      since=where.get("since"), until=where.get("until")), ""
    except QAError as exc:
        return None, str(exc)
    except Exception:
        log.exception("Unexpected error while answering")
        return None, "Internal error while answering; the server log has the details."


def panel(turns: Sequence[Turn], index: Index, source_text: SourceText, collection: str | None = None) -> Any:
    """The sources panel for `turns`, or no change to it when the index went stale while the
    panel read it (the answer was checked; the panel's text may be what replaced a map)."""
    try:
        with index.files.reading():
            return sources_html(turns, index, source_text, collection)
    except IndexChangedError:
        return gr.skip()


def uploads_allowed(settings: Settings) -> tuple[bool, str]:
    """Whether the chat may add and remove documents, and if not, the line that says why.

    On only when `settings.uploads` is on and the chat is either served on a loopback address
    (only this machine reaches it) or behind a login.
    """
    if not settings.uploads:
        return False, "Adding and removing documents is turned off here (setting uploads)."
    if settings.login_pairs():
        return True, ""
    if is_loopback(settings.host):
        return True, ""
    return False, (f"Adding and removing documents is off: this chat is served on {settings.host} "
                   "without a login. Serve it on 127.0.0.1, or set auth_user and auth_password (or logins).")
