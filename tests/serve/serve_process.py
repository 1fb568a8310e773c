"""The real server, started as its own process on 127.0.0.1, and what the tests ask of it.

``thinkjson-edge serve`` runs the embedded default model through real llama.cpp; the tests
call it with real clients (httpx, the openai package). Its log goes to a file the tests
read (request ids, stopped generations, and that no document text is in it).
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
API_KEY = "test-key-0123456789abcdef"
START_SECONDS = 300  # loading the model on a busy 2-core machine takes a while


@dataclass
class Server:
    """A running server process, its address and its log."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    key: str | None = None

    def client(self, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def metric(self, name: str) -> float:
        """One sample of /metrics (``name`` with its labels), 0 when not there yet."""
        with self.client() as client:
            text = client.get("/metrics").text
        found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    def wait_for_metric(self, name: str, at_least: float, seconds: float = 120) -> float:
        deadline = time.monotonic() + seconds
        while (value := self.metric(name)) < at_least:
            assert time.monotonic() < deadline, f"{name} stayed at {value}, below {at_least}"
            time.sleep(0.1)
        return value

    def is_up(self) -> bool:
        with self.client() as client:
            return client.get("/health").status_code == 200


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "thinkjson_edge", "serve", *arguments]


def start_server(log_path: Path, *arguments: str, key_file: Path | None = None) -> Server:
    port = free_port()
    command = serve_command("--port", str(port), "--device", "cpu", "--no-think", *arguments)
    if key_file is not None:
        command += ["--api-key-file", str(key_file)]
    log = log_path.open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    server = Server(f"http://127.0.0.1:{port}", process, log_path, API_KEY if key_file else None)
    deadline = time.monotonic() + START_SECONDS
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}:\n{server.log()}")
        try:
            if server.is_up():
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            stop_server(server)
            raise AssertionError(f"the server did not answer in {START_SECONDS} s:\n{server.log()}")
        time.sleep(0.25)


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
