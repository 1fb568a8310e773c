"""Recognised text boxes -> lines of text in the order a person reads the page.

OCR gives boxes in no useful order. Boxes on one visual line are joined left to right
with a tab, and lines go top to bottom. The detector parts a line into boxes only at a gap
wider than a word space, the gap between a label and its value ("Rounding RM", then
"37.45") or between a time and a date; a tab keeps that gap in the text, where one space
would run the two together ("RM 37.45"). Two things get in the way:

- Skew: a page scanned at a slant has lines that drift up or down across the page. The
  slant is measured from the boxes' own edges and taken out before lines are grouped,
  and each box joins the line of its left neighbour when they overlap vertically, so a
  line is followed even where it drifts.
- Columns: text set in columns must be read column by column, but a receipt's
  "TOTAL ...... 327.00" must stay on one line although a wide gap parts label and value.
  A stretch of lines is read as columns only when a gutter runs down at least three of
  them, the text on both sides of it reads like prose (words, mostly letters), and the
  right column's lines start at one margin. Figures in a right-hand column do not read
  like prose, so label-and-amount rows stay whole. Columns inside a column are found
  the same way.

The module is pure: it knows nothing of images or of the OCR engine.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from thinkjson_edge.pipeline.layout import Rectangle

Point = tuple[float, float]

# Slants under this are noise of the detector, above the other a rotated page (not handled).
_MIN_SKEW = math.radians(0.3)
_MAX_SKEW = math.radians(20)
_SAME_LINE_OVERLAP = 0.5  # of the lower box's height, for two boxes to share a line
_MIN_GUTTER_HEIGHTS = 1.0  # a gutter is at least one line height wide
_MIN_COLUMN_ROWS = 3
_PROSE_SHARE = 0.6  # of a column's lines must read like prose
_PROSE_WORDS = 3
_PROSE_LETTERS = 0.6
_MARGIN_SHARE = 0.6  # of the right column's lines start at its margin

BOX_GAP = "\t"  # between two boxes of one line (see above)


@dataclass(frozen=True)
class TextBox:
    """Text recognised in a quadrilateral of the page (corners clockwise from top-left)."""

    text: str
    quad: tuple[Point, Point, Point, Point]
    score: float = 1.0

    @classmethod
    def from_rectangle(
        cls, text: str, x0: float, y0: float, x1: float, y1: float, score: float = 1.0
    ) -> TextBox:
        return cls(text, ((x0, y0), (x1, y0), (x1, y1), (x0, y1)), score)

    @property
    def rectangle(self) -> Rectangle:
        """The upright rectangle around the quadrilateral."""
        xs = [p[0] for p in self.quad]
        ys = [p[1] for p in self.quad]
        return (min(xs), min(ys), max(xs), max(ys))

    @property
    def width(self) -> float:
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = self.quad
        return (math.dist((x0, y0), (x1, y1)) + math.dist((x3, y3), (x2, y2))) / 2

    @property
    def height(self) -> float:
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = self.quad
        return max((math.dist((x0, y0), (x3, y3)) + math.dist((x1, y1), (x2, y2))) / 2, 1e-6)

    @property
    def slant(self) -> float:
        """The angle of the box's top and bottom edges (radians, y grows downwards)."""
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = self.quad
        return math.atan2((y1 - y0) + (y2 - y3), (x1 - x0) + (x2 - x3))

    @property
    def centre(self) -> Point:
        return (sum(p[0] for p in self.quad) / 4, sum(p[1] for p in self.quad) / 4)


@dataclass(frozen=True)
class _Placed:
    """A box in the page's deskewed frame: centre, height and horizontal extent."""

    box: TextBox
    x: float
    y: float
    height: float
    left: float
    right: float

    @property
    def top(self) -> float:
        return self.y - self.height / 2

    @property
    def bottom(self) -> float:
        return self.y + self.height / 2


def reading_order(boxes: Sequence[TextBox]) -> list[list[TextBox]]:
    """The page's lines in reading order, each a list of boxes from left to right."""
    kept = [box for box in boxes if box.text.strip()]
    if not kept:
        return []
    skew = page_skew(kept)
    placed = [_place(box, skew) for box in kept]
    return [[p.box for p in line] for line in _read(placed)]


def lines_text(lines: Sequence[Sequence[TextBox]]) -> tuple[str, list[tuple[int, int, TextBox]]]:
    """The text of lines (boxes joined by a tab, lines by a newline) and, for each box,
    the range of the text it gave."""
    parts: list[str] = []
    spans: list[tuple[int, int, TextBox]] = []
    offset = 0
    for number, line in enumerate(lines):
        if number:
            parts.append("\n")
            offset += 1
        for index, box in enumerate(line):
            if index:
                parts.append(BOX_GAP)
                offset += len(BOX_GAP)
            text = " ".join(box.text.split())
            parts.append(text)
            spans.append((offset, offset + len(text), box))
            offset += len(text)
    return "".join(parts), spans


def page_skew(boxes: Sequence[TextBox]) -> float:
    """The page's slant: the median slant of the boxes long enough to show one."""
    slants = [box.slant for box in boxes if box.width >= 2 * box.height]
    if not slants:
        return 0.0
    skew = statistics.median(slants)
    return skew if _MIN_SKEW <= abs(skew) <= _MAX_SKEW else 0.0


def _place(box: TextBox, skew: float) -> _Placed:
    cx, cy = box.centre
    cos, sin = math.cos(skew), math.sin(skew)
    x, y = cx * cos + cy * sin, -cx * sin + cy * cos  # rotated back by the skew
    half = box.width / 2
    return _Placed(box, x, y, box.height, x - half, x + half)


def _read(boxes: list[_Placed]) -> list[list[_Placed]]:
    """Lines in reading order, reading column by column where the page is set in columns."""
    rows = _rows(boxes)
    lines: list[list[_Placed]] = []
    at = 0
    while at < len(rows):
        columns = _column_run(rows, at)
        if columns is None:
            lines.append(rows[at])
            at += 1
            continue
        end, left, right = columns
        lines += _read(left)
        lines += _read(right)
        at = end
    return lines


def _rows(boxes: list[_Placed]) -> list[list[_Placed]]:
    """Boxes grouped into visual lines, top to bottom, each left to right.

    Taken left to right, a box joins the line whose rightmost box it overlaps most
    vertically; following neighbours keeps a line together where it drifts.
    """
    rows: list[list[_Placed]] = []
    for box in sorted(boxes, key=lambda b: (b.left, b.y)):
        best, best_overlap = None, _SAME_LINE_OVERLAP
        for row in rows:
            overlap = _vertical_overlap(row[-1], box)
            if overlap >= best_overlap:
                best, best_overlap = row, overlap
        if best is None:
            rows.append([box])
        else:
            best.append(box)
    return sorted(rows, key=lambda row: statistics.median(b.y for b in row))


def _vertical_overlap(a: _Placed, b: _Placed) -> float:
    shared = min(a.bottom, b.bottom) - max(a.top, b.top)
    return shared / min(a.height, b.height)


def _column_run(
    rows: list[list[_Placed]], at: int
) -> tuple[int, list[_Placed], list[_Placed]] | None:
    """Columns starting at row ``at``: (the row after them, the left and right column's
    boxes), the longest run any gutter of that row gives; None when there are none."""
    line_height = statistics.median(b.height for row in rows for b in row)
    min_gutter = _MIN_GUTTER_HEIGHTS * line_height
    best: tuple[int, list[_Placed], list[_Placed]] | None = None
    row = rows[at]
    for before, after in itertools.pairwise(row):
        if after.left - before.right < min_gutter:
            continue
        gutter = (before.right, after.left)
        end, lefts, rights = at, [], []
        while end < len(rows):
            split = _split(rows[end], gutter, min_gutter)
            if split is None:
                break
            gutter, left, right = split
            lefts.append(left)
            rights.append(right)
            end += 1
        if _reads_as_columns(lefts, rights, line_height) and (best is None or end > best[0]):
            best = (end, [b for part in lefts for b in part], [b for part in rights for b in part])
    return best


def _split(
    row: list[_Placed], gutter: tuple[float, float], min_gutter: float
) -> tuple[tuple[float, float], list[_Placed], list[_Placed]] | None:
    """The row's boxes on each side of the gutter and the gutter narrowed to fit them;
    None when a box crosses it or it narrows below ``min_gutter``."""
    middle = (gutter[0] + gutter[1]) / 2
    left = [b for b in row if b.x < middle]
    right = [b for b in row if b.x >= middle]
    start = max([gutter[0], *(b.right for b in left)])
    end = min([gutter[1], *(b.left for b in right)])
    if end - start < min_gutter:
        return None
    return (start, end), left, right


def _reads_as_columns(
    lefts: list[list[_Placed]], rights: list[list[_Placed]], line_height: float
) -> bool:
    left_lines = [part for part in lefts if part]
    right_lines = [part for part in rights if part]
    if min(len(left_lines), len(right_lines)) < _MIN_COLUMN_ROWS:
        return False
    if not (_prose(left_lines) and _prose(right_lines)):
        return False
    margin = min(part[0].left for part in right_lines)
    at_margin = sum(part[0].left - margin <= line_height for part in right_lines)
    return at_margin >= _MARGIN_SHARE * len(right_lines)


def _prose(lines: list[list[_Placed]]) -> bool:
    """Whether most lines are runs of words, mostly letters (not figures or labels)."""
    prose = 0
    for line in lines:
        text = " ".join(b.box.text for b in line)
        visible = [c for c in text if not c.isspace()]
        letters = sum(c.isalpha() for c in visible)
        words = len(text.split())
        prose += words >= _PROSE_WORDS and letters >= _PROSE_LETTERS * max(len(visible), 1)
    return prose >= _PROSE_SHARE * len(lines)
