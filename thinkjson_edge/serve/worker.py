"""The bounded queue and the worker threads that own the model.

llama.cpp's context is not thread-safe, so each worker thread owns one ``Extractor`` and
nothing else touches it: requests reach it only as jobs through one bounded queue. A full
queue is refused at once (the caller answers 503) rather than growing a backlog.

A job is stopped at the next token once its request is given up (the client went away, or
its time ran out): the extractor's text listener raises ``RequestStopped``, a
``Cancelled``, which ends the generation and leaves the extractor usable. A job given up
while it still waits is dropped when a worker takes it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, fields

from thinkjson_edge.pipeline.documents import Document
from thinkjson_edge.pipeline.extractor import ExtractOptions, Extractor, TextListener
from thinkjson_edge.pipeline.result import ExtractionResult
from thinkjson_edge.schema import Schema
from thinkjson_edge.serve.intake import SCHEMA_CHECK_LOCK
from thinkjson_edge.serve.metrics import Metrics
from thinkjson_edge.serve.problems import RequestStopped

log = logging.getLogger("thinkjson_edge.serve")
_JOIN_SECONDS = 30.0  # a stopped generation ends at its next token; this is far beyond it


class QueueFull(Exception):
    """Every worker is busy and the queue holds as many requests as it may."""


@dataclass
class Job:
    """One extraction asked for by one request."""

    request_id: str
    document: Document
    schema: Schema
    options: ExtractOptions
    deadline: float  # time.monotonic() past which the request is given up
    on_text: TextListener | None = None  # sees the output as it is written (streaming)
    future: Future[ExtractionResult] = field(default_factory=Future)
    _stop_reason: str | None = None

    def stop(self, reason: str) -> None:
        """Give the request up: the generation stops at its next token (first reason wins)."""
        if self._stop_reason is None:
            self._stop_reason = reason

    @property
    def stop_reason(self) -> str | None:
        if self._stop_reason is None and time.monotonic() > self.deadline:
            self._stop_reason = "timeout"
        return self._stop_reason


class ExtractionPool:
    """``parallel`` worker threads, each with its own extractor, fed by one bounded queue."""

    def __init__(
        self,
        load_extractor: Callable[[], Extractor],
        *,
        parallel: int,
        capacity: int,
        metrics: Metrics,
    ) -> None:
        if parallel < 1 or capacity < 1:
            raise ValueError("parallel and capacity must be at least 1")
        self._load = load_extractor
        self._parallel = parallel
        self._capacity = capacity
        self._metrics = metrics
        self._jobs: queue.Queue[Job | None] = queue.Queue(maxsize=capacity)
        self._extractors: list[Extractor] = []
        self._threads: list[threading.Thread] = []
        self._running: dict[int, Job] = {}
        self._lock = threading.Lock()
        self._closed = False
        metrics.watch_queue(self.depth)

    @property
    def model_name(self) -> str:
        return self._extractors[0].model.name

    @property
    def parallel(self) -> int:
        return self._parallel

    def start(self) -> None:
        """Load every extractor here, so that a model that cannot load stops the start."""
        self._extractors = [self._load() for _ in range(self._parallel)]
        for index, extractor in enumerate(self._extractors):
            thread = threading.Thread(
                target=self._work, args=(index, extractor), name=f"extractor-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def submit(self, job: Job) -> None:
        """Queue a job, or raise QueueFull at once."""
        if self._closed:
            raise QueueFull("the server is stopping")
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            raise QueueFull(f"{self._capacity} request(s) already wait") from None

    def is_full(self) -> bool:
        """Whether a job submitted now would be refused (checked before reading a body)."""
        waiting, running, _ = self.depth()
        return self._closed or (running >= self._parallel and waiting >= self._capacity)

    def depth(self) -> tuple[int, int, int]:
        """(waiting, running, capacity)."""
        with self._lock:
            running = len(self._running)
        return self._jobs.qsize(), running, self._capacity

    def close(self) -> None:
        """Stop every job, end the threads and free the models."""
        self._closed = True
        with self._lock:
            for job in self._running.values():
                job.stop("shutdown")
        while True:  # jobs still waiting are answered, not left hanging
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None and job.future.set_running_or_notify_cancel():
                job.future.set_exception(RequestStopped("shutdown"))
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(_JOIN_SECONDS)
        for extractor in self._extractors:
            extractor.close()

    def _work(self, index: int, extractor: Extractor) -> None:
        while (job := self._jobs.get()) is not None:
            if not job.future.set_running_or_notify_cancel():
                continue
            with self._lock:
                self._running[index] = job
            try:
                self._run(extractor, job)
            finally:
                with self._lock:
                    del self._running[index]

    def _run(self, extractor: Extractor, job: Job) -> None:
        reason = job.stop_reason
        if reason is not None:  # given up while it waited: no model time spent on it
            self._metrics.generation_stopped(reason)
            job.future.set_exception(RequestStopped(reason))
            return
        began = time.monotonic()
        try:
            with SCHEMA_CHECK_LOCK:  # a schema new to this extractor may be checked again
                extractor.grammar_for(job.schema, job.options.grammar_limits)
            result = extractor.extract(
                job.document, job.schema, on_text=_listener(job), **_overrides(job.options)
            )
        except RequestStopped as stopped:
            self._metrics.generation_stopped(stopped.reason)
            log.info("request_id=%s generation stopped: %s", job.request_id, stopped.reason)
            job.future.set_exception(stopped)
        except Exception as error:  # the request's handler turns it into an answer
            job.future.set_exception(error)
        else:
            self._record(result, time.monotonic() - began)
            job.future.set_result(result)

    def _record(self, result: ExtractionResult, run_seconds: float) -> None:
        generations = [attempt.generation for attempt in result.attempts]
        self._metrics.extraction_done(
            result.valid,
            prompt_tokens=sum(g.prompt_tokens for g in generations),
            generated_tokens=sum(g.generated_tokens for g in generations),
            decode_seconds=sum(g.decode_seconds for g in generations),
            run_seconds=run_seconds,
        )


def _listener(job: Job) -> TextListener:
    """Stops the generation once the job is given up; passes the text on for streaming."""

    def on_text(attempt: int, text: str, reasoning: bool) -> None:
        reason = job.stop_reason
        if reason is not None:
            raise RequestStopped(reason)
        if job.on_text is not None:
            job.on_text(attempt, text, reasoning)

    return on_text


def _overrides(options: ExtractOptions) -> dict[str, object]:
    """Every field of the job's options, as ``Extractor.extract`` takes them."""
    return {f.name: getattr(options, f.name) for f in fields(ExtractOptions)}
