"""Raw decoding throughput of N sequences sharing one context, against one; and what
evaluating their tokens in one llama_decode call would change.

    python bench/parallel_decode.py [--widths 1,2,4,8,16] [--tokens 64] [--model M]

Each width W runs W threads, each holding one sequence of a shared context
(``engine.parallel``) with its own SROIE receipt as prompt, and feeding ``--tokens``
tokens one by one (no grammar, no sampling: only the model). Width 1 is the engine's own
single-sequence path. Then, for W >= 2, 16 steps in which the next token of every
sequence is evaluated both in one call of W rows and in W calls of one row: the largest
difference of a logit between the two, the share of rows whose greedy choice is the same,
and the time of one W-row call against W one-row calls.

Each width runs in a fresh process: llama.cpp computes with GNU OpenMP, whose worker
threads, once a second thread has started parallel regions in a process, are throttled
(3.5x slower per token, BENCHMARKS.md). Printed per width: tokens per second of all
sequences together, its ratio to width 1, milliseconds per llama_decode call, and the
process's peak resident memory (the KV cache of each sequence shows in it).

The memory-bandwidth ceiling (bandwidth ÷ model bytes) is measured on the same machine:
a large array copy gives the bandwidth; one token must read every weight once.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from thinkjson_edge.engine.llama import Engine
from thinkjson_edge.engine.prompt_steps import prompt_steps
from thinkjson_edge.models.choice import choose_model

_REPOSITORY = Path(__file__).resolve().parent.parent
_SHARED = _REPOSITORY.parent / "shared" / "data" / "sroie-dev"
_FIXTURES = _REPOSITORY / "tests" / "fixtures" / "sroie"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="1,2,4,8,16")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--context", type=int, default=2048, help="tokens per sequence")
    parser.add_argument("--one-width", type=int, help=argparse.SUPPRESS)  # a child's width
    args = parser.parse_args(argv)
    model = choose_model(args.model)
    if args.one_width:
        engine = Engine(
            model.path, adapter=model.adapter, device=args.device, n_ctx=args.context,
            parallel=args.one_width,
        )  # fmt: skip
        try:
            texts = _receipts(args.one_width)
            prompts = [engine.tokenize(_prompt(text))[: args.context // 2] for text in texts]
            row = _run(engine, prompts, args.tokens)
            if args.one_width > 1:
                row.update(_rows_together(engine, steps=16))
        finally:
            engine.close()
        print(json.dumps({**row, "peak_rss_mib": round(_peak_rss_mib(), 1)}))
        return 0
    widths = [int(w) for w in args.widths.split(",")]
    rows = []
    for width in widths:
        given = [a for a in (argv or sys.argv[1:]) if not a.startswith("--widths")]
        given = [a for a in given if a != args.widths]
        command = [sys.executable, __file__, *given, "--one-width", str(width)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr)
    single = rows[0]["tokens_per_second"] if widths[0] == 1 else None
    for row in rows:
        row["ratio"] = round(row["tokens_per_second"] / single, 2) if single else None
    bandwidth = _bandwidth()
    model_bytes = model.path.stat().st_size
    print(
        json.dumps(
            {
                "model": model.name,
                "model_bytes": model_bytes,
                "bandwidth_gb_per_s": round(bandwidth / 1e9, 2),
                "bandwidth_ceiling_tokens_per_second": round(bandwidth / model_bytes, 1),
                "widths": rows,
            },
            indent=2,
        )
    )
    return 0


def _run(engine: Engine, prompts: list[list[int]], tokens: int) -> dict[str, Any]:
    """Each prompt in its own thread and sequence, then ``tokens`` fed one by one; only the
    feeding is timed, every thread starting together.

    A thread holding a sequence must not wait for anything but the engine (the others wait
    on it at every step), so the prompts are evaluated first and their sequences handed
    back; the timed part takes each sequence again, its prompt cached but its last token.
    """
    width = len(prompts)
    ready = threading.Barrier(width + 1)
    done = threading.Barrier(width + 1)

    def one(prompt: list[int]) -> None:
        steps = prompt_steps(len(prompt), [len(prompt) - 1])  # so that all but one is reused
        with engine._context_for(prompt, steps) as context:
            context.evaluate_prompt(prompt, steps)
        ready.wait()
        with engine._context_for(prompt, steps) as context:
            context.evaluate_prompt(prompt, steps)
            for _ in range(tokens):
                context.feed(int(np.argmax(context.logits())))
        done.wait()

    threads = [threading.Thread(target=one, args=(prompt,)) for prompt in prompts]
    for thread in threads:
        thread.start()
    ready.wait()
    stats = engine._parallel.stats if engine._parallel is not None else None
    calls_before = stats.calls if stats else 0
    began = time.perf_counter()
    done.wait()
    elapsed = time.perf_counter() - began
    for thread in threads:
        thread.join()
    calls = stats.calls - calls_before if stats else width * (tokens + 1)
    return {
        "width": width,
        "tokens_per_second": round(width * (tokens + 1) / elapsed, 1),
        "ms_per_decode_call": round(1000 * elapsed / max(calls, 1), 2),
        "seconds": round(elapsed, 2),
    }


def _rows_together(engine: Engine, steps: int) -> dict[str, Any]:
    """Each sequence's next token evaluated alone (then taken back) and in one call with
    the others' (kept); the logits compared row by row."""
    pool = engine._parallel
    assert pool is not None
    api, batch = pool.api, pool._batch
    positions = [len(s.tokens) for s in pool.sequences]
    tokens = [s.tokens[-1] for s in pool.sequences]
    worst, same, alone_seconds, together_seconds = 0.0, 0, 0.0, 0.0

    def decode(rows: list[int]) -> list[np.ndarray]:
        for index, seq_id in enumerate(rows):
            batch.token[index] = tokens[seq_id]
            batch.pos[index] = positions[seq_id]
            batch.n_seq_id[index] = 1
            batch.seq_id[index][0] = seq_id
            batch.logits[index] = True
        batch.n_tokens = len(rows)
        if api.llama_decode(pool._ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")
        return [
            np.ctypeslib.as_array(
                api.llama_get_logits_ith(pool._ctx, i), shape=(pool.n_vocab,)
            ).copy()
            for i in range(len(rows))
        ]

    width = len(positions)
    for _ in range(steps):
        alone = []
        began = time.perf_counter()
        for seq_id in range(width):
            alone.extend(decode([seq_id]))
        alone_seconds += time.perf_counter() - began
        for seq_id in range(width):
            api.llama_memory_seq_rm(pool._memory, seq_id, positions[seq_id], -1)
        began = time.perf_counter()
        together = decode(list(range(width)))
        together_seconds += time.perf_counter() - began
        for seq_id, (one, many) in enumerate(zip(alone, together, strict=True)):
            worst = max(worst, float(np.abs(one - many).max()))
            same += int(one.argmax() == many.argmax())
            tokens[seq_id] = int(many.argmax())
            positions[seq_id] += 1
    return {
        "rows_together_max_logit_difference": round(worst, 4),
        "rows_together_same_greedy_choice": f"{same}/{steps * width}",
        "rows_together_call_vs_alone_calls": round(together_seconds / alone_seconds, 2),
    }


def _receipts(count: int) -> list[str]:
    folder = _SHARED if _SHARED.is_dir() else _FIXTURES
    texts = [path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.txt"))]
    return [texts[i % len(texts)] for i in range(count)]


def _prompt(text: str) -> str:
    return f"Extract the company, date, address and total from this receipt.\n{text}\n"


def _bandwidth() -> float:
    """Bytes per second of a large copy (read and write both counted), best of three."""
    source = np.ones(64 * 2**20, dtype=np.uint8)
    target = np.empty_like(source)
    best = 0.0
    for _ in range(3):
        began = time.perf_counter()
        np.copyto(target, source)
        best = max(best, 2 * source.nbytes / (time.perf_counter() - began))
    return best


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    raise SystemExit(main())
