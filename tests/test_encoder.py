"""The encoder: ONNX export against the torch path, the export cache, batching and pooled spans."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import qa.encoder
from qa.config import Settings
from qa.embed import SentenceTransformerEmbedder, model_path
from qa.encoder import BATCH_TOKENS, POOLED_CONTEXT, export_folder, length_batches, make_encoder, pad, resolve_device
from qa.errors import SettingsError
from qa.index import build_index, load_index

MODEL = "all-MiniLM-L6-v2"
TEXTS = [
    "Where is TikTok's US user data stored?",
    "",
    "ByteDance",
    "TikTok said its US user data is stored in Virginia, with a backup in Singapore. " * 30,  # > 256 pieces
    "Café naïve — “quotes”, emoji 🙂 and\nnew lines\ttabs.",
    "Short.",
]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """SentenceTransformer.encode, the vectors qa always had, from a freshly loaded model."""
    return SentenceTransformerEmbedder(MODEL, model_path(MODEL), 2).embed(TEXTS)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("encoder-cache")


def test_onnx_and_torch_give_sentence_transformers_vectors(reference: np.ndarray, cache: Path) -> None:
    onnx = make_encoder(MODEL, model_path(MODEL), backend="onnx", cache=cache)
    torch = make_encoder(MODEL, model_path(MODEL), backend="torch")
    for encoder in (onnx, torch):
        vectors = encoder.embed(TEXTS)
        assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
        np.testing.assert_allclose(vectors, reference, atol=1e-4)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        # One at a time (a question) and in a batch give the same vectors.
        np.testing.assert_allclose(encoder.embed([TEXTS[0]])[0], vectors[0], atol=1e-5)
    assert onnx.embed([]).shape == (0, 384)


def test_int8_stays_close_to_fp32(reference: np.ndarray, cache: Path) -> None:
    int8 = make_encoder(MODEL, model_path(MODEL), backend="onnx", precision="int8", cache=cache)
    cosine = (int8.embed(TEXTS) * reference).sum(axis=1)
    assert cosine.min() > 0.95, cosine  # measured on retrieval in `qa bench indexing --full`


def test_the_export_is_cached_and_a_damaged_one_is_made_again(reference: np.ndarray, tmp_path: Path) -> None:
    lines: list[str] = []
    make_encoder(MODEL, model_path(MODEL), cache=tmp_path, log=lines.append)
    folder = export_folder(tmp_path, model_path(MODEL))
    onnx_file, record = folder / "model-fp32.onnx", folder / "model-fp32.json"
    assert onnx_file.stat().st_size > 80_000_000 and json.loads(record.read_text())["sha256"]
    assert len(lines) == 1 and lines[0].startswith("Exporting the encoder to ONNX (fp32) into ")
    lines.clear()
    made = onnx_file.stat().st_mtime_ns
    make_encoder(MODEL, model_path(MODEL), cache=tmp_path, log=lines.append)
    assert onnx_file.stat().st_mtime_ns == made and lines == []  # reused silently, not exported again

    with open(onnx_file, "r+b") as fh:  # a damaged file: same size, flipped bytes in the middle
        fh.seek(onnx_file.stat().st_size // 2)
        fh.write(b"\xff" * 4096)
    encoder = make_encoder(MODEL, model_path(MODEL), cache=tmp_path, log=lines.append)
    assert len(lines) == 1 and "checksum" in lines[0] and "exporting it again" in lines[0], lines
    np.testing.assert_allclose(encoder.embed(TEXTS), reference, atol=1e-4)

    onnx_file.write_bytes(b"not a model")  # garbage, with a record that is garbage too
    record.write_text("{", encoding="utf-8")
    lines.clear()
    encoder = make_encoder(MODEL, model_path(MODEL), cache=tmp_path, log=lines.append)
    assert len(lines) == 1 and "unreadable record" in lines[0], lines
    np.testing.assert_allclose(encoder.embed(TEXTS[:1]), reference[:1], atol=1e-4)


@given(st.lists(st.integers(min_value=1, max_value=256), max_size=300),
       st.sampled_from([64, 512, BATCH_TOKENS]), st.integers(min_value=1, max_value=64))
@hsettings(max_examples=200, deadline=None)
def test_length_batches_cover_every_row_once_within_the_budget(lengths: list[int], budget: int, cap: int) -> None:
    sizes = np.array(lengths, dtype=np.int64)
    batches = length_batches(sizes, budget, cap)
    rows = np.concatenate(batches) if batches else np.zeros(0, dtype=np.int64)
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    for batch in batches:
        assert 1 <= len(batch) <= cap
        assert len(batch) == 1 or len(batch) * sizes[batch].max() <= budget
    assert all(np.diff(sizes[rows]) <= 0)  # longest first: like lengths share a batch


def test_spans_are_pooled_from_the_same_pass_and_cut_spans_are_left_out(cache: Path) -> None:
    encoder = make_encoder(MODEL, model_path(MODEL), cache=cache)
    long_text = "Virginia holds the data. " * 80  # past 256 word pieces
    texts = ["TikTok stores data in Virginia. The backup is in Singapore.", long_text]
    spans = [[(0, 31), (32, 59), (5, 5)], [(0, 24), (len(long_text) - 24, len(long_text) - 1)]]
    vectors, pooled = encoder.embed_spans(texts, spans)
    np.testing.assert_allclose(vectors, encoder.embed(texts), atol=1e-5)
    first, second, empty = pooled[0]
    np.testing.assert_allclose([np.linalg.norm(first), np.linalg.norm(second)], 1.0, atol=1e-5)
    assert np.isnan(empty).all()           # no token inside: left for the caller
    assert np.isfinite(pooled[1][0]).all() and np.isnan(pooled[1][1]).all()  # past the limit: left out
    # In context, a sentence is still nearest its own words.
    alone = encoder.embed(["TikTok stores data in Virginia.", "The backup is in Singapore."])
    assert float(first @ alone[0]) > float(first @ alone[1])


def test_a_pooled_span_is_its_tokens_mean_less_a_share_of_the_texts_mean(cache: Path) -> None:
    onnx = make_encoder(MODEL, model_path(MODEL), cache=cache)
    torch = make_encoder(MODEL, model_path(MODEL), backend="torch")
    text = "TikTok stores data in Virginia. The backup is in Singapore."
    _, pooled = onnx.embed_spans([text], [[(32, 59)]])
    tokens = torch.tokenize([text])
    ids, mask = pad(tokens.ids)
    states = torch.runtime.token_states(ids, mask)[0]
    offsets = tokens.offsets[0]
    inside = (offsets[:, 1] > offsets[:, 0]) & (offsets[:, 0] >= 32) & (offsets[:, 1] <= 59)
    expected = states[inside].mean(axis=0) - POOLED_CONTEXT * states.mean(axis=0)
    np.testing.assert_allclose(pooled[0][0], expected / np.linalg.norm(expected), atol=1e-4)


def test_batches_run_side_by_side_give_the_same_vectors(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = make_encoder(MODEL, model_path(MODEL), cache=cache, threads=2)
    texts = [f"Sentence number {i} says something about user data in Virginia. " * (1 + i % 7) for i in range(90)]
    spans = [[(0, 20), (5, 40)] for _ in texts]
    assert len(length_batches(encoder.tokenize(texts).lengths)) >= qa.encoder.PARALLEL_MIN_BATCHES
    assert getattr(encoder.runtime, "workers", 0) == 2
    together, together_spans = encoder.embed_spans(texts, spans, batch_size=8)
    monkeypatch.setattr(qa.encoder, "PARALLEL_MIN_BATCHES", 10**9)   # one batch at a time
    alone, alone_spans = encoder.embed_spans(texts, spans, batch_size=8)
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(np.stack(together_spans), np.stack(alone_spans))


def test_sentence_vectors_setting_is_recorded_and_a_change_rebuilds(tmp_path: Path, settings: Settings) -> None:
    corpus = Path(__file__).resolve().parent.parent / "seeds"
    lines: list[str] = []
    pooled = build_index(corpus, tmp_path / "index", settings=settings.replace(sentence_vectors="pooled"),
                         log=lines.append)
    index = load_index(tmp_path / "index")
    assert index.manifest.sentence_vectors == "pooled" and "onnx fp32" in index.manifest.encoder
    assert index.manifest.pooled_context == POOLED_CONTEXT
    assert np.isfinite(np.asarray(index.sentence_vectors)).all()
    np.testing.assert_allclose(np.linalg.norm(np.asarray(index.sentence_vectors), axis=1), 1.0, atol=1e-4)
    separate = build_index(corpus, tmp_path / "index", settings=settings.replace(sentence_vectors="separate"),
                           log=lines.append)
    assert separate.sentences_embedded == pooled.sentences_embedded == separate.sentences
    assert any("sentence_vectors 'pooled' -> 'separate'" in line for line in lines), lines
    # A pooled index made before pooled_context existed held plain token means: it is made again.
    # (Such an index also predates checksums: format 2, whose manifest may be edited like this.)
    build_index(corpus, tmp_path / "index", settings=settings.replace(sentence_vectors="pooled"), log=lines.append)
    manifest = tmp_path / "index" / "manifest.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    del data["pooled_context"], data["checksums"], data["manifest_checksum"]
    manifest.write_text(json.dumps({**data, "format_version": 2}), encoding="utf-8")
    lines.clear()
    build_index(corpus, tmp_path / "index", settings=settings.replace(sentence_vectors="pooled"), log=lines.append)
    assert any(f"pooled_context 0.0 -> {POOLED_CONTEXT}" in line for line in lines), lines


def test_encoder_settings_are_checked_in_one_line() -> None:
    with pytest.raises(SettingsError, match="encoder_backend.*Choose from onnx, torch, sentence-transformers"):
        Settings(encoder_backend="tensorflow")
    with pytest.raises(SettingsError, match="int8.*needs encoder_backend"):
        Settings(encoder_backend="torch", encoder_precision="int8")
    with pytest.raises(SettingsError, match="device.*Choose from cpu, cuda, auto"):
        Settings(device="tpu")
    with pytest.raises(SettingsError, match="sentence_vectors"):
        Settings(sentence_vectors="both")
    assert resolve_device("cpu") == "cpu"
    import torch

    if not torch.cuda.is_available():
        assert resolve_device("auto") == "cpu"
        with pytest.raises(SettingsError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_a_build_shows_one_progress_bar_for_all_its_texts(tmp_path: Path, settings: Settings,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    corpus = Path(__file__).resolve().parent.parent / "seeds"
    for vectors in ("pooled", "separate"):
        report = build_index(corpus, tmp_path / vectors, log=lambda _line: None,
                             settings=settings.replace(show_progress=True, sentence_vectors=vectors))
        err = capsys.readouterr().err
        total = report.chunks + report.sentences
        assert err.count(f"/{total} ") >= 2, err[-500:]        # one bar over chunks and sentences...
        assert f" {total}/{total} " in err                       # ...that ends full
        assert "Batches" not in err and err.count(f" 0/{total} ") == 1  # no bar per call or per batch


def test_an_unwritable_export_cache_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.raises(SettingsError, match="Cannot write the ONNX encoder into .*Set cache_dir"):
        make_encoder(MODEL, model_path(MODEL), cache=blocker / "cache")
