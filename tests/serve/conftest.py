"""One real server process per test module (``serve_process``), stopped when it is done."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from serve_process import API_KEY, Server, start_server, stop_server


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("key") / "api-key"
    path.write_text(API_KEY + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Server]]:
    """Starts servers that are stopped when the module is done."""
    started: list[Server] = []

    def start(*arguments: str, key_file: Path | None = None) -> Server:
        log_path = tmp_path_factory.mktemp("serve") / "server.log"
        server = start_server(log_path, *arguments, key_file=key_file)
        started.append(server)
        return server

    yield start
    for server in started:
        stop_server(server)
