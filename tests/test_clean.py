"""Page furniture (ads, donation pleas, recommendations) stays out of what is indexed."""

from __future__ import annotations

from pathlib import Path

from qa.clean import boilerplate_ranges, model_text
from qa.load import load_corpus
from qa.retrieval import retrieve

from .conftest import SEEDS

FURNITURE = ["Advertisement", "Editors' Recommendations", "Skip to main content", "Your donation",
             "Complimentary Tech Event", "Join our commenting forum", "3 min read", "{{}}"]


def test_seed_body_segments_hold_no_page_furniture() -> None:
    docs, _ = load_corpus(SEEDS)
    body = "\n".join(d.text[s:e] for d in docs for s, e in d.segments)
    for phrase in FURNITURE:
        assert phrase not in body, phrase
    # Article text glued to a plea on the same line survives.
    assert "Some groups are trying to use TikTok and other social media to launch influence campaigns." in body
    assert "removed 3,000 accounts" in body


def test_repeated_lines_are_dropped_once_seen() -> None:
    text = "A long headline that is printed twice\nbody\nA long headline that is printed twice\n"
    (s, e), = boilerplate_ranges(text)
    assert s == text.rindex("A long") and text[s:e] == "A long headline that is printed twice"


def test_furniture_does_not_crowd_out_articles(seeds_index: Path) -> None:
    # Queries worded like the furniture still get article passages, never a furniture chunk.
    for query in ("support journalism donation", "advertisement", "editors recommendations newsletter"):
        for p in retrieve(query, k=5, index=seeds_index):
            assert not any(phrase in p.text for phrase in FURNITURE), (query, p.text[:80])


def test_model_text_drops_link_targets_and_tags() -> None:
    raw = 'See [the report](https://example.com/a "Title. With dot") and <b>bold</b> &amp; more.'
    assert model_text(raw) == "See the report and  bold  & more."
