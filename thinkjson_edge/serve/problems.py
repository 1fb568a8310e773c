"""Errors as the client sees them: a status and ``{"error": {"code", "message"}}``, never a
traceback.

Every refusal the server makes itself is an ``ApiError``; a library error
(``thinkjson_edge.errors``) becomes one through ``api_error_for``, with the library's own
message, which says what is wrong and how to fix it.
"""

from __future__ import annotations

from typing import Any

from thinkjson_edge.errors import (
    Cancelled,
    DocumentTooLongError,
    GenerationError,
    InputError,
    RemoteReferenceError,
    SchemaError,
    ThinkJsonError,
    UsageError,
)


class ApiError(Exception):
    """A refusal with its HTTP status, a stable code for programs and a message for people."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if request_id:
            error["request_id"] = request_id
        return {"error": error}


class RequestStopped(Cancelled):
    """A generation stopped by the server for a request: ``reason`` is "disconnect",
    "timeout" or "shutdown"."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"stopped: {reason}")
        self.reason = reason


# Most specific first: RemoteReferenceError is a SchemaError, DocumentTooLongError an InputError.
_STATUS_BY_ERROR: tuple[tuple[type[ThinkJsonError], int, str], ...] = (
    (RemoteReferenceError, 400, "schema_remote_reference"),
    (SchemaError, 400, "schema_unusable"),
    (DocumentTooLongError, 413, "document_too_long"),
    (InputError, 422, "document_unusable"),
    (UsageError, 400, "invalid_option"),
    (GenerationError, 500, "generation_failed"),
)


def api_error_for(error: ThinkJsonError) -> ApiError:
    """The HTTP form of a library error."""
    if isinstance(error, RequestStopped):
        return stopped_error(error.reason)
    for kind, status, code in _STATUS_BY_ERROR:
        if isinstance(error, kind):
            return ApiError(status, code, str(error))
    return ApiError(500, "internal", f"{type(error).__name__}: {error}")


def stopped_error(reason: str) -> ApiError:
    if reason == "timeout":
        return ApiError(504, "timeout", "the request ran past the server's time limit")
    if reason == "shutdown":
        return ApiError(503, "shutting_down", "the server is stopping")
    return ApiError(499, "client_disconnected", "the client went away")


def internal_error() -> ApiError:
    """What a client sees of a bug; the log has the traceback under the request id."""
    return ApiError(500, "internal", "internal error; the server log has it under the request id")
