"""The OpenAI-compatible chat API, served beside the chat: `GET /v1/models` and
`POST /v1/chat/completions` (streaming or not), for the clients people already use (the
`openai` package, Open WebUI, LibreChat, editor plug-ins).

- **Models are collections.** `/v1/models` lists each collection the server holds; a request's
  `model` names the one to answer from.
- **A request** is the standard body: `messages` (`system`, `developer`, `user`, `assistant`,
  `tool`; content a string or text parts) and `stream`. The last message is the question and
  must be the user's; the user's earlier messages are the history a follow-up reads (the last
  `settings.history_turns`). System prompts, sampling options and tools are accepted and
  ignored: the answer is made of quotes, not generated.
- **The reply's `content`** is the cited answer: quotes with `[n]` markers, then a Sources list
  (title, page, file, characters, a link to the original), or for an abstention, the plain
  statement and related reading. The structured answer (citations with doc_id, offsets, quote,
  page and short-answer span; status; related reading) is in the extra top-level field `qa`,
  which clients may ignore (with the `openai` package: `completion.model_extra["qa"]`).
- **Streaming** sends the reply as server-sent events of `chat.completion.chunk` objects (the
  `qa` field rides on the last), then `data: [DONE]`; the answer is composed whole first, so
  every error is an HTTP status, never a broken stream.
- **Errors** have OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`: 400 bad
  body, 401 missing or wrong key, 403 API off, 404 unknown model or route, 405, 413 body too
  large, 429 too many waiting, 503 index unusable or busy, 500 a bug (logged).
- **Access.** With `settings.api_key` set, every request needs `Authorization: Bearer <key>`
  (compared in constant time). Without one, the API answers only when the server listens on a
  loopback address and the chat has no login; otherwise it is off (403) until a key is set.
- **Limits**, as for the chat: a body of at most 256 KiB (413 before it is parsed, qa/web/middleware.py),
  a question of `settings.max_question_chars`, at most `MAX_MESSAGES` messages, and
  `settings.concurrency` answers at once with at most `MAX_WAITING` requests waiting (429 past
  that, 503 after `WAIT_S` seconds in line).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from qa.answers import answer, answer_to_json
from qa.collections import Collection, by_name
from qa.config import Settings, is_loopback
from qa.errors import QAError, QueryError
from qa.tokens import count_tokens
from qa.types import Answer
from qa.web.html import file_href

log = logging.getLogger(__name__)

MAX_MESSAGES = 1000     # messages in one request (the body limit, 256 KiB, binds first in practice)
MAX_WAITING = 256       # requests answered or waiting at once (the chat's queue holds as many)
WAIT_S = 120.0          # the longest a request waits for an answer slot
STREAM_PIECE_CHARS = 120  # a streamed reply is sent in pieces of about this many characters
ROLES = ("system", "developer", "user", "assistant", "tool")
ROUTES = {"/v1/models": ("GET",), "/v1/chat/completions": ("POST",)}


class ApiProblem(Exception):
    """A request the API refuses: its HTTP status and OpenAI error fields."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.param = status, message, kind, code, param

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else {}
        if self.status == 429:
            headers["Retry-After"] = "1"
        return JSONResponse(error_body(self.message, self.kind, self.code, self.param), status_code=self.status,
                            headers=headers)


def error_body(message: str, kind: str = "invalid_request_error", code: str | None = None,
               param: str | None = None) -> dict[str, Any]:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass(frozen=True)
class ChatCall:
    """A chat completion request, read and checked."""

    collection: Collection
    question: str
    history: list[dict[str, str]]
    stream: bool
    include_usage: bool


def api_access(settings: Settings) -> tuple[bool, str]:
    """Whether the API may answer (with the key when one is set), and if not, the line that says why."""
    if settings.api_key:
        return True, ""
    if not is_loopback(settings.host):
        return False, (f"The OpenAI-compatible API is off: this server listens on {settings.host} and no api_key "
                       "is set. Set api_key (16 characters or more) in the settings, or serve on 127.0.0.1.")
    if settings.login_pairs():
        return False, ("The OpenAI-compatible API is off: the chat has a login and the API has no key. Set api_key "
                       "(16 characters or more) in the settings.")
    return True, ""


def check_key(settings: Settings, authorization: str | None) -> None:
    """Refuse a request the access rules do not let through.

    Raises:
        ApiProblem: 403 when the API is off, 401 when the key is missing or wrong.
    """
    allowed, why = api_access(settings)
    if not allowed:
        raise ApiProblem(403, why, "permission_error", "api_off")
    if not settings.api_key:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise ApiProblem(401, "No API key was sent. Send the header `Authorization: Bearer <key>` with this server's "
                              "api_key (the openai package: api_key=...).", code="invalid_api_key")
    if not hmac.compare_digest(given.strip().encode("utf-8"), settings.api_key.strip().encode("utf-8")):
        raise ApiProblem(401, "Incorrect API key. Send this server's api_key as `Authorization: Bearer <key>`.",
                         code="invalid_api_key")


def read_call(body: bytes, collections: Sequence[Collection]) -> ChatCall:
    """The chat completion request in `body`.

    Raises:
        ApiProblem: 400 for a body that is not a chat request (saying which field is wrong and
            what it must be), 404 for a model that is not a collection here.
    """
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise ApiProblem(400, 'The request body is not JSON. Send {"model": ..., "messages": [...]}.') from None
    if not isinstance(data, dict):
        raise ApiProblem(400, 'The request body must be a JSON object: {"model": ..., "messages": [...]}.')
    names = ", ".join(c.name for c in collections)
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise ApiProblem(400, f"model is missing: name the collection to answer from ({names}).", param="model")
    collection = by_name(collections, model)
    if collection is None:
        raise ApiProblem(404, f"The model {model[:80]!r} does not exist here: the models are this server's collections "
                              f"({names}); GET /v1/models lists them.", code="model_not_found", param="model")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiProblem(400, 'messages must be a non-empty list of {"role", "content"} messages, the question last.',
                         param="messages")
    if len(messages) > MAX_MESSAGES:
        raise ApiProblem(400, f"messages holds {len(messages):,} messages; the limit is {MAX_MESSAGES:,}. Send the "
                              "recent part of the conversation.", param="messages")
    texts = [_message(m, i) for i, m in enumerate(messages)]
    role, question = texts[-1]
    if role != "user":
        raise ApiProblem(400, f"The last message is the {role}'s; it must be the user's question.", param="messages")
    stream = data.get("stream", False)
    options = data.get("stream_options") or {}
    if not isinstance(stream, bool) or not isinstance(options, dict):
        raise ApiProblem(400, "stream must be true or false, and stream_options an object.", param="stream")
    history = [{"role": r, "content": t} for r, t in texts[:-1] if r in ("user", "assistant")]
    return ChatCall(collection, question, history, stream, options.get("include_usage") is True)


def _message(message: Any, position: int) -> tuple[str, str]:
    """(role, text) of one message."""
    if not isinstance(message, Mapping) or message.get("role") not in ROLES:
        raise ApiProblem(400, f'messages[{position}] is not a message: send {{"role", "content"}} with role one of '
                              f"{', '.join(ROLES)}.", param=f"messages[{position}]")
    content = message.get("content")
    if content is None or isinstance(content, str):
        return message["role"], content or ""
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif not (isinstance(part, Mapping) and message["role"] != "user"):
                kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
                raise ApiProblem(400, f"messages[{position}] has a content part of type {str(kind)[:40]!r}; qa reads "
                                      'text only: send a string or {"type": "text", "text": ...} parts.',
                                 param=f"messages[{position}].content")
        return message["role"], "\n".join(texts)
    raise ApiProblem(400, f"messages[{position}].content must be a string or a list of text parts.",
                     param=f"messages[{position}].content")


def reply_content(reply: Answer, base_url: str, collection: str | None = None) -> str:
    """The reply's text for a chat client: the answer with its `[n]` markers, then its sources
    (or related reading), each with a link to the original file (in `collection`, when the
    server has several)."""
    def link(doc_id: str, page: int | None) -> str:
        return f"<{base_url}{file_href(doc_id, page, collection)}>"

    lines = [reply.text.strip()]
    if reply.citations:
        lines += ["", "Sources:"]
        for c in reply.citations:
            page = f", p. {c.page}" if c.page is not None else ""
            lines.append(f"- [{c.n}] {c.title or c.doc_id}{page} ({c.doc_id}, chars {c.start}-{c.end}): "
                         f"{link(c.doc_id, c.page)}")
    if reply.related:
        lines += ["", "Related reading (the closest passages; they do not answer the question):"]
        lines += [f"- {p.title or p.doc_id} ({p.doc_id}, chars {p.start}-{p.end}): {link(p.doc_id, p.page)}"
                  for p in reply.related]
    return "\n".join(lines)


def structured(reply: Answer, collection: str) -> dict[str, Any]:
    """The extra `qa` field: the answer's structure (as `qa ask --json`, less the passages)."""
    data = answer_to_json(reply)
    data.pop("passages", None)
    return {"collection": collection, **data}


def completion(call: ChatCall, reply: Answer, content: str) -> dict[str, Any]:
    """A `chat.completion` object."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
        "model": call.collection.name,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": usage(call, content),
        "qa": structured(reply, call.collection.name),
    }


def usage(call: ChatCall, content: str) -> dict[str, int]:
    """Tokens (cl100k_base) of what was read (the question and the earlier questions a follow-up
    reads) and of the reply."""
    asked = [m["content"] for m in call.history if m["role"] == "user"][-call.collection.settings.history_turns:]
    prompt = sum(count_tokens(t[:4000]) for t in [*asked, call.question])
    written = count_tokens(content)
    return {"prompt_tokens": prompt, "completion_tokens": written, "total_tokens": prompt + written}


def chunks(call: ChatCall, reply: Answer, content: str) -> list[dict[str, Any]]:
    """The `chat.completion.chunk` objects of a streamed reply, in order (the `qa` field on the
    last one that has a choice; a usage chunk after it when asked)."""
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": call.collection.name}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": piece}) for piece in pieces(content)]
    out.append({**chunk({}, "stop"), "qa": structured(reply, call.collection.name)})
    if call.include_usage:
        out.append({**base, "choices": [], "usage": usage(call, content)})
    return out


def pieces(text: str, size: int = STREAM_PIECE_CHARS) -> list[str]:
    """`text` cut after whitespace into pieces of about `size` characters ("".join gives it back)."""
    out, start = [], 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            cut = max(text.rfind(" ", start, end), text.rfind("\n", start, end))
            end = cut + 1 if cut > start else end
        out.append(text[start:end])
        start = end
    return out


class OpenAIApi:
    """The API's routes over the served `collections`, answering `settings.concurrency` at once."""

    def __init__(self, collections: Sequence[Collection], settings: Settings) -> None:
        self.collections = list(collections)
        self.settings = settings
        self._slots: asyncio.Semaphore | None = None
        self._holding = 0   # requests answered or waiting now

    async def models(self, request: Request) -> Response:
        try:
            check_key(self.settings, request.headers.get("authorization"))
        except ApiProblem as problem:
            return problem.response()
        return JSONResponse({"object": "list", "data": [self._model(c) for c in self.collections]})

    async def model(self, request: Request) -> Response:
        try:
            check_key(self.settings, request.headers.get("authorization"))
        except ApiProblem as problem:
            return problem.response()
        name = request.path_params.get("model", "")
        found = by_name(self.collections, name)
        if found is None:
            return ApiProblem(404, f"The model {name[:80]!r} does not exist here; GET /v1/models lists them.",
                              code="model_not_found").response()
        return JSONResponse(self._model(found))

    def _model(self, collection: Collection) -> dict[str, Any]:
        index = collection.index
        try:
            created = int(datetime.fromisoformat(str(index.manifest.created)).timestamp())
        except ValueError:
            created = 0
        return {"id": collection.name, "object": "model", "created": created, "owned_by": "qa",
                "qa": {"documents": len(index.documents)}}

    async def chat_completions(self, request: Request) -> Response:
        try:
            check_key(self.settings, request.headers.get("authorization"))
            call = read_call(await request.body(), self.collections)
            reply = await self._answer(call)
        except ApiProblem as problem:
            return problem.response()
        named = call.collection.name if len(self.collections) > 1 else None
        content = reply_content(reply, str(request.base_url), named)
        if not call.stream:
            return JSONResponse(completion(call, reply, content))
        events = chunks(call, reply, content)

        async def sent() -> AsyncIterator[str]:
            for event in events:
                yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(sent(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def elsewhere(self, request: Request) -> Response:
        path = request.url.path.rstrip("/")
        if path in ROUTES:
            return ApiProblem(405, f"{path} takes {' or '.join(ROUTES[path])}, not {request.method}.",
                              code="method_not_allowed").response()
        return ApiProblem(404, f"There is no {request.url.path[:80]} here: this server has GET /v1/models and "
                               "POST /v1/chat/completions.", code="unknown_url").response()

    async def _answer(self, call: ChatCall) -> Answer:
        if self._holding >= MAX_WAITING:
            raise ApiProblem(429, f"{MAX_WAITING} requests are being answered or waiting; try again in a moment.",
                             "rate_limit_error", "rate_limit_exceeded")
        self._slots = self._slots or asyncio.Semaphore(self.settings.concurrency)
        self._holding += 1
        try:
            try:
                await asyncio.wait_for(self._slots.acquire(), WAIT_S)
            except TimeoutError:
                raise ApiProblem(503, f"No answer slot came free within {WAIT_S:.0f} s; try again later.",
                                 "server_error", "busy") from None
            try:
                return await asyncio.to_thread(self._work, call)
            finally:
                self._slots.release()
        finally:
            self._holding -= 1

    def _work(self, call: ChatCall) -> Answer:
        collection = call.collection
        try:
            index = collection.live.get()[0]
            return answer(call.question, call.history, index=index, settings=collection.settings)
        except QueryError as exc:
            raise ApiProblem(400, str(exc), param="messages") from None
        except QAError as exc:
            raise ApiProblem(503, str(exc), "server_error", "index_unavailable") from None
        except Exception:
            log.exception("Unexpected error while answering through the OpenAI-compatible API")
            raise ApiProblem(500, "Internal error while answering; the server log has the details.",
                             "server_error") from None


def add_openai_routes(server: Any, collections: Sequence[Collection], settings: Settings) -> OpenAIApi:
    """Serve the API on `server` (Gradio's FastAPI app) over `collections`; returns it."""
    api = OpenAIApi(collections, settings)
    add = server.add_api_route
    add("/v1/models", api.models, methods=["GET"], include_in_schema=False)
    add("/v1/models/{model}", api.model, methods=["GET"], include_in_schema=False)
    add("/v1/chat/completions", api.chat_completions, methods=["POST"], include_in_schema=False)
    add("/v1/{rest:path}", api.elsewhere, methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    return api
