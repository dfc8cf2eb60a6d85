"""Saved conversations and feedback votes, in one SQLite file (the standard library's `sqlite3`).

The chat keeps each conversation as it goes: its collection, title, and every question with the
whole answer it got (text, citations, the passages that hold them, related reading), so that a
conversation reopened after a restart shows the same answers and source cards. Feedback votes
go to the same file.

What it promises:

- **Per owner.** Every read and write names its owner (the login's user name; "" without a
  login) and touches only that owner's rows: a conversation id alone opens nothing.
- **Migrations in order.** `PRAGMA user_version` holds how many of `MIGRATIONS` the file has;
  opening applies the missing ones in order, each in one transaction. A file from a newer qa is
  refused, never rewritten.
- **Limits.** At most `MAX_CONVERSATIONS` conversations per owner (a new one past that is
  refused with a message: delete some), `MAX_TURNS` questions each, titles of at most
  `MAX_TITLE_CHARS` characters, and at most `MAX_VOTES` feedback votes kept (the oldest go).
- **Errors say what to do.** A damaged, locked or newer file is a `DatabaseError` naming it.
"""

# About 410 lines in one module: the SQLite store, the record an answer is saved as and its
# Markdown export read and write the same fields, so they stay together.

from __future__ import annotations

import json
import re
import sqlite3
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from qa.errors import DatabaseError, QueryError
from qa.types import Answer, Citation, Passage, composed_text

MAX_CONVERSATIONS = 200     # saved conversations per owner; the chat lists them all, newest first
MAX_TURNS = 50              # questions per conversation (the chat's limit too)
MAX_TITLE_CHARS = 120       # a title; a new conversation's is its first question, cut to 80
MAX_VOTES = 100_000         # feedback votes kept; past this the oldest are deleted
AUTO_TITLE_CHARS = 80

# Each entry brings the file from version n to n + 1; never edit one that has shipped, append.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,          -- the login's user name, '' without a login
        collection TEXT NOT NULL,     -- the collection its questions were asked of
        title TEXT NOT NULL,
        created TEXT NOT NULL,        -- ISO 8601, UTC
        updated TEXT NOT NULL
    );
    CREATE INDEX conversations_by_owner ON conversations (owner, updated);
    CREATE TABLE turns (
        conversation TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        position INTEGER NOT NULL,    -- 0, 1, ... in the order asked
        question TEXT NOT NULL,
        reply TEXT NOT NULL,          -- the qa.Answer as JSON (see answer_record)
        created TEXT NOT NULL,
        PRIMARY KEY (conversation, position)
    );
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY,
        created TEXT NOT NULL,
        owner TEXT NOT NULL,
        collection TEXT NOT NULL,
        conversation TEXT,            -- the saved conversation, if any (a vote outlives its deletion)
        vote TEXT NOT NULL,           -- up, down or cleared
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        status TEXT NOT NULL,         -- answered, tentative or abstained
        confidence REAL NOT NULL,
        citations TEXT NOT NULL       -- JSON list of the answer's citations
    );
    """,
)


@dataclass(frozen=True)
class ConversationInfo:
    """A saved conversation as the list shows it."""

    id: str
    collection: str
    title: str
    created: str
    updated: str
    questions: int


@dataclass(frozen=True)
class SavedConversation:
    """A saved conversation with its questions and answers, in the order asked."""

    info: ConversationInfo
    turns: tuple[tuple[str, Answer], ...]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def clean_title(title: str) -> str:
    """A title as stored: one line, no control characters, whitespace folded.

    Raises:
        QueryError: nothing is left, or it is longer than `MAX_TITLE_CHARS`.
    """
    text = " ".join("".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in title or "").split())
    if not text:
        raise QueryError("The title is empty. Type a title for the conversation.")
    if len(text) > MAX_TITLE_CHARS:
        raise QueryError(f"The title is {len(text):,} characters long; the limit is {MAX_TITLE_CHARS}. "
                         "Type a shorter one.")
    return text


def title_from(question: str) -> str:
    """A new conversation's title: its first question, cut at a word to `AUTO_TITLE_CHARS`."""
    text = " ".join("".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in question).split())
    if len(text) > AUTO_TITLE_CHARS:
        text = text[:AUTO_TITLE_CHARS - 1].rsplit(" ", 1)[0].rstrip() + "…"
    return text or "Untitled"


class ConversationStore:
    """The SQLite file at `path`: created and migrated on first use, opened per call (a call is
    a few milliseconds; connections are never shared between threads)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._migrate()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise DatabaseError(f"The database {self.path} cannot be opened ({exc}). Check the path (setting "
                                "database) and its permissions.") from None
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            yield conn
        except sqlite3.Error as exc:
            raise DatabaseError(f"The database {self.path} cannot be read or written ({exc}). If another program "
                                "holds it, try again; if it is damaged, move it away (a new one is made).") from None
        finally:
            conn.close()

    def _migrate(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise DatabaseError(f"The database {self.path} was written by a newer qa (schema {version}; this one "
                                    f"knows {len(MIGRATIONS)}). Upgrade qa, or point the setting database elsewhere.")
            if version < len(MIGRATIONS):
                conn.execute("PRAGMA journal_mode = WAL")   # readers never wait for a writer
            for number in range(version, len(MIGRATIONS)):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if conn.execute("PRAGMA user_version").fetchone()[0] == number:   # not done by another process
                        for statement in _statements(MIGRATIONS[number]):
                            conn.execute(statement)
                        conn.execute(f"PRAGMA user_version = {number + 1}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise

    # ---- conversations -----------------------------------------------------------------------

    def conversations(self, owner: str) -> list[ConversationInfo]:
        """`owner`'s saved conversations, most recently changed first (at most `MAX_CONVERSATIONS`)."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT c.id, c.collection, c.title, c.created, c.updated, COUNT(t.position) FROM conversations c "
                "LEFT JOIN turns t ON t.conversation = c.id WHERE c.owner = ? GROUP BY c.id "
                "ORDER BY c.updated DESC, c.created DESC LIMIT ?", (owner, MAX_CONVERSATIONS)).fetchall()
        return [ConversationInfo(*row) for row in rows]

    def create(self, owner: str, collection: str, title: str) -> str:
        """Start a conversation of `owner`'s over `collection`; returns its id.

        Raises:
            QueryError: `owner` already has `MAX_CONVERSATIONS`, or the title cannot be used.
        """
        title = clean_title(title)
        conversation = uuid.uuid4().hex
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            count = conn.execute("SELECT COUNT(*) FROM conversations WHERE owner = ?", (owner,)).fetchone()[0]
            if count >= MAX_CONVERSATIONS:
                conn.execute("ROLLBACK")
                raise QueryError(f"Not saved: {MAX_CONVERSATIONS} conversations are saved, the most kept for one "
                                 "user. Delete some (Conversations, Delete) to save new ones.")
            stamp = now()
            conn.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?)",
                         (conversation, owner, collection, title, stamp, stamp))
            conn.execute("COMMIT")
        return conversation

    def add_turn(self, owner: str, conversation: str, question: str, reply: Answer) -> int:
        """Append a question and its answer to `owner`'s conversation; returns its position.

        Raises:
            QueryError: no such conversation of `owner`'s, or it holds `MAX_TURNS` questions.
        """
        record = json.dumps(answer_record(reply), ensure_ascii=False)
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._owned(conn, owner, conversation)
                position = conn.execute("SELECT COUNT(*) FROM turns WHERE conversation = ?",
                                        (conversation,)).fetchone()[0]
                if position >= MAX_TURNS:
                    raise QueryError(f"Not saved: this conversation holds {MAX_TURNS} questions, the most one keeps. "
                                     "Start a new conversation to go on.")
                stamp = now()
                conn.execute("INSERT INTO turns VALUES (?, ?, ?, ?, ?)",
                             (conversation, position, question, record, stamp))
                conn.execute("UPDATE conversations SET updated = ? WHERE id = ?", (stamp, conversation))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return int(position)

    def open(self, owner: str, conversation: str) -> SavedConversation:
        """`owner`'s conversation with its questions and answers.

        Raises:
            QueryError: no such conversation of `owner`'s.
        """
        with self._connect() as conn:
            info = self._owned(conn, owner, conversation)
            rows = conn.execute("SELECT question, reply FROM turns WHERE conversation = ? ORDER BY position",
                                (conversation,)).fetchall()
        return SavedConversation(info, tuple((question, answer_from_record(json.loads(reply)))
                                             for question, reply in rows))

    def rename(self, owner: str, conversation: str, title: str) -> str:
        """Give `owner`'s conversation a new title; returns the title as stored.

        Raises:
            QueryError: no such conversation, or the title cannot be used.
        """
        title = clean_title(title)
        with self._connect() as conn:
            self._owned(conn, owner, conversation)
            conn.execute("UPDATE conversations SET title = ? WHERE id = ? AND owner = ?", (title, conversation, owner))
        return title

    def delete(self, owner: str, conversation: str) -> None:
        """Delete `owner`'s conversation and its questions (its feedback votes stay).

        Raises:
            QueryError: no such conversation of `owner`'s.
        """
        with self._connect() as conn:
            self._owned(conn, owner, conversation)
            conn.execute("DELETE FROM conversations WHERE id = ? AND owner = ?", (conversation, owner))

    def _owned(self, conn: sqlite3.Connection, owner: str, conversation: str) -> ConversationInfo:
        row = conn.execute(
            "SELECT c.id, c.collection, c.title, c.created, c.updated, "
            "(SELECT COUNT(*) FROM turns t WHERE t.conversation = c.id) FROM conversations c "
            "WHERE c.id = ? AND c.owner = ?", (str(conversation)[:64], owner)).fetchone()
        if row is None:
            raise QueryError("That conversation is not among your saved conversations (it was deleted, or belongs "
                             "to another login). Pick one from the list.")
        return ConversationInfo(*row)

    # ---- feedback ----------------------------------------------------------------------------

    def record_vote(self, owner: str, collection: str, conversation: str | None, question: str, reply: Answer,
                    vote: str) -> dict[str, Any]:
        """Keep one vote on an answer; returns the row written (the oldest votes past `MAX_VOTES` go)."""
        row = {
            "created": now(), "owner": owner, "collection": collection, "conversation": conversation,
            "vote": vote, "question": question, "answer": reply.text, "status": reply.status,
            "confidence": round(reply.confidence, 4),
            "citations": json.dumps([asdict(c) for c in reply.citations], ensure_ascii=False),
        }
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"INSERT INTO feedback ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                         tuple(row.values()))
            conn.execute("DELETE FROM feedback WHERE id <= (SELECT MAX(id) FROM feedback) - ?", (MAX_VOTES,))
            conn.execute("COMMIT")
        return row

    def votes(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest feedback votes, oldest first (at most `limit`), each a dict of its columns
        with `citations` parsed."""
        with self._connect() as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute("SELECT * FROM (SELECT * FROM feedback ORDER BY id DESC LIMIT ?) ORDER BY id",
                                (limit,)).fetchall()
        return [{**dict(r), "citations": json.loads(r["citations"])} for r in rows]


def _statements(script: str) -> list[str]:
    """A migration's statements (`;`-separated; the schema holds no `;` inside a statement)."""
    without_comments = re.sub(r"--[^\n]*", "", script)
    return [s.strip() for s in without_comments.split(";") if s.strip()]


# ---- answers as JSON -------------------------------------------------------------------------

def answer_record(reply: Answer) -> dict[str, Any]:
    """`reply` as JSON data: every field, but of the retrieved passages only those that hold a
    citation (the source cards fall back on them when a document has left the index)."""
    kept = tuple(p for p in reply.passages
                 if any(c.doc_id == p.doc_id and p.start <= c.start and c.end <= p.end for c in reply.citations))
    data = asdict(reply)
    data["passages"] = [asdict(p) for p in kept]
    return data


_D = TypeVar("_D")


def _build(cls: type[_D], data: dict[str, Any]) -> _D:
    """`cls(**data)` with the fields `cls` has now (a field added since is left at its default)."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


def answer_from_record(data: dict[str, Any]) -> Answer:
    """The `Answer` that `answer_record` wrote. A record written before answers had `lead` gets
    it back when its text is its quotes after some words (a tentative answer's caveat)."""
    citations = tuple(_build(Citation, c) for c in data.get("citations", ()))
    quotes = composed_text("", citations)
    text = str(data.get("text", ""))
    lead = data["lead"] if "lead" in data else text[:-len(quotes)] if citations and text.endswith(quotes) else ""
    return _build(Answer, {
        **data,
        "lead": lead,
        "citations": citations,
        "passages": tuple(_build(Passage, p) for p in data.get("passages", ())),
        "related": tuple(_build(Passage, p) for p in data.get("related", ())),
    })


# ---- export ----------------------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>&|#~])")


def markdown_text(text: str) -> str:
    """Document or user text as Markdown that shows exactly that text: whitespace folded to
    single spaces, and every character that could start markup (`*`, `_`, `[`, `<`, `&`, ...)
    backslash-escaped, so that a document's `<script>` or `[link](javascript:...)` stays text."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def conversation_markdown(saved: SavedConversation, file_url: str = "qa/file?doc=") -> str:
    """The conversation as Markdown: each question, its answer with `[n]` markers, then its
    sources (title, file, page, character range, the quote, the short answer) or, for an
    abstention, the related reading. `file_url` + a doc_id opens a document's original file."""
    info = saved.info
    lines = [f"# {markdown_text(info.title)}", "",
             f"Collection {markdown_text(info.collection)} · {len(saved.turns)} question"
             f"{'s' if len(saved.turns) != 1 else ''} · started {info.created} · last changed {info.updated}"
             " · exported from qa", ""]
    for k, (question, reply) in enumerate(saved.turns, 1):
        lines += [f"## {k}. {markdown_text(question)}", ""]
        # A tentative answer's text says so itself; an abstention is marked as the chat marks it.
        lines += ["*Not in the documents.*", ""] if reply.abstained else []
        lines += [markdown_text(reply.text), ""]
        if reply.citations:
            lines += ["Sources:", ""]
            for c in reply.citations:
                lines += [f"{c.n}. **{markdown_text(c.title or c.doc_id)}**{_where(c.doc_id, c.page, c.start, c.end)}"
                          f" <{file_url}{_quoted(c.doc_id)}>", f"   > “{markdown_text(c.quote)}”"]
                if c.answer_start is not None and c.answer_end is not None and c.start <= c.answer_start < c.answer_end:
                    short = c.quote[c.answer_start - c.start:c.answer_end - c.start]
                    lines.append(f"   > short answer: {markdown_text(short)}")
            lines.append("")
        if reply.related:
            lines += ["Related reading (the closest passages; they do not answer the question):", ""]
            lines += [f"- {markdown_text(p.title or p.doc_id)}{_where(p.doc_id, p.page, p.start, p.end)}"
                      for p in reply.related]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _where(doc_id: str, page: int | None, start: int, end: int) -> str:
    on_page = f", p. {page}" if page is not None else ""
    return f" ({code_span(doc_id)}{on_page}, chars {start}-{end})"


def code_span(text: str) -> str:
    """`text` as a Markdown code span (shown literally): fenced by more backticks than it holds."""
    text = " ".join(text.split())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _quoted(doc_id: str) -> str:
    return quote(doc_id, safe="")


def export_name(info: ConversationInfo) -> str:
    """A file name for the export: the title's letters and digits, then `.md`."""
    stem = re.sub(r"[^\w-]+", "-", unicodedata.normalize("NFKD", info.title).encode("ascii", "ignore").decode())
    return (stem.strip("-")[:60] or "conversation") + ".md"
