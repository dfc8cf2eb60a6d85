"""PDF and DOCX: real files (Chromium's print-to-PDF, python-docx), pages on citations and passages,
`qa.source_text` offsets for every format, hostile files, and document filters."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import zipfile
from dataclasses import replace
from pathlib import Path

import docx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qa
from qa.config import Settings
from qa.errors import QueryError
from qa.index import build_index, load_index
from qa.index.rows import split_documents
from qa.load import load_corpus, load_document

from .conftest import SEEDS

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(),
                                    reason="making a real PDF needs Chromium at /usr/bin/chromium")

REPORT = """<!doctype html><html><head><meta charset="utf-8"><title>Harbour Survey 2024</title>
<style>.page {{ page-break-after: always; }}</style></head><body>
<div class="page"><h1>Harbour Survey 2024</h1><p>The survey of the northern harbour was carried out by the
Coastal Office in March. It counted the boats along the east quay and the state of the piers.</p></div>
<div class="page"><h2>Findings</h2><p>The harbour master reported that 412 fishing boats were moored in the
northern harbour during the survey. The text &lt;script&gt;alert(1)&lt;/script&gt; was printed on the
notice board.</p></div>
{middle}
<div><h2>Repairs</h2><p>Repairs to the west pier will cost an estimated 3.2 million euros.</p></div>
</body></html>"""
# A page with a drawing and no text: what a scanned page looks like to a text extractor.
DRAWING = ('<div class="page"><svg width="400" height="300"><rect width="400" height="300" '
           'fill="#369"/></svg></div>')


def quiet(_line: str) -> None:
    pass


def print_pdf(html: str, target: Path, furniture: bool = False) -> Path:
    """A real PDF, printed by Chromium (a tool no one here wrote); with `furniture`, Chromium's
    running header (date, title) and footer (file address, page "n/m") on every page."""
    page = target.with_suffix(".html")
    page.write_text(html, encoding="utf-8")
    subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", *([] if furniture else ["--no-pdf-header-footer"]),
                    f"--print-to-pdf={target}", page.as_uri()], check=True, capture_output=True, timeout=120)
    page.unlink()
    return target


def write_docx(target: Path, pages: list[list[str]], title: str = "Orchard Ledger",
               created: dt.datetime | None = dt.datetime(2023, 5, 4)) -> Path:
    document = docx.Document()
    document.core_properties.title = title
    if created is not None:
        document.core_properties.created = created
    for i, paragraphs in enumerate(pages):
        if i:
            document.add_page_break()
        for text in paragraphs:
            document.add_paragraph(text)
    document.save(str(target))
    return target


def zip_bomb(target: Path) -> Path:
    """A .docx of 150 KB that unpacks to 150 MB."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as bomb:
        bomb.writestr("word/document.xml", b"\0" * (150 * 1024 * 1024))
    return target


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory, embedder) -> tuple[Path, Path, list[str]]:
    """A corpus of a printed 4-page PDF (page 3 a drawing), a 2-page DOCX and one seed article."""
    if not CHROMIUM.exists():
        pytest.skip("making a real PDF needs Chromium at /usr/bin/chromium")
    root = tmp_path_factory.mktemp("formats")
    corpus = root / "corpus"
    corpus.mkdir()
    print_pdf(REPORT.format(middle=DRAWING), corpus / "harbour.pdf")
    write_docx(corpus / "orchard.docx", [
        ["Orchard Ledger", "The orchard ledger lists the harvests of the valley farms."],
        ["Harvest", "In 2022 the cooperative harvested 87 tonnes of apples from the valley orchards."]])
    shutil.copy(SEEDS / "000_0cda244c9ed3ffe8.txt", corpus)
    lines: list[str] = []
    build_index(corpus, root / "index", settings=Settings(), embedder=embedder, log=lines.append)
    return corpus, root / "index", lines


@needs_chromium
def test_a_printed_pdf_answers_with_its_page(mixed) -> None:
    _, index, lines = mixed
    # The drawing page: OCR finds nothing on it, or there is no OCR here; either way, one line.
    assert any(line.startswith("harbour.pdf: page 3 has no text layer") and line.endswith(
        ("OCR found no text on it: skipped", "tesseract-ocr-eng)")) for line in lines), lines
    reply = qa.answer("How many fishing boats were moored in the northern harbour?", index=index)
    assert reply.status == "answered" and "412" in reply.text
    cite = reply.citations[0]
    assert cite.doc_id == "harbour.pdf" and cite.page == 2
    assert qa.source_text(cite.doc_id, index=index)[cite.start:cite.end] == cite.quote
    info = load_index(index).documents["harbour.pdf"]
    assert (info.kind, info.pages, info.title) == ("pdf", 4, "Harbour Survey 2024")
    # The last page comes after the text-less page 3.
    repairs = qa.retrieve("How much will the west pier repairs cost?", k=1, index=index)[0]
    assert repairs.doc_id == "harbour.pdf" and repairs.page in (1, 4)
    text = qa.source_text("harbour.pdf", index=index)
    assert text.index("Repairs to the west pier") >= info.page_starts[3]


@needs_chromium
def test_a_docx_answers_with_its_page_title_and_date(mixed) -> None:
    _, index, _ = mixed
    reply = qa.answer("How many tonnes of apples did the cooperative harvest in 2022?", index=index)
    cite = reply.citations[0]
    assert (cite.doc_id, cite.page, cite.title, cite.date) == ("orchard.docx", 2, "Orchard Ledger", "2023-05-04")
    assert qa.source_text("orchard.docx", index=index)[cite.start:cite.end] == cite.quote


@needs_chromium
def test_script_in_a_pdf_is_text(mixed) -> None:
    _, index, _ = mixed
    passages = qa.retrieve("notice board alert", k=3, index=index, docs="*.pdf")
    assert any("<script>alert(1)</script>" in p.text for p in passages)
    from qa.web.html import marked_passage

    html = marked_passage(passages[0].text, passages[0].start, passages[0].start, passages[0].start + 5)
    assert "<script>" not in html and "&lt;script&gt;" in html


@needs_chromium
def test_every_offset_of_every_format_is_verbatim(mixed) -> None:
    _, index, _ = mixed
    loaded = load_index(index)
    texts = {doc_id: qa.source_text(doc_id, index=index) for doc_id in loaded.documents}
    assert texts["000_0cda244c9ed3ffe8.txt"] == (SEEDS / "000_0cda244c9ed3ffe8.txt").read_text(encoding="utf-8")
    for c in loaded.chunks:
        assert texts[c.doc_id][c.start:c.end] == c.text
    for s in loaded.sentences:
        assert texts[s.doc_id][s.start:s.end] == s.text
    for question in ("Who reported the number of boats?", "What did the ledger list?", "Who is CISA?"):
        for p in qa.retrieve(question, k=5, index=index):
            assert texts[p.doc_id][p.start:p.end] == p.text
            info = loaded.documents[p.doc_id]
            assert p.page == (None if info.kind == "text" else info.page_of(p.start))


@needs_chromium
def test_filters_narrow_retrieval_before_ranking(mixed) -> None:
    _, index, _ = mixed
    everything = qa.retrieve("harvest boats TikTok", k=10, index=index)
    assert {p.doc_id for p in everything} == {"harbour.pdf", "orchard.docx", "000_0cda244c9ed3ffe8.txt"}
    only_pdf = qa.retrieve("TikTok disinformation", k=10, index=index, docs="*.pdf")
    assert only_pdf and {p.doc_id for p in only_pdf} == {"harbour.pdf"}
    several = qa.retrieve("TikTok", k=10, index=index, docs=["*.pdf", "*.docx"])
    assert {p.doc_id for p in several} == {"harbour.pdf", "orchard.docx"}
    # The seed article has no date; the DOCX is dated 2023-05-04 and the PDF today.
    dated = qa.retrieve("harvest", k=10, index=index, since="2023-01-01", until="2023-12-31")
    assert {p.doc_id for p in dated} == {"orchard.docx"}
    assert qa.retrieve("harvest", k=10, index=index, since="2099-01-01") == []
    reply = qa.answer("How many fishing boats were moored?", index=index, docs="orchard.docx")
    assert all(c.doc_id == "orchard.docx" for c in reply.citations)
    with pytest.raises(QueryError, match="YYYY-MM-DD"):
        qa.retrieve("harvest", index=index, since="last year")
    with pytest.raises(QueryError, match="empty"):
        qa.retrieve("harvest", index=index, since="2024-02-01", until="2024-01-01")


def test_filters_use_the_ann_selector_on_large_filters(index_copy: Path, corpus_copy: Path, settings: Settings,
                                                       embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    from qa import retrieval

    ivf = replace(settings, dense_index="ivf", ivf_nlist=2, ivf_nprobe=2)
    build_index(corpus_copy, index_copy, settings=ivf, embedder=embedder, log=quiet)
    monkeypatch.setattr(retrieval, "EXACT_FILTERED", 0)   # every filter goes through FAISS's selector
    wanted = "002_370be3bb71d92220.txt"
    passages = qa.retrieve("TikTok owned by ByteDance", k=5, index=index_copy, settings=ivf, docs=wanted,
                           mode="dense")
    loaded = load_index(index_copy)
    assert len(passages) == min(5, len(loaded.chunks_of(wanted)))
    assert {p.doc_id for p in passages} == {wanted}


def test_hostile_and_broken_files_are_one_line_each(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7\n" + np.random.default_rng(0).bytes(2000))
    (corpus / "fake.docx").write_bytes(b"this is not a zip file")
    zip_bomb(corpus / "bomb.docx")
    (corpus / "fine.txt").write_text("A fine title\n\nSome text that is fine to index.\n", encoding="utf-8")
    documents, skipped = load_corpus(corpus)
    reasons = dict(skipped)
    assert [d.doc_id for d in documents] == ["fine.txt"]
    assert "not a readable PDF" in reasons["broken.pdf"]
    assert "not a zip package" in reasons["fake.docx"]
    assert "zip bomb" in reasons["bomb.docx"] and "150 MB" in reasons["bomb.docx"]
    assert all("\n" not in r for r in reasons.values())


@needs_chromium
def test_page_limit_and_text_less_pdfs(tmp_path: Path) -> None:
    pdf = print_pdf(REPORT.format(middle=""), tmp_path / "three.pdf")
    from qa.load import SkippedFile

    with pytest.raises(SkippedFile, match="3 pages, above the 2-page limit"):
        load_document(pdf, "three.pdf", max_pdf_pages=2)
    blank = print_pdf(f"<html><body>{DRAWING}</body></html>", tmp_path / "scan.pdf")
    with pytest.raises(SkippedFile, match="no text layer on any page"):
        load_document(blank, "scan.pdf")


def test_source_text_of_plain_files_is_the_file_and_changes_are_caught(index_copy: Path, corpus_copy: Path,
                                                                       settings: Settings, embedder) -> None:
    build_index(corpus_copy, index_copy, settings=settings, embedder=embedder, log=quiet)
    name = "001_176dacc757c32b0f.txt"
    assert qa.source_text(name, index=index_copy) == (corpus_copy / name).read_text(encoding="utf-8")
    with open(corpus_copy / name, "a", encoding="utf-8") as fh:
        fh.write("\nA new line.\n")
    with pytest.raises(QueryError, match="changed since it was indexed"):
        qa.source_text(name, index=index_copy)
    with pytest.raises(QueryError, match="no document"):
        qa.source_text("nope.txt", index=index_copy)


_WORDS = st.text(alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd"), max_codepoint=0x24F),
                 min_size=1, max_size=12)
_SENTENCES = st.lists(_WORDS, min_size=3, max_size=14).map(lambda ws: " ".join(ws) + ".")
_PARAGRAPHS = st.lists(_SENTENCES, min_size=1, max_size=4).map(" ".join)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(pages=st.lists(st.lists(_PARAGRAPHS, min_size=1, max_size=4), min_size=1, max_size=4))
def test_docx_offsets_and_pages_hold_for_generated_files(tmp_path: Path, pages: list[list[str]]) -> None:
    path = write_docx(tmp_path / "generated.docx", pages, created=None)
    doc = load_document(path, "generated.docx")
    assert doc.kind == "docx"   # (python-docx's template carries its own creation date)
    assert len(doc.page_starts) == (len(pages) if len(pages) > 1 else 0)
    for number, paragraphs in enumerate(pages, 1):
        for paragraph in paragraphs:
            at = doc.text.index(paragraph, doc.page_starts[number - 1] if doc.page_starts else 0)
            if doc.page_starts:
                assert doc.page_starts[number - 1] <= at and (number == len(pages) or at < doc.page_starts[number])
    chunks, sentences = split_documents([doc], Settings())
    assert chunks and sentences
    for c in chunks:
        assert doc.text[c.start:c.end] == c.text
    for s in sentences:
        assert doc.text[s.start:s.end] == s.text


@needs_chromium
def test_the_sources_panel_keeps_a_quote_on_its_page(mixed) -> None:
    from qa.index.text import SourceText

    _, index, _ = mixed
    loaded = load_index(index)
    reply = qa.answer("How many fishing boats were moored in the northern harbour?", index=index)
    cite = reply.citations[0]
    info = loaded.documents["harbour.pdf"]
    lo, text, _, _ = SourceText(loaded).window(cite.doc_id, cite.start, cite.end)
    assert cite.quote in text and lo >= info.page_starts[1]          # nothing from page 1 ...
    assert lo + len(text) <= info.page_starts[2]                      # ... or from page 3
    assert "Findings" in text                                          # the page's own heading


def test_a_ten_thousand_page_pdf_is_refused_with_one_line(tmp_path: Path) -> None:
    import pypdfium2 as pdfium

    from qa.load import SkippedFile

    pdf = pdfium.PdfDocument.new()
    for _ in range(10_000):
        pdf.new_page(200, 200).close()
    pdf.save(str(tmp_path / "huge.pdf"))
    pdf.close()
    with pytest.raises(SkippedFile, match="10,000 pages, above the 2,000-page limit"):
        load_document(tmp_path / "huge.pdf", "huge.pdf")
    documents, skipped = load_corpus(tmp_path)
    assert documents == [] and len(skipped) == 1 and "\n" not in skipped[0][1]


def javascript_pdf(target: Path, pages: list[list[str]]) -> Path:
    """A PDF that tries to run code every way a PDF can: JavaScript on open, on page open, in the
    document's name tree, on close, and a javascript: link. Its pages hold `pages`' lines as text."""
    def text(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    action = "<< /Type /Action /S /JavaScript /JS (app.alert\\('pdf'\\); this.submitForm\\('http://x.invalid/'\\);) >>"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R /OpenAction 3 0 R /AA << /WC 3 0 R >> "
        "/Names << /JavaScript << /Names [(boot) 3 0 R] >> >> >>",
        f"<< /Type /Pages /Kids [{' '.join(f'{6 + 2 * i} 0 R' for i in range(len(pages)))}] /Count {len(pages)} >>",
        action,
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        "<< /Type /Annot /Subtype /Link /Rect [72 60 300 80] /A << /S /URI /URI (javascript:alert\\(1\\)) >> >>",
    ]
    for i, lines in enumerate(pages):
        stream = "BT /F1 12 Tf 14 TL 72 740 Td " + " ".join(f"({text(line)}) Tj T*" for line in lines) + " ET"
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> "
                       f"/Contents {7 + 2 * i} 0 R /AA << /O 3 0 R >> /Annots [5 0 R] >>")
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    target.write_bytes(bytes(out))
    return target


FERRY_PAGES = [
    ["Ferry Report", "The ferry company runs two boats across the strait."],
    ["The night ferry carried 640 passengers across the strait in June.",
     "Its notice read <script>alert(1)</script> in large letters."],
]


def test_a_pdf_with_javascript_is_read_as_text_only(tmp_path: Path) -> None:
    doc = load_document(javascript_pdf(tmp_path / "ferry.pdf", FERRY_PAGES), "ferry.pdf")
    assert doc.kind == "pdf" and len(doc.page_starts) == 2
    assert "640 passengers" in doc.text[doc.page_starts[1]:]
    assert "<script>alert(1)</script>" in doc.text
    assert "app.alert" not in doc.text and "submitForm" not in doc.text


# A report as users bring it: Chromium's header and footer on every page, lines wrapped by the
# PDF, among the seed articles (issue: real layouts).
HARBOUR_REPORT = (Path(__file__).parent / "fixtures" / "glimmerfjord.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def report_among_seeds(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    if not CHROMIUM.exists():
        pytest.skip("making a real PDF needs Chromium at /usr/bin/chromium")
    root = tmp_path_factory.mktemp("layouts")
    corpus = root / "corpus"
    shutil.copytree(SEEDS, corpus)
    print_pdf(HARBOUR_REPORT, corpus / "glimmerfjord.pdf", furniture=True)
    build_index(corpus, root / "index", settings=Settings(), embedder=embedder)
    return root / "index"


@needs_chromium
@pytest.mark.parametrize(("question", "page", "quote", "answer"), [
    ("How many dock workers did the Glimmerfjord harbor authority employ?", 2,
     "In the reporting year the authority employed 412 dock workers across three terminals.", "412"),
    ("When will the breakwater repairs begin?", 3, "Repairs are scheduled to begin after the herring season.",
     "after the herring season"),
    ("Who supervised the night shift at the northern terminal?", 2,
     "The night shift at the northern terminal was supervised by Ingrid Solvang, who joined from the coast guard.",
     "Ingrid Solvang"),
])
def test_a_wrapped_pdf_among_the_seeds_answers_with_whole_sentences(report_among_seeds: Path, question: str,
                                                                    page: int, quote: str, answer: str) -> None:
    reply = qa.answer(question, index=report_among_seeds)
    assert not reply.abstained, (reply.status, reply.confidence)
    cite = reply.citations[0]
    assert (cite.doc_id, cite.page) == ("glimmerfjord.pdf", page)
    assert " ".join(cite.quote.split()) == quote          # a whole sentence, its line breaks kept
    assert qa.source_text(cite.doc_id, index=report_among_seeds)[cite.start:cite.end] == cite.quote
    assert answer in cite.quote


@needs_chromium
def test_pdf_page_furniture_is_never_a_sentence_or_chunk(report_among_seeds: Path) -> None:
    index = load_index(report_among_seeds)
    text = qa.source_text("glimmerfjord.pdf", index=report_among_seeds)
    header = next(line for line in text.splitlines() if line.startswith("file://"))
    sentences = [s for s in index.sentences if s.doc_id == "glimmerfjord.pdf"]
    chunks = [c for c in index.chunks if c.doc_id == "glimmerfjord.pdf"]
    assert sentences and chunks
    assert not any(c.text.startswith(("file://", header[:10])) or "file://" in c.text for c in chunks)
    for s in sentences:
        assert not s.text.startswith("file://") and s.text[0].isupper(), s.text
        if "file://" in s.text:      # a sentence carried over a page break holds the furniture between
            assert s.text.endswith(".") and index.documents["glimmerfjord.pdf"].page_of(s.start) < \
                index.documents["glimmerfjord.pdf"].page_of(s.end - 1)
