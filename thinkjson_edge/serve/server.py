"""Starting and stopping one server: the socket, the models, uvicorn, and a clean stop.

The order is the lock-down's: the address and the key are checked first (no model is
loaded for a start that is refused), then the socket is bound (a port in use is a clear
error, not a traceback from uvicorn), then the model is loaded, and only then are requests
taken. SIGINT and SIGTERM stop taking requests, stop the running generations at their next
token, and free the model.
"""

from __future__ import annotations

import errno
import importlib.util
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from thinkjson_edge.errors import UsageError
from thinkjson_edge.pipeline.extractor import Extractor
from thinkjson_edge.serve.auth import KeyCheck, key_file_warning, load_api_key, require_key_for
from thinkjson_edge.serve.metrics import Metrics
from thinkjson_edge.serve.settings import ServeSettings
from thinkjson_edge.serve.worker import ExtractionPool

log = logging.getLogger("thinkjson_edge.serve")
# Connections uvicorn holds at once beyond the queue (health probes, metrics scrapes, 503s
# being answered); past it uvicorn itself answers 503.
_CONNECTION_HEADROOM = 64
_GRACEFUL_STOP_SECONDS = 10
_WEB_STACK = ("starlette", "uvicorn", "python_multipart")


def require_web_stack() -> None:
    """UsageError (exit 2) naming the extra when the web stack is not installed."""
    missing = [name for name in _WEB_STACK if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(
            f"serve needs the web stack ({', '.join(missing)} missing): "
            "pip install 'thinkjson-edge[serve]'"
        )


def check_start(settings: ServeSettings, key_file: Path | None) -> KeyCheck | None:
    """The lock-down checks, before anything is loaded; UsageError (exit 2) when refused."""
    require_key_for(settings.host, key_file)
    if key_file is None:
        return None
    key = KeyCheck(load_api_key(key_file))
    if warning := key_file_warning(key_file):
        log.warning(warning)
    return key


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port``; UsageError when it cannot be had."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: cannot be resolved ({exc.strerror})") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        why = "it is in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise UsageError(f"cannot listen on {host}:{port}: {why}") from exc
    sock.set_inheritable(True)
    return sock


def serve(
    settings: ServeSettings,
    key: KeyCheck | None,
    load_extractor: Callable[[], Extractor],
    say: Callable[[str], None],
) -> None:
    """Serve until SIGINT or SIGTERM (blocking); the model loads before any request."""
    import uvicorn

    from thinkjson_edge.serve.app import Service, build_app

    sock = bind(settings.host, settings.port)
    metrics = Metrics()
    pool = ExtractionPool(
        load_extractor, parallel=settings.parallel, capacity=settings.queue, metrics=metrics
    )
    try:
        pool.start()  # ModelLoadError: exit 5, before the first request
        app = build_app(Service(settings, pool, metrics, key))
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,  # the gate logs each request with its id
            server_header=False,
            limit_concurrency=settings.queue + settings.parallel + _CONNECTION_HEADROOM,
            timeout_graceful_shutdown=_GRACEFUL_STOP_SECONDS,
        )
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        say(
            f"serving {pool.model_name} on http://{shown}:{port} ({settings.parallel} "
            f"worker(s), queue {settings.queue}, {'API key required' if key else 'no API key'})"
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        pool.close()
        sock.close()


def configure_logging(level: str) -> None:
    """One line per event on stderr; the server's lines carry the request id."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("thinkjson_edge.serve", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


def threads_per_worker(parallel: int) -> int | None:
    """CPU threads each worker's llama.cpp may use: the cores shared out (None: its own
    choice, with one worker)."""
    if parallel <= 1:
        return None
    return max(1, (os.cpu_count() or 1) // parallel)
