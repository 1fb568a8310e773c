"""Reading input documents into plain text.

A file's kind is decided by its content first and its suffix second, so a PDF
named ``.txt`` is still read as a PDF. Text (``.txt``, ``.md``, ``.csv``,
``.json`` or any other suffix) has its encoding detected; HTML is reduced to
its visible text; PDFs give their text layer, page by page; DOCX files give
their paragraphs and tables in body order. Everything else is refused with a
message naming what the file looks like, so a user knows what to do with it.

The PDF and DOCX libraries are imported only when such a file is read, which
keeps ``import thinkjson_edge`` light.
"""

from __future__ import annotations

import codecs
import io
import logging
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from thinkjson_edge.errors import InputError
from thinkjson_edge.models.gguf import GGUF_MAGIC

if TYPE_CHECKING:
    from docx.table import Table, _Cell

MAX_DOCUMENT_BYTES = 50 * 1024 * 1024

# Page separator in the text of paged documents (PDF).
PAGE_BREAK = "\f"

_PDF_SIGNATURE = b"%PDF"
_ZIP_SIGNATURE = b"PK\x03\x04"
_DOCX_PART = "word/document.xml"

# Leading bytes of formats that are not read, with what to do instead.
_BINARY_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (_PDF_SIGNATURE, "a PDF file", "read it from its file, so its text layer is used"),
    (
        _ZIP_SIGNATURE,
        "a ZIP archive (XLSX and ODT files are ZIP archives)",
        "save it as DOCX, PDF or plain text",
    ),
    (b"\x89PNG", "a PNG image", "run OCR on it first and give the text"),
    (b"\xff\xd8\xff", "a JPEG image", "run OCR on it first and give the text"),
    (b"GIF8", "a GIF image", "run OCR on it first and give the text"),
    (b"II*\x00", "a TIFF image", "run OCR on it first and give the text"),
    (b"MM\x00*", "a TIFF image", "run OCR on it first and give the text"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office file", "save it as DOCX or plain text"),
    (b"\x7fELF", "an executable", "check that the path names the document"),
    (GGUF_MAGIC, "a GGUF model file", "the document comes first and the model after --model"),
)

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# The legacy encoding most Western documents are in (a superset of Latin-1's letters).
_WESTERN = "cp1252"

_HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
_HTML_STARTS = ("<!doctype html", "<html")


@dataclass(frozen=True)
class Document:
    """A document as the model sees it: its text, and where it came from.

    ``encoding`` is how the bytes were decoded (empty for PDF and DOCX, which
    carry their own text). ``pages`` holds the character offset where each page
    begins in ``text`` for paged formats; pages are separated by ``PAGE_BREAK``.
    """

    text: str
    source: str = "<text>"
    encoding: str = "utf-8"
    kind: str = "text"
    pages: tuple[int, ...] = ()


class _Content(NamedTuple):
    """What a reader gets out of a file's bytes."""

    text: str
    encoding: str = ""
    pages: tuple[int, ...] = ()


def read_document(path: str | Path) -> Document:
    """Read a file into a Document, or raise InputError saying why it cannot be used."""
    path = Path(path)
    data = _read_bytes(path)
    source = str(path)
    kind = _detect_kind(path, data, source)
    content = _READERS[kind](data, source)
    return Document(
        text=content.text,
        source=source,
        encoding=content.encoding,
        kind=kind,
        pages=content.pages,
    )


def decode_text(data: bytes, source: str = "<bytes>") -> tuple[str, str]:
    """Decode document bytes to text, returning (text, encoding used).

    A byte-order mark wins; otherwise UTF-8 is tried, then the encoding is
    detected. Binary data and empty text are refused.
    """
    encoding = _bom_encoding(data)
    if encoding is None:
        _refuse_binary(data, source)
        try:
            text, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError as exc:
            text, encoding = _decode_detected(data, source, exc)
    else:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{source}: starts with a {encoding} byte-order mark but is not valid "
                f"{encoding} (offset {exc.start}); the file looks damaged"
            ) from exc
    _require_text(text, source)
    return text, encoding


# --- dispatch ---------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
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
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from exc


def _detect_kind(path: Path, data: bytes, source: str) -> str:
    """Content signature first, then suffix, then a look at the text."""
    suffix = path.suffix.lower()
    if data.startswith(_PDF_SIGNATURE):
        return "pdf"
    if data.startswith(_ZIP_SIGNATURE):
        names = _zip_names(data)
        if (names is None and suffix == ".docx") or (names and _DOCX_PART in names):
            return "docx"  # a damaged .docx gets the DOCX reader's error
    _refuse_signature(data, source)  # a JPEG named .pdf is refused as a JPEG
    if suffix in (".pdf", ".docx"):
        return suffix[1:]  # the reader says why the content does not fit its suffix
    _refuse_binary(data, source)
    if suffix in _HTML_SUFFIXES or _looks_like_html(data):
        return "html"
    if suffix in (".csv", ".json"):
        return suffix[1:]
    return "text"


def _zip_names(data: bytes) -> list[str] | None:
    """The member names of a ZIP archive, or None when it is not a readable one."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return None


def _looks_like_html(data: bytes) -> bool:
    encoding = _bom_encoding(data) or "latin-1"  # any ASCII-compatible reading will do
    head = data[:1024].decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n").lower()
    return head.startswith(_HTML_STARTS)


# --- text -------------------------------------------------------------------


def _read_text(data: bytes, source: str) -> _Content:
    text, encoding = decode_text(data, source)
    return _Content(text, encoding)


def _bom_encoding(data: bytes) -> str | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    return None


def _refuse_binary(data: bytes, source: str) -> None:
    if _bom_encoding(data):
        return  # UTF-16/32 text holds NUL bytes by design
    _refuse_signature(data, source)
    if b"\x00" in data:
        raise InputError(f"{source}: is a binary file (it contains NUL bytes), not text")


def _refuse_signature(data: bytes, source: str) -> None:
    for signature, kind, advice in _BINARY_SIGNATURES:
        if data.startswith(signature):
            raise InputError(f"{source}: looks like {kind}, not text; {advice}")


def _decode_detected(data: bytes, source: str, error: UnicodeDecodeError) -> tuple[str, str]:
    """Decode bytes that are not UTF-8 with the encoding charset-normalizer finds."""
    encoding = _detect_encoding(data)
    if encoding is None:
        raise InputError(
            f"{source}: is not valid UTF-8 (byte 0x{data[error.start]:02x} at offset "
            f"{error.start}) and its encoding could not be detected; convert it to UTF-8 "
            "first, e.g. `iconv -f latin1 -t utf-8`"
        ) from error
    return data.decode(encoding), encoding


def _detect_encoding(data: bytes) -> str | None:
    """The most plausible encoding of non-UTF-8 bytes, or None when nothing fits.

    On short texts the detector's first choice is often an exotic code page
    (cp1006, big5hkscs for a line of German), so Windows-1252 is always scored
    too, and wins when it reads the bytes at least as cleanly as the rest.
    """
    from charset_normalizer import from_bytes

    matches = [*from_bytes(data), *from_bytes(data, cp_isolation=[_WESTERN])]
    if not matches:
        return None
    best = min(
        matches,
        key=lambda m: (
            round(m.chaos, 2),
            -round(m.coherence, 2),
            _WESTERN not in m.could_be_from_charset,
        ),
    )
    # could_be_from_charset lists the encodings that give the very same text.
    return _WESTERN if _WESTERN in best.could_be_from_charset else best.encoding


def _require_text(text: str, source: str) -> None:
    if not text.strip():
        raise InputError(f"{source}: is empty; there is nothing to extract from")


# --- HTML -------------------------------------------------------------------

# Elements whose content is never shown as page text.
_HIDDEN_TAGS = frozenset({"script", "style", "noscript", "template"})
_LINE_TAGS = frozenset(
    {"br", "div", "li", "tr", "dt", "dd", "caption", "figcaption", "option", "summary"}
)
_PARAGRAPH_TAGS = frozenset(
    {
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "title", "table", "ul", "ol", "dl",
        "blockquote", "pre", "hr", "section", "article", "header", "footer", "nav",
        "aside", "main", "form", "fieldset", "figure", "address", "details",
    }
)  # fmt: skip
_CELL_TAGS = frozenset({"td", "th"})
# Elements that belong in <head>; any other element means the body has begun.
_HEAD_TAGS = frozenset({"head", "title", "meta", "link", "base", "script", "style", "noscript"})
_CELL_SEPARATOR = " | "


class _HtmlText(HTMLParser):
    """Collects the visible text of an HTML page: blocks on lines, table rows on one line."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._pending_breaks = 0  # newlines owed before the next text
        self._hidden = 0  # depth inside hidden elements
        self._in_head = False
        self._in_title = False
        self._in_pre = 0
        self._in_cell = 0
        self._cells_in_row = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden += 1
        if tag == "head":
            self._in_head = True
        elif tag not in _HEAD_TAGS:
            self._in_head = False  # pages may leave out </head> and <body>
        if tag == "title":
            self._in_title = True
        elif tag == "pre":
            self._in_pre += 1
        elif tag == "tr":
            self._cells_in_row = self._in_cell = 0
        elif tag in _CELL_TAGS:
            self._start_cell()
            return
        self._block_break(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HIDDEN_TAGS:  # a self-closed <script/> hides nothing
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden = max(self._hidden - 1, 0)
        elif tag == "head":
            self._in_head = False
        elif tag == "title":
            self._in_title = False
        elif tag == "pre":
            self._in_pre = max(self._in_pre - 1, 0)
        elif tag in _CELL_TAGS:
            self._in_cell = max(self._in_cell - 1, 0)
        if tag != "br":
            self._block_break(tag)

    def handle_data(self, data: str) -> None:
        if self._hidden or (self._in_head and not self._in_title):
            return
        if not self._in_pre:
            data = re.sub(r"\s+", " ", data)
            if self._pending_breaks or not self._parts or self._parts[-1].endswith(("\n", " ")):
                data = data.lstrip()
        if data:
            self._emit(data)

    def text(self) -> str:
        lines = (line.rstrip() for line in "".join(self._parts).splitlines())
        return _collapse_blank_lines("\n".join(lines)).strip()

    def _emit(self, text: str) -> None:
        if self._pending_breaks and self._parts:
            self._parts.append("\n" * self._pending_breaks)
        self._pending_breaks = 0
        self._parts.append(text)

    def _start_cell(self) -> None:
        if self._cells_in_row:
            if self._parts:
                self._parts[-1] = self._parts[-1].rstrip(" ")
            self._emit(_CELL_SEPARATOR)
        self._cells_in_row += 1
        self._in_cell += 1

    def _block_break(self, tag: str) -> None:
        if tag not in _LINE_TAGS and tag not in _PARAGRAPH_TAGS:
            return
        if self._in_cell and tag not in ("tr", "table"):
            # Blocks inside a cell are kept apart by a space, so the row stays on one line.
            if self._parts and not self._parts[-1].endswith((" ", "\n")):
                self._parts.append(" ")
        elif tag == "br":
            self._pending_breaks = min(self._pending_breaks + 1, 2)
        elif tag in _PARAGRAPH_TAGS:
            self._pending_breaks = 2
        else:
            self._pending_breaks = max(self._pending_breaks, 1)


def _read_html(data: bytes, source: str) -> _Content:
    markup, encoding = decode_text(data, source)
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    text = parser.text()
    if not text:
        raise InputError(f"{source}: is an HTML page with no visible text to extract from")
    return _Content(text, encoding)


def _collapse_blank_lines(text: str) -> str:
    return re.sub(r"\n[ \t]*(?:\n[ \t]*)+\n", "\n\n", text)


# --- PDF --------------------------------------------------------------------

_PYPDF_LOG_SINK = logging.NullHandler()


def _read_pdf(data: bytes, source: str) -> _Content:
    page_texts = _pdf_page_texts(data, source)
    if not any(text.strip() for text in page_texts):
        raise InputError(
            f"{source}: this PDF has no text layer; it looks scanned and needs OCR first "
            "(e.g. `ocrmypdf in.pdf out.pdf`)"
        )
    starts, offset = [], 0
    for text in page_texts:
        starts.append(offset)
        offset += len(text) + len(PAGE_BREAK)
    return _Content(PAGE_BREAK.join(page_texts), pages=tuple(starts))


def _pdf_page_texts(data: bytes, source: str) -> list[str]:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    # pypdf logs its repairs of damaged files; without a handler they reach stderr
    # through logging's last resort, next to the error this module raises anyway.
    logging.getLogger("pypdf").addHandler(_PYPDF_LOG_SINK)
    try:
        reader = PdfReader(io.BytesIO(data))  # tries the empty password itself
        return [page.extract_text() or "" for page in reader.pages]
    except FileNotDecryptedError as exc:
        raise InputError(
            f"{source}: this PDF is encrypted with a password; remove the password "
            "(e.g. `qpdf --decrypt --password=... in.pdf out.pdf`) and try again"
        ) from exc
    except DependencyError as exc:
        raise InputError(
            f"{source}: this PDF is encrypted with AES, which needs the `cryptography` "
            f"package to open ({exc}); install it with `pip install cryptography`"
        ) from exc
    except Exception as exc:  # a damaged file can fail anywhere inside the parser
        raise InputError(
            f"{source}: cannot be read as a PDF ({type(exc).__name__}: {exc}); "
            "the file looks damaged or is not really a PDF"
        ) from exc


# --- DOCX -------------------------------------------------------------------


def _read_docx(data: bytes, source: str) -> _Content:
    text = _collapse_blank_lines("\n".join(_docx_lines(data, source))).strip()
    if not text:
        raise InputError(f"{source}: this DOCX has no text in its body to extract from")
    return _Content(text)


def _docx_lines(data: bytes, source: str) -> list[str]:
    """The body's paragraphs and table rows, one per line, in the order they appear."""
    import docx

    try:
        body = docx.Document(io.BytesIO(data))
        return list(_block_lines(body.iter_inner_content()))
    except Exception as exc:  # a damaged package can fail in zipfile, lxml or python-docx
        raise InputError(
            f"{source}: cannot be read as a DOCX ({type(exc).__name__}: {exc}); "
            "the file looks damaged: open and re-save it, or export it as PDF or text"
        ) from exc


def _block_lines(blocks: Iterator[object]) -> Iterator[str]:
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for block in blocks:
        if isinstance(block, Table):
            yield from _table_lines(block)
        elif isinstance(block, Paragraph):
            yield block.text


def _table_lines(table: Table) -> Iterator[str]:
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if cell._tc is previous:  # a merged cell repeats across the columns it spans
                continue
            previous = cell._tc
            cells.append(_cell_text(cell))
        yield _CELL_SEPARATOR.join(cells)


def _cell_text(cell: _Cell) -> str:
    # A row stays on one line, so breaks inside a cell (and nested tables) become spaces.
    return " ".join(" ".join(_block_lines(cell.iter_inner_content())).split())


_READERS: dict[str, Callable[[bytes, str], _Content]] = {
    "text": _read_text,
    "csv": _read_text,
    "json": _read_text,
    "html": _read_html,
    "pdf": _read_pdf,
    "docx": _read_docx,
}
