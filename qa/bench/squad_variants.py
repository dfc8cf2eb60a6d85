"""SQuAD's questions as asked and paraphrased: each question's lexical overlap with its answer
sentence, and a variant in other words (WordNet synonyms), both reported by `qa bench squad`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.bench.overlap import BUCKETS, STOP_LIST, AnswerSentence, answer_sentence, bucket_of, overlap
from qa.bench.paraphrase import paragraph_vocabulary, paraphrase
from qa.bench.report import Report
from qa.bench.wordnet import WordNet
from qa.errors import BenchmarkDataError
from qa.evaluation.metrics import mean
from qa.sentences import split_sentences

PARAPHRASE_EXAMPLES = 5


@dataclass(frozen=True)
class Variant:
    """One wording of the scored questions: "original" or "paraphrased", the SQuAD rows (for a
    paraphrase, "question" replaced) and each question's overlap with its answer sentence."""

    name: str
    questions: list[dict[str, Any]]
    overlaps: list[float]


def _answer_sentences(questions: Sequence[dict[str, Any]], contexts: dict[str, str]) -> list[AnswerSentence]:
    """Each question's answer sentence; each paragraph is split into sentences once."""
    spans: dict[str, list[tuple[int, int]]] = {}
    found = []
    for q in questions:
        context = contexts[q["pid"]]
        if q["pid"] not in spans:
            spans[q["pid"]] = split_sentences(context) or [(0, len(context))]
        found.append(answer_sentence(q["question"], context, q["answers"], spans[q["pid"]]))
    return found


def _bucket_counts(shares: Sequence[float]) -> dict[str, int]:
    return {label: sum(bucket_of(s) == label for s in shares) for label in BUCKETS}


def question_variants(out: Report, questions: list[dict[str, Any]], questions_v2: list[dict[str, Any]],
              paragraphs: Sequence[dict[str, Any]], paragraphs_v2: Sequence[dict[str, Any]],
              wordnet: Path) -> tuple[list[Variant], list[Variant]]:
    """The questions' overlap with their answer sentences and, where WordNet is installed, the
    paraphrased variant of both sets; reports both."""
    sets = _overlap_section(out, questions, questions_v2, paragraphs, paragraphs_v2)
    variants = [Variant("original", sets[0][1], sets[0][4])]
    variants_v2 = [Variant("original", sets[1][1], sets[1][4])]
    try:
        wn = WordNet.load(wordnet)
    except BenchmarkDataError as exc:
        out.text(f"\nParaphrased variant skipped: {exc}")
        out.data["paraphrased"] = {"skipped": str(exc)}
        return variants, variants_v2

    _paraphrased_section(out, sets, (variants, variants_v2), wn, wordnet)
    return variants, variants_v2


# One SQuAD version's questions: (version, questions, paragraph by pid, answer sentences, overlaps).
_Set = tuple[str, list[dict[str, Any]], dict[str, str], list[Any], list[float]]


def _overlap_section(out: Report, questions: list[dict[str, Any]], questions_v2: list[dict[str, Any]],
                     paragraphs: Sequence[dict[str, Any]], paragraphs_v2: Sequence[dict[str, Any]]) -> list[_Set]:
    """Report the questions' overlap with their answer sentences; returns each version's set."""
    out.section("Lexical overlap: the question's content words found in its answer sentence")
    sets = []
    for version, items, paras in (("1.1", questions, paragraphs), ("2.0", questions_v2, paragraphs_v2)):
        contexts = {p["pid"]: p["context"] for p in paras}
        sentences = _answer_sentences(items, contexts)
        sets.append((version, items, contexts, sentences, [overlap(q["question"], s.text)
                                                            for q, s in zip(items, sentences, strict=True)]))
    out.text(f"Content words: lower-cased words, stop words left out ({STOP_LIST}), each counted once, no "
             "stemming. The answer sentence: the sentence (qa.sentences.split_sentences on the paragraph) holding "
             "the first occurrence of the first gold answer (the converted SQuAD files keep no answer_start); for a "
             "question without a gold answer (v2.0 unanswerable), the paragraph's sentence sharing most of its "
             "content words.")
    rows: list[list[Any]] = []
    data: dict[str, Any] = {"stop_list": STOP_LIST, "buckets": list(BUCKETS)}
    for version, items, contexts, sentences, shares in sets:
        groups = [("all", [True] * len(items))]
        if version == "2.0":
            groups = [("answerable", [bool(q["answers"]) for q in items]),
                      ("unanswerable", [not q["answers"] for q in items])]
        for group, keep in groups:
            picked = [s for s, k in zip(shares, keep, strict=True) if k]
            how = [s.how for s, k in zip(sentences, keep, strict=True) if k]
            repeated = sum(bool(q["answers"]) and contexts[q["pid"]].count(q["answers"][0]) > 1
                           for q, k in zip(items, keep, strict=True) if k)
            entry = {"questions": len(picked), "mean_overlap": mean(picked), "buckets": _bucket_counts(picked),
                     "by_best_overlap_sentence": how.count("best overlap"), "first_answer_repeated": repeated}
            data[f"v{version} {group}"] = entry
            rows.append([f"v{version}, {group}", len(picked), entry["mean_overlap"],
                         *entry["buckets"].values(), entry["by_best_overlap_sentence"], repeated])
    out.table(["questions", "n", "mean overlap", *(f"overlap {b}" for b in BUCKETS),
               "by best-overlap sentence", "first answer occurs twice or more"], rows)
    out.text("By best-overlap sentence: no gold answer to locate (unanswerable), or the first gold answer not "
             "found in the paragraph. Where the first answer occurs twice or more, its first occurrence is used.")
    out.data["overlap"] = data
    return sets


def _paraphrased_section(out: Report, sets: list[_Set], targets: tuple[list[Variant], list[Variant]],
                         wn: Any, wordnet: Path) -> None:
    """Add each set's paraphrased variant to its target list and report them."""
    out.section("Paraphrased variant: words shared with the paragraph replaced by WordNet synonyms it lacks")
    vocabularies: dict[str, frozenset[str]] = {}
    rows = []
    out.data["paraphrased"] = {"wordnet": str(wordnet)}
    examples: list[tuple[str, str, str]] = []
    for (version, items, contexts, sentences, shares), target in zip(sets, targets, strict=True):
        made = []
        for q in items:
            key = f"{version}:{q['pid']}"
            if key not in vocabularies:
                vocabularies[key] = paragraph_vocabulary(contexts[q["pid"]], wn)
            made.append(paraphrase(q["question"], contexts[q["pid"]], wn, vocabularies[key]))
        after = [overlap(p.text, s.text) for p, s in zip(made, sentences, strict=True)]
        target.append(Variant("paraphrased", [{**q, "question": p.text} for q, p in zip(items, made, strict=True)],
                              after))
        changed = [i for i, p in enumerate(made) if p.changed]
        entry: dict[str, Any] = {"questions": len(items), "changed": len(changed),
                                 "words_replaced": sum(len(p.replacements) for p in made),
                                 "mean_overlap_before": mean(shares), "mean_overlap_after": mean(after),
                                 "buckets_before": _bucket_counts(shares), "buckets_after": _bucket_counts(after)}
        out.data["paraphrased"][f"v{version}"] = entry
        rows.append([f"v{version}", len(items), len(changed), entry["words_replaced"],
                     f"{entry['mean_overlap_before']:.3f} -> {entry['mean_overlap_after']:.3f}",
                     *(f"{entry['buckets_before'][b]} -> {entry['buckets_after'][b]}" for b in BUCKETS)])
        if version == "1.1":
            # Examples spread over the set rather than its first questions.
            picks = [changed[i * len(changed) // PARAPHRASE_EXAMPLES] for i in range(min(PARAPHRASE_EXAMPLES,
                                                                                        len(changed)))]
            examples = [(items[i]["id"], items[i]["question"], made[i].text) for i in picks]
    out.table(["questions", "n", "changed", "words replaced", "mean overlap", *(f"overlap {b}" for b in BUCKETS)],
              rows)
    out.text(f"WordNet 3.0 from {wordnet}. Kept: the first word, capitalised words, numbers, stop words and question "
             "words; a shared word takes the most frequent lemma, over its first three senses, that the paragraph "
             "lacks (qa/bench/paraphrase.py). The overlap after is the paraphrase's with the same answer sentence. "
             "Examples (v1.1):")
    for qid, before, after_text in examples:
        out.text(f"- {qid}: {before.strip()}  ->  {after_text.strip()}")
    out.data["paraphrased"]["examples"] = [{"id": i, "question": b, "paraphrase": a} for i, b, a in examples]
