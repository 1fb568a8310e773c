"""The workers of one cluster batch: started, watched, restarted, and given one document each.

Each worker is a Ray actor (``worker.ExtractionWorker``) reserving ``--cpus-per-worker`` and
``--gpus-per-worker``, spread over the nodes. The pool never retries a document by itself:
it reports a document whose worker died as lost, and the batch decides where it goes next.

A worker's life: starting (placing and loading the model) → idle ⇄ busy → gone. A worker
whose process dies is restarted by Ray (at most ``MAX_WORKER_RESTARTS`` times) and reloads
its model from the node's cache; a worker whose model cannot be placed or loaded is
reported once and let go. When a node has no copy of the model, the driver puts the model
into the object store (once per run) and that worker starts again with it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import ray
from ray.exceptions import ActorUnavailableError, RayActorError, RayError, RayTaskError

from thinkjson_edge.cluster.model_files import pieces_of
from thinkjson_edge.cluster.options import MAX_WORKER_RESTARTS, ClusterOptions
from thinkjson_edge.cluster.records import DocumentReply, WorkerInfo
from thinkjson_edge.cluster.worker import ExtractionWorker, WorkerSetup
from thinkjson_edge.errors import UsageError

STARTING, IDLE, BUSY, GONE = "starting", "idle", "busy", "gone"
# A worker Ray is restarting answers "unavailable" at once: ask again after this long,
# for at most RESTART_SECONDS (its process starts again and reloads the model).
ASK_AGAIN_SECONDS = 1.0
RESTART_SECONDS = 900.0


class PoolObserver(Protocol):
    """Hears what happens to the workers (the command line prints it)."""

    def worker_ready(self, info: WorkerInfo) -> None: ...

    def worker_failed(self, where: str, reason: str) -> None: ...

    def worker_died(self, where: str, file: str | None, restarting: bool) -> None: ...


@dataclass
class Finished:
    """A document back from a worker: its reply, or why it was lost on the way."""

    token: Hashable  # what the batch sent it with
    worker: int
    reply: DocumentReply | None
    lost: str | None  # the worker died (or its node left) before the document was done
    round_trip_seconds: float  # from sending to the reply being here


@dataclass
class _Worker:
    index: int
    actor: Any
    state: str = STARTING
    info: WorkerInfo | None = None
    deaths: int = 0
    with_model: bool = False  # started with the driver's copy of the model
    task: tuple[Hashable, float] | None = None  # (token, sent at) while busy
    ask_again_at: float | None = None  # when to ask a restarting worker whether it is back
    restarting_since: float | None = None


class WorkerPool:
    def __init__(self, setup: WorkerSetup, options: ClusterOptions, observer: PoolObserver) -> None:
        self._setup = setup
        self._options = options
        self._observer = observer
        self._remote = ray.remote(ExtractionWorker)
        self._workers: list[_Worker] = []
        self._pending: dict[Any, _Worker] = {}  # ready() or extract() ref -> its worker
        self._pieces: dict[str, list[Any]] | None = None  # the model in the object store
        self.failures: list[dict[str, str]] = []  # workers let go: where and why
        self.deaths: list[dict[str, Any]] = []  # worker processes that died under a document

    # -- starting ----------------------------------------------------------------

    def start(self) -> int:
        """Start the workers (not waiting for them); return how many."""
        count = self._options.workers or self.room()
        for index in range(1, count + 1):
            worker = _Worker(index, self._new_actor(index))
            self._workers.append(worker)
            self._pending[worker.actor.ready.remote()] = worker
        return count

    def room(self) -> int:
        """How many workers the cluster's nodes hold, given what each one reserves."""
        cpus, gpus = self._options.cpus_per_worker, self._options.gpus_per_worker
        count = 0
        for node in ray.nodes():
            if not node.get("Alive"):
                continue
            resources = node.get("Resources", {})
            fits = int(resources.get("CPU", 0) // cpus)
            if gpus:
                fits = min(fits, int(resources.get("GPU", 0) // gpus))
            count += fits
        if count < 1:
            raise UsageError(
                f"the Ray cluster has no node with room for one worker ({cpus:g} CPUs"
                + (f" and {gpus:g} GPUs" if gpus else "")
                + "); lower --cpus-per-worker or --gpus-per-worker"
            )
        return count

    def setup_for(self, index: int) -> WorkerSetup:
        """What worker ``index`` starts with: the same for all (a test gives one a flaw)."""
        return self._setup

    def _new_actor(self, index: int, pieces: dict[str, list[Any]] | None = None) -> Any:
        return self._remote.options(
            num_cpus=self._options.cpus_per_worker,
            num_gpus=self._options.gpus_per_worker,
            max_restarts=MAX_WORKER_RESTARTS,
            max_task_retries=0,  # the batch decides where a lost document goes
            scheduling_strategy="SPREAD",  # one model per node first, then more per node
        ).remote(index, self.setup_for(index), pieces)

    def _send_model(self) -> dict[str, list[Any]]:
        """Put the model's files into the object store, once per run, for nodes without it."""
        if self._pieces is None:
            self._pieces = {
                file.role: [ray.put(piece) for piece in pieces_of(Path(file.driver_path))]
                for file in self._setup.plan.files
            }
        return self._pieces

    # -- the state ----------------------------------------------------------------

    def idle(self) -> list[int]:
        return [w.index for w in self._workers if w.state == IDLE]

    def ready_count(self) -> int:
        return sum(w.state in (IDLE, BUSY) for w in self._workers)

    def live(self) -> list[int]:
        """Workers that are working or may still start."""
        return [w.index for w in self._workers if w.state != GONE]

    def live_count(self) -> int:
        return len(self.live())

    def busy_count(self) -> int:
        return sum(w.state == BUSY for w in self._workers)

    def infos(self) -> list[WorkerInfo]:
        """Every worker that got its model loaded at some point, as it last said."""
        return [w.info for w in self._workers if w.info is not None and w.info.error is None]

    def pid_of(self, index: int) -> int | None:
        info = self._workers[index - 1].info
        return info.pid if info is not None else None

    def busy_with(self) -> dict[Hashable, int]:
        """What each busy worker works on: token -> worker index."""
        return {w.task[0]: w.index for w in self._workers if w.task is not None}

    # -- documents ----------------------------------------------------------------

    def submit(self, index: int, token: Hashable, source: str, data: bytes) -> None:
        worker = self._workers[index - 1]
        if worker.state != IDLE:
            raise RuntimeError(f"worker {index} is {worker.state}, not idle")
        worker.state = BUSY
        worker.task = (token, time.perf_counter())
        self._pending[worker.actor.extract.remote(source, data)] = worker

    def wait(self, timeout: float) -> list[Finished]:
        """Wait up to ``timeout`` seconds for replies and workers; return the documents back."""
        self._ask_restarting_workers()
        if not self._pending:
            time.sleep(timeout)
            return []
        # Back as soon as one is done, with any others done by then.
        done, rest = ray.wait(list(self._pending), num_returns=1, timeout=timeout)
        if done and rest:
            done += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        finished: list[Finished] = []
        for ref in done:
            worker = self._pending.pop(ref)
            if worker.task is None:
                self._heard_ready(worker, ref)
            else:
                finished.append(self._heard_reply(worker, ref))
        return finished

    def _ask_restarting_workers(self) -> None:
        now = time.monotonic()
        for worker in self._workers:
            due = worker.ask_again_at is not None and worker.ask_again_at <= now
            if due and worker.state == STARTING:
                worker.ask_again_at = None
                self._pending[worker.actor.ready.remote()] = worker

    def _heard_ready(self, worker: _Worker, ref: Any) -> None:
        try:
            info: WorkerInfo = ray.get(ref)
        except ActorUnavailableError:  # Ray is restarting it: ask again shortly
            since = worker.restarting_since or time.monotonic()
            if time.monotonic() - since > RESTART_SECONDS:
                self._let_go(worker, f"not back {RESTART_SECONDS:g} s after a restart")
                return
            worker.restarting_since = since
            worker.ask_again_at = time.monotonic() + ASK_AGAIN_SECONDS
            return
        except RayError as exc:
            self._let_go(worker, _reason(exc))
            return
        worker.restarting_since = None
        if info.error is None:
            worker.info, worker.state = info, IDLE
            self._observer.worker_ready(info)
        elif info.missing_model and not worker.with_model:
            # This node lacks the model: start the worker again with the driver's copy.
            ray.kill(worker.actor, no_restart=True)
            worker.actor = self._new_actor(worker.index, self._send_model())
            worker.with_model = True
            self._pending[worker.actor.ready.remote()] = worker
        else:
            worker.info = info
            self._let_go(worker, info.error, where=info.where())

    def _heard_reply(self, worker: _Worker, ref: Any) -> Finished:
        assert worker.task is not None
        token, sent = worker.task
        worker.task = None
        seconds = time.perf_counter() - sent
        try:
            reply: DocumentReply = ray.get(ref)
        except RayTaskError as exc:  # the worker raised past its own handling: a bug
            worker.state = IDLE
            reply = DocumentReply(None, f"internal error on the worker ({_reason(exc)})", 0.0, "")
        except RayError as exc:  # the process died (killed, out of memory) or its node left
            where = self._where(worker)
            self.deaths.append({"worker": where, "file": str(token), "reason": _reason(exc)})
            self._restart(worker, exc)
            self._observer.worker_died(where, str(token), worker.state != GONE)
            return Finished(token, worker.index, None, f"{where} died: {_reason(exc)}", seconds)
        worker.state = IDLE
        return Finished(token, worker.index, reply, None, seconds)

    def _restart(self, worker: _Worker, exc: RayError) -> None:
        """Ray restarts a dead worker's process (bounded); hear from it when it is back."""
        worker.deaths += 1
        if worker.deaths > MAX_WORKER_RESTARTS or not isinstance(exc, RayActorError):
            self._let_go(worker, f"its process died {worker.deaths} times ({_reason(exc)})")
            return
        worker.state = STARTING
        self._pending[worker.actor.ready.remote()] = worker

    def _let_go(self, worker: _Worker, reason: str, where: str | None = None) -> None:
        """A worker that cannot work: reported once, its resources given back."""
        where = where or self._where(worker)
        worker.state = GONE
        self.failures.append({"worker": where, "reason": reason})
        self._observer.worker_failed(where, reason)
        with contextlib.suppress(RayError):  # already gone
            ray.kill(worker.actor, no_restart=True)

    def _where(self, worker: _Worker) -> str:
        return worker.info.where() if worker.info is not None else f"worker {worker.index}"

    def stop(self) -> None:
        """Let every worker go (their models leave memory); the object store drops the copy."""
        for worker in self._workers:
            if worker.state != GONE:
                with contextlib.suppress(RayError):
                    ray.kill(worker.actor, no_restart=True)
                worker.state = GONE
        self._pending.clear()
        self._pieces = None


def _reason(exc: BaseException) -> str:
    """The first line of a Ray error: the rest is a remote traceback."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
