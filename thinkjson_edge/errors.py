"""Every failure a user can cause, as one exception class each.

The library raises these and never exits; the command line (``cli/exit_codes.py``) maps
each class to a documented exit code. Each message says what went wrong and how to fix it.
"""

from __future__ import annotations


class ThinkJsonError(Exception):
    """Base class of every error this package raises on purpose."""


class UsageError(ThinkJsonError):
    """A setting that cannot be used as given; the message names it and what to set."""


class SchemaError(ThinkJsonError):
    """The JSON Schema cannot be used: unreadable, malformed, or invalid for its draft."""


class RemoteReferenceError(SchemaError):
    """The schema points outside itself (``$ref`` to a URL or file); nothing is fetched."""


class InputError(ThinkJsonError):
    """The document cannot be read: missing, empty, binary, badly encoded or unsupported."""


class DocumentTooLongError(InputError):
    """The document does not fit in the model's context window."""


class BundleError(InputError):
    """A model bundle folder is missing, incomplete or malformed."""


class DatasetFormatError(InputError, ValueError):
    """A data file that cannot be read as examples; the message says which row and why."""


class ModelLoadError(ThinkJsonError):
    """The model file is missing, is not a GGUF, or llama.cpp could not load it."""


class ModelNotInstalledError(ModelLoadError):
    """The named model is not in the store."""


class ConversionError(ModelLoadError):
    """A model cannot be read or converted: truncated or corrupt file, unsupported architecture."""


class TeacherError(ModelLoadError, RuntimeError):
    """The teacher model could not be reached or answered with something unusable."""


class OutputWriteError(ThinkJsonError):
    """The result cannot be written where it was asked to go."""


class ModelExistsError(OutputWriteError):
    """Installing would replace a model that is already installed."""


class JobDatabaseError(OutputWriteError):
    """The job database cannot be opened or written."""


class IntegrityError(ThinkJsonError):
    """A file's checksum or size is not what its manifest says."""


class VerificationError(ThinkJsonError):
    """The converted model does not behave like the model it was converted from."""

    outcome: object | None = None  # the conversion's figures, attached by the pipeline


class PullError(ThinkJsonError):
    """The Hub could not be reached, or does not have what the registry names."""


class ConfigError(UsageError, ValueError):
    """A training config that cannot be used; the message names the key and what to set."""


class ReviewError(ThinkJsonError):
    """A review action that cannot be done as asked (the message says why)."""


class GenerationError(ThinkJsonError):
    """The model produced no usable output (should not happen under the grammar)."""


class Cancelled(ThinkJsonError):
    """The user stopped a running extraction (raised from a progress callback)."""
