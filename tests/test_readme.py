"""Every example in README.md runs here, so the README cannot drift from the code.

- ```python blocks run in a fresh interpreter, in a folder holding a copy of seeds/ (as a clone
  does); the block that talks to the web chat runs against a real server.
- ```console blocks: each `$ ...` line runs in bash in that folder, with HOME pointing there too
  (so `~/research/leaks` is a copy of the seeds). What matters in the shown output is checked:
  the files it cites, whether it abstains or is tentative, and, for `qa: error:` lines, the exact
  one-line message with exit status 2.
- ```toml blocks are read as settings.

The examples that talk to a running server (the chat's `/ask` with `gradio_client` and curl, the
`openai` client) moved to docs/chat.md and docs/serving.md with the rest of the method, and run
against a real server in tests/test_docs.py; so do the error messages (docs/safety.md).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.config import Settings

from .conftest import ROOT, SEEDS

README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```$", README, re.S | re.M)
BIN = Path(sys.executable).parent
_FILE = re.compile(r"\b[\w.-]+\.(?:txt|md|html)\b")


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCKS if lang == language]


def test_the_readme_has_the_examples_these_tests_run() -> None:
    assert len(blocks("python")) == 1 and len(blocks("console")) >= 2
    assert len(blocks("toml")) == 2 and {lang for lang, _ in BLOCKS} == {"python", "console", "toml"}


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


# One test per console block: a block's commands run in order in one sandbox (the second
# `qa index` finds the first one's index up to date, and `qa search` reads it), which separate
# tests could not promise under pytest-xdist, where they may land on different workers.
CONSOLE = [list(_commands(block)) for block in blocks("console")]


@pytest.mark.parametrize("commands", CONSOLE, ids=[" && ".join(c for c, _ in block) for block in CONSOLE])
def test_console_example(sandbox: Path, commands: list[tuple[str, str]]) -> None:
    for command, shown in commands:
        _check_console(sandbox, command, shown)


def _check_console(sandbox: Path, command: str, shown: str) -> None:
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
