"""Scans through the real command line: refusals (exit 4), --highlight, and one receipt read
from its image and from a scanned PDF giving the same object with the real model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scan_material import RECEIPT, SCHEMA, TOTAL_LINE, scanned_pdf

from thinkjson_edge.cli.exit_codes import EXIT_INPUT, EXIT_OK, EXIT_USAGE
from thinkjson_edge.pipeline.documents import Document
from thinkjson_edge.pipeline.highlight import Highlight, write_highlight
from thinkjson_edge.pipeline.ocr import recognise


def extract(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``thinkjson-edge extract ARGS`` as a user runs it, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "thinkjson_edge", "extract", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def refusal(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("thinkjson-edge: error:")]
    assert result.stdout == ""
    return line


@pytest.mark.parametrize(
    ("name", "make", "env", "words"),
    [
        ("truncated.jpg", lambda b: b[: len(b) // 2], {}, ["JPEG image", "truncated or damaged"]),
        (
            "corrupt.png",
            lambda b: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
            {},
            ["PNG image", "cannot be decoded"],
        ),
        (
            "large.jpg",
            lambda b: b,
            {"THINKJSON_MAX_IMAGE_PIXELS": "100000"},
            ["457 by 1,170 = 534,690 pixels", "THINKJSON_MAX_IMAGE_PIXELS"],
        ),
        ("heavy.jpg", lambda b: b, {"THINKJSON_MAX_DOCUMENT_MB": "0.1"}, ["larger than", "0.1 MB"]),
    ],
)
def test_damaged_and_oversized_images_exit_4_with_what_was_found(
    tmp_path: Path, name: str, make, env: dict[str, str], words: list[str]
) -> None:
    path = tmp_path / name
    path.write_bytes(make(RECEIPT.read_bytes()))
    line = refusal(extract(path, "--schema", SCHEMA, "--device", "cpu", env=env), EXIT_INPUT)
    for word in words:
        assert word in line, line


def test_a_pixel_limit_that_is_not_a_number_is_wrong_usage(tmp_path: Path) -> None:
    result = extract(RECEIPT, "--schema", SCHEMA, env={"THINKJSON_MAX_IMAGE_PIXELS": "lots"})
    assert "THINKJSON_MAX_IMAGE_PIXELS='lots'" in refusal(result, EXIT_USAGE)


def test_highlight_needs_a_paged_document_and_a_pdf_or_png_name(tmp_path: Path) -> None:
    text = tmp_path / "note.txt"
    text.write_text("Total 5.00\n", encoding="utf-8")
    line = refusal(extract(text, "--schema", SCHEMA, "--highlight", tmp_path / "h.png"), EXIT_USAGE)
    assert "draws on page images" in line
    line = refusal(
        extract(RECEIPT, "--schema", SCHEMA, "--highlight", tmp_path / "h.jpg"), EXIT_USAGE
    )
    assert ".pdf or .png" in line


def test_the_box_of_a_value_is_drawn_where_the_value_is(tmp_path: Path, receipt: Document) -> None:
    from PIL import Image

    layout = receipt.layout
    assert layout is not None
    start = receipt.text.index(TOTAL_LINE) + len(TOTAL_LINE) - len("327.00")
    (region,) = layout.regions(start, start + len("327.00"))
    # What OCR reads inside the box is the value.
    original = Image.open(RECEIPT).convert("RGB")
    x0, y0, x1, y1 = region.box
    crop = original.crop((int(x0) - 4, int(y0) - 4, int(x1) + 4, int(y1) + 4))
    assert "327.00" in " ".join(box.text for box in recognise(crop))
    assert x1 - x0 < 120  # the share of its line's box, not the whole line

    out = tmp_path / "highlight.png"
    assert write_highlight(receipt, [Highlight(region.page, region.box, "/total")], out) == 1
    drawn = Image.open(out).convert("RGB")
    assert drawn.size == original.size
    changed = [
        (x, y)
        for x in range(0, drawn.width, 2)
        for y in range(0, drawn.height, 2)
        if drawn.getpixel((x, y)) != original.getpixel((x, y))
    ]
    xs, ys = [x for x, _ in changed], [y for _, y in changed]
    # Only the outline (and its label just above it) changed, around the value.
    assert x0 - 10 <= min(xs) and max(xs) <= max(x1 + 10, x0 + 60)
    assert y0 - 30 <= min(ys) and max(ys) <= y1 + 10
    assert drawn.getpixel((int((x0 + x1) / 2), int(y1) + 3)) == (220, 20, 60)

    pdf = tmp_path / "highlight.pdf"
    assert write_highlight(receipt, [Highlight(region.page, region.box, "/total")], pdf) == 1
    assert pdf.read_bytes().startswith(b"%PDF")


@pytest.mark.model
def test_a_receipt_and_its_scanned_pdf_give_the_same_object(tmp_path: Path) -> None:
    pdf = scanned_pdf(tmp_path / "receipt.pdf", RECEIPT)
    outputs = {}
    for document in (RECEIPT, pdf):
        report = tmp_path / f"{document.suffix[1:]}-report.json"
        highlight = tmp_path / f"{document.suffix[1:]}-highlight.png"
        result = extract(
            document, "--schema", SCHEMA, "--device", "cpu", "--no-think", "--attempt-timeout", "0",
            "--report-file", report, "--highlight", highlight,
        )  # fmt: skip
        assert result.returncode == EXIT_OK, result.stderr[-2000:]
        assert "OCR page 1/1" in result.stderr
        outputs[document.suffix] = json.loads(result.stdout)
        record = json.loads(report.read_text(encoding="utf-8"))
        assert record["pages"][0]["read_by"] == "ocr"
        kept = record["attempts"][record["chosen_attempt"] - 1]
        located = [v for v in kept["values"] if v["copied"]]
        assert located and all(v["page"] == 1 and len(v["box"]) == 4 for v in located)
        assert highlight.read_bytes().startswith(b"\x89PNG")
    assert outputs[".jpg"] == outputs[".pdf"]
    assert set(outputs[".jpg"]) == {"company", "date", "address", "total"}
