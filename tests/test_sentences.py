"""Sentence boundaries on news text."""

from __future__ import annotations

from qa.sentences import split_sentences


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def test_abbreviations_initials_and_decimals_do_not_split() -> None:
    text = ("The U.S. government met Mr. Smith on Jan. 5. J. K. Rowling wrote it. "
            "TikTok has 1.5 billion downloads! It was stored in the U.S. The company said so.")
    assert sentences(text) == [
        "The U.S. government met Mr. Smith on Jan. 5.",
        "J. K. Rowling wrote it.",
        "TikTok has 1.5 billion downloads!",
        "It was stored in the U.S.",
        "The company said so.",
    ]


def test_quotes_bullets_headings_and_links() -> None:
    text = ('#### Active surveillance\n  • A PR arm said it. He said “it is fine.” Then left.\n'
            'See [a report](https://x.org/a "Title. More.") for details.')
    assert sentences(text) == [
        "Active surveillance",
        "A PR arm said it.",
        "He said “it is fine.”",
        "Then left.",
        'See [a report](https://x.org/a "Title. More.") for details.',
    ]


def test_offsets_are_exact_and_trimmed() -> None:
    text = "  One sentence here.   Two sentences here?\n\n- Three.  "
    spans = split_sentences(text, 0, len(text))
    assert [text[s:e] for s, e in spans] == ["One sentence here.", "Two sentences here?", "Three."]
    assert all(text[s:e].strip() == text[s:e] for s, e in spans)
