"""Exit codes of the command line, and the one guard that turns errors into them.

Documented in the README. The library never exits: it raises the classes of
``thinkjson_edge.errors``, and every command runs its work inside ``guarded``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click

from thinkjson_edge.errors import (
    InputError,
    IntegrityError,
    ModelLoadError,
    OutputWriteError,
    PullError,
    SchemaError,
    ThinkJsonError,
    UsageError,
    VerificationError,
)

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2  # click's own code for bad options
EXIT_SCHEMA = 3
EXIT_INPUT = 4
EXIT_MODEL = 5
EXIT_INVALID_OUTPUT = 6
EXIT_WRITE = 7
EXIT_INTEGRITY = 8  # a checksum, a size or a converted model's behaviour is not as expected
EXIT_PULL = 9
EXIT_INTERRUPTED = 130

_EXIT_BY_ERROR: tuple[tuple[type[ThinkJsonError], int], ...] = (
    (UsageError, EXIT_USAGE),
    (SchemaError, EXIT_SCHEMA),
    (InputError, EXIT_INPUT),
    (ModelLoadError, EXIT_MODEL),
    (OutputWriteError, EXIT_WRITE),
    (IntegrityError, EXIT_INTEGRITY),
    (VerificationError, EXIT_INTEGRITY),
    (PullError, EXIT_PULL),
)


def exit_code_for(error: ThinkJsonError) -> int:
    """The documented exit code of an error (1 for a class with none: a bug)."""
    return next((code for kind, code in _EXIT_BY_ERROR if isinstance(error, kind)), EXIT_INTERNAL)


def fail(error: ThinkJsonError) -> NoReturn:
    """Print the error's message and exit with its documented code."""
    click.echo(f"thinkjson-edge: error: {error}", err=True)
    sys.exit(exit_code_for(error))


def interrupted(note: str = "") -> NoReturn:
    """Say that Ctrl-C stopped the command (and what was kept), then exit 130."""
    click.echo(f"thinkjson-edge: interrupted{'; ' + note if note else ''}", err=True)
    sys.exit(EXIT_INTERRUPTED)


@contextmanager
def guarded(on_interrupt: str = "") -> Iterator[None]:
    """Run a command's work: a library error becomes its exit code, Ctrl-C becomes 130.

    ``on_interrupt`` says what Ctrl-C leaves behind ("nothing was written", where the
    finished work is kept).
    """
    try:
        yield
    except ThinkJsonError as error:
        fail(error)
    except KeyboardInterrupt:
        interrupted(on_interrupt)
