"""Every example in README.md runs here, so the README cannot drift from the code.

- ```python blocks run in a fresh interpreter, in a folder holding a copy of seeds/ (as a clone
  does); the block that talks to the web chat runs against a real server.
- ```console blocks: each `$ ...` line runs in bash in that folder, with HOME pointing there too
  (so `~/research/leaks` is a copy of the seeds). What matters in the shown output is checked:
  the files it cites, whether it abstains or is tentative, and, for `qa: error:` lines, the exact
  one-line message with exit status 2.
- ```toml blocks are read as settings; the ```sh block (curl) and the `openai` client's block run
  against a real server.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.config import Settings
from qa.index import load_index

from .conftest import ROOT, SEEDS

README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```$", README, re.S | re.M)
BIN = Path(sys.executable).parent
_FILE = re.compile(r"\b[\w.-]+\.(?:txt|md|html)\b")


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCKS if lang == language]


def test_the_readme_has_the_examples_these_tests_run() -> None:
    assert len(blocks("python")) == 3 and len(blocks("console")) >= 3
    assert len(blocks("toml")) == 2 and len(blocks("sh")) == 1


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory, seeds_index: Path) -> Path:
    """A folder as a fresh clone has it after `make index`: seeds/ and index/ (plus ~/research)."""
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(SEEDS, root / "seeds")
    shutil.copytree(seeds_index, root / "index")
    shutil.copytree(SEEDS, root / "research" / "leaks")
    return root


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "HOME": str(home), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1"}


def test_python_example_runs_in_a_fresh_interpreter(tmp_path: Path) -> None:
    code = blocks("python")[0]
    assert "import qa" in code and "follow_up" in code
    shutil.copytree(SEEDS, tmp_path / "seeds")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                            env=_env(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Virginia" in result.stdout
    # The last line printed is the follow-up's answer, and it names Singapore.
    assert "Singapore" in result.stdout.strip().splitlines()[-1]
    assert (tmp_path / "index" / "manifest.json").exists()


def _commands(block: str) -> Iterator[tuple[str, str]]:
    """(command, shown output) for each `$ ` line of a console block."""
    parts = re.split(r"^\$ ", block, flags=re.M)
    for part in parts[1:]:
        command, _, shown = part.partition("\n")
        yield command, shown


CONSOLE = [(command, shown) for block in blocks("console") for command, shown in _commands(block)]


@pytest.mark.parametrize("command, shown", CONSOLE, ids=[c for c, _ in CONSOLE])
def test_console_example(sandbox: Path, command: str, shown: str) -> None:
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=sandbox,
                            env=_env(sandbox), timeout=300, stdin=subprocess.DEVNULL)
    errors = [line for line in shown.splitlines() if line.startswith("qa: error:")]
    if errors:
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.splitlines() == errors and "Traceback" not in result.stderr
        return
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for name in _FILE.findall(shown):
        assert name in out, (name, out)
    for line in shown.splitlines():
        if line.startswith("    answer: "):   # the short answer the reader marked
            assert line in out.splitlines(), (line, out)
    for phrase in ("The documents don't say", "The documents may not answer this directly", "Singapore",
                   "3,000", "up to date"):
        assert (phrase in shown) == (phrase in out), (phrase, out)


def test_toml_example_is_valid_settings(tmp_path: Path) -> None:
    path = tmp_path / "qa.toml"
    path.write_text(blocks("toml")[0], encoding="utf-8")
    settings = Settings.from_file(path)
    assert settings.host == "127.0.0.1" and settings.concurrency == 4 and settings.auth_user == "ana"


def test_serve_toml_example_names_two_collections(tmp_path: Path) -> None:
    from qa.collections import collection_specs

    path = tmp_path / "serve.toml"
    path.write_text(blocks("toml")[1], encoding="utf-8")
    settings = Settings.from_file(path)
    assert settings.host == "0.0.0.0" and settings.api_key and len(settings.login_pairs()) == 2
    assert [c.name for c in collection_specs(settings)] == ["tiktok", "leaks"]


@pytest.fixture(scope="module")
def server(seeds_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from qa.web import serve

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tmp_path_factory.mktemp("readme-server")
    settings = Settings(index=seeds_index, port=port, database=folder / "qa.sqlite3")
    app = serve(settings, block=False, index=load_index(seeds_index), log_line=None)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


def _on(url: str, text: str) -> str:
    """The README's examples address the default http://127.0.0.1:7860/; the test server's port differs."""
    return text.replace("http://127.0.0.1:7860/", url)


def test_http_api_python_example(server: str, tmp_path: Path) -> None:
    code = _on(server, blocks("python")[1])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                            env=_env(tmp_path), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.strip().splitlines() if not line.startswith("Loaded as API")]
    assert "Virginia" in lines[0] and "Singapore" in lines[-2] and lines[-1] == "True"
    assert any(re.match(r"\[1\] .*\(001_176dacc757c32b0f\.txt, chars \d+-\d+\): ", line) for line in lines)


def test_openai_python_example(server: str, tmp_path: Path) -> None:
    code = blocks("python")[2].replace("http://127.0.0.1:7860/v1", server + "v1")
    assert "from openai import OpenAI" in code and server in code
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                            env=_env(tmp_path), timeout=120)
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
    result = subprocess.run(["bash", "-c", _on(server, blocks("sh")[0])], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "event: complete" in result.stdout and "Virginia" in result.stdout
