"""The index: `build_index` (qa/index/build.py), the on-disk store and `load_index`
(qa/index/store.py), and the folder safety, lock and atomic swap (qa/index/atomic.py)."""

from __future__ import annotations

from qa.index.atomic import is_index_folder
from qa.index.build import build_index, chunk_model_text
from qa.index.store import FORMAT_VERSION, PIPELINE_VERSION, Index, Manifest, load_index, source_text

__all__ = ["FORMAT_VERSION", "PIPELINE_VERSION", "Index", "Manifest", "build_index", "chunk_model_text",
           "is_index_folder", "load_index", "source_text"]
