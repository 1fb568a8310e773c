"""Scanned pages to text: each page image through OCR, its lines in reading order, and
the box of every piece of text kept for the layout.

Pages are read one at a time (one page image in memory), and each read page is reported
to ``ReadOptions.on_page``, so a long scan shows its progress. A page on which OCR finds
nothing gives empty text and a note, not an error; the reader decides what a document
with no text at all means.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from thinkjson_edge.pipeline.layout import (
    PAGE_BREAK,
    READ_BY_OCR,
    BoxSpan,
    Layout,
    PageInfo,
    Rectangle,
)
from thinkjson_edge.pipeline.ocr import recognise
from thinkjson_edge.pipeline.ocr_lines import lines_text, reading_order
from thinkjson_edge.pipeline.reading import PageRead, ReadOptions

if TYPE_CHECKING:
    from PIL.Image import Image

# Called with the characters read so far; raises InputError once the text is too long.
LengthCheck = Callable[[int], None]


@dataclass(frozen=True)
class PageContent:
    """One page's text, what it is, and the boxes its text came from (offsets in ``text``)."""

    text: str
    info: PageInfo
    boxes: tuple[tuple[int, int, Rectangle], ...] = ()


@dataclass(frozen=True)
class Assembled:
    """Pages put together: the text (pages apart by PAGE_BREAK), page starts, layout, notes."""

    text: str
    starts: tuple[int, ...]
    layout: Layout
    notes: tuple[str, ...]


def ocr_page(
    image: Image,
    number: int,
    pages: int,
    *,
    unit: str,
    scale: float,
    source: str,
    options: ReadOptions,
) -> PageContent:
    """Page ``number`` of ``pages`` read by OCR; ``scale`` is pixels per page unit."""
    started = time.perf_counter()
    text, spans = lines_text(reading_order(recognise(image)))
    boxes = tuple((start, end, _in_units(box.rectangle, scale)) for start, end, box in spans)
    info = PageInfo(number, image.width / scale, image.height / scale, unit, READ_BY_OCR, scale)
    options.heard(PageRead(source, number, pages, time.perf_counter() - started, len(text)))
    return PageContent(text, info, boxes)


def read_image_pages(
    data: bytes, source: str, options: ReadOptions, check_length: LengthCheck
) -> tuple[str, list[PageContent]]:
    """Every page of an image file read by OCR; (the image format, the pages)."""
    from thinkjson_edge.pipeline.images import ImageFile

    images = ImageFile(data, source)
    images.check_sizes()  # every page, before minutes of OCR on the first ones
    pages: list[PageContent] = []
    characters = 0
    for index in range(images.count):
        page = ocr_page(
            images.page(index), index + 1, images.count, unit="px", scale=1.0, source=source,
            options=options,
        )  # fmt: skip
        pages.append(page)
        characters += len(page.text) + len(PAGE_BREAK)
        check_length(characters)
    return images.format, pages


def assemble(pages: Sequence[PageContent]) -> Assembled:
    """The document's text, page starts and layout; a note for each blank OCR page."""
    texts: list[str] = []
    starts: list[int] = []
    spans: list[BoxSpan] = []
    notes: list[str] = []
    offset = 0
    for page in pages:
        starts.append(offset)
        number = page.info.number
        spans += [BoxSpan(offset + s, offset + e, number, box) for s, e, box in page.boxes]
        if page.info.read_by == READ_BY_OCR and not page.text.strip():
            notes.append(
                f"page {number}: OCR recognised no text on it (a blank page, or text too "
                "small or faint to read); it is read as empty"
            )
        texts.append(page.text)
        offset += len(page.text) + len(PAGE_BREAK)
    layout = Layout(tuple(page.info for page in pages), tuple(starts), tuple(spans))
    return Assembled(PAGE_BREAK.join(texts), tuple(starts), layout, tuple(notes))


def _in_units(box: Rectangle, scale: float) -> Rectangle:
    x0, y0, x1, y1 = box
    return (x0 / scale, y0 / scale, x1 / scale, y1 / scale)
