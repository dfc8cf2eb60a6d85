"""The `qa` command: the acceptance commands, and clear errors instead of tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.cli import main

from .conftest import SEEDS


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_search_json_ranks_virginia_first_with_exact_offsets(seeds_index: Path, capsys) -> None:
    question = "Where is TikTok's US user data stored?"
    code, out, _ = run(capsys, "search", question, "--json", "--index", str(seeds_index))
    assert code == 0
    top = json.loads(out)[0]
    assert "stored in Virginia with a back-up in Singapore" in top["text"]
    assert (SEEDS / top["doc_id"]).read_text(encoding="utf-8")[top["start"]:top["end"]] == top["text"]


def test_ask_json_answers_from_the_independent(seeds_index: Path, capsys) -> None:
    code, out, _ = run(capsys, "ask", "How many accounts did TikTok remove?", "--json", "--index", str(seeds_index))
    data = json.loads(out)
    assert code == 0 and not data["abstained"] and "3,000" in data["answer"]
    assert data["citations"][0]["doc_id"] == "003_1e2a6170b287ded5.txt"
    assert "Independent" in (SEEDS / "003_1e2a6170b287ded5.txt").read_text(encoding="utf-8")


def test_ask_shows_the_marked_short_answer_under_its_quote(seeds_index: Path, capsys) -> None:
    code, out, _ = run(capsys, "ask", "How many accounts did TikTok remove?", "--index", str(seeds_index))
    lines = out.splitlines()
    assert code == 0 and "    answer: 3,000" in lines
    at = lines.index("    answer: 3,000")
    assert "3,000 accounts" in lines[at - 1] or "3,000 accounts" in " ".join(lines[at - 3:at])


def test_ask_abstains_in_plain_words(seeds_index: Path, capsys) -> None:
    code, out, _ = run(capsys, "ask", "How old is Roland Cloutier?", "--index", str(seeds_index))
    assert code == 0 and out.startswith("The documents don't say")
    assert "Related reading" in out


def test_index_command_is_incremental(corpus_copy: Path, index_copy: Path, capsys) -> None:
    code, out, _ = run(capsys, "index", "--corpus", str(corpus_copy), "--index", str(index_copy), "--quiet")
    assert code == 0 and "up to date" in out


@pytest.mark.parametrize("argv, message", [
    (["search", "  ", "--index", "{index}"], "The question is empty"),
    (["ask", "data?", "--index", "{missing}"], "No index found"),
    (["index", "--corpus", "{missing}", "--index", "{missing}"], "Corpus folder not found"),
    (["search", "data", "-k", "-3", "--index", "{index}"], "Invalid -k value: -3. It must be 1 or more."),
    (["search", "data", "-k", "0", "--index", "{index}"], "Invalid -k value: 0. It must be 1 or more."),
    (["bench", "squad", "--sample", "0"], "Invalid --sample value: 0. It must be 1 or more."),
])
def test_errors_are_one_clear_line(argv: list[str], message: str, seeds_index: Path, tmp_path: Path,
                                   capsys) -> None:
    args = [a.format(index=seeds_index, missing=tmp_path / "missing") for a in argv]
    code, _, err = run(capsys, *args)
    assert code == 2 and err.startswith("qa: error:") and message in err
    assert "Traceback" not in err


def test_unwritable_index_location_is_a_clear_error(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    code, _, err = run(capsys, "index", "--corpus", str(SEEDS), "--index", str(blocker / "index"), "--quiet")
    assert code == 2 and err.startswith("qa: error:") and str(blocker) in err


@pytest.mark.parametrize("command", ["ask", "search"])
def test_invalid_utf8_arguments_are_one_line(seeds_index: Path, command: str) -> None:
    import subprocess
    import sys

    # Invalid UTF-8 on a command line reaches Python as lone surrogates.
    broken = b"caf\xe9 data?".decode("utf-8", "surrogateescape")
    result = subprocess.run([sys.executable, "-m", "qa.cli", command, broken, "--index", str(seeds_index)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith("qa: error: The question is not valid text")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("toml, message", [
    ('top_k = "eight"', "Invalid top_k value: 'eight'. It must be a whole number."),
    ("port = 70000", "Invalid port value: 70000. It must lie in 1-65535."),
    ("max_question_chars = 0", "Invalid max_question_chars value: 0. It must be 1 or more."),
    ("show_progress = 1", "Invalid show_progress value: 1. It must be true or false."),
])
def test_bad_settings_files_are_one_line(tmp_path: Path, capsys, toml: str, message: str) -> None:
    config = tmp_path / "qa.toml"
    config.write_text(toml + "\n", encoding="utf-8")
    code, _, err = run(capsys, "--config", str(config), "ask", "Where is the data?")
    assert code == 2 and err == f"qa: error: {message}\n"
