"""The request time limit, on a real server that allows 3 seconds.

An attempt may not outlast its request, so the generation ends by itself at the limit (the
engine's time budget) or at its next token after it (the server's stop), whichever comes
first; either way the worker is free again and the client has its 504.
"""

from __future__ import annotations

import time

import pytest
from serve_process import Server
from test_serve_queue import SLOW

pytestmark = pytest.mark.model

REQUEST_SECONDS = 3


@pytest.fixture(scope="module")
def server(server_factory) -> Server:
    return server_factory("--request-timeout", str(REQUEST_SECONDS))


def test_a_request_past_the_time_limit_is_504_and_its_generation_stopped(server: Server) -> None:
    started = time.monotonic()
    with server.client() as client:
        answer = client.post("/v1/extract", json=SLOW)
    assert answer.status_code == 504
    assert answer.json()["error"]["code"] == "timeout"
    assert REQUEST_SECONDS <= time.monotonic() - started < REQUEST_SECONDS + 30
    deadline = time.monotonic() + 120
    while server.metric("thinkjson_queue_running"):
        assert time.monotonic() < deadline, "the generation went on past the time limit"
        time.sleep(0.2)
    assert server.is_up()
