"""Command-line options that several commands share, declared once.

Each function is a decorator adding a group of click options; the parameter names are the
same in every command, so each command passes them on to ``ExtractOptions`` alike.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    from thinkjson_edge.pipeline.extractor import ExtractOptions

Command = TypeVar("Command", bound=Callable[..., object])


def model_options(command: Command) -> Command:
    """--model and --device: which model, and where llama.cpp runs it."""
    command = click.option(
        "--device",
        type=click.Choice(["auto", "cpu", "cuda", "metal"]),
        default="auto",
        show_default=True,
        help="Where llama.cpp runs the model.",
    )(command)
    return click.option(
        "--model",
        "-m",
        help="GGUF path or model name [env THINKJSON_MODEL; default: smollm2-135m].",
    )(command)


def reasoning_options(command: Command) -> Command:
    """--think, --max-think-tokens and --self-correct: the shape of one extraction."""
    command = click.option(
        "--self-correct/--no-self-correct",
        default=True,
        show_default=True,
        help="Run a second, correcting attempt when the first has findings.",
    )(command)
    command = click.option(
        "--max-think-tokens",
        type=click.IntRange(min=0),
        default=256,
        show_default=True,
        help="Token budget of the reasoning block.",
    )(command)
    return click.option(
        "--think/--no-think",
        default=True,
        show_default=True,
        help="Let the model reason in <think>...</think> before the JSON.",
    )(command)


def sampling_options(command: Command) -> Command:
    """--temperature and --seed."""
    command = click.option(
        "--seed", type=int, default=0, show_default=True, help="Seed when sampling."
    )(command)
    return click.option(
        "--temperature",
        type=click.FloatRange(min=0.0),
        default=0.0,
        show_default=True,
        help="Sampling temperature; 0 is greedy.",
    )(command)


def extract_options(
    *,
    think: bool,
    self_correct: bool,
    max_think_tokens: int,
    temperature: float = 0.0,
    seed: int = 0,
) -> ExtractOptions:
    """The ``ExtractOptions`` that ``reasoning_options`` and ``sampling_options`` describe."""
    from thinkjson_edge.pipeline.extractor import (
        ExtractOptions,  # imported late: `--help` stays fast
    )

    return ExtractOptions(
        think=think,
        self_correct=self_correct,
        max_think_tokens=max_think_tokens,
        temperature=temperature,
        seed=seed,
    )


def schema_option(
    help: str, *, required: bool = True, must_exist: bool = False
) -> Callable[[Command], Command]:
    """--schema/-s, passed on as ``schema_path``."""
    return click.option(
        "--schema",
        "-s",
        "schema_path",
        required=required,
        type=click.Path(path_type=Path, dir_okay=False, exists=must_exist),
        help=help,
    )


def out_option(
    destination: str, help: str, *, folder: bool = False, required: bool = False
) -> Callable[[Command], Command]:
    """--out/-o: a file (or, with ``folder``, a folder), passed on as ``destination``."""
    return click.option(
        "--out",
        "-o",
        destination,
        required=required,
        type=click.Path(path_type=Path, dir_okay=folder, file_okay=not folder),
        help=help,
    )


def quiet_option(help: str = "Only errors on stderr.") -> Callable[[Command], Command]:
    """--quiet/-q."""
    return click.option("--quiet", "-q", is_flag=True, help=help)
