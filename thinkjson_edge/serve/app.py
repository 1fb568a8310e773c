"""The HTTP application: routes, and the gate every request passes first.

The gate (``RequestGate``, plain ASGI so streaming responses pass through untouched) gives
each request an id, refuses browsers and unknown keys, counts and times every answer, logs
one line per request (the id, the route, the status, the time; never what was sent), and
turns anything unexpected into a JSON 500.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from thinkjson_edge.errors import ThinkJsonError
from thinkjson_edge.pipeline.documents import Document
from thinkjson_edge.pipeline.extractor import ExtractOptions
from thinkjson_edge.pipeline.result import ExtractionResult
from thinkjson_edge.schema import Schema
from thinkjson_edge.serve.auth import KeyCheck, is_loopback, presented_key
from thinkjson_edge.serve.chat import completion_body, parse_chat_request
from thinkjson_edge.serve.intake import (
    document_from_bytes,
    document_from_text,
    parse_json_object,
    parse_multipart,
    read_body,
    schema_from_value,
)
from thinkjson_edge.serve.metrics import Metrics
from thinkjson_edge.serve.problems import ApiError, api_error_for, internal_error, stopped_error
from thinkjson_edge.serve.request_options import request_options
from thinkjson_edge.serve.responses import extraction_body
from thinkjson_edge.serve.settings import ServeSettings
from thinkjson_edge.serve.streaming import EventRelay, event_stream
from thinkjson_edge.serve.worker import ExtractionPool, Job, QueueFull

log = logging.getLogger("thinkjson_edge.serve")

ROUTES = ("/v1/extract", "/v1/chat/completions", "/v1/models", "/health", "/metrics")
OPEN_ROUTES = frozenset({"/health"})  # a load balancer's probe needs no key
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_DISCONNECT_POLL_SECONDS = 0.25


class Service:
    """What the routes share: the settings, the pool, the metrics and the key."""

    def __init__(
        self,
        settings: ServeSettings,
        pool: ExtractionPool,
        metrics: Metrics,
        key: KeyCheck | None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.metrics = metrics
        self.key = key
        self.started = int(time.time())


def build_app(service: Service) -> ASGIApp:
    """The ASGI application of one server."""
    routes = [
        Route("/v1/extract", _bound(_extract, service), methods=["POST"]),
        Route("/v1/chat/completions", _bound(_chat, service), methods=["POST"]),
        Route("/v1/models", _bound(_models, service), methods=["GET"]),
        Route("/health", _health, methods=["GET"]),
        Route("/metrics", _bound(_metrics, service), methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            ApiError: _api_error_response,
            ThinkJsonError: _library_error_response,
            HTTPException: _http_error_response,
        },
    )
    return RequestGate(app, service)


class RequestGate:
    """Request id, browser and key checks, metrics, the log line, and the last-resort 500."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = _request_id(headers.get("x-request-id"))
        scope.setdefault("state", {}).update(request_id=request_id, arrived=started)
        route = scope["path"] if scope["path"] in ROUTES else "other"
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            refusal = self._refusal(scope["path"], headers)
            if refusal is not None:
                await _send_error(refusal, request_id, scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("request_id=%s route=%s failed", request_id, route)
            if not response_started:
                await _send_error(internal_error(), request_id, scope, receive, send_with_id)
        finally:
            seconds = time.monotonic() - started
            self.service.metrics.request_done(route, status, seconds)
            log.info(
                "request_id=%s %s %s status=%d seconds=%.3f",
                request_id,
                scope["method"],
                route,
                status,
                seconds,
            )

    def _refusal(self, path: str, headers: dict[str, str]) -> ApiError | None:
        if "origin" in headers:  # a web page: no browser is a client of this service
            self.service.metrics.rejected("browser")
            return ApiError(403, "browser_refused", "requests from web pages are refused")
        if self.service.key is None and not is_loopback(_host_name(headers.get("host", ""))):
            # Without a key, only loopback names: a DNS-rebinding page gets no answer.
            self.service.metrics.rejected("host")
            return ApiError(421, "host_refused", "this server answers loopback names only")
        if path in OPEN_ROUTES or self.service.key is None:
            return None
        key = presented_key(headers.get("authorization"), headers.get("x-api-key"))
        if self.service.key.admits(key):
            return None
        self.service.metrics.rejected("key")
        return ApiError(
            401,
            "unauthorized",
            "missing or wrong API key (send 'Authorization: Bearer KEY')",
            headers={"WWW-Authenticate": "Bearer"},
        )


# --- routes -----------------------------------------------------------------------


async def _extract(request: Request, service: Service) -> Response:
    _refuse_when_full(service)
    body = await _body(request, service)
    media, content_type = _media_type(request)
    if media == "application/json":
        document, schema, options, stream = await _json_input(body, request, service)
    elif media == "multipart/form-data":
        document, schema, options, stream = await _form_input(body, content_type, request, service)
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            'send application/json ({"text", "schema"}) or multipart/form-data (document, schema)',
        )
    job = _job(request, service, document, schema, options)
    if stream:
        relay = EventRelay(asyncio.get_running_loop())
        job.on_text = relay.on_text
        relay.watch(job)
        _submit(service, job)
        events = event_stream(job, relay, extraction_body, _log_failure(job.request_id))
        return StreamingResponse(
            events, media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )
    _submit(service, job)
    result = await _outcome(request, job)
    return JSONResponse(extraction_body(result))


async def _chat(request: Request, service: Service) -> Response:
    _refuse_when_full(service)
    body = await _body(request, service)
    media, _ = _media_type(request)
    if media != "application/json":
        raise ApiError(415, "unsupported_media_type", "send application/json")
    asked = parse_chat_request(parse_json_object(body), service.pool.model_name)
    options = request_options(asked.options, service.settings)
    document, schema = await _prepare(
        lambda: document_from_text(asked.text, service.settings), asked.schema, service
    )
    job = _job(request, service, document, schema, options)
    _submit(service, job)
    result = await _outcome(request, job)
    return JSONResponse(completion_body(result, service.pool.model_name, job.request_id))


async def _models(request: Request, service: Service) -> Response:
    model = {
        "id": service.pool.model_name,
        "object": "model",
        "created": service.started,
        "owned_by": "thinkjson-edge",
    }
    return JSONResponse({"object": "list", "data": [model]})


async def _health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _metrics(request: Request, service: Service) -> Response:
    return PlainTextResponse(
        service.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )


# --- the steps of an extraction request ---------------------------------------------


def _refuse_when_full(service: Service) -> None:
    """Before the body is read: a full queue costs the client no upload."""
    if service.pool.is_full():
        raise _queue_full(service)


async def _body(request: Request, service: Service) -> bytes:
    remaining = _remaining(request, service.settings)
    return await read_body(request, service.settings.max_body_bytes, remaining)


async def _json_input(
    body: bytes, request: Request, service: Service
) -> tuple[Document, Schema, ExtractOptions, bool]:
    """``{"text", "schema", "options", "stream"}``."""
    payload = parse_json_object(body)
    unknown = sorted(set(payload) - {"text", "schema", "options", "stream"})
    if unknown:
        raise ApiError(400, "malformed_request", f"unknown field(s): {', '.join(unknown)}")
    if "schema" not in payload:
        raise ApiError(400, "schema_required", 'the body needs "schema": the JSON Schema')
    options = request_options(payload.get("options"), service.settings)
    stream = payload.get("stream") is True or _wants_stream(request)
    document, schema = await _prepare(
        lambda: document_from_text(payload.get("text"), service.settings),
        payload["schema"],
        service,
    )
    return document, schema, options, stream


async def _form_input(
    body: bytes, content_type: str, request: Request, service: Service
) -> tuple[Document, Schema, ExtractOptions, bool]:
    """The parts ``document`` (a file), ``schema``, and optionally ``options`` and ``stream``."""
    parts = parse_multipart(body, content_type)
    for needed in ("document", "schema"):
        if needed not in parts:
            raise ApiError(400, "malformed_request", f'the form needs a "{needed}" part')
    options_part = parts.get("options")
    given = parse_json_object(options_part.data, '"options"') if options_part else None
    options = request_options(given, service.settings)
    stream_part = parts.get("stream")
    stream = stream_part is not None and stream_part.data.strip().lower() in (b"true", b"1")
    upload = parts["document"]
    document, schema = await _prepare(
        lambda: document_from_bytes(upload.data, upload.filename, service.settings),
        parse_json_object(parts["schema"].data, 'the "schema" part'),
        service,
    )
    return document, schema, options, stream or _wants_stream(request)


async def _prepare(
    read_document: Callable[[], Document], schema_value: Any, service: Service
) -> tuple[Document, Schema]:
    """The document and the schema, read in a thread (PDF parsing and the schema check are
    CPU work that would stall every other request on the event loop)."""

    def prepare() -> tuple[Document, Schema]:
        schema = schema_from_value(schema_value, service.settings)  # before the document
        return read_document(), schema

    return await anyio.to_thread.run_sync(prepare)


def _job(
    request: Request,
    service: Service,
    document: Document,
    schema: Schema,
    options: ExtractOptions,
) -> Job:
    return Job(
        request_id=request.state.request_id,
        document=document,
        schema=schema,
        options=options,
        deadline=request.state.arrived + service.settings.request_seconds,
    )


def _submit(service: Service, job: Job) -> None:
    try:
        service.pool.submit(job)
    except QueueFull:
        raise _queue_full(service) from None


async def _outcome(request: Request, job: Job) -> ExtractionResult:
    """The job's result; a client that goes away, or a deadline that passes, stops the job."""
    waiter = asyncio.wrap_future(job.future)
    while True:
        remaining = job.deadline - time.monotonic()
        done, _ = await asyncio.wait(
            {waiter}, timeout=max(0.0, min(_DISCONNECT_POLL_SECONDS, remaining))
        )
        if done:
            return waiter.result()
        reason = "disconnect" if await request.is_disconnected() else job.stop_reason
        if reason is not None:
            job.stop(reason)
            # Not cancelled: that would cancel the job itself, and a waiting job must still
            # reach a worker to be counted as stopped. Its answer is read and dropped.
            waiter.add_done_callback(lambda done: done.cancelled() or done.exception())
            raise stopped_error(reason)


def _queue_full(service: Service) -> ApiError:
    service.metrics.rejected("queue_full")
    waiting, running, _ = service.pool.depth()
    mean = service.metrics.mean_run_seconds() or 5.0  # a guess until one has finished
    seconds = math.ceil(mean * (waiting + running) / service.pool.parallel)
    seconds = max(1, min(seconds, int(service.settings.request_seconds)))
    return ApiError(
        503,
        "queue_full",
        f"the server is busy ({waiting} waiting, {running} running); try again in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


def _remaining(request: Request, settings: ServeSettings) -> float:
    return max(0.001, request.state.arrived + settings.request_seconds - time.monotonic())


def _media_type(request: Request) -> tuple[str, str]:
    content_type = request.headers.get("content-type", "")
    return content_type.split(";")[0].strip().lower(), content_type


def _wants_stream(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "") or (
        request.query_params.get("stream", "").lower() in ("1", "true")
    )


def _log_failure(request_id: str) -> Callable[[BaseException], None]:
    def log_failure(error: BaseException) -> None:
        log.error("request_id=%s failed", request_id, exc_info=error)

    return log_failure


# --- helpers ----------------------------------------------------------------------------


def _bound(
    handler: Callable[[Request, Service], Any], service: Service
) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        return await handler(request, service)

    return endpoint


def _request_id(given: str | None) -> str:
    """The client's X-Request-Id when it is a plain token, else a new one."""
    if given and _REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex[:16]


def _host_name(host: str) -> str:
    """The name in a Host header, without its port."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


async def _send_error(
    error: ApiError, request_id: str, scope: Scope, receive: Receive, send: Send
) -> None:
    response = _error_response(error, request_id)
    await response(scope, receive, send)


def _error_response(error: ApiError, request_id: str | None) -> JSONResponse:
    return JSONResponse(error.body(request_id), status_code=error.status, headers=error.headers)


async def _api_error_response(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return _error_response(error, request.state.request_id)


async def _library_error_response(request: Request, error: Exception) -> Response:
    assert isinstance(error, ThinkJsonError)
    return _error_response(api_error_for(error), request.state.request_id)


async def _http_error_response(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    problem = ApiError(error.status_code, code, str(error.detail), dict(error.headers or {}))
    return _error_response(problem, request.state.request_id)
