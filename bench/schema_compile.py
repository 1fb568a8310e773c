"""Schema compile time against schema size: it must grow linearly with the properties.

    python bench/schema_compile.py [--sizes 1000 10000 50000] [--runs 3]

For each size, a generated object schema with that many properties (strings, bounded
integers, enums and small nested objects in turn; the first ten required, so the shortest
object stays within what an extraction can write) is measured:
- ``compile``: ``compile_schema`` in this process, wall and CPU time (medians of --runs),
  and CPU time per property;
- ``gbnf``: writing the whole grammar text, and its size;
- ``schema check``: the wall time and the CPU time (user + system) of ``thinkjson-edge
  schema check FILE`` in a fresh process (one run): start-up, reading, the metaschema
  check, compiling, loading the grammar into llama.cpp and printing. On a busy machine
  the CPU time is the steadier figure.
Linear growth shows as a flat per-property column.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from thinkjson_edge.grammar.compiler import compile_schema


def generated_schema(size: int) -> dict[str, Any]:
    """An object schema with ``size`` properties of four kinds in turn."""
    kinds: list[dict[str, Any]] = [
        {"type": "string", "description": "free text"},
        {"type": "integer", "minimum": 0, "maximum": 9999},
        {"enum": ["low", "medium", "high"]},
        {"type": "object", "properties": {"code": {"type": "string"}, "n": {"type": "number"}}},
    ]
    properties = {f"field_{i}": kinds[i % len(kinds)] for i in range(size)}
    return {
        "type": "object",
        "properties": properties,
        "required": [f"field_{i}" for i in range(min(size, 10))],
    }


def measure(size: int, runs: int, folder: Path) -> dict[str, float]:
    schema = generated_schema(size)
    times, cpu_times = [], []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        compiled = compile_schema(schema)
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
    started = time.perf_counter()
    grammar = compiled.gbnf(think=True)
    gbnf_seconds = time.perf_counter() - started
    path = folder / f"schema-{size}.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    cpu_before = _children_cpu()
    started = time.perf_counter()
    check = subprocess.run(
        [sys.executable, "-m", "thinkjson_edge", "schema", "check", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    check_seconds = time.perf_counter() - started
    check_cpu = _children_cpu() - cpu_before
    if check.returncode != 0:
        raise SystemExit(f"schema check failed on {size} properties: {check.stderr.strip()}")
    return {
        "compile": statistics.median(times),
        "compile_cpu": statistics.median(cpu_times),
        "gbnf": gbnf_seconds,
        "bytes": len(grammar.encode("utf-8")),
        "rules": len(compiled.rules),
        "check": check_seconds,
        "check_cpu": check_cpu,
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    header = (
        f"{'properties':>10} {'rules':>7} {'compile s':>10} {'cpu s':>7} {'us/prop':>8} "
        f"{'gbnf s':>7} "
        f"{'gbnf MB':>8} {'check s':>8} {'cpu s':>7} {'us/prop':>8}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            row = measure(size, args.runs, Path(folder))
            print(
                f"{size:>10,} {row['rules']:>7,.0f} {row['compile']:>10.3f} "
                f"{row['compile_cpu']:>7.3f} {row['compile_cpu'] / size * 1e6:>8.1f} "
                f"{row['gbnf']:>7.3f} "
                f"{row['bytes'] / 1e6:>8.2f} {row['check']:>8.2f} {row['check_cpu']:>7.2f} "
                f"{row['check_cpu'] / size * 1e6:>8.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
