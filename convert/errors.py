"""Errors of conversion and verification, each with the exit code the command line uses.

Kept free of heavy imports so the command line can name them without loading torch.
"""

from __future__ import annotations

from thinkjson_edge.errors import ModelLoadError, ThinkJsonError

EXIT_VERIFICATION = 8


class ConversionError(ModelLoadError):
    """A model cannot be read or converted: truncated or corrupt file, unsupported architecture."""


class VerificationError(ThinkJsonError):
    """The converted model does not behave like the model it was converted from."""

    exit_code = EXIT_VERIFICATION
    outcome: object | None = None  # the conversion's figures, attached by the pipeline
