"""Shared tools of the hostile-input tests: the real command in a subprocess, and hashes.

Every case runs ``python -m thinkjson_edge`` as a user would, with a generous timeout (a
hang is a failure, not a benchmark), and checks the documented exit code, a one-line
message without a traceback, and that no input changed.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

# Generous: a refusal takes well under a second; only a hang or a runaway read takes this.
HANG_SECONDS = 60


def run_cli(
    *args: str | Path,
    timeout: float = HANG_SECONDS,
    cwd: Path | None = None,
    stdin: int | None = subprocess.DEVNULL,
    stdout: int | None = subprocess.PIPE,
) -> subprocess.CompletedProcess[str]:
    """Run ``thinkjson-edge ARGS`` in a subprocess; a run past ``timeout`` fails the test."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "thinkjson_edge", *map(str, args)],
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"thinkjson-edge {' '.join(map(str, args))} ran past {timeout} s")


def assert_refused(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """The run exited with ``code`` and one error line (naming ``words``), no traceback."""
    message = result.stderr.strip()
    assert result.returncode == code, (result.returncode, message[-2000:])
    assert "Traceback" not in result.stderr, message[-2000:]
    errors = [line for line in message.splitlines() if line.startswith("thinkjson-edge: error:")]
    assert len(errors) == 1, message[-2000:]
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]


def file_hashes(*roots: Path) -> dict[str, str]:
    """The sha256 of every regular file under ``roots`` (files or folders), by path."""
    return {str(path): _sha256(path) for path in _files(roots)}


def _files(roots: Iterable[Path]) -> Iterable[Path]:
    for root in roots:
        if root.is_file() and not root.is_symlink():
            yield root
        elif root.is_dir() and not root.is_symlink():
            yield from sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
