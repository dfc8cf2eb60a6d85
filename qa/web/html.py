"""HTML for the web chat: answers with linked `[n]` markers and a sources panel of quotes in context.

Everything that comes from a document or a user (titles, quotes, passages, file names, questions)
goes through `html.escape` here, once, at the point where it meets markup: a document holding
`<script>` or `<img onerror=...>` is shown as those characters, never run. Gradio's own sanitizer
stays on underneath as a second fence, not the first.

A citation `[n]` of turn `k` links to `#qa-src-k-n`; related reading of an abstention links to
`#qa-rel-k-i`. The script in `CITE_JS` opens and scrolls to the card; without it, the links still
work as plain in-page anchors.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from qa.formats import serving
from qa.index import Index
from qa.index.text import SourceText
from qa.types import Answer, Citation, Passage

# Related reading (abstentions): passages longer than this are cut at a word boundary.
RELATED_CHARS = 900


@dataclass(frozen=True)
class Turn:
    """One question of a conversation and the answer it got."""

    question: str
    reply: Answer


def escape(text: object) -> str:
    """`text` as HTML text: `<`, `>`, `&` and both quotes escaped."""
    return html.escape(str(text), quote=True)


def _display(text: str) -> str:
    """Escaped source text with runs of spaces and blank lines folded (shown with pre-line)."""
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r" ?\n[ \n]*\n ?", "\n\n", text)
    return escape(text)


def source_id(turn: int, n: int) -> str:
    """The element id of citation `n`'s card in turn `turn` (both 1-based)."""
    return f"qa-src-{turn}-{n}"


def related_id(turn: int, i: int) -> str:
    """The element id of related passage `i` of an abstention in turn `turn` (both 1-based)."""
    return f"qa-rel-{turn}-{i}"


# ---- chat messages ---------------------------------------------------------------------------

def question_html(question: str) -> str:
    """A user's question as a chat message."""
    return f'<div class="qa-q">{escape(question)}</div>'


def answer_html(turn: int, reply: Answer) -> str:
    """An answer (or abstention) as a chat message, each `[n]` linked to its source card and the
    short answer of each quote, where the answer marks one, in bold."""
    if reply.abstained:
        return _abstention_html(turn, reply)
    if reply.is_composed():
        body = escape(reply.lead) + " ".join(_quote_html(turn, c) for c in reply.citations)
    else:   # a custom answerer's own text: shown as written; its sources are on the cards
        body = escape(reply.text)
    count = len(reply.citations)
    tentative = reply.status == "tentative"
    label = f"{'Tentative answer' if tentative else 'Answer'} · {count} source{'s' if count != 1 else ''} quoted"
    css = "qa-answered qa-tentative" if tentative else "qa-answered"
    return (
        f'<div class="qa-reply {css}"><div class="qa-label">{label}</div>'
        f'<div class="qa-text">{body}</div>'
        f'<div class="qa-chips">{_source_chips(turn, reply.citations)}</div></div>'
    )


def _quote_html(turn: int, c: Citation) -> str:
    """One quote of an answer, its short answer (where the answer marks one) in bold, and its
    `[n]` link to the source card; from the citation's fields alone."""
    quote = escape(c.quote)
    if c.answer_start is not None and c.answer_end is not None and c.start <= c.answer_start < c.answer_end <= c.end:
        a, b = c.answer_start - c.start, c.answer_end - c.start
        quote = (f'{escape(c.quote[:a])}<strong class="qa-span">{escape(c.quote[a:b])}</strong>'
                 f'{escape(c.quote[b:])}')
    return (f'{quote} <a class="qa-cite" href="#{source_id(turn, c.n)}" '
            f'title="Source {c.n}: {escape(c.title)}">[{c.n}]</a>')


def _source_chips(turn: int, citations: Sequence[Citation]) -> str:
    """One chip per cited document ("[1] [2] Title"), linking to its first card."""
    groups: dict[str, list[Citation]] = {}
    for c in citations:
        groups.setdefault(c.doc_id, []).append(c)
    return "".join(
        f'<a class="qa-cite qa-chip" href="#{source_id(turn, group[0].n)}">'
        f'<b>{" ".join(f"[{c.n}]" for c in group)}</b> {escape(_shorten(group[0].title, 60))}'
        f'{_pages(group)}</a>'
        for group in groups.values()
    )


def _pages(citations: Sequence[Citation]) -> str:
    """", p. 2" / ", pp. 2, 5" after a chip's title, for documents with pages."""
    pages = sorted({c.page for c in citations if c.page is not None})
    if not pages:
        return ""
    return f', {"p." if len(pages) == 1 else "pp."} {", ".join(map(str, pages))}'


def _abstention_html(turn: int, reply: Answer) -> str:
    # The related reading links to its cards in the sources panel.
    statement = reply.text.strip() or "The documents don't say."
    related = reply.related
    chips = "".join(
        f'<a class="qa-cite qa-chip" href="#{related_id(turn, i)}">{escape(_shorten(p.title, 60))}</a>'
        for i, p in enumerate(related, 1)
    )
    reading = (f'<div class="qa-related-head">Related reading (does not answer the question)</div>'
               f'<div class="qa-chips">{chips}</div>') if related else ""
    return (
        '<div class="qa-reply qa-abstained"><div class="qa-label">Not in the documents</div>'
        f'<div class="qa-text">{escape(statement)}</div>{reading}</div>'
    )


def error_html(message: str) -> str:
    """A problem with the question (empty, unusable) as a chat message."""
    return (f'<div class="qa-reply qa-error"><div class="qa-label">Could not answer</div>'
            f'<div class="qa-text">{escape(message)}</div></div>')


# ---- the sources panel -----------------------------------------------------------------------

def sources_html(turns: Sequence[Turn], index: Index, source_text: SourceText, collection: str | None = None) -> str:
    """The sources panel: each turn's citations (newest turn first and open) or related reading;
    `collection` (when the server has several) goes into the links to original files."""
    if not turns:
        return corpus_html(index)
    groups = []
    for k in range(len(turns), 0, -1):
        turn = turns[k - 1]
        reply = turn.reply
        if reply.abstained:
            related = reply.related
            cards = "".join(_related_card(k, i, p, collection) for i, p in enumerate(related, 1))
            kind = '<span class="qa-tag qa-tag-abstained">not in the documents</span>'
            intro = ('<p class="qa-note">The documents do not answer this question. These are the '
                     'closest passages, for reading, not as an answer.</p>')
            body = intro + (cards or '<p class="qa-note">Nothing related was found.</p>')
        else:
            cards = "".join(_citation_card(k, c, reply, index, source_text, collection) for c in reply.citations)
            count = len(reply.citations)
            kind = f'<span class="qa-tag">{count} source{"s" if count != 1 else ""}</span>'
            body = cards
        is_open = " open" if k == len(turns) else ""
        groups.append(
            f'<details class="qa-turn" id="qa-turn-{k}"{is_open}><summary>'
            f'<span class="qa-turn-q">{escape(turn.question)}</span>{kind}</summary>{body}</details>'
        )
    return f'<div class="qa-panel"><div class="qa-panel-title">Sources</div>{"".join(groups)}</div>'


def _citation_card(turn: int, c: Citation, reply: Answer, index: Index, source_text: SourceText,
                   collection: str | None = None) -> str:
    info = index.documents.get(c.doc_id)
    date = c.date or (info.date if info else None)
    found = source_text.window(c.doc_id, c.start, c.end) or _passage_window(reply.passages, c)
    if found is None:
        lo, text, cut_before, cut_after = c.start, c.quote, False, False
    else:
        lo, text, cut_before, cut_after = found
    body = marked_passage(text, lo, c.start, c.end, c.answer_start, c.answer_end)
    return (
        f'<article class="qa-source" id="{source_id(turn, c.n)}">'
        f'<div class="qa-source-head"><span class="qa-n">{c.n}</span>'
        f'<span class="qa-title">{escape(c.title or c.doc_id)}</span></div>'
        f'{_meta(date, c.doc_id, c.start, c.end, "quote", c.page, info is not None, c.ocr, collection)}'
        f'<div class="qa-passage">{"… " if cut_before else ""}{body}{" …" if cut_after else ""}</div>'
        '</article>'
    )


def _passage_window(passages: Sequence[Passage], c: Citation) -> tuple[int, str, bool, bool] | None:
    for p in passages:
        if p.doc_id == c.doc_id and p.start <= c.start and c.end <= p.end:
            return p.start, p.text, True, True
    return None


def _related_card(turn: int, i: int, p: Passage, collection: str | None = None) -> str:
    text = p.text
    cut = len(text) > RELATED_CHARS
    if cut:
        text = text[:RELATED_CHARS].rsplit(None, 1)[0]
    return (
        f'<article class="qa-source qa-related" id="{related_id(turn, i)}">'
        f'<div class="qa-source-head"><span class="qa-n qa-n-related">{i}</span>'
        f'<span class="qa-title">{escape(p.title or p.doc_id)}</span></div>'
        f'{_meta(p.date, p.doc_id, p.start, p.end, "passage", p.page, opens=True, ocr=p.ocr, collection=collection)}'
        f'<div class="qa-passage">{_display(text)}{" …" if cut else ""}</div></article>'
    )


def _meta(date: str | None, doc_id: str, start: int, end: int, what: str, page: int | None = None,
          opens: bool = False, ocr: bool = False, collection: str | None = None) -> str:
    on_page = f'<span class="qa-page" title="page {page} of the document">p. {page}</span>' if page else ""
    # Text that OCR read from a scan may hold misread characters: the reader checks the page image.
    read_by = ('<span class="qa-ocr" title="read by OCR from a scanned page: check the quote against the page '
               'image (open the original)">OCR</span>' if ocr else "")
    return (
        '<div class="qa-meta">'
        f'<span>{escape(date) if date else "undated"}</span>'
        f'<span class="qa-file">{escape(doc_id)}</span>{on_page}{read_by}'
        f'<span title="{what}: characters {start} to {end} of the file">chars {start:,}–{end:,}</span>'
        f'{original_link(doc_id, page, collection) if opens else ""}</div>'
    )


def original_link(doc_id: str, page: int | None = None, collection: str | None = None) -> str:
    """A link that opens the document's original file (served by doc_id, see `qa.web`), at
    `page` where the browser's viewer can jump there (PDF); `collection` names the collection
    that holds it, when the server has several."""
    href = file_href(doc_id, page, collection)
    label = "download" if not serving(doc_id).shown else (f"open p. {page}" if page else "open file")
    return (f'<a class="qa-open" href="{escape(href)}" target="_blank" rel="noopener noreferrer" '
            f'title="the original file{escape(f", at page {page}" if page else "")}">{label}</a>')


def file_href(doc_id: str, page: int | None = None, collection: str | None = None) -> str:
    """The relative URL of a document's original file (`qa/file?doc=...`)."""
    where = f"&collection={quote(collection, safe='')}" if collection else ""
    return f"qa/file?doc={quote(doc_id, safe='')}{where}" + (f"#page={page}" if page else "")


def marked_passage(text: str, start: int, quote_start: int, quote_end: int,
                   answer_start: int | None = None, answer_end: int | None = None) -> str:
    """`text` (source text beginning at offset `start`) as HTML, the quote in `<mark>` and the
    short answer inside it, when given and inside the quote, in `<strong>`."""

    def at(offset: int) -> int:
        return min(max(offset - start, 0), len(text))

    qs, qe = at(quote_start), at(quote_end)
    inner = [_display(text[qs:qe])]
    if (answer_start is not None and answer_end is not None
            and quote_start <= answer_start < answer_end <= quote_end):
        a, b = at(answer_start), at(answer_end)
        inner = [_display(text[qs:a]), '<strong class="qa-span">', _display(text[a:b]), "</strong>",
                 _display(text[b:qe])]
    return f'{_display(text[:qs])}<mark class="qa-quote">{"".join(inner)}</mark>{_display(text[qe:])}'


# ---- first screen ----------------------------------------------------------------------------

def corpus_summary(index: Index) -> dict[str, Any]:
    """What the first screen says about the loaded corpus: name, counts, when it was indexed."""
    manifest = index.manifest
    return {
        "corpus": Path(manifest.corpus or "corpus").name,
        "documents": manifest.counts.get("documents", len(index.documents)),
        "chunks": manifest.counts.get("chunks", len(index.chunks)),
        "created": _when(manifest.created),
        "model": manifest.model,
    }


def header_html(index: Index) -> str:
    """The top bar: what this is, and which corpus is loaded."""
    s = corpus_summary(index)
    return (
        '<div class="qa-header"><div class="qa-brand"><span class="qa-logo">qa</span>'
        '<span class="qa-tagline">Answers quoted from your documents, every claim cited</span></div>'
        f'<div class="qa-corpus">Corpus <b>{escape(s["corpus"])}</b>'
        f'<span>{s["documents"]:,} documents</span><span>{s["chunks"]:,} passages</span>'
        f'<span>indexed {escape(s["created"])}</span></div></div>'
    )


def corpus_html(index: Index, limit: int = 25) -> str:
    """The sources panel before any question: how it works, and the documents in the corpus."""
    names = sorted(index.documents)
    docs = [index.documents[name] for name in names[:limit]]
    rows = "".join(
        f'<li><span class="qa-doc-title">{escape(d.title or d.doc_id)}</span>'
        f'<span class="qa-doc-meta">{escape(d.date) if d.date else "undated"} · '
        f'<span class="qa-file">{escape(d.doc_id)}</span></span></li>'
        for d in docs[:limit]
    )
    more = f'<li class="qa-more">and {len(names) - limit:,} more</li>' if len(names) > limit else ""
    return (
        '<div class="qa-panel"><div class="qa-panel-title">Sources</div>'
        '<p class="qa-note">Each answer quotes the documents word for word. Its sources appear here: '
        'the quoted words <mark class="qa-quote">highlighted</mark> inside their passage, with the '
        'file and character range. Click a marker such as <b>[1]</b> to jump to its source.</p>'
        f'<div class="qa-panel-sub">In this corpus</div><ul class="qa-docs">{rows}{more}</ul></div>'
    )


def _when(created: object) -> str:
    try:
        stamp = datetime.fromisoformat(str(created))
    except ValueError:
        return str(created or "unknown")
    zone = stamp.tzname() or ""
    return f"{stamp.day} {stamp:%b %Y, %H:%M}" + (f" {zone}" if zone else "")


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"

