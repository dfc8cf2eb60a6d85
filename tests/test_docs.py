"""Every example in the docs site's pages (docs/*.md) runs here, as README.md's do
(tests/test_readme.py), so the docs cannot drift from the code.

- Every fenced block is an example and names its language. ```python blocks run in a fresh
  interpreter in a folder holding a copy of seeds/ and its index (as a clone has them after
  `make index`) and `mail/`, two saved e-mails (tests/test_eml.py writes them); where the page
  follows the block with "prints" and an indented block, that is its exact output.
- ```console blocks: each `$ ...` line runs in bash in that folder, in order. Every file the shown
  output names must be in the real output, and every line of the build log about a file
  (`crane.eml: 2 attachments skipped ...`) and every short answer (`answer: ...`) must be printed
  as shown.
- Indented `qa ...` lines are synopses of measurements that take minutes (`qa bench scale`: ten
  minutes and 10 GiB): each is parsed by the real `qa` command's parser, so a renamed command or
  flag fails here.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qa.cli import _parser

from .conftest import ROOT, SEEDS
from .test_eml import crane_mail, ferry_mail

PAGES = sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n(?:\nprints\n\n((?:    [^\n]*\n|\n)+))?", re.S | re.M)
BIN = Path(sys.executable).parent
_FILE = re.compile(r"\b[\w.-]+\.(?:txt|md|html|pdf|docx|eml)\b")
_NOTE = re.compile(r"^[\w.-]+\.\w+: ")


def _examples(language: str) -> list[tuple[str, str, str]]:
    """(page, block, its shown output or '') of every fenced block in `language`."""
    return [(page.name, body, textwrap.dedent(shown or "").strip())
            for page in PAGES for lang, body, shown in FENCE.findall(page.read_text(encoding="utf-8"))
            if lang == language]


def test_every_fenced_block_in_the_docs_is_an_example_these_tests_run() -> None:
    languages = {(page.name, lang) for page in PAGES for lang, _, _ in FENCE.findall(page.read_text(encoding="utf-8"))}
    assert {lang for _, lang in languages} <= {"python", "console"}, languages
    fences = sum(page.read_text(encoding="utf-8").count("\n```") for page in PAGES)
    assert fences == 2 * len(_examples("python") + _examples("console")) > 0   # every fence found by FENCE


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory, seeds_index: Path) -> Path:
    root = tmp_path_factory.mktemp("docs")
    shutil.copytree(SEEDS, root / "seeds")
    shutil.copytree(seeds_index, root / "index")
    (root / "mail").mkdir()
    (root / "mail" / "crane.eml").write_bytes(crane_mail())
    (root / "mail" / "ferry.eml").write_bytes(ferry_mail())
    return root


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "HOME": str(home), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1"}


PYTHON = _examples("python")


@pytest.mark.parametrize("page, code, shown", PYTHON, ids=[f"{p}-{i}" for i, (p, _, _) in enumerate(PYTHON)])
def test_python_example_runs(sandbox: Path, page: str, code: str, shown: str) -> None:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=sandbox,
                            env=_env(sandbox), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    if shown:
        assert [line.rstrip() for line in result.stdout.strip().splitlines()] == shown.splitlines()


CONSOLE = [(page, command, output) for page, block, _ in _examples("console")
           for command, output in (part.partition("\n")[::2] for part in re.split(r"^\$ ", block, flags=re.M)[1:])]


@pytest.mark.parametrize("page, command, shown", CONSOLE, ids=[f"{p}: {c}" for p, c, _ in CONSOLE])
def test_console_example_runs(sandbox: Path, page: str, command: str, shown: str) -> None:
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=sandbox,
                            env=_env(sandbox), timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    lines = {line.strip() for line in out.splitlines()}
    for name in _FILE.findall(shown):
        assert name in out, (name, out)
    for line in shown.splitlines():
        if _NOTE.match(line) or line.strip().startswith("answer: "):
            assert line.strip() in lines, (line, out)


SYNOPSES = [(page.name, line.strip()) for page in PAGES
            for line in page.read_text(encoding="utf-8").splitlines() if re.match(r" {4}qa ", line)]


@pytest.mark.parametrize("page, line", SYNOPSES, ids=[f"{p}: {c}" for p, c in SYNOPSES])
def test_synopsis_lines_are_commands_qa_takes(page: str, line: str) -> None:
    words = shlex.split(line, comments=True)
    args = _parser().parse_args(words[1:])   # exits (status 2) on a command or flag qa does not have
    assert args.command == words[1]
