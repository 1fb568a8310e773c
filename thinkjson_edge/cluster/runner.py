"""A batch folder run on a Ray cluster, with the local batch's exactly-once promise.

``ClusterBatch`` is the local ``Batch`` with two steps replaced: getting ready starts the
workers instead of loading a model, and working through the files hands them to the
workers instead of extracting them one after another. Everything else is the local
runner's own code, on the driver: scanning and hashing, the lock, the job database and
its recovery after a kill, and the three steps of each file: claim the row, write the
result atomically, record the outcome. Workers write nothing; one process writes, so the
job database needs no more than it has.

A document whose worker died under it keeps its ``running`` row and goes to another
worker (``MAX_DOCUMENT_TRIES`` in all); only one reply per document is ever written, so
there is no second row or file. A driver killed with ``kill -9`` leaves ``running`` rows,
which the next run redoes, as locally; its workers die with it (Ray ends the actors of a
driver that is gone).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from thinkjson_edge.batch.runner import Batch, BatchOptions, BatchSummary, InputFile, Observer
from thinkjson_edge.cluster.model_files import model_plan
from thinkjson_edge.cluster.options import MAX_DOCUMENT_TRIES, ClusterOptions
from thinkjson_edge.cluster.records import WorkerInfo
from thinkjson_edge.cluster.worker import WorkerSetup
from thinkjson_edge.errors import InputError, JobDatabaseError, ModelLoadError, UsageError
from thinkjson_edge.files import read_bounded
from thinkjson_edge.models.choice import choose_model
from thinkjson_edge.pipeline.documents import document_limit, read_limits

if TYPE_CHECKING:
    from thinkjson_edge.cluster.connection import RayConnection
    from thinkjson_edge.cluster.pool import Finished, WorkerPool
    from thinkjson_edge.pipeline.extractor import ExtractOptions
    from thinkjson_edge.schema import Schema

_WAIT_STEP = 0.2  # seconds; how quickly the driver notices a stop request while waiting

Work = tuple[InputFile, str, str | None]  # a file, its content hash, why it cannot be read


class ClusterObserver(Observer, Protocol):
    """The local batch's observer, and what happens to the workers."""

    def workers_starting(self, count: int, address: str) -> None: ...

    def worker_ready(self, info: WorkerInfo) -> None: ...

    def worker_failed(self, where: str, reason: str) -> None: ...

    def worker_died(self, where: str, file: str | None, restarting: bool) -> None: ...


@dataclass
class _Costs:
    """What the cluster path costs per document, beside the model (for the summary)."""

    documents: int = 0
    round_trip_seconds: float = 0.0  # from sending the bytes to having the reply
    worker_seconds: float = 0.0  # reading and extracting on the worker
    model_seconds: float = 0.0  # prompt evaluation and decoding
    driver_seconds: float = 0.0  # from the claim to the recorded outcome

    def per_document(self) -> dict[str, float]:
        n = self.documents or 1
        return {
            "round_trip": self.round_trip_seconds / n,
            "on_worker": self.worker_seconds / n,
            "model": self.model_seconds / n,
            # Sending the bytes and the reply, scheduling, and waiting for the driver.
            "cluster_overhead": (self.round_trip_seconds - self.worker_seconds) / n,
            "driver": self.driver_seconds / n,
        }


@dataclass
class _Open:
    """A claimed file not yet recorded: in flight, or waiting to be sent (again)."""

    item: InputFile
    digest: str
    started: float
    lost: list[str] = field(default_factory=list)  # why each worker it went to was lost
    avoid: set[int] = field(default_factory=set)  # workers that died under it


class ClusterBatch(Batch):
    """One batch over IN_DIR into OUT_DIR, its documents extracted by workers on Ray."""

    pool_class: type[WorkerPool] | None = None  # None: WorkerPool (a test may give a flaw)

    def __init__(
        self,
        in_dir: Path,
        out_dir: Path,
        schema: Schema,
        *,
        model: str | None,
        device: str,
        extract_options: ExtractOptions,
        cluster: ClusterOptions,
        options: BatchOptions | None = None,
        observer: ClusterObserver | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        if importlib.util.find_spec("ray") is None:  # found without importing it
            raise UsageError('--ray needs Ray: pip install "thinkjson-edge[cluster]" on each node')
        super().__init__(
            in_dir,
            out_dir,
            schema,
            _no_local_model,
            options,
            observer=observer,
            should_stop=should_stop,
        )
        self.cluster = cluster
        self._model_spec = model
        self._device = device
        self._extract_options = extract_options
        self._cluster_observer = observer
        self._connection: RayConnection | None = None
        self.pool: WorkerPool | None = None
        self._open_files: dict[str, _Open] = {}
        self._costs = _Costs()
        self._busy_wall = 0.0
        self.retried: set[str] = set()
        self._workers_seen: dict[str, Any] = {"infos": [], "failures": [], "deaths": []}

    def close(self) -> None:
        try:
            if self.pool is not None:
                self._workers_seen = self._workers_record()  # the summary is made after close
                self.pool.stop()
            if self._connection is not None:
                self._connection.close()
        finally:
            self.pool = None
            self._connection = None
            super().close()

    # -- the workers -------------------------------------------------------------------

    def _ready_to_extract(self) -> None:
        """Start the workers and wait until one holds the model (exit 5 if none can)."""
        if self.pool is not None:
            return
        from thinkjson_edge.cluster.connection import RayConnection
        from thinkjson_edge.cluster.pool import WorkerPool

        self.observer.loading_model()
        started = time.perf_counter()
        plan = model_plan(choose_model(self._model_spec))  # a bad --model: exit 5, as locally
        self._connection = RayConnection(self.cluster.address)
        self._connection.open()
        setup = WorkerSetup(
            plan=plan,
            schema=self.schema.schema,
            schema_source=self.schema.source,
            schema_hash=self.schema_hash,
            options=self._extract_options,
            device=self._device,
            threads=self.cluster.threads,
            ocr=self.options.read.ocr,
            reuse_prefix=self.options.reuse_prefix,
            model_cache=self.cluster.model_cache,
            use_shared_model_path=self.cluster.use_shared_model_path,
            environment=_reading_settings(),
        )
        self.pool = (self.pool_class or WorkerPool)(setup, self.cluster, self)
        count = self.pool.start()
        if self._cluster_observer is not None:
            self._cluster_observer.workers_starting(count, self.cluster.address)
        deadline = started + self.cluster.first_worker_seconds
        while self.pool.ready_count() == 0 and not self.should_stop():
            if self.pool.live_count() == 0:
                raise ModelLoadError(f"no worker could load the model: {self._failures()}")
            if time.perf_counter() > deadline:
                raise ModelLoadError(
                    f"no worker had the model loaded within {self.cluster.first_worker_seconds:g}"
                    " s; the cluster may have no room for one (see `ray status`)"
                )
            self.pool.wait(_WAIT_STEP)
        self._summary.load_seconds = time.perf_counter() - started

    # PoolObserver: passed on to the batch's observer, when it listens.

    def worker_ready(self, info: WorkerInfo) -> None:
        if self._cluster_observer is not None:
            self._cluster_observer.worker_ready(info)

    def worker_failed(self, where: str, reason: str) -> None:
        if self._cluster_observer is not None:
            self._cluster_observer.worker_failed(where, reason)

    def worker_died(self, where: str, file: str | None, restarting: bool) -> None:
        if self._cluster_observer is not None:
            self._cluster_observer.worker_died(where, file, restarting)

    # -- the documents -----------------------------------------------------------------

    def _work_through(self, work: list[Work]) -> None:
        """Keep every worker busy with one document until the work is done or a stop comes."""
        for item, digest, error in work:
            if error is not None and not self.should_stop():
                self._process(item, digest, error)  # unreadable: fails here, as locally
        queue: deque[Work] = deque(entry for entry in work if entry[2] is None)
        began = time.perf_counter()
        try:
            while True:
                self._send(queue)
                if not self._open_files and (not queue or self.should_stop()):
                    break
                pool = self._workers()
                if pool.live_count() == 0:
                    raise ModelLoadError(f"every worker is gone ({self._failures()})")
                for finished in pool.wait(_WAIT_STEP):
                    self._heard(finished, queue)
        except BaseException:
            self._give_back_open_files()  # Ctrl-C twice, or no worker left: redone next run
            raise
        finally:
            self._busy_wall += time.perf_counter() - began

    def _send(self, queue: deque[Work]) -> None:
        """Hand waiting files to idle workers, reading each one's bytes here."""
        pool = self._workers()
        while queue and not self.should_stop():
            pair = self._next_pair(queue, pool)
            if pair is None:
                return
            position, worker = pair
            item, digest, _error = queue[position]
            del queue[position]
            opened = self._open_files.get(item.rel)
            if opened is None:
                self._claim(item, digest)
                opened = self._open_files[item.rel] = _Open(item, digest, time.perf_counter())
            try:
                if (link_out := self._link_out_now(item)) is not None:
                    raise InputError(link_out)
                data = read_bounded(item.path, document_limit(), error=InputError)
            except InputError as exc:
                self._close_file(item.rel, self._failure(item.rel, str(exc), opened.started))
                continue
            pool.submit(worker, item.rel, str(item.path), data)

    def _next_pair(self, queue: deque[Work], pool: WorkerPool) -> tuple[int, int] | None:
        """The first waiting file an idle worker may take, and that worker.

        A file does not go back to a worker that died under it while another one lives.
        """
        live = set(pool.live())
        for worker in pool.idle():
            for position, (item, _digest, _error) in enumerate(queue):
                opened = self._open_files.get(item.rel)
                if opened is None or worker not in opened.avoid or live <= opened.avoid:
                    return position, worker
        return None

    def _workers(self) -> WorkerPool:
        if self.pool is None:
            raise RuntimeError("the workers are not started")
        return self.pool

    def _failures(self) -> str:
        failures = self.pool.failures if self.pool is not None else []
        return "; ".join(f"{f['worker']}: {f['reason']}" for f in failures) or "no reason given"

    def _heard(self, finished: Finished, queue: deque[Work]) -> None:
        rel = str(finished.token)
        opened = self._open_files[rel]
        if finished.lost is not None:
            opened.lost.append(finished.lost)
            opened.avoid.add(finished.worker)
            self.retried.add(rel)
            if len(opened.lost) < MAX_DOCUMENT_TRIES:
                queue.appendleft((opened.item, opened.digest, None))  # next, on another worker
                return
            message = (
                f"the worker extracting it died {len(opened.lost)} times (last: "
                f"{opened.lost[-1]}); if it crashes workers, exclude it (--glob) or move it away"
            )
            self._close_file(rel, self._failure(rel, message, opened.started))
            return
        reply = finished.reply
        assert reply is not None
        if reply.result is not None:
            outcome = self._write_result(rel, reply.result, opened.started)
        else:
            outcome = self._failure(rel, reply.error or "no result", opened.started)
        costs = self._costs
        costs.documents += 1
        costs.round_trip_seconds += finished.round_trip_seconds
        costs.worker_seconds += reply.worker_seconds
        costs.model_seconds += (outcome.prompt_seconds or 0.0) + (outcome.decode_seconds or 0.0)
        costs.driver_seconds += outcome.total_seconds or 0.0
        self._close_file(rel, outcome)

    def _close_file(self, rel: str, outcome: Any) -> None:
        self._open_files.pop(rel, None)
        self._record(rel, outcome)

    def _give_back_open_files(self) -> None:
        """Claimed files not recorded become pending, their tries not counted (as locally)."""
        for rel in list(self._open_files):
            with contextlib.suppress(JobDatabaseError):  # left running: recovered next run
                self.store.release(rel)
        self._open_files.clear()

    # -- the summary -------------------------------------------------------------------

    def _final_summary(self) -> BatchSummary:
        summary = super()._final_summary()
        # Documents overlap on a cluster: docs/min is over the wall time they were in flight.
        summary.busy_seconds = self._busy_wall if summary.processed else 0.0
        return summary

    def cluster_report(self) -> dict[str, Any]:
        """Who worked, who failed or died, and what the cluster path cost per document."""
        seen = self._workers_record() if self.pool is not None else self._workers_seen
        infos: list[WorkerInfo] = seen["infos"]
        return {
            "address": self.cluster.address,
            "workers": [
                {
                    "worker": info.index,
                    "node": info.node_address,
                    "pid": info.pid,
                    "load_seconds": round(info.load_seconds, 3),
                    "model_files": info.placed,
                }
                for info in infos
            ],
            "nodes": len({info.node_id for info in infos}),
            "worker_failures": seen["failures"],
            "worker_deaths": seen["deaths"],
            "retried": sorted(self.retried),
            "seconds_per_document": {
                key: round(value, 4) for key, value in self._costs.per_document().items()
            },
        }

    def _workers_record(self) -> dict[str, Any]:
        pool = self._workers()
        return {"infos": pool.infos(), "failures": list(pool.failures), "deaths": list(pool.deaths)}


def _no_local_model() -> Any:
    raise RuntimeError("a cluster batch loads its model on the workers, never on the driver")


def _reading_settings() -> dict[str, str]:
    """The read limits set on the driver (options or environment), for the workers."""
    return {
        limit.variable: os.environ[limit.variable]
        for limit in read_limits()
        if os.environ.get(limit.variable)
    }
