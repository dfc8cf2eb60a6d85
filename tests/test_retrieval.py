"""Hybrid retrieval over the seeds, with the real model and the real FAISS index."""

from __future__ import annotations

import fnmatch
import os
import sys
import threading
import time
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


# The acceptance run is 60 s: QA_HAMMER_SECONDS=60 pytest tests/test_retrieval.py -k eight_threads
HAMMER_SECONDS = float(os.environ.get("QA_HAMMER_SECONDS", "3"))


def test_filtered_questions_from_eight_threads_at_once(seeds_index: Path, settings: Settings) -> None:
    """Eight threads ask filtered questions, with more filters than the allowed-rows cache holds
    and a 1 µs thread switch interval (the cache's evictions raced its lookups: KeyError,
    "dictionary changed size during iteration"). Every answer comes from the documents chosen."""
    import qa
    from qa.filters import DocFilter
    from qa.retrieval import _ALLOWED_SIZE, check_selects

    index = load_index(seeds_index)
    names = sorted(index.documents)
    patterns = [*names, *(f"{name[:3]}*" for name in names), "*.txt", "00[0-2]_*", "00[3-9]_*"]
    assert len(patterns) > _ALLOWED_SIZE
    questions = ["Where is TikTok's US user data stored?", "How many accounts did TikTok remove?",
                 "Why did Brendan Carr want TikTok removed?"]
    errors: list[BaseException] = []
    answered = [0] * 8
    deadline = time.monotonic() + HAMMER_SECONDS

    def ask(worker: int) -> None:
        n = worker
        try:
            while time.monotonic() < deadline:
                pattern = patterns[n % len(patterns)]
                for other in patterns:            # the cache, hammered: lookups and evictions
                    check_selects(index, DocFilter(docs=(other,)))
                if n % 4 == 0:
                    reply = qa.answer(questions[n % 3], index=index, settings=settings, docs=pattern)
                    found = {c.doc_id for c in reply.citations} | {p.doc_id for p in reply.passages}
                else:
                    found = {p.doc_id for p in retrieve(questions[n % 3], k=3, index=index, settings=settings,
                                                        docs=pattern)}
                assert found and all(fnmatch.fnmatchcase(d, pattern) for d in found), (pattern, found)
                answered[worker] += 1
                n += 1
        except BaseException as exc:   # handed to the test's thread, which fails with it
            errors.append(exc)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=ask, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(switch)
    assert not errors, errors[:3]
    assert all(answered), answered
