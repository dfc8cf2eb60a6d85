"""E-mails (.eml: RFC 5322 with MIME), read by Python's own `email` package (policy.default).

The document is the message's body: its text/plain part, or where it has none its text/html part,
read as an HTML page is (qa/formats/html.py: the markup stays in the stored text, its visible text
is the body). The body is stored with the index, so `qa.source_text` returns it and citations
index it. The Subject is the title, the Date the date (ISO, with its time and offset: `read_date`),
the From line the author (`DocumentInfo.author`). Attachments and forwarded messages are not read:
one line in the build log names them.

Hostile input gets one line, never a traceback: headers the parser cannot read are kept as
written, control characters are taken out of the metadata and the body, a charset Python does
not know is read as UTF-8 and says so. Limits: an e-mail is a corpus file like any other, at
most `max_file_mb` (its decoded body is never longer than the file), and at most MAX_PARTS MIME
parts: each costs the parser work (200,000 empty parts in a 20 MB file took it 49 s), so it
stops at the limit.
"""

from __future__ import annotations

from email import policy
from email.errors import HeaderParseError
from email.message import EmailMessage, Message, MIMEPart
from email.parser import BytesParser
from email.policy import Policy
from pathlib import Path

from qa.formats.common import (
    Extracted,
    ReadOptions,
    UnreadableDocument,
    clean_text,
    clip_title,
    without_controls,
)
from qa.formats.html import parse_html
from qa.formats.text import dated

MAX_PARTS = 500                 # MIME parts in one e-mail (the message itself counts as one)
MAX_NAMED_ATTACHMENTS = 5       # the build log names this many skipped attachments, then counts
_MAIL_HEADERS = ("From", "To", "Subject", "Date", "Message-ID")
# What reading a malformed header can raise in policy.default's header parsers (3.11 raised
# IndexError on `From: =?utf-8?b?!!!?=`).
_HEADER_ERRORS = (IndexError, ValueError, TypeError, AttributeError, LookupError, HeaderParseError)
_TEXT = ("text/plain", "text/html")


class _TooManyParts(Exception):
    pass


def read_eml(path: Path, raw: bytes, options: ReadOptions) -> Extracted:
    """An e-mail's body text, subject, date and sender; attachments named in a note.

    Raises:
        UnreadableDocument: binary, not an e-mail (no mail header), over MAX_PARTS parts, or
            no text body.
    """
    if b"\x00" in raw[:8192]:
        raise UnreadableDocument("binary file (contains NUL bytes)")
    message = _parse(raw)
    if not any(_header(message, name) for name in _MAIL_HEADERS):
        raise UnreadableDocument("not an e-mail (no From, To, Subject, Date or Message-ID header); "
                                 "save the message with its headers, or as .txt")
    body = message.get_body(preferencelist=("plain", "html"))
    notes = _skipped_line(_attachments(message, body))
    if body is None:
        raise UnreadableDocument("no text in the e-mail" + (f": {notes[0]}" if notes else ""))
    text, read_as = _body_text(body)
    if not text.strip():
        raise UnreadableDocument("the e-mail's body is empty" + (f": {notes[0]}" if notes else ""))
    date, date_notes = dated(_header(message, "Date") or None)
    title = clip_title(without_controls(_header(message, "Subject")))
    author = clip_title(without_controls(_header(message, "From")))
    notes = (*read_as, *date_notes, *notes)
    if body.get_content_type() == "text/html":
        html_title, _, _, spans = parse_html(text)
        return Extracted(text, title or html_title, date, notes=notes, spans=tuple(spans), author=author)
    return Extracted(text, title, date, notes=notes, author=author)


def _parse(raw: bytes) -> EmailMessage:
    """The message, its parts counted as the parser makes them (it stops past MAX_PARTS)."""
    made = 0

    def new_part(policy: Policy) -> EmailMessage:
        nonlocal made
        made += 1
        if made > MAX_PARTS:
            raise _TooManyParts
        return EmailMessage(policy)

    try:
        parsed = BytesParser(policy=policy.default.clone(message_factory=new_part)).parsebytes(raw)
    except _TooManyParts:
        raise UnreadableDocument(f"more than {MAX_PARTS} MIME parts, the limit for an e-mail") from None
    except RecursionError:   # parts nested deeper than the parser's recursion allows
        raise UnreadableDocument("MIME parts nested too deeply to read") from None
    assert isinstance(parsed, EmailMessage)
    return parsed


def _header(message: Message, name: str) -> str:
    """A header's value as text ('' when absent), the value as written where it cannot be parsed."""
    try:
        value = message.get(name)
        found = "" if value is None else str(value)
    except _HEADER_ERRORS:
        found = next((str(v) for k, v in message.raw_items() if k.lower() == name.lower()), "")
    return _unescaped(found)


def _unescaped(text: str) -> str:
    """Text without lone surrogates: bytes the parser kept as escapes are read as UTF-8 (mailers
    write raw UTF-8 into headers), anything else unreadable becomes U+FFFD."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def _body_text(part: MIMEPart) -> tuple[str, tuple[str, ...]]:
    """The body part's text, cleaned as stored text is, and a note when its charset failed."""
    charset = _unescaped(str(part.get_param("charset", "us-ascii")))
    note: tuple[str, ...] = ()
    try:
        text = str(part.get_content())
    except (LookupError, TypeError, ValueError):   # a charset Python does not know
        payload = part.get_payload(decode=True)
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        note = (f"charset {clip_title(without_controls(charset))[:40]!r} is unknown: the body was read as UTF-8",)
    if not note and "\ufffd" in text:
        note = (f"some bytes of the body are not {clip_title(without_controls(charset))[:40]}: "
                "they are shown as \ufffd",)
    return clean_text(text), note


def _attachments(message: EmailMessage, body: Message | None) -> list[str]:
    """The names of the parts that are not read: attachments, forwarded messages, inline images,
    text outside the body (not the body's own alternative forms). Walked without recursion."""
    names: list[str] = []
    stack: list[tuple[Message, bool]] = [(message, False)]
    while stack:
        part, alternative = stack.pop()
        kind = part.get_content_type()
        if part is not message and kind == "message/rfc822":
            names.append(_name(part, "a forwarded message"))
        elif part.is_multipart():
            children = part.get_payload()
            inside = alternative or kind == "multipart/alternative"
            stack.extend((child, inside) for child in reversed(children if isinstance(children, list) else [])
                         if isinstance(child, Message))
        elif part is not body and not (kind in _TEXT and alternative and not _is_attachment(part)):
            names.append(_name(part, kind))
    return names


def _is_attachment(part: Message) -> bool:
    try:
        return part.get_content_disposition() == "attachment"
    except _HEADER_ERRORS:
        return True


def _name(part: Message, fallback: str) -> str:
    try:
        name = part.get_filename() or fallback
    except _HEADER_ERRORS:
        name = fallback
    return clip_title(without_controls(_unescaped(str(name))))[:80]


def _skipped_line(names: list[str]) -> tuple[str, ...]:
    """One line naming the skipped parts (the first MAX_NAMED_ATTACHMENTS, then a count)."""
    if not names:
        return ()
    shown = ", ".join(names[:MAX_NAMED_ATTACHMENTS])
    if len(names) > MAX_NAMED_ATTACHMENTS:
        shown += f" and {len(names) - MAX_NAMED_ATTACHMENTS} more"
    if len(names) == 1:
        return (f"1 attachment skipped ({shown}): save it as a file of its own to index it",)
    return (f"{len(names)} attachments skipped ({shown}): save them as files of their own to index them",)
