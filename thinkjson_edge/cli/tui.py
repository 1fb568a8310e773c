"""``thinkjson-edge tui``: the review interface (``tui/app.py``) from the command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from thinkjson_edge.cli.exit_codes import EXIT_USAGE, guarded
from thinkjson_edge.cli.options import (
    extraction_options,
    model_options,
    out_option,
    schema_option,
)

if TYPE_CHECKING:
    from thinkjson_edge.pipeline.extractor import ExtractOptions
from thinkjson_edge.environment import stay_offline


@click.command()
@click.argument(
    "target",
    required=False,
    type=click.Path(exists=True, path_type=Path),
    metavar="[FILE_OR_DIR]",
)
@schema_option(
    "JSON Schema to extract by (a batch folder brings its own).", required=False, must_exist=True
)
@out_option(
    "save_path", "Where Ctrl+S saves the reviewed object [default: NAME.extracted.json beside it]."
)
@click.option(
    "--run/--no-run",
    "run_on_open",
    default=True,
    show_default=True,
    help="Extract at once when a document and a schema are given.",
)
@model_options
@extraction_options()
def tui(
    target: Path | None,
    schema_path: Path | None,
    save_path: Path | None,
    run_on_open: bool,
    model: str | None,
    device: str,
    options: ExtractOptions,
) -> None:
    """Review extractions beside their documents, or watch a batch output folder.

    FILE_OR_DIR is a document to review, a folder to pick documents from, or the output
    folder of `thinkjson-edge batch`. Press ? in the interface for every key.
    """
    from thinkjson_edge.pipeline.schema_check import load_usable_schema
    from thinkjson_edge.tui.app import ReviewApp

    stay_offline()  # the interface never reaches the network
    with guarded():
        _check_save_path(target, schema_path, save_path)
        schema = load_usable_schema(schema_path, options.grammar_limits) if schema_path else None
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        click.echo("thinkjson-edge: error: tui needs an interactive terminal", err=True)
        sys.exit(EXIT_USAGE)
    app = ReviewApp(
        target.resolve() if target is not None else None,
        schema=schema,
        model=model,
        device=device,
        options=options,
        save_path=save_path,
        run_on_open=run_on_open,
    )
    app.run()


def _check_save_path(target: Path | None, schema_path: Path | None, save_path: Path | None) -> None:
    """Ctrl+S must not save over the document, the schema or a folder of them."""
    from thinkjson_edge.cli.path_guard import check_paths, file_place, folder_place

    inputs = file_place("--schema", schema_path)
    if target is not None:
        inputs += (folder_place if target.is_dir() else file_place)("FILE_OR_DIR", target)
    check_paths(inputs, file_place("--out", save_path))
