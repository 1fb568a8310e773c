"""The ``thinkjson-edge`` command line: thin over the Python API, one module per command.

The extracted object goes to stdout (or ``--out``); everything else goes to stderr. Library
errors become exit codes here only (``exit_codes.py``).
"""

from __future__ import annotations

from typing import Any

import click

from thinkjson_edge import __version__


class _Main(click.Group):
    """The command group, whose output to stdout is checked to its last byte (``stdout.py``)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        from thinkjson_edge.cli.exit_codes import fail
        from thinkjson_edge.cli.stdout import StdoutWriteError, finish_stdout, guard_stdout

        try:
            guard_stdout()
            try:
                return super().main(*args, **kwargs)
            finally:  # also on sys.exit: an exit code must not hide a lost result
                finish_stdout()
        except StdoutWriteError as error:
            fail(error)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="thinkjson-edge")
def main() -> None:
    """Extract schema-valid JSON from documents with a small local model. No network is used."""


def _register_commands() -> None:
    from thinkjson_edge.cli.batch import batch
    from thinkjson_edge.cli.convert import convert
    from thinkjson_edge.cli.eval import eval_command
    from thinkjson_edge.cli.extract import extract
    from thinkjson_edge.cli.models import models
    from thinkjson_edge.cli.schema import schema
    from thinkjson_edge.cli.serve import serve
    from thinkjson_edge.cli.train import train
    from thinkjson_edge.cli.tui import tui
    from thinkjson_edge.cli.tune import tune

    main.add_command(extract)
    main.add_command(schema)
    main.add_command(eval_command)
    main.add_command(batch)
    main.add_command(convert)
    main.add_command(models)
    main.add_command(train)
    main.add_command(tui)
    main.add_command(serve)
    main.add_command(tune)


_register_commands()

if __name__ == "__main__":
    main()
