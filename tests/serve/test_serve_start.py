"""Refusals at start: each is exit 2 with a message, before any model loads."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from serve_process import ROOT, serve_command


def run_serve(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        serve_command(*arguments), capture_output=True, text=True, timeout=120, cwd=ROOT
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.com"])
def test_binding_beyond_loopback_without_a_key_is_refused(host: str) -> None:
    done = run_serve("--host", host, "--port", "0")
    assert done.returncode == 2
    assert f"--host {host}: binding an address other than loopback" in done.stderr
    assert "--api-key-file" in done.stderr
    assert "serving" not in done.stderr


@pytest.mark.parametrize(
    ("content", "problem"),
    [("short\n", "at least 16"), ("two words but long enough\n", "without spaces")],
)
def test_an_unusable_key_file_is_refused(tmp_path: Path, content: str, problem: str) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(content)
    done = run_serve("--host", "0.0.0.0", "--port", "0", "--api-key-file", str(key_file))
    assert done.returncode == 2
    assert problem in done.stderr


def test_a_missing_key_file_is_refused(tmp_path: Path) -> None:
    done = run_serve("--api-key-file", str(tmp_path / "absent"), "--port", "0")
    assert done.returncode == 2
    assert "no such API key file" in done.stderr


def test_a_port_in_use_is_refused_before_the_model_loads() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_serve("--port", str(port))
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: it is in use" in done.stderr
