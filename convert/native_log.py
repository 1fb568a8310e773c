"""Keep llama.cpp's own log lines (written straight to fd 2) off the user's terminal."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


class CapturedLog:
    """What the C library wrote while captured (read after the ``with`` block)."""

    text: str = ""

    def tail(self, lines: int = 5) -> str:
        return "\n".join(self.text.strip().splitlines()[-lines:])


@contextmanager
def captured_stderr() -> Iterator[CapturedLog]:
    """Redirect file descriptor 2 to a temporary file for the block; keep its text."""
    log = CapturedLog()
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield log
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            log.text = sink.read().decode("utf-8", errors="replace")
