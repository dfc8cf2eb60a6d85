"""The answerability evidence (qa/answerability.py) and what the reader reads (qa/reading.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from qa.answerability import ANSWERABILITY, FEATURES, Evidence, numbers_missing, type_fit
from qa.answers import answer
from qa.config import Settings
from qa.errors import SettingsError
from qa.index import load_index
from qa.questions import answer_type
from qa.reading import WINDOW_TOKENS, passage_windows, reading_order, word_pieces
from qa.retrieval import rank


def test_the_kind_of_answer_asked_for() -> None:
    assert answer_type("How many accounts did TikTok remove?") == "number"
    assert answer_type("how much did the fine come to") == "number"
    assert answer_type("When was the ban announced?") == "date"
    assert answer_type("In which year did the app launch?") == "date"
    assert answer_type("What year did the app launch?") == "date"
    assert answer_type("Who founded ByteDance?") == "name"
    assert answer_type("Where is the data kept?") is None
    assert answer_type("How long did the review take?") == "number"
    assert answer_type("Which commissioner wrote to Apple?") == "name"


def test_a_span_fits_the_kind_asked_for_or_counts_against() -> None:
    assert type_fit("How many accounts were removed?", "3,000 accounts") == 1.0
    assert type_fit("How many accounts were removed?", "dozens") == -1.0
    assert type_fit("How many accounts were removed?", "two dozen") == 1.0
    assert type_fit("When did it start?", "in March") == 1.0
    assert type_fit("When did it start?", "the harbor authority") == -1.0
    # A name counts only when the question does not already hold it.
    assert type_fit("Who runs ByteDance?", "Zhang Yiming") == 1.0
    assert type_fit("Who runs ByteDance?", "ByteDance") == -1.0
    assert type_fit("Where is the data stored?", "Virginia") == 0.0


def test_numbers_the_text_never_writes_are_missing() -> None:
    assert numbers_missing("How many followers did TikTok have in 2015?", "In 2020 it had 100 million.") == 1.0
    assert numbers_missing("What happened in 2020 to the 1,000 accounts?", "In 2020, 1000 accounts went.") == 0.0
    assert numbers_missing("What happened in 2020 and 2021?", "Only 2020 is named.") == 0.5
    assert numbers_missing("Who owns TikTok?", "ByteDance") == 0.0
    assert numbers_missing("Where is the vault? <img src=x onerror=alert(9)>", "In Reykjavik.") == 0.0


def test_the_model_reads_every_feature_and_stays_in_range() -> None:
    assert tuple(f for f in FEATURES if hasattr(ANSWERABILITY, f)) == FEATURES
    strong = Evidence(margin=10, span_margin=10, cosine=0.8, cosine_gap=0, type_fit=1, numbers_missing=0,
                      coverage=1, lexical=3)
    missing = dataclasses.replace(strong, numbers_missing=1.0)
    assert 0.0 < ANSWERABILITY(missing) < ANSWERABILITY(strong) < 1.0
    huge = Evidence(*[1e9] * len(FEATURES))
    assert 0.0 <= ANSWERABILITY(huge) <= 1.0   # no overflow


def test_whole_passages_are_packed_into_windows_that_fit_the_reader(seeds_index: Path) -> None:
    index = load_index(seeds_index)
    ranking = rank("Where is TikTok's US user data stored?", index, settings=Settings())
    windows = passage_windows(ranking, index, 5)
    rows = [r for w in windows for r in w.rows]
    assert len(rows) == len(set(rows))          # each sentence read once
    for w in windows:
        assert list(w.rows) == list(range(w.rows[0], w.rows[-1] + 1))   # a run of one document
        assert len({index.sentences[r].doc_id for r in w.rows}) == 1
        assert len(w.rows) == 1 or word_pieces(w.text) <= WINDOW_TOKENS + len(w.rows)
    # Every sentence of the first five passages in reading order is read.
    order = reading_order(ranking, index)
    wanted = {r for row in order[:5] for r in range(*(int(v) for v in index.chunk_sentences[row]))}
    assert wanted == set(rows)
    # A budget keeps the first passage whole and drops what does not fit.
    small = passage_windows(ranking, index, 5, budget=1)
    first = range(*(int(v) for v in index.chunk_sentences[int(ranking.rows[0])]))
    assert set(first) <= {r for w in small for r in w.rows} < set(rows)


def test_the_reading_settings_are_checked(seeds_index: Path) -> None:
    with pytest.raises(SettingsError, match="reader_tokens"):
        Settings(reader_tokens=-1)
    reply = answer("Where is TikTok's US user data stored?", index=seeds_index,
                   settings=Settings(reader_passages=5, reader_tokens=600))
    assert not reply.abstained and "Virginia" in reply.text


def test_the_sentence_closest_in_meaning_is_read_though_its_passage_ranked_low(seeds_index: Path) -> None:
    # Asked in other words, the passage with "stored in Virginia with a back-up in Singapore"
    # ranks sixth, past the reading budget, though its sentence is the closest to the question.
    index = load_index(seeds_index)
    question = "Where is the backup copy of American users' information on the video app kept?"
    ranking = rank(question, index, settings=Settings())
    holding = [i for i, row in enumerate(ranking.rows) if "Singapore" in index.chunks[int(row)].text]
    assert holding[0] > 1
    order = reading_order(ranking, index)
    assert sorted(order) == sorted(int(r) for r in ranking.rows)      # the same chunks, reordered
    assert order[0] == int(ranking.rows[0]) and "Singapore" in index.chunks[order[1]].text
    assert reading_order(ranking, index, depth=0) == [int(r) for r in ranking.rows]
    reply = answer(question, index=index, settings=Settings(abstain_threshold=0.0))
    assert "Singapore" in reply.citations[0].quote
