"""A real one-node Ray cluster on the loopback address, started and stopped by the tests.

It is started with ``ray start --head --block`` rather than ``ray.init()``: every port is
fixed in advance, so the raylet does not wait for its agents to write their port files
(a wait Ray bounds at 15 s, which a busy 2-core machine can miss), and the test process and
the batches it runs as subprocesses all join it as drivers, as on a real cluster.

Its address is 127.0.0.2, not 127.0.0.1: Ray replaces 127.0.0.1 and ``localhost`` with the
machine's network address (so that other nodes could reach it), and these tests send
nothing off the loopback range. It has its own temporary folder, no dashboard and no
token (nothing outside this machine reaches the loopback), so it neither uses nor leaves
anything of another Ray on the machine; and it is small: 2 CPUs, a 200 MB object store.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

START_SECONDS = 240  # a busy 2-core machine takes a minute to start Ray's processes
STOP_SECONDS = 60
OBJECT_STORE_BYTES = 200 * 2**20
CPUS = 2
HOST = "127.0.0.2"  # loopback, and not one Ray rewrites (see above)

_PORT_OPTIONS = (
    "--port",
    "--node-manager-port",
    "--object-manager-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--runtime-env-agent-port",
    "--metrics-export-port",
    "--ray-client-server-port",
)


@dataclass
class RayHead:
    address: str  # HOST:PORT of the head, as ``--ray`` takes it
    process: subprocess.Popen[bytes]
    environment: dict[str, str]  # what a driver needs to join (the token)
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_head(folder: Path, tries: int = 3) -> RayHead:
    """Start the head and join it; a start that fails is tried again (see ``_start``)."""
    for attempt in range(1, tries + 1):
        try:
            return _start(folder / f"try-{attempt}")
        except _NotStarted as failure:
            if attempt == tries:
                raise AssertionError(str(failure)) from None
    raise AssertionError("unreachable")


class _NotStarted(Exception):
    """The head stopped while starting: on a busy machine the raylet can give up waiting
    for its agents (Ray's fixed 15 s), and a second start usually finds the caches warm."""


def _start(folder: Path) -> RayHead:
    folder.mkdir(parents=True)
    ports = {option: free_port() for option in _PORT_OPTIONS}
    # Set before Ray reads its settings: the drivers (this process and the batches it
    # starts, which inherit it) join without a token, as the head expects.
    environment = {"RAY_AUTH_MODE": "disabled"}
    os.environ.update(environment)
    import ray

    ray_cli = Path(sys.executable).with_name("ray")
    command = [
        str(ray_cli),
        "start",
        "--head",
        "--block",
        f"--node-ip-address={HOST}",
        f"--num-cpus={CPUS}",
        "--num-gpus=0",
        "--include-dashboard=false",
        f"--object-store-memory={OBJECT_STORE_BYTES}",
        "--disable-usage-stats",
        f"--temp-dir={folder / 'ray'}",
        *(f"{option}={port}" for option, port in ports.items()),
    ]
    log_path = folder / "ray-head.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **environment},
            start_new_session=True,  # its processes are ours to stop, and no one else's
        )
    head = RayHead(f"{HOST}:{ports['--port']}", process, environment, log_path)
    deadline = time.monotonic() + START_SECONDS
    while "Ray runtime started" not in head.log():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_head(head)
            raise _NotStarted(f"the Ray head did not start:\n{head.log()[-3000:]}")
        time.sleep(0.5)
    try:
        ray.init(address=head.address, logging_level="WARNING", log_to_driver=False)
    except BaseException:
        stop_head(head)
        raise
    return head


def stop_head(head: RayHead) -> None:
    """Leave the cluster, stop the head, and make sure none of its processes is left."""
    import ray

    with suppress(Exception):
        ray.shutdown()
    started = _descendants(head.process.pid)
    if head.process.poll() is None:
        head.process.send_signal(signal.SIGTERM)
        try:
            head.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            head.process.kill()
            head.process.wait()
    for pid in started:  # what the head started and did not stop in time
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for name in head.environment:
        os.environ.pop(name, None)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux's /proc), children first."""
    found: list[int] = []
    waiting = [pid]
    while waiting:
        parent = waiting.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with suppress(OSError):
                children = [int(c) for c in (task / "children").read_text().split()]
                found += children
                waiting += children
    return found
