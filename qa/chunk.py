"""Token-aware chunks with exact character offsets.

Each body segment of a document is split by LangChain's recursive splitter, measuring length in
cl100k_base tokens and preferring paragraph, then line, then sentence, then clause boundaries.
The splitter reads the segment's layout view (`qa.sentences.layout_view`: a wrapped line's break
is a space there, same length), so a PDF or hard-wrapped paragraph is split at sentences, not at
its lines. Each piece is located back in the view, whose offsets are the document's, so that
`document.text[chunk.start:chunk.end] == chunk.text` always holds.
"""

from __future__ import annotations

from functools import lru_cache

from langchain_text_splitters import RecursiveCharacterTextSplitter

from qa.errors import QAError
from qa.sentences import layout_view, wrap_width
from qa.tokens import count_tokens
from qa.types import Chunk, Document

# Paragraph, line, sentence, clause, word, character: the first that fits wins.
SEPARATORS = ["\n\n", "\n", r"(?<=[.!?…])[\"'”’)]*\s+", r"(?<=[;:])\s+", r"(?<=,)\s+", r"\s+", ""]


@lru_cache(maxsize=8)
def _splitter(max_tokens: int, overlap_tokens: int) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        chunk_size=max_tokens,
        chunk_overlap=overlap_tokens,
        length_function=count_tokens,
        separators=SEPARATORS,
        is_separator_regex=True,
        keep_separator="end",
        strip_whitespace=True,
    )


def chunk_document(document: Document, max_tokens: int = 200, overlap_tokens: int = 40) -> list[Chunk]:
    """Split a document's body segments into overlapping chunks of at most `max_tokens` tokens.

    Chunks never cross a segment boundary (so boilerplate between segments is never inside a
    chunk) and are returned in document order.
    """
    splitter = _splitter(max_tokens, overlap_tokens)
    chunks: list[Chunk] = []
    width = wrap_width(document.text)
    for seg_start, seg_end in document.segments:
        view = layout_view(document.text, seg_start, seg_end, width)
        for start, end in _located(splitter.split_text(view), view, seg_start, document.doc_id):
            text = document.text[start:end]
            if count_tokens(text) <= max_tokens:
                chunks.append(Chunk(document.doc_id, start, end, text))
                continue
            # The view's spaces and the text's line breaks can count differently in cl100k: a
            # piece that is over the limit as written is split again as written.
            for s, e in _located(splitter.split_text(text), text, start, document.doc_id):
                chunks.append(Chunk(document.doc_id, s, e, document.text[s:e]))
    return chunks


def _located(pieces: list[str], text: str, offset: int, doc_id: str) -> list[tuple[int, int]]:
    """`(start, end)` of each of the splitter's `pieces` of `text`, plus `offset`, in order."""
    out: list[tuple[int, int]] = []
    search_from = 0
    for piece in pieces:
        at = text.find(piece, search_from)
        if at < 0:
            raise QAError(
                f"Internal error: a chunk of {doc_id} could not be located in its text. "
                "Please report this with the file attached."
            )
        out.append((offset + at, offset + at + len(piece)))
        # The next chunk starts after this one's start (overlap can reach back into it).
        search_from = at + 1
    return out
