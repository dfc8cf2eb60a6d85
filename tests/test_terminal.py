"""Hostile bytes stay inert on a terminal: real `qa` processes over a corpus whose text, titles and
file names hold terminal escape sequences, with every byte they write scanned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qa.terminal import json_text, visible

from .conftest import ROOT

ESC, BEL, CSI = "\x1b", "\x07", "\x9b"
TITLE_SET = f"{ESC}]0;PWNED{BEL}"          # sets the terminal's title
CLEAR = f"{ESC}[2J"                        # clears the screen
QA = [sys.executable, "-m", "qa.cli"]


def _unsafe(text: str) -> list[str]:
    """Characters a terminal would act on (C0 but newline and tab, DEL, C1, bidi overrides)."""
    return [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F
            or 0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069]


def _strings(data: object) -> list[str]:
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        data = list(data.values())
    return [s for item in data for s in _strings(item)] if isinstance(data, list) else []


def assert_inert(output: bytes, *, stderr: bool = False) -> str:
    """The output decodes as UTF-8 (a raw C1 byte would not) and holds no control character;
    stderr may hold the carriage returns progress bars redraw with."""
    text = output.decode("utf-8")
    found = _unsafe(text.replace("\r", "") if stderr else text)
    assert not found, (found, text[:2000])
    return text


def test_visible_and_json_text() -> None:
    hostile = f"a{TITLE_SET}b{CLEAR}c{CSI}d\u202ee\x7ff\tg\nh\ri" + b"\xff".decode("utf-8", "surrogateescape")
    shown = visible(hostile)
    assert shown == "a\\x1b]0;PWNED\\x07b\\x1b[2Jc\\x9bd\\u202ee\\x7ff\tg\nh\\x0di\\xff"
    assert visible("caf\u00e9 \u201cquoted\u201d") == "caf\u00e9 \u201cquoted\u201d"   # text is text
    assert visible("bar\r", keep_cr=True) == "bar\r"
    printable = hostile[:-1]                # a lone surrogate cannot be encoded, so no JSON has one
    text = json_text({"t": printable})
    assert not _unsafe(text) and json.loads(text) == {"t": printable} and "\u201c" in json_text("\u201c")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess[bytes]]:
    """A corpus with escape sequences in a document's title and text and in file names, indexed by
    a real `qa index` (whose output the first test scans)."""
    base = tmp_path_factory.mktemp("hostile")
    corpus = base / "corpus"
    corpus.mkdir()
    (corpus / f"evil{ESC}[31mname.md").write_text(
        f'---\ntitle: "Zorblax {TITLE_SET} report"\ndate: 2021-03-04\n---\n\n'
        f"The Zorblax vault {TITLE_SET}keeps its records in Reykjavik {CLEAR}according to the {CSI}31m annual "
        "filing of the company.\n\nThe backup copy of the Zorblax records sits in Tromso, the filing says.\n",
        encoding="utf-8")
    (corpus / "weather.txt").write_text("Weather in Oslo\n\nOslo had a cold winter with heavy snow in January.\n",
                                        encoding="utf-8")
    (corpus / f"empty{TITLE_SET}.txt").write_text("", encoding="utf-8")   # skipped: its name is in a line
    raw = os.path.join(os.fsencode(corpus), b"raw\x9b31m\x1b[2Jname.txt")  # not UTF-8: skipped, named
    with open(raw, "wb") as fh:
        fh.write(b"Raw name\n\nA document under a name that is not UTF-8.\n")
    index = base / "index"
    built = subprocess.run([*QA, "index", "--corpus", str(corpus), "--index", str(index)], capture_output=True,
                           cwd=ROOT, timeout=300)
    return corpus, index, built


def test_build_lines_name_hostile_files_inertly(hostile) -> None:
    _, _, built = hostile
    assert built.returncode == 0, built.stderr
    out = assert_inert(built.stdout)
    assert_inert(built.stderr, stderr=True)
    assert "skipped empty\\x1b]0;PWNED\\x07.txt: empty file" in out
    assert "skipped raw\\x9b31m\\x1b[2Jname.txt: the name is not valid UTF-8" in out


@pytest.mark.parametrize("argv, shown", [
    (["search", "Where is the Zorblax vault?", "-k", "2"], "Zorblax \\x1b]0;PWNED\\x07 report"),
    (["search", "Zorblax vault records", "--json"], None),
    (["ask", f"Where does the Zorblax vault keep its records?{CLEAR}"], "\\x1b[2Jaccording"),
    (["ask", f"How tall is the {TITLE_SET} giraffe {CSI}in Oslo?"], "the \\x1b]0;PWNED\\x07 giraffe"),
    (["ask", "Where does the Zorblax vault keep its records?", "--json"], None),
    (["ask", "Where is the vault?", "--docs", f"{CLEAR}*.pdf"], "qa: error: No indexed document matches"),
    (["search", "vault", "-k", CLEAR], "invalid int value: '\\x1b[2J'"),
])
def test_no_escape_sequence_reaches_the_terminal(hostile, argv: list[str], shown: str | None) -> None:
    _, index, _ = hostile
    result = subprocess.run([*QA, *argv, "--index", str(index)], capture_output=True, cwd=ROOT, timeout=120)
    out, err = assert_inert(result.stdout), assert_inert(result.stderr)
    if "--json" in argv:
        texts = " ".join(_strings(json.loads(out)))
        assert result.returncode == 0 and TITLE_SET in texts and "evil\x1b[31mname.md" in texts   # escaped, intact
    else:
        assert shown is not None and shown in out + err, out + err
        assert "Traceback" not in err
