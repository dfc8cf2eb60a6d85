"""The chat page's event handlers: asking (in the page and through `/ask`), the documents list,
and adding and removing documents. Saved conversations and the collection selector have theirs
in qa/web/saved.py (`Conversations`, reached as `Chat.talk`).

Every handler that writes to the page returns (or yields) a dict keyed by the components of
`Page`: what it leaves out stays as it is, and a component missing from the event's outputs is an
error at once, never a silent shift of positions.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr

from qa.answers import answer_to_json
from qa.collections import Collection
from qa.errors import QAError
from qa.manage import Change, add_files, document_rows, documents_table, remove_document
from qa.web.html import Turn, corpus_html, error_html, escape, header_html, question_html
from qa.web.layout import REMOVE_LABEL, Page, docs_label, example_messages
from qa.web.replies import FILTER_CHARS, answer_or_problem, chat_filters, next_reply, panel
from qa.web.saved import Conversations, Parts, Saving, chat_messages, owner_of

log = logging.getLogger(__name__)

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


class Chat:
    """The handlers of one page over the collections `served` (the first one answers `/ask` and
    fills a newly opened page)."""

    def __init__(self, page: Page, served: Sequence[Collection], saving: Saving,
                 examples: Mapping[str, Sequence[str]], can_change: bool) -> None:
        self.page = page
        self.first = served[0]
        self.examples = examples
        self.can_change = can_change
        p = page
        self.talk = Conversations(saving, served, Parts(p.chatbot, p.box, p.sources, p.turns, p.conversation,
                                                        p.selector, p.saved, p.title, p.export, self.view))

    def ask(self, question: str, history: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """Answer a question from the documents, with verbatim cited quotes.

        Args:
            question: the question.
            history: earlier messages of the conversation, as {"role", "content"} dicts.

        Returns:
            answer (text with [n] markers), abstained, confidence, citations (n, doc_id, title,
            quote, start, end, date, page, answer_start, answer_end), passages, latency_ms.
        """
        try:
            current = self.first.live.get()[0]
        except QAError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        reply, problem = answer_or_problem(question, history, current, self.first.settings)
        if reply is None:
            raise gr.Error(problem, print_exception=False)
        return answer_to_json(reply)

    def respond(self, question: str, turns: list[Turn], conversation: str | None, name: str, docs: str = "",
                since: str = "", until: str = "", request: gr.Request = None) -> Iterator[Any]:  # type: ignore[assignment]
        p = self.page
        question = (question or "").strip()
        if not question:
            yield gr.skip()
            return
        pending = [*chat_messages(turns), {"role": "user", "content": question_html(question)}]
        # The box is emptied once, when the question is taken. The later yields leave it alone:
        # the final output is applied again when the event completes, and clearing the box then
        # would wipe a next question the user has already begun to type.
        yield {p.chatbot: pending, p.box: ""}
        collection = self.talk.collection(name)
        try:
            current, source_text = collection.live.get()   # this question's index, from start to end
        except QAError as exc:
            yield {p.chatbot: [*pending, {"role": "assistant", "content": error_html(str(exc))}]}
            return
        reply, problem = next_reply(question, turns, current, collection.settings, chat_filters(docs, since, until))
        if reply is None:
            yield {p.chatbot: [*pending, {"role": "assistant", "content": error_html(problem)}]}
            return
        turns = [*turns, Turn(question, reply)]
        saved = self.talk.kept(owner_of(request), conversation, collection, question, reply)
        yield {p.chatbot: chat_messages(turns), p.sources: panel(turns, current, source_text,
                                                                 self.talk.links_for(collection)),
               p.turns: turns, **saved}

    def respond_example(self, turns: list[Turn], conversation: str | None, name: str, docs: str, since: str,
                        until: str, evt: gr.SelectData, request: gr.Request) -> Iterator[Any]:
        value = evt.value
        text = value.get("text", "") if isinstance(value, dict) else str(value or "")
        yield from self.respond(text, turns, conversation, name, docs, since, until, request)

    def doc_rows(self, needle: str = "", name: str | None = None) -> Any:
        """The documents list of the collection called `name`, narrowed to `needle`."""
        live = self.talk.collection(name).live
        rows, matched = documents_table(live.view("documents", document_rows), (needle or "")[:FILTER_CHARS])
        label = (f"{matched:,} documents" if len(rows) == matched
                 else f"{len(rows):,} of {matched:,} documents shown, newest first; type in Find to narrow")
        return gr.update(value=rows, label=label)

    def view(self, collection: Collection, needle: str) -> dict[Any, Any]:
        """What the page shows of a collection: header, documents, example questions."""
        p, current = self.page, collection.index
        shown = {p.header: header_html(current), p.docs_panel: gr.update(label=docs_label(current)),
                 p.table: self.doc_rows(needle, collection.name),
                 p.chatbot: gr.update(examples=example_messages(self.examples[collection.name]))}
        if self.can_change:
            shown |= {p.chosen: None, p.remover: gr.update(value=REMOVE_LABEL, interactive=False)}
        return shown

    def refresh(self, needle: str, request: gr.Request) -> dict[Any, Any]:
        """A page opened after a change shows the documents as they are now, and its user's
        saved conversations."""
        p, current = self.page, self.first.index
        return {p.table: self.doc_rows(needle), p.header: header_html(current),
                p.docs_panel: gr.update(label=docs_label(current)),
                p.sources: self.first.live.view("corpus", corpus_html), p.saved: self.talk.listing(request)}

    def change(self, work: Callable[[Callable[[str], None]], Change], needle: str, turns: list[Turn],
               collection: Collection) -> Iterator[Any]:
        """Run a change of documents, showing its lines; then swap the index in and refresh."""
        p = self.page
        lines: list[str] = []
        outcome: tuple[Change | None, BaseException | None] = (None, None)
        steps = _streamed(work)
        try:
            while True:
                lines.append(next(steps))
                yield {p.status: status_html(lines)}
        except StopIteration as stop:
            outcome = stop.value
        done, error = outcome
        if error is not None:
            if isinstance(error, QAError):
                message = str(error)
            else:
                log.error("Unexpected error while changing the documents", exc_info=error)
                message = "Internal error while changing the documents; the server log has the details."
            yield {p.status: status_html(lines, message + " Nothing else changed.", problem=True)}
            return
        assert done is not None
        if done.index is not None:
            collection.live.swap(done.index)
        current, source_text = collection.live.shown()
        yield {p.status: status_html(lines, done.summary(), problem=bool(done.refused) and not done.added),
               p.table: self.doc_rows(needle, collection.name), p.header: header_html(current),
               p.docs_panel: gr.update(label=docs_label(current)),
               p.sources: panel(turns, current, source_text, self.talk.links_for(collection))}

    def upload(self, files: list[str] | None, needle: str, turns: list[Turn], name: str) -> Iterator[Any]:
        paths = [Path(str(f)) for f in files or []]
        if not paths:
            yield gr.skip()
            return
        collection = self.talk.collection(name)   # uploads go to the collection chosen in the selector
        try:
            yield from self.change(lambda say: add_files([(p, p.name) for p in paths], settings=collection.settings,
                                                         log=say), needle, turns, collection)
        finally:
            for p in paths:   # Gradio's copies of the uploads: the corpus has its own now
                p.unlink(missing_ok=True)
        yield {self.page.uploader: None}

    def pick(self, name: str, evt: gr.SelectData) -> dict[Any, Any]:
        p = self.page
        row = evt.row_value or []
        doc_id = str(row[1]) if len(row) > 1 else ""
        if doc_id not in self.talk.collection(name).index.documents:
            return {p.chosen: None, p.remover: gr.update(value=REMOVE_LABEL, interactive=False)}
        return {p.chosen: doc_id, p.remover: gr.update(value=f"Remove {doc_id}", interactive=True)}

    def remove(self, doc_id: str | None, needle: str, turns: list[Turn], name: str) -> Iterator[Any]:
        if not doc_id:
            yield gr.skip()
            return
        collection = self.talk.collection(name)
        yield from self.change(lambda say: remove_document(doc_id, settings=collection.settings, log=say), needle,
                               turns, collection)
        yield {self.page.chosen: None, self.page.remover: gr.update(value=REMOVE_LABEL, interactive=False)}
