"""Chunking and embedding on a Ray cluster through Ray Data (`engine = "ray"`).

The driver (the `qa index` process) reads the corpus as a local build does: it needs every file's
sha256 to know what changed, and reading is cheap next to embedding. The new or changed documents
then go to Ray Data as a dataset; `map_batches` runs them through a fixed pool of actors, each of
which loads the encoder once (`ray_actors` actors of `ray_cpus_per_actor` CPUs and
`ray_gpus_per_actor` GPUs) and chunks, splits sentences and embeds exactly as the local build
does (qa/index/rows.py `split_documents` and `embed_rows`). Results come back through Ray's
object store as one row per document (offsets as JSON, vectors as float32 bytes); the driver
puts them back in corpus order and writes the same index a local build writes (BM25, the dense
layer, the atomic swap and the manifest are unchanged).

Ray is an optional extra: `pip install 'qa[ray]'`.
"""

# Ray is imported inside the functions that use them, on purpose: importing this module stays cheap
# (`import qa` loads neither torch nor FAISS, and `qa --help` starts at once).

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from qa.config import Settings
from qa.embed import embedder_for
from qa.errors import QAError
from qa.index.rows import embed_rows, split_documents
from qa.types import Chunk, Document, Sentence

INSTALL = "pip install 'qa[ray]'"
DOCS_PER_BATCH = 16


class RayMissingError(QAError):
    """engine = "ray" was asked for and Ray Data is not installed."""


def require_ray() -> Any:
    """The `ray` module with Ray Data, or one clear error saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise RayMissingError(
            f"engine \"ray\" needs Ray Data, which is not installed ({exc.name or 'ray'} is missing). "
            f"Install it with `{INSTALL}` (or `pip install 'ray[data]'`), or use --engine local.") from None
    return ray


def start_ray(settings: Settings, log: Callable[[str], None]) -> Any:
    """Connect to `settings.ray_address`, or start a local Ray when it is None; reuse a running one."""
    ray = require_ray()
    if not ray.is_initialized():
        os.environ.setdefault("RAY_ACCEPT_CLOUD_REQUIREMENTS", "1")
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
        if settings.ray_address:
            try:
                ray.init(address=settings.ray_address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise QAError(f"Cannot reach the Ray cluster at {settings.ray_address} ({exc}). Check "
                              "ray_address (e.g. ray://HOST:10001 or auto), or leave it out for a local Ray.") \
                    from None
        else:
            ray.init(**kwargs)
    # qa shows its own progress bar (or none with --quiet); Ray Data's progress logs are off.
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    for name in ("ray.data", "ray"):
        logging.getLogger(name).setLevel(logging.ERROR)
    resources = ray.cluster_resources()
    log(f"Ray {ray.__version__}: {resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs; "
        f"{settings.ray_actors} encoder actors of {settings.ray_cpus_per_actor:g} CPU, "
        f"{settings.ray_gpus_per_actor:g} GPU.")
    return ray


class _ChunkAndEmbed:
    """A Ray Data actor: loads the encoder once, then chunks and embeds batches of documents."""

    def __init__(self, settings: Settings, pooled: bool) -> None:
        self.settings = settings
        self.pooled = pooled
        self.embedder = embedder_for(self.settings)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        docs = [Document(str(d), str(t), None, str(text), tuple(tuple(s) for s in json.loads(str(seg))))
                for d, t, text, seg in zip(batch["doc_id"], batch["title"], batch["text"], batch["segments"],
                                           strict=True)]
        chunks, sentences = split_documents(docs, self.settings)
        titles = {d.doc_id: d.title for d in docs}
        cvec, svec = embed_rows(self.embedder, chunks, sentences, titles, self.settings, pooled=self.pooled)
        c_of: dict[str, list[int]] = {}
        s_of: dict[str, list[int]] = {}
        for k, c in enumerate(chunks):
            c_of.setdefault(c.doc_id, []).append(k)
        for k, s in enumerate(sentences):
            s_of.setdefault(s.doc_id, []).append(k)
        out: dict[str, list[Any]] = {"i": [], "chunks": [], "sentences": [], "cvec": [], "svec": []}
        for i, doc in zip(batch["i"], docs, strict=True):
            c_rows, s_rows = c_of.get(doc.doc_id, []), s_of.get(doc.doc_id, [])
            out["i"].append(int(i))
            out["chunks"].append(json.dumps([[chunks[k].start, chunks[k].end] for k in c_rows]))
            out["sentences"].append(json.dumps([[sentences[k].start, sentences[k].end] for k in s_rows]))
            out["cvec"].append(np.ascontiguousarray(cvec[c_rows], dtype=np.float32).tobytes())
            out["svec"].append(np.ascontiguousarray(svec[s_rows], dtype=np.float32).tobytes())
        return out


def ray_split_and_embed(documents: Sequence[Document], settings: Settings, *, dimension: int, pooled: bool,
                        log: Callable[[str], None]) -> tuple[list[Chunk], list[Sentence], np.ndarray, np.ndarray]:
    """Chunks, sentences and their vectors for `documents`, made on Ray, in `documents`' order."""
    ray = start_ray(settings, log)
    if not documents:
        return [], [], np.zeros((0, dimension), np.float32), np.zeros((0, dimension), np.float32)
    items = [{"i": i, "doc_id": d.doc_id, "title": d.title, "text": d.text,
              "segments": json.dumps([list(s) for s in d.segments])} for i, d in enumerate(documents)]
    # The actors' settings: one encoder thread per CPU they hold, no progress bars of their own.
    threads = max(1, int(settings.ray_cpus_per_actor))
    device = "cuda" if settings.ray_gpus_per_actor > 0 else settings.device
    actor_settings = replace(settings, threads=threads, show_progress=False, engine="local", device=device)
    # Batches small enough that every actor gets work on a small corpus, and no more actors than
    # batches (an idle actor still loads the encoder).
    batch = max(1, min(DOCS_PER_BATCH, -(-len(items) // settings.ray_actors)))
    batches = -(-len(items) // batch)
    actors = max(1, min(settings.ray_actors, batches))
    dataset = ray.data.from_items(items, override_num_blocks=batches)
    # Ray 2.60 logs "Actor ... has constructor arguments in the object store and max_restarts > 0"
    # for every actor pool, even without large arguments (ray-project/ray#57733); it is harmless.
    mapped = dataset.map_batches(
        _ChunkAndEmbed, fn_constructor_kwargs={"settings": actor_settings, "pooled": pooled},
        batch_size=batch, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=settings.ray_cpus_per_actor, num_gpus=settings.ray_gpus_per_actor or None)
    rows: dict[int, dict[str, Any]] = {}
    bar = None
    if settings.show_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(items), desc="Chunking and embedding on Ray", unit="doc", dynamic_ncols=True)
    try:
        for row in mapped.iter_rows():
            rows[int(row["i"])] = row
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if len(rows) != len(documents):
        raise QAError(f"Ray returned {len(rows)} of {len(documents)} documents; the index was left as it was.")
    chunks: list[Chunk] = []
    sentences: list[Sentence] = []
    cvecs: list[np.ndarray] = []
    svecs: list[np.ndarray] = []
    for i, doc in enumerate(documents):
        row = rows[i]
        chunks.extend(Chunk(doc.doc_id, s, e, doc.text[s:e]) for s, e in json.loads(row["chunks"]))
        sentences.extend(Sentence(doc.doc_id, s, e, doc.text[s:e]) for s, e in json.loads(row["sentences"]))
        cvecs.append(np.frombuffer(row["cvec"], dtype=np.float32).reshape(-1, dimension))
        svecs.append(np.frombuffer(row["svec"], dtype=np.float32).reshape(-1, dimension))
    return chunks, sentences, np.concatenate(cvecs), np.concatenate(svecs)
