"""The document pane follows the terminal's size: wrap width, scroll position, highlights.

The review is built from a fixed report (no model), and the terminal is resized with the
Pilot; what is checked is read back from the rows the view draws.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from test_tui_snapshots import FixedReviewApp, select
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from tui_data import MIDDLE_ITEM, WIDE_ADDRESS, WIDE_RECEIPT, WIDE_SCHEMA, report

from thinkjson_edge.pipeline.documents import Document
from thinkjson_edge.pipeline.grounding import Span
from thinkjson_edge.schema import load_schema
from thinkjson_edge.tui.document_view import DocumentView
from thinkjson_edge.tui.review import Review

COMPANY = "SOON HUAT MACHINERY ENTERPRISE"
WIDE = (180, 50)
NARROW = (100, 40)
TINY = (60, 20)


@pytest.fixture
def review(tmp_path: Path) -> Review:
    document = Document(WIDE_RECEIPT, source="wide-receipt.txt")
    extracted = {
        "company": COMPANY,
        "address": WIDE_ADDRESS,
        "items": [{"name": MIDDLE_ITEM, "amount": 37.5}],
    }
    return Review.from_report(
        document, load_schema(WIDE_SCHEMA), report(extracted), tmp_path / "out.json"
    )


async def resize(pilot: Pilot[Any], size: tuple[int, int]) -> None:
    await pilot.resize_terminal(*size)
    await pilot.pause()  # the layout, then the view's own Resize event
    await pilot.pause()


def rows_holding(view: DocumentView, text: str) -> list[str]:
    """The wrapped rows that ``text`` (which occurs once in the document) is drawn on."""
    start = view.text.index(text)
    first, last = view.row_of(start), view.row_of(start + len(text) - 1)
    return [view.text[a:b] for a, b in view.rows[first : last + 1]]


def visible_rows(view: DocumentView) -> range:
    top = view.scroll_offset.y
    return range(top, top + view.scrollable_content_region.height)


def highlighted_on_screen(view: DocumentView) -> str:
    """The text drawn in the selected span's style, over every row on screen."""
    selected = view.rich_style + view.get_component_rich_style("document-view--selected")
    return "".join(
        segment.text
        for y in range(view.scrollable_content_region.height)
        for segment in view.render_line(y)
        if segment.style == selected
    )


def assert_wrapped_to_the_pane(view: DocumentView) -> None:
    pane = view.scrollable_content_region.width  # inside border, beside any scrollbar
    assert view.wrap_width == pane
    assert view.virtual_size.width == pane
    assert all(end - start <= pane for start, end in view.rows)
    # Rows never overlap and stay in order, so each offset maps to exactly one row.
    assert all(a[1] <= b[0] for a, b in pairwise(view.rows))


async def test_the_wrap_follows_the_pane_width_both_ways(review: Review) -> None:
    app = FixedReviewApp(review)
    async with app.run_test(size=WIDE) as pilot:
        await select(pilot, "/address")
        view = app.screen.query_one(DocumentView)

        assert view.wrap_width > 80  # the 88-column pane, not a fallback width
        assert_wrapped_to_the_pane(view)
        assert rows_holding(view, COMPANY) == [COMPANY]
        assert rows_holding(view, WIDE_ADDRESS) == [WIDE_ADDRESS]
        assert highlighted_on_screen(view) == WIDE_ADDRESS

        await resize(pilot, NARROW)
        assert view.wrap_width < len(WIDE_ADDRESS)
        assert_wrapped_to_the_pane(view)
        assert rows_holding(view, COMPANY) == [COMPANY]  # shorter than the pane: whole
        address_rows = rows_holding(view, WIDE_ADDRESS)
        assert len(address_rows) == 2
        assert address_rows[0].endswith(" ")  # broken at a space, not inside a word
        assert "".join(address_rows) == WIDE_ADDRESS
        # The span's offsets land on both of its rows, and on nothing else.
        assert highlighted_on_screen(view) == WIDE_ADDRESS

        await resize(pilot, WIDE)
        assert view.wrap_width > 80
        assert_wrapped_to_the_pane(view)
        assert rows_holding(view, WIDE_ADDRESS) == [WIDE_ADDRESS]
        assert highlighted_on_screen(view) == WIDE_ADDRESS


async def test_a_document_that_fits_uses_the_columns_of_the_absent_scrollbar(
    review: Review,
) -> None:
    app = FixedReviewApp(review)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        view = app.screen.query_one(DocumentView)
        assert view.show_vertical_scrollbar  # 49 lines in a 46-row pane
        pane = view.content_region.width
        assert view.wrap_width == pane - view.styles.scrollbar_size_vertical

        view.set_text("SHORT RECEIPT\nTOTAL 1.00\n")
        await pilot.pause()
        await pilot.pause()
        assert not view.show_vertical_scrollbar
        assert view.wrap_width == pane  # no Resize came, yet the width is the whole pane


async def test_the_selected_span_stays_in_view_and_highlighted_after_resizes(
    review: Review,
) -> None:
    app = FixedReviewApp(review)
    async with app.run_test(size=WIDE) as pilot:
        await select(pilot, "/items/0/name")
        view = app.screen.query_one(DocumentView)
        assert view.selected is not None
        assert view.text[view.selected.start : view.selected.end] == MIDDLE_ITEM

        for size in (NARROW, TINY, WIDE, TINY):
            await resize(pilot, size)
            assert_wrapped_to_the_pane(view)
            first = view.row_of(view.selected.start)
            last = view.row_of(view.selected.end - 1)
            shown = visible_rows(view)
            assert first in shown and last in shown, (size, first, last, shown)
            assert highlighted_on_screen(view) == MIDDLE_ITEM, size


async def test_a_resize_keeps_the_reading_position_without_a_selection(review: Review) -> None:
    app = FixedReviewApp(review)
    async with app.run_test(size=NARROW) as pilot:
        await pilot.pause()
        view = app.screen.query_one(DocumentView)
        assert view.selected is None
        line = "STEEL BOLT M10 x 50MM"
        view.scroll_to(y=view.row_of(view.text.index(line)), animate=False, immediate=True)
        await pilot.pause()
        top_start = view.rows[view.scroll_offset.y][0]
        assert view.text[top_start:].startswith(line)

        await resize(pilot, TINY)  # every item line wraps now: row numbers double
        top_start = view.rows[view.scroll_offset.y][0]
        assert view.text[top_start:].startswith(line)


class SelectsBeforeLayout(App[None]):
    """A bare document view, given its text and a selection before it has a size."""

    def __init__(self, text: str, span: Span) -> None:
        super().__init__()
        self.text, self.span = text, span

    def compose(self) -> ComposeResult:
        yield DocumentView()

    def on_mount(self) -> None:
        view = self.query_one(DocumentView)
        view.set_text(self.text)
        view.select(self.span)
        assert view.wrap_width == 0  # nothing is wrapped at a width it does not have yet


async def test_a_selection_made_before_layout_is_scrolled_to_once_wrapped() -> None:
    text = WIDE_RECEIPT + "".join(f"NOTE {n}\n" for n in range(100))  # scrolls past the item
    start = text.index(MIDDLE_ITEM)
    app = SelectsBeforeLayout(text, Span(start, start + len(MIDDLE_ITEM), "exact"))
    async with app.run_test(size=(40, 20)) as pilot:
        await pilot.pause()
        view = app.query_one(DocumentView)
        assert_wrapped_to_the_pane(view)
        assert view.wrap_width < 44  # the item lines wrap, so rows and lines differ
        assert view.scroll_offset.y == view.row_of(start) - 3  # the context kept above it
        assert highlighted_on_screen(view) == MIDDLE_ITEM
