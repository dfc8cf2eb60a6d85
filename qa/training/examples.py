"""The training examples of `qa train-reader`: each epoch's windows of the SQuAD questions, with
their augmentations (entity-swapped and reworded questions, other paragraphs, runs of sentences
without the answer), and batches of similar length."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qa.bench.paraphrase import paraphrase
from qa.bench.wordnet import DEBIAN_WORDNET, WordNet, missing_message
from qa.reader.model import Encoded, ReaderError, question_ids, text_tokens, windows
from qa.sentences import split_sentences
from qa.training.data import QAItem
from qa.training.recipe import TrainConfig


@dataclass
class Feature:
    ids: list[int]
    first: int
    n: int
    start: int  # absolute position in `ids`; 0 = [CLS] = no answer
    end: int


def _answer_chars(item: QAItem) -> tuple[int, int] | None:
    """Where the first gold answer stands in the paragraph (SQuAD's files here carry no
    offsets): its first occurrence as whole words ("8" not inside "18"), else its first."""
    text = item.context
    for answer in item.answers:
        if not answer.strip():
            continue
        found = [m.start() for m in re.finditer(re.escape(answer), text)]
        for at in found:
            end = at + len(answer)
            if (at == 0 or not text[at - 1].isalnum()) and (end == len(text) or not text[end].isalnum()):
                return at, end
        if found:
            return found[0], found[0] + len(answer)
    return None


# A name (a run of capitalised words, "of", "the" or "de" allowed inside) or a number.
_MENTION = re.compile(r"\b(?:\d[\d,.]*\d|\d|[A-Z][\w'\u2019-]*(?:\s+(?:(?:of|the|de)\s+)?[A-Z][\w'\u2019-]*)*)")
# A word written in lower case.
_LOWER_WORD = re.compile(r"\b[a-z][\w'\u2019-]*")
# Capitalised words that open a question or a clause and name nothing.
_NOT_NAMES = frozenset({
    "what", "who", "whom", "whose", "when", "where", "which", "why", "how", "in", "on", "at",
    "the", "a", "an", "of", "for", "to", "by", "during", "after", "before", "if", "is", "was",
    "are", "were", "do", "does", "did", "has", "have", "had", "can", "could", "will", "would",
    "should", "according", "along", "besides", "other", "aside", "since", "from", "with", "as",
    "under", "over", "between", "about",
})


def mentions(text: str) -> list[str]:
    """The names and numbers in `text`: leading function words and a trailing "'s" stripped
    ("In Paris" -> "Paris"); a one-word name must be 3 letters or more and never written in lower
    case in `text` (so "Thus" or "All" opening a sentence is not a name)."""
    out = []
    lower = set(_LOWER_WORD.findall(text))
    for m in _MENTION.finditer(text):
        words = m.group().split()
        while words and words[0].lower() in _NOT_NAMES:
            words = words[1:]
        if not words:
            continue
        words[-1] = re.sub(r"['\u2019]s$", "", words[-1])
        name = " ".join(words)
        if _is_number(name) or len(words) > 1 or (len(name) >= 3 and name.lower() not in lower):
            out.append(name)
    return out


def _is_number(text: str) -> bool:
    return text[0].isdigit()


def swapped_question(item: QAItem, pool: Sequence[str], rng: random.Random) -> str | None:
    """An unanswerable variant of an answerable question: one name or number it shares with its
    paragraph is replaced by another of the same kind from the same article that the paragraph
    never mentions ("When did Chopin reach Paris?" -> "When did Liszt reach Paris?"). SQuAD
    v2.0's unanswerable questions are built much like this (entity swaps are a fifth of them);
    these add more of that kind. None when the question has nothing to swap."""
    context = item.context.lower()
    shared = [m for m in mentions(item.question) if re.search(rf"\b{re.escape(m)}\b", item.context)]
    rng.shuffle(shared)
    for mention in shared:
        options = [x for x in pool if _is_number(x) == _is_number(mention) and x.lower() not in context
                   and x.lower() not in item.question.lower()]
        if options:
            return item.question.replace(mention, rng.choice(options), 1)
    return None


_FILLERS = frozenset({"the", "a", "an", "of", "that", "which", "did", "does", "do", "is", "was", "were", "are"})


def reworded_question(item: QAItem, rng: random.Random, reword: Callable[[str, str], str] | None) -> str:
    """The question in other words: `reword(question, paragraph)` (WordNet synonyms for the words
    it shares with its paragraph, `qa.bench.paraphrase`), then, half the time, one filler word
    dropped ("the", "of", "did" ...: users write telegraphically). The question word stays."""
    question = reword(item.question, item.context) if reword is not None else item.question
    words = question.split(" ")
    droppable = [k for k, w in enumerate(words) if k and w.lower() in _FILLERS]
    if droppable and rng.random() < 0.5:
        del words[rng.choice(droppable)]
    return " ".join(words)


def other_paragraph(item: QAItem, paragraphs: Sequence[str], rng: random.Random) -> str | None:
    """Another paragraph of the question's article that holds none of its answers, or None."""
    lowered = [a.lower() for a in item.answers]
    options = [p for p in paragraphs if p != item.context and not any(a in p.lower() for a in lowered)]
    return rng.choice(options) if options else None


def wordnet_rewording() -> Callable[[str, str], str]:
    """`qa.bench.paraphrase` over Debian's WordNet, as a function of (question, paragraph).

    Raises:
        ReaderError: WordNet is not installed (it says how to install it).
    """
    try:
        wordnet = WordNet.load(DEBIAN_WORDNET)
    except (OSError, ValueError):
        raise ReaderError(missing_message(DEBIAN_WORDNET)) from None
    return lambda question, paragraph: paraphrase(question, paragraph, wordnet).text


class FeatureMaker:
    """Builds each epoch's windows; paragraphs are tokenized and split into sentences once."""

    def __init__(self, config: TrainConfig, reword: Callable[[str, str], str] | None = None) -> None:
        self.config = config
        self.reword = reword
        self._text: dict[str, tuple[list[int], list[tuple[int, int]], list[tuple[int, int]]]] = {}
        self._question: dict[str, list[int]] = {}
        self.swapped_counts: list[int] = []  # entity-swapped questions made by each features() call
        self.other_counts: list[int] = []    # questions paired with another paragraph, per call
        self.reworded_counts: list[int] = []  # questions asked in other words, per call

    def augmented(self, items: Sequence[QAItem], rng: random.Random) -> list[QAItem]:
        """`items`, `paraphrase_prob` of the answerable ones reworded, plus `other_paragraph_prob`
        of them paired with another paragraph of their article (no answer there)."""
        by_title: dict[str, list[str]] = {}
        for title, context in sorted({(item.title, item.context) for item in items}):
            by_title.setdefault(title, []).append(context)
        out: list[QAItem] = []
        others: list[QAItem] = []
        reworded = 0
        for item in items:
            if item.answerable and self.config.paraphrase_prob and rng.random() < self.config.paraphrase_prob:
                question = reworded_question(item, rng, self.reword)
                reworded += question != item.question
                item = QAItem(item.qid, item.title, question, item.context, item.answers)
            out.append(item)
            if item.answerable and self.config.other_paragraph_prob and rng.random() < self.config.other_paragraph_prob:
                elsewhere = other_paragraph(item, by_title[item.title], rng)
                if elsewhere is not None:
                    others.append(QAItem(f"{item.qid}-other", item.title, item.question, elsewhere, ()))
        self.reworded_counts.append(reworded)
        self.other_counts.append(len(others))
        return [*out, *others]

    def _paragraph(self, context: str) -> tuple[list[int], list[tuple[int, int]], list[tuple[int, int]]]:
        if context not in self._text:
            ids, offsets = text_tokens(context)
            self._text[context] = (ids, offsets, split_sentences(context) or [(0, len(context))])
        return self._text[context]

    def _feature(self, e: Encoded, span: tuple[int, int] | None) -> Feature:
        start = end = 0
        if span is not None:
            inside = [k for k, (a, b) in enumerate(e.offsets) if b > span[0] and a < span[1]]
            if inside and e.offsets[inside[0]][0] <= span[0] + 1 and e.offsets[inside[-1]][1] >= span[1] - 1:
                start, end = e.first + inside[0], e.first + inside[-1]
        return Feature(ids=e.ids, first=e.first, n=len(e.offsets), start=start, end=end)

    def _crop(self, q: list[int], context: str, lo: int, hi: int) -> Encoded:
        ids, offsets, _ = self._paragraph(context)
        keep = [k for k, (a, b) in enumerate(offsets) if a >= lo and b <= hi]
        cut = ([ids[k] for k in keep], [offsets[k] for k in keep])
        return windows(q, cut[0], cut[1], self.config.max_len, 64)[0]

    def swapped(self, items: Sequence[QAItem], rng: random.Random) -> list[QAItem]:
        """Entity-swapped unanswerable copies of `swap_prob` of the answerable `items`."""
        pools: dict[str, set[str]] = {}
        lower: dict[str, set[str]] = {}
        for title, context in {(item.title, item.context) for item in items}:  # each paragraph once
            pools.setdefault(title, set()).update(mentions(context))
            lower.setdefault(title, set()).update(_LOWER_WORD.findall(context))
        # A one-word name the article also writes in lower case is a word, not a name.
        ordered = {title: sorted(x for x in pool if " " in x or _is_number(x) or x.lower() not in lower[title])
                   for title, pool in pools.items()}
        out = []
        for item in items:
            if item.answerable and rng.random() < self.config.swap_prob:
                question = swapped_question(item, ordered[item.title], rng)
                if question is not None:
                    out.append(QAItem(f"{item.qid}-swap", item.title, question, item.context, ()))
        return out

    def features(self, items: Sequence[QAItem], rng: random.Random) -> list[Feature]:
        """One epoch's windows of `items` (some reworded), of their entity-swapped unanswerable
        copies and of their pairings with other paragraphs (`augmented`)."""
        out: list[Feature] = []
        swapped = self.swapped(items, rng) if self.config.swap_prob else []
        self.swapped_counts.append(len(swapped))
        items = [*self.augmented(items, rng), *swapped]
        for item in items:
            if item.question not in self._question:
                self._question[item.question] = question_ids(item.question)
            q = self._question[item.question]
            ids, offsets, sentences = self._paragraph(item.context)
            span = _answer_chars(item) if item.answerable else None
            if item.answerable and span is None:
                continue
            if rng.random() < self.config.crop_prob:
                # A run of 1-4 sentences, around the answer if there is one.
                size = rng.randint(1, 4)
                if span is not None:
                    holding = [k for k, (a, b) in enumerate(sentences) if b > span[0] and a < span[1]]
                    lo_k = min(holding[0], max(0, holding[-1] - size + 1)) if holding else 0
                    first_k = rng.randint(lo_k, holding[0]) if holding else 0
                    last_k = max(holding[-1] if holding else 0, first_k + size - 1)
                else:
                    first_k = rng.randrange(len(sentences))
                    last_k = first_k + size - 1
                last_k = min(last_k, len(sentences) - 1)
                e = self._crop(q, item.context, sentences[first_k][0], sentences[last_k][1])
                out.append(self._feature(e, span))
            else:
                for e in windows(q, ids, offsets, self.config.max_len, 64):
                    f = self._feature(e, span)
                    if f.start or span is None or rng.random() < self.config.negative_prob:
                        out.append(f)
            if span is not None and len(sentences) > 1 and rng.random() < self.config.negative_prob:
                # Sentences that do not hold the answer: the reader must say so.
                free = [k for k, (a, b) in enumerate(sentences) if b <= span[0] or a >= span[1]]
                if free:
                    k = rng.choice(free)
                    runs = [j for j in range(k, min(k + rng.randint(1, 3), len(sentences)))
                            if j in free]
                    e = self._crop(q, item.context, sentences[runs[0]][0], sentences[runs[-1]][1])
                    out.append(self._feature(e, None))
        return out


def batches(features: Sequence[Feature], size: int, rng: random.Random) -> list[list[Feature]]:
    """Batches of similar length (little padding), in random order."""
    order = list(features)
    rng.shuffle(order)
    out: list[list[Feature]] = []
    chunk = size * 50
    for at in range(0, len(order), chunk):
        part = sorted(order[at:at + chunk], key=lambda f: len(f.ids))
        out += [part[k:k + size] for k in range(0, len(part), size)]
    rng.shuffle(out)
    return out
