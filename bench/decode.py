"""Decoding speed of the runtime, unconstrained vs constrained, measured in one run.

    python bench/decode.py [--model PATH|NAME] [--adapter NAME|PATH] [--runs 3] [--tokens 128]

Reports (medians over --runs):
- prompt evaluation tokens/s (cache cleared before each run) and time to first token;
- decode tokens/s with no grammar (plain greedy loop), under our grammar with the
  sample-then-check fast path, under our grammar with copied strings (the default:
  every string a span of the receipt; its output is longer, so its ratio is to
  unconstrained decoding of as many tokens), under our grammar masking the whole
  vocabulary every step, and through llama-cpp-python's stock path
  (`LlamaGrammar.from_json_schema` + `create_completion`), each as a ratio to the
  unconstrained speed;
- with ``--adapter`` (a LoRA adapter GGUF of the same base), unconstrained decode tokens/s
  of the base with the adapter applied at run time, measured in turn with the bare base's,
  and its ratio to the bare speed;
- cold start of the CLI (`--help`, and a whole `extract` of the example receipt) and the
  peak RSS of that `extract` process.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from thinkjson_edge.copying.automaton import CopyIndex
from thinkjson_edge.engine.generation import CopyRequest, DecodeLimits
from thinkjson_edge.engine.llama import Engine
from thinkjson_edge.grammar.compiler import compile_schema
from thinkjson_edge.models.choice import choose_model
from thinkjson_edge.pipeline.copy_policy import copy_policy
from thinkjson_edge.pipeline.prompts import extraction_messages
from thinkjson_edge.schema import load_schema

ROOT = Path(__file__).resolve().parent.parent
RECEIPT = ROOT / "examples" / "receipt.txt"
RECEIPT_SCHEMA = ROOT / "examples" / "receipt.schema.json"
# Line items make a long JSON output, so the grammar is exercised over many tokens.
ITEMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "company": {"type": "string"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "description": {"type": "string"},
                    "quantity": {"type": "integer"},
                    "amount": {"type": "number"},
                },
                "required": ["description", "quantity", "amount"],
            },
        },
        "total": {"type": "number"},
    },
    "required": ["company", "items", "total"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--adapter", help="a LoRA adapter to compare with the bare model")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128, help="tokens per unconstrained run")
    args = parser.parse_args(argv)

    cold = cold_start(args.model)
    engine = Engine(choose_model(args.model).path, device="cpu")
    adapted = None
    if args.adapter:
        choice = choose_model(args.adapter)
        adapted = Engine(choice.path, adapter=choice.adapter, device="cpu")
    schema_text = json.dumps(ITEMS_SCHEMA, separators=(",", ":"))
    messages = extraction_messages(schema_text, RECEIPT.read_text(), think=False)
    prompt = engine.tokenize(engine.render_chat(messages))
    grammar = compile_schema(ITEMS_SCHEMA).gbnf(think=False)
    copy = CopyRequest(CopyIndex(RECEIPT.read_text()), copy_policy(load_schema(ITEMS_SCHEMA)))

    rows: dict[str, list[float]] = {}
    for _ in range(args.runs):
        engine.forget_prompt()  # a cold prompt every run
        fast = engine.generate(prompt, grammar, think=False, limits=DecodeLimits())
        rows.setdefault("prompt_tokens_per_s", []).append(fast.prompt_tokens / fast.prompt_seconds)
        rows.setdefault("time_to_first_token_s", []).append(fast.first_token_seconds)
        rows.setdefault("constrained_fast_tokens", []).append(fast.generated_tokens)
        rows.setdefault("constrained_fast", []).append(fast.tokens_per_second)
        copied = engine.generate(prompt, grammar, think=False, limits=DecodeLimits(), copy=copy)
        rows.setdefault("constrained_copy", []).append(copied.tokens_per_second)
        rows.setdefault("constrained_copy_tokens", []).append(copied.generated_tokens)
        # Its output is longer, and decoding slows as the context fills: compare it with
        # unconstrained decoding of as many tokens.
        rows.setdefault("unconstrained_copy_length", []).append(
            unconstrained(engine, prompt, copied.generated_tokens)
        )
        full = engine.generate(prompt, grammar, think=False, limits=DecodeLimits(full_mask=True))
        rows.setdefault("constrained_full_mask", []).append(full.tokens_per_second)
        rows.setdefault("unconstrained", []).append(unconstrained(engine, prompt, args.tokens))
        if adapted is not None:
            speed = unconstrained(adapted, prompt, args.tokens)
            rows.setdefault("unconstrained_with_adapter", []).append(speed)
        rows.setdefault("stock_llama_cpp_python", []).append(stock(engine, prompt))

    median = {name: statistics.median(values) for name, values in rows.items()}
    base = median["unconstrained"]
    report = {
        "model": str(engine.model_path.name),
        "prompt_tokens": len(prompt),
        "runs": args.runs,
        "prompt_tokens_per_s": round(median["prompt_tokens_per_s"], 1),
        "time_to_first_token_s": round(median["time_to_first_token_s"], 3),
        "decode_tokens_per_s": {
            name: round(median[name], 1)
            for name in (
                "unconstrained",
                "unconstrained_copy_length",
                "constrained_fast",
                "constrained_copy",
                "constrained_full_mask",
                "stock_llama_cpp_python",
            )
        },
        "ratio_to_unconstrained": {
            **{
                name: round(median[name] / base, 3)
                for name in (
                    "constrained_fast",
                    "constrained_full_mask",
                    "stock_llama_cpp_python",
                )
            },
            "constrained_copy": round(
                median["constrained_copy"] / median["unconstrained_copy_length"], 3
            ),
        },
        **_adapter_report(args.adapter, median),
        "constrained_output_tokens": int(median["constrained_fast_tokens"]),
        "copied_output_tokens": int(median["constrained_copy_tokens"]),
        **cold,
    }
    print(json.dumps(report, indent=2))
    return 0


def _adapter_report(adapter: str | None, median: dict[str, float]) -> dict[str, Any]:
    if not adapter:
        return {}
    speed = median["unconstrained_with_adapter"]
    return {
        "adapter": adapter,
        "adapter_unconstrained_tokens_per_s": round(speed, 1),
        "adapter_ratio_to_bare": round(speed / median["unconstrained"], 3),
    }


def unconstrained(engine: Engine, prompt: list[int], tokens: int) -> float:
    """Greedy decoding with no grammar at all: the speed ceiling of the loop."""
    import numpy as np

    engine.forget_prompt()
    engine.evaluate_prompt(prompt)
    started = time.perf_counter()
    for _ in range(tokens):
        engine.feed(int(np.argmax(engine.logits())))
    return tokens / (time.perf_counter() - started)


def stock(engine: Engine, prompt: list[int]) -> float:
    """llama-cpp-python's own JSON-schema grammar and sampler, for comparison."""
    from llama_cpp import LlamaGrammar

    grammar = LlamaGrammar.from_json_schema(json.dumps(ITEMS_SCHEMA), verbose=False)
    engine.forget_prompt()
    engine.evaluate_prompt(prompt)  # the same prompt, cached, so only decoding is timed
    started = time.perf_counter()
    output = engine._llm.create_completion(prompt, grammar=grammar, max_tokens=512, temperature=0.0)
    elapsed = time.perf_counter() - started
    return output["usage"]["completion_tokens"] / elapsed


def cold_start(model: str | None) -> dict[str, float]:
    """Wall time of fresh CLI processes, and the peak RSS of a whole extraction."""
    command = [sys.executable, "-m", "thinkjson_edge"]
    started = time.perf_counter()
    subprocess.run([*command, "--help"], check=True, capture_output=True)
    help_seconds = time.perf_counter() - started
    extract = [
        *command,
        "extract",
        str(RECEIPT),
        "--schema",
        str(RECEIPT_SCHEMA),
        "--no-think",
        "--no-self-correct",
        "--device",
        "cpu",
        "--quiet",
    ]
    if model:
        extract += ["--model", model]
    started = time.perf_counter()
    subprocess.run(extract, check=True, capture_output=True)
    extract_seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "cli_help_cold_s": round(help_seconds, 3),
        "cli_extract_cold_s": round(extract_seconds, 3),
        "cli_extract_peak_rss_mib": round(peak_kib / 1024, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
