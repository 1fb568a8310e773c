"""The boxes of every extracted value drawn on the page images (``extract --highlight``).

For a reviewer who would rather look than read offsets: each value that was copied from
or found in the document is outlined where OCR read it, labelled with its JSON Pointer.
A PDF output holds every page at its own size; a PNG output holds the pages that have a
box, one above the other (the first page when none has). Only text that OCR read has
boxes: a value on a text-layer PDF page has a page but nothing to draw.

Page images are made again from the source file (an image's pages, or a PDF's pages
rendered as for OCR), so nothing is held in memory between reading and drawing.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from thinkjson_edge.errors import InputError, UsageError
from thinkjson_edge.files import read_bounded, write_atomically
from thinkjson_edge.pipeline.documents import Document, document_limit
from thinkjson_edge.pipeline.layout import Layout, Rectangle
from thinkjson_edge.pipeline.result import ExtractionResult
from thinkjson_edge.schema import pointer

if TYPE_CHECKING:
    from PIL.Image import Image

HIGHLIGHT_FORMATS = (".pdf", ".png")
_OUTLINE = (220, 20, 60)  # crimson: visible on white paper and on grey scans
_POINTS_PER_INCH = 72


@dataclass(frozen=True)
class Highlight:
    """One value's box on one page, and the value's JSON Pointer."""

    page: int
    box: Rectangle
    label: str


def check_highlight_target(path: Path) -> None:
    """Raise UsageError unless ``path`` names a format the highlight can be written in."""
    if path.suffix.lower() not in HIGHLIGHT_FORMATS:
        raise UsageError(
            f"--highlight {path}: name a .pdf or .png file (the format follows the suffix)"
        )


def check_highlightable(document: Document) -> None:
    """Raise UsageError when the document has no page images to draw on."""
    if document.layout is None:
        raise UsageError(
            f"--highlight draws on page images; {document.source} is a {document.kind} "
            "document without pages (give a PDF or an image)"
        )


def value_highlights(result: ExtractionResult, layout: Layout) -> list[Highlight]:
    """The boxes of the kept attempt's values: those copied from the document and those
    found in it, each span once."""
    spans: dict[tuple[int, int], str] = {}
    attempt = result.chosen
    for trace in attempt.values:
        if trace.copied and trace.start is not None and trace.end is not None:
            spans.setdefault((trace.start, trace.end), pointer(trace.path))
    for grounded in attempt.grounding:
        if grounded.span is not None:
            spans.setdefault((grounded.span.start, grounded.span.end), grounded.path)
    return [
        Highlight(region.page, region.box, label)
        for (start, end), label in sorted(spans.items())
        for region in layout.regions(start, end)
    ]


def write_highlight(document: Document, highlights: list[Highlight], out: Path) -> int:
    """Draw ``highlights`` on the document's pages and write them to ``out`` (.pdf or .png);
    returns how many pages were written."""
    check_highlight_target(out)
    check_highlightable(document)
    as_pdf = out.suffix.lower() == ".pdf"
    wanted = {h.page for h in highlights} or {1}
    pages: list[tuple[Image, float]] = []
    for number, (image, scale) in enumerate(_page_images(document), 1):
        if as_pdf or number in wanted:
            _draw(image, scale, [h for h in highlights if h.page == number])
            pages.append((image, scale))
    buffer = io.BytesIO()
    if as_pdf:
        first, *rest = [image for image, _ in pages]
        # At the rendering's resolution each page keeps its own size in points.
        dpi = _POINTS_PER_INCH * pages[0][1] if document.kind == "pdf" else 150.0
        first.save(buffer, "PDF", save_all=True, append_images=rest, resolution=dpi)
    else:
        _stacked([image for image, _ in pages]).save(buffer, "PNG")
    write_atomically(out, buffer.getvalue())
    return len(pages)


def _page_images(document: Document) -> Iterator[tuple[Image, float]]:
    """Each page as an image, one at a time, with its pixels per layout unit."""
    data = read_bounded(Path(document.source), document_limit(), error=InputError)
    if document.kind == "pdf":
        from thinkjson_edge.pipeline.pdf_pages import PdfPages

        rendered = PdfPages(data, document.source)
        try:
            for index in range(len(rendered)):
                yield rendered.render(index)
        finally:
            rendered.close()
        return
    from thinkjson_edge.pipeline.images import ImageFile

    images = ImageFile(data, document.source)
    for index in range(images.count):
        yield images.page(index), 1.0


def _draw(image: Image, scale: float, highlights: list[Highlight]) -> None:
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    width = max(2, round(min(image.size) / 400))
    for highlight in highlights:
        x0, y0, x1, y1 = (value * scale for value in highlight.box)
        pad = width + 1
        draw.rectangle((x0 - pad, y0 - pad, x1 + pad, y1 + pad), outline=_OUTLINE, width=width)
        draw.text((x0, max(0.0, y0 - pad - 11)), highlight.label, fill=_OUTLINE)


def _stacked(images: list[Image]) -> Image:
    from PIL import Image as PILImage

    if len(images) == 1:
        return images[0]
    width = max(image.width for image in images)
    sheet = PILImage.new("RGB", (width, sum(image.height for image in images)), "white")
    top = 0
    for image in images:
        sheet.paste(image, (0, top))
        top += image.height
    return sheet
