"""``thinkjson-edge train``: synthetic data, GRPO, SFT and SCoRe, each from one YAML config.

Thin over ``thinkjson_edge.train``; torch, transformers and TRL are imported inside
the commands only, so ``thinkjson-edge extract`` never loads them.

Exit codes (the guard of ``exit_codes``): 0 done; 2 wrong usage or an unusable config (the
message names the setting); 4 a data file that cannot be read; 5 a model or teacher that
cannot be loaded or reached; 130 interrupted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from thinkjson_edge.cli.exit_codes import guarded
from thinkjson_edge.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def train() -> None:
    """Make training data and train the model (needs the `train` extra)."""


def _config_options(function: F) -> F:
    function = click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override a config setting, e.g. --set grpo.max_steps=20 (repeatable).",
    )(function)
    return click.option(
        "--config",
        "-c",
        "config_spec",
        required=True,
        help="YAML config file, or a packaged one: cpu-smoke, default-adapter, "
        "gpu-qwen2.5-1.5b, tune.",
    )(function)


def _say(message: str) -> None:
    click.echo(f"thinkjson-edge: {message}", err=True)


def parse_overrides(overrides: tuple[str, ...]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as settings; each value is read as YAML (numbers, lists)."""
    import yaml

    parsed: dict[str, Any] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: write KEY=VALUE, e.g. grpo.max_steps=20")
        parsed[key.strip()] = yaml.safe_load(value)
    return parsed


def _load(config_spec: str, overrides: tuple[str, ...]) -> Any:
    from thinkjson_edge.train.config import load_config

    return load_config(config_spec, parse_overrides(overrides))


def _report(result: Any) -> None:
    _say(f"{result.stage}: saved {result.output}")
    _say(
        f"{result.stage}: metrics in {result.metrics_csv}"
        + (f", plot {result.plot}" if result.plot else "")
    )
    moved = result.summary.get("parameters_changed")
    total = result.summary.get("parameters_trainable")
    _say(f"{result.stage}: {moved} of {total} trainable tensors changed")


@train.command()
@_config_options
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Training examples to write: .jsonl, .csv or .parquet.",
)
@click.option(
    "--heldout-out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the held-out examples here.",
)
@click.option(
    "--count", type=click.IntRange(min=1), help="Examples (default: data.train_examples)."
)
@click.option("--seed", type=int, help="Seed (default: data.seed).")
@click.option(
    "--from",
    "from_folder",
    type=click.Path(path_type=Path, file_okay=False),
    help="A labelled folder (a gold folder like eval reads, or a reviewed batch folder) "
    "instead of the config's data.source.",
)
@click.option(
    "--teacher",
    help="A GGUF path or name ('default') run through llama.cpp, or an OpenAI-compatible "
    "endpoint URL (http://host:port/v1), to write documents and/or reasoning.",
)
@click.option("--teacher-model", help="The model name an endpoint teacher serves.")
@click.option(
    "--teacher-for",
    type=click.Choice(["documents", "reasoning", "both"]),
    default="reasoning",
    show_default=True,
    help="What the teacher writes; what fails its check keeps the synthetic version.",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda", "metal"]),
    default="auto",
    show_default=True,
    help="Where a GGUF teacher runs.",
)
def data(
    config_spec: str,
    overrides: tuple[str, ...],
    out: Path,
    heldout_out: Path | None,
    count: int | None,
    seed: int | None,
    from_folder: Path | None,
    teacher: str | None,
    teacher_model: str | None,
    teacher_for: str,
    device: str,
) -> None:
    """Write schema / document / gold examples (ThinkJSON columns: text, schema, object)."""
    with guarded():
        from thinkjson_edge.train.datasets_io import write_examples
        from thinkjson_edge.train.sources import load_split

        extra = [f"data.train_examples={count}"] if count else []
        extra += [f"data.seed={seed}"] if seed is not None else []
        extra += [f"data.source={json.dumps(str(from_folder))}"] if from_folder else []
        config = _load(config_spec, (*overrides, *extra))
        split = load_split(config)
        examples = split.train
        if teacher:
            from thinkjson_edge.train.teacher import open_teacher, with_teacher

            _say(f"asking the teacher {teacher} for {teacher_for} of {len(examples)} examples")
            mentor = open_teacher(teacher, model=teacher_model, device=device)
            try:
                examples, report = with_teacher(
                    examples,
                    mentor,
                    documents=teacher_for in ("documents", "both"),
                    reasoning=teacher_for in ("reasoning", "both"),
                )
            finally:
                mentor.close()
            _say(f"teacher: {json.dumps(report.__dict__)}")
        written = write_examples(examples, out)
        _say(f"wrote {written} examples to {out}")
        if heldout_out:
            held = write_examples(split.heldout, heldout_out)
            _say(f"wrote {held} held-out examples to {heldout_out}")


@train.command()
@_config_options
def grpo(config_spec: str, overrides: tuple[str, ...]) -> None:
    """ThinkJSON GRPO with schema rewards (TRL GRPOTrainer)."""
    with guarded():
        from thinkjson_edge.train.grpo import run_grpo

        _report(run_grpo(_load(config_spec, overrides), say=_say))


@train.command()
@_config_options
@click.option(
    "--resume", is_flag=True, help="Go on from the last complete checkpoint (sft.save_steps)."
)
def sft(config_spec: str, overrides: tuple[str, ...], resume: bool) -> None:
    """SFT on reasoning traces (<think> then the JSON; TRL SFTTrainer)."""
    with guarded():
        from thinkjson_edge.train.sft import run_sft

        _report(run_sft(_load(config_spec, overrides), say=_say, resume=resume))


@train.command()
@_config_options
@click.option("--stage", type=click.Choice(["1", "2"]), required=True, help="SCoRe stage.")
def score(config_spec: str, overrides: tuple[str, ...], stage: str) -> None:
    """SCoRe self-correction training: stage 1 (attempt 2 rewarded, attempt 1 held) or 2."""
    with guarded():
        from thinkjson_edge.train.score import run_score

        _report(run_score(_load(config_spec, overrides), int(stage), say=_say))


@train.command("default-adapter")
@click.option(
    "--config",
    "-c",
    "config_spec",
    default="default-adapter",
    show_default=True,
    help="YAML config file, or a packaged one.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config setting, e.g. --set sft.time_budget_minutes=30 (repeatable).",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The adapter GGUF to write [default: OUTPUT_DIR/default-adapter.gguf].",
)
@click.option(
    "--resume", is_flag=True, help="Go on from the last complete checkpoint (sft.save_steps)."
)
def default_adapter(
    config_spec: str, overrides: tuple[str, ...], out: Path | None, resume: bool
) -> None:
    """Train the default model's adapter on synthetic documents and write it as a GGUF."""
    with guarded():
        from thinkjson_edge.train.default_adapter import build_default_adapter

        config = _load(config_spec, overrides)
        target = out or Path(config.output_dir) / "default-adapter.gguf"
        build_default_adapter(config, target, _say, resume=resume)
