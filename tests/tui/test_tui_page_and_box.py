"""A value's page and box in the review's detail pane, for a real scan read by OCR.

The document is a PDF of two pages, a page with a text layer and the real receipt scan
(``tests/fixtures/scans/006.jpg``), read once by the real OCR; the review is built from a
fixed report over its text, so no model runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from test_tui_review import make_review, select_path
from tui_data import FixedReviewApp, report

from thinkjson_edge.pipeline.documents import Document, read_document
from thinkjson_edge.schema import load_schema
from thinkjson_edge.tui.review import Review, page_and_box

SCAN = Path(__file__).resolve().parents[1] / "fixtures" / "scans" / "006.jpg"  # 457 x 1170 px
NOTE = "Delivery note DN-3 for lot 4711"  # the text-layer page
COMPANY = "SOON HUAT MACHINERY ENTERPRISE"  # near the top of the scan
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"note": {"type": "string"}, "company": {"type": "string"}},
    "required": ["note", "company"],
}
SIZE = (150, 40)


@pytest.fixture(scope="module")
def mixed_pdf(tmp_path_factory: pytest.TempPathFactory) -> Document:
    """Page 1 with a text layer, page 2 the receipt scan as an image only (read by OCR)."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt")
    pdf.add_page(format=(595, 842))
    pdf.set_font("helvetica", size=14)
    pdf.text(72, 100, NOTE)
    pdf.add_page(format=(457, 1170))
    pdf.image(str(SCAN), x=0, y=0, w=457, h=1170)
    path = tmp_path_factory.mktemp("scan") / "mixed.pdf"
    path.write_bytes(bytes(pdf.output()))
    return read_document(path)


def scan_review(document: Document, tmp_path: Path) -> Review:
    """A review whose two values were copied from the document, one from each page."""

    def copied(path: str, text: str) -> dict[str, Any]:
        start = document.text.index(text)
        return {
            "path": path,
            "kind": "string",
            "confidence": 0.9,
            "copied": True,
            "start": start,
            "end": start + len(text),
        }

    values = [copied("/note", NOTE), copied("/company", COMPANY)]
    extracted = {"note": NOTE, "company": COMPANY}
    return Review.from_report(
        document, load_schema(SCHEMA), report(extracted, values=values), tmp_path / "out.json"
    )


async def detail_of(app: FixedReviewApp, path: str) -> str:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()  # the tabs mount their panes after the screen
        await select_path(pilot, path)
        await pilot.pause()
        return str(app.screen.query_one("#detail").render())


async def test_a_value_read_by_ocr_shows_its_page_and_box(
    mixed_pdf: Document, tmp_path: Path
) -> None:
    review = scan_review(mixed_pdf, tmp_path)
    detail = await detail_of(FixedReviewApp(review), "/company")

    found = re.search(r"page (\d+) · box ([\d.]+),([\d.]+)-([\d.]+),([\d.]+) pt", detail)
    assert found, detail
    page, *box = found.groups()
    assert page == "2"  # the scan, after the text-layer page
    assert mixed_pdf.layout is not None
    start = mixed_pdf.text.index(COMPANY)
    located = mixed_pdf.layout.locate(start, start + len(COMPANY))
    assert [float(v) for v in box] == located["box"]  # what the report says
    x0, y0, x1, y1 = (float(v) for v in box)
    # On the scan's page, around the company's line near its top.
    assert 0 <= x0 < x1 <= 457 and 0 <= y0 < y1 < 1170 / 4


async def test_a_text_layer_page_shows_its_page_without_a_box(
    mixed_pdf: Document, tmp_path: Path
) -> None:
    review = scan_review(mixed_pdf, tmp_path)
    detail = await detail_of(FixedReviewApp(review), "/note")
    assert "page 1" in detail.splitlines()
    assert "box" not in detail


async def test_a_text_document_shows_no_page_or_box(tmp_path: Path) -> None:
    review = make_review(tmp_path)
    detail = await detail_of(FixedReviewApp(review), "/company")
    assert "KEDAI RUNCIT AMAN" in detail  # the detail is there, with nothing about pages
    assert "page" not in detail and "box" not in detail
    assert page_and_box(None, review.spans["/company"]) == ""
