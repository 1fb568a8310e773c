"""What a request carries, read into memory under limits: the body, its JSON or multipart
parts, the document and the schema.

Nothing the client sent touches the disk: the body is read into memory (counted as it
arrives, so a body without Content-Length is bounded too), multipart is parsed from those
bytes with python-multipart's streaming parser (Starlette's form reader would spool a large
file to a temporary file), and the document is read from the bytes
(``read_document_bytes``). The schema goes through the one schema check, which refuses
remote references and fetches nothing.
"""

from __future__ import annotations

import io
import json
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from thinkjson_edge.errors import SchemaError
from thinkjson_edge.files import format_size
from thinkjson_edge.pipeline.documents import Document, read_document_bytes, text_limit
from thinkjson_edge.pipeline.schema_check import load_usable_schema
from thinkjson_edge.schema import SCHEMA_FILE_LIMIT, Schema
from thinkjson_edge.serve.problems import ApiError
from thinkjson_edge.serve.settings import ServeSettings

if TYPE_CHECKING:
    from starlette.requests import Request

MAX_PARTS = 8  # document, schema, options, stream: a few more is a mistake, not a form
TEXT_SOURCE = "<text>"
# The schema check asks llama.cpp's grammar parser, which reports through process-wide
# hooks (its log callback, file descriptor 2): one check at a time, workers included.
SCHEMA_CHECK_LOCK = threading.Lock()


@dataclass(frozen=True)
class Part:
    """One part of a multipart body."""

    name: str
    data: bytes
    filename: str | None = None


async def read_body(request: Request, limit: int, seconds: float) -> bytes:
    """The whole body, refused (413) once it passes ``limit`` bytes or (408) when it takes
    longer than ``seconds`` to arrive."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _body_too_large(limit)
    parts: list[bytes] = []
    received = 0
    try:
        with anyio.fail_after(seconds):
            async for piece in request.stream():
                received += len(piece)
                if received > limit:
                    raise _body_too_large(limit)
                parts.append(piece)
    except TimeoutError as exc:
        raise ApiError(408, "body_timeout", "the request body took too long to arrive") from exc
    return b"".join(parts)


def parse_json_object(data: bytes | str, what: str = "the request body") -> dict[str, Any]:
    """A JSON object; 400 for anything else (NaN and Infinity included: they are not JSON)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text, parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise _malformed(f"{what} is not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise _malformed(
            f"{what} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    except RecursionError as exc:
        raise _malformed(f"{what} nests too deeply") from exc
    except ValueError as exc:  # a constant refused above, or an integer of too many digits
        raise _malformed(f"{what} is not usable JSON: {str(exc).split(';')[0]}") from exc
    if not isinstance(value, dict):
        raise _malformed(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def parse_multipart(data: bytes, content_type: str) -> dict[str, Part]:
    """The named parts of a multipart/form-data body, each at most once."""
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, parameters = parse_options_header(content_type)
    boundary = parameters.get(b"boundary")
    if not boundary:
        raise _malformed("a multipart body needs a boundary in its Content-Type")
    collector = _PartCollector()
    parser = MultipartParser(boundary, collector.callbacks())
    try:
        parser.write(data)
        parser.finalize()
    except MultipartParseError as exc:
        raise _malformed(f"the multipart body cannot be parsed: {exc}") from exc
    if not collector.finished:
        raise _malformed("the multipart body ends before its closing boundary")
    return collector.parts


def schema_from_value(value: Any, settings: ServeSettings) -> Schema:
    """A usable schema from its JSON value (blocking: run it in a thread)."""
    if not isinstance(value, dict):
        raise ApiError(400, "schema_unusable", '"schema" must be a JSON object')
    size = len(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    limit = SCHEMA_FILE_LIMIT.value()
    if size > limit:
        raise ApiError(
            413,
            "schema_too_large",
            f"the schema is {format_size(size)}, over the server's "
            f"limit of {format_size(limit)} ({SCHEMA_FILE_LIMIT.variable})",
        )
    try:
        with SCHEMA_CHECK_LOCK:
            return load_usable_schema(value, settings.options.grammar_limits)
    except RecursionError as exc:  # the checks bound depth first; a last line of defence
        raise SchemaError("the schema nests too deeply to be checked") from exc


def document_from_text(text: Any, settings: ServeSettings) -> Document:
    """A document given as JSON text, under the text limit."""
    if not isinstance(text, str):
        raise ApiError(400, "document_missing", '"text" must be a string: the document')
    if not text.strip():
        raise ApiError(422, "document_unusable", '"text" is empty; there is nothing to extract')
    limit = text_limit()
    if len(text) > limit.value():
        raise ApiError(
            413,
            "document_too_large",
            f"the text is {len(text):,} characters, over the server's limit of {limit.describe()}",
        )
    return Document(text=text, source=TEXT_SOURCE)


def document_from_bytes(data: bytes, filename: str | None, settings: ServeSettings) -> Document:
    """A document uploaded as a file, read from memory (blocking: run it in a thread)."""
    if not data:
        raise ApiError(422, "document_unusable", "the document part is empty")
    _refuse_many_pages(_pdf_pages(data), settings)  # before any page is read (or OCR'd)
    document = read_document_bytes(data, safe_name(filename))
    _refuse_many_pages(len(document.pages), settings)
    return document


def _pdf_pages(data: bytes) -> int:
    """The page count a PDF declares (0 for anything else, or a PDF the reader will refuse)."""
    if not data.startswith(b"%PDF"):
        return 0
    from pypdf import PdfReader  # imported here, as the document reader does

    try:
        return len(PdfReader(io.BytesIO(data)).pages)
    except Exception:  # a damaged PDF: the document reader says why
        return 0


def _refuse_many_pages(pages: int, settings: ServeSettings) -> None:
    if pages > settings.max_pages:
        raise ApiError(
            413,
            "document_too_large",
            f"the document has {pages:,} pages, over the server's limit of "
            f"{settings.max_pages:,} (--max-pages)",
        )


def safe_name(filename: str | None) -> str:
    """The upload's file name as a document source: its last part, printable, bounded."""
    base = re.split(r"[\\/]", filename or "")[-1]
    base = "".join(c for c in base if c.isprintable())[:255].strip()
    return base if base not in ("", ".", "..") else "document"


class _PartCollector:
    """Collects python-multipart's events into named parts, in memory."""

    def __init__(self) -> None:
        self.parts: dict[str, Part] = {}
        self.finished = False
        self._field = b""
        self._value = b""
        self._headers: dict[bytes, bytes] = {}
        self._data: list[bytes] = []

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: self._add("_field", d[s:e]),
            "on_header_value": lambda d, s, e: self._add("_value", d[s:e]),
            "on_header_end": self._header_end,
            "on_part_data": lambda d, s, e: self._data.append(d[s:e]),
            "on_part_end": self._end,
            "on_end": self._finish,
        }

    def _add(self, attribute: str, piece: bytes) -> None:
        setattr(self, attribute, getattr(self, attribute) + piece)

    def _begin(self) -> None:
        self._headers, self._data = {}, []

    def _header_end(self) -> None:
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field = self._value = b""

    def _end(self) -> None:
        from python_multipart.multipart import parse_options_header

        disposition, parameters = parse_options_header(
            self._headers.get(b"content-disposition", b"")
        )
        name = parameters.get(b"name")
        if disposition != b"form-data" or not name:
            raise _malformed("every multipart part needs Content-Disposition: form-data; name=")
        key = name.decode("utf-8", "replace")
        if key in self.parts:
            raise _malformed(f'the multipart part "{key}" is given twice')
        if len(self.parts) >= MAX_PARTS:
            raise _malformed(f"the multipart body has more than {MAX_PARTS} parts")
        filename = parameters.get(b"filename")
        self.parts[key] = Part(
            key, b"".join(self._data), filename.decode("utf-8", "replace") if filename else None
        )

    def _finish(self) -> None:
        self.finished = True


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _malformed(message: str) -> ApiError:
    return ApiError(400, "malformed_request", message)


def _body_too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "body_too_large",
        f"the request body is over the server's limit of {format_size(limit)} (--max-body-mb)",
    )
