"""Multi-turn questions: turn a follow-up into a standalone retrieval query, without an LLM.

"And where is the backup kept?" after "Where is TikTok's US user data stored?" is searched as
both together; "What about Facebook?" swaps the new subject into the previous question.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

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


def user_turns(history: Sequence[Mapping[str, Any] | str] | None) -> list[str]:
    """The user's earlier questions from a chat history, oldest first.

    Accepts Gradio-style `{"role", "content"}` messages (content may be a string or a list of
    parts) or plain strings (each taken as a user turn).
    """
    turns: list[str] = []
    for message in history or ():
        if isinstance(message, str):
            content: Any = message
        elif isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content", "")
        else:
            continue
        if isinstance(content, list):
            content = " ".join(p.get("text", "") if isinstance(p, Mapping) else str(p) for p in content)
        text = str(content).replace("\x00", "").strip()
        if text:
            turns.append(text)
    return turns


def standalone_query(question: str, history: Sequence[Mapping[str, Any] | str] | None = None) -> str:
    """The retrieval query for `question` in the context of the conversation so far.

    Each earlier user turn is resolved the same way first, so a chain of follow-ups keeps its
    subject. A question that stands on its own is returned unchanged.
    """
    context = ""
    for turn in user_turns(history):
        context = _resolve(turn, context)
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
