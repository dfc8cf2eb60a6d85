"""The chat page: its layout (qa/web/layout.py) with the handlers (qa/web/handlers.py) bound to
its events, each event's outputs named from the groups `Page` defines.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import gradio as gr

from qa.collections import Collection, open_collections
from qa.config import Settings
from qa.conversations import ConversationStore
from qa.index import Index
from qa.manage import document_rows
from qa.web.handlers import Chat
from qa.web.layout import Page, build_layout
from qa.web.replies import uploads_allowed, working_examples
from qa.web.saved import Saving, saving_allowed


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
    examples = {c.name: working_examples(c.index, c.settings) for c in served}
    can_change, why_not = uploads_allowed(settings)
    with gr.Blocks(title="qa · cited answers", analytics_enabled=False) as app:
        page = build_layout(settings, served, examples[served[0].name], saving, can_change, why_not)
        chat = Chat(page, served, saving, examples, can_change)
        _bind(app, page, chat, saving.on)
        gr.api(chat.ask, api_name="ask")
    return app


def _bind(app: gr.Blocks, page: Page, chat: Chat, saving: bool) -> None:
    """Bind the handlers to the page's events (all private to the page: only /ask is an API)."""
    p, talk = page, chat.talk
    private: dict[str, Any] = {"api_visibility": "private"}
    quick: dict[str, Any] = {**private, "queue": False}   # no model work: answered at once, outside the queue
    outputs = p.conversation_parts
    asked = [p.turns, p.conversation, p.selector, *p.filters]
    # A question sent while the last one is still finishing runs after it ("always_last"),
    # rather than being dropped as Gradio's default ("once") would.
    gr.on([p.box.submit, p.send.click], chat.respond, inputs=[p.box, *asked], outputs=outputs,
          show_progress="minimal", show_progress_on=[p.chatbot], trigger_mode="always_last", **private)
    p.chatbot.example_select(chat.respond_example, inputs=asked, outputs=outputs, show_progress="minimal",
                             show_progress_on=[p.chatbot], **private)
    p.chatbot.like(talk.vote, inputs=[p.turns, p.conversation, p.selector], outputs=None, **quick)
    gr.on([p.new.click, p.chatbot.clear], talk.new, inputs=[p.selector], outputs=outputs, **quick)
    p.selector.input(talk.switch, inputs=[p.selector, p.find], outputs=[*outputs, *p.collection_parts], **quick)
    if saving:
        p.saved.input(talk.open, inputs=[p.saved, p.find], outputs=[*outputs, *p.collection_parts, p.selector],
                      **quick)
        p.title.submit(talk.rename, inputs=[p.conversation, p.title], outputs=[p.title, p.saved], **quick)
        p.renamer.click(talk.rename, inputs=[p.conversation, p.title], outputs=[p.title, p.saved], **quick)
        p.deleter.click(talk.delete, inputs=[p.conversation, p.selector], outputs=outputs, **quick)
    app.load(chat.refresh, inputs=[p.find], outputs=[p.table, p.header, p.docs_panel, p.sources, p.saved], **quick)
    p.find.change(chat.doc_rows, inputs=[p.find, p.selector], outputs=[p.table], trigger_mode="always_last",
                  **quick)
    if p.uploader is not None:
        # One change of documents at a time, queued in the order asked (one concurrency id).
        one_change: dict[str, Any] = {**private, "concurrency_limit": 1, "concurrency_id": "qa-change",
                                      "show_progress": "minimal", "show_progress_on": [p.status]}
        p.uploader.upload(chat.upload, inputs=[p.uploader, p.find, p.turns, p.selector],
                          outputs=[*p.change_parts, p.uploader], **one_change)
        p.table.select(chat.pick, inputs=[p.selector], outputs=[p.chosen, p.remover], **quick)
        p.remover.click(chat.remove, inputs=[p.chosen, p.find, p.turns, p.selector],
                        outputs=[*p.change_parts, p.chosen, p.remover], **one_change)
