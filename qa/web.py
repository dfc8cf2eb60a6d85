"""The web chat: a Gradio 6 app over one loaded index (`build_app`) and its server (`serve`).

One `Index` is loaded at start-up and shared by every session, as is the encoder inside
`qa.answer`; the queue runs `settings.concurrency` questions at once. Each session keeps its own
conversation (`Turn`s) in `gr.State`; the chat shows HTML rendered by `qa.web_html`, where all
document and user text is escaped, so the Chatbot runs with Markdown off and its sanitizer on.

Besides the page, one HTTP endpoint is public: `/ask` (question, history) -> the JSON of
`qa ask --json`. The page's own events are private to the page. Gradio's file upload route is
refused outright (the app has no upload feature, so nothing may be stored on the server).

Limits: a question of at most `settings.max_question_chars` characters; follow-ups read the
last `settings.history_turns` questions; a conversation in the page holds `MAX_TURNS` questions;
a request body holds at most `MAX_REQUEST_BYTES`.
"""

from __future__ import annotations

import errno
import json
import logging
import posixpath
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from qa.answers import answer, answer_to_json
from qa.config import Settings
from qa.errors import IndexMissingError, QAError
from qa.index import Index, build_index, load_index
from qa.types import Answer
from qa.web_html import (
    SourceText,
    Turn,
    answer_html,
    corpus_html,
    error_html,
    header_html,
    question_html,
    sources_html,
)

log = logging.getLogger(__name__)

# Shown on the first screen when they are answered from the loaded corpus (checked at start-up).
EXAMPLE_QUESTIONS = (
    "Where is TikTok's US user data stored?",
    "How many times has TikTok been downloaded?",
    "Why did FCC commissioner Brendan Carr want TikTok removed from app stores?",
)

WELCOME = (
    "<div class='qa-welcome'><h2>Ask the documents</h2>"
    "<p>Every answer quotes the exact sentences it rests on. Click a marker like <b>[1]</b> to "
    "see the quote inside its passage. When the documents do not say, the answer says so.</p></div>"
)

# A conversation in the page holds at most this many questions; then "New conversation".
MAX_TURNS = 50

_feedback_lock = threading.Lock()


def open_index(settings: Settings, log_line: Callable[[str], None] | None = None, *, update: bool = False) -> Index:
    """Load `settings.index`, building it from `settings.corpus` first when it is missing (or,
    with `update`, bringing it up to date with the corpus first: one process, one model load).

    Raises:
        IndexPathError: the index path cannot be built into.
        CorpusError: the index must be built and the corpus has no readable document.
        IndexCorruptError: the index on disk cannot be used.
    """
    if update:
        build_index(settings.corpus, settings.index, settings=settings, log=log_line)
        return load_index(settings.index)
    try:
        return load_index(settings.index)
    except IndexMissingError:
        if log_line is not None:
            log_line(f"No index at {settings.index}: building it from {settings.corpus} (first run only).")
        build_index(settings.corpus, settings.index, settings=settings, log=log_line)
        return load_index(settings.index)


def static_text(name: str) -> str:
    """A file of the page's style or script, shipped in qa/static/."""
    return resources.files("qa").joinpath("static", name).read_text(encoding="utf-8")


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


FILTER_CHARS = 200   # the filter boxes take at most this many characters


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


def chat_messages(turns: Sequence[Turn]) -> list[dict[str, str]]:
    """The conversation as Chatbot messages (escaped HTML, markers linked to their sources)."""
    messages = []
    for k, turn in enumerate(turns, 1):
        messages.append({"role": "user", "content": question_html(turn.question)})
        messages.append({"role": "assistant", "content": answer_html(k, turn.reply)})
    return messages


def record_feedback(path: Path, turn: Turn, vote: str) -> dict[str, Any]:
    """Append one JSON line for a vote on an answer; returns the record written."""
    reply = turn.reply
    record = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "vote": vote,
        "question": turn.question,
        "answer": reply.text,
        "abstained": reply.abstained,
        "confidence": round(reply.confidence, 4),
        "citations": [asdict(c) for c in reply.citations],
    }
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with _feedback_lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line)
    return record


def build_app(settings: Settings, index: Index | None = None) -> gr.Blocks:
    """The chat page over `index` (default: `settings.index`, built when missing).

    Style and theme are `launch()` options in Gradio 6; `serve` passes `CSS` and `theme()`.
    """
    loaded = index if index is not None else open_index(settings)
    source_text = SourceText(loaded)
    examples = working_examples(loaded, settings)

    def ask(question: str, history: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """Answer a question from the documents, with verbatim cited quotes.

        Args:
            question: the question.
            history: earlier messages of the conversation, as {"role", "content"} dicts.

        Returns:
            answer (text with [n] markers), abstained, confidence, citations (n, doc_id, title,
            quote, start, end, date, answer_start, answer_end), passages, latency_ms.
        """
        reply, problem = answer_or_problem(question, history, loaded, settings)
        if reply is None:
            raise gr.Error(problem, print_exception=False)
        return answer_to_json(reply)

    def respond(question: str, turns: list[Turn], docs: str = "", since: str = "",
                until: str = "") -> Iterator[tuple[Any, ...]]:
        question = (question or "").strip()
        if not question:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        pending = [*chat_messages(turns), {"role": "user", "content": question_html(question)}]
        # The box is emptied once, when the question is taken. The later yields leave it alone:
        # the final output is applied again when the event completes, and clearing the box then
        # would wipe a next question the user has already begun to type.
        yield pending, "", gr.skip(), gr.skip()
        reply, problem = next_reply(question, turns, loaded, settings, chat_filters(docs, since, until))
        if reply is None:
            yield ([*pending, {"role": "assistant", "content": error_html(problem)}], gr.skip(), gr.skip(),
                   turns)
            return
        turns = [*turns, Turn(question, reply)]
        yield chat_messages(turns), gr.skip(), sources_html(turns, loaded, source_text), turns

    def respond_example(turns: list[Turn], docs: str, since: str, until: str,
                        evt: gr.SelectData) -> Iterator[tuple[Any, ...]]:
        value = evt.value
        text = value.get("text", "") if isinstance(value, dict) else str(value or "")
        yield from respond(text, turns, docs, since, until)

    def vote(turns: list[Turn], evt: gr.LikeData) -> None:
        index_no = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        k = int(index_no) // 2
        if not 0 <= k < len(turns):
            return
        liked = evt.liked
        choice = ("up" if liked else "down") if isinstance(liked, bool) else str(liked or "cleared")
        record_feedback(settings.feedback_path, turns[k], choice)

    def new_conversation() -> tuple[Any, ...]:
        return [], "", corpus_html(loaded), []

    with gr.Blocks(title="qa · cited answers", analytics_enabled=False) as app:
        turns_state = gr.State([])
        with gr.Row(elem_id="qa-top", equal_height=True):
            gr.HTML(header_html(loaded), js_on_load=None, scale=10)
            new = gr.Button("New conversation", variant="secondary", size="md", scale=0,
                            min_width=170, elem_id="qa-new")
        with gr.Row(equal_height=False, elem_id="qa-main"):
            with gr.Column(scale=3, min_width=420, elem_id="qa-chat-col"):
                chatbot = gr.Chatbot(
                    elem_id="qa-chat",
                    show_label=False,
                    height="calc(100vh - 250px)",
                    min_height=420,
                    layout="bubble",
                    render_markdown=False,   # we send escaped HTML, never Markdown from documents
                    sanitize_html=True,
                    allow_tags=False,
                    latex_delimiters=[],
                    feedback_options=("Like", "Dislike"),
                    buttons=[],  # Gradio's copy buttons would copy our HTML, not the text
                    placeholder=WELCOME,
                    examples=[{"text": q} for q in examples] or None,
                    autoscroll=True,
                )
                with gr.Row(elem_id="qa-ask-row"):
                    box = gr.Textbox(
                        show_label=False,
                        placeholder="Ask a question about the documents…",
                        lines=1,
                        max_lines=4,
                        scale=8,
                        autofocus=True,
                        submit_btn=False,
                        max_length=settings.max_question_chars,  # the page stops typing at the limit
                        elem_id="qa-question",
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=90, elem_id="qa-ask")
                with gr.Accordion("Only some documents", open=False, elem_id="qa-filters"), gr.Row():
                    docs_box = gr.Textbox(label="Files (globs, comma-separated)",
                                          placeholder="reports/*.pdf, *2024*", max_length=FILTER_CHARS, scale=3,
                                          elem_id="qa-filter-docs")
                    since_box = gr.Textbox(label="Dated from", placeholder="YYYY-MM-DD", max_length=10, scale=1,
                                           elem_id="qa-filter-since")
                    until_box = gr.Textbox(label="to", placeholder="YYYY-MM-DD", max_length=10, scale=1,
                                           elem_id="qa-filter-until")
            with gr.Column(scale=2, min_width=340, elem_id="qa-sources-col"):
                sources = gr.HTML(corpus_html(loaded), elem_id="qa-sources", js_on_load=static_text("cite.js"),
                                  padding=False)

        outputs = [chatbot, box, sources, turns_state]
        # A question sent while the last one is still finishing runs after it ("always_last"),
        # rather than being dropped as Gradio's default ("once") would.
        filter_boxes = [docs_box, since_box, until_box]
        gr.on([box.submit, send.click], respond, inputs=[box, turns_state, *filter_boxes], outputs=outputs,
              api_visibility="private", show_progress="minimal", show_progress_on=[chatbot],
              trigger_mode="always_last")
        chatbot.example_select(respond_example, inputs=[turns_state, *filter_boxes], outputs=outputs,
                               api_visibility="private", show_progress="minimal",
                               show_progress_on=[chatbot])
        chatbot.like(vote, inputs=[turns_state], outputs=None, api_visibility="private", queue=False)
        gr.on([new.click, chatbot.clear], new_conversation, outputs=outputs, api_visibility="private",
              queue=False)
        gr.api(ask, api_name="ask")
    return app


def serve(settings: Settings, *, block: bool = True, index: Index | None = None, update: bool = False,
          log_line: Callable[[str], None] | None = None) -> gr.Blocks:
    """Start the chat on `settings.host:settings.port` (127.0.0.1:7860 by default).

    Builds the index first when it is missing. Serves the page and its API only: no file
    folder is allowed, the corpus, index and feedback file are blocked outright, and Gradio's
    upload route is refused.

    Args:
        settings: everything, including host, port, concurrency, auth and feedback_path.
        block: keep serving until interrupted; False returns once the server is up.
        index: an index already loaded (default: `settings.index`).
        update: first bring `settings.index` up to date with `settings.corpus` (after the port
            is checked, so a busy port is told before any indexing).
        log_line: where start-up lines go (None: nowhere; app.py and `qa serve` pass `print`).

    Returns:
        The running app (call `.close()` to stop it when `block` is False).

    Raises:
        QAError: the port is in use or cannot be bound, or the index cannot be opened.
    """
    say = log_line or (lambda _line: None)
    check_port(settings.host, settings.port)
    loaded = index if index is not None else open_index(settings, log_line, update=update)
    say(f"Loading the chat over {loaded.path} ({len(loaded.documents)} documents)...")
    app = build_app(settings, loaded)
    app.queue(default_concurrency_limit=settings.concurrency, max_size=256)
    auth = (settings.auth_user, settings.auth_password) if settings.auth_user and settings.auth_password \
        else None
    blocked = [str(Path(p).resolve()) for p in (settings.corpus, loaded.path, settings.feedback_path)]
    try:
        app.launch(
            server_name=settings.host,
            server_port=settings.port,
            auth=auth,
            prevent_thread_lock=not block,
            share=False,
            show_error=False,
            footer_links=["api"],
            run_history=False,
            enable_monitoring=False,
            mcp_server=False,
            ssr_mode=False,
            pwa=False,
            allowed_paths=None,
            blocked_paths=blocked,
            max_file_size="1mb",
            theme=theme(),
            css=static_text("chat.css"),
            app_kwargs={"middleware": [Middleware(RequestGuard)]},
            quiet=log_line is None,
        )
    except OSError as exc:
        raise QAError(f"Cannot serve on {settings.host}:{settings.port} ({exc}). Pass another --port, "
                      "or stop the program using it.") from exc
    return app


def check_port(host: str, port: int) -> None:
    """Fail early, in one line, when `host:port` cannot be bound (in use, or not an address here).

    Raises:
        QAError: the port is in use or the address is not this machine's.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise QAError(f"Cannot serve on {host}:{port}: the host is not an address of this machine ({exc}). "
                      "Pass --host 127.0.0.1.") from exc
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            reason = "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise QAError(f"Cannot serve on {host}:{port}: {reason}. Pass another --port, or stop the "
                          "program using it.") from exc


class RequestGuard:
    """ASGI middleware: refuses Gradio's upload route and request bodies over `MAX_REQUEST_BYTES`.

    Gradio serves `/gradio_api/upload` for every app, with or without a file component, and
    keeps what it receives; this app has no upload feature, so nothing may be stored on the
    server (403). A request body past the limit is refused (413) before Gradio parses it, so
    one request's work is bounded however large a history a client sends.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = posixpath.normpath("/" + str(scope.get("path", ""))).lower()
        if "/gradio_api/upload" in path:
            await _plain(send, 403, "Uploads are disabled: this app has no upload feature.")
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_REQUEST_BYTES):
            if declared.isdigit() and int(declared) <= DRAIN_BYTES:
                # Read (and drop) what the client is still sending, so it can read the 413
                # instead of meeting a reset connection; larger bodies are not worth reading.
                while (message := await receive())["type"] == "http.request" and message.get("more_body"):
                    pass
            await _plain(send, 413, f"Request too large: at most {MAX_REQUEST_BYTES // 1024} KiB "
                                    "(a question and the recent history fit easily).")
            return
        if declared is None and scope.get("method") in ("POST", "PUT", "PATCH"):
            # A body sent without a length (chunked): read it here, up to the limit, then replay it.
            chunks, size, more = [], 0, True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                more = bool(message.get("more_body"))
                if size > MAX_REQUEST_BYTES:
                    await _plain(send, 413, f"Request too large: at most {MAX_REQUEST_BYTES // 1024} KiB.")
                    return
            body = b"".join(chunks)
            replayed = False

            async def replay() -> Any:
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)


# A request body larger than this is refused: a question of 2,000 characters and a long
# conversation are a few KiB; a 10,000-turn history is megabytes of JSON to parse for nothing.
MAX_REQUEST_BYTES = 256 * 1024
# An oversized body up to this size is read and dropped before the 413 is sent.
DRAIN_BYTES = 8 * 1024 * 1024


async def _plain(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def theme() -> gr.themes.Base:
    """The page's theme: Gradio's Soft in indigo and slate, on system fonts only."""
    return gr.themes.Soft(
        primary_hue="indigo",
        neutral_hue="slate",
        # The app runs offline: no font is fetched from a font service.
        font=["Inter", "ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto",
              "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    )
