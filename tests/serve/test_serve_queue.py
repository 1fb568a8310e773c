"""The bounded queue and a client that goes away, on one real server with a queue of 1.

A "slow" request asks for an object no model can write quickly (120 strings of at least 120
characters each, copying off): thousands of tokens, so it is still running while the test
does what it needs, and it is always stopped by its client hanging up, never waited for.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
from serve_process import Server

pytestmark = pytest.mark.model

REQUEST_SECONDS = 300  # nothing here may time out: every slow request is hung up
SLOW = {
    "text": "Batch 7781 was released on 2024-03-02 after review of deviations D-12 and D-19.",
    "schema": {
        "type": "object",
        "properties": {
            "notes": {
                "type": "array",
                "items": {"type": "string", "minLength": 120},
                "minItems": 120,
                "maxItems": 120,
            }
        },
        "required": ["notes"],
    },
    "options": {"self_correct": False, "copy": False},
}
QUICK = {
    "text": "Order 55, total 3.10 EUR.",
    "schema": {"type": "object", "properties": {"total": {"type": "string"}}},
    "options": {"self_correct": False},
}
STOPPED = 'thinkjson_generations_stopped_total{reason="%s"}'


@pytest.fixture(scope="module")
def server(server_factory) -> Server:
    return server_factory("--queue", "1", "--request-timeout", str(REQUEST_SECONDS))


class HeldRequest:
    """A request on a socket of its own, which the test closes when it chooses: the most
    literal client that goes away (an HTTP client's close may leave a busy connection open)."""

    def __init__(self, server: Server, body: dict) -> None:
        host, port = server.url.removeprefix("http://").split(":")
        payload = json.dumps(body).encode()
        head = (
            f"POST /v1/extract HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            "Connection: close\r\n\r\n"
        )
        self.socket = socket.create_connection((host, int(port)), timeout=120)
        self.socket.sendall(head.encode() + payload)

    def hang_up(self) -> None:
        self.socket.close()


def wait_until_idle(server: Server) -> None:
    deadline = time.monotonic() + REQUEST_SECONDS + 60
    while server.metric("thinkjson_queue_running") or server.metric("thinkjson_queue_waiting"):
        assert time.monotonic() < deadline, "the queue did not empty"
        time.sleep(0.2)


def test_a_full_queue_answers_503_with_retry_after(server: Server) -> None:
    running = HeldRequest(server, SLOW)
    server.wait_for_metric("thinkjson_queue_running", 1)
    waiting = HeldRequest(server, SLOW)
    server.wait_for_metric("thinkjson_queue_waiting", 1)
    try:
        with server.client() as client:
            answer = client.post("/v1/extract", json=QUICK)
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "queue_full"
        assert int(answer.headers["retry-after"]) >= 1
        assert server.metric('thinkjson_rejected_total{reason="queue_full"}') >= 1
    finally:
        running.hang_up()
        waiting.hang_up()
    # Both were given up before their time ran out: the waiting one is never run.
    server.wait_for_metric(STOPPED % "disconnect", 2, seconds=60)
    wait_until_idle(server)
    assert server.is_up()


def test_a_client_that_goes_away_stops_its_generation(server: Server) -> None:
    before = server.metric(STOPPED % "disconnect")
    held = HeldRequest(server, SLOW)
    server.wait_for_metric("thinkjson_queue_running", 1)
    time.sleep(1)  # in the prompt or decoding: either way it stops at its next token
    held.hang_up()
    server.wait_for_metric(STOPPED % "disconnect", before + 1, seconds=60)
    assert "generation stopped: disconnect" in server.log()
    wait_until_idle(server)
    # The model is still usable: the next request is answered.
    with server.client() as client:
        answer = client.post("/v1/extract", json=QUICK)
    assert answer.status_code == 200, answer.text


def test_a_streaming_client_that_goes_away_stops_its_generation(server: Server) -> None:
    before = server.metric(STOPPED % "disconnect")
    with (
        server.client() as client,
        client.stream("POST", "/v1/extract?stream=true", json=SLOW) as answer,
    ):
        assert answer.status_code == 200
        for line in answer.iter_lines():
            if line == "event: text":  # the model is writing: hang up now
                break
    server.wait_for_metric(STOPPED % "disconnect", before + 1, seconds=60)
    wait_until_idle(server)
