"""A bounded load test of `thinkjson-edge serve` on loopback: latency, throughput, errors and
the server's memory from the first requests to the last.

    python bench/serve_load.py [--requests 200] [--concurrency 8] [--queue 8] [--think]
                               [--self-correct] [--json] [-- EXTRA SERVE OPTIONS]

Starts the real server (the embedded default model, CPU) on a free port of 127.0.0.1, sends
``--requests`` extractions from ``--concurrency`` clients at once (the SROIE receipts of
tests/fixtures and examples/receipt.txt in turn, as JSON ``{"text", "schema"}``), and stops
the server when the last one is answered. A 503 (queue full) is the intended refusal: it is
counted and the request is sent again after its Retry-After; every other answer but 200 is
an error. The server's resident memory (VmRSS) is read after the first 50 answers (a
quarter of a shorter run) and at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

_REPOSITORY = Path(__file__).resolve().parent.parent
_SROIE = _REPOSITORY / "tests" / "fixtures" / "sroie"
_EXAMPLES = _REPOSITORY / "examples"
_RSS_AFTER = 50  # answers; a shorter run reads it after its first quarter
_MAX_RETRIES = 50  # of one request answered 503; the test stops by itself whatever happens


@dataclass
class Tally:
    """What the clients saw, shared between their threads."""

    latencies: list[float] = field(default_factory=list)
    refused: int = 0  # intended 503s
    errors: dict[str, int] = field(default_factory=dict)
    answered: int = 0
    rss_after: int = _RSS_AFTER  # read the server's memory after this many answers
    rss_after_first: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--queue", type=int, default=8, help="the server's --queue")
    parser.add_argument("--think", action="store_true", help="let the model reason first")
    parser.add_argument("--self-correct", action="store_true", help="allow a second attempt")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    parser.add_argument("serve_options", nargs="*", help="more options for the server")
    args = parser.parse_args(argv)

    bodies = _bodies(args.self_correct)
    port = _free_port()
    command = [
        sys.executable, "-m", "thinkjson_edge", "serve", "--port", str(port), "--device", "cpu",
        "--queue", str(args.queue), "--think" if args.think else "--no-think", "--log-level",
        "warning", *args.serve_options,
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    tally = Tally(rss_after=max(1, min(_RSS_AFTER, args.requests // 4)))
    load_before = os.getloadavg()[0]
    # The server's warnings go to a temporary file, shown if it fails to start.
    with tempfile.TemporaryFile("w+") as log:
        server = subprocess.Popen(command, stderr=log, text=True)
        try:
            _wait_until_up(url, server, log)
            started = time.monotonic()
            _send_all(url, args, bodies, tally, server.pid)
            wall = time.monotonic() - started
            rss_end = _rss_bytes(server.pid)
            metrics = httpx.get(f"{url}/metrics").text
        finally:
            server.terminate()
            server.wait(60)
    figures = _figures(args, tally, wall, rss_end, metrics)
    # Other work on the machine slows every figure: say how busy it was.
    figures["load average (1 min) before, after"] = [
        round(load_before, 2),
        round(os.getloadavg()[0], 2),
    ]
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for name, value in figures.items():
            print(f"{name:32} {value}")
    return 0 if not tally.errors else 1


def _send_all(
    url: str, args: argparse.Namespace, bodies: list[dict[str, Any]], tally: Tally, pid: int
) -> None:
    """Every request, ``args.concurrency`` at a time; returns when the last is answered."""
    limits = httpx.Limits(max_connections=args.concurrency * 2)
    with (
        httpx.Client(base_url=url, timeout=600, limits=limits) as client,
        ThreadPoolExecutor(args.concurrency) as pool,
    ):
        for index in range(args.requests):
            pool.submit(_one_request, client, bodies[index % len(bodies)], tally, pid)


def _one_request(client: httpx.Client, body: dict[str, Any], tally: Tally, pid: int) -> None:
    for _ in range(_MAX_RETRIES):
        began = time.monotonic()
        try:
            answer = client.post("/v1/extract", json=body)
        except httpx.HTTPError as error:
            _count_error(tally, type(error).__name__)
            return
        if answer.status_code == 503:
            with tally.lock:
                tally.refused += 1
            time.sleep(float(answer.headers.get("retry-after", "1")))
            continue
        with tally.lock:
            tally.answered += 1
            if answer.status_code == 200:
                tally.latencies.append(time.monotonic() - began)
            else:
                code = answer.json().get("error", {}).get("code", "?")
                tally.errors[f"{answer.status_code} {code}"] = (
                    tally.errors.get(f"{answer.status_code} {code}", 0) + 1
                )
            if tally.answered == tally.rss_after:
                tally.rss_after_first = _rss_bytes(pid)
        return
    _count_error(tally, f"503 more than {_MAX_RETRIES} times")


def _count_error(tally: Tally, what: str) -> None:
    with tally.lock:
        tally.answered += 1
        tally.errors[what] = tally.errors.get(what, 0) + 1


def _figures(
    args: argparse.Namespace, tally: Tally, wall: float, rss_end: int, metrics: str
) -> dict[str, Any]:
    latencies = sorted(tally.latencies)
    mib = 1 << 20

    def percentile(share: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(share * len(latencies)))], 2)

    return {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "server queue": args.queue,
        "answered 200": len(latencies),
        "errors (not the intended 503s)": sum(tally.errors.values()),
        "error kinds": tally.errors,
        "intended 503s (retried)": tally.refused,
        "p50 latency s": percentile(0.50),
        "p95 latency s": percentile(0.95),
        "mean latency s": round(statistics.fmean(latencies), 2) if latencies else None,
        "requests per minute": round(len(latencies) / wall * 60, 1),
        "wall s": round(wall, 1),
        f"server RSS MiB after {tally.rss_after}": (
            round(tally.rss_after_first / mib, 1) if tally.rss_after_first else None
        ),
        "server RSS MiB at the end": round(rss_end / mib, 1),
        "server tokens/s": _metric(metrics, "thinkjson_tokens_per_second"),
    }


def _bodies(self_correct: bool) -> list[dict[str, Any]]:
    schema = json.loads((_SROIE / "schema.json").read_text(encoding="utf-8"))
    documents = [*sorted(_SROIE.glob("*.txt")), _EXAMPLES / "receipt.txt"]
    return [
        {
            "text": path.read_text(encoding="utf-8"),
            "schema": schema,
            "options": {"self_correct": self_correct},
        }
        for path in documents
    ]


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return round(float(line.split()[1]), 1)
    return None


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_up(
    url: str, server: subprocess.Popen[str], log: IO[str], seconds: float = 300
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise SystemExit(f"the server exited with {server.returncode}: {log.read()}")
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"the server did not answer within {seconds:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
