"""The index: incremental updates embed only what changed; builds are atomic; damage is explained."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.encoder import Progress
from qa.errors import CorpusError, IndexCorruptError, IndexMissingError, IndexPathError
from qa.index import build_index, is_index_folder, load_index
from qa.index.store import forget_loaded
from qa.retrieval import retrieve

from .conftest import ROOT, SEEDS

NEW_DOC = ("Sturgeon caviar exports\n\nThe Caspian sturgeon caviar export quota was set at 41 tonnes, "
           "officials in Astrakhan said on Monday.\n")


class RecordingEmbedder:
    """The real model, remembering every text it was asked to embed."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str], *, batch_size: int = 64,
              progress: bool | Progress = False) -> np.ndarray:
        self.texts.extend(texts)
        return self.inner.embed(texts, batch_size=batch_size, progress=progress)

    def embed_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], *,
                    batch_size: int = 64, progress: bool | Progress = False) -> tuple[np.ndarray, list[np.ndarray]]:
        self.texts.extend(texts)
        return self.inner.embed_spans(texts, spans, batch_size=batch_size, progress=progress)


def quiet(_line: str) -> None:
    pass


def test_manifest_records_model_chunking_hashes_and_versions(seeds_index: Path) -> None:
    manifest = json.loads((seeds_index / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["model"] == "all-MiniLM-L6-v2" and manifest["dimension"] == 384
    assert (manifest["chunk_tokens"], manifest["chunk_overlap_tokens"]) == (200, 40)
    assert set(manifest["files"]) == {p.name for p in SEEDS.iterdir()}
    assert all(len(h) == 64 for h in manifest["files"].values())
    assert {"faiss-cpu", "sentence-transformers", "bm25s"} <= set(manifest["versions"])
    assert not list(seeds_index.rglob("*.pkl")) and not list(seeds_index.rglob("*.pickle"))


def test_incremental_update_embeds_only_what_changed(corpus_copy: Path, index_copy: Path, settings: Settings,
                                                     embedder) -> None:
    index = index_copy
    before = {c.doc_id for c in load_index(index).chunks}

    (corpus_copy / "005_new.txt").write_text(NEW_DOC, encoding="utf-8")
    changed = corpus_copy / "000_0cda244c9ed3ffe8.txt"
    changed.write_text(changed.read_text(encoding="utf-8").replace(
        "TikTok didn't respond to a request for comment.",
        "TikTok said its walrus moderation team in Reykjavik handles such requests."), encoding="utf-8")
    (corpus_copy / "002_370be3bb71d92220.txt").unlink()

    recorder = RecordingEmbedder(embedder)
    report = build_index(corpus_copy, index, settings=settings, embedder=recorder, log=quiet)

    assert report.added == ("005_new.txt",)
    assert report.changed == ("000_0cda244c9ed3ffe8.txt",)
    assert report.removed == ("002_370be3bb71d92220.txt",)
    assert len(report.unchanged) == 3
    # Only the new and the changed file's text was embedded.
    allowed = (corpus_copy / "005_new.txt").read_text(encoding="utf-8") + changed.read_text(encoding="utf-8")
    # Every new chunk is read; sentences too, unless their vectors are pooled from the chunk pass.
    assert report.sentences_embedded == sum(s.doc_id in {"005_new.txt", changed.name}
                                            for s in load_index(index).sentences)
    assert report.chunks_embedded <= len(recorder.texts) <= report.chunks_embedded + report.sentences_embedded
    for text in recorder.texts:
        body = text.split("\n", 1)[-1] if text.startswith(("Sturgeon", "US officials")) else text
        assert body.split("\n")[0][:40] in allowed, text[:80]

    loaded = load_index(index)
    assert {c.doc_id for c in loaded.chunks} == (before - {"002_370be3bb71d92220.txt"}) | {"005_new.txt"}
    assert retrieve("How much caviar may be exported?", k=1, index=index)[0].doc_id == "005_new.txt"
    top = retrieve("walrus moderation team Reykjavik", k=1, index=index)[0]
    assert top.doc_id == "000_0cda244c9ed3ffe8.txt" and "walrus" in top.text
    assert all(p.doc_id != "002_370be3bb71d92220.txt"
               for p in retrieve("Chinese government PR arm propaganda account", k=5, index=index))

    again = build_index(corpus_copy, index, settings=settings, embedder=RecordingEmbedder(embedder), log=quiet)
    assert again.chunks_embedded == 0 and again.added == again.changed == again.removed == ()


def test_changed_chunk_settings_force_a_full_rebuild_and_say_why(tmp_path: Path, settings: Settings,
                                                                  embedder) -> None:
    corpus_copy = tmp_path / "small"
    corpus_copy.mkdir()
    (corpus_copy / "a.txt").write_text(NEW_DOC, encoding="utf-8")
    (corpus_copy / "b.txt").write_text(NEW_DOC.replace("caviar", "salmon"), encoding="utf-8")
    index = tmp_path / "index"
    build_index(corpus_copy, index, settings=settings, embedder=embedder, log=quiet)
    lines: list[str] = []
    report = build_index(corpus_copy, index, settings=settings.replace(chunk_tokens=120), embedder=embedder,
                         log=lines.append)
    assert report.rebuilt_reason and "chunk_tokens 200 -> 120" in report.rebuilt_reason
    assert any("Full rebuild" in line for line in lines)
    assert report.chunks_embedded == report.chunks


def test_empty_corpus_keeps_the_existing_index(index_copy: Path, tmp_path: Path, settings: Settings,
                                               embedder) -> None:
    index = index_copy
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CorpusError, match="No readable documents.*left as it was"):
        build_index(empty, index, settings=settings, embedder=embedder, log=quiet)
    assert len(load_index(index).documents) == 5


def test_missing_and_corrupt_indexes_give_one_clear_message(seeds_index: Path, tmp_path: Path) -> None:
    with pytest.raises(IndexMissingError, match="qa index"):
        load_index(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    shutil.copytree(seeds_index, broken)
    (broken / "manifest.json").write_text('{"format_version": 1, "model": ', encoding="utf-8")
    with pytest.raises(IndexCorruptError, match=r"unreadable.*qa index --rebuild"):
        load_index(broken)
    (broken / "manifest.json").write_text(json.dumps({"format_version": 99}), encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="format version 99"):
        load_index(broken)
    # The CLI shows the message, not a traceback.
    result = subprocess.run([sys.executable, "-m", "qa.cli", "search", "data", "--index", str(broken)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2
    assert "qa: error:" in result.stderr and "Traceback" not in result.stderr


def test_interrupted_swap_is_recovered(seeds_index: Path, tmp_path: Path) -> None:
    # A build that died between its two renames (non-Linux path) left only index.old-*.
    shutil.copytree(seeds_index, tmp_path / "index.old-1234abcd")
    loaded = load_index(tmp_path / "index")
    assert len(loaded.documents) == 5 and (tmp_path / "index" / "manifest.json").exists()


KILL_SCRIPT = """
import sys
from qa.runtime import configure_process
configure_process()
from qa.config import Settings
from qa.index import build_index
print("START", flush=True)
build_index(sys.argv[1], sys.argv[2], settings=Settings(show_progress=False, embed_batch_size=4),
            log=lambda line: print(line, flush=True))
print("DONE", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("kill_when", ["embedding", "writing"])
def test_build_killed_partway_leaves_the_old_index_working(kill_when: str, corpus_copy: Path, index_copy: Path,
                                                            tmp_path: Path, settings: Settings, embedder) -> None:
    index = index_copy
    old_top = retrieve("Where is TikTok's US user data stored?", k=3, index=index)
    # Enough new text that embedding takes a while.
    for i in range(30):
        lines = [f"Report {i}-{j}: the quota for fishery {j} in district {i} was {i * j} tonnes." for j in range(8)]
        (corpus_copy / f"new_{i:02d}.txt").write_text(f"Filler {i}\n\n" + "\n".join(lines), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(corpus_copy), str(index)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            if line.startswith("Embedding"):
                break
            assert time.monotonic() < deadline
        if kill_when == "writing":
            while not list(tmp_path.glob("index.tmp-*")):
                assert proc.poll() is None, "build finished before it could be killed"
                assert time.monotonic() < deadline
                time.sleep(0.005)
        else:
            time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    loaded = load_index(index)
    assert len(loaded.documents) == 5
    assert retrieve("Where is TikTok's US user data stored?", k=3, index=index) == old_top
    # At most one build folder is ever left, and the next build (or load) removes it.
    assert len(list(tmp_path.glob("index.tmp-*"))) <= 1
    report = build_index(corpus_copy, index, settings=settings, embedder=embedder, log=quiet)
    assert len(report.added) == 30
    assert not list(tmp_path.glob("index.tmp-*"))


# ---- never delete what is not ours ----------------------------------------------------------

def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (links as their targets' text), to prove nothing was touched."""
    return {str(p.relative_to(folder)): (os.readlink(p).encode() if p.is_symlink() else p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()}


@pytest.fixture()
def thesis(tmp_path: Path) -> Path:
    """A user's folder that is not an index: a Word file and notes."""
    folder = tmp_path / "my_thesis"
    (folder / "notes").mkdir(parents=True)
    (folder / "chapter1.docx").write_bytes(b"PK\x03\x04 not really a docx, but the user's")
    (folder / "notes" / "todo.md").write_text("- finish chapter 2\n", encoding="utf-8")
    return folder


def test_an_existing_folder_that_is_not_an_index_is_refused(thesis: Path, corpus_copy: Path, capsys) -> None:
    from qa.cli import main

    before = snapshot(thesis)
    with pytest.raises(IndexPathError, match="exists and is not a qa index"):
        build_index(corpus_copy, thesis)
    assert main(["index", "--corpus", str(corpus_copy), "--index", str(thesis), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qa: error:") and str(thesis) in err and "--index" in err and err.count("\n") == 1
    assert snapshot(thesis) == before
    assert sorted(p.name for p in thesis.parent.iterdir()) == sorted(["my_thesis", "corpus"] +
                                                                     [p.name for p in thesis.parent.glob(".*")])


def test_the_corpus_itself_is_refused_as_index(corpus_copy: Path, tmp_path: Path) -> None:
    before = snapshot(corpus_copy)
    with pytest.raises(IndexPathError, match="is the corpus folder itself"):
        build_index(corpus_copy, corpus_copy)
    with pytest.raises(IndexPathError, match="lies inside the corpus"):
        build_index(corpus_copy, corpus_copy / "index")
    with pytest.raises(IndexPathError, match="contains the corpus"):
        build_index(corpus_copy, tmp_path)
    assert snapshot(corpus_copy) == before and not (corpus_copy / "index").exists()


def test_a_file_or_link_at_the_index_path_is_refused_not_renamed(corpus_copy: Path, tmp_path: Path) -> None:
    afile = tmp_path / "afile.txt"
    afile.write_text("the user's file\n", encoding="utf-8")
    with pytest.raises(IndexPathError, match="is a file"):
        build_index(corpus_copy, afile)
    assert afile.read_text(encoding="utf-8") == "the user's file\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("afile")) == ["afile.txt"]
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "linked-index"
    link.symlink_to(target)
    with pytest.raises(IndexPathError, match="symbolic link"):
        build_index(corpus_copy, link)
    assert link.is_symlink() and not any(target.iterdir())


def test_app_py_refuses_a_foreign_index_folder_too(thesis: Path) -> None:
    before = snapshot(thesis)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run([sys.executable, str(ROOT / "app.py"), "--corpus", str(SEEDS), "--index", str(thesis),
                             "--port", str(port)], capture_output=True, text=True, cwd=ROOT,
                            timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "is not a qa index" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(thesis) == before


def test_an_empty_folder_or_an_older_index_is_built_into(tmp_path: Path, index_copy: Path, settings: Settings,
                                                         embedder) -> None:
    small = tmp_path / "small"
    small.mkdir()
    (small / "a.txt").write_text(NEW_DOC, encoding="utf-8")
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    build_index(small, empty, settings=settings, embedder=embedder, log=quiet)
    assert is_index_folder(empty) and (empty / ".qa-index").is_file()
    # An index written before the marker existed is still recognised by its manifest.
    (index_copy / ".qa-index").unlink()
    assert is_index_folder(index_copy)
    build_index(small, index_copy, settings=settings, embedder=embedder, log=quiet)
    assert set(load_index(index_copy).documents) == {"a.txt"} and (index_copy / ".qa-index").is_file()


def test_leftovers_are_ours_only_and_cleaned_at_load(index_copy: Path, tmp_path: Path) -> None:
    killed = tmp_path / "index.tmp-deadbeef"     # what a killed build leaves: marked, half written
    killed.mkdir()
    (killed / ".qa-index").write_text("qa", encoding="utf-8")
    (killed / "chunk_vectors.npy").write_bytes(b"\x00" * 1000)
    foreign = tmp_path / "index.tmp-holiday-photos"   # the user's, by an unlucky name
    foreign.mkdir()
    (foreign / "beach.jpg").write_bytes(b"\xff\xd8 jpeg")
    forget_loaded()
    assert len(load_index(index_copy).documents) == 5
    assert not killed.exists()
    assert (foreign / "beach.jpg").read_bytes() == b"\xff\xd8 jpeg"


def test_watch_updates_the_index_once_per_burst_of_changes(corpus_copy: Path, index_copy: Path,
                                                           settings: Settings) -> None:
    import threading
    from dataclasses import replace

    from qa.index.watch import watch

    lines: list[str] = []
    stop = threading.Event()
    watching = replace(settings, corpus=corpus_copy, index=index_copy)
    thread = threading.Thread(target=watch, kwargs={"settings": watching, "log": lines.append, "interval": 0.1,
                                                    "debounce": 0.5, "stop": stop})
    thread.start()
    try:
        def wait_for(predicate, timeout: float = 60.0) -> None:
            deadline = time.monotonic() + timeout
            while not predicate():
                assert time.monotonic() < deadline, lines
                time.sleep(0.05)

        wait_for(lambda: any(line.startswith("Watching") for line in lines))
        before = len(lines)
        gone = sorted(corpus_copy.glob("*.txt"))[0]
        gone.unlink()
        (corpus_copy / "new.txt").write_text(NEW_DOC, encoding="utf-8")
        with open(corpus_copy / "new.txt", "a", encoding="utf-8") as fh:   # a second save, same burst
            fh.write("\nOne more line about ocelots.\n")
        wait_for(lambda: any(line.startswith("Indexed") for line in lines[before:]))
        new_lines = lines[before:]
        assert new_lines[:2] == [f"removed: {gone.name}", "added: new.txt"]   # one line each, by doc_id
        assert sum(line.startswith("Indexed") for line in new_lines) == 1   # debounced: one update
        assert "1 added" in new_lines[-1] and "1 removed" in new_lines[-1]
        loaded = load_index(index_copy)
        assert "new.txt" in loaded.documents and gone.name not in loaded.documents
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
