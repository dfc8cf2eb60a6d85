"""Chunks: token-bounded, split at natural boundaries, with offsets that slice the source exactly."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.chunk import chunk_document
from qa.load import load_corpus
from qa.tokens import count_tokens
from qa.types import Document

from .conftest import SEEDS


def test_every_seed_chunk_slices_its_source_exactly() -> None:
    docs, _ = load_corpus(SEEDS)
    total = 0
    for doc in docs:
        source = Path(SEEDS, doc.doc_id).read_text(encoding="utf-8")
        for chunk in chunk_document(doc, 200, 40):
            assert source[chunk.start:chunk.end] == chunk.text
            assert count_tokens(chunk.text) <= 200
            assert chunk.text == chunk.text.strip()
            assert any(s <= chunk.start and chunk.end <= e for s, e in doc.segments)
            total += 1
    assert total >= 20


def test_chunks_break_at_sentences_and_overlap_when_a_paragraph_is_split() -> None:
    sentences = [f"Sentence number {i} talks about the data centre in Virginia and its backup." for i in range(40)]
    text = " ".join(sentences)
    doc = Document("x.txt", "x", None, text, ((0, len(text)),))
    chunks = chunk_document(doc, 60, 20)
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.text.endswith(".")  # a sentence boundary, not mid-word
    assert all(b.start < a.end for a, b in zip(chunks, chunks[1:], strict=False))  # overlap


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300),
                min_size=1, max_size=8))
def test_offsets_hold_for_arbitrary_text(paragraphs: list[str]) -> None:
    text = "\n\n".join(paragraphs)
    start = len(text) - len(text.lstrip())
    end = len(text.rstrip())
    if end <= start:
        return
    doc = Document("p.txt", "p", None, text, ((start, end),))
    for chunk in chunk_document(doc, 50, 10):
        assert text[chunk.start:chunk.end] == chunk.text
        assert count_tokens(chunk.text) <= 50
