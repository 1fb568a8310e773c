"""The ``thinkjson-edge`` command: thin over the Python API; errors become exit codes here only.

The extracted object goes to stdout (or ``--out``); everything else goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import click

from thinkjson_edge import __version__
from thinkjson_edge.cli_options import (
    extract_options,
    model_options,
    reasoning_options,
    sampling_options,
)
from thinkjson_edge.errors import OutputWriteError, ThinkJsonError
from thinkjson_edge.exit_codes import (
    EXIT_INTERRUPTED,
    EXIT_INVALID_OUTPUT,
    fail,
)

_FINDINGS_SHOWN = 10  # on stderr; the report has them all


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="thinkjson-edge")
def main() -> None:
    """Extract schema-valid JSON from documents with a small local model. No network is used."""


@main.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--schema",
    "-s",
    "schema_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="JSON Schema of the object.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the object here (atomically) instead of stdout.",
)
@model_options
@reasoning_options
@sampling_options
@click.option(
    "--report",
    is_flag=True,
    help="Print the full record (attempts, findings, timings) to stderr as JSON.",
)
@click.option(
    "--report-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the full record to this file.",
)
@click.option("--quiet", "-q", is_flag=True, help="Only errors on stderr.")
def extract(
    file: Path,
    schema_path: Path,
    out: Path | None,
    model: str | None,
    device: str,
    think: bool,
    max_think_tokens: int,
    self_correct: bool,
    temperature: float,
    seed: int,
    report: bool,
    report_file: Path | None,
    quiet: bool,
) -> None:
    """Extract one JSON object matching --schema from FILE."""
    from thinkjson_edge.documents import read_document
    from thinkjson_edge.extract import Extractor
    from thinkjson_edge.schema import load_schema

    say = _Diagnostics(quiet)
    try:
        for target in (out, report_file):
            if target:
                check_writable(target)  # before minutes of work, not after
        schema = load_schema(schema_path)
        document = read_document(file)
        options = extract_options(
            think=think,
            self_correct=self_correct,
            max_think_tokens=max_think_tokens,
            temperature=temperature,
            seed=seed,
        )
        with Extractor(model, device=device, options=options) as extractor:
            say(
                f"model {extractor.model.name} ({extractor.model.chosen_by}) loaded in "
                f"{extractor.engine.load_seconds:.1f} s; extracting from {document.source}"
            )
            result = extractor.extract(document, schema)
    except ThinkJsonError as error:
        fail(error)
    except KeyboardInterrupt:
        click.echo("thinkjson-edge: interrupted; nothing was written", err=True)
        sys.exit(EXIT_INTERRUPTED)

    for attempt in result.attempts:
        gen = attempt.generation
        state = "valid" if attempt.valid else f"{attempt.schema_errors} schema error(s)"
        say(
            f"attempt {attempt.number}: {state}, {attempt.ungrounded} value(s) not found in the "
            f"document; {gen.generated_tokens} tokens in {gen.decode_seconds:.1f} s "
            f"({gen.tokens_per_second:.0f} tok/s), stop: {gen.stop_reason}"
        )
    for finding in result.findings[:_FINDINGS_SHOWN]:
        say(f"  finding: {finding.describe()}")
    if len(result.findings) > _FINDINGS_SHOWN:
        say(f"  ... and {len(result.findings) - _FINDINGS_SHOWN} more findings (see --report)")
    if len(result.attempts) > 1:
        say(f"kept attempt {result.chosen_attempt}")

    text = json.dumps(result.value, ensure_ascii=False, indent=2) + "\n"
    try:
        if out:
            write_atomically(out, text)
            say(f"wrote {out}")
        else:
            click.echo(text, nl=False)
        if report_file:
            write_atomically(report_file, result.to_json() + "\n")
    except OutputWriteError as error:
        fail(error)
    if not result.valid:
        click.echo(
            "thinkjson-edge: the result still fails the schema after correction; "
            "it was written anyway, flagged by this exit code",
            err=True,
        )
    if report:  # last on stderr, so a reader can take everything from the first "{" on
        click.echo(result.to_json(), err=True)
    if not result.valid:
        sys.exit(EXIT_INVALID_OUTPUT)


def check_writable(path: Path) -> None:
    """Raise OutputWriteError unless ``path`` can be created (its folder may be made)."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise OutputWriteError(f"{path}: cannot be written ({folder} is not a writable folder)")
    if path.is_dir():
        raise OutputWriteError(f"{path}: is a directory")


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a reader never sees a half-written file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
    except OSError as exc:
        raise OutputWriteError(f"{path}: cannot be written ({exc.strerror or exc})") from exc
    try:
        os.fchmod(handle, 0o666 & ~_umask())  # mkstemp makes 0600; a result is an ordinary file
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise OutputWriteError(f"{path}: cannot be written ({exc.strerror or exc})") from exc
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _Diagnostics:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        if not self.quiet:
            click.echo(f"thinkjson-edge: {message}", err=True)


def _register_commands() -> None:
    from thinkjson_edge.batch_cli import batch
    from thinkjson_edge.convert_cli import convert
    from thinkjson_edge.eval_cli import eval_command
    from thinkjson_edge.models_cli import models
    from thinkjson_edge.schema_cli import schema
    from thinkjson_edge.train_cli import train
    from thinkjson_edge.tui_cli import tui

    main.add_command(schema)
    main.add_command(eval_command)
    main.add_command(batch)
    main.add_command(convert)
    main.add_command(models)
    main.add_command(train)
    main.add_command(tui)


_register_commands()

if __name__ == "__main__":
    main()
