"""Batch throughput on Ray against the local batch, and what the cluster path costs per document.

    python bench/cluster.py [DATA_DIR] [--limit N] [--think] [--self-correct] [--json]

DATA_DIR holds NAME.txt documents and schema.json (default: the shared SROIE development
set if it is there, else tests/fixtures/sroie). In one run, the same documents go through:

* local: the local batch, one model in this process (llama.cpp on every core);
* ray-1: ``batch --ray`` with 1 worker reserving every CPU of the cluster;
* ray-2: 2 workers, each reserving half of them (one model each).

The cluster is one node that this script starts on the loopback and stops (the tests'
``tests/cluster/ray_head.py``: 2 CPUs, no dashboard, a 200 MB object store), so the
figures show the cost of the cluster path, not a speed-up: on one 2-core machine two
workers share the cores one model already uses.

Documents per minute are over the time documents were in flight (the local batch: the sum
of its per-file times; with Ray: the wall time while any was in flight), and, separately,
over the whole run with the workers' start. The cost per document splits the driver's
round trip to a worker into model time (prompt and decoding), the rest of the worker's
time (reading, the grammar, findings) and the cluster path itself: sending the bytes and
the reply, scheduling and waiting on the driver's loop.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from thinkjson_edge import ExtractOptions, Extractor
from thinkjson_edge.batch.runner import Batch, BatchSummary
from thinkjson_edge.schema import load_schema

_REPOSITORY = Path(__file__).resolve().parent.parent
_SHARED = _REPOSITORY.parent / "shared" / "data" / "sroie-dev"
_FIXTURES = _REPOSITORY / "tests" / "fixtures" / "sroie"
_HEAD_HELPER = _REPOSITORY / "tests" / "cluster"
CLUSTER_CPUS = 2  # ray_head.CPUS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, nargs="?", default=_default_data())
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--think", action="store_true")
    parser.add_argument("--self-correct", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = parser.parse_args(argv)

    schema = load_schema(args.data_dir / "schema.json")
    documents = sorted(args.data_dir.glob("*.txt"))[: args.limit]
    options = ExtractOptions(think=args.think, self_correct=args.self_correct)
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        in_dir = folder / "in"
        in_dir.mkdir()
        for document in documents:
            shutil.copy(document, in_dir / document.name)
        runs["local"] = _local(in_dir, folder / "out-local", schema, options)
        sys.path.insert(0, str(_HEAD_HELPER))
        from ray_head import start_head, stop_head

        head = start_head(folder / "ray")
        try:
            for workers in (1, 2):
                runs[f"ray-{workers}"] = _on_ray(
                    in_dir, folder / f"out-ray-{workers}", schema, options, workers
                )
        finally:
            stop_head(head)
    figures = {
        "data_dir": str(args.data_dir),
        "documents": len(documents),
        "think": args.think,
        "self_correct": args.self_correct,
        "runs": runs,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        _print_table(figures)
    return 0


def _local(in_dir: Path, out_dir: Path, schema: Any, options: ExtractOptions) -> dict[str, Any]:
    started = time.perf_counter()
    with Extractor(device="cpu", options=options) as extractor:
        loaded = time.perf_counter() - started
        with Batch(in_dir, out_dir, schema, lambda: extractor) as batch:
            summary = batch.run()
    figures = _throughput(summary, time.perf_counter() - started, loaded)
    figures["model_seconds_per_document"] = round(summary.model_seconds / summary.processed, 3)
    return figures


def _on_ray(
    in_dir: Path, out_dir: Path, schema: Any, options: ExtractOptions, workers: int
) -> dict[str, Any]:
    from thinkjson_edge.cluster.options import ClusterOptions
    from thinkjson_edge.cluster.runner import ClusterBatch

    started = time.perf_counter()
    cluster = ClusterOptions(
        address="auto", workers=workers, cpus_per_worker=CLUSTER_CPUS / workers
    )
    batch = ClusterBatch(
        in_dir,
        out_dir,
        schema,
        model=None,
        device="cpu",
        extract_options=options,
        cluster=cluster,
    )
    with batch:
        summary = batch.run()
        report = batch.cluster_report()
    figures = _throughput(summary, time.perf_counter() - started, summary.load_seconds)
    each = report["seconds_per_document"]
    figures.update(
        model_seconds_per_document=each["model"],
        worker_other_seconds_per_document=round(each["on_worker"] - each["model"], 4),
        cluster_path_ms_per_document=round(1000 * each["cluster_overhead"], 1),
        driver_ms_per_document=round(1000 * (each["driver"] - each["round_trip"]), 1),
        round_trip_seconds_per_document=each["round_trip"],
    )
    _wait_for_free_cpus()  # the next run starts on an empty cluster
    return figures


def _throughput(summary: BatchSummary, wall: float, loaded: float) -> dict[str, Any]:
    return {
        "processed": summary.processed,
        "failed": summary.failed,
        "start_seconds": round(loaded, 2),  # loading the model; with Ray, the first worker
        "busy_seconds": round(summary.busy_seconds, 2),
        "wall_seconds": round(wall, 2),
        "docs_per_minute": round(summary.docs_per_minute, 2),
        "docs_per_minute_with_start": round(60 * summary.processed / wall, 2),
    }


def _wait_for_free_cpus(seconds: float = 180) -> None:
    import ray

    deadline = time.monotonic() + seconds
    while ray.available_resources().get("CPU", 0) < CLUSTER_CPUS:
        if time.monotonic() > deadline:
            raise RuntimeError("the workers of the last run did not leave the cluster")
        time.sleep(0.2)


def _print_table(figures: dict[str, Any]) -> None:
    runs = figures["runs"]
    lines = [
        ("documents processed", "processed", "{}"),
        ("failed", "failed", "{}"),
        ("start: model / first worker (s)", "start_seconds", "{:.2f}"),
        ("time documents were in flight (s)", "busy_seconds", "{:.2f}"),
        ("wall time with start (s)", "wall_seconds", "{:.2f}"),
        ("docs/min (in flight)", "docs_per_minute", "{:.1f}"),
        ("docs/min (with start)", "docs_per_minute_with_start", "{:.1f}"),
        ("model s per document", "model_seconds_per_document", "{:.2f}"),
        ("rest of the worker, s per document", "worker_other_seconds_per_document", "{:.3f}"),
        ("cluster path, ms per document", "cluster_path_ms_per_document", "{:.1f}"),
        ("driver: read/write/DB, ms per document", "driver_ms_per_document", "{:.1f}"),
    ]
    print(
        f"{figures['documents']} documents from {figures['data_dir']}; "
        f"think={figures['think']}, self_correct={figures['self_correct']}"
    )
    print(f"{'':40}" + "".join(f"{name:>10}" for name in runs))
    for label, key, form in lines:
        cells = []
        for run in runs.values():
            value = run.get(key)
            cells.append(f"{'-' if value is None else form.format(value):>10}")
        print(f"{label:40}" + "".join(cells))


def _default_data() -> Path:
    return _SHARED if (_SHARED / "schema.json").is_file() else _FIXTURES


if __name__ == "__main__":
    sys.exit(main())
