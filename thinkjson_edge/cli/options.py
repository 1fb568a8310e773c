"""Command-line options that several commands share, declared once.

Each function is a decorator adding a group of click options; the parameter names are the
same in every command, so each command passes them on to ``ExtractOptions`` alike.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from thinkjson_edge.pipeline.documents import (
    DOCUMENT_MB_VARIABLE,
    MAX_DOCUMENT_BYTES,
    MAX_TEXT_CHARACTERS,
    TEXT_CHARS_VARIABLE,
)
from thinkjson_edge.pipeline.reading import OCR_AUTO, OCR_MODES

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


def parallel_option(command: Command) -> Command:
    """--parallel N: documents (or a long document's chunks) extracted at once."""
    return click.option(
        "--parallel",
        type=click.IntRange(min=1),
        default=None,
        metavar="N",
        help="Documents extracted at once in one llama.cpp context, each with its own "
        "context of the usual size [default: 1 on a CPU, 8 on a GPU].",
    )(command)


def extraction_options(*, sampling: bool = True) -> Callable[[Command], Command]:
    """The shape of one extraction, passed on to the command as ``options: ExtractOptions``.

    --think, --max-think-tokens, --self-correct, --copy, --ask-labelled and --review-below; with
    ``sampling``, also --temperature and --seed (greedy otherwise). An option left unset
    keeps the ``ExtractOptions`` default.
    """

    def decorate(command: Command) -> Command:
        @functools.wraps(command)
        def with_options(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name, None) for name in _EXTRACTION_PARAMETERS}
            settings = {name: value for name, value in given.items() if value is not None}
            return command(*args, options=_extract_options(**settings), **kwargs)

        decorated: Any = with_options
        if sampling:
            decorated = _sampling_options(decorated)
        for option in reversed(_REASONING_OPTIONS):
            decorated = option(decorated)
        return decorated

    return decorate


_REASONING_OPTIONS = (
    click.option(
        "--think/--no-think",
        default=True,
        show_default=True,
        help="Let the model reason in <think>...</think> before the JSON.",
    ),
    click.option(
        "--max-think-tokens",
        type=click.IntRange(min=0),
        default=256,
        show_default=True,
        help="Token budget of the reasoning block.",
    ),
    click.option(
        "--self-correct/--no-self-correct",
        default=True,
        show_default=True,
        help="Run a second, correcting attempt when the first has findings.",
    ),
    click.option(
        "--copy/--no-copy",
        default=True,
        show_default=True,
        help="String values may only be spans of the document (except enum, const, format).",
    ),
    click.option(
        "--ask-labelled/--no-ask-labelled",
        default=True,
        show_default=True,
        help="Ask again for an optional property left out while the document prints its "
        "label and a value; kept where the model is sure of the value.",
    ),
    click.option(
        "--review-below",
        type=click.FloatRange(0.0, 1.0),
        default=None,
        metavar="T",
        help="Mark values written with a confidence under T for review (0: never) [default: 0.5].",
    ),
    click.option(
        "--attempt-timeout",
        "attempt_seconds",
        type=click.FloatRange(min=0.0),
        default=None,
        metavar="SECONDS",
        help="Stop an attempt that runs longer, with a 'budget' finding (0: no limit) "
        "[default: 300].",
    ),
)
_EXTRACTION_PARAMETERS = (
    "think",
    "max_think_tokens",
    "self_correct",
    "copy",
    "ask_labelled",
    "review_below",
    "temperature",
    "seed",
    "attempt_seconds",
)


def _sampling_options(command: Command) -> Command:
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


def _extract_options(**settings: Any) -> ExtractOptions:
    """The ``ExtractOptions`` of the command line's settings (the rest keep their defaults)."""
    from thinkjson_edge.pipeline.extractor import (
        ExtractOptions,  # imported late: `--help` stays fast
    )

    return ExtractOptions(**settings)


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


def read_limit_options(command: Command) -> Command:
    """--max-document-mb and --max-text-chars: the limits on one document, for this run.

    Each sets the environment variable that every document read consults, so a limit given
    here holds wherever the command reads a document; the command gets no parameter.
    """
    command = click.option(
        "--max-text-chars",
        type=click.IntRange(min=1),
        metavar="N",
        expose_value=False,
        callback=_setting(TEXT_CHARS_VARIABLE),
        help="Refuse a document whose text has more characters "
        f"[env {TEXT_CHARS_VARIABLE}; default: {MAX_TEXT_CHARACTERS}].",
    )(command)
    return click.option(
        "--max-document-mb",
        type=click.FloatRange(min=0, min_open=True),
        metavar="MB",
        expose_value=False,
        callback=_setting(DOCUMENT_MB_VARIABLE),
        help="Refuse a document file larger than this (MB of 2**20 bytes) "
        f"[env {DOCUMENT_MB_VARIABLE}; default: {MAX_DOCUMENT_BYTES >> 20}].",
    )(command)


def ocr_option(command: Command) -> Command:
    """--ocr auto|always|never, passed on as ``ocr``: when OCR reads a page."""
    return click.option(
        "--ocr",
        type=click.Choice(OCR_MODES),
        default=OCR_AUTO,
        show_default=True,
        help="Read by OCR: 'auto' images and PDF pages without a text layer; 'always' "
        "every PDF page too; 'never' nothing (images are refused).",
    )(command)


def _setting(variable: str) -> Callable[[click.Context, click.Parameter, object], None]:
    def set_variable(context: click.Context, parameter: click.Parameter, value: object) -> None:
        if value is not None:
            os.environ[variable] = str(value)

    return set_variable
