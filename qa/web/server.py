"""`serve`: the chat page, its API, the OpenAI-compatible API and qa's own routes on one port,
behind the request guard (qa/web/middleware.py) and, when set, a login.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from qa.collections import Collection, collection_specs, open_collections
from qa.config import Settings
from qa.conversations import ConversationStore
from qa.errors import QAError
from qa.index import Index
from qa.manage import MAX_FILES_PER_ADD
from qa.web.layout import static_text, theme
from qa.web.middleware import RequestGuard, check_event_body
from qa.web.openai_api import add_openai_routes, api_access
from qa.web.page import build_app
from qa.web.replies import uploads_allowed
from qa.web.routes import add_file_route, check_port, gradio_login
from qa.web.saved import Saving, add_export_route, saving_allowed


def serve(settings: Settings, *, block: bool = True, index: Index | None = None, update: bool = False,
          log_line: Callable[[str], None] | None = None) -> gr.Blocks:
    """Start the chat on `settings.host:settings.port` (127.0.0.1:7860 by default).

    Builds missing indexes first. Serves the page, its API, the OpenAI-compatible API
    (`/v1/...`, qa.web.openai_api), the original files of indexed documents by doc_id (`/qa/file`)
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
    app.queue(default_concurrency_limit=settings.concurrency, max_size=256)
    try:
        app.launch(**launch_options(app, settings, served), quiet=log_line is None)
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


def launch_options(app: gr.Blocks, settings: Settings, served: Sequence[Collection]) -> dict[str, Any]:
    """`app.launch()`'s options: no file folder allowed, the corpora, indexes and database
    blocked outright, uploads sized (or refused) as `uploads_allowed` says, and the request guard."""
    can_change = uploads_allowed(settings)[0]
    upload_bytes = MAX_FILES_PER_ADD * int(settings.max_file_mb * 1024 * 1024) + 1024 * 1024
    database = Path(settings.database).resolve()
    blocked = [str(Path(p).resolve()) for c in served for p in (c.settings.corpus, c.settings.index)]
    blocked += [str(database), f"{database}-wal", f"{database}-shm"]
    return {
        "server_name": settings.host,
        "server_port": settings.port,
        "auth": settings.login_pairs() or None,
        "prevent_thread_lock": True,
        "share": False,
        "show_error": False,
        "footer_links": ["api"],
        "run_history": False,
        "enable_monitoring": False,
        "mcp_server": False,
        "ssr_mode": False,
        "pwa": False,
        "allowed_paths": None,
        "blocked_paths": blocked,
        "max_file_size": int(settings.max_file_mb * 1024 * 1024) if can_change else 1,
        "theme": theme(),
        "css": static_text("chat.css"),
        "app_kwargs": {"middleware": [Middleware(RequestGuard, uploads=can_change, upload_bytes=upload_bytes,
                                                 check=functools.partial(check_event_body, app.fns))]},
    }
