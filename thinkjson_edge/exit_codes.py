"""Exit codes of the command line, and the one place errors are turned into them.

Documented in the README; the library never exits, it raises ``ThinkJsonError``s.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from thinkjson_edge.errors import (
    InputError,
    ModelLoadError,
    OutputWriteError,
    SchemaError,
    ThinkJsonError,
)

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2  # click's own code for bad options
EXIT_SCHEMA = 3
EXIT_INPUT = 4
EXIT_MODEL = 5
EXIT_INVALID_OUTPUT = 6
EXIT_WRITE = 7
EXIT_INTERRUPTED = 130

_EXIT_BY_ERROR: tuple[tuple[type[ThinkJsonError], int], ...] = (
    (SchemaError, EXIT_SCHEMA),
    (InputError, EXIT_INPUT),
    (ModelLoadError, EXIT_MODEL),
    (OutputWriteError, EXIT_WRITE),
)


def fail(error: ThinkJsonError) -> NoReturn:
    """Print the error's message and exit with its documented code."""
    code = next((c for kind, c in _EXIT_BY_ERROR if isinstance(error, kind)), EXIT_INTERNAL)
    click.echo(f"thinkjson-edge: error: {error}", err=True)
    sys.exit(code)
