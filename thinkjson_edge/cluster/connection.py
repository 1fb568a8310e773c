"""Joining a Ray cluster, or starting one on this machine, for the length of one batch."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from typing import Any

import ray

from thinkjson_edge.cluster.options import LOCAL
from thinkjson_edge.errors import UsageError


class RayConnection:
    """This process as the driver of a Ray cluster; a Ray it started is stopped on close.

    A process already connected (a test, a notebook) is used as it is and left connected.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self._started_here = False

    def open(self) -> None:
        if ray.is_initialized():
            return
        settings: dict[str, Any] = {
            "log_to_driver": False,  # workers' output would break the progress bar
            "logging_level": logging.ERROR,  # not its notices (token auth on, ...)
        }
        if self.address == LOCAL:
            # A private instance: no dashboard listening, nothing reachable from outside.
            settings.update(address="local", include_dashboard=False)
        else:
            settings["address"] = self.address
        with _handlers_kept():
            try:
                ray.init(**settings)
            except Exception as exc:  # a wrong address, no cluster there, another Ray version
                first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
                raise UsageError(
                    f"--ray {self.address}: cannot join the Ray cluster ({first}); start one "
                    "with `ray start --head` or check the address"
                ) from exc
        self._started_here = True

    def close(self) -> None:
        if self._started_here:
            ray.shutdown()  # also stops the local instance this process started
            self._started_here = False

    def __enter__(self) -> RayConnection:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextlib.contextmanager
def _handlers_kept() -> Any:
    """Keep the signal handlers the batch installed: ``ray.init`` replaces SIGTERM's with
    one that exits at once, and SIGTERM must stop a cluster batch as gently as a local one.
    Ray's own processes die with this one anyway (they share its fate on Linux)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kept = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in kept.items():
            if handler is not None:
                signal.signal(number, handler)
