"""The chat server's request guard (ASGI middleware), in front of every route: Gradio's upload
route refused when uploads are off, request bodies over their limit refused before they are
parsed, and API bodies checked against the event they name (`check_event_body`).
"""

from __future__ import annotations

import inspect
import json
import posixpath
import re
from collections.abc import Callable, Mapping
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from qa.web.openai_api import error_body

# A request body larger than this is refused: a question of 2,000 characters and a long
# conversation are a few KiB; a 10,000-turn history is megabytes of JSON to parse for nothing.
MAX_REQUEST_BYTES = 256 * 1024
# An oversized body up to this size is read and dropped before the 413 is sent.
DRAIN_BYTES = 8 * 1024 * 1024


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



async def _plain(send: Send, status: int, text: str, api: bool = False) -> None:
    """Refuse with one line of text, or for the OpenAI-compatible API, its JSON error object."""
    code = "request_too_large" if status == 413 else None
    body = (json.dumps(error_body(text, code=code)) if api else text + "\n").encode("utf-8")
    kind = b"application/json" if api else b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", kind),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

