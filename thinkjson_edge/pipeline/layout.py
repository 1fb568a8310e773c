"""Where the text of a paged document sits on its pages.

A ``Layout`` keeps, for a document read page by page (a PDF, an image), the size of each
page and, for the text that OCR recognised, the box on the page that every character range
came from. A value's character offsets (a copied or grounded value carries them) are so
mapped back to a page and a box, for the report and for ``--highlight``.

Coordinates are in the page's own units, from its top-left corner: pixels for an image,
PDF points (1/72 inch) for a PDF page. A text-layer PDF page has a size but no boxes.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

# Page separator in the text of paged documents (PDF pages, the pages of a TIFF).
PAGE_BREAK = "\f"

# How a page's text was obtained.
READ_BY_TEXT_LAYER = "text"
READ_BY_OCR = "ocr"

# x0, y0, x1, y1 with x0 <= x1 and y0 <= y1, top-left origin.
Rectangle = tuple[float, float, float, float]


@dataclass(frozen=True)
class PageInfo:
    """One page: its number from 1, its size, its units and how its text was read."""

    number: int
    width: float
    height: float
    unit: str  # "px" for an image, "pt" for a PDF page
    read_by: str  # READ_BY_TEXT_LAYER or READ_BY_OCR
    # Pixels of the page image per unit: 1 for an image, the rendering scale for a PDF page.
    scale: float = 1.0

    def to_dict(self) -> dict[str, object]:
        return {
            "number": self.number,
            "width": round(self.width, 2),
            "height": round(self.height, 2),
            "unit": self.unit,
            "read_by": self.read_by,
        }


@dataclass(frozen=True)
class BoxSpan:
    """``text[start:end]`` was recognised in ``box`` on page ``page`` (from 1)."""

    start: int
    end: int
    page: int
    box: Rectangle


@dataclass(frozen=True)
class Region:
    """Part of a value on one page: the box of the characters it covers there."""

    page: int
    box: Rectangle


@dataclass(frozen=True)
class Layout:
    """The pages of a document and the boxes of its recognised text, in text order."""

    pages: tuple[PageInfo, ...]
    page_starts: tuple[int, ...]  # where each page begins in the text (Document.pages)
    spans: tuple[BoxSpan, ...] = ()  # sorted by start, not overlapping

    def page_of(self, offset: int) -> int:
        """The number (from 1) of the page holding character ``offset``."""
        return max(1, bisect.bisect_right(self.page_starts, offset))

    def regions(self, start: int, end: int) -> list[Region]:
        """The boxes of ``text[start:end]``, one per recognised box it touches.

        A value that covers part of a box gets the matching share of the box's width:
        OCR gives one box per run of text, and characters of one font take roughly equal
        widths, which is close enough to point a reviewer at the value.
        """
        found: list[Region] = []
        first = bisect.bisect_right([span.end for span in self.spans], start)
        for span in self.spans[first:]:
            if span.start >= end:
                break
            lo, hi = max(start, span.start), min(end, span.end)
            if hi <= lo:
                continue
            found.append(Region(span.page, _share_of_box(span, lo, hi)))
        return found

    def locate(self, start: int, end: int) -> dict[str, object]:
        """The report's fields for a value at ``text[start:end]``: its page, and where
        the text was recognised, the box around its part on that page."""
        page = self.page_of(start)
        boxes = [region.box for region in self.regions(start, end) if region.page == page]
        if not boxes:
            return {"page": page}
        union = (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )
        return {"page": page, "box": [round(v, 1) for v in union]}


def _share_of_box(span: BoxSpan, lo: int, hi: int) -> Rectangle:
    x0, y0, x1, y1 = span.box
    length = span.end - span.start
    if length <= 0 or (lo, hi) == (span.start, span.end):
        return span.box
    width = x1 - x0
    return (
        x0 + width * (lo - span.start) / length,
        y0,
        x0 + width * (hi - span.start) / length,
        y1,
    )
