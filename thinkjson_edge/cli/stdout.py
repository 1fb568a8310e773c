"""Standard output that cannot fail silently: a write error or a closed stdout is exit 7.

Python hides both failures from a command: with fd 1 closed ``sys.stdout`` is None and
click drops what it is asked to print (exit 0, result lost), and a full device or a closed
pipe raises a bare ``OSError`` wherever the buffer happens to be flushed (a traceback,
exit 1), or only at interpreter exit (exit 120). ``guard_stdout`` puts a stream in
``sys.stdout`` whose failures are ``StdoutWriteError`` (an ``OutputWriteError``, exit 7),
and ``finish_stdout`` flushes it before the command's exit code stands.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from typing import NoReturn

from thinkjson_edge.errors import OutputWriteError

STDOUT_FD = 1


class StdoutWriteError(OutputWriteError):
    """The result could not be written to standard output."""


class _CheckedStdout(io.TextIOWrapper):
    """Standard output whose write errors are ``StdoutWriteError``, and which, once failed,
    discards what is left so that nothing fails again at exit."""

    closed_at_start = False  # fd 1 was closed when the command started
    failed = False

    def write(self, text: str) -> int:
        if self.closed_at_start and text:  # "" and b"" are click's probes, not output
            self._fail(None)
        try:
            return super().write(text)
        except OSError as exc:
            self._fail(exc)

    def flush(self) -> None:
        if self.failed:
            return
        try:
            super().flush()
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError | None) -> NoReturn:
        self.failed = True
        _discard(self.buffer)
        if exc is None:
            raise StdoutWriteError("standard output is closed, so the result cannot be written")
        raise StdoutWriteError(
            f"the result cannot be written to standard output ({exc.strerror or exc}); "
            "what was written there is incomplete"
        ) from exc


def guard_stdout() -> _CheckedStdout | None:
    """Replace the process's stdout with a checked one; None when stdout is not fd 1 (tests).

    A closed fd 1 gets /dev/null, so that a file opened later cannot become fd 1 and
    receive what native code prints.
    """
    current = sys.stdout
    if current is not None and not _writes_to_fd1(current):
        return None
    if current is not None:
        with contextlib.suppress(OSError, ValueError):
            current.flush()
    closed = current is None or not _fd_open(STDOUT_FD)
    if closed:
        _point_at_devnull(STDOUT_FD)
    raw = open(os.dup(STDOUT_FD), "wb", closefd=True)  # noqa: SIM115 (lives as sys.stdout)
    encoding = getattr(current, "encoding", None) or "utf-8"
    if encoding.lower().replace("-", "") in ("ascii", "usascii", "ansix3.41968"):
        encoding = "utf-8"  # what click would write through anyway
    checked = _CheckedStdout(
        raw,
        encoding=encoding,
        errors=getattr(current, "errors", None) or "strict",
        line_buffering=bool(current is not None and current.line_buffering),
    )
    checked.closed_at_start = closed
    sys.stdout = checked
    return checked


def require_stdout() -> None:
    """Raise StdoutWriteError now when the result would go to a closed stdout."""
    stream = sys.stdout
    if isinstance(stream, _CheckedStdout) and stream.closed_at_start:
        raise StdoutWriteError(
            "standard output is closed, so the result cannot be written; open it or give --out FILE"
        )
    if stream is None:
        raise StdoutWriteError("standard output is closed, so the result cannot be written")


def finish_stdout() -> None:
    """Flush stdout; a failure is ``StdoutWriteError``."""
    stream = sys.stdout
    if stream is None:
        return
    try:
        stream.flush()
    except OSError as exc:  # a stream this module did not install
        raise StdoutWriteError(
            f"the result cannot be written to standard output ({exc.strerror or exc})"
        ) from exc


def _writes_to_fd1(stream: object) -> bool:
    try:
        return stream.fileno() == STDOUT_FD  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _point_at_devnull(fd: int) -> None:
    null = os.open(os.devnull, os.O_WRONLY)
    if null != fd:
        os.dup2(null, fd)
        os.close(null)


def _discard(buffer: io.BufferedIOBase) -> None:
    """Send what is still buffered to /dev/null, so later flushes (at exit too) succeed."""
    with contextlib.suppress(OSError, ValueError):
        _point_at_devnull(buffer.fileno())
