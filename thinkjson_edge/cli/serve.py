"""``thinkjson-edge serve``: extraction over local HTTP (``serve/``), locked down by default.

The web stack (the ``serve`` extra) is imported inside the command only, so no other
command and no ``import thinkjson_edge`` loads it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from thinkjson_edge.cli.exit_codes import guarded
from thinkjson_edge.cli.options import extraction_options, model_options, read_limit_options

if TYPE_CHECKING:
    from thinkjson_edge.pipeline.extractor import ExtractOptions, Extractor


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback needs --api-key-file.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to listen on (0: any free port, printed at start).",
)
@click.option(
    "--api-key-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File holding the API key clients must send ('Authorization: Bearer KEY').",
)
@click.option(
    "--parallel",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Workers, each with its own copy of the model.",
)
@click.option(
    "--queue",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Requests that may wait for a worker; one more is answered 503.",
)
@click.option(
    "--request-timeout",
    "request_seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="Give a request up after this long, its time in the queue included (504).",
)
@click.option(
    "--max-body-mb",
    type=click.FloatRange(min=0, min_open=True),
    default=20.0,
    show_default=True,
    metavar="MB",
    help="Refuse a request body larger than this (413).",
)
@click.option(
    "--max-pages",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Refuse a document with more pages (413).",
)
@click.option(
    "--max-json-tokens",
    type=click.IntRange(min=1),
    default=2048,
    show_default=True,
    help="JSON token budget of an attempt, and the most a client may ask for.",
)
@model_options
@extraction_options()
@read_limit_options
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="What the server logs on stderr.",
)
def serve(
    host: str,
    port: int,
    api_key_file: Path | None,
    parallel: int,
    queue: int,
    request_seconds: float,
    max_body_mb: float,
    max_pages: int,
    max_json_tokens: int,
    model: str | None,
    device: str,
    options: ExtractOptions,
    log_level: str,
) -> None:
    """Serve extraction over HTTP: POST /v1/extract, POST /v1/chat/completions (OpenAI's
    shape), GET /v1/models, /health and /metrics.

    Listens on loopback unless --host says otherwise, which needs --api-key-file. Stop it
    with Ctrl-C or SIGTERM.
    """
    from thinkjson_edge.environment import stay_offline
    from thinkjson_edge.files import MB

    stay_offline()  # the server never reaches the network
    with guarded():
        from thinkjson_edge.serve.server import (
            check_start,
            configure_logging,
            require_web_stack,
            threads_per_worker,
        )
        from thinkjson_edge.serve.server import serve as run_server
        from thinkjson_edge.serve.settings import ServeSettings

        require_web_stack()
        settings = ServeSettings(
            host=host,
            port=port,
            parallel=parallel,
            queue=queue,
            request_seconds=request_seconds,
            max_body_bytes=max(1, round(max_body_mb * MB)),
            max_pages=max_pages,
            options=replace(options, max_json_tokens=max_json_tokens),
        )
        configure_logging(log_level)
        key = check_start(settings, api_key_file)  # before any model loads

        def load_extractor() -> Extractor:
            from thinkjson_edge.pipeline.extractor import Extractor

            return Extractor(
                model,
                device=device,
                n_threads=threads_per_worker(parallel),
                options=settings.options,
            )

        run_server(settings, key, load_extractor, _say)


def _say(message: str) -> None:
    click.echo(f"thinkjson-edge: {message}", err=True)
