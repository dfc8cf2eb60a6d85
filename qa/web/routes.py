"""The chat server's own HTTP routes beside the page, and the checks made before serving:
`/qa/file` (a document's original file, found by doc_id, with its security headers) behind
Gradio's login check, and the port probe that fails early in one line. The export route of saved
conversations is in qa/web/saved.py, the OpenAI-compatible API in qa/web/openai_api.py.
"""

from __future__ import annotations

import errno
import hashlib
import inspect
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import gradio as gr
from starlette.responses import Response

from qa.collections import Collection, by_name
from qa.errors import QAError
from qa.formats import serving
from qa.index import Index
from qa.manage import inside


def plain_response(status: int, text: str) -> Response:
    """A refusal as one line of text, never cached and never sniffed as another type."""
    return Response(text + "\n", status_code=status, media_type="text/plain; charset=utf-8",
                    headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


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
            return plain_response(404, f"No collection {collection[:80]!r} here.")
        try:
            index = chosen.live.get()[0]
        except QAError as exc:
            return plain_response(503, str(exc))
        return original_file(index, doc)

    app.server_app.add_api_route("/qa/file", original, methods=["GET"], dependencies=[check],
                                 include_in_schema=False)


# A format a browser renders as a page is served in a sandbox (no script runs, no request
# leaves, no cookie is read); qa.formats says which formats, and each suffix's media type.
_SANDBOX = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def original_file(index: Index, doc_id: str) -> Response:
    """The HTTP response for a document's original file: found by `doc_id` in `index`, read from
    inside its corpus, and sent only while its sha256 is the one indexed."""
    if not doc_id or doc_id not in index.documents:
        return plain_response(404, f"No document {doc_id[:200]!r} in the index.")
    info = index.documents[doc_id]
    try:
        path = inside(Path(index.manifest.corpus), doc_id)
        raw = path.read_bytes()
    except QAError as exc:
        return plain_response(404, str(exc))
    except OSError as exc:
        return plain_response(404, f"{doc_id} cannot be read from the corpus ({exc.strerror}); run `qa index`.")
    if hashlib.sha256(raw).hexdigest() != info.sha256:
        return plain_response(409, f"{doc_id} changed since it was indexed; run `qa index` to bring the index up "
                                   "to date.")
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
