"""``batch --ray``: a real Ray cluster on the loopback, the real default model, real faults.

Each test runs a few short documents, greedily and without reasoning or a second attempt,
so the module makes about twenty real generations. The cluster is one node with 2 CPUs;
every batch asks for two workers of one CPU each.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from ray_head import RayHead

from thinkjson_edge.batch.layout import DATABASE_NAME
from thinkjson_edge.cli.exit_codes import EXIT_INPUT, EXIT_OK
from thinkjson_edge.cluster.model_files import FROM_DRIVER, FROM_NODE_CACHE
from thinkjson_edge.cluster.options import ClusterOptions
from thinkjson_edge.cluster.pool import WorkerPool
from thinkjson_edge.cluster.runner import ClusterBatch
from thinkjson_edge.cluster.worker import WorkerSetup
from thinkjson_edge.files import sha256_file
from thinkjson_edge.models.choice import choose_model
from thinkjson_edge.pipeline.extractor import ExtractOptions
from thinkjson_edge.schema import load_schema

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[2]
SROIE = ROOT / "tests" / "fixtures" / "sroie"
SCHEMA = SROIE / "schema.json"
# No wall-clock limit on an attempt: on a starved machine it would cut outputs short, and
# differently from one run to the next.
FAST = ("--no-think", "--no-self-correct", "--device", "cpu", "--attempt-timeout", "0")
FAST_OPTIONS = ExtractOptions(think=False, self_correct=False, attempt_seconds=None)
TWO_WORKERS = ("--workers", "2", "--cpus-per-worker", "1")
SECONDS = 1200  # one batch on a busy 2-core machine
# Short receipts: each is extracted in a second or two.
SHOPS = [
    ("KEDAI RUNCIT AMAN", "12/03/2019", "NO 5, JALAN MAWAR, 43000 KAJANG", "15.40"),
    ("SYARIKAT MAJU JAYA", "02/11/2018", "LOT 22, TAMAN SERI, 81300 SKUDAI", "7.90"),
    ("RESTORAN SELERA", "30/06/2019", "18 JALAN BESAR, 50050 KUALA LUMPUR", "23.00"),
    ("HOCK SENG HARDWARE", "14/01/2018", "3 LORONG 2, 10200 PENANG", "112.50"),
]


def receipt(index: int) -> str:
    company, date, address, total = SHOPS[index]
    return f"{company}\n{address}\nDATE: {date}\nITEM 1 {total}\nTOTAL: {total}\nTHANK YOU\n"


def write_receipts(folder: Path, count: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"r{index}.txt" for index in range(count)]
    for index, name in enumerate(names):
        (folder / name).write_text(receipt(index), encoding="utf-8")
    return names


def batch_command(in_dir: Path, out_dir: Path, *extra: str) -> list[str]:
    command = [sys.executable, "-m", "thinkjson_edge", "batch", str(in_dir)]
    return [*command, "--schema", str(SCHEMA), "--out", str(out_dir), *FAST, *extra]


def run_batch(in_dir: Path, out_dir: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        batch_command(in_dir, out_dir, "--json", *extra),
        capture_output=True,
        text=True,
        timeout=SECONDS,
        cwd=ROOT,
    )
    summary = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, summary, done.stderr


def rows(out_dir: Path) -> dict[str, dict[str, Any]]:
    db = sqlite3.connect(out_dir / DATABASE_NAME)
    db.row_factory = sqlite3.Row
    try:
        return {row["file"]: dict(row) for row in db.execute("SELECT * FROM jobs")}
    finally:
        db.close()


def result_files(out_dir: Path) -> dict[str, Any]:
    """Every visible result under out_dir, by relative path, parsed."""
    found = {}
    for path in out_dir.rglob("*.json"):
        rel = path.relative_to(out_dir)
        if not any(part.startswith(".") for part in rel.parts):
            found[rel.as_posix()] = json.loads(path.read_text(encoding="utf-8"))
    return found


def assert_exactly_once(out_dir: Path, inputs: list[str]) -> None:
    """One whole, valid result file and one done row per input; no temporary file left."""
    schema = load_schema(SCHEMA)
    results = result_files(out_dir)
    assert sorted(results) == sorted(f"{rel}.json" for rel in inputs)
    assert all(schema.errors(value) == [] for value in results.values())
    assert [p for p in out_dir.rglob("*") if p.name.endswith(".tmp")] == []
    jobs = rows(out_dir)
    assert sorted(jobs) == sorted(inputs)
    assert {job["status"] for job in jobs.values()} == {"done"}


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def wait_for_free_cpus(seconds: float = 180) -> None:
    """Until the workers of a batch that ended (or was killed) have left the cluster."""
    import ray

    wait_until(lambda: ray.available_resources().get("CPU", 0) >= 2, seconds, "free CPUs")


class Heard:
    """A batch observer that keeps what happened to the workers."""

    def __init__(self) -> None:
        self.ready: list[Any] = []
        self.failed: list[tuple[str, str]] = []
        self.died: list[tuple[str, str | None]] = []

    def worker_ready(self, info: Any) -> None:
        self.ready.append(info)

    def worker_failed(self, where: str, reason: str) -> None:
        self.failed.append((where, reason))

    def worker_died(self, where: str, file: str | None, restarting: bool) -> None:
        self.died.append((where, file))

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: None  # the local batch's events: progress, not checked here


def cluster_batch(in_dir: Path, out_dir: Path, observer: Heard, **cluster: Any) -> ClusterBatch:
    """A batch run in this process, a driver of the test cluster already."""
    return ClusterBatch(
        in_dir,
        out_dir,
        load_schema(SCHEMA),
        model=None,
        device="cpu",
        extract_options=FAST_OPTIONS,
        cluster=ClusterOptions(address="auto", workers=2, **cluster),
        observer=observer,  # type: ignore[arg-type]
    )


def test_a_folder_gives_the_objects_of_a_local_batch(ray_cluster: RayHead, tmp_path: Path) -> None:
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    shutil.copy(SROIE / "015.txt", in_dir / "015.txt")
    shutil.copy(ROOT / "examples" / "receipt.txt", in_dir / "receipt.txt")
    (in_dir / "empty.txt").write_bytes(b"")  # a bad document fails alone

    local_code, local, _ = run_batch(in_dir, tmp_path / "local")
    code, summary, stderr = run_batch(
        in_dir, tmp_path / "cluster", "--ray", ray_cluster.address, *TWO_WORKERS
    )

    assert local_code == code == EXIT_INPUT, stderr[-3000:]
    assert result_files(tmp_path / "cluster") == result_files(tmp_path / "local")
    assert len(result_files(tmp_path / "cluster")) == 2
    for key in ("files", "done", "failed", "invalid", "skipped_done"):
        assert summary[key] == local[key], key
    assert [p["file"] for p in summary["problems"]] == ["empty.txt"]
    assert "empty" in summary["problems"][0]["error"]
    report = json.loads(
        (tmp_path / "cluster" / ".reports" / "015.txt.report.json").read_text("utf-8")
    )
    assert report["file"] == "015.txt" and report["adapter"]["file"] == "default-adapter.gguf"
    cluster = summary["cluster"]
    assert len(cluster["workers"]) == 2 and cluster["nodes"] == 1
    assert cluster["worker_failures"] == [] and cluster["retried"] == []
    costs = cluster["seconds_per_document"]
    assert costs["round_trip"] >= costs["on_worker"] >= costs["model"] > 0
    assert "worker 1 on 127.0.0.2" in stderr or "worker 2 on 127.0.0.2" in stderr

    # Run again: nothing to do, so no worker is started (nor the model sent anywhere).
    code, again, stderr = run_batch(
        in_dir, tmp_path / "cluster", "--ray", ray_cluster.address, *TWO_WORKERS
    )
    assert code == EXIT_INPUT and again["skipped_done"] == 2 and again["processed"] == 0
    assert again["cluster"]["workers"] == [] and "starting" not in stderr
    wait_for_free_cpus()


def test_a_worker_killed_mid_document_is_retried_on_another_without_a_duplicate(
    ray_cluster: RayHead, tmp_path: Path
) -> None:
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    inputs = write_receipts(in_dir, 4)
    heard = Heard()
    batch = cluster_batch(in_dir, out_dir, heard)
    killed: dict[str, Any] = {}

    def kill_one_worker_mid_document() -> None:
        """SIGKILL the process of a worker that is extracting a document (its pid from Ray)."""
        wait_until(lambda: batch.pool is not None and bool(batch.pool.busy_with()), SECONDS, "work")
        assert batch.pool is not None
        file, worker = next(iter(batch.pool.busy_with().items()))
        pid = batch.pool.pid_of(worker)
        assert pid is not None and pid != os.getpid()
        os.kill(pid, signal.SIGKILL)
        killed.update(file=file, worker=worker)

    killer = threading.Thread(target=kill_one_worker_mid_document)
    with batch:
        killer.start()
        summary = batch.run()
        killer.join()
        report = batch.cluster_report()

    assert (summary.done, summary.failed, summary.pending) == (4, 0, 0)
    assert_exactly_once(out_dir, inputs)
    assert heard.died and heard.died[0][1] == killed["file"]
    assert report["retried"] == [killed["file"]]
    assert len(report["worker_deaths"]) == 1 and report["worker_failures"] == []
    # The row was claimed once: the retry is the same try at the file, not a new one.
    assert {job["attempts"] for job in rows(out_dir).values()} == {1}
    wait_for_free_cpus()


def test_the_driver_killed_with_kill_9_resumes_exactly_once(
    ray_cluster: RayHead, tmp_path: Path
) -> None:
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    inputs = write_receipts(in_dir, 4)
    command = batch_command(in_dir, out_dir, "--quiet", "--ray", ray_cluster.address, *TWO_WORKERS)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        wait_until(
            lambda: len(result_files(out_dir)) >= 1 or process.poll() is not None,
            SECONDS,
            "a first result",
        )
        assert process.poll() is None, process.stderr.read().decode()[-3000:]  # type: ignore[union-attr]
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    assert len(result_files(out_dir)) < len(inputs)
    wait_for_free_cpus()  # Ray ends the workers of a driver that is gone

    code, summary, stderr = run_batch(in_dir, out_dir, "--ray", ray_cluster.address, *TWO_WORKERS)
    assert code == EXIT_OK, stderr[-3000:]
    assert summary["done"] + summary["skipped_done"] == len(inputs)
    assert summary["recovered"], "the files in flight at the kill are redone"
    assert_exactly_once(out_dir, inputs)
    wait_for_free_cpus()


class SecondWorkerGetsAWrongChecksum(WorkerPool):
    """Worker 2 is told the model has another sha256: its copy can never match."""

    def setup_for(self, index: int) -> WorkerSetup:
        setup = super().setup_for(index)
        if index != 2:
            return setup
        files = tuple(
            replace(file, sha256="0" * 64) if file.role == "model" else file
            for file in setup.plan.files
        )
        return replace(setup, plan=replace(setup.plan, files=files))


class ClusterBatchWithAFlawedWorker(ClusterBatch):
    pool_class = SecondWorkerGetsAWrongChecksum


def test_a_node_without_the_model_gets_a_checked_copy_and_a_bad_one_is_reported_once(
    ray_cluster: RayHead, tmp_path: Path
) -> None:
    in_dir, out_dir, cache = tmp_path / "in", tmp_path / "out", tmp_path / "node-cache"
    inputs = write_receipts(in_dir, 2)
    heard = Heard()
    batch = ClusterBatchWithAFlawedWorker(
        in_dir,
        out_dir,
        load_schema(SCHEMA),
        model=None,
        device="cpu",
        extract_options=FAST_OPTIONS,
        # An empty node cache, and the driver's path not looked at: as on another machine.
        cluster=ClusterOptions(
            address="auto", workers=2, model_cache=str(cache), use_shared_model_path=False
        ),
        observer=heard,  # type: ignore[arg-type]
    )
    with batch:
        summary = batch.run()
        report = batch.cluster_report()

    assert (summary.done, summary.failed) == (2, 0)
    assert_exactly_once(out_dir, inputs)
    # Worker 1 had the model sent by the driver, checked, into the node's cache.
    (ready,) = heard.ready
    assert ready.index == 1 and set(ready.placed.values()) <= {FROM_DRIVER, FROM_NODE_CACHE}
    assert FROM_DRIVER in ready.placed.values()
    choice = choose_model(None)
    for path in (choice.path, choice.adapter):
        assert path is not None
        digest = sha256_file(path)
        assert sha256_file(cache / digest / path.name) == digest
    # Worker 2's copy could not match: said once, with its node and why; the rest went on.
    (failure,) = heard.failed
    assert failure[0].startswith("worker 2 on 127.0.0.2")
    assert "does not match" in failure[1]
    assert report["worker_failures"] == [{"worker": failure[0], "reason": failure[1]}]
    assert not list(cache.glob("0000*/*.gguf"))  # the copy that did not match was not kept
    wait_for_free_cpus()
