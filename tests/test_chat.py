"""Follow-up questions become standalone retrieval queries."""

from __future__ import annotations

from qa.chat import is_follow_up, standalone_query, user_turns

FIRST = "Where is TikTok's US user data stored?"
HISTORY = [{"role": "user", "content": FIRST}, {"role": "assistant", "content": "In Virginia [1]."}]


def test_standalone_questions_are_left_alone() -> None:
    assert standalone_query("How many accounts did TikTok remove?", HISTORY) == "How many accounts did TikTok remove?"
    assert standalone_query(FIRST, []) == FIRST


def test_elliptical_follow_up_carries_the_previous_subject() -> None:
    query = standalone_query("And where is the backup kept?", HISTORY)
    assert query.startswith("And where is the backup kept?") and "TikTok" in query and "data" in query


def test_what_about_swaps_the_subject() -> None:
    assert standalone_query("What about Facebook?", HISTORY) == "Where is Facebook's US user data stored?"


def test_pronoun_follow_ups_chain_across_turns() -> None:
    history = [*HISTORY, {"role": "user", "content": "What about Facebook?"}, {"role": "assistant", "content": "…"}]
    assert "Facebook" in standalone_query("Is it encrypted there?", history)
    assert is_follow_up("Why?") and not is_follow_up("Who is Brendan Carr?")


def test_history_formats() -> None:
    parts = [{"role": "user", "content": [{"type": "text", "text": "Hi there"}]}, "plain question"]
    assert user_turns(parts) == ["Hi there", "plain question"]
    assert user_turns(None) == []
