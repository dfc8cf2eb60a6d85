"""BM25 over chunks with bm25s: English stop words removed, Snowball-stemmed terms."""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

# Parameters of the published bm25s/Lucene runs on BEIR (k1=0.9, b=0.4).
K1 = 0.9
B = 0.4
_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(STOPWORDS_EN)


_local = threading.local()


def _stemmer() -> Stemmer.Stemmer:
    """This thread's stemmer: a PyStemmer object keeps state between calls and "must not be
    called concurrently" (its documentation), and questions are answered on several threads."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


def bm25_terms(text: str) -> list[str]:
    """The stemmed, lower-cased, stop-word-free terms that BM25 indexes and matches."""
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]
    return list(_stemmer().stemWords(words))


def build_bm25(texts: Sequence[str]) -> bm25s.BM25:
    """A BM25 index over `texts`, one document per text, in order."""
    corpus = [bm25_terms(t) or ["\u2205"] for t in texts]
    model = bm25s.BM25(k1=K1, b=B)
    model.index(corpus, show_progress=False)
    return model


# A query's cost grows with the postings of its terms. Past these caps only its rarest terms are
# scored (the most selective ones, which carry most of BM25's weight): at most 32 distinct terms,
# and no more postings than this in all, but always the rarest term.
MAX_QUERY_TERMS = 32
MAX_POSTINGS = 4_000_000


def bm25_scores(model: bm25s.BM25, query: str) -> np.ndarray:
    """BM25 scores of `query` against every indexed text (zeros when no term is known)."""
    ids = model.get_tokens_ids(bm25_terms(query))
    if not ids:
        return np.zeros(document_count(model), dtype=np.float32)
    return np.asarray(model.get_scores_from_ids(capped_terms(model, ids)), dtype=np.float32)


def capped_terms(model: bm25s.BM25, ids: list[int]) -> list[int]:
    """`ids` without their most common terms where the query passes `MAX_QUERY_TERMS` distinct
    terms or `MAX_POSTINGS` postings (order and repeats kept)."""
    indptr = model.scores["indptr"]
    unique = sorted(set(ids), key=lambda t: (int(indptr[t + 1] - indptr[t]), t))
    kept: set[int] = set()
    postings = 0
    for t in unique:
        size = int(indptr[t + 1] - indptr[t])
        if kept and (len(kept) >= MAX_QUERY_TERMS or postings + size > MAX_POSTINGS):
            break
        kept.add(t)
        postings += size
    return ids if len(kept) == len(unique) else [t for t in ids if t in kept]


def document_frequencies(model: bm25s.BM25, terms: Sequence[str]) -> dict[str, int]:
    """How many indexed texts contain each term (0 for terms the index has never seen)."""
    indptr = model.scores["indptr"]
    vocab = model.vocab_dict
    counts = {}
    for term in terms:
        tid = vocab.get(term)
        counts[term] = int(indptr[tid + 1] - indptr[tid]) if tid is not None and tid + 1 < len(indptr) else 0
    return counts


def idf(model: bm25s.BM25, terms: Sequence[str]) -> dict[str, float]:
    """BM25's inverse document frequency of each term, `log(1 + (N - df + 0.5) / (df + 0.5))`;
    a term the index has never seen gets the highest value."""
    n = document_count(model)
    return {t: math.log(1 + (n - df + 0.5) / (df + 0.5)) for t, df in document_frequencies(model, terms).items()}


def document_count(model: bm25s.BM25) -> int:
    """How many texts the index holds."""
    return int(model.scores["num_docs"])


def save_bm25(model: bm25s.BM25, folder: Path) -> None:
    """Write the index as .npy arrays and JSON (no pickle)."""
    model.save(str(folder), show_progress=False)


# The files `save_bm25` writes (bm25s's names): two JSON files, then the CSC score arrays.
BM25_JSON = ("params.index.json", "vocab.index.json")
BM25_ARRAYS = ("data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy")


def bm25_from_parts(params: bytes, vocab: bytes, data: np.ndarray, indices: np.ndarray,
                    indptr: np.ndarray) -> bm25s.BM25:
    """The index `save_bm25` wrote, from its files' contents as the index loader read (and
    checked) them, rather than from paths bm25s would open again; as `bm25s.BM25.load` builds it.

    Raises:
        ValueError: the parameters or vocabulary are not what bm25s writes, or the arrays disagree.
    """
    settings = json.loads(params)
    words = json.loads(vocab)
    if not isinstance(settings, dict) or not isinstance(words, dict):
        raise ValueError("the BM25 parameters or vocabulary are not JSON objects")
    if not (indptr.ndim == data.ndim == indices.ndim == 1 and len(data) == len(indices)
            and len(indptr) >= 1 and int(indptr[-1]) == len(data)):
        raise ValueError("the BM25 score arrays disagree on their lengths")
    # bm25s keeps one more id than it has columns (the empty word), so ids run to len(indptr) - 1.
    if words and not all(isinstance(t, int) and 0 <= t < len(indptr) for t in words.values()):
        raise ValueError("the BM25 vocabulary names terms the score arrays do not hold")
    settings = dict(settings)
    version = settings.pop("version", None)
    num_docs = settings.pop("num_docs", None)
    model = bm25s.BM25(**settings)
    if model.method in model.methods_requiring_nonoccurrence:
        raise ValueError(f"BM25 method {model.method!r} is not one qa writes")
    model.vocab_dict = words
    model._original_version = version
    model.unique_token_ids_set = set(words.values())
    model.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": num_docs}
    model.nonoccurrence_array = None
    return model
