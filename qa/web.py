"""The web chat: a Gradio 6 app over one or more collections (`build_app`) and its server (`serve`).

Each collection (qa/collections.py: a corpus and its index) is loaded at start-up and shared by
every session, as is the encoder inside `qa.answer`; the queue runs `settings.concurrency`
questions at once. Each session keeps its open conversation (`Turn`s) in `gr.State`, and the
conversation is saved as it goes (qa/conversations.py, qa/web_conversations.py: on loopback or
behind a login, each login's apart); the chat shows HTML rendered by `qa.web_html`, where all
document and user text is escaped, so the Chatbot runs with Markdown off and its sanitizer on.

Documents can be added (uploaded) and removed in the page (`qa.manage`), in the collection the
selector shows: each change updates its index incrementally and then replaces the index the chat
answers from (`qa.live.LiveIndex`) in one step, so a question is answered wholly from the old
index or wholly from the new one. Uploads and removals are on only when the chat is served on
this machine's loopback address or behind a login (`uploads_allowed`); otherwise Gradio's upload
route is refused outright.

Besides the page, these HTTP endpoints are public: `/ask` (question, history) -> the JSON of
`qa ask --json` (from the first collection); the OpenAI-compatible `/v1/models` and
`/v1/chat/completions` (qa/openai_api.py, behind its own key); and, behind the same login as
the page, `/qa/file?doc=DOC_ID[&collection=NAME]`, a document's original file, looked up by the
doc_id the index has (never by a path), and `/qa/export?conversation=ID`, a saved conversation
as Markdown, for its owner only. The page's own events are private to the page.

Limits: a question of at most `settings.max_question_chars` characters; follow-ups read the
last `settings.history_turns` questions; a conversation holds `MAX_TURNS` questions; a request
body holds at most `MAX_REQUEST_BYTES` (on every route, the OpenAI API's included), an upload
at most `MAX_FILES_PER_ADD` files of `settings.max_file_mb` each.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import inspect
import json
import logging
import posixpath
import queue
import re
import socket
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import gradio as gr
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from qa.answers import answer, answer_to_json
from qa.collections import Collection, by_name, collection_specs, open_collections
from qa.config import Settings, is_loopback
from qa.conversations import MAX_TURNS, ConversationStore
from qa.errors import IndexChangedError, QAError
from qa.formats import serving, upload_label, upload_types
from qa.index import Index
from qa.manage import (
    MAX_FILES_PER_ADD,
    Change,
    add_files,
    document_rows,
    documents_table,
    inside,
    remove_document,
)
from qa.openai_api import add_openai_routes, api_access, error_body
from qa.types import Answer
from qa.web_conversations import (
    Conversations,
    Parts,
    Saving,
    add_export_route,
    chat_messages,
    conversations_panel,
    owner_of,
    saving_allowed,
)
from qa.web_html import (
    SourceText,
    Turn,
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


UPLOAD_TYPES = upload_types()
DOC_HEADERS = ["Title", "File", "Date", "Pages", "Chunks", "Indexed"]
STATUS_LINES = 8   # lines of an update's progress kept in view

_T = TypeVar("_T")
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


def build_app(settings: Settings, index: Index | None = None, *, collections: Sequence[Collection] | None = None,
              saving: Saving | None = None) -> gr.Blocks:
    """The chat page over `collections` (default: those `settings` names, or `index`, or
    `settings.index` built when missing; see `qa.collections.open_collections`).

    `saving` (made here when left out, over `settings.database`) keeps the conversations;
    `serve` passes its own so that the export route reads the same one.

    Style and theme are `launch()` options in Gradio 6; `serve` passes `CSS` and `theme()`.
    """
    served = list(collections) if collections else open_collections(settings, index=index)
    if saving is None:
        saving = Saving(ConversationStore(settings.database), *saving_allowed(settings), several=len(served) > 1)
    for collection in served:
        # The documents list reads every document row (3.3 s at 251,251 documents): made in the
        # background from start-up, so that neither start-up nor most first pages wait for it.
        threading.Thread(target=collection.live.view, args=("documents", document_rows), name="qa-documents",
                         daemon=True).start()
    first = served[0]
    loaded = first.index
    examples = {c.name: working_examples(c.index, c.settings) for c in served}
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
            current = first.live.get()[0]
        except QAError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        reply, problem = answer_or_problem(question, history, current, first.settings)
        if reply is None:
            raise gr.Error(problem, print_exception=False)
        return answer_to_json(reply)

    def respond(question: str, turns: list[Turn], conversation: str | None, name: str, docs: str = "",
                since: str = "", until: str = "", request: gr.Request = None) -> Iterator[Any]:  # type: ignore[assignment]
        question = (question or "").strip()
        if not question:
            yield gr.skip()
            return
        pending = [*chat_messages(turns), {"role": "user", "content": question_html(question)}]
        # The box is emptied once, when the question is taken. The later yields leave it alone:
        # the final output is applied again when the event completes, and clearing the box then
        # would wipe a next question the user has already begun to type.
        yield {chatbot: pending, box: ""}
        collection = talk.collection(name)
        try:
            current, source_text = collection.live.get()   # this question's index, from start to end
        except QAError as exc:
            yield {chatbot: [*pending, {"role": "assistant", "content": error_html(str(exc))}]}
            return
        reply, problem = next_reply(question, turns, current, collection.settings, chat_filters(docs, since, until))
        if reply is None:
            yield {chatbot: [*pending, {"role": "assistant", "content": error_html(problem)}]}
            return
        turns = [*turns, Turn(question, reply)]
        saved = talk.kept(owner_of(request), conversation, collection, question, reply)
        yield {chatbot: chat_messages(turns), sources: panel(turns, current, source_text, talk.links_for(collection)),
               turns_state: turns, **saved}

    def respond_example(turns: list[Turn], conversation: str | None, name: str, docs: str, since: str, until: str,
                        evt: gr.SelectData, request: gr.Request) -> Iterator[Any]:
        value = evt.value
        text = value.get("text", "") if isinstance(value, dict) else str(value or "")
        yield from respond(text, turns, conversation, name, docs, since, until, request)

    def doc_rows(needle: str = "", name: str | None = None) -> Any:
        live = talk.collection(name).live
        rows, matched = documents_table(live.view("documents", document_rows), (needle or "")[:FILTER_CHARS])
        label = (f"{matched:,} documents" if len(rows) == matched
                 else f"{len(rows):,} of {matched:,} documents shown, newest first; type in Find to narrow")
        return gr.update(value=rows, label=label)

    def view(collection: Collection, needle: str) -> dict[Any, Any]:
        """What the page shows of a collection: header, documents, example questions."""
        current = collection.index
        shown = {header: header_html(current), docs_panel: gr.update(label=docs_label(current)),
                 table: doc_rows(needle, collection.name),
                 chatbot: gr.update(examples=[{"text": q} for q in examples[collection.name]] or None)}
        if can_change:
            shown |= {chosen: None, remover: gr.update(value="Remove the selected document", interactive=False)}
        return shown

    def change(work: Callable[[Callable[[str], None]], Change], needle: str, turns: list[Turn],
               collection: Collection) -> Iterator[Any]:
        """Run a change of documents, showing its lines; then swap the index in and refresh."""
        lines: list[str] = []
        outcome: tuple[Change | None, BaseException | None] = (None, None)
        steps = _streamed(work)
        try:
            while True:
                lines.append(next(steps))
                yield {status: status_html(lines)}
        except StopIteration as stop:
            outcome = stop.value
        done, error = outcome
        if error is not None:
            if isinstance(error, QAError):
                message = str(error)
            else:
                log.error("Unexpected error while changing the documents", exc_info=error)
                message = "Internal error while changing the documents; the server log has the details."
            yield {status: status_html(lines, message + " Nothing else changed.", problem=True)}
            return
        assert done is not None
        if done.index is not None:
            collection.live.swap(done.index)
        current, source_text = collection.live.shown()
        yield {status: status_html(lines, done.summary(), problem=bool(done.refused) and not done.added),
               table: doc_rows(needle, collection.name), header: header_html(current),
               docs_panel: gr.update(label=docs_label(current)),
               sources: panel(turns, current, source_text, talk.links_for(collection))}

    def upload(files: list[str] | None, needle: str, turns: list[Turn], name: str) -> Iterator[Any]:
        paths = [Path(str(f)) for f in files or []]
        if not paths:
            yield gr.skip()
            return
        collection = talk.collection(name)   # uploads go to the collection chosen in the selector
        try:
            yield from change(lambda say: add_files([(p, p.name) for p in paths], settings=collection.settings,
                                                    log=say), needle, turns, collection)
        finally:
            for p in paths:   # Gradio's copies of the uploads: the corpus has its own now
                p.unlink(missing_ok=True)
        yield {uploader: None}

    def pick(name: str, evt: gr.SelectData) -> tuple[Any, ...]:
        row = evt.row_value or []
        doc_id = str(row[1]) if len(row) > 1 else ""
        if doc_id not in talk.collection(name).index.documents:
            return None, gr.update(value="Remove the selected document", interactive=False)
        return doc_id, gr.update(value=f"Remove {doc_id}", interactive=True)

    def remove(doc_id: str | None, needle: str, turns: list[Turn], name: str) -> Iterator[Any]:
        if not doc_id:
            yield gr.skip()
            return
        collection = talk.collection(name)
        yield from change(lambda say: remove_document(doc_id, settings=collection.settings, log=say), needle, turns,
                          collection)
        yield {chosen: None, remover: gr.update(value="Remove the selected document", interactive=False)}

    with gr.Blocks(title="qa · cited answers", analytics_enabled=False) as app:
        turns_state = gr.State([])
        conversation_state = gr.State(None)   # the open conversation's saved id
        with gr.Row(elem_id="qa-top", equal_height=True):
            header = gr.HTML(header_html(loaded), js_on_load=None, scale=10)
            selector = gr.Dropdown(choices=[c.name for c in served], value=first.name, label="Collection",
                                   interactive=True, visible=len(served) > 1, scale=2, min_width=180,
                                   elem_id="qa-collection")
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
                    examples=[{"text": q} for q in examples[first.name]] or None,
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
                saved, title, export, renamer, deleter = conversations_panel(saving)
            with gr.Column(scale=2, min_width=340, elem_id="qa-sources-col"):
                sources = gr.HTML(corpus_html(loaded), elem_id="qa-sources", js_on_load=static_text("cite.js"),
                                  padding=False)

        talk = Conversations(saving, served, Parts(chatbot, box, sources, turns_state, conversation_state, selector,
                                                   saved, title, export, view))
        outputs = [chatbot, box, sources, turns_state, conversation_state, saved, title, export]
        # A question sent while the last one is still finishing runs after it ("always_last"),
        # rather than being dropped as Gradio's default ("once") would.
        filter_boxes = [docs_box, since_box, until_box]
        asked = [turns_state, conversation_state, selector, *filter_boxes]
        gr.on([box.submit, send.click], respond, inputs=[box, *asked], outputs=outputs,
              api_visibility="private", show_progress="minimal", show_progress_on=[chatbot],
              trigger_mode="always_last")
        chatbot.example_select(respond_example, inputs=asked, outputs=outputs, api_visibility="private",
                               show_progress="minimal", show_progress_on=[chatbot])
        chatbot.like(talk.vote, inputs=[turns_state, conversation_state, selector], outputs=None,
                     api_visibility="private", queue=False)
        gr.on([new.click, chatbot.clear], talk.new, inputs=[selector], outputs=outputs, api_visibility="private",
              queue=False)
        shown = [header, docs_panel, table, chatbot, *([chosen, remover] if can_change else [])]
        selector.input(talk.switch, inputs=[selector, find], outputs=[*outputs, *shown], api_visibility="private",
                       queue=False)
        if saving.on:
            saved.input(talk.open, inputs=[saved, find], outputs=[*outputs, *shown, selector],
                        api_visibility="private", queue=False)
            title.submit(talk.rename, inputs=[conversation_state, title], outputs=[title, saved],
                         api_visibility="private", queue=False)
            renamer.click(talk.rename, inputs=[conversation_state, title], outputs=[title, saved],
                          api_visibility="private", queue=False)
            deleter.click(talk.delete, inputs=[conversation_state, selector], outputs=outputs,
                          api_visibility="private", queue=False)

        def refresh(needle: str, request: gr.Request) -> tuple[Any, ...]:
            current = first.index
            return (doc_rows(needle), header_html(current), gr.update(label=docs_label(current)),
                    first.live.view("corpus", corpus_html), talk.listing(request))

        # A page opened after a change shows the documents as they are now, and its user's
        # saved conversations.
        app.load(refresh, inputs=[find], outputs=[table, header, docs_panel, sources, saved],
                 api_visibility="private", queue=False)
        find.change(doc_rows, inputs=[find, selector], outputs=[table], api_visibility="private", queue=False,
                    trigger_mode="always_last")
        changed = [status, table, header, docs_panel, sources]
        if can_change:
            # One change of documents at a time, queued in the order asked (one concurrency id).
            uploader.upload(upload, inputs=[uploader, find, turns_state, selector], outputs=[*changed, uploader],
                            api_visibility="private", concurrency_limit=1, concurrency_id="qa-change",
                            show_progress="minimal", show_progress_on=[status])
            table.select(pick, inputs=[selector], outputs=[chosen, remover], api_visibility="private", queue=False)
            remover.click(remove, inputs=[chosen, find, turns_state, selector], outputs=[*changed, chosen, remover],
                          api_visibility="private", concurrency_limit=1, concurrency_id="qa-change",
                          show_progress="minimal", show_progress_on=[status])
        gr.api(ask, api_name="ask")
    return app


def serve(settings: Settings, *, block: bool = True, index: Index | None = None, update: bool = False,
          log_line: Callable[[str], None] | None = None) -> gr.Blocks:
    """Start the chat on `settings.host:settings.port` (127.0.0.1:7860 by default).

    Builds missing indexes first. Serves the page, its API, the OpenAI-compatible API
    (`/v1/...`, qa.openai_api), the original files of indexed documents by doc_id (`/qa/file`)
    and the Markdown export of saved conversations (`/qa/export`): no file folder is allowed,
    and the corpora, indexes and database are blocked outright from Gradio's file route.
    Gradio's upload route takes files only when `uploads_allowed(settings)`; otherwise it is
    refused.

    Args:
        settings: everything, including host, port, concurrency, logins, api_key, database and
            the collections to serve (`collections`, `collections_folder`).
        block: keep serving until interrupted; False returns once the server is up.
        index: an index already loaded, served alone (default: what `settings` names).
        update: first bring each index up to date with its corpus (after the port is checked,
            so a busy port is told before any indexing).
        log_line: where start-up lines go (None: nowhere; app.py and `qa serve` pass `print`).

    Returns:
        The running app (call `.close()` to stop it when `block` is False).

    Raises:
        QAError: the port is in use or cannot be bound, the collections cannot be served, an
            index cannot be opened, or the database cannot be opened.
    """
    say = log_line or (lambda _line: None)
    collection_specs(settings)   # a malformed collection is told before anything else is done
    check_port(settings.host, settings.port)
    served = open_collections(settings, log_line, index=index, update=update)
    for collection in served:
        loaded = collection.index
        named = f" as collection {collection.name}" if len(served) > 1 else ""
        say(f"Loading the chat over {loaded.path}{named} ({len(loaded.documents)} documents)...")
    saving = Saving(ConversationStore(settings.database), *saving_allowed(settings), several=len(served) > 1)
    app = build_app(settings, collections=served, saving=saving)
    for allowed, why_not in (uploads_allowed(settings), (saving.on, saving.why_not), api_access(settings)):
        if not allowed:
            say(why_not)
    can_change = uploads_allowed(settings)[0]
    upload_bytes = MAX_FILES_PER_ADD * int(settings.max_file_mb * 1024 * 1024) + 1024 * 1024
    app.queue(default_concurrency_limit=settings.concurrency, max_size=256)
    database = Path(settings.database).resolve()
    blocked = [str(Path(p).resolve()) for c in served for p in (c.settings.corpus, c.settings.index)]
    blocked += [str(database), f"{database}-wal", f"{database}-shm"]
    try:
        app.launch(
            server_name=settings.host,
            server_port=settings.port,
            auth=settings.login_pairs() or None,
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
        check, current_user = gradio_login(app)
        add_file_route(app, served, check)
        add_export_route(app.server_app, saving, check, current_user)
        add_openai_routes(app.server_app, served, settings)
    except BaseException:
        app.close()
        raise
    if block:
        app.block_thread()
    return app


def gradio_login(app: gr.Blocks) -> tuple[Any, Callable[[Any], Any]]:
    """Gradio's login check (a route dependency: 401 without the page's login) and its function
    that names the logged-in user of a request (None without a login).

    Raises:
        QAError: they cannot be found (a Gradio version qa does not know); no route of qa's is
            served without them.
    """
    server = app.server_app
    # The page's own config route carries Gradio's login check; qa's routes take the same.
    check = next((d for r in server.routes if getattr(r, "path", None) == "/config"
                  for d in getattr(r, "dependencies", ()) if getattr(d.dependency, "__name__", "") == "login_check"),
                 None)
    user = inspect.signature(check.dependency).parameters.get("user") if check is not None else None
    current_user = getattr(getattr(user, "default", None), "dependency", None)
    if check is None or current_user is None:
        raise QAError("Gradio's login check was not found on its /config route, so original files and saved "
                      f"conversations cannot be served behind the login (gradio {gr.__version__}).")
    return check, current_user


def add_file_route(app: gr.Blocks, collections: Sequence[Collection], check: Any) -> None:
    """Serve `GET /qa/file?doc=DOC_ID[&collection=NAME]`: the original file of a document of a
    collection's live index (the first collection's when none is named), behind Gradio's own
    login check `check` (the same one as the page's)."""
    def original(doc: str = "", collection: str = "") -> Response:
        chosen = by_name(collections, collection) if collection else collections[0]
        if chosen is None:
            return Response(f"No collection {collection[:80]!r} here.\n", status_code=404,
                            media_type="text/plain; charset=utf-8",
                            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})
        try:
            index = chosen.live.get()[0]
        except QAError as exc:
            return Response(f"{exc}\n", status_code=503, media_type="text/plain; charset=utf-8",
                            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})
        return original_file(index, doc)

    app.server_app.add_api_route("/qa/file", original, methods=["GET"], dependencies=[check],
                                 include_in_schema=False)


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
        api = path.startswith("/v1/")   # the OpenAI-compatible API answers in OpenAI's error shape
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
            await _plain(send, 413, f"Request too large: at most {limit // 1024} KiB {why}", api=api)
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
                    await _plain(send, 413, f"Request too large: at most {limit // 1024} KiB.", api=api)
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


async def _plain(send: Send, status: int, text: str, api: bool = False) -> None:
    """Refuse with one line of text, or for the OpenAI-compatible API, its JSON error object."""
    code = "request_too_large" if status == 413 else None
    body = (json.dumps(error_body(text, code=code)) if api else text + "\n").encode("utf-8")
    kind = b"application/json" if api else b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", kind),
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
