"""Abbreviations a question uses, spelled out as the documents spell them.

A user asks "Which department does CISA belong to?"; the article names "the Department of
Homeland Security's Cybersecurity and Infrastructure Security Agency" once and says "CISA"
after, never writing the two side by side. The reader cannot tell that they are one agency, so
it reads the question a second time with the abbreviation spelled out as the documents spell it
(`spelled_out`), and the better of the two readings stands (`qa.reading.read_answer`).

A long form is a run of capitalised words whose initials are the abbreviation's letters, with
"and", "of", "for", "the", "on", "in" or "&" allowed between them ("Cybersecurity and
Infrastructure Security Agency" for CISA), found in the documents that write the abbreviation or
that retrieval ranked first. Only abbreviations of 3 to 8 capital letters count: two letters
("US", "UK") are too ambiguous to spell out, and the question keeps them as asked.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import numpy as np

from qa.index import Index
from qa.lexical import bm25_scores

# An abbreviation in a question: 3 to 8 capital letters standing alone ("CISA", "CISA's").
ABBREVIATION = re.compile(r"\b[A-Z]{3,8}\b")
# Words a long form may hold between its capitalised words ("Department of Homeland Security").
_JOINERS = r"(?:\s+(?:and|of|for|the|on|in|&))*\s+"
# At most this many documents are searched for an abbreviation's long form, and this many of a
# document's chunks: the search stays cheap whatever the corpus.
MAX_DOCUMENTS = 10
MAX_CHUNKS_PER_DOCUMENT = 200
# Chunks that write the abbreviation, looked up by BM25: at most this many.
MAX_WRITING_CHUNKS = 20


def long_form_pattern(abbreviation: str) -> re.Pattern[str]:
    """A regex for the capitalised words whose initials spell `abbreviation`."""
    words = [rf"{re.escape(letter)}[\w'’-]*" for letter in abbreviation]
    return re.compile(r"\b" + _JOINERS.join(words) + r"\b")


def long_forms_in(abbreviation: str, texts: Iterable[str]) -> Counter[str]:
    """How often each long form of `abbreviation` occurs in `texts`."""
    pattern = long_form_pattern(abbreviation)
    found: Counter[str] = Counter()
    for text in texts:
        found.update(" ".join(m.group(0).split()) for m in pattern.finditer(text))
    return found


def _documents_to_search(abbreviation: str, index: Index, ranked_rows: np.ndarray) -> list[str]:
    """The documents whose chunks write `abbreviation` (best BM25 first), then those of the
    chunks retrieval ranked first; at most `MAX_DOCUMENTS`."""
    scores = bm25_scores(index.bm25, abbreviation)
    writing = np.flatnonzero(scores > 0)
    writing = writing[np.argsort(-scores[writing], kind="stable")][:MAX_WRITING_CHUNKS]
    out: list[str] = []
    for row in [*writing.tolist(), *np.asarray(ranked_rows).tolist()]:
        doc_id = index.chunks[int(row)].doc_id
        if doc_id not in out:
            out.append(doc_id)
        if len(out) >= MAX_DOCUMENTS:
            break
    return out


def long_forms(question: str, index: Index, ranked_rows: np.ndarray) -> dict[str, str]:
    """Each abbreviation of `question` that the documents spell out, with its most frequent long
    form there (ties: the first found)."""
    letters = [c for c in question if c.isalpha()]
    if sum(c.isupper() for c in letters) > len(letters) / 2:
        return {}   # a question typed in capitals has no abbreviations to tell apart
    out: dict[str, str] = {}
    for abbreviation in dict.fromkeys(ABBREVIATION.findall(question)):
        texts = (c.text for doc_id in _documents_to_search(abbreviation, index, ranked_rows)
                 for c in index.chunks_of(doc_id)[:MAX_CHUNKS_PER_DOCUMENT])
        found = long_forms_in(abbreviation, texts)
        if found:
            out[abbreviation] = found.most_common(1)[0][0]
    return out


def spelled_out(question: str, forms: dict[str, str]) -> str:
    """`question` with each abbreviation in `forms` replaced by its long form ("the" before it
    when the question has no article there: "does CISA belong" -> "does the Cybersecurity and
    Infrastructure Security Agency belong")."""
    def replace(match: re.Match[str]) -> str:
        long = forms[match.group(0)]
        before = question[:match.start()].split()
        article = "" if before and before[-1].lower() in {"the", "a", "an"} else "the "
        return article + long
    if not forms:
        return question
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(a) for a in forms) + r")\b")
    return pattern.sub(replace, question)
