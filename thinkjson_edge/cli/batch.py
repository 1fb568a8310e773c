"""``thinkjson-edge batch``: extract from every file of a folder, resumably.

The work is done by ``batch/runner.py``; this module parses options, shows progress and the
summary (``rich``, imported only when the command runs), handles Ctrl-C and picks the exit code.
"""

from __future__ import annotations

import functools
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from thinkjson_edge.cli.exit_codes import (
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_INVALID_OUTPUT,
    EXIT_OK,
    guarded,
)
from thinkjson_edge.cli.options import (
    extraction_options,
    model_options,
    ocr_option,
    out_option,
    parallel_option,
    quiet_option,
    read_limit_options,
    schema_option,
)

if TYPE_CHECKING:
    from rich.console import Console

    from thinkjson_edge.batch.jobs import Outcome
    from thinkjson_edge.batch.runner import Batch, BatchOptions, BatchSummary
    from thinkjson_edge.cluster.options import ClusterOptions
    from thinkjson_edge.cluster.records import WorkerInfo
    from thinkjson_edge.pipeline.extractor import ExtractOptions, Extractor
    from thinkjson_edge.pipeline.reading import PageRead

_PROBLEMS_SHOWN = 10  # in the summary on stderr; --json and the database have them all


def _cluster_options(command: Callable[..., None]) -> Callable[..., None]:
    """--ray [ADDRESS], --workers, --cpus-per-worker, --gpus-per-worker, passed on as
    ``cluster``: a ClusterOptions with --ray, else None (a local batch)."""

    @functools.wraps(command)
    def with_cluster(*args: Any, **kwargs: Any) -> None:
        from thinkjson_edge.cluster.options import ClusterOptions

        address = kwargs.pop("ray_address")
        shape = {
            name: kwargs.pop(name) for name in ("workers", "cpus_per_worker", "gpus_per_worker")
        }
        given = {name: value for name, value in shape.items() if value is not None}
        with guarded():
            if address is None and given:
                names = ", ".join("--" + name.replace("_", "-") for name in given)
                raise _usage_error(f"{names}: only with --ray (a batch on a Ray cluster)")
            cluster = None if address is None else ClusterOptions(address=address, **given)
        command(*args, cluster=cluster, **kwargs)

    options = (
        click.option(
            "--ray",
            "ray_address",
            is_flag=False,
            flag_value="local",
            default=None,
            metavar="[ADDRESS]",
            help="Run on Ray: alone, a Ray instance started on this machine; 'auto' or "
            "HOST:PORT, the cluster `ray start` runs; ray://HOST:PORT, through Ray Client.",
        ),
        click.option(
            "--workers",
            type=click.IntRange(min=1),
            default=None,
            help="With --ray: workers, each holding one model [default: as many as the "
            "cluster's CPUs (and GPUs) hold].",
        ),
        click.option(
            "--cpus-per-worker",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="With --ray: CPUs each worker reserves, and its llama.cpp threads [default: 1].",
        ),
        click.option(
            "--gpus-per-worker",
            type=click.FloatRange(min=0),
            default=None,
            help="With --ray: GPUs each worker reserves (a fraction shares one) [default: 0].",
        ),
    )
    decorated: Any = with_cluster
    for option in reversed(options):
        decorated = option(decorated)
    return decorated


def _usage_error(message: str) -> Exception:
    from thinkjson_edge.errors import UsageError

    return UsageError(message)


@click.command()
@click.argument(
    "in_dir", type=click.Path(path_type=Path, exists=True, file_okay=False, readable=True)
)
@schema_option("JSON Schema of the objects.")
@out_option(
    "out_dir",
    "Folder for the results and the job database (created if missing).",
    folder=True,
    required=True,
)
@click.option(
    "--glob",
    "globs",
    multiple=True,
    metavar="PATTERN",
    help="Only files matching PATTERN (repeatable). Without '/', it matches the file name.",
)
@click.option("--watch", is_flag=True, help="Keep polling IN_DIR for new or changed files.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between polls with --watch.",
)
@click.option("--retry-failed", is_flag=True, help="Process failed and invalid files again.")
@click.option(
    "--follow-links",
    is_flag=True,
    help="Also read files whose symlinks lead out of IN_DIR (skipped and listed otherwise).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@read_limit_options
@ocr_option
@model_options
@parallel_option
@extraction_options()
@_cluster_options
@quiet_option("No progress and no summary on stderr.")
def batch(
    in_dir: Path,
    schema_path: Path,
    out_dir: Path,
    globs: tuple[str, ...],
    watch: bool,
    interval: float,
    retry_failed: bool,
    follow_links: bool,
    as_json: bool,
    ocr: str,
    model: str | None,
    device: str,
    parallel: int | None,
    options: ExtractOptions,
    cluster: ClusterOptions | None,
    quiet: bool,
) -> None:
    """Extract one object per file under IN_DIR into OUT_DIR/<path>.json, resumably.

    Files already done with the same content and schema are skipped, so an interrupted or
    killed batch is resumed by running the same command again. Only regular files inside
    IN_DIR are read: links out of it, pipes, sockets and devices are skipped and listed.
    With --ray, workers on a Ray cluster extract and this process writes, exactly as here.
    """
    from rich.console import Console

    from thinkjson_edge.batch.runner import Batch, BatchOptions
    from thinkjson_edge.pipeline.documents import check_read_limits
    from thinkjson_edge.pipeline.extractor import LazyExtractor
    from thinkjson_edge.pipeline.reading import ReadOptions
    from thinkjson_edge.pipeline.schema_check import load_usable_schema

    _check_folders(in_dir, out_dir, schema_path, model)
    console = Console(stderr=True, quiet=quiet, highlight=False)
    extractor = LazyExtractor(model, device, options, parallel=parallel)
    stop = _StopRequests(console)
    observer = _ProgressObserver(console)
    try:
        with guarded():
            check_read_limits()  # a bad setting stops the batch, not each file
            # an unusable schema stops the batch before it starts
            schema = load_usable_schema(schema_path, options.grammar_limits)
            batch_options = BatchOptions(
                globs=globs,
                retry_failed=retry_failed,
                watch=watch,
                interval=interval,
                follow_links=follow_links,
                read=ReadOptions(ocr=ocr),
            )
            if cluster is not None:
                runner = _cluster_batch(
                    in_dir, out_dir, schema, batch_options, cluster, model, device, options,
                    observer, stop,
                )  # fmt: skip
            else:
                runner = Batch(
                    in_dir,
                    out_dir,
                    schema,
                    extractor.get,
                    batch_options,
                    observer=observer,
                    should_stop=stop.requested,
                )
            with runner, stop:
                _say_recovery(console, runner)
                try:
                    summary = runner.run()
                finally:
                    observer.close()
    finally:
        extractor.close()

    code = batch_exit_code(summary, watch=watch)
    _print_summary(console, summary)
    if as_json:
        record = {
            "in_dir": str(in_dir),
            "out_dir": str(out_dir),
            "database": str(runner.database_path),
            **_rounded(summary.to_dict()),
            "recovered": [job.file for job in runner.recovered],
            "removed_temporaries": runner.removed_temporaries,
            **({"cluster": runner.cluster_report()} if hasattr(runner, "cluster_report") else {}),
            "exit_code": code,
        }
        click.echo(json.dumps(record, ensure_ascii=False, indent=2))
    sys.exit(code)


def _cluster_batch(
    in_dir: Path,
    out_dir: Path,
    schema: Any,
    batch_options: BatchOptions,
    cluster: ClusterOptions,
    model: str | None,
    device: str,
    options: ExtractOptions,
    observer: _ProgressObserver,
    stop: _StopRequests,
) -> Batch:
    """The batch on Ray (the ``cluster`` extra; without it, exit 2 says how to install it)."""
    from thinkjson_edge.cluster.runner import ClusterBatch

    return ClusterBatch(
        in_dir,
        out_dir,
        schema,
        model=model,
        device=device,
        extract_options=options,
        cluster=cluster,
        options=batch_options,
        observer=observer,
        should_stop=stop.requested,
    )


def batch_exit_code(summary: BatchSummary, *, watch: bool) -> int:
    """130 when stopped short, else 4 if some file failed, else 6 if some is invalid, else 0.

    With --watch a Ctrl-C is the normal way to stop, so it gives the folder's code; only a
    second Ctrl-C, which abandons the file being extracted, gives 130.
    """
    if summary.abandoned or (summary.interrupted and not watch and summary.pending):
        return EXIT_INTERRUPTED
    if summary.any_failed:
        return EXIT_INPUT
    if summary.any_invalid:
        return EXIT_INVALID_OUTPUT
    return EXIT_OK


def _check_folders(in_dir: Path, out_dir: Path, schema_path: Path, model: str | None) -> None:
    from thinkjson_edge.cli.path_guard import check_paths, file_place, folder_place, model_place

    with guarded():
        inputs = [*folder_place("IN_DIR", in_dir), *file_place("--schema", schema_path)]
        check_paths([*inputs, *model_place(model)], folder_place("--out", out_dir))


class _StopRequests:
    """Ctrl-C (or SIGTERM) once: finish the current file, then stop. Twice: abandon it."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._requested = False
        self._previous: dict[int, Any] = {}

    def requested(self) -> bool:
        return self._requested

    def __enter__(self) -> _StopRequests:
        for number in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[number] = signal.signal(number, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                break
        return self

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self._requested:
            raise KeyboardInterrupt
        self._requested = True
        self._console.print("stopping after the current file (Ctrl-C again to abandon it)")


class _ProgressObserver:
    """A progress bar with ETA on stderr, and a line for each file that failed."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._console = console
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self._task: Any = None

    def loading_model(self) -> None:
        self._console.print("loading the model...")

    def model_loaded(self, extractor: Extractor) -> None:
        choice = extractor.model
        self._console.print(
            f"model {choice.describe()} ({choice.chosen_by}) loaded in "
            f"{extractor.engine.load_seconds:.1f} s",
            markup=False,
        )

    def planned(self, files: int) -> None:
        if self._task is None:
            self._progress.start()
            self._task = self._progress.add_task("", total=files)
        else:
            total = self._progress.tasks[0].total or 0
            self._progress.update(self._task, total=total + files)

    def started(self, file: str) -> None:
        self._progress.update(self._task, description=_shorten(file))

    def page_read(self, file: str, page: PageRead) -> None:
        if page.pages > 1:  # a one-page scan needs no count of its own
            described = f"{_shorten(file)} (OCR page {page.page}/{page.pages})"
            self._progress.update(self._task, description=described)

    def finished(self, file: str, outcome: Outcome) -> None:
        self._progress.advance(self._task)
        if outcome.error:
            self._console.print(
                f"{outcome.status}: {file}: {outcome.error}", markup=False, soft_wrap=True
            )

    def skipped(self, file: str, reason: str) -> None:
        self._console.print(f"warning: skipped {file}: {reason}", markup=False, soft_wrap=True)

    def waiting(self) -> None:
        if self._task is not None:
            self._progress.update(self._task, description="watching for new files")

    # With --ray: what happens to the workers.

    def workers_starting(self, count: int, address: str) -> None:
        self._console.print(f"starting {count} worker(s) on Ray ({address})...")

    def worker_ready(self, info: WorkerInfo) -> None:
        files = ", ".join(f"{name}: {how}" for name, how in info.placed.items())
        self._console.print(
            f"{info.where()}: model {info.model} ready in {info.load_seconds:.1f} s ({files})",
            markup=False,
            soft_wrap=True,
        )

    def worker_failed(self, where: str, reason: str) -> None:
        self._console.print(f"warning: {where} is out: {reason}", markup=False, soft_wrap=True)

    def worker_died(self, where: str, file: str | None, restarting: bool) -> None:
        then = "restarting it" if restarting else "not restarting it"
        self._console.print(
            f"warning: {where} died while extracting {file}; {then}, the file goes to "
            "another worker",
            markup=False,
            soft_wrap=True,
        )

    def close(self) -> None:
        self._progress.stop()


def _say_recovery(console: Console, runner: Batch) -> None:
    from thinkjson_edge.batch.jobs import SUSPECT_ATTEMPTS

    if runner.removed_temporaries:
        console.print(f"removed {runner.removed_temporaries} temporary file(s) of a stopped run")
    if runner.recovered:
        console.print(f"{len(runner.recovered)} file(s) left running by a stopped run: redoing")
    for job in runner.recovered:
        if job.attempts >= SUSPECT_ATTEMPTS:
            console.print(
                f"warning: {job.file}: the batch has stopped {job.attempts} times while "
                "extracting it; if it crashes the process, exclude it (--glob) or move it away",
                markup=False,
                soft_wrap=True,
            )


def _print_summary(console: Console, summary: BatchSummary) -> None:
    from rich.table import Table

    table = Table(title="batch summary", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows = [
        ("done", summary.done),
        ("invalid (written anyway)", summary.invalid),
        ("failed", summary.failed),
        ("skipped: already done", summary.skipped_done),
        ("skipped: failed before", summary.skipped_failed),
        ("skipped: invalid before", summary.skipped_invalid),
        ("not reached", summary.pending),
        ("skipped: not read (see below)", len(summary.not_read)),
    ]
    for label, count in rows:
        if count or label in ("done", "failed"):
            table.add_row(label, str(count))
    if summary.to_review:
        table.add_row("values to review (low confidence)", str(summary.to_review))
    table.add_row("total time", f"{summary.seconds:.1f} s")
    if summary.load_seconds:
        table.add_row("model loading", f"{summary.load_seconds:.1f} s")
    if summary.processed:
        table.add_row("docs/min", f"{summary.docs_per_minute:.1f}")
    if summary.prompt_tokens:
        share = summary.cached_prompt_tokens / summary.prompt_tokens
        table.add_row("prompt tokens reused from cache", f"{share:.0%}")
    console.print(table)
    for problem in summary.problems[:_PROBLEMS_SHOWN]:
        console.print(
            f"  {problem['status']}: {problem['file']}: {problem['error']}",
            markup=False,
            soft_wrap=True,
        )
    if len(summary.problems) > _PROBLEMS_SHOWN:
        more = len(summary.problems) - _PROBLEMS_SHOWN
        console.print(f"  ... and {more} more (see --json or the job database)")
    for entry in summary.not_read[:_PROBLEMS_SHOWN]:
        console.print(
            f"  not read: {entry['file']}: {entry['reason']}", markup=False, soft_wrap=True
        )
    if len(summary.not_read) > _PROBLEMS_SHOWN:
        console.print(f"  ... and {len(summary.not_read) - _PROBLEMS_SHOWN} more (see --json)")


def _shorten(text: str, width: int = 40) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3) :]


def _rounded(record: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in record.items()}
