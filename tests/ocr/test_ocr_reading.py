"""Reading scans: a real receipt, scanned and mixed PDFs, TIFF pages, blank pages, limits."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from scan_material import (
    LOGO_RECEIPT,
    RECEIPT,
    TOTAL_LINE,
    TRANSCRIPT,
    error_rate,
    png_bytes,
    scanned_pdf,
)

from thinkjson_edge.errors import InputError
from thinkjson_edge.pipeline.documents import PAGE_BREAK, Document, ReadOptions, read_document
from thinkjson_edge.pipeline.reading import PageRead


def test_a_real_receipt_scan_reads_close_to_its_transcript(receipt: Document) -> None:
    assert receipt.kind == "image"
    assert error_rate(receipt.text, TRANSCRIPT.read_text(encoding="utf-8")) < 0.15
    # The key values, spaces included (the recognition model keeps the spaces between words).
    for value in ("SOON HUAT MACHINERY ENTERPRISE", "11/01/2019", "327.00", "JOHOR"):
        assert value in receipt.text
    lines = receipt.text.splitlines()
    assert lines.index("SOON HUAT MACHINERY ENTERPRISE") < lines.index("CASH SALES")
    assert TOTAL_LINE in lines  # label and amount on one line
    layout = receipt.layout
    assert layout is not None
    (page,) = layout.pages
    assert (page.number, page.width, page.height, page.unit, page.read_by) == (
        1, 457, 1170, "px", "ocr"
    )  # fmt: skip
    assert receipt.pages == (0,)
    assert receipt.notes == ()


def test_every_box_of_the_layout_lies_on_the_page_and_covers_its_text(receipt: Document) -> None:
    layout = receipt.layout
    assert layout is not None
    covered = sum(span.end - span.start for span in layout.spans)
    assert covered == len(receipt.text.replace("\n", "").replace("\t", "").replace(" ", "")) + sum(
        receipt.text[span.start : span.end].count(" ") for span in layout.spans
    )
    for span in layout.spans:
        x0, y0, x1, y1 = span.box
        assert 0 <= x0 < x1 <= 457 and 0 <= y0 < y1 <= 1170
    # The company name is at the top of the receipt, the total below the middle.
    name = receipt.text.index("SOON HUAT")
    total = receipt.text.index(TOTAL_LINE)
    assert layout.locate(name, name + 9)["box"][1] < 200  # type: ignore[index]
    assert layout.locate(total, total + len(TOTAL_LINE))["box"][1] > 585  # type: ignore[index]


def test_a_logo_read_as_unsure_letters_is_left_out() -> None:
    """The recogniser reads the logo of receipt 409 as "Va", "1 fect" and "3 llatd 1." with
    scores of 0.57 to 0.70, and the model took "Va" for the company; text read that unsurely
    is left out, the printed lines around it are kept."""
    text = read_document(LOGO_RECEIPT).text
    assert text.splitlines()[:3] == [
        "3\t180077", "UROKO JAPANESE CUISINE SDN BHD", "22A-1, JALAN 17/54,"
    ]  # fmt: skip
    assert {"Va", "fect", "llatd"}.isdisjoint(text.split())


def test_a_scanned_pdf_reads_as_the_scan_it_holds(tmp_path: Path, receipt: Document) -> None:
    pages: list[PageRead] = []
    document = read_document(
        scanned_pdf(tmp_path / "scan.pdf", RECEIPT), ReadOptions(on_page=pages.append)
    )
    assert document.kind == "pdf"
    assert document.text == receipt.text  # rendered at the scan's own resolution
    assert document.layout is not None
    (page,) = document.layout.pages
    assert (page.unit, page.read_by, round(page.width), round(page.height)) == (
        "pt",
        "ocr",
        457,
        1170,
    )
    assert [(p.page, p.pages, p.characters) for p in pages] == [(1, 1, len(receipt.text))]


def test_a_mixed_pdf_uses_the_text_layer_where_there_is_one(
    tmp_path: Path, receipt: Document
) -> None:
    path = scanned_pdf(tmp_path / "mixed.pdf", None, RECEIPT)
    document = read_document(path)
    first, second = document.text.split(PAGE_BREAK)
    assert first.strip() == "Delivery note DN-3 for lot 4711"
    assert second == receipt.text
    assert document.pages == (0, len(first) + 1)
    assert document.layout is not None
    assert [p.read_by for p in document.layout.pages] == ["text", "ocr"]
    assert [round(p.width) for p in document.layout.pages] == [595, 457]
    assert {span.page for span in document.layout.spans} == {2}  # only OCR'd text has boxes
    total = document.text.index("327.00")
    assert document.layout.locate(total, total + 6)["page"] == 2

    # never: the scanned page stays empty; always: the text page is read by OCR as well.
    unread = read_document(path, ReadOptions(ocr="never"))
    assert unread.text.split(PAGE_BREAK)[1] == ""
    both = read_document(path, ReadOptions(ocr="always"))
    assert [p.read_by for p in both.layout.pages] == ["ocr", "ocr"]  # type: ignore[union-attr]
    assert "Delivery note DN-3" in both.text.split(PAGE_BREAK)[0]


def test_a_multi_page_tiff_is_read_page_by_page_and_a_blank_page_is_noted(tmp_path: Path) -> None:
    from PIL import Image

    scan = Image.open(RECEIPT)
    blank = Image.new("RGB", scan.size, "white")
    path = tmp_path / "batch.tiff"
    scan.save(path, "TIFF", save_all=True, append_images=[blank, scan])
    pages: list[PageRead] = []
    document = read_document(path, ReadOptions(on_page=pages.append))
    first, empty, third = document.text.split(PAGE_BREAK)
    assert "327.00" in first and first == third
    assert empty == ""
    assert [(p.page, p.pages) for p in pages] == [(1, 3), (2, 3), (3, 3)]
    assert len(document.notes) == 1 and document.notes[0].startswith(
        "page 2: OCR recognised no text"
    )


@pytest.mark.parametrize("suffix", ["png", "bmp", "webp"])
def test_other_image_formats_are_read(tmp_path: Path, suffix: str) -> None:
    from PIL import Image

    path = tmp_path / f"receipt.{suffix}"
    Image.open(RECEIPT).crop((0, 0, 457, 160)).save(path)
    text = read_document(path).text
    assert "SOONHUATMACHINERYENTERPRISE" in text.replace(" ", "")  # spacing varies by crop


def test_an_image_without_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "blank.png"
    path.write_bytes(png_bytes(600, 800))
    with pytest.raises(InputError, match=r"OCR recognised no text in a PNG image \(1 page"):
        read_document(path)


def test_a_scanned_pdf_of_marks_only_is_refused(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 120, 60, style="F")  # marks, no text
    path = tmp_path / "marks.pdf"
    path.write_bytes(bytes(pdf.output()))
    with pytest.raises(InputError, match=r"no text layer, and OCR recognised no text on any"):
        read_document(path)
    with pytest.raises(InputError, match=r"no text layer.*--ocr never"):
        read_document(path, ReadOptions(ocr="never"))


def test_an_image_with_ocr_never_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"JPEG image, which only OCR reads.*--ocr never"):
        read_document(RECEIPT, ReadOptions(ocr="never"))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda data: data[: len(data) // 2], r"JPEG image but cannot be decoded.*truncated"),
        (lambda data: data[:200], r"JPEG image but cannot be decoded"),
        (lambda data: b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(40), r"PNG image"),
    ],
)
def test_damaged_images_are_refused_with_what_was_found(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "damaged.img"
    path.write_bytes(make(RECEIPT.read_bytes()))
    with pytest.raises(InputError, match=message):
        read_document(path)


def test_an_image_over_the_pixel_limit_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THINKJSON_MAX_IMAGE_PIXELS", "500000")
    path = tmp_path / "big.jpg"
    path.write_bytes(RECEIPT.read_bytes())  # 457 x 1170 = 534,690 pixels
    with pytest.raises(
        InputError, match=r"457 by 1,170 = 534,690 pixels.*THINKJSON_MAX_IMAGE_PIXELS"
    ):
        read_document(path)


def test_a_small_file_declaring_a_huge_image_is_refused_without_decoding(tmp_path: Path) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 60_000, 60_000, 8, 2, 0, 0, 0)  # 3.6 billion pixels
    data = (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    )
    path = tmp_path / "bomb.png"
    path.write_bytes(data + chunk(b"IEND", b""))
    with pytest.raises(InputError, match=r"PNG image .*pixels"):
        read_document(path)


def test_a_bmp_signature_needs_more_than_two_letters(tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_text("BMW invoice 12, total 5.00 EUR\n", encoding="utf-8")
    assert read_document(path).kind == "text"


def test_a_bad_ocr_mode_is_a_usage_error() -> None:
    from thinkjson_edge.errors import UsageError

    with pytest.raises(UsageError, match="ocr='sometimes'"):
        ReadOptions(ocr="sometimes")


def test_reading_a_jpeg_from_bytes_in_memory_is_not_text() -> None:
    from thinkjson_edge.pipeline.documents import decode_text

    with pytest.raises(InputError, match="JPEG image, not text; read it from its file"):
        decode_text(io.BytesIO(RECEIPT.read_bytes()).getvalue())
