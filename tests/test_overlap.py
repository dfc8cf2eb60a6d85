"""The lexical overlap `qa bench squad` buckets its figures by (qa/bench/overlap.py), worked out by hand."""

from __future__ import annotations

import math

import pytest

from qa.bench.overlap import BUCKETS, answer_sentence, bucket_of, by_bucket, content_words, overlap

PARAGRAPH = ("Warsaw is the capital of Poland. The Vistula River flows through the city. "
             "Its old town was rebuilt after the war, and the river's banks were rebuilt too.")


def test_content_words_are_lower_cased_without_stop_words_or_possessives() -> None:
    assert content_words("Which river flows through Warsaw's old town?") == {"river", "flows", "warsaw", "old", "town"}
    assert content_words("What is it?") == set()


def test_overlap_is_the_share_of_the_question_content_words_in_the_sentence() -> None:
    # river, flows, warsaw: two of the three are in the sentence ("flows", "river"; not "warsaw").
    assert overlap("Which river flows through Warsaw?", "The Vistula River flows through the city.") == \
        pytest.approx(2 / 3)
    # No stemming: "flowed" is not "flows".
    assert overlap("Which river flowed here?", "The river flows.") == pytest.approx(1 / 2)
    assert overlap("What is it?", "Anything at all.") == 0.0


def test_the_answer_sentence_holds_the_first_gold_answer_else_the_best_overlap() -> None:
    found = answer_sentence("Which river flows through Warsaw?", PARAGRAPH, ["Vistula", "Vistula River"])
    assert (found.text, found.how) == ("The Vistula River flows through the city.", "answer")
    assert PARAGRAPH[found.start:found.end] == found.text
    # The first occurrence of the first answer, whatever the question says ("rebuilt" twice).
    assert answer_sentence("What happened to the banks?", PARAGRAPH, ["rebuilt"]).text.startswith("Its old town")
    # Case is ignored when the exact answer is not there.
    assert answer_sentence("Capital?", PARAGRAPH, ["POLAND"]).text == "Warsaw is the capital of Poland."
    # No gold answer (an unanswerable question): the sentence sharing most content words.
    unanswerable = answer_sentence("When were the river banks rebuilt?", PARAGRAPH, [])
    assert unanswerable.how == "best overlap" and unanswerable.text.startswith("Its old town")


def test_buckets_split_at_0_3_and_0_6() -> None:
    assert BUCKETS == ("< 0.3", "0.3-0.6", "> 0.6")
    assert [bucket_of(x) for x in (0.0, 0.29, 0.3, 0.5, 0.6, 0.61, 1.0)] == \
        ["< 0.3", "< 0.3", "0.3-0.6", "0.3-0.6", "0.3-0.6", "> 0.6", "> 0.6"]
    # 3 of 5 words is 0.6 exactly, as a float division gives it: the middle bucket.
    assert bucket_of(3 / 5) == "0.3-0.6" and bucket_of(1 / 3) == "0.3-0.6"


def test_by_bucket_computes_each_figure_over_the_rows_of_its_bucket() -> None:
    shares = [0.1, 0.2, 0.5, 0.9, 1.0, 0.8]
    right = [True, False, True, True, True, False]

    def figures(rows: list[bool]) -> dict[str, float]:
        return {"correct": sum(rows) / len(rows) if rows else float("nan")}

    result = by_bucket(shares, right, figures)
    assert list(result) == list(BUCKETS)
    assert result["< 0.3"] == {"questions": 2, "correct": 0.5}
    assert result["0.3-0.6"] == {"questions": 1, "correct": 1.0}
    assert result["> 0.6"]["questions"] == 3 and result["> 0.6"]["correct"] == pytest.approx(2 / 3)
    empty = by_bucket([0.9], [True], figures)
    assert empty["< 0.3"]["questions"] == 0 and math.isnan(empty["< 0.3"]["correct"])
    with pytest.raises(ValueError, match="one overlap per row"):
        by_bucket([0.1], [True, False], figures)
