"""What reaches a terminal: text from documents, file names and questions made inert, in one place.

Documents are hostile input (qa's users read leaked and adversarial files), and a terminal obeys
control characters: `ESC ] 0;title BEL` sets the window title, `ESC [2J` clears the screen, the C1
character U+009B is a one-byte CSI on many terminals. So the CLI and `app.py` route everything
they write through `visible()` (`install()` wraps stdout and stderr, log records and uncaught
tracebacks), and `--json` output is escaped by `json_text()`:

- every C0 control but newline and tab, DEL, and every C1 control is shown as a Python-style
  escape (`\\x1b`, `\\x9b`): visible, copyable, and never acted on;
- the Unicode bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069) likewise
  (`\\u202e`): they reorder what a reader sees ("Trojan Source");
- a byte that was not UTF-8 in a file name (Python holds it as a lone surrogate) is shown as
  the byte it was (`\\x9b`), never written raw;
- JSON stays valid JSON: the same characters become `\\u001b`-style escapes, which every JSON
  reader turns back into the original text.

Escaping rather than removing keeps an attack visible to the person reading it, and keeps two
different names different on screen. The chat does the same job with HTML escaping
(qa/web/html.py `escape`).
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

# C0 but \t and \n, DEL, C1, the bidi embeddings/overrides and isolates, and lone surrogates.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# The same, less the carriage return that progress bars redraw with (stderr only).
_UNSAFE_BUT_CR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# What json.dumps(ensure_ascii=False) leaves raw (it escapes C0 itself).
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _shown(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:   # a byte that was not UTF-8 (surrogateescape): show that byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: object, *, keep_cr: bool = False) -> str:
    """`text` as it may be written to a terminal: newlines and tabs kept, every other control
    character (C0, DEL, C1), bidi override and undecodable byte shown as an escape (carriage
    returns kept too with `keep_cr`)."""
    return (_UNSAFE_BUT_CR if keep_cr else _UNSAFE).sub(_shown, str(text))


def json_text(data: Any, *, indent: int | None = 2) -> str:
    """`data` as JSON that holds no raw control character: C0 is escaped by `json.dumps`, and
    DEL, C1, bidi overrides and lone surrogates are escaped here (`\\u009b`), so the text is
    still valid JSON that reads back to `data`, and other non-ASCII text stays readable."""
    text = json.dumps(data, ensure_ascii=False, indent=indent)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class VisibleWriter(io.TextIOBase):
    """A text stream that writes `visible(text)` to the stream it wraps."""

    def __init__(self, stream: TextIO, *, keep_cr: bool = False) -> None:
        self._stream = stream
        self._keep_cr = keep_cr

    def write(self, text: str) -> int:
        self._stream.write(visible(text, keep_cr=self._keep_cr))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")

    def writable(self) -> bool:
        return True


class VisibleFormatter(logging.Formatter):
    """Log records, their tracebacks included, with control characters shown as escapes."""

    def format(self, record: logging.LogRecord) -> str:
        return visible(super().format(record))


def _excepthook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
    sys.stderr.write(visible("".join(traceback.format_exception(kind, error, tb))))


def install() -> Callable[[], None]:
    """At an edge (the CLI, `app.py`): stdout and stderr show control characters as escapes
    (stderr keeps carriage returns, which progress bars redraw with), and so do log records (a
    handler on the root logger at WARNING, as Python's last-resort handler, when none is set) and
    uncaught tracebacks. Third-party output is covered too: Gradio prints tracebacks that quote a
    request's data.

    Returns:
        A function that undoes it (the CLI calls it when a command ends).
    """
    saved = sys.stdout, sys.stderr, sys.excepthook
    if not isinstance(sys.stdout, VisibleWriter):
        sys.stdout = VisibleWriter(sys.stdout)  # type: ignore[assignment]
    if not isinstance(sys.stderr, VisibleWriter):
        sys.stderr = VisibleWriter(sys.stderr, keep_cr=True)  # type: ignore[assignment]
    sys.excepthook = _excepthook
    root = logging.getLogger()
    handler: logging.Handler | None = None
    if not root.handlers:
        handler = logging.StreamHandler()   # the wrapped stderr
        handler.setLevel(logging.WARNING)
        handler.setFormatter(VisibleFormatter("%(message)s"))
        root.addHandler(handler)

    def undo() -> None:
        sys.stdout, sys.stderr, sys.excepthook = saved
        if handler is not None:
            root.removeHandler(handler)

    return undo
