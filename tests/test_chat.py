"""Follow-up questions become standalone retrieval queries; the history is validated and bounded."""

from __future__ import annotations

import time

import pytest

from qa.chat import MAX_CONTEXT_WORDS, is_follow_up, standalone_query, user_turns
from qa.errors import QueryError

FIRST = "Where is TikTok's US user data stored?"
HISTORY = [{"role": "user", "content": FIRST}, {"role": "assistant", "content": "In Virginia [1]."}]


def resolve(question: str, history: list) -> str:
    return standalone_query(question, user_turns(history))


def test_standalone_questions_are_left_alone() -> None:
    assert resolve("How many accounts did TikTok remove?", HISTORY) == "How many accounts did TikTok remove?"
    assert resolve(FIRST, []) == FIRST


def test_elliptical_follow_up_carries_the_previous_subject() -> None:
    query = resolve("And where is the backup kept?", HISTORY)
    assert query.startswith("And where is the backup kept?") and "TikTok" in query and "data" in query


def test_what_about_swaps_the_subject() -> None:
    assert resolve("What about Facebook?", HISTORY) == "Where is Facebook's US user data stored?"


def test_pronoun_follow_ups_chain_across_turns() -> None:
    history = [*HISTORY, {"role": "user", "content": "What about Facebook?"}, {"role": "assistant", "content": "…"}]
    assert "Facebook" in resolve("Is it encrypted there?", history)
    assert is_follow_up("Why?") and not is_follow_up("Who is Brendan Carr?")


def test_history_formats() -> None:
    parts = [{"role": "user", "content": [{"type": "text", "text": "Hi there"}]},
             {"role": "assistant", "content": None}, {"role": "user", "content": "plain question"}]
    assert user_turns(parts) == ["Hi there", "plain question"]
    assert user_turns(None) == [] and user_turns([]) == []


@pytest.mark.parametrize("history", ["a string read character by character", b"bytes", 42,
                                     ["plain strings are not messages"], [{"content": "no role"}],
                                     [{"role": "user"}], [{"role": "user", "content": {"image": "x.png"}}]])
def test_anything_but_messages_is_refused(history) -> None:
    with pytest.raises(QueryError, match="History|history"):
        user_turns(history)


def test_only_the_last_turns_are_read() -> None:
    history = []
    for i in range(10_000):
        history += [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": "answer"}]
    history[0] = "malformed, but older than what is read"
    assert user_turns(history, limit=8) == [f"question {i}" for i in range(9_992, 10_000)]
    assert user_turns(history, limit=3) == ["question 9997", "question 9998", "question 9999"]
    assert user_turns([{"role": "user", "content": "x" * 5000}], max_chars=100) == ["x" * 100]


def test_resolution_is_linear_in_the_turns() -> None:
    # A chain of follow-ups keeps a bounded context, so each turn costs the same.
    def chain(n: int) -> float:
        turns = [FIRST] + ["And why is that so important to them?"] * n
        started = time.perf_counter()
        query = standalone_query("And what about the backup?", turns)
        assert len(query.split()) <= MAX_CONTEXT_WORDS + 10
        return time.perf_counter() - started

    chain(50)
    small, large = chain(200), chain(2000)
    assert large < 20 * small + 0.05   # 10x the turns: about 10x the time, never 100x
