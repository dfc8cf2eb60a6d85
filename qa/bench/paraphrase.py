"""A mechanical, reproducible paraphrase of a question against its paragraph: each content word
the question shares with the paragraph is replaced by a WordNet synonym the paragraph lacks.

It makes SQuAD's questions, which borrow their paragraph's words, look a little more like a
user's, who does not know the documents' wording (`qa bench squad` reports both). It is not
fluent English and is not meant to be: it is a probe that moves questions out of the high-overlap
buckets while keeping what they ask.

The rules, all deterministic (no randomness, no model):
- Kept: the first word (the question word, or the sentence's first word), every capitalised word
  (names), numbers and number words, stop words (scikit-learn's list), question words, words
  with a hyphen or an inner apostrophe, and words under three letters.
- Replaced: a remaining word whose form or base form (WordNet's morphy) is in the paragraph's
  vocabulary (its lower-cased words and their base forms).
- Part of speech: the one WordNet knows the word in; where it knows several, a cue from its
  neighbours ("to"/"did" before, or an -s/-ed form before "the"/"through": verb; a lower-case
  noun after: adjective; "the"/"of", a name or an adjective before: noun), its ending (-ly
  adverb, -ing/-ed verb), else its part of speech with the most SemCor-tagged senses.
- Synonym: over the word's first `SENSES` senses in that part of speech (most frequent first),
  each sense's lemmas by SemCor count (then WordNet's order), the first that is lower-case,
  of three letters or more, is not the word, a spelling variant of it or in the question
  already, holds no number word, and none of whose words is in the paragraph's vocabulary;
  inflected like the word (plural, -s, -ed or irregular past, -ing). A comparative or
  superlative adjective is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from qa.bench.wordnet import WordNet


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# How many of a word's senses (most frequent first) may lend a synonym: deeper senses drift
# from what the question asks ("champion" sense 3 is "supporter").
SENSES = 3
QUESTION_WORDS = frozenset({"what", "which", "who", "whom", "whose", "when", "where", "why", "how"})
NUMBER_WORDS = _words(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million "
    "billion trillion dozen half first second third fourth fifth sixth seventh eighth ninth tenth")
# A word alone: letters (no digits: "50th" is a number), hyphen- or apostrophe-joined parts.
_TOKEN = re.compile(r"(?<![\w'’-])[^\W\d_]+(?:['’-][^\W\d_]+)*(?![\w-])")
_WORD = re.compile(r"[^\W_]+")
_VERB_CUES = _words("to did does do didn doesn don will would can could should may might must")
_NOUN_CUES = _words("the a an this that these those his her its their our my your of in on at for with by from "
                    "about into many much several each every some any")
_OBJECT_CUES = _words("the a an this these those his her its their through into across over around toward towards")
_BE_HAVE = _words("is are was were be been being has have had get got")
_VOWELS = frozenset("aeiou")


@dataclass(frozen=True)
class Replacement:
    """One word replaced: where it stood in the question, its base form and part of speech
    (n, v, a, r), and what replaced it."""

    start: int
    word: str
    lemma: str
    pos: str
    replacement: str


@dataclass(frozen=True)
class Paraphrase:
    """A question and its paraphrase (`text`, equal to `question` when nothing was replaced)."""

    question: str
    text: str
    replacements: tuple[Replacement, ...]

    @property
    def changed(self) -> bool:
        return bool(self.replacements)


def paragraph_vocabulary(paragraph: str, wordnet: WordNet) -> frozenset[str]:
    """The paragraph's lower-cased words and their WordNet base forms in every part of speech."""
    words = set(_WORD.findall(paragraph.lower()))
    return frozenset(words | {b for w in words if w.isalpha() for pos in "nvar" for b in wordnet.base_forms(w, pos)})


def paraphrase(question: str, paragraph: str, wordnet: WordNet,
               vocabulary: frozenset[str] | None = None) -> Paraphrase:
    """Replace the content words `question` shares with `paragraph` by WordNet synonyms the
    paragraph lacks (the rules are in the module docstring).

    Args:
        question: the question.
        paragraph: the text it was written against.
        wordnet: the WordNet to draw synonyms from.
        vocabulary: `paragraph_vocabulary(paragraph, wordnet)`, when already computed.

    Returns:
        The paraphrase and what was replaced, in order.
    """
    vocabulary = paragraph_vocabulary(paragraph, wordnet) if vocabulary is None else vocabulary
    tokens = list(_TOKEN.finditer(question))
    asked = {t.group().lower() for t in tokens}
    replacements = []
    for i, token in enumerate(tokens):
        word = token.group()
        lower = word.lower()
        if (i == 0 or word[0].isupper() or lower in ENGLISH_STOP_WORDS or lower in QUESTION_WORDS
                or lower in NUMBER_WORDS or not lower.isalpha() or len(lower) < 3):
            continue
        bases = {b for pos in "nvar" for b in wordnet.base_forms(lower, pos)}
        if lower not in vocabulary and not bases & vocabulary:
            continue
        pos = guess_pos([t.group() for t in tokens], i, wordnet)
        if pos is None:
            continue
        lemma = wordnet.base_forms(lower, pos)[0]
        synonym = _synonym(lemma, pos, wordnet, vocabulary | asked)
        form = _inflect(synonym, lower, lemma, pos, wordnet) if synonym else None
        if form:
            replacements.append(Replacement(token.start(), word, lemma, pos, form))
    text = question
    for r in reversed(replacements):
        text = text[:r.start] + r.replacement + text[r.start + len(r.word):]
    return Paraphrase(question, text, tuple(replacements))


def guess_pos(tokens: list[str], i: int, wordnet: WordNet) -> str | None:
    """The part of speech (n, v, a, r) of `tokens[i]` as far as a cue tells, else its most
    common one in WordNet; None when WordNet does not know the word."""
    word = tokens[i].lower()
    known = [pos for pos in "nvar" if wordnet.base_forms(word, pos)]
    if len(known) <= 1:
        return known[0] if known else None
    before = tokens[i - 1] if i > 0 else ""
    after = tokens[i + 1] if i + 1 < len(tokens) else ""
    if before.lower() in _VERB_CUES and "v" in known:
        return "v"
    # An inflected verb before its object or a place ("Which river flows through Warsaw?").
    if "v" in known and word.endswith(("s", "ed")) and after.lower() in _OBJECT_CUES:
        return "v"
    # An adjective before a noun ("private schools", "alternate machine models").
    if "a" in known and after.islower() and after not in ENGLISH_STOP_WORDS and wordnet.base_forms(after, "n"):
        return "a"
    # A noun after a determiner or preposition, a name ("the Parliament building") or an
    # adjective ("chronic conditions").
    before_is_adjective = [pos for pos in "nvar" if wordnet.base_forms(before.lower(), pos)] == ["a"]
    if "n" in known and (before.lower() in _NOUN_CUES or before[:1].isupper() and i > 1 or before_is_adjective):
        return "n"
    if word.endswith("ly") and "r" in known:
        return "r"
    if before.lower() in _BE_HAVE:
        if "v" in known and wordnet.base_forms(word, "v")[0] != word:   # "was located", "was taken"
            return "v"
        if "a" in known:
            return "a"
    if word.endswith(("ing", "ed")) and "v" in known:
        return "v"

    def tagged(pos: str) -> int:
        entry = wordnet.entry(wordnet.base_forms(word, pos)[0], pos)
        return entry.tagged_senses if entry else 0

    return max(known, key=lambda pos: (tagged(pos), -"nvar".index(pos)))


def _synonym(lemma: str, pos: str, wordnet: WordNet, avoid: Iterable[str]) -> str | None:
    """The first lemma of the first `SENSES` senses (each by SemCor count) that may replace
    `lemma`: lower-case, not a spelling variant, and no word of it in `avoid`."""
    avoid = set(avoid)
    for synset in wordnet.synsets(lemma, pos)[:SENSES]:
        ranked = sorted(enumerate(synset.lemmas), key=lambda x: (-x[1].count, x[0]))
        for _, candidate in ranked:
            name = candidate.name
            parts = re.split(r"[_-]", name.lower())
            if (name != name.lower() or not name.replace("_", "").replace("-", "").isalpha() or len(name) < 3
                    or lemma in parts or name.lower() == lemma or any(p in NUMBER_WORDS for p in parts)
                    or SequenceMatcher(None, name.lower(), lemma).ratio() >= 0.8
                    or any(p in avoid for p in parts)):
                continue
            return name
    return None


def _inflect(name: str, surface: str, lemma: str, pos: str, wordnet: WordNet) -> str | None:
    """`name` (a WordNet lemma, underscores for spaces) in the form `surface` takes of `lemma`;
    None where the form cannot be carried over (a comparative or superlative adjective)."""
    words = name.split("_")
    if surface == lemma:
        return " ".join(words)
    if pos == "n":
        words[-1] = _irregular(words[-1], "n", wordnet) or _add_s(words[-1])
    elif pos == "v":
        head = words[0]
        if surface.endswith("ing"):
            words[0] = _add_ing(head)
        elif surface.endswith("s") and not surface.endswith("ss") and _add_s(lemma) == surface:
            words[0] = _add_s(head)
        else:   # a past tense or participle, regular or not
            participle = surface.endswith("n") and not surface.endswith("ed")
            words[0] = _irregular(head, "v", wordnet, participle) or _add_ed(head)
    else:
        return None
    return " ".join(words)


def _irregular(base: str, pos: str, wordnet: WordNet, participle: bool = False) -> str | None:
    """An irregular form of `base` from WordNet's exception list ("woman" -> "women"; for a verb
    the past, or the participle ending in -n when `participle`), if it has one."""
    forms = [f for f in wordnet.inflected_forms(base, pos) if not f.endswith(("ing", "s")) or pos == "n"]
    if pos == "v" and forms:
        preferred = [f for f in forms if f.endswith("n") == participle]
        forms = preferred or forms
    return forms[0] if forms else None


def _add_s(word: str) -> str:
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and len(word) > 1 and word[-2] not in _VOWELS:
        return word[:-1] + "ies"
    return word + "s"


def _add_ed(word: str) -> str:
    if word.endswith("e"):
        return word + "d"
    if word.endswith("y") and len(word) > 1 and word[-2] not in _VOWELS:
        return word[:-1] + "ied"
    return word + "ed"


def _add_ing(word: str) -> str:
    if word.endswith("ie"):
        return word[:-2] + "ying"
    if word.endswith("e") and not word.endswith("ee") and len(word) > 2:
        return word[:-1] + "ing"
    return word + "ing"
