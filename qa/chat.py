"""Multi-turn questions: turn a follow-up into a standalone retrieval query, without an LLM.

"And where is the backup kept?" after "Where is TikTok's US user data stored?" is searched as
both together; "What about Facebook?" swaps the new subject into the previous question.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from qa.errors import QueryError

_WORD = re.compile(r"[\w'’.-]+")
_FOLLOW_UP_OPENERS = re.compile(
    r"^\s*(?:and|but|also|so|then|what about|how about|and what about|what else|why|how come)\b", re.I)
# "What about Facebook?", "How about the Army?", and "And Facebook?" (a bare name after "and").
_SWAP = re.compile(r"^\s*(?:and\s+)?(?:what|how)\s+about\s+(?P<subject>.+?)\s*[?.!]*\s*$", re.I)
_AND_NAME = re.compile(
    r"^\s*(?i:and)\s+(?P<subject>(?:the\s+)?[A-Z][\w'’.&-]*(?:\s+[A-Z][\w'’.&-]*){0,3})\s*[?.!]*\s*$")
_PRONOUNS = {"it", "its", "they", "them", "their", "theirs", "he", "him", "his", "she", "her",
             "this", "that", "these", "those", "there", "one", "ones", "same", "such"}
_STOP = {"a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "for", "with", "by",
         "is", "are", "was", "were", "be", "been", "do", "does", "did", "what", "who", "whom",
         "when", "where", "why", "how", "which", "about", "also", "else", "so", "then", "from",
         "has", "have", "had", "can", "could", "would", "should", "will", "much", "many", "any"}
_QUESTION_WORDS = {"what", "who", "whom", "when", "where", "why", "how", "which", "whose", "did",
                   "does", "do", "is", "are", "was", "were", "can", "could", "will", "would", "has",
                   "have", "had", "should"}


Message = Mapping[str, Any]
ROLES = ("user", "assistant", "system")
# The resolved context of a conversation keeps at most this many words: a chain of follow-ups
# costs the same per turn however long the conversation, so resolution is linear in the turns.
MAX_CONTEXT_WORDS = 40


def user_turns(history: Sequence[Message] | None, limit: int = 8, max_chars: int = 2000) -> list[str]:
    """The user's last `limit` questions from a chat history, oldest first.

    Only the newest messages are read (at most `4 * limit`, newest first, stopping once `limit`
    user questions are found), so a long history costs no more than a short one. A question
    longer than `max_chars` is cut to that length: it is context, not the question asked.

    Args:
        history: `{"role", "content"}` messages (Gradio's form); content is a string or a list
            of parts (strings or `{"text": ...}` dicts). None or [] for a new conversation.
        limit: how many of the user's questions to keep.
        max_chars: the longest question kept whole.

    Raises:
        QueryError: the history is not a list of messages, or a message read is not one.
    """
    if history is None:
        return []
    if isinstance(history, str | bytes) or not isinstance(history, Sequence):
        raise QueryError(
            f"The history must be a list of {{\"role\", \"content\"}} messages, not {type(history).__name__}. "
            "Send [] for a new conversation.")
    turns: list[str] = []
    oldest = max(-1, len(history) - 1 - 4 * limit)
    for position in range(len(history) - 1, oldest, -1):
        if len(turns) >= limit:
            break
        message = history[position]
        if not isinstance(message, Mapping) or message.get("role") not in ROLES or "content" not in message:
            shown = type(message).__name__ if not isinstance(message, Mapping) else f"keys {sorted(map(str, message))}"
            raise QueryError(
                f"History message {position} is not a {{\"role\", \"content\"}} message ({shown}); role must be "
                f"one of {', '.join(ROLES)}.")
        if message["role"] != "user":
            continue
        text = _content_text(message["content"], position).replace("\x00", "").strip()
        if text:
            turns.append(text[:max_chars])
    return turns[::-1]


def _content_text(content: Any, position: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list | tuple) else [content]
    texts = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part, Mapping) and ("file" in part or "path" in part or part.get("type") not in (None, "text")):
            continue  # a file or image part of a Gradio message: nothing to search for
        else:
            raise QueryError(f"History message {position} has content of type {type(part).__name__}; "
                             "send text (a string, or a list of {\"text\": ...} parts).")
    return " ".join(texts)


def standalone_query(question: str, turns: Sequence[str] = ()) -> str:
    """The retrieval query for `question` after the user's earlier questions `turns` (oldest first).

    Each earlier turn is resolved the same way first, so a chain of follow-ups keeps its
    subject. A question that stands on its own is returned unchanged.
    """
    context = ""
    for turn in turns:
        context = " ".join(_resolve(turn, context).split()[:MAX_CONTEXT_WORDS])
    return _resolve(question.strip(), context)


def _resolve(question: str, context: str) -> str:
    if not context or not is_follow_up(question):
        return question
    swap = _SWAP.match(question) or _AND_NAME.match(question)
    if swap:
        return _swap_subject(context, swap.group("subject"))
    return f"{question} {_content_words(context)}".strip()


def is_follow_up(question: str) -> bool:
    """Whether a question leans on the conversation: it opens like a follow-up ("And ...",
    "What about ..."), refers back with a pronoun, or is too short to search on its own."""
    words = [w.lower().strip(".'’") for w in _WORD.findall(question)]
    content = [w for w in words if w not in _STOP and w not in _PRONOUNS]
    if _FOLLOW_UP_OPENERS.match(question):
        return True
    if any(w in _PRONOUNS for w in words) and not _names(question):
        return True
    return len(content) <= 1


def _swap_subject(previous: str, subject: str) -> str:
    """Put `subject` in place of the previous question's first name ("TikTok's" keeps its 's)."""
    names = _names(previous)
    if not names:
        return f"{previous} {subject}"
    old = names[0]
    return re.sub(rf"\b{re.escape(old)}\b", subject.strip(" ?.!"), previous, count=1)


def _names(text: str) -> list[str]:
    """Capitalized words and phrases that are not just the question's first word."""
    names = []
    for i, m in enumerate(re.finditer(r"\b[A-Z][\w]*(?:[ -][A-Z][\w]*)*", text)):
        word = m.group()
        if i == 0 and m.start() == len(text) - len(text.lstrip()) and word.lower() in _QUESTION_WORDS:
            continue
        if word.lower() in _QUESTION_WORDS | _STOP:
            continue
        names.append(word)
    return names


def _content_words(text: str) -> str:
    return " ".join(w for w in _WORD.findall(text) if w.lower() not in _STOP | _QUESTION_WORDS)
