"""Reads that never end: pipes, devices, sockets, zip bombs and texts too long to use.

Each case is refused at once, before any model loads, with the documented exit code (4 for
a document, 3 for a schema, 2 for a limit set to nonsense), one message line that names the
limit and how to raise it, and no input changed.
"""

from __future__ import annotations

import io
import json
import os
import socket
import struct
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import assert_refused, file_hashes, run_cli

from thinkjson_edge.errors import InputError
from thinkjson_edge.evaluation.dataset import Case, find_dataset, load_gold

SCHEMA = {"type": "object", "properties": {"total": {"type": "string"}}, "required": ["total"]}
MINIMAL_DOCUMENT_XML = b"<w:document/>"  # enough for the reader to take a file as a DOCX

needs_posix = pytest.mark.skipif(sys.platform == "win32", reason="named pipes and sockets")


@pytest.fixture
def schema(tmp_path: Path) -> Path:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SCHEMA), encoding="utf-8")
    return path


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.txt"
    os.mkfifo(path)
    return path


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "sock.txt"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        yield path


def extract(document: Path, schema: Path) -> tuple[object, dict[str, str]]:
    """Run extract on ``document``; return the result and the inputs' hashes before it."""
    before = file_hashes(document.parent, schema)
    return run_cli("extract", document, "--schema", schema, "--no-think"), before


# --- not a regular file -------------------------------------------------------------


@needs_posix
def test_a_named_pipe_as_the_document_is_refused_at_once(fifo: Path, schema: Path) -> None:
    result, before = extract(fifo, schema)
    assert_refused(result, 4, "named pipe", "regular file")
    assert file_hashes(fifo.parent, schema) == before


@needs_posix
def test_a_named_pipe_as_the_schema_is_refused_at_once(fifo: Path, tmp_path: Path) -> None:
    document = tmp_path / "doc.txt"
    document.write_text("Total: 12.50 EUR", encoding="utf-8")
    before = file_hashes(tmp_path)
    assert_refused(run_cli("extract", document, "--schema", fifo), 3, "named pipe")
    assert_refused(run_cli("schema", "check", fifo), 3, "named pipe")
    assert file_hashes(tmp_path) == before


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_a_device_as_the_document_is_refused_at_once(device: str, schema: Path) -> None:
    if not os.path.exists(device):
        pytest.skip(f"no {device} here")
    before = file_hashes(schema)
    result = run_cli("extract", device, "--schema", schema)
    assert_refused(result, 4, "character device")
    assert file_hashes(schema) == before


def test_a_device_as_the_schema_is_refused_at_once(tmp_path: Path) -> None:
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    assert_refused(run_cli("schema", "check", "/dev/zero"), 3, "character device")


def test_a_regular_file_that_waits_for_data_is_refused_not_waited_on(schema: Path) -> None:
    # /proc/kmsg reports itself as a regular file of size 0, and a read waits for the next
    # kernel message: opened non-blocking, it has nothing to give and is refused.
    kmsg = "/proc/kmsg"
    if not os.access(kmsg, os.R_OK):
        pytest.skip(f"{kmsg} cannot be read here")
    before = file_hashes(schema)
    assert_refused(run_cli("extract", kmsg, "--schema", schema), 4, "waits for data")
    assert_refused(run_cli("schema", "check", kmsg), 3, "waits for data")
    assert file_hashes(schema) == before


@needs_posix
def test_a_socket_as_the_document_or_schema_is_refused(unix_socket: Path, schema: Path) -> None:
    before = file_hashes(schema)
    assert_refused(run_cli("extract", unix_socket, "--schema", schema), 4, "socket")
    assert_refused(run_cli("schema", "check", unix_socket), 3, "socket")
    assert file_hashes(schema) == before


# --- sizes, as read -----------------------------------------------------------------


def test_a_document_over_the_limit_names_the_limit_and_how_to_raise_it(
    tmp_path: Path, schema: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = tmp_path / "big.txt"
    document.write_text("Total: 12.50 EUR\n" * 200, encoding="utf-8")  # 3,400 bytes
    monkeypatch.setenv("THINKJSON_MAX_DOCUMENT_MB", "0.001")  # 1,048 bytes
    result, before = extract(document, schema)
    assert_refused(result, 4, "3,400 bytes", "1,049 bytes limit", "THINKJSON_MAX_DOCUMENT_MB=N")
    assert file_hashes(tmp_path) == before


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_a_file_that_reports_no_size_is_bounded_as_it_is_read(
    schema: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A /proc file is a regular file that says it is empty and has content: the read
    # must count what arrives rather than trust the size.
    monkeypatch.setenv("THINKJSON_MAX_DOCUMENT_MB", "0.0001")  # 104 bytes
    result = run_cli("extract", "/proc/self/maps", "--schema", schema)
    assert_refused(result, 4, "grew past", "THINKJSON_MAX_DOCUMENT_MB")


def test_a_schema_over_its_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "wide.json"
    properties = {f"p{n}": {"type": "string"} for n in range(200)}
    path.write_text(json.dumps({"type": "object", "properties": properties}), encoding="utf-8")
    monkeypatch.setenv("THINKJSON_MAX_SCHEMA_MB", "0.001")
    before = file_hashes(tmp_path)
    assert_refused(run_cli("schema", "check", path), 3, "limit", "THINKJSON_MAX_SCHEMA_MB=N")
    assert file_hashes(tmp_path) == before


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("THINKJSON_MAX_DOCUMENT_MB", "lots"),
        ("THINKJSON_MAX_DOCUMENT_MB", "-1"),
        ("THINKJSON_MAX_TEXT_CHARS", "nan"),
        ("THINKJSON_MAX_UNPACKED_MB", "inf"),
    ],
)
def test_a_limit_set_to_nonsense_is_a_usage_error(
    tmp_path: Path, schema: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    document = tmp_path / "doc.txt"
    document.write_text("Total: 12.50 EUR", encoding="utf-8")
    monkeypatch.setenv(variable, value)
    result, before = extract(document, schema)
    assert_refused(result, 2, variable)
    assert file_hashes(tmp_path) == before


# --- texts too long to use ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "encoding", "repeat"),
    [
        ("far.txt", "utf-8", 40_000),  # bytes alone prove it too long: refused undecoded
        ("near.txt", "utf-8", 8_000),  # decoded, then counted
        ("latin.txt", "cp1252", 8_000),  # not UTF-8: counted before encoding detection ends
        ("page.html", "utf-8", 8_000),
    ],
)
def test_a_text_over_the_character_limit_is_refused_before_any_model_work(
    tmp_path: Path,
    schema: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    encoding: str,
    repeat: int,
) -> None:
    line = "Total due: 12.50 EUR, payable in thirty days, café\n"
    text = line * repeat
    if name.endswith(".html"):
        text = f"<html><body><p>{text}</p></body></html>"
    document = tmp_path / name
    document.write_bytes(text.encode(encoding))
    monkeypatch.setenv("THINKJSON_MAX_TEXT_CHARS", "100000")
    result, before = extract(document, schema)
    assert_refused(result, 4, "characters", "100,000", "THINKJSON_MAX_TEXT_CHARS=N")
    assert "loaded" not in result.stderr  # refused before the model
    assert file_hashes(tmp_path) == before


def test_a_pdf_stops_being_read_once_its_text_is_over_the_limit(
    tmp_path: Path, schema: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    for _ in range(10):  # 1,400 characters a page: the read stops on the fourth
        pdf.add_page()
        pdf.multi_cell(0, 5, "Total due: 12.50 EUR, payable in thirty days. " * 30)
    document = tmp_path / "long.pdf"
    document.write_bytes(bytes(pdf.output()))
    monkeypatch.setenv("THINKJSON_MAX_TEXT_CHARS", "5000")
    result, before = extract(document, schema)
    assert_refused(result, 4, "at least", "5,000 characters limit", "THINKJSON_MAX_TEXT_CHARS")
    assert file_hashes(tmp_path) == before


# --- ZIP bombs ------------------------------------------------------------------------


def real_docx(text: str) -> zipfile.ZipFile:
    """A DOCX that python-docx wrote, holding one paragraph."""
    import docx

    buffer = io.BytesIO()
    document = docx.Document()
    document.add_paragraph(text)
    document.save(buffer)
    return zipfile.ZipFile(buffer)


def docx_with(members: dict[str, bytes | int]) -> bytes:
    """A real DOCX plus ``members``: each is its bytes, or a count of zero bytes written in
    pieces (so a member of gigabytes costs the test no memory)."""
    buffer = io.BytesIO()
    with real_docx("Total: 12.50 EUR") as base, zipfile.ZipFile(buffer, "w") as archive:
        for info in base.infolist():
            archive.writestr(info, base.read(info), zipfile.ZIP_DEFLATED)
        for name, content in members.items():
            if isinstance(content, bytes):
                archive.writestr(name, content, zipfile.ZIP_DEFLATED)
                continue
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as stream:
                piece = bytes(1 << 20)
                for start in range(0, content, len(piece)):
                    stream.write(piece[: min(len(piece), content - start)])
    return buffer.getvalue()


def test_a_docx_that_unpacks_to_hundreds_of_mb_is_refused_before_unpacking(
    tmp_path: Path, schema: Path
) -> None:
    document = tmp_path / "bomb.docx"
    document.write_bytes(docx_with({"word/media/blob.bin": 300 * 1024 * 1024}))
    assert document.stat().st_size < 1024 * 1024  # under 1 MB that unpacks to 300 MB
    result, before = extract(document, schema)
    assert_refused(result, 4, "unpacks to", "THINKJSON_MAX_UNPACKED_MB=N")
    assert file_hashes(tmp_path) == before


def test_a_docx_member_that_holds_more_than_it_declares_is_refused(
    tmp_path: Path, schema: Path
) -> None:
    data = bytearray(docx_with({"word/media/blob.bin": 64 * 1024 * 1024}))
    # The central directory entry of the last member now declares 1,000 bytes.
    entry = data.rfind(b"PK\x01\x02")
    assert data[entry + 46 : entry + 46 + 19] == b"word/media/blob.bin"
    extra_at = entry + 46 + 19
    if struct.unpack_from("<I", data, entry + 24)[0] == 0xFFFFFFFF:  # sizes in the ZIP64 field
        struct.pack_into("<Q", data, extra_at + 4, 1000)
    else:
        struct.pack_into("<I", data, entry + 24, 1000)
    document = tmp_path / "liar.docx"
    document.write_bytes(bytes(data))
    result, before = extract(document, schema)
    assert_refused(result, 4, "word/media/blob.bin", "declares")
    assert file_hashes(tmp_path) == before


def test_a_docx_with_too_many_members_is_refused(
    tmp_path: Path, schema: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = tmp_path / "many.docx"
    document.write_bytes(docx_with({f"word/part{n}.xml": b"<a/>" for n in range(60)}))
    monkeypatch.setenv("THINKJSON_MAX_ARCHIVE_MEMBERS", "50")
    result, before = extract(document, schema)
    assert_refused(result, 4, "members, more than", "THINKJSON_MAX_ARCHIVE_MEMBERS=N")
    assert file_hashes(tmp_path) == before


def test_a_docx_over_the_default_member_count_is_refused(tmp_path: Path, schema: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("word/document.xml", MINIMAL_DOCUMENT_XML)
        for n in range(10_000):
            archive.writestr(zipfile.ZipInfo(f"m/{n:x}"), b"")
    document = tmp_path / "crowd.docx"
    document.write_bytes(buffer.getvalue())
    result, before = extract(document, schema)
    assert_refused(result, 4, "10,001 members", "10,000 members limit")
    assert file_hashes(tmp_path) == before


def test_a_docx_within_the_limits_is_still_read(tmp_path: Path) -> None:
    from thinkjson_edge.pipeline.documents import read_document

    path = tmp_path / "fine.docx"
    path.write_bytes(docx_with({"word/media/image.bin": 3 * 1024 * 1024}))
    assert read_document(path).text == "Total: 12.50 EUR"


# --- eval's data folder -----------------------------------------------------------------


@needs_posix
def test_eval_lists_pipes_as_skipped_and_never_blocks_on_a_gold_pipe(tmp_path: Path) -> None:
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    (tmp_path / "a.txt").write_text("Total: 1", encoding="utf-8")
    (tmp_path / "a.json").write_text('{"total": "1"}', encoding="utf-8")
    os.mkfifo(tmp_path / "b.txt")
    (tmp_path / "b.json").write_text('{"total": "2"}', encoding="utf-8")
    (tmp_path / "c.txt").write_text("Total: 3", encoding="utf-8")
    os.mkfifo(tmp_path / "c.json")

    dataset = find_dataset(tmp_path)

    assert [case.name for case in dataset.cases] == ["a"]
    reasons = {skipped.name: skipped.reason for skipped in dataset.skipped}
    assert "named pipe" in reasons["b"]
    assert "gold file c.json" in reasons["c"] and "named pipe" in reasons["c"]
    # A gold file swapped for a pipe after the scan is refused, not waited on.
    with pytest.raises(InputError, match="named pipe"):
        load_gold(Case("c", tmp_path / "c.txt", tmp_path / "c.json"))
