"""The document pane: the text, wrapped to the pane, with the grounded values marked.

A line-API widget (only the rows on screen are drawn), so a long PDF scrolls as fast as a
receipt. Offsets are the document's own character offsets, the ones grounding reports:
wrapping only decides where each row starts, and control characters are drawn as spaces
one for one, so no offset ever moves.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from itertools import pairwise
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
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
        self.set_text(text)

    @property
    def text(self) -> str:
        return self._text

    @property
    def selected(self) -> Span | None:
        return self._selected

    def set_text(self, text: str) -> None:
        self._text = text
        self._shown = "".join(" " if ord(c) < 32 and c not in _LINE_BREAKS else c for c in text)
        self._spans, self._selected = [], None
        self._wrap_width = 0  # forces a re-wrap
        self._rewrap()
        self.scroll_home(animate=False)

    def set_spans(self, spans: Iterable[Span]) -> None:
        """The spans to mark as grounded values."""
        self._spans = sorted(spans, key=lambda s: (s.start, s.end))
        self.refresh()

    def select(self, span: Span | None) -> None:
        """Mark ``span`` as the selected one and scroll it into view (None: clear)."""
        self._selected = span
        if span is not None:
            row = self.row_of(span.start)
            self.scroll_to(y=max(row - _ROWS_ABOVE_SELECTION, 0), animate=False)
        self.refresh()

    def row_of(self, offset: int) -> int:
        """The wrapped row holding the character at ``offset``."""
        return max(bisect_right(self._row_starts, offset) - 1, 0)

    # -- layout ----------------------------------------------------------------

    def on_resize(self) -> None:
        self._rewrap()

    def _rewrap(self) -> None:
        width = max(self.scrollable_content_region.width, 20)
        if width == self._wrap_width:
            return
        self._wrap_width = width
        self._rows = list(_wrap(self._shown, width))
        self._row_starts = [start for start, _ in self._rows]
        self.virtual_size = Size(width, len(self._rows))
        self.refresh()

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
