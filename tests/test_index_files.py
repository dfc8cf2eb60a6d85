"""The files of a loaded index (qa/index/files.py): checksums that name a damaged file, an index
changed underneath a process that holds it, and a served index that stays up through it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import qa
from qa.cli import main
from qa.config import Settings
from qa.errors import IndexChangedError, IndexCorruptError, IndexMissingError
from qa.index import build_index, load_index
from qa.index import files as index_files
from qa.index.store import forget_loaded, verify_index, write_manifest

from .conftest import ROOT

QUESTION = "Where is TikTok's US user data stored?"


def _files(index: Path) -> list[str]:
    return sorted(json.loads((index / "manifest.json").read_text(encoding="utf-8"))["checksums"])


def _scribble(path: Path, at: int | None = None, count: int = 64) -> None:
    """Random bytes written inside `path`, in place (its size stays)."""
    size = path.stat().st_size
    at = size // 2 if at is None else at
    with open(path, "r+b") as fh:
        fh.seek(min(at, max(size - count, 0)))
        fh.write(os.urandom(min(count, size)))


def test_random_bytes_in_any_index_file_are_named_on_load(index_copy: Path, capsys) -> None:
    names = _files(index_copy)
    assert {"chunk_vectors.npy", "dense.faiss", "bm25/data.csc.index.npy", "documents.jsonl"} <= set(names)
    for name in names:
        keep = (index_copy / name).read_bytes()
        _scribble(index_copy / name)
        forget_loaded()
        with pytest.raises(IndexCorruptError) as refused:
            load_index(index_copy)
        message = str(refused.value)
        assert message.startswith(f"{index_copy / name} is corrupt (checksum mismatch): rebuild it with "
                                  f"`qa index --rebuild --index {index_copy}`"), message
        (index_copy / name).write_bytes(keep)
    # The manifest checks itself: damage is named there, not in the file whose checksum it hit.
    manifest = index_copy / "manifest.json"
    keep = manifest.read_bytes()
    at = keep.index(b'"xxh3_128": "') + 20
    manifest.write_bytes(keep[:at] + b"0123" + keep[at + 4:])     # still valid JSON
    forget_loaded()
    with pytest.raises(IndexCorruptError, match="^" + re.escape(f"{manifest} is corrupt (checksum mismatch)")):
        load_index(index_copy)
    manifest.write_bytes(keep)
    # qa index --verify names it too, in one line, and passes a whole index.
    _scribble(index_copy / "sentence_vectors.npy")
    assert main(["index", "--verify", "--index", str(index_copy)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sentence_vectors.npy is corrupt (checksum mismatch)" in err


def test_a_large_file_is_sampled_on_load_and_verified_whole_and_never_gives_nan_scores(
        index_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As if the vector files were over the 16 MB a load hashes whole: their checksums are sampled.
    monkeypatch.setattr(index_files, "CHECK_WHOLE_BYTES", 16_384)
    monkeypatch.setattr(index_files, "SAMPLE_BYTES", 256)
    monkeypatch.setattr(index_files, "SAMPLE_BLOCKS", 8)
    manifest = load_index(index_copy).manifest
    forget_loaded()
    write_manifest(index_copy, manifest)
    vectors = index_copy / "chunk_vectors.npy"
    size = vectors.stat().st_size
    assert "sampled" in json.loads((index_copy / "manifest.json").read_text())["checksums"]["chunk_vectors.npy"]
    # NaN over every row, between the sampled blocks: the load's sample does not see it ...
    table = np.lib.format.open_memmap(vectors, mode="r+")
    header, row = size - table.nbytes, table.shape[1] * 4
    sampled = [(size - 256) * i // 7 for i in range(8)]      # where the 8 blocks of 256 bytes start
    rows = [r for r in range(len(table))
            if not any(header + r * row < at + 256 and header + (r + 1) * row > at for at in sampled)]
    assert len(rows) > len(table) // 2
    table[rows] = np.nan
    table.flush()
    del table
    forget_loaded()
    loaded = load_index(index_copy)
    # ... but no question gets NaN scores from it: the rows a question reads are checked,
    with pytest.raises(IndexCorruptError, match="chunk_vectors.npy is corrupt .*not unit vectors"):
        qa.retrieve(QUESTION, index=loaded)
    # and --verify hashes it whole.
    report = verify_index(index_copy)
    assert len(report.problems) == 1 and "chunk_vectors.npy is corrupt (checksum mismatch)" in report.problems[0]


def test_an_index_without_checksums_loads_and_gains_them_without_embedding(
        index_copy: Path, corpus_copy: Path, settings: Settings, embedder) -> None:
    manifest = json.loads((index_copy / "manifest.json").read_text(encoding="utf-8"))
    (index_copy / "manifest.json").write_text(json.dumps({**manifest, "format_version": 2, "checksums": {}}),
                                              encoding="utf-8")
    forget_loaded()
    assert "Virginia" in qa.answer(QUESTION, index=index_copy, settings=settings).text
    assert "no checksums (format 2" in verify_index(index_copy).problems[0]
    lines: list[str] = []
    report = build_index(corpus_copy, index_copy, settings=settings, embedder=embedder, log=lines.append)
    assert report.chunks_embedded == 0 and any("format 2 -> 3" in line for line in lines), lines
    assert verify_index(index_copy).problems == () and _files(index_copy)


def test_a_half_index_names_the_missing_file(index_copy: Path, tmp_path: Path) -> None:
    (index_copy / "manifest.json").unlink()
    with pytest.raises(IndexCorruptError, match=r"is missing manifest.json \(its other files are there\).*"
                                                r"qa index --rebuild"):
        load_index(index_copy)
    shutil.rmtree(index_copy)
    with pytest.raises(IndexMissingError, match="No index found"):
        load_index(index_copy)


def test_a_mapped_file_truncated_underneath_is_never_read(index_copy: Path, settings: Settings) -> None:
    loaded = load_index(index_copy, memory_mb=0)
    assert "chunk_vectors.npy" in loaded.files.mapped
    assert "Virginia" in qa.answer(QUESTION, index=loaded, settings=settings).text
    # A writer that truncates the file waits for the lease to go; it goes once the maps hold zeros.
    started = time.monotonic()
    os.truncate(index_copy / "chunk_vectors.npy", 1000)
    waited = time.monotonic() - started
    assert loaded.files.stale == "chunk_vectors.npy was opened for writing" and waited < 5
    assert not np.asarray(loaded.chunk_vectors[-1]).any()     # zeros where the file was: no SIGBUS
    with pytest.raises(IndexChangedError, match="changed on disk while in use"):
        qa.answer(QUESTION, index=loaded, settings=settings)
    with pytest.raises(IndexCorruptError, match="chunk_vectors.npy is corrupt"):
        load_index(index_copy, memory_mb=0)


def test_a_question_answered_while_its_file_is_truncated_is_refused(index_copy: Path, settings: Settings) -> None:
    """Questions run on while a writer truncates and restores a mapped file: each is answered from
    the whole index or refused in one line; none reads a truncated map."""
    keep = (index_copy / "sentence_vectors.npy").read_bytes()
    outcomes: list[str] = []
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            try:
                index = load_index(index_copy, memory_mb=0)
                reply = qa.answer(QUESTION, index=index, settings=settings)
                outcomes.append("answered" if "Virginia" in reply.text else f"wrong: {reply.text}")
            except IndexCorruptError as exc:   # IndexChangedError too
                outcomes.append("refused" if "\n" not in str(exc) else f"two lines: {exc}")

    asker = threading.Thread(target=ask)
    asker.start()
    try:
        for _ in range(6):
            time.sleep(0.15)
            os.truncate(index_copy / "sentence_vectors.npy", 1000)
            time.sleep(0.1)
            with open(index_copy / "sentence_vectors.npy", "r+b") as fh:
                fh.write(keep)
    finally:
        stop.set()
        asker.join()
    assert outcomes and set(outcomes) <= {"answered", "refused"}, outcomes
    assert "answered" in outcomes


# ---- the server, in its own process --------------------------------------------------------

def _post_ask(url: str, question: str) -> tuple[str, str]:
    """("answer", text) or ("error", one-line message) for a question POSTed to /ask."""
    request = urllib.request.Request(url + "gradio_api/call/ask", data=json.dumps({"data": [question, None]}).encode(),
                                     headers={"Content-Type": "application/json"})
    event = json.load(urllib.request.urlopen(request, timeout=60))["event_id"]
    stream = urllib.request.urlopen(f"{url}gradio_api/call/ask/{event}", timeout=120).read().decode("utf-8")
    payload: Any = json.loads(stream.split("data: ", 1)[1])
    if stream.startswith("event: complete"):
        return "answer", payload[0]["answer"]
    return "error", str(payload.get("error"))


def _change(path: Path, how: str) -> None:
    if how == "truncate":
        os.truncate(path, 1000)
    elif how == "replace":     # another file renamed over it, as an rsync or a restore does
        scratch = path.with_name(path.name + ".new")
        scratch.write_bytes(os.urandom(path.stat().st_size))
        os.replace(scratch, path)
    elif how == "delete":
        path.unlink()
    else:                      # written in place
        _scribble(path)


@pytest.mark.slow
@pytest.mark.parametrize("memory_mb", [0, 64], ids=["mapped", "in-memory"])
def test_a_served_index_changed_underneath_stays_up(index_copy: Path, tmp_path: Path, memory_mb: int) -> None:
    """`qa serve` in its own process; each kind of index file is truncated, replaced, deleted and
    written into, and put back. The server stays up, and every question is answered from a whole
    index or refused in one line; once the folder is whole again, it answers again."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "qa.toml"
    config.write_text(f"index_memory_mb = {memory_mb}\n", encoding="utf-8")
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "qa.cli", "--config", str(config), "serve", "--index",
                                   str(index_copy), "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                  cwd=ROOT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(url, timeout=5)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        assert _post_ask(url, QUESTION)[0] == "answer"
        hows = ("truncate", "replace", "delete", "write") if memory_mb == 0 else ("truncate",)
        for name in [*_files(index_copy), "manifest.json"]:
            path = index_copy / name
            keep = path.read_bytes()
            for how in hows:
                _change(path, how)
                kind, text = _post_ask(url, QUESTION)
                assert server.poll() is None, (name, how, log.read_text()[-3000:])
                if kind == "answer":
                    assert "Virginia" in text, (name, how, text)          # from the whole index
                else:
                    assert "\n" not in text and len(text) < 600, (name, how, text)
                    assert str(index_copy) in text and "changed on disk" in text, (name, how, text)
                scratch = path.with_name(path.name + ".back")
                scratch.write_bytes(keep)
                os.replace(scratch, path)
                kind, text = _post_ask(url, QUESTION)
                assert kind == "answer" and "Virginia" in text, (name, how, "after putting it back", text)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "Traceback" not in log.read_text()
