"""The WordNet reader (qa/bench/wordnet.py) and the mechanical paraphraser (qa/bench/paraphrase.py)
on the real WordNet 3.0 files; they skip where Debian's wordnet-base is not installed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qa.bench.overlap import overlap
from qa.bench.paraphrase import paragraph_vocabulary, paraphrase
from qa.bench.wordnet import DEBIAN_WORDNET, WordNet
from qa.errors import BenchmarkDataError

needs_wordnet = pytest.mark.skipif(
    not (DEBIAN_WORDNET / "data.noun").is_file(),
    reason=f"WordNet 3.0 is not installed at {DEBIAN_WORDNET} (apt-get install wordnet-base; `make install` "
           "does it as root)")

PARAGRAPH = ("The Denver Broncos team represented the American Football Conference (AFC) at Super Bowl 50, "
             "played on February 7, 2016. Three hundred students and their teachers were located in Denver, "
             "where the students took two exams.")
QUESTIONS = (
    "Which team represented the AFC at Super Bowl 50?",
    "How many students were located in Denver in 2016?",
    "Where were the teachers located when the students took two exams?",
    "Who played in Super Bowl 50 on February 7?",
    "What did the Denver Broncos team represent?",
)


@pytest.fixture(scope="module")
def wordnet() -> WordNet:
    return WordNet.load()


def test_a_missing_wordnet_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkDataError, match=r"apt-get install wordnet-base") as caught:
        WordNet.load(tmp_path)
    assert str(tmp_path) in str(caught.value)


@needs_wordnet
def test_the_reader_finds_senses_counts_and_base_forms(wordnet: WordNet) -> None:
    team = wordnet.synsets("team", "n")
    assert [(lemma.name, lemma.count) for lemma in team[0].lemmas] == [("team", 43), ("squad", 4)]
    assert wordnet.base_forms("took", "v") == ["take"]
    assert wordnet.base_forms("located", "v") == ["locate"]
    assert wordnet.base_forms("women", "n") == ["woman"]
    assert wordnet.inflected_forms("take", "v") == ("taken", "took")
    assert wordnet.entry("no-such-word", "n") is None and wordnet.synsets("no-such-word", "n") == []


@needs_wordnet
def test_paraphrases_are_deterministic(wordnet: WordNet) -> None:
    first = [paraphrase(q, PARAGRAPH, wordnet) for q in QUESTIONS]
    again = [paraphrase(q, PARAGRAPH, WordNet.load()) for q in QUESTIONS]
    assert first == again
    # Pinned: the most frequent lemma of the earliest sense that the paragraph lacks, inflected.
    assert first[0].text == "Which squad stood for the AFC at Super Bowl 50?"
    assert first[2].text == "Where were the instructors turned up when the pupils occupied two tests?"


@needs_wordnet
def test_shared_words_are_replaced_by_synonyms_the_paragraph_lacks(wordnet: WordNet) -> None:
    vocabulary = paragraph_vocabulary(PARAGRAPH, wordnet)
    for question in QUESTIONS:
        p = paraphrase(question, PARAGRAPH, wordnet, vocabulary)
        for r in p.replacements:
            assert r.word.lower() in vocabulary or r.lemma in vocabulary, r   # it was shared
            words = re.findall(r"[a-z]+", r.replacement.lower())
            assert words and not set(words) & vocabulary, r
            assert not re.search(rf"\b{re.escape(r.replacement)}\b", PARAGRAPH, re.IGNORECASE), r
            assert r.replacement in p.text
        assert overlap(p.text, PARAGRAPH) <= overlap(question, PARAGRAPH)
    made = [paraphrase(q, PARAGRAPH, wordnet) for q in QUESTIONS]
    assert sum(p.changed for p in made) >= 4
    assert sum(overlap(p.text, PARAGRAPH) for p in made) < sum(overlap(q, PARAGRAPH) for q in QUESTIONS)


@needs_wordnet
def test_names_numbers_and_question_words_are_never_replaced(wordnet: WordNet) -> None:
    for question in QUESTIONS:
        p = paraphrase(question, PARAGRAPH, wordnet)
        kept = [w for w in re.findall(r"\w+", question)
                if w[0].isupper() or w[0].isdigit() or w.lower() in {"which", "how", "many", "where", "who",
                                                                         "what", "when", "two", "three"}]
        assert all(re.search(rf"\b{re.escape(w)}\b", p.text) for w in kept), (question, p.text)
        assert not {r.word for r in p.replacements} & set(kept)
    # A question made only of names, numbers and stop words is left as it is.
    assert not paraphrase("Who was in Denver on February 7, 2016?", PARAGRAPH, wordnet).changed


@needs_wordnet
def test_words_not_in_the_paragraph_are_kept(wordnet: WordNet) -> None:
    p = paraphrase("Which coach praised the team?", PARAGRAPH, wordnet)
    assert [r.word for r in p.replacements] == ["team"]
    assert p.text.startswith("Which coach praised ")
