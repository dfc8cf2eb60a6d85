"""OCR of scanned pages and images, with the real tesseract on scans made here from known text
(Chromium prints it, pypdfium2 renders it at 200 dpi, the page is turned and speckled), the real
index and the real reader. Without tesseract (or Chromium) these tests skip and say why."""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

import qa
from qa.answers import answer_to_json
from qa.bench.ocr import image_pdf, print_pdf, scan_pages, typed_header_page
from qa.config import Settings
from qa.errors import SettingsError
from qa.evaluation.metrics import char_error_rate
from qa.index import build_index, load_index
from qa.index.text import SourceText
from qa.load import load_corpus, load_document
from qa.ocr import find_tesseract, ocr_reader
from qa.web.html import Turn, sources_html

CHROMIUM = Path("/usr/bin/chromium")
ENGINE, MISSING = find_tesseract()
pytestmark = [
    pytest.mark.skipif(ENGINE is None, reason=f"needs tesseract: {MISSING}"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="making scans needs Chromium at /usr/bin/chromium"),
]

# Known text, not from the seeds: three pages of a harbour log, a fact on each.
PAGES = [
    ["Kestrel Point Lighthouse Log", "The lighthouse at Kestrel Point stands on the northern cape of the island. "
     "Its lamp was converted to electric power in 1936 and automated in 1989.",
     "The keepers kept a daily log of the weather, the lamp and the ships that passed the cape."],
    ["Shipping", "In 2021 the keeper recorded 1,284 ships passing Kestrel Point, most of them ferries and "
     "fishing boats bound for the southern harbour.",
     "Storms closed the channel on nineteen days in February, the highest count since the log began."],
    ["Repairs", "The gallery railing was replaced in the spring, and the lantern glass was cleaned by a crew "
     "of four from the coastal office.", "The work cost the harbour board 46,000 pounds."],
]
QUESTION = "How many ships passed Kestrel Point in 2021?"


def page_html(paragraphs: list[str]) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return f'<!doctype html><html><head><meta charset="utf-8"></head><body>{body}</body></html>'


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Image.Image], list[str]]:
    """The three pages, printed, scanned at 200 dpi (turned, noisy), and their known text."""
    root = tmp_path_factory.mktemp("scans")
    images, truth = [], []
    for n, paragraphs in enumerate(PAGES):
        got, known = scan_pages(print_pdf(page_html(paragraphs), root / f"{n}.pdf"), seed=n)
        images += got
        truth += known
    assert len(images) == 3
    return images, truth


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory, scans, embedder) -> tuple[Path, Path, Settings, list[str]]:
    """A corpus holding a 3-page PDF of page images only, indexed with a fresh OCR cache."""
    images, truth = scans
    root = tmp_path_factory.mktemp("scanned")
    (root / "corpus").mkdir()
    image_pdf(images, root / "corpus" / "log.pdf")
    settings = Settings(cache_dir=root / "cache")
    lines: list[str] = []
    report = build_index(root / "corpus", root / "index", settings=settings, embedder=embedder, log=lines.append)
    assert report.ocr_pages == 3 and "OCR read 3 pages" in lines[-1]
    return root / "corpus", root / "index", settings, truth


def test_a_scanned_pdf_is_indexed_with_few_character_errors(scanned) -> None:
    _, index, _, truth = scanned
    info = load_index(index).documents["log.pdf"]
    text = qa.source_text("log.pdf", index=index)
    assert info.ocr_pages == (1, 2, 3) and len(info.page_starts) == 3
    ends = [*info.page_starts[1:], len(text) + 2]
    for number, (start, end) in enumerate(zip(info.page_starts, ends, strict=True)):
        assert char_error_rate(text[start:end - 2], truth[number]) <= 0.03, (number, text[start:end - 2])


def test_a_question_about_page_2_cites_page_2_marked_ocr(scanned) -> None:
    _, index, _, _ = scanned
    reply = qa.answer(QUESTION, index=index)
    assert not reply.abstained
    cite = reply.citations[0]
    assert cite.page == 2 and cite.ocr and "1,284" in cite.quote
    assert qa.source_text(cite.doc_id, index=index)[cite.start:cite.end] == cite.quote
    assert answer_to_json(reply)["citations"][0]["ocr"] is True
    assert all(p.ocr for p in reply.passages)
    loaded = load_index(index)
    html = sources_html([Turn(QUESTION, reply)], loaded, SourceText(loaded))
    assert '<span class="qa-ocr"' in html and ">OCR</span>" in html
    assert 'href="qa/file?doc=log.pdf#page=2"' in html and ">open p. 2</a>" in html


def test_an_unchanged_scan_is_not_read_again_and_a_changed_one_reuses_its_pages(
        scanned, scans, embedder, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus, index, settings, _ = scanned
    images, _ = scans
    quiet: list[str] = []
    assert build_index(corpus, index, settings=settings, embedder=embedder, log=quiet.append).ocr_pages == 0
    assert "is up to date" in quiet[-1]
    # A full rebuild reads the file again but finds every page in the cache, unrendered.
    again = build_index(corpus, index, settings=settings, embedder=embedder, rebuild=True, log=quiet.append)
    assert again.ocr_pages == 0 and again.chunks_embedded > 0
    # A fourth page scanned onto the file: only it goes to the engine, under one progress bar.
    changed = tmp_path / "corpus"
    shutil.copytree(corpus, changed)
    image_pdf([*images, images[1].rotate(90, expand=True, fillcolor=255)], changed / "log.pdf")
    shutil.copytree(index, tmp_path / "index")
    report = build_index(changed, tmp_path / "index", settings=settings.replace(show_progress=True),
                         embedder=embedder, log=quiet.append)
    assert report.changed == ("log.pdf",) and report.ocr_pages == 1
    err = capsys.readouterr().err
    assert "OCR" in err and "page/s" in err and "Embedding" in err and err.count("1/1 ") >= 1


def test_a_mixed_pdf_reads_only_its_scanned_pages(scans, tmp_path: Path) -> None:
    """Text pages, a page that is only a scan, and a scan under a typed header line (a sliver)."""
    images, truth = scans
    buffer = io.BytesIO()
    images[1].save(buffer, format="PNG")
    import base64

    scan = base64.b64encode(buffer.getvalue()).decode()
    html = ('<!doctype html><html><head><meta charset="utf-8"><style>.page { page-break-after: always; } '
            '@page { margin: 0.3in; } body { margin: 0; }</style></head><body>'
            '<div class="page"><h1>Harbour Annual Report</h1><p>The harbour board met four times in 2021 and '
            'approved the budget for the new breakwater on the eastern side of the bay.</p></div>'
            f'<div class="page"><img style="width: 7.6in" src="data:image/png;base64,{scan}"></div>'
            '<div><p>The breakwater will be finished in 2024, the board expects, if the spring storms allow.</p>'
            '</div></body></html>')
    pdf = print_pdf(html, tmp_path / "mixed.pdf")
    header = typed_header_page("CONFIDENTIAL - Exhibit 14 - Page 3 of 7", images[2], tmp_path / "header.pdf")
    ocr = ocr_reader(Settings(cache_dir=tmp_path / "cache"))
    doc = load_document(pdf, "mixed.pdf", ocr=ocr)
    assert doc.ocr_pages == (2,) and len(doc.page_starts) == 3 and ocr.stats.pages == 1
    pages = [doc.text[s:e] for s, e in zip(doc.page_starts, [*doc.page_starts[1:], len(doc.text)], strict=True)]
    assert "Harbour Annual Report" in pages[0] and "breakwater will be finished" in pages[2]
    assert char_error_rate(pages[1], truth[1]) <= 0.03
    typed = load_document(header, "header.pdf", ocr=ocr)
    assert typed.ocr_pages == (1,)                       # 30 characters of text layer over a scan
    assert "CONFIDENTIAL" in typed.text and char_error_rate(typed.text.split("\n", 1)[1], truth[2]) <= 0.05


def test_scanned_images_are_read_and_bad_ones_skipped_with_one_line_each(scans, tmp_path: Path) -> None:
    images, truth = scans
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    # Copies: Pillow keeps the last save's encoder settings on an image (here the PDF's JPEG ones).
    images[0].copy().save(corpus / "page.png", dpi=(200, 200))
    images[0].copy().save(corpus / "pages.tiff", save_all=True, append_images=[images[2].copy()], dpi=(200, 200))
    whole = (corpus / "page.png").read_bytes()
    (corpus / "broken.png").write_bytes(whole[: len(whole) // 3])
    Image.new("L", (10_000, 10_000), 255).save(corpus / "huge.png")
    encrypted_scan_pdf(corpus / "locked.pdf")
    settings = Settings(cache_dir=tmp_path / "cache")
    documents, skipped = load_corpus(corpus, settings=settings)
    reasons = dict(skipped)
    assert sorted(reasons) == ["broken.png", "huge.png", "locked.pdf"]
    assert all("\n" not in r for r in reasons.values())
    assert "image data is broken" in reasons["broken.png"]
    assert "10,000 x 10,000 px" in reasons["huge.png"] and "max_image_megapixels" in reasons["huge.png"]
    assert "encrypted PDF" in reasons["locked.pdf"]
    found = {d.doc_id: d for d in documents}
    png, tiff = found["page.png"], found["pages.tiff"]
    assert png.kind == tiff.kind == "image" and png.page_starts == () and png.ocr_pages == (1,)
    assert char_error_rate(png.text, truth[0]) <= 0.03 and png.title == "page"
    assert len(tiff.page_starts) == 2 and tiff.ocr_pages == (1, 2) and "46,000 pounds" in tiff.text


def test_ocr_off_and_force(scans, tmp_path: Path) -> None:
    images, _ = scans
    pdf = image_pdf(images[:1], tmp_path / "scan.pdf")
    from qa.load import SkippedFile

    off = ocr_reader(Settings(ocr="off"))
    with pytest.raises(SkippedFile, match='no text layer on any page .*OCR is off'):
        load_document(pdf, "scan.pdf", ocr=off)
    images[0].save(tmp_path / "scan.png")
    with pytest.raises(SkippedFile, match="a scanned image needs OCR; OCR is off"):
        load_document(tmp_path / "scan.png", "scan.png", ocr=off)
    printed = print_pdf(page_html(PAGES[0]), tmp_path / "printed.pdf")
    forced = load_document(printed, "printed.pdf", ocr=ocr_reader(Settings(ocr="force", cache_dir=tmp_path / "c")))
    assert forced.ocr_pages == (1,) and "Kestrel Point" in forced.text
    with pytest.raises(SettingsError, match="Invalid ocr value: 'sometimes'. Choose from auto, off, force"):
        Settings(ocr="sometimes")


def test_the_page_limit_reads_the_first_pages_and_says_so(scans, tmp_path: Path) -> None:
    images, _ = scans
    pdf = image_pdf(images, tmp_path / "scan.pdf")
    doc = load_document(pdf, "scan.pdf", ocr=ocr_reader(Settings(max_ocr_pages=1, cache_dir=tmp_path / "c")))
    assert doc.ocr_pages == (1,)
    assert "2 more pages need OCR (pages 2-3), above the 1-page limit (setting max_ocr_pages): skipped" in doc.notes


def encrypted_scan_pdf(target: Path, user_password: bytes = b"secret") -> Path:
    """A one-page PDF holding a grey image, encrypted as the PDF standard's RC4 40-bit handler
    (revision 2) does, so that it opens only with a password."""
    pad = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")

    def rc4(key: bytes, data: bytes) -> bytes:
        s, j = list(range(256)), 0
        for i in range(256):
            j = (j + s[i] + key[i % len(key)]) % 256
            s[i], s[j] = s[j], s[i]
        out, i, j = bytearray(), 0, 0
        for byte in data:
            i = (i + 1) % 256
            j = (j + s[i]) % 256
            s[i], s[j] = s[j], s[i]
            out.append(byte ^ s[(s[i] + s[j]) % 256])
        return bytes(out)

    padded = (user_password + pad)[:32]
    owner = rc4(hashlib.md5((b"owner" + pad)[:32]).digest()[:5], padded)
    permissions = -44
    file_id = hashlib.md5(b"qa encrypted scan").digest()
    key = hashlib.md5(padded + owner + (permissions & 0xFFFFFFFF).to_bytes(4, "little") + file_id).digest()[:5]
    user = rc4(key, pad)

    def sealed(number: int, data: bytes) -> bytes:
        return rc4(hashlib.md5(key + number.to_bytes(3, "little") + b"\0\0").digest()[:10], data)

    pixels = bytes((x * 7 + y * 3) % 256 for y in range(40) for x in range(40))
    content = b"q 612 0 0 792 0 0 cm /Im1 Do Q"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /XObject /Subtype /Image /Width 40 /Height 40 /ColorSpace /DeviceGray /BitsPerComponent 8 "
        b"/Length %d >>\nstream\n" % len(pixels) + sealed(4, pixels) + b"\nendstream",
        b"<< /Length %d >>\nstream\n" % len(content) + sealed(5, content) + b"\nendstream",
        b"<< /Filter /Standard /V 1 /R 2 /O <" + owner.hex().encode() + b"> /U <" + user.hex().encode()
        + b"> /P %d >>" % permissions,
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += (b"trailer\n<< /Size %d /Root 1 0 R /Encrypt 6 0 R /ID [<%s> <%s>] >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(objects) + 1, file_id.hex().encode(), file_id.hex().encode(), xref))
    target.write_bytes(bytes(out))
    return target
