"""Batch throughput on a folder of receipts: documents per minute, the prompt cache's effect,
and what the batch machinery costs beside the model.

    python bench/batch.py [DATA_DIR] [--limit N] [--think] [--no-self-correct] [--json]
    python bench/batch.py [DATA_DIR] --limit 20 --parallel 1,2,4,8 [--no-self-correct]

DATA_DIR holds NAME.txt documents and schema.json (default: the shared SROIE development
set if it is there, else tests/fixtures/sroie). The documents are copied to a temporary
folder and run through the batch runner three times with one loaded model:

* reuse: the normal batch; each prompt reuses the cached prefix (instruction and schema);
* cold: the same documents into another folder, the cache dropped before each document;
* rerun: the first folder again, everything skipped (the cost of scanning, hashing, the DB).

Model time is the sum of prompt evaluation and decoding; per-file work is reading,
checking and writing around it; machinery is the rest of the wall time (scanning, hashing,
claiming and recording in the job database, with their fsyncs).

With ``--parallel``, the normal batch runs once per width N (documents in flight at once,
``engine.parallel``), each in a fresh process (llama.cpp's OpenMP threads carry state
from one context to the next within a process): documents per minute and its ratio to
N=1, generated tokens per second of all sequences together, peak memory, and how many
results are identical to N=1's.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from thinkjson_edge import ExtractOptions, Extractor
from thinkjson_edge.batch.layout import DATABASE_NAME
from thinkjson_edge.batch.runner import Batch, BatchOptions
from thinkjson_edge.schema import load_schema

_REPOSITORY = Path(__file__).resolve().parent.parent
_SHARED = _REPOSITORY.parent / "shared" / "data" / "sroie-dev"
_FIXTURES = _REPOSITORY / "tests" / "fixtures" / "sroie"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, nargs="?", default=_default_data())
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--think", action="store_true")
    parser.add_argument("--max-think-tokens", type=int, default=256)
    parser.add_argument("--no-self-correct", action="store_true")
    parser.add_argument("--model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    parser.add_argument("--parallel", help="widths to compare, such as 1,2,4,8")
    parser.add_argument("--one-width", type=int, help=argparse.SUPPRESS)  # a --parallel child
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.parallel:
        return _compare_widths(args, argv or sys.argv[1:])

    schema = load_schema(args.data_dir / "schema.json")
    documents = sorted(args.data_dir.glob("*.txt"))[: args.limit]
    options = ExtractOptions(
        think=args.think,
        self_correct=not args.no_self_correct,
        max_think_tokens=args.max_think_tokens,
    )
    if args.one_width:
        return _one_width(args, schema, documents, options)
    with (
        tempfile.TemporaryDirectory() as scratch,
        Extractor(args.model, device=args.device, options=options) as extractor,
    ):
        folder = Path(scratch)
        in_dir = folder / "in"
        in_dir.mkdir()
        for document in documents:
            shutil.copy(document, in_dir / document.name)
        runs = {
            "reuse": _run(in_dir, folder / "out-reuse", schema, extractor, reuse_prefix=True),
            "cold": _run(in_dir, folder / "out-cold", schema, extractor, reuse_prefix=False),
            "rerun": _run(in_dir, folder / "out-reuse", schema, extractor, reuse_prefix=True),
        }
    figures = {
        "data_dir": str(args.data_dir),
        "documents": len(documents),
        "think": args.think,
        "self_correct": not args.no_self_correct,
        "model": extractor.model.name,
        "device": args.device,
        "runs": runs,
        "prompt_seconds_saved_per_document": round(
            runs["cold"]["prompt_seconds_per_document"]
            - runs["reuse"]["prompt_seconds_per_document"],
            3,
        ),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        _print_table(figures)
    return 0


def _run(
    in_dir: Path, out_dir: Path, schema: Any, extractor: Extractor, *, reuse_prefix: bool
) -> dict[str, Any]:
    extractor.engine.forget_prompt()  # every run starts cold, like a new process
    started = time.perf_counter()
    with Batch(
        in_dir, out_dir, schema, lambda: extractor, BatchOptions(reuse_prefix=reuse_prefix)
    ) as batch:
        summary = batch.run()
    wall = time.perf_counter() - started
    rows = _done_rows(out_dir) if summary.processed else []  # a rerun processes nothing
    processed = len(rows)
    model = sum(r["prompt_seconds"] + r["decode_seconds"] for r in rows)
    per_file = sum(r["total_seconds"] for r in rows)
    prompt_tokens = sum(r["prompt_tokens"] for r in rows)
    cached = sum(r["cached_prompt_tokens"] for r in rows)
    each = processed or summary.skipped_done or 1  # a rerun's cost is per skipped document
    return {
        "processed": processed,
        "skipped": summary.skipped_done,
        "wall_seconds": round(wall, 3),
        "docs_per_minute": round(60 * processed / wall, 2) if processed else None,
        "seconds_per_document": round(wall / each, 3),
        "prompt_seconds_per_document": round(sum(r["prompt_seconds"] for r in rows) / each, 3),
        "decode_seconds_per_document": round(sum(r["decode_seconds"] for r in rows) / each, 3),
        "prompt_tokens_per_document": round(prompt_tokens / each, 1),
        "cached_prompt_tokens_per_document": round(cached / each, 1),
        "evaluated_prompt_tokens_per_document": round((prompt_tokens - cached) / each, 1),
        "cached_share": round(cached / prompt_tokens, 3) if prompt_tokens else None,
        "model_seconds": round(model, 3),
        "per_file_work_seconds": round(per_file - model, 3),  # read, check, write
        "machinery_seconds": round(wall - per_file, 3),  # scan, hash, DB, outside files
        "overhead_share": round((wall - model) / model, 4) if model else None,
        "overhead_ms_per_document": round(1000 * (wall - model) / each, 1),
    }


def _one_width(
    args: argparse.Namespace, schema: Any, documents: list[Path], options: ExtractOptions
) -> int:
    """One normal batch with ``--one-width`` documents in flight at once, into ``--out``."""
    with (
        tempfile.TemporaryDirectory() as scratch,
        Extractor(
            args.model, device=args.device, options=options, parallel=args.one_width
        ) as extractor,
    ):
        in_dir = Path(scratch) / "in"
        in_dir.mkdir()
        for document in documents:
            shutil.copy(document, in_dir / document.name)
        figures = _run(in_dir, args.out, schema, extractor, reuse_prefix=True)
        rows = _done_rows(args.out)
        stats = extractor.engine._parallel.stats if extractor.engine._parallel else None
    generated = sum(r["generated_tokens"] for r in rows)
    figures.update(
        width=args.one_width,
        generated_tokens_per_second=round(generated / figures["wall_seconds"], 1),
        peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        decode_call_seconds=round(stats.seconds, 1) if stats else None,
    )
    print(json.dumps(figures))
    return 0


def _compare_widths(args: argparse.Namespace, argv: list[str]) -> int:
    """Each width in a child process of its own; their figures side by side."""
    widths = [int(width) for width in args.parallel.split(",")]
    base = [a for a in argv if not a.startswith("--parallel") and a != args.parallel]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        outputs = {}
        for width in widths:
            out = Path(scratch) / f"out-{width}"
            command = [
                sys.executable,
                __file__,
                *base,
                "--one-width",
                str(width),
                "--out",
                str(out),
            ]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            outputs[width] = {p.name: p.read_text() for p in out.glob("[!.]*.json")}
            print(json.dumps(rows[-1]), file=sys.stderr)
        first = outputs[widths[0]]
        for row, width in zip(rows, widths, strict=True):
            same = sum(outputs[width].get(name) == text for name, text in first.items())
            row["same_results_as_first"] = f"{same}/{len(first)}"
            row["ratio"] = round(row["docs_per_minute"] / rows[0]["docs_per_minute"], 2)
    keys = (
        "width", "docs_per_minute", "ratio", "generated_tokens_per_second",
        "decode_call_seconds", "peak_rss_mib", "same_results_as_first",
    )  # fmt: skip
    print(json.dumps([{key: row.get(key) for key in keys} for row in rows], indent=2))
    return 0


def _done_rows(out_dir: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(out_dir / DATABASE_NAME)
    db.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in db.execute("SELECT * FROM jobs WHERE status = 'done'")]
    finally:
        db.close()


def _print_table(figures: dict[str, Any]) -> None:
    runs = figures["runs"]
    lines = [
        ("documents processed", "processed", "{}"),
        ("documents skipped", "skipped", "{}"),
        ("wall time (s)", "wall_seconds", "{:.2f}"),
        ("docs/min (wall)", "docs_per_minute", "{:.1f}"),
        ("s per document (wall)", "seconds_per_document", "{:.2f}"),
        ("prompt s per document", "prompt_seconds_per_document", "{:.2f}"),
        ("decode s per document", "decode_seconds_per_document", "{:.2f}"),
        ("prompt tokens per document", "prompt_tokens_per_document", "{:.0f}"),
        ("cached prompt tokens per doc", "cached_prompt_tokens_per_document", "{:.0f}"),
        ("evaluated prompt tokens per doc", "evaluated_prompt_tokens_per_document", "{:.0f}"),
        ("model time (s)", "model_seconds", "{:.2f}"),
        ("per-file work: read/check/write (s)", "per_file_work_seconds", "{:.3f}"),
        ("machinery: scan/hash/DB (s)", "machinery_seconds", "{:.3f}"),
        ("overhead over model time (%)", "overhead_share", "{:.2%}"),
        ("overhead per document (ms)", "overhead_ms_per_document", "{:.1f}"),
    ]
    print(
        f"{figures['documents']} documents from {figures['data_dir']}; model {figures['model']}, "
        f"think={figures['think']}, self_correct={figures['self_correct']}"
    )
    print(f"{'':38}" + "".join(f"{name:>12}" for name in runs))
    for label, key, form in lines:
        cells = []
        for run in runs.values():
            value = run[key]
            cells.append(f"{'-' if value is None else form.format(value):>12}")
        print(f"{label:38}" + "".join(cells))
    print(
        f"prompt time saved by prefix reuse: {figures['prompt_seconds_saved_per_document']:.2f} "
        "s per document"
    )


def _default_data() -> Path:
    return _SHARED if (_SHARED / "schema.json").is_file() else _FIXTURES


if __name__ == "__main__":
    sys.exit(main())
