"""Reading documents: text in any encoding, HTML, PDF and DOCX, clear refusals for the rest."""

from __future__ import annotations

import codecs
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from thinkjson_edge.errors import InputError
from thinkjson_edge.pipeline.documents import PAGE_BREAK, Document, decode_text, read_document

# --- plain text ---------------------------------------------------------------


def test_reads_utf8_text(tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_text("Batch SAL-1 — released\n", encoding="utf-8")
    document = read_document(path)
    assert document.text == "Batch SAL-1 — released\n"
    assert document.source == str(path)
    assert (document.kind, document.encoding, document.pages) == ("text", "utf-8", ())


def test_document_defaults_still_allow_text_only() -> None:
    document = Document(text="Total 5")
    assert (document.source, document.encoding, document.kind, document.pages) == (
        "<text>",
        "utf-8",
        "text",
        (),
    )


@pytest.mark.parametrize(
    ("bom", "encoding"),
    [
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
        (codecs.BOM_UTF32_LE, "utf-32-le"),
    ],
)
def test_byte_order_marks_are_honoured_and_dropped(
    tmp_path: Path, bom: bytes, encoding: str
) -> None:
    path = tmp_path / "doc.txt"
    path.write_bytes(bom + "Total: 5.00 €".encode(encoding))
    assert read_document(path).text == "Total: 5.00 €"


def test_utf16_file_written_by_python_is_read(tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    path.write_text("Lieferant: Müller GmbH\nBetrag: 12,50 €\n", encoding="utf-16")
    document = read_document(path)
    assert document.text == "Lieferant: Müller GmbH\nBetrag: 12,50 €\n"
    assert document.encoding == "utf-16"


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Café total", "latin-1"),
        ("Der Kunde zahlte für die Lieferung, Straße 5, Größe 3.", "latin-1"),
        ("Facture n° 42 : café crème, total 5,00 €, reçu à Genève.", "cp1252"),
        ("Счёт номер 5 оплачен полностью, спасибо за покупку.", "cp1251"),
    ],
)
def test_legacy_encodings_are_detected(tmp_path: Path, text: str, encoding: str) -> None:
    path = tmp_path / "legacy.txt"
    path.write_bytes(text.encode(encoding))
    document = read_document(path)
    assert document.text == text
    assert document.encoding not in ("utf-8", "")
    assert text.encode(document.encoding) == text.encode(encoding)


def test_decode_text_is_the_same_decoder() -> None:
    assert decode_text("Caf\u00e9".encode("latin-1"))[0] == "Café"
    assert decode_text(b"plain") == ("plain", "utf-8")


@pytest.mark.parametrize(
    ("name", "kind", "content", "encoding"),
    [
        ("totals.csv", "csv", "name;city;total\nMüller;Köln;5\nGarçon;Nîmes;7\n", "latin-1"),
        ("order.json", "json", '{"total": "5 €", "customer": "Łukasz"}\n', "utf-8"),
    ],
)
def test_csv_and_json_are_read_as_text(
    tmp_path: Path, name: str, kind: str, content: str, encoding: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content.encode(encoding))
    document = read_document(path)
    assert document.kind == kind
    assert document.text == content


# --- refusals -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b" \n\t\n", "is empty"),
        (codecs.BOM_UTF8 + b" \n", "is empty"),
        (b"\x00\x01\x02binary\x00", "binary file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", r"PNG image.*OCR"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG image"),
        (b"GGUF\x03\x00\x00\x00", "GGUF model file"),
        (b"\x7fELF\x02\x01\x01", "executable"),
        (b"%PDF-1.7\n...", "cannot be read as a PDF"),
        (b"PK\x03\x04rest", "ZIP"),
        (bytes(range(1, 256)) * 4, "encoding could not be detected"),
    ],
)
def test_unusable_files_are_refused_with_the_reason(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "input.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_document(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_document(tmp_path / "absent.txt")
    with pytest.raises(InputError, match="is a directory"):
        read_document(tmp_path)


def test_size_limit_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("thinkjson_edge.pipeline.documents.MAX_DOCUMENT_BYTES", 10)
    path = tmp_path / "big.txt"
    path.write_text("x" * 11)
    with pytest.raises(InputError, match="limit for one document"):
        read_document(path)


def test_other_zip_archives_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "sheet.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(InputError, match=r"ZIP archive.*XLSX"):
        read_document(path)
    # The suffix alone does not make an XLSX a DOCX.
    renamed = path.rename(tmp_path / "sheet.docx")
    with pytest.raises(InputError, match="ZIP archive"):
        read_document(renamed)


def test_image_named_pdf_is_refused_as_an_image(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    with pytest.raises(InputError, match="JPEG image"):
        read_document(path)


# --- HTML ---------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html><head>
  <title>Invoice &amp; receipt</title>
  <meta charset="utf-8"><style>p { color: red }</style>
  <script>document.write("<p>hidden</p>")</script>
</head>
<body>
  <noscript>Please enable JavaScript</noscript>
  <template><p>never shown</p></template>
  <h1>Invoice   #42</h1>
  <p>Total:&nbsp;5,00&nbsp;&euro; &lt;net&gt; &#8212; paid</p>
  <ul><li>Salt</li><li>Pepper</li></ul>



  <table>
    <tr><th>Item</th><th>Qty</th></tr>
    <tr><td><p>Salt</p></td><td>2 kg</td></tr>
  </table>
  <div>Signed<br>Ada</div>
  <script>var x = 1;</script>
</body></html>
"""


def test_html_keeps_visible_text_only(tmp_path: Path) -> None:
    path = tmp_path / "invoice.html"
    path.write_text(PAGE, encoding="utf-8")
    document = read_document(path)
    assert document.kind == "html"
    assert document.text == (
        "Invoice & receipt\n\n"
        "Invoice #42\n\n"
        "Total: 5,00 € <net> — paid\n\n"
        "Salt\nPepper\n\n"
        "Item | Qty\n"
        "Salt | 2 kg\n\n"
        "Signed\nAda"
    )
    for hidden in ("hidden", "color", "JavaScript", "never shown", "var x"):
        assert hidden not in document.text


def test_html_is_recognised_by_content_and_blank_lines_collapse(tmp_path: Path) -> None:
    path = tmp_path / "saved-page.txt"
    path.write_text(
        "  <html><body><p>One</p>\n\n\n<p></p><p></p><br><br><br><p>Two</p></body></html>"
    )
    document = read_document(path)
    assert document.kind == "html"
    assert document.text == "One\n\nTwo"


def test_html_with_no_visible_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.htm"
    path.write_text("<html><head><script>run()</script></head><body> </body></html>")
    with pytest.raises(InputError, match="no visible text"):
        read_document(path)


# --- PDF ----------------------------------------------------------------------


def _pdf_bytes(*pages: str, password: str | None = None) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    if password is not None:
        pdf.set_encryption(owner_password="owner-secret", user_password=password)
    return bytes(pdf.output())


def test_pdf_pages_are_joined_with_form_feeds_and_their_offsets_kept(tmp_path: Path) -> None:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(_pdf_bytes("Invoice INV-7\nTotal 12.50 EUR", "Page two: signed by Ada"))
    document = read_document(path)
    assert document.kind == "pdf"
    first, second = document.text.split(PAGE_BREAK)
    assert "Invoice INV-7" in first
    assert "Total 12.50 EUR" in first
    assert "signed by Ada" in second
    assert "signed by Ada" not in first
    assert document.pages == (0, len(first) + 1)
    assert document.text[document.pages[1] :].startswith("Page two")


def test_pdf_is_recognised_by_signature_whatever_its_name(tmp_path: Path) -> None:
    path = tmp_path / "misnamed.txt"
    path.write_bytes(_pdf_bytes("Delivery note DN-3"))
    document = read_document(path)
    assert document.kind == "pdf"
    assert "Delivery note DN-3" in document.text
    assert document.pages == (0,)


def test_pdf_without_a_text_layer_needs_ocr(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 120, 60, style="F")  # what a scan looks like: marks, no text
    pdf.add_page()
    pdf.line(10, 10, 100, 100)
    path = tmp_path / "scan.pdf"
    path.write_bytes(bytes(pdf.output()))
    # OCR reads its pages (tests/ocr has scans with text) and finds nothing on them either.
    with pytest.raises(InputError, match=r"no text layer, and OCR recognised no text on any"):
        read_document(path)


def test_password_protected_pdf_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "locked.pdf"
    path.write_bytes(_pdf_bytes("Salary statement", password="user-secret"))
    with pytest.raises(InputError, match="encrypted with a password"):
        read_document(path)


def test_pdf_with_only_an_owner_password_is_read(tmp_path: Path) -> None:
    path = tmp_path / "restricted.pdf"
    path.write_bytes(_pdf_bytes("Permit P-9", password=""))
    assert "Permit P-9" in read_document(path).text


@pytest.mark.parametrize("name", ["truncated.pdf", "truncated.txt"])
def test_corrupt_pdf_is_refused_with_a_reason(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(_pdf_bytes("Invoice INV-7")[:300])
    with pytest.raises(InputError, match=r"cannot be read as a PDF \(\w+"):
        read_document(path)


def test_text_named_pdf_is_refused_as_not_a_pdf(tmp_path: Path) -> None:
    path = tmp_path / "notes.pdf"
    path.write_text("just some notes")
    with pytest.raises(InputError, match="not really a PDF"):
        read_document(path)


# --- DOCX ---------------------------------------------------------------------


def _docx_bytes() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Batch record SAL-1", level=1)
    document.add_paragraph("Ingredients are listed below.")
    table = document.add_table(rows=3, cols=3)
    rows = [["Item", "Qty", "Unit"], ["Salt", "2", "kg"], ["Pepper", "0.5", "kg"]]
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("Released by Ada on 2024-05-01.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_docx_paragraphs_and_tables_keep_body_order(tmp_path: Path) -> None:
    path = tmp_path / "record.docx"
    path.write_bytes(_docx_bytes())
    document = read_document(path)
    assert document.kind == "docx"
    assert document.text.splitlines() == [
        "Batch record SAL-1",
        "Ingredients are listed below.",
        "Item | Qty | Unit",
        "Salt | 2 | kg",
        "Pepper | 0.5 | kg",
        "Released by Ada on 2024-05-01.",
    ]


def test_docx_is_recognised_by_content_whatever_its_name(tmp_path: Path) -> None:
    path = tmp_path / "record.bin"
    path.write_bytes(_docx_bytes())
    document = read_document(path)
    assert document.kind == "docx"
    assert "Salt | 2 | kg" in document.text


def test_merged_docx_cells_are_not_repeated(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    table = document.add_table(rows=1, cols=3)
    table.cell(0, 0).text = "Total"
    table.cell(0, 1).merge(table.cell(0, 2)).text = "12.50 EUR"
    path = tmp_path / "merged.docx"
    document.save(str(path))
    assert read_document(path).text == "Total | 12.50 EUR"


def test_truncated_docx_is_refused_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "broken.docx"
    data = _docx_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cannot be read as a DOCX \(BadZipFile"):
        read_document(path)


def test_docx_with_damaged_xml_is_refused_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "damaged.docx"
    with (
        zipfile.ZipFile(io.BytesIO(_docx_bytes())) as source,
        zipfile.ZipFile(path, "w") as target,
    ):
        for name in source.namelist():
            part = source.read(name)
            target.writestr(name, b"<w:document broken" if name == "word/document.xml" else part)
    with pytest.raises(InputError, match=r"cannot be read as a DOCX.*damaged"):
        read_document(path)


# --- import weight ------------------------------------------------------------


def test_document_libraries_are_imported_only_when_needed(tmp_path: Path) -> None:
    code = (
        "import sys, thinkjson_edge.pipeline.documents as d;"
        "print(sorted({'pypdf', 'docx', 'charset_normalizer', 'lxml'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
