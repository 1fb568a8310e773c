"""``thinkjson-edge eval``: measure extraction on a data folder, or compare two reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from thinkjson_edge.cli.exit_codes import EXIT_USAGE, guarded
from thinkjson_edge.cli.options import (
    extraction_options,
    model_options,
    ocr_option,
    out_option,
    parallel_option,
    quiet_option,
    read_limit_options,
)

if TYPE_CHECKING:
    from thinkjson_edge.pipeline.extractor import ExtractOptions


@click.command("eval")
@click.argument("data_dir", required=False, type=click.Path(path_type=Path, file_okay=False))
@out_option(
    "report_dir", "Report folder [default: ./eval-DATA-MODEL-think|nothink-sc|nosc].", folder=True
)
@model_options
@parallel_option
@extraction_options(sampling=False)
@click.option(
    "--limit", type=click.IntRange(min=1), help="Evaluate only the first N documents (by name)."
)
@click.option("--fresh", is_flag=True, help="Ignore cached per-document results; compute all.")
@click.option(
    "--compare",
    nargs=2,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Compare two report.json files instead of running (no DATA_DIR).",
)
@click.option("--json", "as_json", is_flag=True, help="With --compare: print JSON, not a table.")
@read_limit_options
@ocr_option
@quiet_option("No progress bar; only warnings and errors.")
def eval_command(
    data_dir: Path | None,
    report_dir: Path | None,
    model: str | None,
    device: str,
    parallel: int | None,
    options: ExtractOptions,
    limit: int | None,
    fresh: bool,
    compare: tuple[Path, Path] | None,
    as_json: bool,
    ocr: str,
    quiet: bool,
) -> None:
    """Extract every document of DATA_DIR and score the results against their gold.

    DATA_DIR holds schema.json, the documents (NAME.txt or any readable format) and the
    gold objects (NAME.json), at its top or in documents/ and gold/ subfolders. Results
    are cached per document in the report folder, so an interrupted run resumes.

    With --compare A.json B.json, print two reports' figures side by side instead.
    """
    if compare:
        if data_dir is not None:
            _usage("give either DATA_DIR or --compare A.json B.json, not both")
        _compare(compare, as_json)
        return
    if data_dir is None:
        _usage("give DATA_DIR (or --compare A.json B.json)")
    if as_json:
        _usage("--json goes with --compare")
    from thinkjson_edge.evaluation.run import EvalSettings
    from thinkjson_edge.pipeline.reading import ReadOptions

    settings = EvalSettings(model, device, options, limit, ReadOptions(ocr=ocr), parallel)
    _evaluate(data_dir, report_dir, settings, fresh, quiet)


def _usage(message: str) -> None:
    click.echo(f"thinkjson-edge: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _warn(message: str) -> None:
    click.echo(f"thinkjson-edge: warning: {message}", err=True)


def _evaluate(
    data_dir: Path, report_dir: Path | None, settings: Any, fresh: bool, quiet: bool
) -> None:
    from thinkjson_edge.cli.path_guard import check_paths, folder_place, model_place
    from thinkjson_edge.evaluation.dataset import find_dataset
    from thinkjson_edge.evaluation.report import write_report
    from thinkjson_edge.evaluation.run import run_evaluation
    from thinkjson_edge.evaluation.summary import build_report, default_report_dir
    from thinkjson_edge.files import check_writable
    from thinkjson_edge.models.choice import choose_model

    given_report_dir = report_dir is not None
    with guarded():
        dataset = find_dataset(data_dir)
        if report_dir is None:
            report_dir = default_report_dir(data_dir, choose_model(settings.model).name, settings)
        # Before minutes of work, not after; the cache must not land among the documents.
        label = "--out" if given_report_dir else "the report folder"
        check_paths(
            [*folder_place("DATA_DIR", data_dir), *model_place(settings.model)],
            folder_place(label, report_dir),
        )
        check_writable(report_dir / "report.json")
    resumable = (
        f"finished documents are cached in {report_dir}, and running the same command again resumes"
    )
    with guarded(resumable):
        for skipped in dataset.skipped:
            _warn(f"skipped {skipped.path}: {skipped.reason}")
        progress = None if quiet else _ProgressBar()
        try:
            outcome = run_evaluation(
                dataset, report_dir, settings, fresh=fresh, progress=progress, warn=_warn
            )
        finally:
            if progress:
                progress.stop()
        report = build_report(outcome, report_dir)
        write_report(report, report_dir, _warn)
    _print_summary(report, report_dir)


def _print_summary(report: dict[str, Any], report_dir: Path) -> None:
    kept = report["summary"]["kept"]
    f1 = kept["micro"]["f1"]
    noise = kept["mean_noise_pct"]
    run = report["run"]
    click.echo(
        f"thinkjson-edge: {kept['documents']} documents ({run['computed']} computed, "
        f"{run['cached']} from cache): {kept['no_json_output']} without JSON output, "
        f"mean field match {kept['mean_match_pct']:.1f} %, "
        f"mean noise {'n/a' if noise is None else f'{noise:.1f} %'}, "
        f"micro F1 {'n/a' if f1 is None else f'{f1:.3f}'}; report in {report_dir}",
        err=True,
    )


class _ProgressBar:
    """A rich progress bar on stderr; rich is imported only when a run starts."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._task: Any = None

    def start(self, total: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task("evaluating", total=total)

    def begin(self, name: str) -> None:
        self._progress.update(self._task, description=f"extracting {name}")

    def advance(self, name: str, cached: bool) -> None:
        label = f"{name} (cached)" if cached else name
        self._progress.update(self._task, advance=1, description=f"done {label}")

    def stop(self) -> None:
        self._progress.stop()


def _compare(paths: tuple[Path, Path], as_json: bool) -> None:
    from thinkjson_edge.evaluation.report import compare_json, compare_rows, render_compare
    from thinkjson_edge.evaluation.summary import load_report

    with guarded():
        a, b = (load_report(path) for path in paths)
    rows = compare_rows(a, b)
    named_a, named_b = (str(paths[0]), a), (str(paths[1]), b)
    if as_json:
        click.echo(json.dumps(compare_json(rows, named_a, named_b), ensure_ascii=False, indent=2))
    else:
        click.echo(render_compare(rows, named_a, named_b), nl=False)
