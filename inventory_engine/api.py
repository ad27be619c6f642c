"""The engine's HTTP app: marketplace webhooks, the storefront REST API, health and readiness.

:func:`create_app` wires the routers of :mod:`inventory_engine.intake.webhooks` and
:mod:`inventory_engine.intake.storefront` to one :class:`~inventory_engine.service.Engine`.
Whatever goes wrong, the caller gets an answer in the shape it expects, chosen by path: Ozon's
and Yandex Market's error bodies under ``/webhooks/...``, ``{"error", "message"}`` elsewhere.

* Bodies above ``[http] max_body_bytes`` are refused with 413 before any handler reads them
  (:class:`BodyLimitMiddleware`; a declared ``Content-Length`` is refused without reading).
* ``GET /healthz``: the process answers. ``GET /readyz``: Redis answers PING and at least one RQ
  worker listens on the events queue; else 503 naming what is missing.
* ``/openapi.json`` and ``/docs`` describe every route.
* Marketplace webhooks are accepted only from their networks (``[webhooks]``, through
  ``[http] trusted_proxies``; :mod:`inventory_engine.intake.sources`), except in sandbox mode.
  :func:`serve_http` runs the app with uvicorn's own ``X-Forwarded-For`` handling off: uvicorn
  would otherwise believe that header from any loopback peer.

Handlers that call Redis are plain functions (FastAPI runs them in its thread pool) or hand the
call to the pool themselves, so the event loop never blocks on redis-py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from rq import Worker
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inventory_engine import __version__
from inventory_engine.errors import LedgerScriptError, LedgerUnavailableError
from inventory_engine.http_server import RunningServer, serve_in_thread
from inventory_engine.intake import storefront, webhooks
from inventory_engine.intake.sources import build_sources
from inventory_engine.intake.storefront import ApiError
from inventory_engine.metrics.collector import EngineCollector, build_registry
from inventory_engine.service import Engine, Engines

log = structlog.get_logger()

REST_ERROR_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    422: "invalid_request",
    503: "unavailable",
}
"""``error`` of a REST error answer by status; others are ``http_<status>``."""


def error_response(path: str, status: int, message: str, **extra: Any) -> JSONResponse:
    """An error answer in the shape the caller of ``path`` expects."""
    marketplace = webhooks.webhook_error(path, status, message)
    if marketplace is not None:
        return marketplace
    code = REST_ERROR_CODES.get(status, "internal_error" if status >= 500 else f"http_{status}")
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


class JsonBodyMiddleware:
    """The REST API ``/v1`` takes JSON only: a body sent without a Content-Type, or as curl's
    default ``-d`` form type, is read as the JSON it is (it used to be refused 422 with no word
    about the header). A body declared as anything else is refused 415, naming the header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            declared = Headers(scope=scope).get("content-type", "").split(";")[0].strip()
            if declared in ("", "application/x-www-form-urlencoded"):
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
            elif declared != "application/json" and not declared.endswith("+json"):
                answer = JSONResponse(
                    {
                        "error": "unsupported_media_type",
                        "message": f"the body is {declared}: send JSON with "
                        "Content-Type: application/json",
                    },
                    status_code=415,
                )
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``max_bytes`` with 413, before the app reads them.

    A ``Content-Length`` above the limit is refused at once; a body without one (chunked) is
    read up to the limit and refused as soon as it passes it. A body within the limit is handed
    on whole, so handlers never see a partial body.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # waits for the disconnect, as the server's would
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        log.warning("request_too_large", path=scope["path"], limit=self.max_bytes)
        message = f"the request body is larger than {self.max_bytes} bytes"
        await error_response(scope["path"], 413, message)(scope, receive, send)


# -- exception handlers ---------------------------------------------------------------------


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)  # noqa: S101 - registered for ApiError only
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    details = [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type")}
        for error in exc.errors()
    ]
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(part) for part in first["loc"])
    message = f"{where}: {first['msg']}" if where else str(first["msg"])
    return error_response(request.url.path, 422, message, details=jsonable_encoder(details))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
    status = exc.status_code
    if status == 400 and not webhooks.is_webhook(request.url.path):
        status = 422  # FastAPI's "error parsing the body": one status for every bad /v1 body
    return error_response(request.url.path, status, str(exc.detail))


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.error("ledger_unavailable", path=request.url.path, error=str(exc))
    return error_response(request.url.path, 503, "the ledger is unavailable; retry")


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    """Redis answered with an error: out of memory or read-only is a state that passes (503,
    retry); a script's error or a key of the wrong type is not (500)."""
    log.error("ledger_refused", path=request.url.path, error=str(exc))
    if isinstance(
        exc.__cause__, (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError)
    ):
        return error_response(request.url.path, 503, "the ledger is unavailable; retry")
    return error_response(request.url.path, 500, "internal error")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("request_failed", path=request.url.path, exc_info=exc)
    return error_response(request.url.path, 500, "internal error")


# -- the app --------------------------------------------------------------------------------


def create_app(
    engines: Engine | Engines,
    *,
    worker_processes: Callable[[], int] | None = None,
    sandbox: bool = False,
) -> FastAPI:
    """The HTTP app of a deployment's engines, one per account (served by uvicorn in
    ``serve``, in-process in tests): a webhook goes to the account its path names
    (``/webhooks/<account>/ozon``; the unprefixed paths are ``default``'s), a ``/v1`` call to
    the account its token opens.

    ``worker_processes`` (from ``serve``) reports how many supervised workers are alive.
    ``sandbox`` (``serve`` with no ``[[channels]]``): the webhook source check is off.
    """
    if isinstance(engines, Engine):
        by_account, settings = {engines.settings.account: engines}, engines.settings
    else:
        by_account, settings = dict(engines.by_account), engines.settings
    engine = next(iter(by_account.values()))  # health, readiness: the shared connections
    app = FastAPI(
        title="inventory-engine",
        version=__version__,
        description="Marketplace webhooks and the storefront API of inventory-engine.",
    )
    app.state.engine = engine
    app.state.engines = by_account
    app.state.multi_account = bool(settings.accounts)
    app.state.api_tokens = settings.api_tokens()
    app.state.sources = build_sources(
        settings,
        [c for e in by_account.values() for c in e.channel_settings.values()],
        sandbox=sandbox,
    )
    app.include_router(webhooks.router)
    app.include_router(storefront.router)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(LedgerUnavailableError, _unavailable)
    app.add_exception_handler(LedgerScriptError, _refused)
    app.add_exception_handler(redis.RedisError, _unavailable)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(JsonBodyMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=engine.settings.http.max_body_bytes)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is up (it does not look at Redis: see /readyz)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], response_model=None)
    def readyz() -> JSONResponse:
        """Ready when Redis answers and an RQ worker listens on the events queue."""
        return readiness(engine)

    registry = build_registry(
        EngineCollector(
            engine.client,
            queues={"events": engine.events, "push": engine.pushes},
            accounts={name: list(e.channel_settings) for name, e in by_account.items()},
            worker_processes=worker_processes,
        )
    )

    @app.get("/metrics", tags=["health"], response_class=Response)
    def metrics() -> Response:
        """Prometheus text format; figures of every worker process (they live in Redis)."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def readiness(engine: Engine) -> JSONResponse:
    """200 ``{"status": "ready", ...}`` or 503 ``{"status": "not_ready", "missing": [...]}``."""
    missing: list[str] = []
    workers = 0
    try:
        engine.client.ping()
        if engine.queue_client is not engine.client:
            engine.queue_client.ping()
        workers = len(Worker.all(queue=engine.events))
    except redis.RedisError as exc:
        log.warning("not_ready", error=str(exc))
        missing.append("redis")
    if not missing and workers == 0:
        missing.append("worker")
    body = {
        "status": "not_ready" if missing else "ready",
        "redis": "unreachable" if "redis" in missing else "ok",
        "workers": workers,
        "queue": engine.events.name,
        "missing": missing,
    }
    return JSONResponse(body, status_code=503 if missing else 200)


def serve_http(app: FastAPI, *, host: str, port: int) -> RunningServer:
    """Serve the engine's app with uvicorn in a background thread; return once it listens.

    uvicorn's proxy-header handling is off: by default it replaces the client address with
    ``X-Forwarded-For`` for any peer on 127.0.0.1 or ::1, which would let anyone on this machine
    (or a local proxy passing the header through) choose the address the webhook check sees.
    The app reads that header itself, from ``[http] trusted_proxies`` only.

    Raises:
        RuntimeError: the server did not start within 10 s.
    """
    return serve_in_thread(
        app, host=host, port=port, name="http", proxy_headers=False, server_header=False
    )
