"""Reading input documents into plain text.

Text is recognised by content, not by file name: a UTF-8 (or BOM-marked
UTF-16) file of any suffix is read as it is. Binary files are refused with a
message naming what they look like, so a user knows what to do with them.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

from thinkjson_edge.errors import InputError

MAX_DOCUMENT_BYTES = 50 * 1024 * 1024

# Leading bytes of binary formats a user is likely to hand us by mistake.
_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF file"),
    (b"PK\x03\x04", "a ZIP archive (DOCX, XLSX and ODT files are ZIP archives)"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office file"),
    (b"\x7fELF", "an executable"),
    (b"GGUF", "a GGUF model file"),
)

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class Document:
    """A document as the model sees it: its text, and where it came from."""

    text: str
    source: str = "<text>"
    encoding: str = "utf-8"


def read_document(path: str | Path) -> Document:
    """Read a file into a Document, or raise InputError saying why it cannot be used."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a document file")
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise InputError(
                f"{path}: {size / 1e6:.0f} MB is larger than the "
                f"{MAX_DOCUMENT_BYTES / 1e6:.0f} MB limit for one document"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    text, encoding = decode_text(data, str(path))
    return Document(text=text, source=str(path), encoding=encoding)


def decode_text(data: bytes, source: str = "<bytes>") -> tuple[str, str]:
    """Decode document bytes to text, returning (text, encoding used)."""
    encoding = "utf-8"
    for bom, bom_encoding in _BOMS:
        if data.startswith(bom):
            encoding = bom_encoding
            break
    else:
        for signature, kind in _BINARY_SIGNATURES:
            if data.startswith(signature):
                raise InputError(
                    f"{source}: looks like {kind}, which is not supported; "
                    "give a plain-text export of the document instead"
                )
        if b"\x00" in data:
            raise InputError(f"{source}: is a binary file (it contains NUL bytes), not text")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{source}: is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start}); convert it first, e.g. `iconv -f latin1 -t utf-8`"
        ) from exc
    if not text.strip():
        raise InputError(f"{source}: is empty; there is nothing to extract from")
    return text, encoding
