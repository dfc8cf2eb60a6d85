"""The index: incremental updates embed only what changed; builds are atomic; damage is explained."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.errors import CorpusError, IndexCorruptError, IndexMissingError
from qa.index import build_index, load_index
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

    def embed(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        self.texts.extend(texts)
        return self.inner.embed(texts, batch_size=batch_size, progress=progress)


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
    assert recorder.texts and report.chunks_embedded + report.sentences_embedded == len(recorder.texts)
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
    # The next build cleans up after the killed one and completes.
    report = build_index(corpus_copy, index, settings=settings, embedder=embedder, log=quiet)
    assert len(report.added) == 30
    assert not list(tmp_path.glob("index.tmp-*"))
