"""``thinkjson-edge tune FOLDER --name NAME``: teach the model a site's labelled documents.

Thin over ``thinkjson_edge.train.tune``; torch, transformers and TRL load inside the
command only. Exit codes (the guard of ``exit_codes``): 0 done; 2 wrong usage, an unusable
config, or a work folder made for other settings; 4 a folder that is not labelled data;
5 a model that cannot be loaded; 7 a name already installed (without --force) or a file
that cannot be written; 130 interrupted (run the same command again to resume).
"""

from __future__ import annotations

from pathlib import Path

import click

from thinkjson_edge.cli.exit_codes import guarded
from thinkjson_edge.cli.train import parse_overrides


def _say(message: str) -> None:
    click.echo(f"thinkjson-edge: {message}", err=True)


@click.command()
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@click.option("--name", required=True, help="The model name to install the adapter under.")
@click.option(
    "--time-budget",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Minutes of training at most; the learning rate decays to zero as they run out.",
)
@click.option(
    "--held-out",
    type=click.IntRange(min=0),
    help="Documents kept out of training and extracted before and after "
    "(default: a tenth of the folder, at most 40).",
)
@click.option(
    "--epochs",
    type=click.FloatRange(min=0, min_open=True),
    default=3.0,
    show_default=True,
    help="Passes over the data at most, when the time budget allows them.",
)
@click.option(
    "--work-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Checkpoints, the adapter and the evaluations (default: runs/tune-NAME).",
)
@click.option("--config", "config_spec", default="tune", show_default=True,
              help="YAML config file, or a packaged one.")  # fmt: skip
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config setting, e.g. --set lora.r=8 (repeatable).")  # fmt: skip
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where training and the evaluations run.",
)
@click.option("--force", is_flag=True, help="Replace an installed model of the same name.")
def tune(
    folder: Path,
    name: str,
    time_budget: float,
    held_out: int | None,
    epochs: float,
    work_dir: Path | None,
    config_spec: str,
    overrides: tuple[str, ...],
    device: str,
    force: bool,
) -> None:
    """Train an adapter on a labelled FOLDER and install it as NAME.

    FOLDER is a gold folder (schema.json, documents, NAME.json gold, as eval reads) or a
    batch output folder whose results were reviewed (only reviewed ones count). Rerun the
    same command after Ctrl-C or a kill: it resumes from the last checkpoint.
    """
    with guarded():
        from thinkjson_edge.train.tune import TuneRequest, run_tune

        request = TuneRequest(
            folder=folder,
            name=name,
            work_dir=work_dir or Path("runs") / f"tune-{name}",
            time_budget_minutes=time_budget,
            held_out=held_out,
            epochs=epochs,
            config=config_spec,
            overrides=parse_overrides(overrides),
            device=device,
            force=force,
        )
        outcome = run_tune(request, say=_say)
        if outcome.table:
            click.echo(outcome.table, nl=False)
        _say(f"done: extract with --model {name}")

