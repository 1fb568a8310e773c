"""Server-sent events for ``/v1/extract``: the output as the model writes it, then the result.

Events, each with a JSON ``data`` line:

* ``started``: the model began writing (``{"request_id"}``);
* ``text``: a piece of output, ``{"attempt", "text", "reasoning"}`` (reasoning: inside the
  think tags); a second attempt's pieces follow the first's;
* ``result``: what the plain request answers (``object``, ``valid``, ``findings``,
  ``report``), last;
* ``error``: ``{"error": {"code", "message"}}`` instead of ``result``.

The worker thread hands pieces to the event loop; when the client goes away the next send
fails, the stream is closed, and the job is stopped at its next token. A comment line every
few seconds of silence (while the request waits in the queue) finds a gone client too.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from thinkjson_edge.errors import ThinkJsonError
from thinkjson_edge.pipeline.result import ExtractionResult
from thinkjson_edge.serve.problems import ApiError, api_error_for, internal_error, stopped_error
from thinkjson_edge.serve.worker import Job

KEEPALIVE_SECONDS = 5.0
_DONE = object()


class EventRelay:
    """Carries the worker's pieces onto the event loop, in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.events: asyncio.Queue[Any] = asyncio.Queue()
        self._started = False

    def on_text(self, attempt: int, text: str, reasoning: bool) -> None:
        """Called in the worker thread."""
        if not self._started:
            self._started = True
            self._loop.call_soon_threadsafe(self.events.put_nowait, ("started", None))
        piece = {"attempt": attempt, "text": text, "reasoning": reasoning}
        self._loop.call_soon_threadsafe(self.events.put_nowait, ("text", piece))

    def watch(self, job: Job) -> None:
        job.future.add_done_callback(
            lambda _: self._loop.call_soon_threadsafe(self.events.put_nowait, _DONE)
        )


async def event_stream(
    job: Job,
    relay: EventRelay,
    body_of: Callable[[ExtractionResult], dict[str, Any]],
    log_error: Callable[[BaseException], None],
) -> AsyncIterator[str]:
    """The events of one job; closing the stream early stops the job."""
    try:
        while True:
            remaining = job.deadline - time.monotonic()
            if remaining <= 0:
                job.stop("timeout")
                yield _event("error", stopped_error("timeout").body(job.request_id))
                return
            try:
                item = await asyncio.wait_for(
                    relay.events.get(), timeout=min(KEEPALIVE_SECONDS, remaining)
                )
            except TimeoutError:
                yield ": waiting\n\n"
                continue
            if item is _DONE:
                yield _final_event(job, body_of, log_error)
                return
            kind, data = item
            yield _event(kind, {"request_id": job.request_id} if data is None else data)
    finally:
        if not job.future.done():
            job.stop("disconnect")


def _final_event(
    job: Job,
    body_of: Callable[[ExtractionResult], dict[str, Any]],
    log_error: Callable[[BaseException], None],
) -> str:
    error = job.future.exception()
    if error is None:
        return _event("result", body_of(job.future.result()))
    if isinstance(error, ApiError):
        problem = error
    elif isinstance(error, ThinkJsonError):
        problem = api_error_for(error)
    else:
        log_error(error)
        problem = internal_error()
    return _event("error", problem.body(job.request_id))


def _event(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
