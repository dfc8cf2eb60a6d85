"""The encoder behind every vector: word pieces in length buckets, one runtime, mean pooling.

`Encoder` tokenizes with the model's own word-piece tokenizer, sorts the texts by word-piece
count and cuts batches so that padding is a few percent at most (`SentenceTransformer.encode`
sorts by *characters*: on SciFact 31% of chunk tokens and 64% of sentence tokens were padding).
The token states come from one of two runtimes:

- `onnx` (default): the model exported once to ONNX (`torch.onnx.export`, TorchScript route) and
  run by onnxruntime; the export is cached beside a checksum and rebuilt, with a one-line
  notice, when it is missing or damaged. `int8` is its dynamically quantized copy.
- `torch`: the same transformer run by torch, on `cpu` or `cuda`; the reference in tests.

Pooling is the model's own (mean over the tokens read, then L2 normalization), so a text gets the
vector `SentenceTransformer.encode` gives it, to 1e-4 in fp32. `embed_spans` also pools the
tokens of character spans inside each text (a chunk's sentences) from the same pass.
"""

# About 550 lines in one module: batching, both runtimes (ONNX, torch), span pooling and the
# checked ONNX export must produce the same vectors, and the parity between them is kept here.

# torch, transformers, tokenizers and onnxruntime are imported inside the functions that use them,
# on purpose: importing this module stays cheap (`import qa` loads neither torch nor FAISS, and `qa
# --help` starts at once).

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from qa.errors import SettingsError
from qa.load import sha256_file
from qa.runtime import set_threads

BACKENDS = ("onnx", "torch")
PRECISIONS = ("fp32", "int8")
DEVICES = ("auto", "cpu", "cuda")
# Characters past this never reach the model (it reads 256 word pieces, about 1,000 characters);
# cutting early keeps a 100,000-character text from costing a full tokenization.
MAX_MODEL_CHARS = 4000
# Padded word pieces per batch. Measured on 2 cores (onnxruntime fp32, 888 chunks and 2,527
# sentences of 300 SciFact abstracts): 512 and 1,024 took 20-21 s for the chunks and 15 s for
# the sentences; 2,048 21-24 s / 16-18 s; 8,192 25 s / 19 s; 16,384 29 s / 21 s. Small batches
# keep the activations in cache; below 256 the per-call cost shows again.
BATCH_TOKENS = 1024
# A build's batches run on this many threads at once, each batch on one intra-op thread (onnxruntime
# on CPU), instead of one batch at a time on all of them: on 2 cores, 900 SciFact chunks took 20 s
# against 24 s, because one batch's matrix products do not keep two threads busy. One short text
# (a question) still runs alone on every thread.
PARALLEL_MIN_BATCHES = 4
# A pooled sentence vector is its tokens' mean minus this share of the whole text's mean: a
# sentence's tokens in the chunk pass also carry the chunk's topic, and taking some of it back
# makes the sentence stand out from its neighbours again. Chosen on SQuAD v1.1/v2.0 training
# articles (qa/training/data.py's split; never the held-out ones or the seed sets): gold-paragraph
# MRR@10 over 1,200 questions was 0.914 / 0.915 / 0.916 / 0.915 / 0.916 / 0.915 at 0 / 0.2 /
# 0.3 / 0.4 / 0.5 / 0.6 (sentence_weight 0.3), 0.917 at 0.5 with 0.45; separately embedded
# sentences 0.916. docs/speed.md has what it does on the seeds and SciFact.
POOLED_CONTEXT = 0.5
EXPORT_VERSION = 2  # bump when the export recipe changes; cached exports are then rebuilt
OPSET = 17


T = TypeVar("T")


class Progress(Protocol):
    """A progress bar (tqdm's interface): `update(n)` after n more texts are done."""

    def update(self, n: int = 1) -> Any: ...


@dataclass(frozen=True)
class Tokenized:
    """Word pieces of some texts, each cut to the model's limit, with character offsets."""

    ids: list[np.ndarray]       # int64 ids per text, [CLS] ... [SEP]
    offsets: list[np.ndarray]   # (n, 2) character offsets per token; (0, 0) for [CLS]/[SEP]

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(i) for i in self.ids], dtype=np.int64)


def length_batches(lengths: np.ndarray, batch_tokens: int = BATCH_TOKENS, max_batch: int = 256) -> list[np.ndarray]:
    """Row numbers in batches of like length: longest first, each batch holding at most
    `max_batch` rows and `batch_tokens` padded tokens (rows × its longest row)."""
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)
        size = max(1, min(max_batch, batch_tokens // longest))
        batches.append(order[start:start + size])
        start += size
    return batches


def pad(ids: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded `(input_ids, attention_mask)` for one batch."""
    width = max(len(i) for i in ids)
    input_ids = np.zeros((len(ids), width), dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, seq in enumerate(ids):
        input_ids[row, :len(seq)] = seq
        mask[row, :len(seq)] = 1
    return input_ids, mask


def _normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


class Runtime(Protocol):
    """Runs the transformer: token states `(batch, tokens, dimension)` for padded ids."""

    description: str

    def token_states(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray: ...

    # A runtime may also have `workers` (2 or more on CPU) and `many_token_states(batches, then)`:
    # `then(rows, token states)` of each padded batch, in order, batches run side by side
    # (see OnnxRuntime).


class OnnxRuntime:
    """The exported model in onnxruntime (thread-safe: sessions may be run concurrently)."""

    def __init__(self, path: Path, threads: int, device: str) -> None:
        import onnxruntime as ort

        set_threads(threads)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Idle intra-op threads sleep instead of spinning: the encoder and the reader each have a
        # pool, and a spinning pool took the reader's CPU (answer p50 90 ms against 60 ms).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        self._names = {i.name for i in self.session.get_inputs()}
        self._path, self._providers = path, providers
        # Made on the first build: the session whose batches run side by side, one thread each.
        self._bulk: Any = None
        self._bulk_lock = threading.Lock()
        self.workers = threads if device == "cpu" else 1
        self.description = (f"onnxruntime {ort.__version__} ({path.name}, {device}, {threads} intra-op threads; "
                            f"builds: {self.workers} batches at once x 1 thread)")

    def _feeds(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self._names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        return feeds

    def token_states(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, self._feeds(input_ids, attention_mask))[0], dtype=np.float32)

    def _bulk_session(self) -> Any:
        import onnxruntime as ort

        with self._bulk_lock:
            if self._bulk is None:
                options = ort.SessionOptions()
                options.intra_op_num_threads = 1
                options.inter_op_num_threads = 1
                options.log_severity_level = 3
                self._bulk = ort.InferenceSession(str(self._path), sess_options=options, providers=self._providers)
            return self._bulk

    def many_token_states(self, batches: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]],
                          then: Callable[[np.ndarray, np.ndarray], T]) -> Iterator[T]:
        """`then(rows, token states)` of each `(rows, input_ids, attention_mask)` batch, in order;
        `workers` batches run at once, each on one thread of a session of its own
        (onnxruntime sessions may be run concurrently), and `then` runs beside its batch."""
        session = self._bulk_session()

        def run(rows: np.ndarray, ids: np.ndarray, mask: np.ndarray) -> T:
            return then(rows, np.asarray(session.run(None, self._feeds(ids, mask))[0], dtype=np.float32))

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="qa-encoder") as pool:
            pending: deque[Any] = deque()
            for batch in batches:
                pending.append(pool.submit(run, *batch))
                if len(pending) >= 2 * self.workers:   # a bounded look-ahead: memory stays flat
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()


class TorchRuntime:
    """The transformer in torch (the reference; also the route to a CUDA device)."""

    def __init__(self, path: Path, threads: int, device: str) -> None:
        import torch
        from transformers import AutoModel

        set_threads(threads)
        self.device = device
        with quiet_loading():
            self.model = AutoModel.from_pretrained(str(path), local_files_only=True).to(device).eval()
        # torch modules are not re-entrant across threads for inference state; the web app's
        # worker threads share one model, so calls are serialized.
        self._lock = threading.Lock()
        self.description = f"torch {torch.__version__} ({device}, {torch.get_num_threads()} threads)"

    def token_states(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        import torch

        with self._lock, torch.inference_mode():
            ids = torch.from_numpy(input_ids).to(self.device)
            mask = torch.from_numpy(attention_mask).to(self.device)
            out = self.model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))
            return out.last_hidden_state.float().cpu().numpy()


class Encoder:
    """Texts to L2-normalized float32 vectors (the `Embedder` of qa.embed), batched by length."""

    def __init__(self, name: str, path: Path, runtime: Runtime, *, backend: str, precision: str,
                 device: str, threads: int) -> None:
        from tokenizers import Tokenizer

        self.name = name
        self.path = path
        self.runtime = runtime
        self.backend, self.precision, self.device, self.threads = backend, precision, device, threads
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        self.dimension = int(config["hidden_size"])
        st_config = path / "sentence_bert_config.json"
        limit = json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length") if st_config.exists() else None
        self.max_tokens = int(limit or config.get("max_position_embeddings", 512))
        tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(max_length=self.max_tokens)
        self._tokenizer = tok

    @property
    def description(self) -> str:
        return f"{self.name}, {self.backend} {self.precision}: {self.runtime.description}"

    def tokenize(self, texts: Sequence[str]) -> Tokenized:
        encodings = self._tokenizer.encode_batch([t[:MAX_MODEL_CHARS] for t in texts])
        return Tokenized([np.asarray(e.ids, dtype=np.int64) for e in encodings],
                         [np.asarray(e.offsets, dtype=np.int64).reshape(-1, 2) for e in encodings])

    def embed(self, texts: Sequence[str], *, batch_size: int = 256,
              progress: bool | Progress = False) -> np.ndarray:
        """An `(len(texts), dimension)` float32 array of unit vectors."""
        vectors, _ = self._run(self.tokenize(texts), None, batch_size, progress)
        return vectors

    def embed_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], *,
                    batch_size: int = 256, progress: bool | Progress = False) -> tuple[np.ndarray, list[np.ndarray]]:
        """The texts' vectors, and for each text the vectors of its character spans, mean-pooled
        from the same pass over the text's tokens, less POOLED_CONTEXT times the text's mean.

        A span's vector is NaN where none of its tokens was read (past the model's limit) or where
        part of it was cut off; those are for the caller to embed on their own.
        """
        return self._run(self.tokenize(texts), spans, batch_size, progress)

    def _run(self, tokens: Tokenized, spans: Sequence[Sequence[tuple[int, int]]] | None, batch_size: int,
             progress: bool | Progress) -> tuple[np.ndarray, list[np.ndarray]]:
        n = len(tokens.ids)
        out = np.zeros((n, self.dimension), dtype=np.float32)
        span_out: list[np.ndarray] = [np.empty((0, self.dimension), dtype=np.float32)] * len(spans or ())
        bar, own = _progress_bar(progress, n)   # every row is in one batch: span_out[r] is always set
        batches = length_batches(tokens.lengths, BATCH_TOKENS, batch_size)

        def pooled(rows: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
            # Runs where the batch ran (a worker thread in a parallel build), not on the consumer.
            mask = (np.arange(states.shape[1])[None, :] < tokens.lengths[rows][:, None]).astype(np.float32)
            weights = mask[:, :, None]
            means = (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            found = []
            if spans:
                for k, r in enumerate(rows):
                    found.append(np.full((len(spans[r]), self.dimension), np.nan, dtype=np.float32))
                    _pool_spans(states[k], tokens.offsets[r], spans[r], found[-1], means[k] * POOLED_CONTEXT)
            return means, found

        padded = ((rows, *pad([tokens.ids[r] for r in rows])) for rows in batches)
        many = getattr(self.runtime, "many_token_states", None)
        results: Iterator[tuple[np.ndarray, list[np.ndarray]]]
        if many is None or getattr(self.runtime, "workers", 1) < 2 or len(batches) < PARALLEL_MIN_BATCHES:
            results = (pooled(rows, self.runtime.token_states(ids, mask)) for rows, ids, mask in padded)
        else:
            results = many(padded, pooled)
        try:
            for rows, (means, found) in zip(batches, results, strict=True):
                out[rows] = means
                for k, r in enumerate(rows if spans else ()):
                    span_out[r] = found[k]
                if bar is not None:
                    bar.update(len(rows))
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()  # stops the look-ahead of a parallel run that did not finish
            if own and bar is not None:
                bar.close()  # type: ignore[attr-defined]
        return _normalize(out), [_normalize_rows(v) for v in span_out]


def _normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Normalize rows that are numbers; NaN rows stay NaN."""
    if not len(vectors):
        return vectors
    ok = ~np.isnan(vectors[:, 0])
    vectors[ok] = _normalize(vectors[ok])
    return vectors


def _pool_spans(states: np.ndarray, offsets: np.ndarray, spans: Sequence[tuple[int, int]], out: np.ndarray,
                context: np.ndarray) -> None:
    """Mean of the token states of each span whose tokens were all read, less `context` (a share of
    the whole text's mean; see POOLED_CONTEXT)."""
    states = states[:len(offsets)]                 # the batch may be padded past this text
    real = offsets[:, 1] > offsets[:, 0]           # [CLS], [SEP] and padding have (0, 0)
    read_to = int(offsets[real, 1].max()) if real.any() else 0
    starts, ends = offsets[:, 0], offsets[:, 1]
    for j, (start, end) in enumerate(spans):
        if end > read_to:
            continue  # cut off by the model's limit: the caller embeds it on its own
        inside = real & (starts >= start) & (ends <= end)
        if inside.any():
            out[j] = states[inside].mean(axis=0) - context


def _progress_bar(progress: bool | Progress, total: int) -> tuple[Progress | None, bool]:
    if progress is False or progress is None:
        return None, False
    if progress is True:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc="Embedding", unit="text", dynamic_ncols=True), True
    return progress, False


# ---- the ONNX export, cached -----------------------------------------------------------------


def _fingerprint(path: Path) -> str:
    """Names, sizes and modification times of the model folder's weight and config files (what
    the export is made from): a replaced model is noticed without hashing 90 MB at every start."""
    digest = hashlib.sha256()
    for name in sorted(p.name for p in path.iterdir() if p.suffix in {".safetensors", ".bin", ".json"}):
        stat = (path / name).stat()
        digest.update(f"{name}|{stat.st_size}|{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


def export_folder(cache: Path, model: Path) -> Path:
    """Where the ONNX export of the model folder `model` is kept under `cache`."""
    key = hashlib.sha256(f"{model.resolve()}|{EXPORT_VERSION}".encode()).hexdigest()[:16]
    return cache / "encoders" / f"{model.name}-{key}"


def onnx_model(model: Path, cache: Path, precision: str, log: Callable[[str], None] | None = None) -> Path:
    """The cached ONNX export of `model` in `precision`, made (or made again) when missing or damaged.

    The export is checked against the sha256 recorded beside it and against the fingerprint of
    the model's own files; any mismatch rebuilds it with one line to `log`.
    """
    folder = export_folder(cache, model)
    target = folder / f"model-{precision}.onnx"
    record = folder / f"model-{precision}.json"
    fingerprint = _fingerprint(model)
    problem = _check_export(target, record, fingerprint)
    if problem is None:
        return target
    if log is not None:
        log(f"Exporting the encoder to ONNX ({precision}) into {folder}, once; it takes a few seconds."
            if problem == "missing" else
            f"The cached ONNX encoder {target} {problem}; exporting it again.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return _export(model, folder, target, record, precision, fingerprint)
    except OSError as exc:
        raise SettingsError(
            f"Cannot write the ONNX encoder into {folder} ({exc.strerror or exc}). Set cache_dir to a "
            "writable folder, or encoder_backend = \"torch\" to run the model without an export.") from None


def _export(model: Path, folder: Path, target: Path, record: Path, precision: str, fingerprint: str) -> Path:
    with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as tmp:
        made = Path(tmp) / target.name
        fp32 = Path(tmp) / "model-fp32.onnx"
        _export_fp32(model, fp32)
        if precision == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(fp32), str(made), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(made, target)
        tmp_record = Path(tmp) / "record.json"
        tmp_record.write_text(json.dumps({"sha256": sha256_file(target), "model": str(model),
                                          "fingerprint": fingerprint, "export_version": EXPORT_VERSION, "opset": OPSET,
                                          "made": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1), encoding="utf-8")
        os.replace(tmp_record, record)
    return target


def _check_export(target: Path, record: Path, fingerprint: str) -> str | None:
    """None when the export is whole and made from these model files, else what is wrong."""
    if not target.exists() or not record.exists():
        return "missing"
    try:
        recorded = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "has an unreadable record"
    if not isinstance(recorded, dict) or recorded.get("fingerprint") != fingerprint:
        return "was made from other model files"
    if recorded.get("sha256") != sha256_file(target):
        return "does not match its checksum (damaged or changed)"
    return None


def _export_fp32(model: Path, out: Path) -> None:
    """torch -> ONNX through the TorchScript exporter (`dynamo=False`; optimum is not usable here)."""
    import torch
    from transformers import AutoModel

    # A model instance of its own: after an export the same in-process model was seen to
    # misbehave, so the runtime never reuses this one.
    class TokenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # Eager attention exports a plainer graph than SDPA (and ran a little faster here).
            self.bert = AutoModel.from_pretrained(str(model), local_files_only=True,
                                                  attn_implementation="eager").eval()

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    with quiet_loading():
        bert = TokenStates().eval()
    sample = torch.tensor([[101, 2054, 2003, 102], [101, 2054, 102, 0]])
    mask = (sample > 0).long()
    with torch.inference_mode(), quiet_loading():
        torch.onnx.export(
            bert, (sample, mask, torch.zeros_like(sample)), str(out),
            input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["token_states"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in
                          ("input_ids", "attention_mask", "token_type_ids", "token_states")},
            opset_version=OPSET, dynamo=False)
    del bert


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """No tracer warnings or weight-loading bars from an export: a user sees one line, or none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from transformers.utils import logging as hf_logging
        except ImportError:  # pragma: no cover - transformers comes with sentence-transformers
            yield
            return
        shown = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            yield
        finally:
            if shown:
                hf_logging.enable_progress_bar()


# ---- choosing and loading ----------------------------------------------------------------------


@lru_cache(maxsize=4)
def resolve_device(device: str) -> str:
    """`auto` -> `cuda` when torch sees a GPU, else `cpu`; `cuda` without one is an error."""
    if device not in DEVICES:
        raise SettingsError(f"Invalid device value: {device!r}. Choose from {', '.join(DEVICES)}.")
    if device == "cpu":
        return "cpu"
    try:
        import torch

        has_cuda = bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover - torch is a dependency
        has_cuda = False
    if device == "cuda" and not has_cuda:
        raise SettingsError("device = \"cuda\" was asked for, but no CUDA GPU is visible to torch. "
                            "Use device = \"cpu\" (or \"auto\", which picks a GPU only when there is one).")
    return "cuda" if has_cuda else "cpu"


def onnx_has_cuda() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def make_encoder(name: str, path: Path, *, backend: str = "onnx", precision: str = "fp32", device: str = "cpu",
                 threads: int = 2, cache: Path | None = None, log: Callable[[str], None] | None = None) -> Encoder:
    """An encoder for the model folder `path` with the runtime the settings ask for.

    On a GPU the onnx backend needs onnxruntime's CUDA provider (onnxruntime-gpu); without it the
    torch runtime is used there, and `log` says so once.
    """
    if backend not in BACKENDS:
        raise SettingsError(f"Invalid encoder_backend value: {backend!r}. Choose from {', '.join(BACKENDS)}.")
    if precision not in PRECISIONS:
        raise SettingsError(f"Invalid encoder_precision value: {precision!r}. Choose from {', '.join(PRECISIONS)}.")
    if backend == "torch" and precision != "fp32":
        raise SettingsError("encoder_precision = \"int8\" needs encoder_backend = \"onnx\" "
                            "(the int8 model is an onnxruntime quantization).")
    where = resolve_device(device)
    if backend == "onnx" and where == "cuda" and not onnx_has_cuda():
        if log is not None:
            log("onnxruntime here has no CUDA provider (install onnxruntime-gpu); "
                "the encoder runs in torch on the GPU.")
        backend, precision = "torch", "fp32"
    runtime: Runtime
    if backend == "onnx":
        exported = onnx_model(path, cache or default_cache(), precision, log)
        try:
            runtime = OnnxRuntime(exported, threads, where)
        except Exception as exc:  # onnxruntime's errors have no common base class
            if log is not None:
                log(f"The cached ONNX encoder {exported} could not be loaded ({str(exc).splitlines()[0][:200]}); "
                    "exporting it again.")
            exported.unlink(missing_ok=True)  # made again below
            runtime = OnnxRuntime(onnx_model(path, cache or default_cache(), precision, None), threads, where)
    else:
        runtime = TorchRuntime(path, threads, where)
    return Encoder(name, path, runtime, backend=backend, precision=precision, device=where, threads=threads)


def default_cache() -> Path:
    """Where exports are cached when the settings name no folder: ~/.cache/qa."""
    return Path.home() / ".cache" / "qa"
