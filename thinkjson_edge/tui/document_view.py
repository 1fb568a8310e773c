"""The document pane: the text, wrapped to the pane, with the grounded values marked.

A line-API widget (only the rows on screen are drawn), so a long PDF scrolls as fast as a
receipt. Offsets are the document's own character offsets, the ones grounding reports:
wrapping only decides where each row starts, and control characters are drawn as spaces
one for one, so no offset ever moves.

The wrap width is the pane's content width as laid out (less the vertical scrollbar when
the wrapped text needs one). Until the first layout there is no width, so nothing is
wrapped; after that the text is wrapped again whenever the pane changes size, keeping the
selected span, or else the first row shown, in view.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from thinkjson_edge.pipeline.grounding import Span

_LINE_BREAKS = "\n\f"  # a PDF's pages are separated by form feeds
_ROWS_ABOVE_SELECTION = 3  # context kept above a span the view jumps to


class DocumentView(ScrollView, can_focus=True):
    """A read-only document with highlighted spans; ``select`` jumps to one of them."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"document-view--grounded", "document-view--selected"}

    DEFAULT_CSS = """
    DocumentView {
        background: $surface;
        overflow-x: hidden;
    }
    DocumentView > .document-view--grounded {
        color: $success;
        text-style: underline;
    }
    DocumentView > .document-view--selected {
        background: $accent;
        color: $text;
        text-style: bold;
    }
    """

    def __init__(self, text: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._text = ""
        self._shown = ""
        self._rows: list[tuple[int, int]] = []
        self._row_starts: list[int] = []
        self._spans: list[Span] = []
        self._selected: Span | None = None
        self._wrap_width = 0
        self._fitted_to: Size | None = None  # the content area the rows were made for
        self._jump_pending = False  # a selection made before there was a wrap to scroll in
        self.set_text(text)

    @property
    def text(self) -> str:
        return self._text

    @property
    def selected(self) -> Span | None:
        return self._selected

    @property
    def wrap_width(self) -> int:
        """The width the text is wrapped at (0 until the view has been laid out)."""
        return self._wrap_width

    @property
    def rows(self) -> Sequence[tuple[int, int]]:
        """The wrapped rows as ``(start, end)`` document offsets."""
        return self._rows

    def set_text(self, text: str) -> None:
        self._text = text
        self._shown = "".join(" " if ord(c) < 32 and c not in _LINE_BREAKS else c for c in text)
        self._spans, self._selected = [], None
        self._rows, self._row_starts = [], []  # a new text starts at its top
        self._wrap_width = 0
        self._fitted_to = None
        self._jump_pending = False
        self._rewrap()

    def set_spans(self, spans: Iterable[Span]) -> None:
        """The spans to mark as grounded values."""
        self._spans = sorted(spans, key=lambda s: (s.start, s.end))
        self.refresh()

    def select(self, span: Span | None) -> None:
        """Mark ``span`` as the selected one and scroll it into view (None: clear)."""
        self._selected = span
        self._jump_pending = False
        if span is not None:
            self._rewrap()  # the pane may have been laid out since the last Resize
            if self._rows:
                self._scroll_to_row(self._jump_row(span))
            else:
                self._jump_pending = True  # scrolled to once the text is wrapped
        self.refresh()

    def row_of(self, offset: int) -> int:
        """The wrapped row holding the character at ``offset``."""
        return max(bisect_right(self._row_starts, offset) - 1, 0)

    # -- layout ----------------------------------------------------------------

    def on_resize(self) -> None:
        self._rewrap()

    def render_lines(self, crop: Region) -> list[Strip]:
        # The screen may paint a new layout before this widget has handled its Resize event;
        # wrapping here first means no frame shows rows made for another width.
        self._rewrap()
        return super().render_lines(crop)

    def _content_area(self) -> Size:
        """The area inside border and padding, as laid out (zero before the first layout).

        ``outer_size`` is set by the layout itself, before any Resize event is sent, so it
        is never older than the widget's place on the screen.
        """
        width, height = self.outer_size
        gutter_width, gutter_height = self.styles.gutter.totals
        return Size(max(width - gutter_width, 0), max(height - gutter_height, 0))

    def _rewrap(self) -> None:
        """Wrap the text to the content area, if that area changed since the last wrap."""
        area = self._content_area()
        if not area.width or area == self._fitted_to:
            return
        previous_height = self._fitted_to.height if self._fitted_to else 0
        top_row = self.scroll_offset.y
        # Where the reader was, as document offsets: these survive the re-wrap, row numbers
        # do not.
        anchor = self._rows[top_row][0] if top_row < len(self._rows) else 0
        keep_selection = self._selection_within(top_row, previous_height)

        self._fitted_to = area
        width, rows = self._fit(area)
        if width != self._wrap_width:  # always so after set_text, which zeroes the width
            self._wrap_width = width
            self._rows = rows
            self._row_starts = [start for start, _ in rows]
            self.virtual_size = Size(width, len(rows))

        selected = self._selected
        if self._jump_pending and selected is not None:
            self._jump_pending = False
            top = self._jump_row(selected)
        else:
            top = self.row_of(anchor)
            if keep_selection and selected is not None:
                first, last = self._rows_of(selected)
                if first < top or last >= top + area.height:
                    top = self._jump_row(selected)
        self._scroll_to_row(top)
        self.refresh()

    def _fit(self, area: Size) -> tuple[int, list[tuple[int, int]]]:
        """The wrap width for ``area`` and the rows it gives.

        A vertical scrollbar takes columns from the text, and whether it is shown depends on
        how many rows the wrap makes; so the text is wrapped to the full width first, and
        again beside the scrollbar only if it then overflows the pane.
        """
        styles = self.styles
        bar = styles.scrollbar_size_vertical
        always_bar = styles.overflow_y == "scroll" or (
            styles.overflow_y == "auto" and styles.scrollbar_gutter == "stable"
        )
        width = max(area.width - bar, 1) if always_bar else area.width
        rows = list(_wrap(self._shown, width))
        if styles.overflow_y == "auto" and not always_bar and len(rows) > area.height and bar:
            width = max(area.width - bar, 1)
            rows = list(_wrap(self._shown, width))
        return width, rows

    def _rows_of(self, span: Span) -> tuple[int, int]:
        """The first and last wrapped rows ``span`` covers."""
        return self.row_of(span.start), self.row_of(max(span.end - 1, span.start))

    def _selection_within(self, top: int, height: int) -> bool:
        """Whether any row of the selected span was shown in the rows ``[top, top + height)``."""
        if self._selected is None:
            return False
        first, last = self._rows_of(self._selected)
        return first < top + height and last >= top

    def _jump_row(self, span: Span) -> int:
        """The top row that shows ``span`` with a little context above it."""
        return max(self.row_of(span.start) - _ROWS_ABOVE_SELECTION, 0)

    def _scroll_to_row(self, row: int) -> None:
        # Immediate, so that the next frame already shows the rows for the new wrap; forced,
        # because the scrollbars are only re-evaluated at the next layout, and until then
        # they may not allow a scroll the new virtual size does.
        self.scroll_to(y=row, animate=False, immediate=True, force=True)

    def render_line(self, y: int) -> Strip:
        row = self.scroll_offset.y + y
        if row >= len(self._rows):
            return Strip.blank(self.size.width, self.rich_style)
        start, end = self._rows[row]
        segments = list(self._segments(start, end))
        return Strip(segments).extend_cell_length(self.size.width, self.rich_style)

    def _segments(self, start: int, end: int) -> Iterable[Segment]:
        """The row ``[start, end)`` cut where a marked span begins or ends."""
        base = self.rich_style
        grounded = base + self.get_component_rich_style("document-view--grounded")
        selected = base + self.get_component_rich_style("document-view--selected")
        cuts = {start, end}
        marked = [s for s in self._spans if s.start < end and s.end > start]
        chosen = self._selected
        if chosen is not None and chosen.start < end and chosen.end > start:
            marked.append(chosen)
        for span in marked:
            cuts.update(edge for edge in (span.start, span.end) if start < edge < end)
        edges = sorted(cuts)
        for left, right in pairwise(edges):
            style: Style = base
            if chosen is not None and chosen.start <= left and right <= chosen.end:
                style = selected
            elif any(s.start <= left and right <= s.end for s in marked):
                style = grounded
            yield Segment(self._shown[left:right], style)


def _wrap(text: str, width: int) -> Iterable[tuple[int, int]]:
    """Rows ``(start, end)`` of at most ``width`` characters, broken at spaces if possible."""
    line_start = 0
    for index in range(len(text) + 1):
        if index < len(text) and text[index] not in _LINE_BREAKS:
            continue
        yield from _wrap_line(text, line_start, index, width)
        line_start = index + 1


def _wrap_line(text: str, start: int, end: int, width: int) -> Iterable[tuple[int, int]]:
    if end - start <= width:
        yield start, end
        return
    while end - start > width:
        cut = text.rfind(" ", start, start + width)
        cut = cut + 1 if cut > start else start + width
        yield start, cut
        start = cut
    yield start, end
