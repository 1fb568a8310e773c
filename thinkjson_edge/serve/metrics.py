"""What the server has done, in Prometheus' text format at ``GET /metrics``.

Request counts by route and status, latency histograms by route, the queue's depth, the
generations stopped (and why), and tokens generated over decoding time. Written by the
event loop and the worker threads alike, hence one lock.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

# Seconds; extraction on a CPU takes from a second to minutes.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_PREFIX = "thinkjson"


class Metrics:
    """Counters and histograms of one server process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = time.time()
        self._requests: Counter[tuple[str, int]] = Counter()
        self._latency_buckets: dict[str, list[int]] = {}
        self._latency_sum: Counter[str] = Counter()
        self._latency_count: Counter[str] = Counter()
        self._stopped: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._extractions: Counter[str] = Counter()  # valid / invalid
        self._run_seconds = 0.0  # workers' time on finished extractions (not queue time)
        self._generated_tokens = 0
        self._prompt_tokens = 0
        self._decode_seconds = 0.0
        self._queue_depth: Callable[[], tuple[int, int, int]] = lambda: (0, 0, 0)

    def watch_queue(self, depth: Callable[[], tuple[int, int, int]]) -> None:
        """Where to read (waiting, running, capacity) when the metrics are asked for."""
        self._queue_depth = depth

    def request_done(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(route, status)] += 1
            buckets = self._latency_buckets.setdefault(route, [0] * len(LATENCY_BUCKETS))
            for index, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    buckets[index] += 1
            self._latency_sum[route] += seconds
            self._latency_count[route] += 1

    def generation_stopped(self, reason: str) -> None:
        with self._lock:
            self._stopped[reason] += 1

    def rejected(self, reason: str) -> None:
        with self._lock:
            self._rejected[reason] += 1

    def extraction_done(
        self,
        valid: bool,
        prompt_tokens: int,
        generated_tokens: int,
        decode_seconds: float,
        run_seconds: float,
    ) -> None:
        with self._lock:
            self._extractions["valid" if valid else "invalid"] += 1
            self._run_seconds += run_seconds
            self._prompt_tokens += prompt_tokens
            self._generated_tokens += generated_tokens
            self._decode_seconds += decode_seconds

    def mean_run_seconds(self) -> float | None:
        """A worker's mean time on one extraction, for a Retry-After estimate."""
        with self._lock:
            count = sum(self._extractions.values())
            return self._run_seconds / count if count else None

    def render(self) -> str:
        """Every metric in Prometheus' text exposition format."""
        waiting, running, capacity = self._queue_depth()
        with self._lock:
            lines = _counter(
                "requests_total",
                "HTTP requests answered, by route and status.",
                {f'route="{r}",status="{s}"': n for (r, s), n in sorted(self._requests.items())},
            )
            lines += self._latency_lines()
            lines += _gauge("queue_waiting", "Requests waiting for a worker.", waiting)
            lines += _gauge("queue_running", "Requests being extracted now.", running)
            lines += _gauge("queue_capacity", "Requests that may wait (--queue).", capacity)
            lines += _counter(
                "rejected_total",
                "Requests refused before any work, by reason.",
                {f'reason="{k}"': n for k, n in sorted(self._rejected.items())},
            )
            lines += _counter(
                "generations_stopped_total",
                "Extractions stopped before their end, or dropped from the queue, by reason "
                "(disconnect, timeout, shutdown).",
                {f'reason="{k}"': n for k, n in sorted(self._stopped.items())},
            )
            lines += _counter(
                "extractions_total",
                "Extractions finished, by validity of the kept object.",
                {f'result="{k}"': n for k, n in sorted(self._extractions.items())},
            )
            lines += _counter("prompt_tokens_total", "Prompt tokens.", {"": self._prompt_tokens})
            lines += _counter(
                "generated_tokens_total", "Tokens generated.", {"": self._generated_tokens}
            )
            lines += _counter(
                "decode_seconds_total", "Seconds spent decoding.", {"": self._decode_seconds}
            )
            speed = self._generated_tokens / self._decode_seconds if self._decode_seconds else 0
            lines += _gauge("tokens_per_second", "Generated tokens over decoding seconds.", speed)
            lines += _gauge(
                "uptime_seconds", "Seconds since the server started.", time.time() - self._started
            )
        return "\n".join(lines) + "\n"

    def _latency_lines(self) -> list[str]:
        name = f"{_PREFIX}_request_seconds"
        lines = [
            f"# HELP {name} Time from a request's arrival to its answer.",
            f"# TYPE {name} histogram",
        ]
        for route in sorted(self._latency_buckets):
            for bound, count in zip(LATENCY_BUCKETS, self._latency_buckets[route], strict=True):
                lines.append(f'{name}_bucket{{route="{route}",le="{bound:g}"}} {count}')
            total = self._latency_count[route]
            lines.append(f'{name}_bucket{{route="{route}",le="+Inf"}} {total}')
            lines.append(f'{name}_sum{{route="{route}"}} {self._latency_sum[route]:.6f}')
            lines.append(f'{name}_count{{route="{route}"}} {total}')
        return lines


def _counter(name: str, help: str, samples: dict[str, float]) -> list[str]:
    full = f"{_PREFIX}_{name}"
    lines = [f"# HELP {full} {help}", f"# TYPE {full} counter"]
    for labels, value in samples.items():
        lines.append(
            f"{full}{{{labels}}} {_number(value)}" if labels else f"{full} {_number(value)}"
        )
    return lines


def _gauge(name: str, help: str, value: float) -> list[str]:
    full = f"{_PREFIX}_{name}"
    return [f"# HELP {full} {help}", f"# TYPE {full} gauge", f"{full} {_number(value)}"]


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.6g}"
