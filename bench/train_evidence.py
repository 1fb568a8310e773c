"""Evidence that training works: held-out rewards before and after a short run.

    python bench/train_evidence.py [--config cpu-smoke] [--out bench/out/train-evidence]
                                   [--sft-steps 30] [--grpo-steps 20] [--heldout 16]
                                   [--train 64] [--set KEY=VALUE ...]

Trains the config's model with its SFT warm start, then GRPO (LoRA), and scores the
held-out synthetic examples (a seed no training run uses) three times: the base
model, after SFT, after GRPO. Each time the model answers every first prompt
greedily with no grammar (so the figures show the weights, not the runtime's
grammar), and every output gets the reward components of train/rewards.py.

Writes OUT/evidence.json and OUT/evidence.md (the table), beside the stages'
metrics.csv and rewards.png; prints the table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import yaml
from thinkjson_edge.train.base_model import load_for_inference
from thinkjson_edge.train.config import TrainConfig, load_config
from thinkjson_edge.train.grpo import run_grpo
from thinkjson_edge.train.heldout import HeldOut, evaluate
from thinkjson_edge.train.sft import run_sft
from thinkjson_edge.train.sources import load_split

ROOT = Path(__file__).resolve().parent.parent
ROWS = ("format", "json", "schema", "field_match", "noise", "grounding")


def main() -> None:
    args = _parser().parse_args()
    overrides: dict[str, Any] = {
        "output_dir": str(args.out),
        "data.train_examples": args.train,
        "data.heldout_examples": args.heldout,
        "sft.max_steps": args.sft_steps,
        "grpo.max_steps": args.grpo_steps,
    }
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    config = load_config(args.config, overrides)
    heldout = load_split(config).heldout
    tokens = config.grpo.max_completion_length * 2  # room to finish what training saw cut

    results: dict[str, Any] = {"config": config.to_dict(), "stages": {}}
    timings: dict[str, float] = {}

    def score(name: str, trained: Path | None) -> HeldOut:
        policy = load_for_inference(config, trained)
        started = time.perf_counter()
        found = evaluate(
            policy.model, policy.tokenizer, heldout, think=config.think, max_new_tokens=tokens
        )
        timings[f"eval {name}"] = time.perf_counter() - started
        results["stages"][name] = found.to_dict()
        results["stages"][name]["sample_outputs"] = found.outputs[:3]
        print(f"{name}: {json.dumps(found.to_dict())}", flush=True)
        return found

    score("base", None)
    for name, run in (("after SFT", run_sft), ("after GRPO", run_grpo)):
        started = time.perf_counter()
        result = run(config)
        timings[f"train {name.removeprefix('after ')}"] = time.perf_counter() - started
        results[f"{result.stage}_summary"] = result.summary
        score(name, result.output)
    results["seconds"] = timings
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "evidence.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    table = _table(results, config, args)
    (args.out / "evidence.md").write_text(table)
    print(table)


def _table(results: dict[str, Any], config: TrainConfig, args: argparse.Namespace) -> str:
    stages = results["stages"]
    names = list(stages)
    lines = [
        f"Held-out synthetic examples: {args.heldout} (seed {config.data.seed} + held-out offset); "
        f"training examples: {args.train}; model: {config.base_model}; think: {config.think}",
        "",
        "| mean over held-out | " + " | ".join(names) + " |",
        "| --- |" + " ---: |" * len(names),
    ]
    for row in ROWS:
        lines.append(
            f"| {row} reward | "
            + " | ".join(f"{stages[n]['means'][row]:.3f}" for n in names)
            + " |"
        )
    lines.append(
        "| schema-valid share | "
        + " | ".join(f"{stages[n]['valid_share']:.3f}" for n in names)
        + " |"
    )
    lines.append(
        "| no JSON output | "
        + " | ".join(str(stages[n]["corpus"]["no_json_output"]) for n in names)
        + " |"
    )
    lines.append(
        "| mean match % | "
        + " | ".join(f"{stages[n]['corpus']['mean_match_pct']:.1f}" for n in names)
        + " |"
    )
    lines += [
        "",
        "Seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in results["seconds"].items()),
        "",
    ]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="cpu-smoke")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "train-evidence")
    parser.add_argument("--sft-steps", type=int, default=30)
    parser.add_argument("--grpo-steps", type=int, default=20)
    parser.add_argument("--heldout", type=int, default=16)
    parser.add_argument("--train", type=int, default=64)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    return parser


if __name__ == "__main__":
    main()
