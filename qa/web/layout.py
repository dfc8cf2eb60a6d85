"""The chat page's layout: every component, made once and named in `Page`, with the groups of
components that events write to. No behaviour here: qa/web/handlers.py answers the events and
qa/web/page.py binds them.

The page: a top row (header, collection selector, New conversation); the chat column (the
Chatbot, the question box, the document filters, the Documents panel with uploads and removal,
the saved Conversations); the sources column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import gradio as gr
from gradio.components.chatbot import ExampleMessage

from qa.collections import Collection
from qa.config import Settings
from qa.formats import upload_label, upload_types
from qa.index import Index
from qa.manage import MAX_FILES_PER_ADD
from qa.web.html import corpus_html, escape, header_html
from qa.web.replies import FILTER_CHARS
from qa.web.saved import Saving, conversations_panel

WELCOME = (
    "<div class='qa-welcome'><h2>Ask the documents</h2>"
    "<p>Every answer quotes the exact sentences it rests on. Click a marker like <b>[1]</b> to "
    "see the quote inside its passage. When the documents do not say, the answer says so.</p></div>"
)
UPLOAD_TYPES = upload_types()
DOC_HEADERS = ["Title", "File", "Date", "Pages", "Chunks", "Indexed"]
REMOVE_LABEL = "Remove the selected document"


def static_text(name: str) -> str:
    """A file of the page's style or script, shipped in qa/static/."""
    return resources.files("qa").joinpath("static", name).read_text(encoding="utf-8")


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


def docs_label(index: Index) -> str:
    return f"Documents ({len(index.documents):,})"


def example_messages(questions: Sequence[str]) -> list[ExampleMessage] | None:
    """Example questions as the Chatbot shows them (None: no examples)."""
    return [{"text": q} for q in questions] or None


@dataclass(frozen=True)
class Page:
    """The page's components, each named once; `uploader` and `remover` are None when this
    server does not change documents."""

    turns: Any          # gr.State: the open conversation's Turns
    conversation: Any   # gr.State: its saved id, or None
    header: Any
    selector: Any       # the collection selector (hidden with one collection)
    new: Any            # New conversation
    chatbot: Any
    box: Any            # the question box
    send: Any
    docs_box: Any       # the filters: file globs, dated from, to
    since_box: Any
    until_box: Any
    docs_panel: Any     # the Documents accordion
    uploader: Any
    status: Any         # a change of documents: its lines and outcome
    find: Any
    table: Any          # the documents list
    chosen: Any         # gr.State: the doc_id selected in the list, to remove
    remover: Any
    saved: Any          # the saved Conversations list
    title: Any          # the open conversation's title
    export: Any         # its export link
    renamer: Any
    deleter: Any
    sources: Any        # the sources panel

    @property
    def filters(self) -> list[Any]:
        return [self.docs_box, self.since_box, self.until_box]

    @property
    def conversation_parts(self) -> list[Any]:
        """What a question, a new conversation or a deletion writes: the chat and its conversation."""
        return [self.chatbot, self.box, self.sources, self.turns, self.conversation, self.saved, self.title,
                self.export]

    @property
    def collection_parts(self) -> list[Any]:
        """What showing another collection writes (`Chat.view`): header, documents, examples."""
        return [self.header, self.docs_panel, self.table, self.chatbot,
                *([self.chosen, self.remover] if self.remover is not None else [])]

    @property
    def change_parts(self) -> list[Any]:
        """What a change of documents writes (`Chat.change`)."""
        return [self.status, self.table, self.header, self.docs_panel, self.sources]


def build_layout(settings: Settings, served: Sequence[Collection], examples: Sequence[str], saving: Saving,
                 can_change: bool, why_not: str) -> Page:
    """Make the page's components inside the open `gr.Blocks`, over the first of `served`."""
    loaded = served[0].index
    parts: dict[str, Any] = {"turns": gr.State([]), "conversation": gr.State(None)}
    with gr.Row(elem_id="qa-top", equal_height=True):
        parts["header"] = gr.HTML(header_html(loaded), js_on_load=None, scale=10)
        parts["selector"] = gr.Dropdown(choices=[c.name for c in served], value=served[0].name, label="Collection",
                                        interactive=True, visible=len(served) > 1, scale=2, min_width=180,
                                        elem_id="qa-collection")
        parts["new"] = gr.Button("New conversation", variant="secondary", size="md", scale=0,
                                 min_width=170, elem_id="qa-new")
    with gr.Row(equal_height=False, elem_id="qa-main"):
        with gr.Column(scale=3, min_width=420, elem_id="qa-chat-col"):
            parts |= _chat(settings, examples)
            parts |= _documents(settings, loaded, can_change, why_not)
            parts |= dict(zip(("saved", "title", "export", "renamer", "deleter"), conversations_panel(saving),
                              strict=True))
        with gr.Column(scale=2, min_width=340, elem_id="qa-sources-col"):
            parts["sources"] = gr.HTML(corpus_html(loaded), elem_id="qa-sources", js_on_load=static_text("cite.js"),
                                       padding=False)
    return Page(**parts)


def _chat(settings: Settings, examples: Sequence[str]) -> dict[str, Any]:
    """The Chatbot, the question box and the document filters."""
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
        examples=example_messages(examples),
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
    return {"chatbot": chatbot, "box": box, "send": send, "docs_box": docs_box, "since_box": since_box,
            "until_box": until_box}


def _documents(settings: Settings, loaded: Index, can_change: bool, why_not: str) -> dict[str, Any]:
    """The Documents panel: uploads (or why not), a change's status, Find, the list, Remove."""
    uploader = remover = None
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
        # Filled when the page loads (see `Chat.refresh`), from rows made once per index.
        table = gr.Dataframe(value=[], label="Documents", headers=DOC_HEADERS,
                             datatype="str", interactive=False, wrap=True, max_height=360,
                             column_widths=["29%", "25%", "13%", "9%", "10%", "14%"],
                             elem_id="qa-docs-table")
        chosen = gr.State(None)
        if can_change:
            remover = gr.Button(REMOVE_LABEL, variant="stop", size="sm", interactive=False, elem_id="qa-remove")
    return {"docs_panel": docs_panel, "uploader": uploader, "status": status, "find": find, "table": table,
            "chosen": chosen, "remover": remover}
