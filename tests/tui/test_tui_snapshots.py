"""SVG snapshots of the review screens (``pytest --snapshot-update`` after a deliberate change).

The review is built from a fixed report, not from a model run, so the pictures depend on
the interface alone. Nothing on screen may depend on the machine: the document's source
is a bare name, and the model is named but never loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from tui_data import (
    EXTRACTED,
    RECEIPT,
    SCHEMA,
    VALUES,
    WIDE_EXTRACTED,
    WIDE_RECEIPT,
    WIDE_SCHEMA,
    FixedReviewApp,
    report,
)

from thinkjson_edge.pipeline.documents import Document
from thinkjson_edge.schema import load_schema
from thinkjson_edge.tui.result_tree import ResultTree
from thinkjson_edge.tui.review import Review

SIZE = (130, 34)


@pytest.fixture
def review(tmp_path: Path) -> Review:
    document = Document(RECEIPT, source="receipt.txt")
    second = {**EXTRACTED, "total": -1}
    return Review.from_report(
        document,
        load_schema(SCHEMA),
        report(second=second, values=VALUES),
        tmp_path / "receipt.json",
    )


@pytest.fixture
def wide_review(tmp_path: Path) -> Review:
    document = Document(WIDE_RECEIPT, source="wide-receipt.txt")
    return Review.from_report(
        document,
        load_schema(WIDE_SCHEMA),
        report(WIDE_EXTRACTED),
        tmp_path / "wide-receipt.json",
    )


async def select(pilot: Pilot[Any], path: str) -> None:
    await pilot.pause()  # the tabs mount their panes after the screen
    tree = pilot.app.screen.query_one(ResultTree)
    tree.focus()
    for _ in range(32):
        if tree.cursor_node is not None and tree.cursor_node.data == path:
            break
        await pilot.press("down")
    await pilot.pause()


def test_review_screen_with_a_value_not_in_the_document(review: Review, snap_compare) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await select(pilot, "/items/1/name")

    assert snap_compare(FixedReviewApp(review), terminal_size=SIZE, run_before=run_before)


def test_review_screen_after_an_edit_that_breaks_the_schema(review: Review, snap_compare) -> None:
    review.set_value("/total", "minus")

    async def run_before(pilot: Pilot[Any]) -> None:
        await select(pilot, "/total")

    assert snap_compare(FixedReviewApp(review), terminal_size=SIZE, run_before=run_before)


def test_c_goes_to_the_least_confident_values_first(review: Review, snap_compare) -> None:
    """Twice: past "SUGAR" (0.04) to its amount (0.07), marked ! and in the ! colour."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        await pilot.press("c", "c")
        await pilot.pause()

    assert snap_compare(FixedReviewApp(review), terminal_size=SIZE, run_before=run_before)


def test_a_copied_value_shows_its_confidence_and_span(review: Review, snap_compare) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await select(pilot, "/date")

    assert snap_compare(FixedReviewApp(review), terminal_size=SIZE, run_before=run_before)


def test_attempts_side_by_side(review: Review, snap_compare) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        pilot.app.screen.query_one("TabbedContent").active = "attempts-tab"
        await pilot.pause()

    assert snap_compare(FixedReviewApp(review), terminal_size=SIZE, run_before=run_before)


def test_help_screen(review: Review, snap_compare) -> None:
    assert snap_compare(FixedReviewApp(review), terminal_size=SIZE, press=["question_mark"])


def test_light_theme(review: Review, snap_compare) -> None:
    assert snap_compare(FixedReviewApp(review), terminal_size=SIZE, press=["ctrl+t"])


@pytest.mark.parametrize("size", [(180, 50), (100, 40)], ids=["180x50", "100x40"])
def test_the_document_wraps_to_the_pane(
    wide_review: Review, size: tuple[int, int], snap_compare
) -> None:
    """Wide: the address is one row. Narrow: it wraps at a space, highlighted on both rows."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await select(pilot, "/address")

    assert snap_compare(FixedReviewApp(wide_review), terminal_size=size, run_before=run_before)
