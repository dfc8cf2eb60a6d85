"""The hand-written QA set: well formed, verbatim evidence, and the mix of kinds it promises."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from qa.evaluation import KINDS, load_qa_set
from qa.load import load_corpus

ROOT = Path(__file__).resolve().parent.parent
QA_SET = ROOT / "eval" / "qa_pairs.jsonl"
SEEDS = ROOT / "seeds"


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [json.loads(line) for line in QA_SET.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in SEEDS.iterdir() if p.is_file()}


def test_the_set_loads_with_the_evaluator_s_own_checks():
    pairs = load_qa_set(QA_SET)
    assert len(pairs) >= 80


def test_ids_are_unique_and_keys_follow_the_schema(rows):
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    allowed = {"id", "question", "history", "answerable", "answers", "evidence", "kind"}
    for r in rows:
        assert set(r) <= allowed, r["id"]
        assert isinstance(r["answerable"], bool), r["id"]
        assert r["kind"] in KINDS, r["id"]


def test_size_and_mix_of_kinds(rows):
    kinds = Counter(r["kind"] for r in rows)
    assert len(rows) >= 80
    assert sum(not r["answerable"] for r in rows) >= 15
    assert set(kinds) == set(KINDS), f"missing kinds: {set(KINDS) - set(kinds)}"


def test_every_gold_answer_is_verbatim_inside_one_of_its_evidence_spans(rows, sources):
    for r in rows:
        if not r["answerable"]:
            continue
        assert r["answers"] and r["evidence"], r["id"]
        texts = []
        for span in r["evidence"]:
            source = sources[span["doc_id"]]
            assert 0 <= span["start"] < span["end"] <= len(source), r["id"]
            texts.append(source[span["start"]:span["end"]])
        for gold in r["answers"]:
            assert any(gold in text for text in texts), f"{r['id']}: {gold!r} not in its evidence"


def test_evidence_spans_are_whole_sentences_of_the_article_body(sources):
    # A span outside the body (front matter, boilerplate the loader drops) can never be retrieved.
    documents = {d.doc_id: d for d in load_corpus(SEEDS)[0]}
    for pair in load_qa_set(QA_SET):
        for span in pair.evidence:
            text = sources[span.doc_id][span.start:span.end]
            assert text == text.strip(), f"{pair.id}: span has outer whitespace"
            segments = documents[span.doc_id].segments
            assert any(s <= span.start and span.end <= e for s, e in segments), f"{pair.id}: span outside body"


def test_unanswerable_questions_carry_no_answer(rows):
    for r in rows:
        if not r["answerable"]:
            assert r["kind"] == "unanswerable", r["id"]
            assert not r["answers"] and not r["evidence"], r["id"]


def test_dialogues_and_multi_document_questions_are_what_they_say(rows):
    for r in rows:
        if r["kind"] == "follow_up":
            assert r.get("history"), f"{r['id']}: a follow-up needs the earlier turns"
        if r["kind"] == "multi_doc":
            assert len({s["doc_id"] for s in r["evidence"]}) >= 2, f"{r['id']}: needs two documents"
    assert any(len(r.get("history", [])) >= 2 for r in rows), "at least one dialogue of three turns"
    assert any(not r["answerable"] and r.get("history") for r in rows), "an unanswerable follow-up"


@pytest.mark.parametrize("name", ["own_words.jsonl", "seeds_own_words_dev.jsonl"])
def test_the_own_words_sets_are_well_formed(sources, name):
    # eval/own_words.jsonl (a TEST set: nothing is fitted on it) and eval/seeds_own_words_dev.jsonl
    # (its development counterpart): questions in users' own words, written from the articles
    # alone. Their evidence is verbatim, inside the article body, and holds a gold answer.
    path = ROOT / "eval" / name
    pairs = load_qa_set(path)
    raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(pairs) >= 40 and all(r["style"] == "own_words" and r["note"] for r in raw)
    assert sum(not p.answerable for p in pairs) >= 12
    documents = {d.doc_id: d for d in load_corpus(SEEDS)[0]}
    for p in pairs:
        assert bool(p.answers) == p.answerable == bool(p.evidence), p.id
        spans = [sources[e.doc_id][e.start:e.end].lower() for e in p.evidence]
        assert all(spans) and (not p.answerable or any(a.lower() in s for a in p.answers for s in spans)), p.id
        for e in p.evidence:
            assert any(s <= e.start and e.end <= end for s, end in documents[e.doc_id].segments), p.id


def test_the_development_questions_are_not_the_test_questions():
    # The threshold is chosen with eval/seeds_own_words_dev.jsonl in the rule, so none of its
    # questions may be a test question, however it is spelled.
    def words(q: str) -> frozenset[str]:
        return frozenset(w for w in "".join(c.lower() if c.isalnum() else " " for c in q).split() if len(w) > 3)

    test = [words(p.question) for p in load_qa_set(ROOT / "eval" / "own_words.jsonl")]
    for p in load_qa_set(ROOT / "eval" / "seeds_own_words_dev.jsonl"):
        mine = words(p.question)
        closest = max(len(mine & t) / len(mine | t) for t in test)
        assert closest < 0.5, f"{p.id} is nearly a test question (word overlap {closest:.2f})"
