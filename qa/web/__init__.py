"""The web chat: a Gradio 6 app over one or more collections (`build_app`) and its server (`serve`).

Each collection (qa/collections.py: a corpus and its index) is loaded at start-up and shared by
every session, as is the encoder inside `qa.answer`; the queue runs `settings.concurrency`
questions at once. Each session keeps its open conversation (`Turn`s) in `gr.State`, and the
conversation is saved as it goes (qa/conversations.py, qa/web/saved.py: on loopback or
behind a login, each login's apart); the chat shows HTML rendered by `qa.web.html`, where all
document and user text is escaped, so the Chatbot runs with Markdown off and its sanitizer on.

Documents can be added (uploaded) and removed in the page (`qa.manage`), in the collection the
selector shows: each change updates its index incrementally and then replaces the index the chat
answers from (`qa.live.LiveIndex`) in one step, so a question is answered wholly from the old
index or wholly from the new one. Uploads and removals are on only when the chat is served on
this machine's loopback address or behind a login (`uploads_allowed`); otherwise Gradio's upload
route is refused outright.

Besides the page, these HTTP endpoints are public: `/ask` (question, history) -> the JSON of
`qa ask --json` (from the first collection); the OpenAI-compatible `/v1/models` and
`/v1/chat/completions` (qa/web/openai_api.py, behind its own key); and, behind the same login as
the page, `/qa/file?doc=DOC_ID[&collection=NAME]`, a document's original file, looked up by the
doc_id the index has (never by a path), and `/qa/export?conversation=ID`, a saved conversation
as Markdown, for its owner only. The page's own events are private to the page.

Limits: a question of at most `settings.max_question_chars` characters; follow-ups read the
last `settings.history_turns` questions; a conversation holds `MAX_TURNS` questions; a request
body holds at most `MAX_REQUEST_BYTES` (on every route, the OpenAI API's included), an upload
at most `MAX_FILES_PER_ADD` files of `settings.max_file_mb` each.

The package, by concern:
- `layout.py`: the page's components, named once in `Page` (and the theme, the static files);
- `handlers.py`: the page's event handlers (`Chat`), each writing a dict keyed by components;
- `page.py`: `build_app`, the layout with the handlers bound to its events;
- `replies.py`: the next reply of a conversation, the filters, the sources panel, the upload policy;
- `routes.py`: `/qa/file` and its security headers, Gradio's login check, the port probe;
- `middleware.py`: the request guard (upload route, body limits, API bodies checked);
- `server.py`: `serve`.
"""

from __future__ import annotations

from qa.conversations import MAX_TURNS
from qa.web.handlers import Chat, status_html
from qa.web.layout import Page, build_layout, static_text, theme
from qa.web.middleware import DRAIN_BYTES, MAX_REQUEST_BYTES, RequestGuard, check_event_body
from qa.web.page import build_app
from qa.web.replies import (
    EXAMPLE_QUESTIONS,
    answer_or_problem,
    chat_filters,
    history_messages,
    next_reply,
    uploads_allowed,
    working_examples,
)
from qa.web.routes import add_file_route, check_port, gradio_login, original_file
from qa.web.server import serve

__all__ = ["DRAIN_BYTES", "EXAMPLE_QUESTIONS", "MAX_REQUEST_BYTES", "MAX_TURNS", "Chat", "Page", "RequestGuard",
           "add_file_route", "answer_or_problem", "build_app", "build_layout", "chat_filters", "check_event_body",
           "check_port", "gradio_login", "history_messages", "next_reply", "original_file", "serve", "static_text",
           "status_html", "theme", "uploads_allowed", "working_examples"]
