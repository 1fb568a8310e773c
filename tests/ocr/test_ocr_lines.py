"""The line builder on hand-made boxes: reading order, columns, skew, and the layout."""

from __future__ import annotations

import math

from thinkjson_edge.pipeline.layout import BoxSpan, Layout, PageInfo
from thinkjson_edge.pipeline.ocr_lines import TextBox, lines_text, page_skew, reading_order

LINE = 20.0  # a line's height in these pages
PITCH = 30.0  # from one line's top to the next


def box(text: str, x: float, row: int, width: float | None = None, top: float = 0) -> TextBox:
    width = width if width is not None else 10.0 * len(text)
    y = top + row * PITCH
    return TextBox.from_rectangle(text, x, y, x + width, y + LINE)


def read(boxes: list[TextBox]) -> str:
    return lines_text(reading_order(boxes))[0]


def test_boxes_of_one_line_are_joined_left_to_right_and_lines_go_down() -> None:
    boxes = [box("327.00", 300, 1), box("TOTAL", 10, 1), box("Receipt 12", 10, 0)]
    assert read(boxes[::-1]) == "Receipt 12\nTOTAL\t327.00"
    assert read(boxes) == "Receipt 12\nTOTAL\t327.00"  # whatever order OCR gives them in


def test_the_gap_between_two_boxes_stays_a_gap() -> None:
    """A currency label and its amount, a time and a date: a tab parts them, a space would
    make one value of the two."""
    boxes = [box("Rounding RM", 10, 0), box("37.45", 300, 0), box("06:34PM", 10, 1),
             box("562004", 150, 1), box("07-02-17", 300, 1)]  # fmt: skip
    assert read(boxes).split("\n") == ["Rounding RM\t37.45", "06:34PM\t562004\t07-02-17"]


def test_one_word_per_line_keeps_the_lines_in_order() -> None:
    words = ["Invoice", "ACME", "Ltd", "2024-03-01", "EUR", "12.50"]
    boxes = [box(word, 40 + 37 * (i % 3), i) for i, word in enumerate(words)]
    assert read(boxes[::-1]) == "\n".join(words)


def test_label_and_amount_rows_of_a_receipt_stay_whole() -> None:
    """A wide gap runs down the page between labels and figures: not a column of prose."""
    rows = [
        ("CASH SALES", ""),
        ("ENGINE OIL", "10.00"),
        ("GREASE FOR TOOLS", "6.00"),
        ("STARTER TALI", "8.00"),
        ("TOTAL SALES :", "327.00"),
        ("CHANGE :", "0.00"),
    ]
    boxes = [box(label, 10, i) for i, (label, _) in enumerate(rows)]
    boxes += [
        box(amount, 400 - 10 * len(amount), i) for i, (_, amount) in enumerate(rows) if amount
    ]
    expected = "\n".join(f"{label}\t{amount}".strip() for label, amount in rows)
    assert read(boxes) == expected


def test_two_columns_of_prose_are_read_column_by_column() -> None:
    left = [
        "The batch was released after",
        "the deviation was closed and",
        "the certificate was signed by",
        "the qualified person on site.",
    ]
    right = [
        "Storage stays below eight",
        "degrees for the whole of the",
        "shelf life given on the label",
        "and in the release record.",
    ]
    title = box("Batch record SAL-1 summary of release", 10, 0, width=560)
    boxes = [title]
    boxes += [box(text, 10, i + 1, width=260) for i, text in enumerate(left)]
    boxes += [box(text, 320, i + 1, width=250) for i, text in enumerate(right)]
    footer = box("Signed and dated by the QA manager on every page", 10, 6, width=560)
    assert read([footer, *boxes[::-1]]) == "\n".join(
        ["Batch record SAL-1 summary of release", *left, *right, footer.text]
    )


def test_columns_with_their_own_line_spacing_are_still_read_whole() -> None:
    left = ["First column line one", "first column line two", "first column line three"]
    right = ["Second column line one", "second column line two", "second column line three",
             "second column line four"]  # fmt: skip
    boxes = [box(text, 10, i, width=240) for i, text in enumerate(left)]
    # The right column sits a third of a line lower and is set tighter.
    boxes += [
        TextBox.from_rectangle(text, 300, 7 + 24 * i, 540, 7 + 24 * i + LINE)
        for i, text in enumerate(right)
    ]
    assert read(boxes).split("\n") == left + right


def test_a_skewed_page_keeps_its_lines() -> None:
    """Rotated by 4 degrees, a line's last word sits lower than the next line's first."""
    angle = math.radians(4)

    def rotated(text: str, x: float, row: int) -> TextBox:
        plain = box(text, x, row)
        corners = tuple(
            (
                px * math.cos(angle) - py * math.sin(angle),
                px * math.sin(angle) + py * math.cos(angle),
            )
            for px, py in plain.quad
        )
        return TextBox(text, corners)  # type: ignore[arg-type]

    lines = [
        ["Lot", "4711", "released", "2024-03-01", "by", "QA"],
        ["Total", "net", "weight", "1200", "kg", "ok"],
    ]
    boxes = [
        rotated(word, 10 + 110 * i, row)
        for row, words in enumerate(lines)
        for i, word in enumerate(words)
    ]
    # Unrotated, the drift over the line is larger than the distance between lines.
    assert boxes[5].centre[1] > boxes[6].centre[1]
    assert math.isclose(page_skew(boxes), angle, abs_tol=1e-6)
    assert read(boxes[::-1]) == "\n".join("\t".join(words) for words in lines)


def test_a_drifting_line_is_followed_from_box_to_box() -> None:
    """Upright boxes (no slant to measure), each a little lower than the one before."""
    words = ["DocNo", "CS0040", "Date", "11/01/2019"]
    boxes = [TextBox.from_rectangle(w, 10 + 90 * i, 100 + 7 * i, 90 + 90 * i, 120 + 7 * i)
             for i, w in enumerate(words)]  # fmt: skip
    below = TextBox.from_rectangle("Cashier USER", 10, 130, 130, 150)
    assert read([below, *boxes]) == "DocNo\tCS0040\tDate\t11/01/2019\nCashier USER"


def test_text_offsets_point_at_each_box() -> None:
    boxes = [box("TOTAL", 10, 0), box("327.00", 300, 0), box("CASH", 10, 1)]
    text, spans = lines_text(reading_order(boxes))
    assert text == "TOTAL\t327.00\nCASH"
    assert [(text[s:e], b.text) for s, e, b in spans] == [
        ("TOTAL", "TOTAL"), ("327.00", "327.00"), ("CASH", "CASH")
    ]  # fmt: skip


def test_empty_boxes_are_dropped() -> None:
    assert reading_order([box("  ", 0, 0)]) == []
    assert lines_text([]) == ("", [])


def test_a_layout_maps_offsets_to_pages_and_the_share_of_a_box() -> None:
    page = PageInfo(1, 500, 800, "px", "ocr")
    text = "TOTAL 327.00\fnext page"
    layout = Layout(
        (page, PageInfo(2, 500, 800, "px", "ocr")),
        (0, 13),
        (BoxSpan(0, 12, 1, (100, 50, 220, 70)), BoxSpan(13, 22, 2, (10, 10, 100, 30))),
    )
    start = text.index("327.00")
    (region,) = layout.regions(start, start + 6)
    assert region.page == 1
    assert region.box == (160.0, 50, 220.0, 70)  # the last half of the box's 12 characters
    assert layout.locate(start, start + 6) == {"page": 1, "box": [160.0, 50.0, 220.0, 70.0]}
    assert layout.page_of(text.index("next")) == 2
    assert layout.locate(13, 17)["page"] == 2
