"""The chat's saved conversations: who owns what, what the Conversations panel lists, and the
Markdown export route. The page (qa/web/page.py, qa/web/handlers.py) calls these; the store is
qa.conversations.

Conversations are kept when the chat is served on this machine's loopback address (one user: the
machine's) or behind a login (each login's apart, by its user name). Served beyond loopback
without a login, nothing is kept: anyone could read anyone's questions.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import gradio as gr
from starlette.requests import Request
from starlette.responses import Response

from qa.collections import Collection, by_name
from qa.config import Settings, is_loopback
from qa.conversations import (
    MAX_TITLE_CHARS,
    ConversationInfo,
    ConversationStore,
    SavedConversation,
    conversation_markdown,
    export_name,
    title_from,
)
from qa.errors import QAError, QueryError
from qa.types import Answer
from qa.web.html import Turn, answer_html, corpus_html, escape, question_html, sources_html


def saving_allowed(settings: Settings) -> tuple[bool, str]:
    """Whether the chat keeps conversations, and if not, the line that says why."""
    if settings.login_pairs() or is_loopback(settings.host):
        return True, ""
    return False, (f"Conversations are not saved: this chat is served on {settings.host} without a login, so "
                   "anyone could read them. Serve it on 127.0.0.1, or set a login (auth_user and auth_password, "
                   "or logins).")


def owner_of(request: gr.Request | None) -> str:
    """Whose conversations a page event touches: the login's user name, or "" without a login."""
    return str(getattr(request, "username", None) or "")


@dataclass(frozen=True)
class Saving:
    """The chat's store of conversations and votes, and whether conversations are kept."""

    store: ConversationStore
    on: bool
    why_not: str
    several: bool = False   # several collections: the list names each conversation's

    def choices(self, owner: str) -> list[tuple[str, str]]:
        """The Conversations list for `owner`: (label, id), most recently changed first."""
        if not self.on:
            return []
        return [(self.label(info), info.id) for info in self.store.conversations(owner)]

    def label(self, info: ConversationInfo) -> str:
        when = _day(info.updated)
        where = f" · {info.collection}" if self.several else ""
        return f"{info.title}{where} · {info.questions} question{'s' if info.questions != 1 else ''} · {when}"

    def keep(self, owner: str, conversation: str | None, collection: str, question: str,
             reply: Answer) -> tuple[str | None, str]:
        """Save a question and its answer (starting a conversation when `conversation` is None);
        returns the conversation's id (None when none is kept) and a line for the user when it
        was not saved."""
        if not self.on:
            return None, ""
        try:
            if conversation is None:
                conversation = self.store.create(owner, collection, title_from(question))
            self.store.add_turn(owner, conversation, question, reply)
        except QAError as exc:
            return conversation, str(exc)
        return conversation, ""


def turns_of(saved: SavedConversation) -> list[Turn]:
    return [Turn(question, reply) for question, reply in saved.turns]


def conversations_panel(saving: Saving) -> tuple[Any, ...]:
    """The Conversations accordion: the saved list, the open conversation's title (renamed on
    Enter or Rename), its export link and Delete. Returns (list, title, export, rename, delete);
    when conversations are not kept, the accordion says why and its controls stay hidden."""
    with gr.Accordion("Conversations", open=False, elem_id="qa-convs"):
        if not saving.on:
            gr.HTML(f'<p class="qa-note">{escape(saving.why_not)}</p>', elem_id="qa-convs-off")
        listed = gr.Radio(choices=[], value=None, label=list_label(0), interactive=True, visible=saving.on,
                          elem_id="qa-conv-list")
        with gr.Row(visible=saving.on, equal_height=True):
            title = gr.Textbox(label="Title of the open conversation", max_length=MAX_TITLE_CHARS, scale=4,
                               placeholder="saved with its first question", elem_id="qa-conv-title")
            rename = gr.Button("Rename", size="sm", scale=1, min_width=90, elem_id="qa-conv-rename")
        with gr.Row(visible=saving.on, equal_height=True):
            export = gr.HTML("", elem_id="qa-conv-export", padding=False)
            delete = gr.Button("Delete this conversation", variant="stop", size="sm", scale=0, min_width=200,
                               elem_id="qa-conv-delete")
    return listed, title, export, rename, delete


def export_html(conversation: str | None) -> str:
    """The export link of the open conversation (empty when none is saved)."""
    if not conversation:
        return ""
    return (f'<a class="qa-export" href="qa/export?conversation={escape(conversation)}" download>'
            "Export as Markdown</a>")


def list_update(saving: Saving, owner: str, value: str | None) -> Any:
    """The Conversations list, refreshed, with `value` selected (left as it was, with a warning,
    when the database cannot be read)."""
    try:
        choices = saving.choices(owner)
    except QAError as exc:
        gr.Warning(str(exc))
        return gr.skip()
    return gr.update(choices=choices, value=value if any(v == value for _, v in choices) else None,
                     label=list_label(len(choices)))


def list_label(count: int) -> str:
    if not count:
        return "No saved conversations yet: each question you ask is saved as it is answered"
    return f"{count} saved conversation{'s' if count != 1 else ''}, newest first: click one to open it"


def _day(stamp: str) -> str:
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def add_export_route(server: Any, saving: Saving, check: Any, current_user: Callable[[Request], Any]) -> None:
    """Serve `GET /qa/export?conversation=ID`: the conversation as a Markdown file, for its owner
    only (behind the page's login check)."""
    async def export(request: Request, conversation: str = "") -> Response:
        user = current_user(request)
        owner = str((await user) if inspect.isawaitable(user) else (user or ""))
        if not saving.on:
            return _text(403, saving.why_not)
        try:
            saved = saving.store.open(owner, conversation)
        except QueryError as exc:
            return _text(404, str(exc))
        except QAError as exc:
            return _text(503, str(exc))
        text = conversation_markdown(saved, file_url=f"{request.base_url}qa/file?doc=")
        return Response(text, media_type="text/markdown; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{export_name(saved.info)}"',
            "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})

    server.add_api_route("/qa/export", export, methods=["GET"], dependencies=[check], include_in_schema=False)


def _text(status: int, text: str) -> Response:
    return Response(text + "\n", status_code=status, media_type="text/plain; charset=utf-8",
                    headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


@dataclass
class Parts:
    """The page's components that the conversation handlers write to, named once."""

    chatbot: Any
    box: Any
    sources: Any
    turns: Any               # gr.State: the open conversation's Turns
    conversation: Any        # gr.State: its saved id, or None
    collection: Any          # the collection selector
    saved: Any               # the Conversations list (a Radio of saved conversations)
    title: Any               # the open conversation's title box
    export: Any              # its export link
    view: Callable[[Collection, str], dict[Any, Any]] = lambda _c, _needle: {}   # header, documents, examples


class Conversations:
    """The page's handlers for saved conversations and the collection selector."""

    def __init__(self, saving: Saving, collections: Sequence[Collection], parts: Parts) -> None:
        self.saving = saving
        self.collections = list(collections)
        self.p = parts

    def collection(self, name: str | None) -> Collection:
        """The collection called `name`; the first one for a name this server does not have."""
        return by_name(self.collections, name) or self.collections[0]

    def links_for(self, collection: Collection) -> str | None:
        """The collection to name in links to original files (None when there is only one)."""
        return collection.name if len(self.collections) > 1 else None

    def kept(self, owner: str, conversation: str | None, collection: Collection, question: str,
             reply: Answer) -> dict[Any, Any]:
        """Save a question just answered; the updates of the conversation's parts of the page."""
        saved_id, problem = self.saving.keep(owner, conversation, collection.name, question, reply)
        if problem:
            gr.Warning(problem)
        if saved_id is None:
            return {}
        updates = {self.p.conversation: saved_id, self.p.saved: list_update(self.saving, owner, saved_id),
                   self.p.export: export_html(saved_id)}
        if conversation is None:
            updates[self.p.title] = title_from(question)
        return updates

    def vote(self, turns: list[Turn], conversation: str | None, name: str, evt: gr.LikeData,
             request: gr.Request) -> None:
        index_no = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        k = int(index_no) // 2
        if not 0 <= k < len(turns):
            return
        liked = evt.liked
        choice = ("up" if liked else "down") if isinstance(liked, bool) else str(liked or "cleared")
        try:
            self.saving.store.record_vote(owner_of(request), self.collection(name).name, conversation,
                                          turns[k].question, turns[k].reply, choice)
        except QAError as exc:
            gr.Warning(f"The vote was not kept: {exc}")

    def new(self, name: str) -> dict[Any, Any]:
        """A new, empty conversation over the collection called `name`."""
        collection = self.collection(name)
        return {self.p.chatbot: [], self.p.box: "", self.p.sources: collection.live.view("corpus", corpus_html),
                self.p.turns: [], self.p.conversation: None, self.p.saved: gr.update(value=None),
                self.p.title: "", self.p.export: ""}

    def switch(self, name: str, needle: str) -> dict[Any, Any]:
        """The selector chose another collection: a new conversation over it."""
        collection = self.collection(name)
        shown = self.p.view(collection, needle)
        chat = {**shown.pop(self.p.chatbot, {}), "value": []}   # emptied, with this collection's examples
        return {**self.new(collection.name), **shown, self.p.chatbot: chat}

    def listing(self, request: gr.Request) -> Any:
        return list_update(self.saving, owner_of(request), None)

    def open(self, conversation: str | None, needle: str, request: gr.Request) -> dict[Any, Any]:
        """Reopen a saved conversation: its answers, their sources, its collection."""
        owner = owner_of(request)
        if not conversation:
            return {}
        try:
            saved = self.saving.store.open(owner, conversation)
        except QAError as exc:
            gr.Warning(str(exc))
            return {self.p.saved: list_update(self.saving, owner, None)}
        collection = by_name(self.collections, saved.info.collection)
        if collection is None:
            gr.Warning(f"This conversation was held over the collection {saved.info.collection}, which this server "
                       f"does not serve now ({', '.join(c.name for c in self.collections)}). Export it to read it.")
            return {self.p.conversation: None, self.p.export: export_html(saved.info.id),
                    self.p.title: saved.info.title}
        turns = turns_of(saved)
        try:
            index, source_text = collection.live.get()
            sources = sources_html(turns, index, source_text, self.links_for(collection))
        except QAError as exc:
            sources = f'<p class="qa-note">{escape(str(exc))}</p>'
        shown = self.p.view(collection, needle)
        chat = {**shown.pop(self.p.chatbot, {}), "value": chat_messages(turns)}
        return {**shown, self.p.chatbot: chat, self.p.sources: sources,
                self.p.turns: turns, self.p.conversation: saved.info.id, self.p.collection: collection.name,
                self.p.title: saved.info.title, self.p.export: export_html(saved.info.id)}

    def rename(self, conversation: str | None, title: str, request: gr.Request) -> dict[Any, Any]:
        owner = owner_of(request)
        if not conversation:
            gr.Warning("Ask a question first: a conversation is saved, and can be renamed, once it has one.")
            return {self.p.title: ""}
        try:
            stored = self.saving.store.rename(owner, conversation, title)
        except QAError as exc:
            gr.Warning(str(exc))
            return {}
        return {self.p.title: stored, self.p.saved: list_update(self.saving, owner, conversation)}

    def delete(self, conversation: str | None, name: str, request: gr.Request) -> dict[Any, Any]:
        owner = owner_of(request)
        if conversation:
            try:
                self.saving.store.delete(owner, conversation)
            except QAError as exc:
                gr.Warning(str(exc))
        return {**self.new(name), self.p.saved: list_update(self.saving, owner, None)}


def chat_messages(turns: Sequence[Turn]) -> list[dict[str, str]]:
    """The conversation as Chatbot messages (escaped HTML, markers linked to their sources)."""
    messages = []
    for k, turn in enumerate(turns, 1):
        messages.append({"role": "user", "content": question_html(turn.question)})
        messages.append({"role": "assistant", "content": answer_html(k, turn.reply)})
    return messages
