"""The OpenAI-compatible API (qa/web/openai_api.py), driven by the official `openai` package and by
raw HTTP against a real server (conftest's `qa_server`: two collections, a key, logins)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import openai
import pytest

from qa.config import Settings

from .conftest import API_KEY, NOTES, SEEDS, QaServer

QUESTION = "Where is TikTok's US user data stored?"


@pytest.fixture(scope="module")
def client(qa_server: QaServer) -> Any:
    return openai.OpenAI(base_url=qa_server.url + "v1", api_key=API_KEY, max_retries=0, timeout=60)


def _source(collection_corpus: Path, doc_id: str) -> str:
    return (collection_corpus / doc_id).read_text(encoding="utf-8")


def test_the_openai_client_gets_cited_answers_streamed_or_not_and_follow_ups(client: Any) -> None:
    assert [m.id for m in client.models.list()] == ["seeds", "notes"]

    completion = client.chat.completions.create(model="seeds", messages=[{"role": "user", "content": QUESTION}])
    content = completion.choices[0].message.content
    extra = completion.model_extra["qa"]
    assert completion.model == "seeds" and completion.choices[0].finish_reason == "stop"
    assert "Virginia" in content and "[1]" in content and "\n\nSources:\n- [1] " in content
    assert extra["status"] == "answered" and extra["collection"] == "seeds" and extra["citations"]
    for c in extra["citations"]:
        assert _source(SEEDS, c["doc_id"])[c["start"]:c["end"]] == c["quote"]   # verbatim, at its offsets
        assert c["quote"] in content and f"{c['doc_id']}, chars {c['start']}-{c['end']}" in content
        assert f"qa/file?doc={c['doc_id']}&collection=seeds>" in content          # a link to the original
    assert completion.usage.completion_tokens > 0

    # Streamed: the same text in pieces, the structure on the last chunk, usage when asked.
    stream = client.chat.completions.create(model="seeds", messages=[{"role": "user", "content": QUESTION}],
                                            stream=True, stream_options={"include_usage": True})
    received = list(stream)
    with_choice = [c for c in received if c.choices]
    assert len(with_choice) > 3 and with_choice[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in with_choice) == content
    assert with_choice[-1].choices[0].finish_reason == "stop"
    assert with_choice[-1].model_extra["qa"]["citations"] == extra["citations"]
    assert received[-1].usage is not None and received[-1].usage.total_tokens > 0

    # A follow-up that only makes sense after the first question.
    follow = client.chat.completions.create(model="seeds", messages=[
        {"role": "system", "content": "You are a helpful assistant."},   # accepted and ignored
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": content},
        {"role": "user", "content": [{"type": "text", "text": "And where is the backup kept?"}]},
    ])
    assert "Singapore" in follow.choices[0].message.content and "[1]" in follow.choices[0].message.content

    # An abstention is a normal reply that says so.
    abstained = client.chat.completions.create(model="seeds", messages=[
        {"role": "user", "content": "How old is Roland Cloutier?"}])
    said = abstained.choices[0].message.content
    assert abstained.model_extra["qa"]["status"] == "abstained" and not abstained.model_extra["qa"]["citations"]
    assert said.startswith("The documents don't say.") and "[1]" not in said and "Related reading" in said


def test_each_collection_answers_from_its_own_documents(client: Any) -> None:
    ferry = "When does the night ferry to Kiel leave Oslo?"
    notes = client.chat.completions.create(model="notes", messages=[{"role": "user", "content": ferry}])
    cited = {c["doc_id"] for c in notes.model_extra["qa"]["citations"]}
    assert "14:00" in notes.choices[0].message.content and cited == {"ferry.txt"}
    seeds = client.chat.completions.create(model="seeds", messages=[{"role": "user", "content": ferry}])
    assert "14:00" not in seeds.choices[0].message.content
    assert not {c["doc_id"] for c in seeds.model_extra["qa"]["citations"]} & set(NOTES)
    tiktok = client.chat.completions.create(model="notes", messages=[{"role": "user", "content": QUESTION}])
    assert "Virginia" not in tiktok.choices[0].message.content
    assert {c["doc_id"] for c in tiktok.model_extra["qa"]["citations"]} <= set(NOTES)


def test_a_wrong_or_missing_key_gets_401_in_openai_shape(qa_server: QaServer) -> None:
    wrong = openai.OpenAI(base_url=qa_server.url + "v1", api_key="not-the-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        wrong.chat.completions.create(model="seeds", messages=[{"role": "user", "content": QUESTION}])
    assert refused.value.status_code == 401 and refused.value.code == "invalid_api_key"
    assert "Incorrect API key" in refused.value.message
    for path, body in (("v1/models", None), ("v1/chat/completions", b"{}")):
        status, error = _call(qa_server.url + path, body, key=None)
        assert status == 401 and error["code"] == "invalid_api_key" and "Authorization: Bearer" in error["message"]


def _call(url: str, body: bytes | None, key: str | None = API_KEY, method: str | None = None) -> tuple[int, Any]:
    """A raw request: (status, the JSON error object, or the whole JSON reply when it succeeds)."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        data = json.loads(refused.read())
        assert set(data) == {"error"} and set(data["error"]) == {"message", "type", "param", "code"}
        assert "\n" not in data["error"]["message"] and "Traceback" not in data["error"]["message"]
        return refused.code, data["error"]


def _chat(messages: Any, **more: Any) -> bytes:
    return json.dumps({"model": "seeds", "messages": messages, **more}).encode()


@pytest.mark.parametrize("path, body, status, message", [
    ("v1/chat/completions", b"where is the data", 400, "The request body is not JSON."),
    ("v1/chat/completions", b"[]", 400, "must be a JSON object"),
    ("v1/chat/completions", json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode(), 400,
     "model is missing: name the collection to answer from (seeds, notes)."),
    ("v1/chat/completions", json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).encode(),
     404, "The model 'gpt-4o' does not exist here"),
    ("v1/chat/completions", _chat([]), 400, "messages must be a non-empty list"),
    ("v1/chat/completions", _chat([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}]), 400,
     "The last message is the assistant's; it must be the user's question."),
    ("v1/chat/completions", _chat([{"role": "robot", "content": "hi"}]), 400, "messages[0] is not a message"),
    ("v1/chat/completions", _chat([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]),
     400, "qa reads text only"),
    ("v1/chat/completions", _chat([{"role": "user", "content": 42}]), 400, "must be a string or a list of text parts"),
    ("v1/chat/completions", _chat([{"role": "user", "content": "where is it? " * 400}]), 400, "the limit is 2,000"),
    ("v1/chat/completions", _chat([{"role": "user", "content": "   "}]), 400, "The question is empty"),
    ("v1/chat/completions", _chat([{"role": "user", "content": "hi"}] * 1001), 400, "the limit is 1,000"),
    ("v1/chat/completions", _chat([{"role": "user", "content": "hi"}], stream="yes"), 400, "stream must be true"),
    ("v1/chat/completions", _chat([{"role": "user", "content": "x" * 1000}] * 300), 413, "Request too large"),
    ("v1/chat/completions", None, 405, "/v1/chat/completions takes POST, not GET."),
    ("v1/embeddings", b"{}", 404, "There is no /v1/embeddings here"),
    ("v1/models/gpt-4o", None, 404, "The model 'gpt-4o' does not exist here"),
])
def test_bad_requests_get_openai_errors_that_say_what_to_do(qa_server: QaServer, path: str, body: bytes | None,
                                                          status: int, message: str) -> None:
    got, error = _call(qa_server.url + path, body)
    assert got == status and message in error["message"], error


def test_past_the_waiting_limit_requests_get_429(qa_server: QaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import qa.web.openai_api

    monkeypatch.setattr(qa.web.openai_api, "MAX_WAITING", 0)   # as if 256 requests were in line
    status, error = _call(qa_server.url + "v1/chat/completions", _chat([{"role": "user", "content": QUESTION}]))
    assert status == 429 and error["type"] == "rate_limit_error" and "try again" in error["message"]
    monkeypatch.undo()
    status, reply = _call(qa_server.url + "v1/models/notes", None)
    assert status == 200 and reply["id"] == "notes" and reply["qa"]["documents"] >= 2


@pytest.mark.parametrize("changes, open_", [
    ({}, True),                                                      # loopback, no login: no key needed
    ({"api_key": API_KEY}, True),
    ({"host": "0.0.0.0"}, False),                                    # beyond loopback: a key is required
    ({"host": "0.0.0.0", "api_key": API_KEY}, True),
    ({"auth_user": "ana", "auth_password": "pw"}, False),            # the page has a login: so must the API
    ({"logins": ("ana:pw",)}, False),
])
def test_the_api_is_off_beyond_loopback_or_behind_a_login_without_a_key(settings: Settings, changes: dict[str, Any],
                                                                         open_: bool) -> None:
    from qa.web.openai_api import api_access

    allowed, why = api_access(settings.replace(**changes))
    assert allowed is open_ and (why == "" if open_ else "Set api_key" in why)


def test_a_short_api_key_is_refused(settings: Settings) -> None:
    from qa.errors import SettingsError

    with pytest.raises(SettingsError, match="use at least 16"):
        settings.replace(api_key="secret")
