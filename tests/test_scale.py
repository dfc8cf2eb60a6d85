"""The dense layer by size (Flat / IVF / HNSW), the memory-mapped format-2 tables, and loading
an index written by the previous release (format 1)."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import faiss
import numpy as np
import pytest

import qa
from qa.config import Settings
from qa.errors import IndexCorruptError, SettingsError
from qa.index import build_index, load_index
from qa.index.dense import build_dense, exact_top, measured_recall, wanted_spec
from qa.index.store import forget_loaded
from qa.types import Chunk, Sentence

from .conftest import ROOT

QA_PAIRS = ROOT / "eval" / "qa_pairs.jsonl"


def quiet(_line: str) -> None:
    pass


def _questions() -> list[str]:
    return [json.loads(line)["question"] for line in QA_PAIRS.read_text(encoding="utf-8").splitlines() if line]


def _clustered(n: int, dim: int = 384, centres: int = 64, seed: int = 0) -> np.ndarray:
    """Unit vectors around 64 fixed centres (the same centres for every seed: queries and corpus
    come from one distribution)."""
    c = np.random.default_rng(12345).standard_normal((centres, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    x = c[rng.integers(0, centres, n)] + 0.35 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_auto_picks_flat_below_the_threshold_and_ivf_above(settings: Settings) -> None:
    assert wanted_spec(settings, 15_728).kind == "flat"         # SciFact stays exact
    assert wanted_spec(settings, settings.ann_threshold - 1).kind == "flat"
    big = wanted_spec(settings, 1_000_000)
    assert (big.kind, big.nlist, big.nprobe, big.codec) == ("ivf", 4096, 64, "sq8")
    assert wanted_spec(replace(settings, dense_index="hnsw"), 10).kind == "hnsw"
    with pytest.raises(SettingsError, match="dense_index"):
        Settings(dense_index="annoy")
    with pytest.raises(SettingsError, match="ivf_nprobe"):
        Settings(ivf_nprobe=-1)


@pytest.mark.parametrize("codec", ["sq8", "flat"])
def test_ivf_recall_against_exact_search(codec: str, settings: Settings) -> None:
    vectors = _clustered(20_000)
    queries = _clustered(200, seed=1)
    spec = wanted_spec(replace(settings, dense_index="ivf", ivf_codec=codec), len(vectors))
    index, measured = build_dense(vectors, spec, probes=queries)
    assert index.ntotal == len(vectors) and measured.recall_at_10 is not None
    assert measured.recall_at_10 >= 0.95
    assert measured_recall(index, vectors, queries) == pytest.approx(measured.recall_at_10)


def test_ivf_pq_candidates_hold_most_of_the_exact_top_10(settings: Settings) -> None:
    # PQ keeps 48 bytes of 1,536, so its own top 10 is rough; retrieval takes 50 candidates and
    # re-scores them with the exact stored vectors. On these flat clusters (every list searched,
    # so the loss is PQ's alone) the 50 hold 88% of the exact top 10; SQ8 (the default) keeps 95%+.
    vectors = _clustered(4_000)
    queries = _clustered(100, seed=3)
    spec = wanted_spec(replace(settings, dense_index="ivf", ivf_codec="pq", ivf_nlist=16, ivf_nprobe=16),
                       len(vectors))
    index, measured = build_dense(vectors, spec, probes=queries)
    assert "PQ" in measured.describe() and index.ntotal == len(vectors)
    _, found = index.search(queries, 50)
    exact = exact_top(vectors, queries, 10)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact, strict=True)]) >= 0.85


def test_hnsw_layer_searches_too(settings: Settings) -> None:
    vectors = _clustered(5_000)
    index, spec = build_dense(vectors, wanted_spec(replace(settings, dense_index="hnsw"), len(vectors)),
                              probes=_clustered(100, seed=2))
    assert spec.kind == "hnsw" and spec.recall_at_10 is not None and spec.recall_at_10 >= 0.9
    assert index.ntotal == len(vectors)


def test_forced_ivf_on_the_seeds_finds_what_flat_finds(corpus_copy: Path, seeds_index: Path, tmp_path: Path,
                                                       settings: Settings, embedder) -> None:
    ivf_settings = replace(settings, dense_index="ivf", ivf_nlist=4, ivf_nprobe=3)
    lines: list[str] = []
    report = build_index(corpus_copy, tmp_path / "ivf", settings=ivf_settings, embedder=embedder, log=lines.append)
    ivf = load_index(tmp_path / "ivf")
    flat = load_index(seeds_index)
    assert ivf.dense_spec.kind == "ivf" and ivf.dense_spec.nlist == 4 and flat.dense_spec.kind == "flat"
    assert any("IVF4,SQ8" in line and "recall@10" in line for line in lines), lines
    assert report.chunks == len(flat.chunks) and ivf.dense.ntotal == len(ivf.chunks)
    overlap = []
    for question in _questions()[:40]:
        a = qa.retrieve(question, k=10, index=tmp_path / "ivf", mode="dense", settings=ivf_settings)
        b = qa.retrieve(question, k=10, index=seeds_index, mode="dense", settings=settings)
        overlap.append(len({(p.doc_id, p.start) for p in a} & {(p.doc_id, p.start) for p in b}) / len(b))
    assert np.mean(overlap) >= 0.95, np.mean(overlap)


def test_ivf_index_updates_and_deletes(corpus_copy: Path, tmp_path: Path, settings: Settings, embedder) -> None:
    ivf_settings = replace(settings, dense_index="ivf", ivf_nlist=4, ivf_nprobe=4)
    target = tmp_path / "ivf"
    build_index(corpus_copy, target, settings=ivf_settings, embedder=embedder, log=quiet)
    gone = sorted(corpus_copy.glob("*.txt"))[0]
    gone.unlink()
    report = build_index(corpus_copy, target, settings=ivf_settings, embedder=embedder, log=quiet)
    loaded = load_index(target)
    assert report.removed == (gone.name,) and report.chunks_embedded == 0
    assert gone.name not in loaded.documents and loaded.dense.ntotal == len(loaded.chunks)
    assert all(p.doc_id != gone.name for q in _questions()[:10]
               for p in qa.retrieve(q, k=10, index=target, settings=ivf_settings))
    (corpus_copy / "new.txt").write_text("Ocelots\n\nOcelots were counted in the Texas borderlands in 2024.\n",
                                         encoding="utf-8")
    report = build_index(corpus_copy, target, settings=ivf_settings, embedder=embedder, log=quiet)
    assert report.added == ("new.txt",)
    top = qa.retrieve("Where were ocelots counted?", k=1, index=target, settings=ivf_settings)[0]
    assert top.doc_id == "new.txt"


def test_changing_the_dense_layer_rewrites_it_without_embedding(index_copy: Path, corpus_copy: Path,
                                                                settings: Settings, embedder) -> None:
    lines: list[str] = []
    report = build_index(corpus_copy, index_copy, settings=replace(settings, dense_index="ivf", ivf_nlist=2),
                         embedder=embedder, log=lines.append)
    assert report.chunks_embedded == 0 and report.sentences_embedded == 0
    assert any("dense layer Flat (exact) -> IVF2,SQ8" in line for line in lines), lines
    assert load_index(index_copy).dense_spec.kind == "ivf"
    lines.clear()
    build_index(corpus_copy, index_copy, settings=replace(settings, dense_index="ivf", ivf_nlist=2),
                embedder=embedder, log=lines.append)
    assert any("up to date" in line for line in lines)


def test_tables_are_lazy_and_verbatim(seeds_index: Path) -> None:
    loaded = load_index(seeds_index)
    assert not isinstance(loaded.chunks, tuple) and not isinstance(loaded.sentences, tuple)
    # Small files are read into memory, larger ones mapped (memory_mb=0: every one that can be); the
    # tables are views over the files' bytes either way, never copies.
    assert loaded.files.mapped == [] and not loaded.chunk_vectors.flags.owndata
    mapped = load_index(seeds_index, memory_mb=0)
    assert {"chunk_vectors.npy", "chunks.npy", "chunk_text.bin", "dense.faiss"} <= set(mapped.files.mapped)
    assert not mapped.chunk_sentences.flags.owndata and not mapped.chunk_sentences.flags.writeable
    texts = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "seeds").glob("*.txt")}
    for c in loaded.chunks:
        assert isinstance(c, Chunk) and texts[c.doc_id][c.start:c.end] == c.text
    for s in loaded.sentences:
        assert isinstance(s, Sentence) and texts[s.doc_id][s.start:s.end] == s.text
    n = len(loaded.chunks)
    assert loaded.chunks[-1] == loaded.chunks[n - 1] and loaded.chunks[1:3] == [loaded.chunks[1], loaded.chunks[2]]
    with pytest.raises(IndexError):
        loaded.chunks[n]
    assert set(loaded.documents) == set(texts) and "nope.txt" not in loaded.documents
    info = loaded.documents[sorted(texts)[0]]
    assert info.chars == len(texts[info.doc_id]) and isinstance(info.tags, tuple)


def test_damaged_tables_are_one_clear_message(index_copy: Path) -> None:
    blob = index_copy / "chunk_text.bin"
    whole = blob.read_bytes()
    blob.write_bytes(whole[:-5])
    forget_loaded()
    with pytest.raises(IndexCorruptError, match=r"chunk_text.bin is corrupt \(.* bytes, the manifest says .*--rebuild"):
        load_index(index_copy)
    blob.write_bytes(whole)
    shutil.copy(index_copy / "chunks.npy", index_copy / "sentences.npy")
    forget_loaded()
    with pytest.raises(IndexCorruptError, match="sentences.npy is corrupt.*--rebuild"):
        load_index(index_copy)
    # Without checksums (an index written before them), the tables' own checks still catch it.
    manifest = json.loads((index_copy / "manifest.json").read_text(encoding="utf-8"))
    (index_copy / "manifest.json").write_text(json.dumps({**manifest, "format_version": 2, "checksums": {}}),
                                              encoding="utf-8")
    forget_loaded()
    with pytest.raises(IndexCorruptError, match="wrong shape.*--rebuild"):
        load_index(index_copy)


def _as_format_1(path: Path) -> None:
    """Rewrite a format-2 index the way qa 0.3 wrote it (JSON-lines tables, Flat dense.faiss)."""
    loaded = load_index(path)
    with open(path / "chunks.jsonl", "w", encoding="utf-8") as fh:
        for c, r in zip(loaded.chunks, loaded.chunk_sentences, strict=True):
            fh.write(json.dumps({"doc_id": c.doc_id, "start": c.start, "end": c.end, "text": c.text,
                                 "sentences": [int(r[0]), int(r[1])]}) + "\n")
    with open(path / "sentences.jsonl", "w", encoding="utf-8") as fh:
        for s in loaded.sentences:
            fh.write(json.dumps(asdict(s)) + "\n")
    flat = faiss.IndexFlatIP(loaded.chunk_vectors.shape[1])
    flat.add(np.asarray(loaded.chunk_vectors))
    del loaded
    forget_loaded()
    for name in ("chunks.npy", "chunk_text.bin", "chunk_text.offsets.npy", "sentences.npy", "sentence_text.bin",
                 "sentence_text.offsets.npy"):
        (path / name).unlink()
    faiss.write_index(flat, str(path / "dense.faiss"))
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    manifest["format_version"] = 1
    manifest.pop("dense")
    (path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_an_index_of_the_previous_release_loads_and_is_rewritten_without_embedding(
        index_copy: Path, seeds_index: Path, corpus_copy: Path, settings: Settings, embedder) -> None:
    _as_format_1(index_copy)
    old = load_index(index_copy)
    assert old.manifest.format_version == 1 and isinstance(old.chunks, tuple)
    question = "How many times has TikTok been downloaded?"
    before = qa.answer(question, index=index_copy, settings=settings)
    assert before.text == qa.answer(question, index=seeds_index, settings=settings).text
    lines: list[str] = []
    report = build_index(corpus_copy, index_copy, settings=settings, embedder=embedder, log=lines.append)
    assert report.chunks_embedded == 0 and any("format 1 -> 3" in line for line in lines), lines
    new = load_index(index_copy)
    assert new.manifest.format_version == 3 and not (index_copy / "chunks.jsonl").exists()
    assert list(new.chunks) == list(old.chunks)
    assert qa.answer(question, index=index_copy, settings=settings).text == before.text


def test_bm25_cost_is_capped_to_the_rarest_terms(monkeypatch: pytest.MonkeyPatch) -> None:
    from qa import lexical

    model = lexical.build_bm25(["ocelot jaguar cat", "jaguar cat", "cat dog", "cat bird", "fish"])
    ids = model.get_tokens_ids(lexical.bm25_terms("cat jaguar ocelot ocelot"))
    assert lexical.capped_terms(model, ids) == ids          # under the caps: unchanged
    monkeypatch.setattr(lexical, "MAX_QUERY_TERMS", 2)
    kept = lexical.capped_terms(model, ids)
    names = {v: k for k, v in model.vocab_dict.items()}
    assert sorted({names[t] for t in kept}) == ["jaguar", "ocelot"] and len(kept) == 3   # repeats kept
    monkeypatch.setattr(lexical, "MAX_POSTINGS", 1)
    assert {names[t] for t in lexical.capped_terms(model, ids)} == {"ocelot"}          # the rarest stays
    scores = lexical.bm25_scores(model, "cat jaguar ocelot")
    assert scores.argmax() == 0 and scores[2] == 0.0   # only "ocelot" was scored
