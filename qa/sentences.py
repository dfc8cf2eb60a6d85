"""Sentence boundaries with exact offsets, tuned for news text.

Handles abbreviations ("U.S.", "Mr.", "Jan."), initials ("J. K. Rowling"), decimals ("1.5
billion"), closing quotes after the full stop, and line-based structure (headings, bullets,
bylines): a line break always ends a sentence, and bullet or heading markers are left out of it.
"""

from __future__ import annotations

import re

# Words that end in a full stop without ending the sentence (compared lower-cased, without dot).
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "gen", "gov", "sen", "rep", "rev",
    "col", "lt", "sgt", "capt", "cmdr", "adm", "pres", "hon", "inc", "ltd", "co", "corp", "llc",
    "plc", "no", "nos", "vol", "vols", "fig", "figs", "p", "pp", "ch", "sec", "art", "ed", "eds",
    "approx", "est", "dept", "univ", "assn", "bros", "vs", "v", "etc", "al", "cf", "e.g", "i.e",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri", "sat", "sun", "ft", "ave", "blvd",
}
# After "U.S." or "Inc." these words start a new sentence rather than continue the name.
_SENTENCE_STARTERS = {
    "the", "a", "an", "it", "its", "he", "she", "they", "we", "i", "you", "this", "that", "these",
    "those", "there", "in", "on", "at", "but", "and", "or", "so", "yet", "as", "if", "when",
    "while", "after", "before", "since", "however", "meanwhile", "according", "some", "many",
    "most", "his", "her", "their", "our", "what", "why", "how", "who", "officials", "tiktok",
}
_CANDIDATE = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|\n")
# Boundaries inside these never end a sentence: Markdown links (their titles hold full stops)
# and bare URLs.
_PROTECTED = re.compile(r"\[[^\]\n]*\]\([^)\n]*\)|https?://\S+")
_MARKER = re.compile(r"[ \t]*(?:#{1,6}[ \t]+|[-*•·–—>][ \t]+|\d{1,3}[.)][ \t]+)+")


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """`(start, end)` offsets of the sentences of `text[start:end]`, trimmed, in order.

    Every returned range satisfies `text[s:e].strip() == text[s:e]` and holds at least one
    letter or digit.
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cursor = start
    protected = [m.span() for m in _PROTECTED.finditer(text, start, end)]
    for match in _CANDIDATE.finditer(text, start, end):
        if match.group() != "\n" and (
            any(s <= match.start() < e - 1 for s, e in protected)
            or not _ends_sentence(text, match.start(), match.end(), end)
        ):
            continue
        _add(text, cursor, match.end(), spans)
        cursor = match.end()
    _add(text, cursor, end, spans)
    return spans


def _ends_sentence(text: str, stop: int, after: int, end: int) -> bool:
    """Whether the punctuation at `text[stop:after]` ends a sentence."""
    if text[stop] != ".":
        return True
    word_match = re.search(r"([\w.'’-]+)$", text[max(0, stop - 40):stop])
    word = word_match.group(1) if word_match else ""
    next_match = re.match(r"\s+([\"'“‘(\[]?)(\S+)", text[after:min(end, after + 60)])
    if next_match is None:
        return True
    next_word = next_match.group(2)
    if not (next_word[0].isupper() or next_word[0].isdigit() or next_match.group(1)):
        return False  # "... approx. three" or "e.g. a": lower-case continuation
    bare = word.lower().strip(".")
    starter = re.sub(r"\W+$", "", next_word).lower() in _SENTENCE_STARTERS
    if re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]?", word + "."):
        # Initials and dotted acronyms: "J. K. Rowling", "U.S. officials", "D.C."
        return starter and len(word) > 1
    if bare in _ABBREVIATIONS:
        return starter and bare in {"inc", "ltd", "co", "corp", "llc", "plc", "etc"}
    return True


def _add(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    marker = _MARKER.match(text, start, end)
    if marker:
        start = marker.end()
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start and any(ch.isalnum() for ch in text[start:end]):
        spans.append((start, end))
