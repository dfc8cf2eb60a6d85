"""Every example in the docs site's pages (docs/*.md) runs here, as README.md's do
(tests/test_readme.py), so the docs cannot drift from the code.

- Every fenced block is an example and names its language. A page's examples run in page order,
  as one test, in a folder of its own holding a copy of seeds/ and its index (as a clone has them
  after `make index`), `mail/`, two saved e-mails (tests/test_eml.py writes them), and
  `research/leaks/`, another copy of the seeds (HOME points at the folder, so `~/research/leaks`
  is that copy). ```python blocks run in a fresh interpreter there; where the page follows the
  block with "prints" and an indented block, that is its exact output.
- Blocks that address the chat at http://127.0.0.1:7860 (```python with `gradio_client` or the
  `openai` client, ```sh with curl) run against a real server over the seeds, and what they print
  is checked.
- ```console blocks: each `$ ...` line runs in bash in that folder, in order. Every file the shown
  output names must be in the real output, and every line of the build log about a file
  (`crane.eml: 2 attachments skipped ...`) and every short answer (`answer: ...`) must be printed
  as shown. Where the shown output is `qa: error:` lines, those are exactly its stderr, with exit
  status 2 and no traceback.
- Indented `qa ...` lines are synopses of measurements that take minutes (`qa bench scale`: ten
  minutes and 10 GiB): each is parsed by the real `qa` command's parser, so a renamed command or
  flag fails here.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.cli import _parser
from qa.config import Settings
from qa.index import load_index

from .conftest import ROOT, SEEDS
from .test_eml import crane_mail, ferry_mail

PAGES = sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n(?:\nprints\n\n((?:    [^\n]*\n|\n)+))?", re.S | re.M)
BIN = Path(sys.executable).parent
_FILE = re.compile(r"\b[\w.-]+\.(?:txt|md|html|pdf|docx|eml)\b")
_NOTE = re.compile(r"^[\w.-]+\.\w+: ")
SERVER = "http://127.0.0.1:7860/"   # where the examples find the chat; the test server's port differs


def _blocks(page: Path) -> list[tuple[str, str, str]]:
    """(language, block, its shown output or '') of every fenced block of `page`, in page order."""
    return [(lang, body, textwrap.dedent(shown or "").strip())
            for lang, body, shown in FENCE.findall(page.read_text(encoding="utf-8"))]


def _examples(language: str) -> list[tuple[str, str, str]]:
    """(page, block, its shown output or '') of every fenced block in `language`."""
    return [(page.name, body, shown) for page in PAGES for lang, body, shown in _blocks(page) if lang == language]


def test_every_fenced_block_in_the_docs_is_an_example_these_tests_run() -> None:
    languages = {(page.name, lang) for page in PAGES for lang, _, _ in FENCE.findall(page.read_text(encoding="utf-8"))}
    assert {lang for _, lang in languages} <= {"python", "console", "sh"}, languages
    fences = sum(page.read_text(encoding="utf-8").count("\n```") for page in PAGES)
    examples = _examples("python") + _examples("console") + _examples("sh")
    assert fences == 2 * len(examples) > 0   # every fence found by FENCE
    # Every example that needs the server is one of those the served tests below check.
    assert sorted(code for _, code, _ in _examples("python") + _examples("sh") if SERVER in code) == sorted(
        [_served("gradio_client"), _served("from openai import OpenAI"), _served("curl")])


def _sandbox(root: Path, seeds_index: Path) -> Path:
    shutil.copytree(SEEDS, root / "seeds")
    shutil.copytree(seeds_index, root / "index")
    (root / "mail").mkdir()
    (root / "mail" / "crane.eml").write_bytes(crane_mail())
    (root / "mail" / "ferry.eml").write_bytes(ferry_mail())
    shutil.copytree(SEEDS, root / "research" / "leaks")
    return root


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "HOME": str(home), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1"}


def _steps(page: Path) -> list[tuple[str, str, str]]:
    """(language, code or one `$` command, its shown output) of a page's examples, in page order;
    the examples that address the chat's server are left to the served tests below."""
    steps = []
    for lang, body, shown in _blocks(page):
        if lang == "python" and SERVER not in body:
            steps.append(("python", body, shown))
        elif lang == "console":
            for part in re.split(r"^\$ ", body, flags=re.M)[1:]:
                command, _, output = part.partition("\n")
                steps.append(("console", command, output))
    return steps


# A page's examples run in order in one sandbox of their own (an index one builds, the next asks),
# so they are one test: a test per example relied on them running in order on one xdist worker,
# which --dist loadgroup no longer ensures with pytest 9.2 (pytest-dev/pytest-xdist#1386).
STEPPED = [page for page in PAGES if _steps(page)]


@pytest.mark.parametrize("page", STEPPED, ids=[page.name for page in STEPPED])
def test_page_examples_run_in_order(page: Path, seeds_index: Path, tmp_path: Path) -> None:
    sandbox = _sandbox(tmp_path, seeds_index)
    for language, code, shown in _steps(page):
        if language == "python":
            _check_python(sandbox, code, shown)
        else:
            _check_console(sandbox, code, shown)


def _check_python(sandbox: Path, code: str, shown: str) -> None:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=sandbox,
                            env=_env(sandbox), timeout=300)
    assert result.returncode == 0, (code, result.stderr[-3000:])
    if shown:
        assert [line.rstrip() for line in result.stdout.strip().splitlines()] == shown.splitlines(), code


def _check_console(sandbox: Path, command: str, shown: str) -> None:
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=sandbox,
                            env=_env(sandbox), timeout=300, stdin=subprocess.DEVNULL)
    errors = [line for line in shown.splitlines() if line.startswith("qa: error:")]
    if errors:   # bad input: one line on stderr, exit status 2, never a traceback
        assert result.returncode == 2, (command, result.stdout + result.stderr)
        assert result.stderr.splitlines() == errors and "Traceback" not in result.stderr, command
        return
    assert result.returncode == 0, (command, result.stderr[-3000:])
    out = result.stdout + result.stderr
    lines = {line.strip() for line in out.splitlines()}
    for name in _FILE.findall(shown):
        assert name in out, (command, name, out)
    for line in shown.splitlines():
        if _NOTE.match(line) or line.strip().startswith("answer: "):
            assert line.strip() in lines, (command, line, out)


SYNOPSES = [(page.name, line.strip()) for page in PAGES
            for line in page.read_text(encoding="utf-8").splitlines() if re.match(r" {4}qa ", line)]


@pytest.mark.parametrize("page, line", SYNOPSES, ids=[f"{p}: {c}" for p, c in SYNOPSES])
def test_synopsis_lines_are_commands_qa_takes(page: str, line: str) -> None:
    words = shlex.split(line, comments=True)
    args = _parser().parse_args(words[1:])   # exits (status 2) on a command or flag qa does not have
    assert args.command == words[1]


def _served(marker: str) -> str:
    """The one docs example addressing the chat's server whose code holds `marker`."""
    found = [code for _, code, _ in _examples("python") + _examples("sh") if SERVER in code and marker in code]
    assert len(found) == 1, (marker, len(found))
    return found[0]


@pytest.fixture(scope="module")
def server(seeds_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real chat server over the seeds, as `qa serve` runs it (no login, no API key)."""
    from qa.web import serve

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tmp_path_factory.mktemp("docs-server")
    settings = Settings(index=seeds_index, port=port, database=folder / "qa.sqlite3")
    app = serve(settings, block=False, index=load_index(seeds_index), log_line=None)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


def _run_served(code: str, url: str, cwd: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command, code.replace(SERVER, url)], capture_output=True, text=True, cwd=cwd,
                          env=_env(cwd), timeout=120)


def test_http_api_python_example(server: str, tmp_path: Path) -> None:
    result = _run_served(_served("gradio_client"), server, tmp_path, sys.executable, "-c")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.strip().splitlines() if not line.startswith("Loaded as API")]
    assert "Virginia" in lines[0] and "Singapore" in lines[-2] and lines[-1] == "True"
    assert any(re.match(r"\[1\] .*\(001_176dacc757c32b0f\.txt, chars \d+-\d+\): ", line) for line in lines)


def test_openai_python_example(server: str, tmp_path: Path) -> None:
    code = _served("from openai import OpenAI")
    assert "http://127.0.0.1:7860/v1" in code
    result = _run_served(code, server, tmp_path, sys.executable, "-c")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "['seeds']" and "Virginia" in lines[1] and "[1]" in lines[1]
    assert "Sources:" in lines and any(re.match(r"- \[1\] .*\(001_176dacc757c32b0f\.txt, chars \d+-\d+\): <http", line)
                                       for line in lines)
    assert any(re.match(r"1 001_176dacc757c32b0f\.txt \d+ \d+ It pointed out", line) for line in lines)
    streamed = lines[-4:]   # the streamed reply, whole: the answer, a blank line, its sources
    assert "removed 3,000 accounts" in streamed[0] and streamed[0].endswith("[1]") and streamed[2] == "Sources:"
    assert streamed[3].startswith("- [1] Groups trying to use TikTok") and "003_1e2a6170b287ded5.txt" in streamed[3]


def test_curl_example(server: str, tmp_path: Path) -> None:
    result = _run_served(_served("curl"), server, tmp_path, "bash", "-c")
    assert result.returncode == 0, result.stderr
    assert "event: complete" in result.stdout and "Virginia" in result.stdout
