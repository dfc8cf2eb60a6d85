"""Scanned images (.png, .jpg, .tif; Pillow): their text is read by OCR (qa/ocr.py), a
multi-page TIFF's frames as pages. The OCR text is stored with the index, as a PDF's is."""

# Pillow is imported inside the functions that use them, on purpose: importing this module stays
# cheap (`import qa` loads neither torch nor FAISS, and `qa --help` starts at once).

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.formats.common import Extracted, ReadOptions, UnreadableDocument, join_pages, no_ocr, one_line, take_ocr
from qa.ocr import OcrError, PageImage

if TYPE_CHECKING:
    from PIL.Image import Image


def read_image(path: Path, raw: bytes, options: ReadOptions) -> Extracted:
    """The OCR text of a scanned image (.png, .jpg, .tif), a multi-page TIFF's frames as pages.

    Raises:
        UnreadableDocument: no OCR engine (or `ocr = "off"`), a broken or over-large image, or
            no text found on any page.
    """
    ocr, max_pages, file_key = options.ocr, options.max_pages, options.file_key
    if ocr.engine is None:
        raise UnreadableDocument(f"a scanned image needs OCR; {no_ocr(ocr)}")
    # Pillow here, not at the top: 22 ms that commands reading no image skip.
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow warns above 89 megapixels and refuses twice that; our own, lower limit
            # (max_image_megapixels) is checked on each frame before it is decoded.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            image = PILImage.open(path)
    except PILImage.DecompressionBombError:
        raise UnreadableDocument(f"an image above {ocr.max_pixels / 1e6:g} megapixels (setting "
                                 "max_image_megapixels)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UnreadableDocument(f"not a readable image ({one_line(str(exc))[:120]})") from None
    with image:
        frames = int(getattr(image, "n_frames", 1) or 1)
        if frames > max_pages:
            raise UnreadableDocument(f"{frames:,} pages, above the {max_pages:,}-page limit (setting max_pdf_pages)")
        notes: list[str] = []
        if frames > ocr.max_pages:
            notes.append(f"{frames - ocr.max_pages:,} more pages (pages {ocr.max_pages + 1}-{frames}), above the "
                         f"{ocr.max_pages:,}-page limit (setting max_ocr_pages): skipped")
        wanted = min(frames, ocr.max_pages)
        dpi = _image_dpi(image.info.get("dpi"))

        def render(number: int) -> Callable[[], Image]:
            return lambda: _frame(image, number, ocr.max_pixels)

        read = ocr.read_pages((PageImage(n + 1, render(n), dpi) for n in range(wanted)), file_key)
    texts = [""] * wanted
    done = take_ocr(read, texts, notes, layer=False)
    if not done:
        failed = [r for r in read.values() if isinstance(r, OcrError)]
        raise UnreadableDocument(str(failed[0]) if failed and wanted == 1 else
                                 f"OCR found no text in the image{f' ({notes[0]})' if notes else ''}")
    body, starts = join_pages(texts)
    # A single image has no pages to name ("p. 1" on every citation would say nothing).
    # Its title is its file name: a scan's first line is as often a letterhead or a stamp.
    return Extracted(body, one_line(path.stem.replace("_", " ")), None, starts if wanted > 1 else (), tuple(notes),
                     tuple(done))


def _frame(image: Any, number: int, max_pixels: int) -> Image:
    """Frame `number` of an open image as grey levels upright on white, checked for size first."""
    from PIL import Image as PILImage  # see read_image
    from PIL import ImageOps

    try:
        image.seek(number)
        width, height = image.size
        if width * height > max_pixels:
            raise OcrError(f"{width:,} x {height:,} px ({width * height / 1e6:,.0f} megapixels), above the "
                           f"{max_pixels / 1e6:g}-megapixel limit (setting max_image_megapixels)")
        frame = ImageOps.exif_transpose(image)   # a phone photo of a page, taken sideways
        if frame.mode in ("RGBA", "LA", "PA", "P") or "transparency" in frame.info:
            # Transparent pixels over white, as a viewer shows them (not over black).
            white = PILImage.new("RGBA", frame.size, "white")
            white.alpha_composite(frame.convert("RGBA"))
            frame = white
        return frame.convert("L")
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise OcrError(f"the image data is broken ({one_line(str(exc))[:120]})") from None


def _image_dpi(value: object) -> int | None:
    """The resolution an image file states, when it is a plausible scanner's (else tesseract guesses)."""
    try:
        dpi = round(float(value[0]))  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return None
    return dpi if 70 <= dpi <= 1200 else None
