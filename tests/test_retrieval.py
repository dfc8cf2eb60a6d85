"""Hybrid retrieval over the seeds, with the real model and the real FAISS index."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.config import Settings
from qa.errors import QueryError, SettingsError
from qa.index import load_index
from qa.retrieval import retrieve

from .conftest import SEEDS


def test_user_data_question_ranks_the_virginia_passage_first(seeds_index: Path) -> None:
    top = retrieve("Where is TikTok's US user data stored?", k=5, index=seeds_index)[0]
    assert "stored in Virginia with a back-up in Singapore" in top.text
    source = (SEEDS / top.doc_id).read_text(encoding="utf-8")
    assert source[top.start:top.end] == top.text
    assert top.title.startswith("TikTok launches its own info hub")
    for mode in ("dense", "bm25"):
        # Two articles state it; each single retriever must put one of them first.
        top = retrieve("Where is TikTok's US user data stored?", k=5, index=seeds_index, mode=mode)[0]
        assert "Virginia" in top.text and "Singapore" in top.text, mode


def test_passages_carry_metadata_and_exact_offsets(seeds_index: Path) -> None:
    passages = retrieve("leaked police documents BlueLeaks", k=4, index=seeds_index)
    assert len(passages) == 4
    assert passages[0].doc_id == "004_99cfcbda6ab29d43.txt" and passages[0].date == "2020-08-24"
    scores = [p.score for p in passages]
    assert scores == sorted(scores, reverse=True)
    for p in passages:
        assert (SEEDS / p.doc_id).read_text(encoding="utf-8")[p.start:p.end] == p.text


def test_hybrid_finds_what_each_retriever_alone_finds(seeds_index: Path) -> None:
    # An exact rare name (BM25's strength) and a paraphrase with no shared words (dense's strength).
    name = retrieve("Zhao Lijian", k=1, index=seeds_index)[0]
    assert "Zhao Lijian" in name.text
    para = retrieve("Which app did a telecom regulator ask Apple and Google to pull?", k=3, index=seeds_index)
    assert any("FCC commissioner" in p.text for p in para)


def test_loaded_index_is_reused(seeds_index: Path) -> None:
    assert load_index(seeds_index) is load_index(seeds_index)
    hits = retrieve("disinformation on Super Tuesday", k=2, index=load_index(seeds_index))
    assert hits[0].doc_id == "000_0cda244c9ed3ffe8.txt"


@pytest.mark.parametrize("query", ["", "   \n\t", "\x00\x00"])
def test_empty_query_is_a_clear_error(seeds_index: Path, query: str) -> None:
    with pytest.raises(QueryError, match="empty"):
        retrieve(query, index=seeds_index)


def test_odd_queries_work_or_fail_clearly(seeds_index: Path) -> None:
    long_query = "Where is TikTok's US user data stored? " * 2600  # ~100,000 characters
    with pytest.raises(QueryError, match="characters long; the limit is 2,000"):
        retrieve(long_query, k=3, index=seeds_index)
    at_limit = ("Where is TikTok's US user data stored? " * 60)[:2000]
    assert retrieve(at_limit, k=3, index=seeds_index)
    assert retrieve(long_query, k=3, index=seeds_index, settings=Settings(max_question_chars=200_000))
    assert retrieve("?!…", k=3, index=seeds_index)  # nothing for BM25, dense still ranks
    assert retrieve("¿Dónde se guardan los datos de los usuarios de TikTok?", k=3, index=seeds_index)
    with pytest.raises(QueryError, match="must be text"):
        retrieve(42, index=seeds_index)  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="Choose from"):
        retrieve("data", index=seeds_index, mode="sparse")
    with pytest.raises(SettingsError, match="Invalid k value: 'eight'"):
        retrieve("data", k="eight", index=seeds_index)  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="not valid text"):
        retrieve("data \udcff", index=seeds_index)
