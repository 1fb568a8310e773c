"""``thinkjson-edge extract``: one document, one object."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from thinkjson_edge.cli.exit_codes import EXIT_INVALID_OUTPUT, guarded
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
    from thinkjson_edge.pipeline.documents import Document
    from thinkjson_edge.pipeline.extractor import ExtractOptions
    from thinkjson_edge.pipeline.reading import PageRead
    from thinkjson_edge.pipeline.result import ExtractionResult

_FINDINGS_SHOWN = 10  # on stderr; the report has them all


@click.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@schema_option("JSON Schema of the object.")
@out_option("out", "Write the object here (atomically) instead of stdout.")
@model_options
@parallel_option
@extraction_options()
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
@click.option(
    "--highlight",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="OUT.pdf|OUT.png",
    help="Draw the box of every extracted value on the page images (PDFs and images).",
)
@ocr_option
@read_limit_options
@quiet_option()
def extract(
    file: Path,
    schema_path: Path,
    out: Path | None,
    model: str | None,
    device: str,
    parallel: int | None,
    options: ExtractOptions,
    report: bool,
    report_file: Path | None,
    highlight: Path | None,
    ocr: str,
    quiet: bool,
) -> None:
    """Extract one JSON object matching --schema from FILE."""
    from thinkjson_edge.cli.path_guard import check_paths, file_place, model_place
    from thinkjson_edge.cli.stdout import require_stdout
    from thinkjson_edge.files import check_writable, write_atomically
    from thinkjson_edge.pipeline.documents import ReadOptions, read_document
    from thinkjson_edge.pipeline.extractor import Extractor
    from thinkjson_edge.pipeline.highlight import check_highlight_target, check_highlightable
    from thinkjson_edge.pipeline.schema_check import load_usable_schema

    say = _Diagnostics(quiet)
    with guarded("nothing was written"):
        # Before minutes of work, not after: where the result goes, and that no input is it.
        check_paths(
            [*file_place("FILE", file), *file_place("--schema", schema_path), *model_place(model)],
            [
                *file_place("--out", out),
                *file_place("--report-file", report_file),
                *file_place("--highlight", highlight),
            ],
        )
        if highlight:
            check_highlight_target(highlight)
        for target in (out, report_file, highlight):
            if target:
                check_writable(target)
        if out is None:
            require_stdout()
        schema = load_usable_schema(schema_path, options.grammar_limits)  # before the model
        document = read_document(file, ReadOptions(ocr=ocr, on_page=say.page_read))
        for note in document.notes:
            say(f"warning: {note}")
        if highlight:
            check_highlightable(document)  # before the model, not after minutes of work
        with Extractor(model, device=device, options=options, parallel=parallel) as extractor:
            say(
                f"model {extractor.model.describe()} ({extractor.model.chosen_by}) loaded in "
                f"{extractor.engine.load_seconds:.1f} s; extracting from {document.source}"
            )
            result = extractor.extract(document, schema)

    for attempt in result.attempts:
        gen = attempt.generation
        state = "valid" if attempt.valid else f"{attempt.schema_errors} schema error(s)"
        say(
            f"attempt {attempt.number}: {state}, {attempt.ungrounded} value(s) not found in the "
            f"document; {gen.generated_tokens} tokens in {gen.decode_seconds:.1f} s "
            f"({gen.tokens_per_second:.0f} tok/s), stop: {gen.stop_reason}"
            + (f"; {gen.dropped_items} unlikely array item(s) dropped" if gen.dropped_items else "")
            + (_asked(attempt.asked_keys, attempt.asked_kept) if attempt.asked_keys else "")
        )
    for finding in result.findings[:_FINDINGS_SHOWN]:
        say(f"  finding: {finding.describe()}")
    if len(result.findings) > _FINDINGS_SHOWN:
        say(f"  ... and {len(result.findings) - _FINDINGS_SHOWN} more findings (see --report)")
    if len(result.attempts) > 1:
        say(f"kept attempt {result.chosen_attempt}")

    text = json.dumps(result.value, ensure_ascii=False, indent=2) + "\n"
    with guarded():
        if out:
            write_atomically(out, text)
            say(f"wrote {out}")
        else:
            click.echo(text, nl=False)
        if report_file:
            write_atomically(report_file, result.to_json() + "\n")
        if highlight:
            _write_highlight(document, result, highlight, say)
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


def _write_highlight(
    document: Document, result: ExtractionResult, out: Path, say: _Diagnostics
) -> None:
    from thinkjson_edge.pipeline.highlight import value_highlights, write_highlight

    assert document.layout is not None  # checked before the model loaded
    highlights = value_highlights(result, document.layout)
    pages = write_highlight(document, highlights, out)
    say(f"wrote {out}: {len(highlights)} box(es) of extracted values on {pages} page(s)")


class _Diagnostics:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        if not self.quiet:
            click.echo(f"thinkjson-edge: {message}", err=True)

    def page_read(self, page: PageRead) -> None:
        """Progress of OCR, one line per page: a long scan shows it is moving."""
        self(
            f"OCR page {page.page}/{page.pages} of {page.source}: {page.characters} "
            f"characters in {page.seconds:.1f} s"
        )


def _asked(keys: tuple[str, ...], kept: bool) -> str:
    """What asking for labelled keys did (see pipeline.labelled_keys)."""
    verdict = "kept" if kept else "not kept: the model was unsure or the result worse"
    return f"; asked again for labelled {', '.join(keys)} ({verdict})"
