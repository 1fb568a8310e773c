"""Every failure a user can cause, as one exception class each.

The library raises these; only ``cli.py`` turns them into exit codes. Each
message says what went wrong and how to fix it.
"""

from __future__ import annotations


class ThinkJsonError(Exception):
    """Base class of every error this package raises on purpose."""


class SchemaError(ThinkJsonError):
    """The JSON Schema cannot be used: unreadable, malformed, or invalid for its draft."""


class RemoteReferenceError(SchemaError):
    """The schema points outside itself (``$ref`` to a URL or file); nothing is fetched."""


class InputError(ThinkJsonError):
    """The document cannot be read: missing, empty, binary, badly encoded or unsupported."""


class DocumentTooLongError(InputError):
    """The document does not fit in the model's context window."""


class ModelLoadError(ThinkJsonError):
    """The model file is missing, is not a GGUF, or llama.cpp could not load it."""


class OutputWriteError(ThinkJsonError):
    """The result cannot be written where it was asked to go."""


class GenerationError(ThinkJsonError):
    """The model produced no usable output (should not happen under the grammar)."""


class Cancelled(ThinkJsonError):
    """The user stopped a running extraction (raised from a progress callback)."""
