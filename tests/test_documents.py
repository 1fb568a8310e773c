"""Reading documents: text of any suffix, clear refusals for everything else."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from thinkjson_edge.documents import read_document
from thinkjson_edge.errors import InputError


def test_reads_utf8_text(tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_text("Batch SAL-1 — released\n", encoding="utf-8")
    document = read_document(path)
    assert document.text == "Batch SAL-1 — released\n"
    assert document.source == str(path)


@pytest.mark.parametrize(
    ("bom", "encoding"),
    [
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ],
)
def test_byte_order_marks_are_honoured_and_dropped(
    tmp_path: Path, bom: bytes, encoding: str
) -> None:
    path = tmp_path / "doc.txt"
    path.write_bytes(bom + "Total: 5.00 €".encode(encoding))
    assert read_document(path).text == "Total: 5.00 €"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b" \n\t\n", "is empty"),
        (b"\x00\x01\x02binary\x00", "binary file"),
        (b"%PDF-1.7\n...", "PDF"),
        (b"PK\x03\x04rest", "ZIP"),
        ("Caf\u00e9 total".encode("latin-1"), "not valid UTF-8"),
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
