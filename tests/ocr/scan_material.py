"""Shared material of the OCR tests: a real receipt scan, and documents made from it.

Helpers, imported by name (a conftest.py is not importable reliably across folders).
"""

from __future__ import annotations

import io
from pathlib import Path

from thinkjson_edge.evaluation.text_errors import edit_distance, spaced

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sroie"
RECEIPT = FIXTURES.parent / "scans" / "006.jpg"  # 457 x 1170 pixels
TRANSCRIPT = FIXTURES / "006.txt"
LOGO_RECEIPT = RECEIPT.parent / "409.jpg"  # a logo above the company name
SCHEMA = FIXTURES / "schema.json"
# One line of RECEIPT as OCR reads it: label and amount, two boxes parted by a tab.
TOTAL_LINE = "Total Sales :\t327.00"


def error_rate(text: str, reference: str) -> float:
    """Character error rate of ``text`` against ``reference``, whitespace and case aside."""
    a, b = spaced(text), spaced(reference)
    return edit_distance(a, b) / max(len(b), 1)


def scanned_pdf(path: Path, *images: Path | None) -> Path:
    """A PDF with one page per image (the page the image's size at 72 dpi, image only); a
    None makes a page with a line of real text instead (a text layer)."""
    from fpdf import FPDF
    from PIL import Image

    pdf = FPDF(unit="pt")
    for image in images:
        if image is None:
            pdf.add_page(format=(595, 842))
            pdf.set_font("helvetica", size=14)
            pdf.text(72, 100, "Delivery note DN-3 for lot 4711")
            continue
        with Image.open(image) as opened:
            width, height = opened.size
        pdf.add_page(format=(width, height))
        pdf.image(str(image), x=0, y=0, w=width, h=height)
    path.write_bytes(bytes(pdf.output()))
    return path


def png_bytes(width: int, height: int, colour: str = "white") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()
