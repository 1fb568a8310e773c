"""``thinkjson-edge schema``: what the compiler makes of a schema, without a model."""

from __future__ import annotations

from pathlib import Path

import click

from thinkjson_edge.cli.exit_codes import guarded


@click.group()
def schema() -> None:
    """Inspect JSON Schemas."""


@schema.command()
@click.argument("schema_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--gbnf", is_flag=True, help="Print only the GBNF grammar generation uses.")
@click.option(
    "--think/--no-think",
    default=True,
    show_default=True,
    help="The grammar for extraction with or without the reasoning block.",
)
def check(schema_path: Path, gbnf: bool, think: bool) -> None:
    """Check SCHEMA_PATH and say which keywords the grammar enforces and which the validator does.

    The check is the one extract, batch, eval and tui make before any model loads: a schema
    that passes compiles to a grammar llama.cpp loads; one that does not exits 3 with the
    keyword and the place. With --gbnf, print exactly the grammar `extract` uses with the
    same --think setting and default limits, so the compiler can be measured with llama.cpp
    alone.
    """
    from thinkjson_edge.pipeline.schema_check import load_usable_schema, usable_grammar

    with guarded():
        loaded = load_usable_schema(schema_path)  # the same check extract makes
        compiled = usable_grammar(loaded)
    if gbnf:
        click.echo(compiled.gbnf(think=think), nl=False)
        return
    click.echo(f"{schema_path}: valid {loaded.draft} schema, {len(compiled.rules)} grammar rules")
    click.echo("enforced by the grammar while the model writes:")
    for entry in compiled.by_grammar or ("(nothing)",):
        click.echo(f"  {entry}")
    click.echo("enforced by the validator after generation (violations become findings):")
    for entry in compiled.validation_only or ("(nothing)",):
        click.echo(f"  {entry}")
