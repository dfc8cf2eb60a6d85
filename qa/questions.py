"""Question forms: what a question asks for, read from its wording alone.

Whether it is a yes/no question (`is_polar`), what kind of thing it asks for (`answer_type`: a
number, a date, a name), the words that say what is asked as opposed to whom it is about
(`focus_terms`), and the one number or date in a sentence that answers a how-many or when
question (`short_answer_span`).
"""

from __future__ import annotations

import re

from qa.lexical import bm25_terms
from qa.types import Sentence

# A yes/no question ("Did TikTok ban political ads?"): an auxiliary verb first, after at most a
# joining word of a follow-up ("And did he ...?").
_POLAR = re.compile(r"^\W*(?:(?:and|but|so|then|also|ok|okay)\W+)?(?:is|are|was|were|am|do|does|did|has|have|had|"
                    r"can|could|will|would|shall|should|may|might|must)(?:n[’']t)?\b", re.IGNORECASE)
# "... or ...", unless "or not": a choice between options the passage names, a span the reader finds.
_ALTERNATIVE = re.compile(r"\bor\b(?!\s+not\b)", re.IGNORECASE)


def is_polar(question: str) -> bool:
    """True for a yes/no question ("Has TikTok been accused of censoring content?"), False for a
    wh-question or a choice ("Were the experiments high-voltage or low-voltage?").

    The reader learned from SQuAD, which has almost no yes/no questions (45 of 10,570 in v1.1
    dev, half of them choices): it reads one as having no answer span and its no-answer score
    wins, however plainly a sentence answers. So for these the sentence scorer chooses the
    sentences and its confidence decides (`polar_confidence`); nothing is marked, the quoted
    sentence is the answer.
    """
    return bool(_POLAR.match(question)) and not _ALTERNATIVE.search(question)


# Question words that bm25_terms keeps but that carry no content.
QUESTION_TERMS = {"what", "who", "when", "where", "why", "how", "which", "whom", "whose", "mani",
                   "much", "did", "doe", "do", "say", "said", "accord", "articl", "document"}


def focus_terms(question: str) -> set[str]:
    """Terms of the question's lower-case words: what is asked, as opposed to whom it is about.

    "Who founded ByteDance?" focuses on "founded"; a sentence that names ByteDance without it
    does not answer.
    """
    words = [w for i, w in enumerate(re.findall(r"[\w'’-]+", question)) if i == 0 or not w[0].isupper()]
    return set(bm25_terms(" ".join(words))) - QUESTION_TERMS


_NUMBER = r"(?:\$|€|£)?\d[\d,.]*(?:\s?(?:%|percent|per cent))?(?:\s(?:million|billion|thousand|hundred))?"
_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_DATE = (rf"\b(?:{_MONTH}\s+\d{{1,2}}(?:,\s*\d{{4}})?|\d{{1,2}}\s+{_MONTH}(?:\s+\d{{4}})?|{_MONTH}\s+\d{{4}}"
         rf"|{_MONTH}|(?:19|20)\d{{2}}|(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday))\b")
_NAME = r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)+\b"


_PERSON_NOUNS = (r"(?:person|people|official|officials|senator|commissioner|secretary|minister|spokesman|"
                 r"spokeswoman|spokesperson|academic|professor|executive|officer|reporter|journalist|"
                 r"lawmaker|president|founder|ceo|chief|head|user|comedian|employee)")


def answer_type(question: str) -> str | None:
    """What kind of thing the question asks for: "number" (how many, how much, how long...),
    "date" (when, what year...), "name" (who, whom, whose, which official...) or None."""
    q = question.lower()
    if re.search(r"\bhow (?:many|much|long|old|far|big|large|tall)\b|\bwhat (?:number|percentage|share|amount|"
                 r"proportion|fraction)\b", q):
        return "number"
    if re.search(r"\bwhen\b|\b(?:what|which) (?:year|date|day|month|decade|century)\b", q):
        return "date"
    if re.search(rf"\bwho\b|\bwhom\b|\bwhose\b|\b(?:which|what) (?:[\w-]+ ){{0,2}}{_PERSON_NOUNS}\b", q):
        return "name"
    return None


def type_match(question: str, sentence: Sentence, wanted: str | None) -> float:
    """1 when the sentence holds the kind of thing asked for, in the way an answer would.

    A number or date counts fully only where `short_answer_span` pins it down ("3,000 accounts"
    for "how many accounts"), half when merely present; a name must be one the question does
    not already contain.
    """
    if wanted in ("number", "date"):
        if short_answer_span(question, sentence) is not None:
            return 1.0
        present = re.search(r"\d", sentence.text) if wanted == "number" else re.search(_DATE, sentence.text)
        return 0.5 if present else 0.0
    if wanted == "name":
        asked = question.lower()
        return 1.0 if any(name.lower() not in asked for name in re.findall(_NAME, sentence.text)) else 0.0
    return 0.0


def short_answer_span(question: str, sentence: Sentence) -> tuple[int, int] | None:
    """Offsets (into the source) of the number or date that answers a how-many or when
    question, only when exactly one candidate fits; otherwise None (no mark beats a wrong one)."""
    wanted = answer_type(question)
    if wanted == "number":
        nouns = [t for t in bm25_terms(question) if t not in QUESTION_TERMS]
        # The counted noun follows the number ("3,000 accounts"), at most one word later
        # ("16 fake accounts"); the nearest reading wins.
        found = []
        for reach in (1, 2):
            found = [m.span() for m in re.finditer(_NUMBER, sentence.text)
                     if any(t in nouns for t in bm25_terms(sentence.text[m.end():m.end() + 40])[:reach])]
            if found:
                break
        if len(found) != 1:
            all_numbers = [m.span() for m in re.finditer(_NUMBER, sentence.text)]
            found = all_numbers if len(all_numbers) == 1 else []
    elif wanted == "date":
        found = [m.span() for m in re.finditer(_DATE, sentence.text)]
    else:
        return None
    if len(found) != 1:
        return None
    start, end = found[0]
    while end > start and sentence.text[end - 1] in ",.":
        end -= 1
    return sentence.start + start, sentence.start + end
