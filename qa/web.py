"""The web chat: a Gradio 6 app over one loaded index (`build_app`) and its server (`serve`).

One `Index` is loaded at start-up and shared by every session, as is the encoder inside
`qa.answer`; the queue runs `settings.concurrency` questions at once. Each session keeps its own
conversation (`Turn`s) in `gr.State`; the chat shows HTML rendered by `qa.web_html`, where all
document and user text is escaped, so the Chatbot runs with Markdown off and its sanitizer on.

Documents can be added (uploaded) and removed in the page (`qa.manage`): each change updates
the index incrementally and then replaces the index the chat answers from (`LiveIndex`) in one
step, so a question is answered wholly from the old index or wholly from the new one. Uploads
and removals are on only when the chat is served on this machine's loopback address or behind
a login (`uploads_allowed`); otherwise Gradio's upload route is refused outright.

Besides the page, two HTTP endpoints are public: `/ask` (question, history) -> the JSON of
`qa ask --json`, and `/qa/file?doc=DOC_ID`, a document's original file, looked up by the doc_id
the index has (never by a path), behind the same login as the page. The page's own events are
private to the page.

Limits: a question of at most `settings.max_question_chars` characters; follow-ups read the
last `settings.history_turns` questions; a conversation in the page holds `MAX_TURNS` questions;
a request body holds at most `MAX_REQUEST_BYTES`, an upload at most `MAX_FILES_PER_ADD` files of
`settings.max_file_mb` each.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import inspect
import ipaddress
import json
import logging
import posixpath
import queue
import re
import socket
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import gradio as gr
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from qa.answers import answer, answer_to_json
from qa.config import Settings
from qa.errors import IndexChangedError, IndexMissingError, QAError
from qa.formats import serving, upload_label, upload_types
from qa.index import Index, build_index, load_index
from qa.index.files import folder_state
from qa.index.store import MEMORY_MB
from qa.manage import (
    MAX_FILES_PER_ADD,
    Change,
    add_files,
    document_rows,
    documents_table,
    inside,
    remove_document,
)
from qa.types import Answer
from qa.web_html import (
    SourceText,
    Turn,
    answer_html,
    corpus_html,
    error_html,
    escape,
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
        return load_index(settings.index, memory_mb=settings.index_memory_mb)
    try:
        return load_index(settings.index, memory_mb=settings.index_memory_mb)
    except IndexMissingError:
        if log_line is not None:
            log_line(f"No index at {settings.index}: building it from {settings.corpus} (first run only).")
        build_index(settings.corpus, settings.index, settings=settings, log=log_line)
        return load_index(settings.index, memory_mb=settings.index_memory_mb)


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


_T = TypeVar("_T")


class LiveIndex:
    """The index the chat answers from. A change of documents replaces it whole: each question
    takes the pair once, at its start, and keeps it to its end (old or new, never a mix).

    Anything else that changes its files on disk (a backup restore, an rsync, a second tool, a
    `qa index` in another process) is noticed by `get()`, at every request (one `stat` per file):
    the folder is read again when it is a whole, valid index, and until then every question is
    refused in one line. The old index is never read through a map its files may have left
    (qa/index/files.py)."""

    def __init__(self, index: Index, memory_mb: float = MEMORY_MB) -> None:
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._pair = (index, SourceText(index))
        self._views: dict[str, Any] = {}
        self._memory_mb = memory_mb
        self._refused: tuple[Any, str] | None = None   # the folder's state at the last failed reload, and why

    def get(self) -> tuple[Index, SourceText]:
        """The index to answer from, read again first if its files changed on disk.

        Raises:
            IndexChangedError: they changed, and the folder is not a whole index now.
        """
        pair = self._pair
        change = pair[0].files.changed()
        return pair if change is None else self._reload(pair[0], change)

    def shown(self) -> tuple[Index, SourceText]:
        """The index last answered from, or the one read again if that works: for what a page
        shows (header, documents list), which a damaged folder should not blank out."""
        try:
            return self.get()
        except QAError:
            return self._pair

    def swap(self, index: Index) -> None:
        with self._lock:
            self._pair = (index, SourceText(index))
            self._views = {}

    def _reload(self, old: Index, change: str) -> tuple[Index, SourceText]:
        with self._reload_lock:
            if self._pair[0] is not old and self._pair[0].files.changed() is None:
                return self._pair   # another request has read it again meanwhile
            state = folder_state(old.path)
            if self._refused is not None and self._refused[0] == state:
                raise IndexChangedError(self._refused[1])   # nothing changed since: not read again
            try:
                new = load_index(old.path, memory_mb=self._memory_mb)
            except QAError as exc:
                message = f"The index at {old.path} changed on disk ({change}) and cannot be used as it is now: {exc}"
                self._refused = (state, message)
                log.warning("%s", message)
                raise IndexChangedError(message) from None
            self._refused = None
            log.warning("The index at %s changed on disk (%s); it was read again and answers from its new files.",
                        old.path, change)
            self.swap(new)
            return self._pair

    def view(self, name: str, make: Callable[[Index], _T]) -> _T:
        """`make(index)` for the live index, computed once per index (the documents list and the
        first screen read every document row: seconds at 10^6 documents, so not per page load)."""
        with self._lock:
            index, views = self._pair[0], self._views
            if name not in views:
                views[name] = make(index)
            return views[name]  # type: ignore[no-any-return]


def panel(turns: Sequence[Turn], index: Index, source_text: SourceText) -> Any:
    """The sources panel for `turns`, or no change to it when the index went stale while the
    panel read it (the answer was checked; the panel's text may be what replaced a map)."""
    try:
        with index.files.reading():
            return sources_html(turns, index, source_text)
    except IndexChangedError:
        return gr.skip()


def uploads_allowed(settings: Settings) -> tuple[bool, str]:
    """Whether the chat may add and remove documents, and if not, the line that says why.

    On only when `settings.uploads` is on and the chat is either served on a loopback address
    (only this machine reaches it) or behind a login.
    """
    if not settings.uploads:
        return False, "Adding and removing documents is turned off here (setting uploads)."
    if settings.auth_user and settings.auth_password:
        return True, ""
    if _is_loopback(settings.host):
        return True, ""
    return False, (f"Adding and removing documents is off: this chat is served on {settings.host} "
                   "without a login. Serve it on 127.0.0.1, or set auth_user and auth_password.")


def _is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


UPLOAD_TYPES = upload_types()
DOC_HEADERS = ["Title", "File", "Date", "Pages", "Chunks", "Indexed"]
STATUS_LINES = 8   # lines of an update's progress kept in view

_Outcome = tuple[_T | None, BaseException | None]


def _streamed(work: Callable[[Callable[[str], None]], _T]) -> Generator[str, None, _Outcome[_T]]:
    """Run `work(say)` in a thread, yielding each line it says as it says it; the generator's
    return value is `(result, error)`."""
    lines: queue.Queue[str | None] = queue.Queue()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = work(lines.put)
        except BaseException as exc:  # handed to the caller, who reports it
            outcome["error"] = exc
        finally:
            lines.put(None)

    threading.Thread(target=target, name="qa-change", daemon=True).start()
    while (line := lines.get()) is not None:
        yield line
    return outcome.get("result"), outcome.get("error")


def status_html(lines: Sequence[str], final: str = "", problem: bool = False) -> str:
    """The documents panel's status: the update's last lines, then its outcome."""
    shown = "".join(f"<li>{escape(line)}</li>" for line in lines[-STATUS_LINES:])
    end = (f'<p class="qa-docs-outcome{" qa-docs-problem" if problem else ""}">{escape(final)}</p>'
           if final else "")
    return f'<div class="qa-docs-status"><ul>{shown}</ul>{end}</div>' if shown or end else ""


def docs_label(index: Index) -> str:
    return f"Documents ({len(index.documents):,})"


def build_app(settings: Settings, index: Index | None = None, live: LiveIndex | None = None) -> gr.Blocks:
    """The chat page over `index` (default: `settings.index`, built when missing).

    `live` (made here when left out) holds the index the page answers from; `serve` passes its
    own so that the original-file route reads the same one.

    Style and theme are `launch()` options in Gradio 6; `serve` passes `CSS` and `theme()`.
    """
    if live is None:
        live = LiveIndex(index if index is not None else open_index(settings), settings.index_memory_mb)
    loaded, _ = live.get()
    # The documents list reads every document row (3.3 s at 251,251 documents): made in the
    # background from start-up, so that neither start-up nor most first pages wait for it.
    threading.Thread(target=live.view, args=("documents", document_rows), name="qa-documents",
                     daemon=True).start()
    examples = working_examples(loaded, settings)
    can_change, why_not = uploads_allowed(settings)

    def ask(question: str, history: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """Answer a question from the documents, with verbatim cited quotes.

        Args:
            question: the question.
            history: earlier messages of the conversation, as {"role", "content"} dicts.

        Returns:
            answer (text with [n] markers), abstained, confidence, citations (n, doc_id, title,
            quote, start, end, date, page, answer_start, answer_end), passages, latency_ms.
        """
        try:
            current = live.get()[0]
        except QAError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        reply, problem = answer_or_problem(question, history, current, settings)
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
        try:
            current, source_text = live.get()   # this question's index, from start to end
        except QAError as exc:
            yield [*pending, {"role": "assistant", "content": error_html(str(exc))}], gr.skip(), gr.skip(), turns
            return
        reply, problem = next_reply(question, turns, current, settings, chat_filters(docs, since, until))
        if reply is None:
            yield ([*pending, {"role": "assistant", "content": error_html(problem)}], gr.skip(), gr.skip(),
                   turns)
            return
        turns = [*turns, Turn(question, reply)]
        yield chat_messages(turns), gr.skip(), panel(turns, current, source_text), turns

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
        return [], "", live.view("corpus", corpus_html), []

    def doc_rows(needle: str = "") -> Any:
        rows, matched = documents_table(live.view("documents", document_rows), (needle or "")[:FILTER_CHARS])
        label = (f"{matched:,} documents" if len(rows) == matched
                 else f"{len(rows):,} of {matched:,} documents shown, newest first; type in Find to narrow")
        return gr.update(value=rows, label=label)

    def change(work: Callable[[Callable[[str], None]], Change], needle: str,
               turns: list[Turn]) -> Iterator[tuple[Any, ...]]:
        """Run a change of documents, showing its lines; then swap the index in and refresh."""
        lines: list[str] = []
        outcome: tuple[Change | None, BaseException | None] = (None, None)
        steps = _streamed(work)
        try:
            while True:
                lines.append(next(steps))
                yield status_html(lines), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        except StopIteration as stop:
            outcome = stop.value
        done, error = outcome
        if error is not None:
            if isinstance(error, QAError):
                message = str(error)
            else:
                log.error("Unexpected error while changing the documents", exc_info=error)
                message = "Internal error while changing the documents; the server log has the details."
            yield (status_html(lines, message + " Nothing else changed.", problem=True), gr.skip(), gr.skip(),
                   gr.skip(), gr.skip())
            return
        assert done is not None
        if done.index is not None:
            live.swap(done.index)
        current, source_text = live.shown()
        yield (status_html(lines, done.summary(), problem=bool(done.refused) and not done.added),
               doc_rows(needle), header_html(current), gr.update(label=docs_label(current)),
               panel(turns, current, source_text))

    def upload(files: list[str] | None, needle: str, turns: list[Turn]) -> Iterator[tuple[Any, ...]]:
        paths = [Path(str(f)) for f in files or []]
        if not paths:
            yield (gr.skip(),) * 6
            return
        try:
            for step in change(lambda say: add_files([(p, p.name) for p in paths], settings=settings, log=say),
                               needle, turns):
                yield (*step, gr.skip())
        finally:
            for p in paths:   # Gradio's copies of the uploads: the corpus has its own now
                p.unlink(missing_ok=True)
        yield (*(gr.skip(),) * 5, None)

    def pick(evt: gr.SelectData) -> tuple[Any, ...]:
        row = evt.row_value or []
        doc_id = str(row[1]) if len(row) > 1 else ""
        if doc_id not in live.shown()[0].documents:
            return None, gr.update(value="Remove the selected document", interactive=False)
        return doc_id, gr.update(value=f"Remove {doc_id}", interactive=True)

    def remove(doc_id: str | None, needle: str, turns: list[Turn]) -> Iterator[tuple[Any, ...]]:
        if not doc_id:
            yield (gr.skip(),) * 7
            return
        for step in change(lambda say: remove_document(doc_id, settings=settings, log=say), needle, turns):
            yield (*step, gr.skip(), gr.skip())
        yield (*(gr.skip(),) * 5, None, gr.update(value="Remove the selected document", interactive=False))

    with gr.Blocks(title="qa · cited answers", analytics_enabled=False) as app:
        turns_state = gr.State([])
        with gr.Row(elem_id="qa-top", equal_height=True):
            header = gr.HTML(header_html(loaded), js_on_load=None, scale=10)
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
                with gr.Accordion(docs_label(loaded), open=False, elem_id="qa-docs") as docs_panel:
                    if can_change:
                        uploader = gr.File(
                            label=(f"Add files: {upload_label()} (at most {settings.max_file_mb:g} MB "
                                   f"each, {MAX_FILES_PER_ADD} at a time)"),
                            file_count="multiple", file_types=UPLOAD_TYPES, type="filepath", height=120,
                            elem_id="qa-upload")
                    else:
                        gr.HTML(f'<p class="qa-note">{escape(why_not)}</p>', elem_id="qa-upload-off")
                    status = gr.HTML("", elem_id="qa-docs-status", padding=False)
                    find = gr.Textbox(label="Find", placeholder="a file name or title", max_length=FILTER_CHARS,
                                      elem_id="qa-docs-find")
                    # Filled when the page loads (see `refresh`), from rows made once per index.
                    table = gr.Dataframe(value=[], label="Documents", headers=DOC_HEADERS,
                                         datatype="str", interactive=False, wrap=True, max_height=360,
                                         column_widths=["29%", "25%", "13%", "9%", "10%", "14%"],
                                         elem_id="qa-docs-table")
                    chosen = gr.State(None)
                    if can_change:
                        remover = gr.Button("Remove the selected document", variant="stop", size="sm",
                                            interactive=False, elem_id="qa-remove")
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
        def refresh(needle: str) -> tuple[Any, ...]:
            current = live.shown()[0]
            return (doc_rows(needle), header_html(current), gr.update(label=docs_label(current)),
                    live.view("corpus", corpus_html))

        # A page opened after a change shows the documents as they are now.
        app.load(refresh, inputs=[find], outputs=[table, header, docs_panel, sources], api_visibility="private",
                 queue=False)
        find.change(doc_rows, inputs=[find], outputs=[table], api_visibility="private", queue=False,
                    trigger_mode="always_last")
        changed = [status, table, header, docs_panel, sources]
        if can_change:
            # One change of documents at a time, queued in the order asked (one concurrency id).
            uploader.upload(upload, inputs=[uploader, find, turns_state], outputs=[*changed, uploader],
                            api_visibility="private", concurrency_limit=1, concurrency_id="qa-change",
                            show_progress="minimal", show_progress_on=[status])
            table.select(pick, inputs=None, outputs=[chosen, remover], api_visibility="private", queue=False)
            remover.click(remove, inputs=[chosen, find, turns_state], outputs=[*changed, chosen, remover],
                          api_visibility="private", concurrency_limit=1, concurrency_id="qa-change",
                          show_progress="minimal", show_progress_on=[status])
        gr.api(ask, api_name="ask")
    return app


def serve(settings: Settings, *, block: bool = True, index: Index | None = None, update: bool = False,
          log_line: Callable[[str], None] | None = None) -> gr.Blocks:
    """Start the chat on `settings.host:settings.port` (127.0.0.1:7860 by default).

    Builds the index first when it is missing. Serves the page, its API and the original files
    of indexed documents by doc_id (`/qa/file`): no file folder is allowed, and the corpus,
    index and feedback file are blocked outright from Gradio's file route. Gradio's upload route
    takes files only when `uploads_allowed(settings)`; otherwise it is refused.

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
    live = LiveIndex(loaded, settings.index_memory_mb)
    app = build_app(settings, live=live)
    can_change, why_not = uploads_allowed(settings)
    if not can_change:
        say(why_not)
    upload_bytes = MAX_FILES_PER_ADD * int(settings.max_file_mb * 1024 * 1024) + 1024 * 1024
    app.queue(default_concurrency_limit=settings.concurrency, max_size=256)
    auth = (settings.auth_user, settings.auth_password) if settings.auth_user and settings.auth_password \
        else None
    blocked = [str(Path(p).resolve()) for p in (settings.corpus, loaded.path, settings.feedback_path)]
    try:
        app.launch(
            server_name=settings.host,
            server_port=settings.port,
            auth=auth,
            prevent_thread_lock=True,
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
            max_file_size=int(settings.max_file_mb * 1024 * 1024) if can_change else 1,
            theme=theme(),
            css=static_text("chat.css"),
            app_kwargs={"middleware": [Middleware(RequestGuard, uploads=can_change, upload_bytes=upload_bytes,
                                                  check=functools.partial(check_event_body, app.fns))]},
            quiet=log_line is None,
        )
    except OSError as exc:
        raise QAError(f"Cannot serve on {settings.host}:{settings.port} ({exc}). Pass another --port, "
                      "or stop the program using it.") from exc
    try:
        add_file_route(app, live)
    except BaseException:
        app.close()
        raise
    if block:
        app.block_thread()
    return app


def add_file_route(app: gr.Blocks, live: LiveIndex) -> None:
    """Serve `GET /qa/file?doc=DOC_ID`: the original file of a document of the live index,
    behind Gradio's own login check (the same one as the page's).

    Raises:
        QAError: Gradio's login check cannot be found (a Gradio version qa does not know); the
            route is not served without it.
    """
    server = app.server_app
    # The page's own config route carries Gradio's login check; the file route takes the same.
    check = next((d for r in server.routes if getattr(r, "path", None) == "/config"
                  for d in getattr(r, "dependencies", ()) if getattr(d.dependency, "__name__", "") == "login_check"),
                 None)
    if check is None:
        raise QAError("Gradio's login check was not found on its /config route, so original files "
                      f"cannot be served behind the login (gradio {gr.__version__}).")

    def original(doc: str = "") -> Response:
        try:
            index = live.get()[0]
        except QAError as exc:
            return Response(f"{exc}\n", status_code=503, media_type="text/plain; charset=utf-8",
                            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})
        return original_file(index, doc)

    server.add_api_route("/qa/file", original, methods=["GET"], dependencies=[check], include_in_schema=False)


# A format a browser renders as a page is served in a sandbox (no script runs, no request
# leaves, no cookie is read); qa.formats says which formats, and each suffix's media type.
_SANDBOX = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def original_file(index: Index, doc_id: str) -> Response:
    """The HTTP response for a document's original file: found by `doc_id` in `index`, read from
    inside its corpus, and sent only while its sha256 is the one indexed."""
    def refuse(status: int, text: str) -> Response:
        return Response(text + "\n", status_code=status, media_type="text/plain; charset=utf-8",
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})

    if not doc_id or doc_id not in index.documents:
        return refuse(404, f"No document {doc_id[:200]!r} in the index.")
    info = index.documents[doc_id]
    try:
        path = inside(Path(index.manifest.corpus), doc_id)
        raw = path.read_bytes()
    except QAError as exc:
        return refuse(404, str(exc))
    except OSError as exc:
        return refuse(404, f"{doc_id} cannot be read from the corpus ({exc.strerror}); run `qa index`.")
    if hashlib.sha256(raw).hexdigest() != info.sha256:
        return refuse(409, f"{doc_id} changed since it was indexed; run `qa index` to bring the index up to date.")
    served = serving(doc_id)
    disposition, policy = "inline" if served.shown else "attachment", _SANDBOX if served.sandboxed else None
    headers = {
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(Path(doc_id).name)}",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    if policy:
        headers["Content-Security-Policy"] = policy
    return Response(raw, media_type=served.media_type, headers=headers)


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
    """ASGI middleware: refuses Gradio's upload route when uploads are off, request bodies over
    `MAX_REQUEST_BYTES` (uploads: over `upload_bytes`), and malformed API bodies.

    Gradio serves `/gradio_api/upload` for every app, with or without a file component, and
    keeps what it receives; when the chat may not add documents, nothing may be stored on the
    server (403). A request body past its limit is refused (413) before Gradio parses it, so
    one request's work is bounded however large a history a client sends. The body of an API
    call (`/gradio_api/call/ask`, `run/`, `api/`, `queue/join`) is read here and handed to
    `check` first: Gradio takes `{"data": []}` into its queue, then fails deep inside with a
    traceback in the log and `{"error": null}` for the client; here it is a 4xx with one line.
    """

    def __init__(self, app: ASGIApp, uploads: bool = False, upload_bytes: int = 0,
                 check: Callable[[str, str | None, bytes], tuple[int, str] | None] | None = None) -> None:
        self.app = app
        self.uploads = uploads
        self.upload_bytes = upload_bytes
        self.check = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # normpath keeps a leading "//" (POSIX leaves its meaning open): strip first.
        raw_path = posixpath.normpath("/" + str(scope.get("path", "")).lstrip("/"))
        path = raw_path.lower()
        limit, why = MAX_REQUEST_BYTES, "(a question and the recent history fit easily)."
        if "/gradio_api/upload" in path:
            if not self.uploads:
                await _plain(send, 403, "Uploads are off: this chat does not add documents here (it is served "
                                        "beyond 127.0.0.1 without a login, or the setting uploads is off).")
                return
            limit, why = self.upload_bytes, "(uploads: the limits are shown beside the upload control)."
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            if declared.isdigit() and int(declared) <= DRAIN_BYTES:
                # Read (and drop) what the client is still sending, so it can read the 413
                # instead of meeting a reset connection; larger bodies are not worth reading.
                while (message := await receive())["type"] == "http.request" and message.get("more_body"):
                    pass
            await _plain(send, 413, f"Request too large: at most {limit // 1024} KiB {why}")
            return
        event = _EVENT_ROUTE.match(raw_path) if scope.get("method") == "POST" else None
        if (declared is None and scope.get("method") in ("POST", "PUT", "PATCH")) or event:
            # A body sent without a length (chunked), or an API call's: read here, up to the limit,
            # checked, then replayed.
            chunks, size, more = [], 0, True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                more = bool(message.get("more_body"))
                if size > limit:
                    await _plain(send, 413, f"Request too large: at most {limit // 1024} KiB.")
                    return
            body = b"".join(chunks)
            if event and self.check is not None:
                problem = self.check(event.group(1) or "queue/join", event.group(2), body)
                if problem is not None:
                    await _plain(send, *problem)
                    return
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


# The routes that run an event with the `data` of their body: route kind (None: queue/join), name.
_EVENT_ROUTE = re.compile(r"^/gradio_api/(?:(call/v2|call|run|api)/([^/]+)|queue/join)$")


def check_event_body(fns: Mapping[int, Any], route: str, name: str | None, body: bytes) -> tuple[int, str] | None:
    """Why an API body cannot run the event it names, as `(status, one line)`; None when it can.

    `fns` are the app's events (Gradio's `Blocks.fns`); `route` is `call`, `call/v2`, `run`,
    `api` (with the endpoint's `name`) or `queue/join`. The event is found as Gradio finds it:
    by the body's `fn_index` when there is one (the page's own calls: `run/predict`,
    `queue/join`), else by name.
    """
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return 400, 'The request body is not JSON. Send {"data": [...]}, the inputs in order.'
    if not isinstance(data, dict):
        return 400, 'The request body must be a JSON object: {"data": [...]}, the inputs in order.'
    index = data.get("fn_index")
    if index is None and name is not None:   # as Gradio finds it: fn_index first, else the name
        fn = next((f for f in fns.values() if f.api_name == name), None)
        if fn is None:
            return 404, f"There is no API endpoint /{name[:40]}; this server has /ask."
        if route == "call/v2":   # inputs by name: Gradio fills in the ones with defaults
            try:
                parameters = inspect.signature(fn.fn).parameters
            except (TypeError, ValueError):
                return None
            unknown = sorted(set(data) - set(parameters) - {"oauth_token"})
            missing = [p for p, spec in parameters.items() if spec.default is inspect.Parameter.empty
                       and spec.kind is not inspect.Parameter.VAR_POSITIONAL and p not in data]
            if unknown or missing:
                wrong = f"unknown: {', '.join(unknown)[:80]}" if unknown else f"missing: {', '.join(missing)}"
                return 422, f"/{fn.api_name} takes the named inputs {', '.join(parameters)}; {wrong}."
            return None
    else:
        fn = fns.get(index) if isinstance(index, int) and not isinstance(index, bool) else None
        if fn is None:
            return 404, "The request names an event this page does not have (fn_index)."
    values = data.get("data")
    if not isinstance(values, list):
        return 422, 'The request body must hold "data": a JSON list of the inputs, in order.'
    wanted = [name for name, block in zip(_parameters(fn), fn.inputs, strict=False)
              if not getattr(block, "skip_api", False)]
    if len(values) not in (len(fn.inputs), len(wanted)):
        shown = f" ({', '.join(wanted)})" if wanted else ""
        example = ' Send null for one you leave out, e.g. {"data": ["Where is the data stored?", null]}.' \
            if fn.api_name == "ask" else ""
        return 422, f"/{fn.api_name} takes {len(wanted)} input(s) in data{shown}, not {len(values)}.{example}"
    return None


def _parameters(fn: Any) -> list[str]:
    try:
        return list(inspect.signature(fn.fn).parameters)
    except (TypeError, ValueError):
        return [f"input {i + 1}" for i in range(len(fn.inputs))]


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
