"""Reading input documents into plain text.

A file's kind is decided by its content first and its suffix second, so a PDF
named ``.txt`` is still read as a PDF. Text (``.txt``, ``.md``, ``.csv``,
``.json`` or any other suffix) has its encoding detected; HTML is reduced to
its visible text; PDFs give their text layer, page by page, and OCR reads the
pages without one; images (JPEG, PNG, TIFF, BMP, WebP, GIF) are read by OCR,
page by page; DOCX files give their paragraphs and tables in body order.
Everything else is refused with a message naming what the file looks like, so
a user knows what to do with it. ``ReadOptions.ocr`` says when OCR is used.

Only regular files are read, and what is read is bounded as it is read: the file's
bytes, what a DOCX unpacks to and how many members it has (checked before anything is
unpacked), and the characters of the text. Each limit has an environment variable that
raises it (``read_limits`` lists them).

The PDF, DOCX and OCR libraries are imported only when such a file is read,
which keeps ``import thinkjson_edge`` light.
"""

from __future__ import annotations

import codecs
import io
import logging
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from thinkjson_edge.errors import InputError
from thinkjson_edge.files import MB, ReadLimit, format_size, read_bounded
from thinkjson_edge.models.gguf import GGUF_MAGIC
from thinkjson_edge.pipeline.images import image_format
from thinkjson_edge.pipeline.layout import PAGE_BREAK, READ_BY_TEXT_LAYER, Layout, PageInfo
from thinkjson_edge.pipeline.reading import OCR_ALWAYS, OCR_NEVER, ReadOptions

if TYPE_CHECKING:
    from docx.table import Table, _Cell

    from thinkjson_edge.pipeline.scans import PageContent

__all__ = ["PAGE_BREAK", "Document", "ReadOptions", "decode_text", "read_document"]

# Defaults of the limits on one document (each raised by the variable named below).
MAX_DOCUMENT_BYTES = 50 * MB
MAX_TEXT_CHARACTERS = 10_000_000  # beyond any local model's context times the chunk limit
# python-docx parses a DOCX's XML whole, at about 12 bytes of memory per byte of XML.
MAX_UNPACKED_BYTES = 50 * MB
MAX_ARCHIVE_MEMBERS = 10_000  # Word writes a few dozen
DOCUMENT_MB_VARIABLE = "THINKJSON_MAX_DOCUMENT_MB"
TEXT_CHARS_VARIABLE = "THINKJSON_MAX_TEXT_CHARS"

_PDF_SIGNATURE = b"%PDF"
_ZIP_SIGNATURE = b"PK\x03\x04"
_DOCX_PART = "word/document.xml"

_IMAGE_ADVICE = "read it from its file, so OCR reads it"

# Leading bytes of formats that are not read as text, with what to do instead.
_BINARY_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (_PDF_SIGNATURE, "a PDF file", "read it from its file, so its text layer is used"),
    (
        _ZIP_SIGNATURE,
        "a ZIP archive (XLSX and ODT files are ZIP archives)",
        "save it as DOCX, PDF or plain text",
    ),
    (b"\x89PNG", "a PNG image", _IMAGE_ADVICE),
    (b"\xff\xd8\xff", "a JPEG image", _IMAGE_ADVICE),
    (b"GIF8", "a GIF image", _IMAGE_ADVICE),
    (b"II*\x00", "a TIFF image", _IMAGE_ADVICE),
    (b"MM\x00*", "a TIFF image", _IMAGE_ADVICE),
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

    ``encoding`` is how the bytes were decoded (empty for PDF, DOCX and images,
    which carry their own text). ``pages`` holds the character offset where each
    page begins in ``text`` for paged formats; pages are separated by
    ``PAGE_BREAK``. ``layout`` (PDFs and images) says where the text sits on the
    pages: each page's size, and the box of every piece of text OCR recognised.
    ``notes`` are what a reader should know about the reading (a blank page).
    """

    text: str
    source: str = "<text>"
    encoding: str = "utf-8"
    kind: str = "text"
    pages: tuple[int, ...] = ()
    layout: Layout | None = None
    notes: tuple[str, ...] = ()


class _Content(NamedTuple):
    """What a reader gets out of a file's bytes."""

    text: str
    encoding: str = ""
    pages: tuple[int, ...] = ()
    layout: Layout | None = None
    notes: tuple[str, ...] = ()


def read_document(path: str | Path, options: ReadOptions | None = None) -> Document:
    """Read a file into a Document, or raise InputError saying why it cannot be used.

    ``options`` says when OCR reads a page (``ReadOptions.ocr``) and who hears of each
    page it reads; the default reads images and PDF pages without text by OCR.
    """
    path = Path(path)
    check_read_limits()  # a limit set to nonsense is refused whatever the file
    data = read_bounded(path, document_limit(), error=InputError)
    return read_document_bytes(data, str(path), options)


def read_document_bytes(data: bytes, source: str, options: ReadOptions | None = None) -> Document:
    """Read a document held in memory (a server's upload) as a file named ``source`` is read.

    Nothing is written to disk; the same limits hold as for a file, the byte limit included.
    ``source`` gives the suffix the kind falls back on, and names the document in messages.
    """
    options = options or ReadOptions()
    check_read_limits()
    limit = document_limit()
    if len(data) > limit.value():
        raise InputError(f"{source}: {format_size(len(data))} is larger than {limit.refusal()}")
    kind = _detect_kind(Path(source), data, source)
    if kind in _PAGED_READERS:
        content = _PAGED_READERS[kind](data, source, options)
    else:
        content = _READERS[kind](data, source)
    _refuse_long_text(len(content.text), source)
    return Document(
        text=content.text,
        source=source,
        encoding=content.encoding,
        kind=kind,
        pages=content.pages,
        layout=content.layout,
        notes=content.notes,
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


# --- limits -----------------------------------------------------------------


def document_limit() -> ReadLimit:
    """The bound on a document file's bytes."""
    return ReadLimit(
        "one document", DOCUMENT_MB_VARIABLE, MAX_DOCUMENT_BYTES, option="--max-document-mb"
    )


def text_limit() -> ReadLimit:
    """The bound on the characters of a document's text, whatever its format."""
    return ReadLimit(
        "the text of one document",
        TEXT_CHARS_VARIABLE,
        MAX_TEXT_CHARACTERS,
        unit="characters",
        option="--max-text-chars",
    )


def unpacked_limit() -> ReadLimit:
    """The bound on what the members of one DOCX add up to, unpacked."""
    return ReadLimit("what one DOCX unpacks to", "THINKJSON_MAX_UNPACKED_MB", MAX_UNPACKED_BYTES)


def members_limit() -> ReadLimit:
    """The bound on how many members one DOCX (or any ZIP archive read) has."""
    return ReadLimit(
        "one DOCX or other ZIP archive",
        "THINKJSON_MAX_ARCHIVE_MEMBERS",
        MAX_ARCHIVE_MEMBERS,
        unit="members",
    )


def read_limits() -> tuple[ReadLimit, ...]:
    """Every limit on reading a document (built afresh, so the current settings count)."""
    from thinkjson_edge.pipeline.images import pixel_limit

    return document_limit(), text_limit(), unpacked_limit(), members_limit(), pixel_limit()


def check_read_limits() -> None:
    """Raise UsageError now for a limit variable that is set to something unusable."""
    for limit in read_limits():
        limit.value()


# A character takes at most 4 bytes in every encoding read here (UTF-8, UTF-16/32, GB18030).
_MAX_BYTES_PER_CHARACTER = 4


def _refuse_long_text(characters: int, source: str, *, so_far: bool = False) -> None:
    """``so_far``: the count is of the text read until now, and there may be more."""
    limit = text_limit()
    if characters > limit.value():
        count = f"{'at least ' if so_far else ''}{characters:,}"
        raise InputError(f"{source}: its text is {count} characters, more than {limit.refusal()}")


def _refuse_long_bytes(data: bytes, source: str) -> None:
    """Refuse, before any decoding, text whose bytes alone prove it is too long."""
    limit = text_limit()
    if len(data) > _MAX_BYTES_PER_CHARACTER * limit.value():
        raise InputError(
            f"{source}: its text is over {limit.value():,} characters ({format_size(len(data))}), "
            f"more than {limit.refusal()}"
        )


# --- dispatch ---------------------------------------------------------------


def _detect_kind(path: Path, data: bytes, source: str) -> str:
    """Content signature first, then suffix, then a look at the text."""
    suffix = path.suffix.lower()
    if data.startswith(_PDF_SIGNATURE):
        return "pdf"
    if image_format(data):
        return "image"  # a JPEG named .pdf or .txt is still read as a JPEG
    if data.startswith(_ZIP_SIGNATURE):
        names = _zip_names(data, source)
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


def _zip_names(data: bytes, source: str) -> list[str] | None:
    """The member names of a ZIP archive, or None when it is not a readable one."""
    _check_zip_directory(data, source)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.namelist()
    except _ZIP_ERRORS:
        return None


def _looks_like_html(data: bytes) -> bool:
    encoding = _bom_encoding(data) or "latin-1"  # any ASCII-compatible reading will do
    head = data[:1024].decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n").lower()
    return head.startswith(_HTML_STARTS)


# --- text -------------------------------------------------------------------


def _read_text(data: bytes, source: str) -> _Content:
    _refuse_long_bytes(data, source)  # before encoding detection, which is slow on a long text
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


def _read_pdf(data: bytes, source: str, options: ReadOptions) -> _Content:
    """The text layer page by page; OCR reads the pages without one (all with ``always``)."""
    layer = _pdf_text_layer(data, source, read_text=options.ocr != OCR_ALWAYS)
    to_ocr = [
        index
        for index, (text, _size) in enumerate(layer)
        if options.ocr == OCR_ALWAYS or (options.ocr != OCR_NEVER and not text.strip())
    ]
    if not to_ocr and not any(text.strip() for text, _size in layer):
        raise InputError(
            f"{source}: this PDF has no text layer; it looks scanned and needs OCR, "
            "which --ocr never turned off: read it with --ocr auto"
        )
    pages = _pdf_pages(layer, to_ocr, data, source, options)
    content = _assembled(pages)
    if not content.text.strip():
        raise InputError(
            f"{source}: this PDF has no text layer, and OCR recognised no text on any of its "
            f"{len(pages)} page(s); it looks blank, or its text is too small or faint to read"
        )
    return content


def _pdf_pages(
    layer: list[tuple[str, tuple[float, float]]],
    to_ocr: list[int],
    data: bytes,
    source: str,
    options: ReadOptions,
) -> list[PageContent]:
    """Each page's content: its text layer, or what OCR reads on it for ``to_ocr`` pages."""
    from thinkjson_edge.pipeline.scans import PageContent

    pages = [
        PageContent(text, PageInfo(index + 1, width, height, "pt", READ_BY_TEXT_LAYER))
        for index, (text, (width, height)) in enumerate(layer)
    ]
    if not to_ocr:
        return pages
    from thinkjson_edge.pipeline.ocr import require_ocr
    from thinkjson_edge.pipeline.pdf_pages import PdfPages
    from thinkjson_edge.pipeline.scans import ocr_page

    require_ocr(source, f"{len(to_ocr)} of its pages have no text layer")
    rendered = PdfPages(data, source)
    try:
        for index in to_ocr:
            image, scale = rendered.render(index)
            pages[index] = ocr_page(
                image, index + 1, len(layer), unit="pt", scale=scale, source=source,
                options=options,
            )  # fmt: skip
            _refuse_long_text(sum(len(p.text) + 1 for p in pages), source, so_far=True)
    finally:
        rendered.close()
    return pages


def _pdf_text_layer(
    data: bytes, source: str, *, read_text: bool = True
) -> list[tuple[str, tuple[float, float]]]:
    """Each page's text layer (empty without ``read_text``) and its size in points, as the
    page is shown (its rotation applied)."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    # pypdf logs its repairs of damaged files; without a handler they reach stderr
    # through logging's last resort, next to the error this module raises anyway.
    logging.getLogger("pypdf").addHandler(_PYPDF_LOG_SINK)
    try:
        reader = PdfReader(io.BytesIO(data))  # tries the empty password itself
        pages: list[tuple[str, tuple[float, float]]] = []
        characters = 0
        for page in reader.pages:
            text = (page.extract_text() or "") if read_text else ""
            width, height = float(page.mediabox.width), float(page.mediabox.height)
            pages.append((text, (height, width) if page.rotation % 180 else (width, height)))
            characters += len(text) + len(PAGE_BREAK)
            _refuse_long_text(characters, source, so_far=True)  # pages stop once it is too long
        return pages
    except InputError:
        raise
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


def _assembled(pages: list[PageContent]) -> _Content:
    from thinkjson_edge.pipeline.scans import assemble

    whole = assemble(pages)
    return _Content(whole.text, pages=whole.starts, layout=whole.layout, notes=whole.notes)


# --- images -----------------------------------------------------------------


def _read_image(data: bytes, source: str, options: ReadOptions) -> _Content:
    """Every page of an image read by OCR."""
    kind = f"a {image_format(data)} image"
    if options.ocr == OCR_NEVER:
        raise InputError(
            f"{source}: looks like {kind}, which only OCR reads, and --ocr never turned it off; "
            "read it with --ocr auto"
        )
    from thinkjson_edge.pipeline.ocr import require_ocr
    from thinkjson_edge.pipeline.scans import read_image_pages

    require_ocr(source, f"looks like {kind}")
    _format, pages = read_image_pages(
        data, source, options, lambda characters: _refuse_long_text(characters, source, so_far=True)
    )
    content = _assembled(pages)
    if not content.text.strip():
        raise InputError(
            f"{source}: OCR recognised no text in {kind} ({len(pages)} page(s)); it looks "
            "blank, or its text is too small or faint to read"
        )
    return content


# --- DOCX -------------------------------------------------------------------


def _read_docx(data: bytes, source: str) -> _Content:
    _check_docx_archive(data, source)  # before python-docx unpacks anything
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


# --- ZIP archives -------------------------------------------------------------
#
# zipfile trusts an archive's word: it builds an entry for each member the central directory
# lists, and a member's read() inflates the whole stream into memory before cutting it to
# the declared size. So the counts and sizes are checked first, and each deflated member is
# inflated here, piece by piece, to prove it holds no more than it declares; only then does
# python-docx (through zipfile) read it.

_END_RECORD = b"PK\x05\x06"
_END_RECORD_SIZE = 22
_MAX_COMMENT = 0xFFFF
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_LOCATOR_SIZE = 20
_ZIP64_END_RECORD = b"PK\x06\x06"
_ZIP64_END_RECORD_SIZE = 56
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, then name and extra field lengths
_LOCAL_SIGNATURE = b"PK\x03\x04"
# Central directory bytes allowed per allowed member: Word's entries take under 150.
_DIRECTORY_BYTES_PER_MEMBER = 512
_INFLATE_PIECE = 1 << 20
_ENCRYPTED_FLAG = 0x1
# What zipfile raises on a damaged archive (a version it does not know included).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    ValueError,
    EOFError,
    NotImplementedError,
    struct.error,
)


def _check_zip_directory(data: bytes, source: str) -> None:
    """Refuse an archive whose end record lists too many members, before zipfile reads them."""
    declared = _declared_directory(data)
    if declared is None:
        return  # not an archive zipfile can read either; it says why
    members, directory_bytes = declared
    limit = members_limit()
    if members > limit.value():
        raise InputError(f"{source}: has {members:,} members, more than {limit.refusal()}")
    if directory_bytes > _DIRECTORY_BYTES_PER_MEMBER * limit.value():
        raise InputError(
            f"{source}: its list of members takes {format_size(directory_bytes)}, too much "
            f"for {limit.refusal()}"
        )


def _declared_directory(data: bytes) -> tuple[int, int] | None:
    """(members, central directory bytes) as the end record says, or None without one."""
    at = data.rfind(_END_RECORD, max(0, len(data) - _END_RECORD_SIZE - _MAX_COMMENT))
    if at < 0 or at + _END_RECORD_SIZE > len(data):
        return None
    members, directory_bytes = struct.unpack_from("<HI", data, at + 10)
    if members != 0xFFFF and directory_bytes != 0xFFFFFFFF:
        return members, directory_bytes
    # ZIP64: the real counts are in the record just before the locator.
    locator = at - _ZIP64_LOCATOR_SIZE
    record = locator - _ZIP64_END_RECORD_SIZE
    if record < 0 or not data.startswith(_ZIP64_LOCATOR, locator):
        return members, directory_bytes
    if not data.startswith(_ZIP64_END_RECORD, record):
        return members, directory_bytes
    wide_members, wide_bytes = struct.unpack_from("<QQ", data, record + 32)
    return wide_members, wide_bytes


def _check_docx_archive(data: bytes, source: str) -> None:
    """Refuse a DOCX whose members are too many or unpack to too much, before unpacking it."""
    _check_zip_directory(data, source)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except _ZIP_ERRORS as exc:
        raise _damaged_docx(source, exc) from exc
    count_limit, size_limit = members_limit(), unpacked_limit()
    if len(members) > count_limit.value():
        raise InputError(
            f"{source}: has {len(members):,} members, more than {count_limit.refusal()}"
        )
    unpacked = sum(member.file_size for member in members)
    if unpacked > size_limit.value():
        raise InputError(
            f"{source}: unpacks to {format_size(unpacked)}, more than {size_limit.refusal()}"
        )
    for member in members:
        _check_member(data, member, source)


def _check_member(data: bytes, member: zipfile.ZipInfo, source: str) -> None:
    """A member must hold no more than it declares (zipfile would inflate all of it)."""
    if member.compress_type == zipfile.ZIP_STORED:
        return  # zipfile reads at most its declared bytes
    if member.compress_type != zipfile.ZIP_DEFLATED or member.flag_bits & _ENCRYPTED_FLAG:
        problem = f"member {member.filename!r} is encrypted or packed in a way Word never uses"
        raise _damaged_docx(source, problem)
    try:
        start = _member_start(data, member)
        raw = memoryview(data)[start : start + member.compress_size]
        inflated = _inflated_size(raw, member.file_size)
    except (zlib.error, struct.error, ValueError) as exc:
        raise _damaged_docx(source, f"member {member.filename!r}: {exc}") from exc
    if inflated > member.file_size:
        raise InputError(
            f"{source}: member {member.filename!r} unpacks to more than the "
            f"{member.file_size:,} bytes it declares; the file is damaged or made to exhaust "
            "memory, and is not read"
        )


def _member_start(data: bytes, member: zipfile.ZipInfo) -> int:
    signature, name_length, extra_length = _LOCAL_HEADER.unpack_from(data, member.header_offset)
    if signature != _LOCAL_SIGNATURE:
        raise ValueError("its local header is missing")
    return member.header_offset + _LOCAL_HEADER.size + name_length + extra_length


def _inflated_size(raw: memoryview, declared: int) -> int:
    """How many bytes a deflate stream inflates to, in pieces, stopping once past ``declared``."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    produced = len(inflater.decompress(raw, _INFLATE_PIECE))
    while inflater.unconsumed_tail and produced <= declared:
        produced += len(inflater.decompress(inflater.unconsumed_tail, _INFLATE_PIECE))
    if produced <= declared:
        produced += len(inflater.flush())  # all input is taken: little output can be left
    return produced


def _damaged_docx(source: str, problem: object) -> InputError:
    if isinstance(problem, Exception):
        problem = f"{type(problem).__name__}: {problem}"
    return InputError(
        f"{source}: cannot be read as a DOCX ({problem}); the file looks damaged: open and "
        "re-save it, or export it as PDF or text"
    )


_READERS: dict[str, Callable[[bytes, str], _Content]] = {
    "text": _read_text,
    "csv": _read_text,
    "json": _read_text,
    "html": _read_html,
    "docx": _read_docx,
}
# Readers of documents made of pages, which OCR may read.
_PAGED_READERS: dict[str, Callable[[bytes, str, ReadOptions], _Content]] = {
    "pdf": _read_pdf,
    "image": _read_image,
}
