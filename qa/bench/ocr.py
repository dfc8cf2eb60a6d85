"""OCR engines on scans made here from known text (`qa bench ocr`).

The pages: the seed articles as HTML in three type styles (serif 11 pt, sans-serif 10 pt, serif
12 pt), printed to PDF by Chromium, each page rendered at 200 dpi in grey levels by pypdfium2,
turned by up to 0.8 degrees, with Gaussian noise and dark specks, and saved as a PDF of page
images (`scan_pages`, `image_pdf`); the known text of each page is the printed PDF's text layer.

Reported: character error rate (qa.evaluation.metrics.char_error_rate) and seconds per page, CPU and wall,
for tesseract as qa runs it (one process per page on one thread, `threads` pages at a time), for
tesseract with its own OpenMP threads, and for rapidocr-onnxruntime when it is installed; the
resolution scanned pages are rendered at for OCR; the text-layer sizes behind the "sliver" rule;
and the build of the 20-page scanned PDF through `build_index`, then again unchanged.
"""

# pypdfium2, Pillow and RapidOCR (optional) is imported inside the functions that use them, on
# purpose: importing this module stays cheap (`import qa` loads neither torch nor FAISS, and `qa
# --help` starts at once).

from __future__ import annotations

import base64
import html
import io
import os
import resource
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.bench.common import CHROMIUM, print_pdf
from qa.bench.registry import BenchRun
from qa.bench.report import Report
from qa.config import Settings
from qa.errors import BenchmarkDataError
from qa.evaluation.metrics import char_error_rate
from qa.formats import image_share
from qa.index import build_index, load_index, source_text
from qa.ocr import SCAN_IMAGE_SHARE, SLIVER_CHARS, find_tesseract

if TYPE_CHECKING:
    from PIL.Image import Image

    from qa.ocr import Tesseract

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
STYLES = (("serif", 11), ("sans-serif", 10), ("serif", 12), ("sans-serif", 11))
SCAN_DPI = 200


def article_html(paragraphs: Sequence[str], font: str = "serif", size_pt: float = 11) -> str:
    """An HTML page of paragraphs in one type style, each paragraph escaped."""
    body = "".join(f"<p>{html.escape(p)}</p>\n" for p in paragraphs)
    return (f'<!doctype html><html><head><meta charset="utf-8"><style>body {{ font-family: {font}; '
            f"font-size: {size_pt}pt; }}</style></head><body>{body}</body></html>")


def scan_pages(pdf_path: Path, *, dpi: int = SCAN_DPI, max_angle: float = 0.8, noise: float = 10.0,
               seed: int = 0) -> tuple[list[Image], list[str]]:
    """Each page of a printed PDF as a scanner would give it back, and its known text (the text layer).

    Rendered at `dpi` in grey levels, turned by a random angle within `max_angle` degrees, with
    Gaussian noise of standard deviation `noise` grey levels and one dark speck in 2,000 pixels.
    """
    import pypdfium2 as pdfium
    from PIL import Image as PILImage

    rng = np.random.default_rng(seed)
    pdf = pdfium.PdfDocument(str(pdf_path))
    images, texts = [], []
    try:
        for number in range(len(pdf)):
            page = pdf[number]
            textpage = page.get_textpage()
            texts.append(textpage.get_text_range())
            textpage.close()
            image = page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
            page.close()
            image = image.rotate(float(rng.uniform(-max_angle, max_angle)), resample=PILImage.Resampling.BICUBIC,
                                 fillcolor=255)
            grey = np.asarray(image, dtype=np.float32) + rng.normal(0.0, noise, (image.height, image.width))
            grey[rng.random(grey.shape) < 0.0005] = 0.0
            images.append(PILImage.fromarray(np.clip(grey, 0, 255).astype(np.uint8)))
    finally:
        pdf.close()
    return images, texts


def image_pdf(images: Sequence[Image], target: Path, dpi: int = SCAN_DPI) -> Path:
    """A PDF whose pages are `images` and nothing else (no text layer), as a scanner writes one."""
    # Copies: Pillow keeps a save's encoder settings on the image, and a later save in another
    # format would be handed them.
    copies = [image.copy() for image in images]
    copies[0].save(target, format="PDF", save_all=True, append_images=copies[1:], resolution=dpi)
    return target


def scanned_pdf(texts: Sequence[Sequence[str]], target: Path, *, seed: int = 0,
                styles: Sequence[tuple[str, float]] = STYLES[:1]) -> list[str]:
    """A scanned PDF of `texts` (lists of paragraphs, each printed in turn in the next style);
    returns the known text of each page."""
    images: list[Image] = []
    truth: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, paragraphs in enumerate(texts):
            font, size = styles[i % len(styles)]
            printed = print_pdf(article_html(paragraphs, font, size), Path(tmp) / f"{i}.pdf")
            got, known = scan_pages(printed, seed=seed + i)
            images += got
            truth += known
    image_pdf(images, target)
    return truth


def typed_header_page(header: str, scan: Image, target: Path) -> Path:
    """A scanned page with a typed line above it (a fax header, a Bates stamp), printed by Chromium:
    the line is a text layer, the scan an image covering most of the page."""
    data = io.BytesIO()
    scan.save(data, format="PNG")
    page = (f'<!doctype html><html><head><meta charset="utf-8"><style>@page {{ margin: 0.3in; }} body {{ margin: 0; }}'
            f"</style></head><body><div style=\"font: 9pt monospace\">{html.escape(header)}</div>"
            f'<img style="width: 7.6in" src="data:image/png;base64,{base64.b64encode(data.getvalue()).decode()}">'
            "</body></html>")
    return print_pdf(page, target)


def seed_articles() -> list[list[str]]:
    """The seed articles as lists of paragraphs."""
    return [[p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
            for path in sorted(SEEDS.glob("*.txt"))]


def _tesseract(image: Image, threads: int | None) -> str:
    engine = find_tesseract()[0]
    assert engine is not None
    if threads == 1:
        return engine.read(image, SCAN_DPI)
    data = io.BytesIO()
    image.save(data, format="PPM")
    env = {k: v for k, v in os.environ.items() if k != "OMP_THREAD_LIMIT"}
    done = subprocess.run([engine.path, "stdin", "stdout", "-l", "eng", "--psm", "3", "--dpi", str(SCAN_DPI)],
                          input=data.getvalue(), capture_output=True, env=env, check=True)
    return done.stdout.decode("utf-8", "replace")


def _measure(read: Callable[[Image], str], images: Sequence[Image], truth: Sequence[str],
             workers: int) -> dict[str, Any]:
    """CER per page and seconds per page (wall, and CPU of this process and its children)."""
    before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        texts = list(pool.map(read, images))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(after, before, strict=True))
    rates = [char_error_rate(t, k) for t, k in zip(texts, truth, strict=True)]
    return {"pages": len(images), "cer_mean": float(np.mean(rates)), "cer_max": float(np.max(rates)),
            "wall_s_per_page": wall / len(images), "cpu_s_per_page": cpu / len(images)}


def _rapidocr() -> Callable[[Image], str] | None:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        return None
    engine = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)

    def read(image: Image) -> str:
        found, _ = engine(np.asarray(image.convert("RGB")))
        return "\n".join(str(line[1]) for line in found or [])

    return read


def bench_ocr(settings: Settings, report_dir: Path, *, echo: Callable[[str], None] | None = None) -> Report:
    """Run the comparison (see the module docstring) and return its report."""
    engine, missing = find_tesseract()
    if engine is None:
        raise BenchmarkDataError(f"qa bench ocr needs tesseract: {missing}.")
    if not CHROMIUM.exists():
        raise BenchmarkDataError(f"qa bench ocr prints its pages with Chromium, not found at {CHROMIUM} "
                                 "(apt-get install chromium).")
    started = time.perf_counter()
    out = Report("OCR: engines on pages scanned here from known text", report_dir, echo)
    threads = settings.threads
    with tempfile.TemporaryDirectory(prefix="qa-bench-ocr-") as tmp:
        root = Path(tmp)
        images, truth, printed = _scanned_pages(root, out)
        out.data.update({"pages": len(images), "tesseract": engine.version, "threads": threads})
        few = min(4, len(images))
        _engines_section(out, engine, images, truth, threads, few)
        _dpi_section(out, engine, images, truth, root, few)
        _sliver_section(out, printed, images, root)
        _build_section(out, settings, images, truth, root)
    out.threads()
    out.data["seconds"] = round(time.perf_counter() - started, 1)
    return out


def _scanned_pages(root: Path, out: Report) -> tuple[list[Image], list[str], list[Path]]:
    """The seed articles printed in each style and scanned: the page images, their known text, and
    the printed PDFs."""
    articles = seed_articles()
    images: list[Image] = []
    truth: list[str] = []
    printed: list[Path] = []
    for i, (font, size) in enumerate(STYLES):
        pdf = print_pdf(article_html([p for a in articles for p in a], font, size), root / f"style{i}.pdf")
        printed.append(pdf)
        got, known = scan_pages(pdf, seed=i)
        images += got
        truth += known
    out.text(f"{len(images)} pages: the {len(articles)} seed articles printed by Chromium in {len(STYLES)} type "
             f"styles ({', '.join(f'{f} {s} pt' for f, s in STYLES)}), rendered at {SCAN_DPI} dpi, turned by up "
             "to 0.8 degrees, noise sigma 10 grey levels, 1 dark speck in 2,000 pixels. CER: edit distance over "
             "the known text's length, whitespace runs as one space.")
    return images, truth, printed


def _engines_section(out: Report, engine: Tesseract, images: list[Image], truth: list[str], threads: int,
                     few: int) -> None:
    """tesseract as qa runs it, tesseract with its own threads, and rapidocr when installed."""
    out.section("Engines")
    rows: list[list[Any]] = []
    results: dict[str, Any] = {}
    runs: list[tuple[str, Callable[[Image], str], int, int]] = [
        (f"tesseract {engine.version}, 1 thread per page, {threads} pages at a time (qa)",
         lambda im: _tesseract(im, 1), threads, len(images)),
        (f"tesseract {engine.version}, its own OpenMP threads, 1 page at a time",
         lambda im: _tesseract(im, None), 1, few),
    ]
    rapid = _rapidocr()
    if rapid is None:
        out.text("rapidocr-onnxruntime is not installed: left out (pip install rapidocr-onnxruntime to compare; "
                 "its wheel carries its models).")
    else:
        runs.append(("rapidocr-onnxruntime (PP-OCRv4 models from its wheel), 1 page at a time", rapid, 1, few))
    for name, read, workers, count in runs:
        r = _measure(read, images[:count], truth[:count], workers)
        results[name] = r
        rows.append([name, r["pages"], f"{100 * r['cer_mean']:.2f}%", f"{100 * r['cer_max']:.2f}%",
                     f"{r['cpu_s_per_page']:.2f}", f"{r['wall_s_per_page']:.2f}"])
        out.echo(f"  {name}: done")
    out.table(["engine", "pages", "CER mean", "CER worst page", "CPU s/page", "wall s/page"], rows)
    out.data["engines"] = results


def _dpi_section(out: Report, engine: Tesseract, images: list[Image], truth: list[str], root: Path, few: int) -> None:
    """CER and CPU time of `few` scanned pages rendered at 150, 200 and 300 dpi."""
    import pypdfium2 as pdfium

    out.section("Resolution scanned PDF pages are rendered at for OCR")
    scan = image_pdf(images[:few], root / "scan-few.pdf")
    rows = []
    dpis: dict[str, Any] = {}
    for dpi in (150, 200, 300):
        doc = pdfium.PdfDocument(str(scan))
        rendered = [doc[n].render(scale=dpi / 72, grayscale=True).to_pil() for n in range(few)]
        doc.close()
        r = _measure(lambda im, d=dpi: engine.read(im, d), rendered, truth[:few], 1)  # type: ignore[misc]
        dpis[str(dpi)] = r
        rows.append([dpi, f"{100 * r['cer_mean']:.2f}%", f"{r['cpu_s_per_page']:.2f}"])
    out.table(["render dpi (scans made at 200)", "CER mean", "CPU s/page"], rows)
    out.data["render_dpi"] = dpis


def _sliver_section(out: Report, printed: list[Path], images: list[Image], root: Path) -> None:
    """The text layer of printed pages beside scans with a typed header line (the sliver rule)."""
    import pypdfium2 as pdfium

    out.section("The sliver rule")
    doc = pdfium.PdfDocument(str(printed[0]))
    chars = []
    for n in range(len(doc)):
        textpage = doc[n].get_textpage()
        chars.append(sum(not c.isspace() for c in textpage.get_text_range()))
        textpage.close()
    doc.close()
    headers = ["Bates QA-000123", "CONFIDENTIAL - Case No. 21-cv-04512 - Exhibit 14 - Page 2 of 7",
               "FAX FROM: +1 202 555 0143  TO: Harbour Office  12/03/2019 14:22  P.002/007  "
               "Received by the Records Office of the Coastal Authority"]
    rows: list[list[Any]] = [["printed text pages (serif 11 pt)", f"{min(chars):,}-{max(chars):,}", "0%"]]
    slivers = []
    for k, header in enumerate(headers):
        page = typed_header_page(header, images[k], root / f"header{k}.pdf")
        doc = pdfium.PdfDocument(str(page))
        first = doc[0]
        textpage = first.get_textpage()
        layer = sum(not c.isspace() for c in textpage.get_text_range())
        textpage.close()
        share = image_share(first)
        first.close()
        doc.close()
        slivers.append({"chars": layer, "image_share": share})
        rows.append([f"scan with a typed line ({len(header)} characters)", layer, f"{100 * share:.0f}%"])
    out.table(["page", "text-layer characters (not spaces)", "area under images"], rows)
    out.text(f"Rule: OCR a page with no text layer, or with fewer than {SLIVER_CHARS} characters of one while "
             f"images cover at least {100 * SCAN_IMAGE_SHARE:.0f}% of it.")
    out.data["sliver"] = {"text_pages_chars": chars, "typed_header_pages": slivers}


def _build_section(out: Report, settings: Settings, images: list[Image], truth: list[str], root: Path) -> None:
    """Index a 20-page scanned PDF twice (the second build reads nothing again) and score its text."""
    out.section("Building the index of a 20-page scanned PDF")
    corpus = root / "corpus"
    corpus.mkdir()
    image_pdf(images[:20], corpus / "scan.pdf")
    built = settings.replace(cache_dir=root / "cache", show_progress=False)
    rows = []
    builds: dict[str, Any] = {}
    for run in ("first build", "again, file unchanged"):
        report = build_index(corpus, root / "index", settings=built, log=lambda _line: None)
        builds[run] = {"seconds": report.seconds, "ocr_pages": report.ocr_pages, "ocr_seconds": report.ocr_seconds}
        rows.append([run, f"{report.seconds:.1f}", report.ocr_pages, f"{report.ocr_seconds:.1f}"])
    out.table(["build", "seconds", "pages OCR'd", "OCR seconds"], rows)
    index = load_index(root / "index")
    info = index.documents["scan.pdf"]
    text = source_text("scan.pdf", index=index)
    bounds = [*info.page_starts, len(text) + 2]
    indexed = [text[bounds[n]:bounds[n + 1] - 2] for n in range(len(info.page_starts))]
    cer = float(np.mean([char_error_rate(t, k) for t, k in zip(indexed, truth[:20], strict=True)]))
    out.text(f"Indexed text against the known text: CER {100 * cer:.2f}% over {len(indexed)} pages; "
             f"{len(info.ocr_pages)} pages marked OCR.")
    builds["indexed_cer"] = cer
    out.data["build"] = builds


def run(job: BenchRun) -> Report:
    """`qa bench ocr` (qa.bench.registry)."""
    return bench_ocr(job.settings, job.report_dir, echo=job.echo)
