"""Collections (qa/collections.py): several corpora, each with its index, served by one server."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qa.collections import MAX_COLLECTIONS, CollectionSpec, collection_specs, collections_in, parse_collection
from qa.config import Settings
from qa.errors import SettingsError

from .conftest import NOTES, ROOT, QaServer, free_port
from .test_conversations import login
from .test_web import REPLIES, _ask


def test_a_collection_is_name_corpus_and_index(tmp_path: Path) -> None:
    assert parse_collection("story=~/stories/a:/data/a.index") == \
        CollectionSpec("story", Path("~/stories/a").expanduser(), Path("/data/a.index"))
    for bad, message in (("story", "write it as NAME=CORPUS:INDEX"), ("story=corpus", "NAME=CORPUS:INDEX"),
                         ("story=a:b:c", "neither path may hold a ':'"), ("=a:b", "Invalid collection name ''"),
                         ("my story=a:b", "Invalid collection name 'my story'"), ("-x=a:b", "starting with a letter")):
        with pytest.raises(SettingsError, match=message):
            parse_collection(bad)
    settings = Settings(collections=("a=c1:i1", "a=c2:i2"))
    with pytest.raises(SettingsError, match="Two collections are named a"):
        collection_specs(settings)
    with pytest.raises(SettingsError, match=r"served from the index .*i1"):
        collection_specs(Settings(collections=("a=c1:i1", "b=c2:i1")))
    too_many = tuple(f"c{i}=corpus:index{i}" for i in range(MAX_COLLECTIONS + 1))
    with pytest.raises(SettingsError, match=f"at most {MAX_COLLECTIONS}"):
        collection_specs(Settings(collections=too_many))
    assert collection_specs(Settings()) == []   # none named: the one index of `index` and `corpus`


def test_a_folder_of_indexes_is_a_collection_per_index(tmp_path: Path, seeds_index: Path) -> None:
    folder = tmp_path / "stories"
    folder.mkdir()
    shutil.copytree(seeds_index, folder / "tiktok")
    shutil.copytree(seeds_index, folder / "second.copy")
    shutil.copytree(seeds_index, folder / "tiktok.tmp-0123abcd")   # a build's leftover: not a collection
    (folder / "notes").mkdir()                                        # not an index
    (folder / "readme.txt").write_text("hello", encoding="utf-8")
    lines: list[str] = []
    specs = collections_in(folder, lines.append)
    assert [s.name for s in specs] == ["second.copy", "tiktok"] and lines == []
    assert all(s.corpus == (ROOT / "seeds").resolve() and s.index.parent == folder for s in specs)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SettingsError, match="holds no qa index"):
        collections_in(empty)
    with pytest.raises(SettingsError, match="is not a folder"):
        collections_in(tmp_path / "missing")


def test_qa_serve_says_in_one_line_what_is_wrong_with_a_collection(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "qa.cli", "serve", "--port", str(free_port()), "--collection", "story"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and result.stderr.startswith("qa: error: Invalid collection 'story'")
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.browser
def test_the_chat_answers_from_the_collection_chosen_and_uploads_go_there(qa_server: QaServer, browser: Any,
                                                                           tmp_path: Path) -> None:
    seeds_corpus, notes_corpus = (Path(s.split("=", 1)[1].split(":")[0]) for s in qa_server.settings.collections)
    page = login(browser, qa_server.url, "ana")
    try:
        page.locator("#qa-collection input").click()
        page.get_by_role("option", name="notes").click()
        page.wait_for_function("document.querySelector('.qa-header').innerText.includes('notes')")
        reply = _ask(page, "When does the night ferry to Kiel leave Oslo?")
        assert "14:00" in reply.inner_text()
        assert set(page.locator("#qa-sources .qa-file").all_inner_texts()) <= set(NOTES)
        href = page.locator("#qa-sources a.qa-open").first.get_attribute("href")
        assert href == "qa/file?doc=ferry.txt&collection=notes"
        assert page.request.get(qa_server.url + href).body() == (notes_corpus / "ferry.txt").read_bytes()
        tiktok = _ask(page, "Where is TikTok's US user data stored?")   # not in these notes
        assert "Virginia" not in tiktok.inner_text()

        # An upload lands in the chosen collection's corpus and is answered from there.
        upload = tmp_path / "harbour.txt"
        upload.write_text("Harbour report\n\nThe harbour master counted 412 fishing boats in the northern harbour "
                          "in May.\n", encoding="utf-8")
        page.click("#qa-docs .label-wrap")
        page.set_input_files("#qa-upload input[type=file]", [str(upload)])
        page.wait_for_selector("#qa-docs-status .qa-docs-outcome", timeout=120_000)
        assert "Added uploads/harbour.txt." in page.inner_text("#qa-docs-status")
        assert (notes_corpus / "uploads" / "harbour.txt").exists()
        assert not (seeds_corpus / "uploads" / "harbour.txt").exists()
        boats = _ask(page, "How many fishing boats were in the northern harbour?")
        assert "412" in boats.inner_text()

        # Back to the seeds: a new conversation over them, which knows nothing of the harbour.
        page.locator("#qa-collection input").click()
        page.get_by_role("option", name="seeds").click()
        page.wait_for_function("document.querySelectorAll('#qa-chat .qa-reply').length === 0")
        assert "412" not in _ask(page, "How many fishing boats were in the northern harbour?").inner_text()
        assert "Virginia" in _ask(page, "Where is TikTok's US user data stored?").inner_text()
        assert page.locator(REPLIES).count() == 2
    finally:
        page.close()
