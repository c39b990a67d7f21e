"""The FastAPI application factory.

``create_app(ctx)`` builds the app around an :class:`~cryptoarb.api.context.ApiContext`: every
router under ``/api``, the stream, ``/health`` (no auth), ``/metrics`` (Prometheus), and the
built dashboard at ``/`` when ``api/static/index.html`` exists (client-side routes fall back to
it), else a message that it is not built. The hub's fan-out task runs with the app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import make_asgi_app
from sqlalchemy import text
from starlette.routing import Route

from cryptoarb import __version__
from cryptoarb.api.context import ApiContext
from cryptoarb.api.routes import auth as auth_routes
from cryptoarb.api.routes import live as live_routes
from cryptoarb.api.routes import runs as run_routes
from cryptoarb.api.schemas import Error, Health
from cryptoarb.api.stream import router as stream_router

STATIC = Path(__file__).with_name("static")
NOT_BUILT = ("the dashboard is not built (no src/cryptoarb/api/static/index.html): build it as the README says "
             "(Dashboard); the API itself is at /api, its documentation at /docs")
log = logging.getLogger("cryptoarb.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGI = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """Refuse request bodies above ``limit`` bytes with 413, before a handler reads them
    (declared Content-Length, or counted as a chunked body arrives)."""

    def __init__(self, app: ASGI, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    too_big = int(v) > self.limit
                except ValueError:
                    too_big = True
                if too_big:
                    await _send_json(send, 413, f"request body larger than {self.limit} bytes")
                    return
        # read the whole body first (it is small, by this very limit), then hand it on in one piece
        chunks: list[bytes] = []
        seen = 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":  # the client went away
                return
            body = msg.get("body", b"")
            seen += len(body)
            if seen > self.limit:
                await _send_json(send, 413, f"request body larger than {self.limit} bytes")
                return
            chunks.append(body)
            if not msg.get("more_body", False):
                break
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return whole
            return await receive()

        await self.app(scope, replay, send)


class Measure:
    """Count and time every HTTP request by route template (a plain ASGI middleware: cheaper
    than Starlette's ``BaseHTTPMiddleware``)."""

    def __init__(self, app: ASGI, ctx: ApiContext) -> None:
        self.app = app
        self.metrics = ctx.metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]

        async def sending(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", "other") if route is not None else "unmatched"
            if scope.get("path", "").startswith("/api/") and not name.startswith("/api"):
                name = "/api" + name  # the router's own path template, without the include prefix
            self.metrics.requests.labels(scope.get("method", ""), name, str(status[0])).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - t0)


class _MetricsApp:
    """prometheus_client's ASGI app, with the engine's and the stream's gauges refreshed first."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.app = make_asgi_app(registry=ctx.metrics.registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        m, link, hub = self.ctx.metrics, self.ctx.link, self.ctx.hub
        snap = link.snapshot if link is not None else None
        if snap:
            m.engine_messages.set(snap["messages"])
            m.engine_opportunities.set(snap["opportunities"])
        m.stream_clients.set(hub.clients)
        m.stream_dropped.set(hub.stats.dropped_clients)
        await self.app(scope, receive, send)


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = JSONResponse({"detail": detail}).body
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(ctx: ApiContext) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.ensure_future(ctx.hub.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(title="cryptoarb API", version=__version__, lifespan=lifespan,
                  description="Watch and steer cryptoarb: stored runs, the running engine, a live stream. "
                              "Authenticate with POST /api/login; see docs/api.md.")
    app.state.ctx = ctx
    for r in (auth_routes.router, run_routes.router, live_routes.router):
        app.include_router(r, prefix="/api")
    app.include_router(stream_router)

    @app.get("/health", response_model=Health, tags=["health"],
             responses={503: {"model": Health, "description": "the database cannot be reached"}})
    def health() -> Any:
        """Liveness and readiness, no authentication: the database answers, the engine runs."""
        engine = "none" if ctx.link is None else ("ended" if ctx.link.closed else "running")
        try:
            with ctx.db.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as e:
            detail = type(e).__name__
            return JSONResponse({"status": "degraded", "database": "error", "engine": engine,
                                 "detail": f"database unreachable ({detail})"}, status_code=503)
        return {"status": "ok", "database": "ok", "engine": engine, "detail": ""}

    app.router.routes.append(Route("/metrics", _MetricsApp(ctx), methods=["GET"], include_in_schema=False))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's shape (a list naming each field), made safe: no echo of a submitted password
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in exc.errors()[:10]]
        return JSONResponse({"detail": errors}, status_code=422)

    _mount_dashboard(app)
    app.add_middleware(Measure, ctx=ctx)
    app.add_middleware(BodyLimit, limit=ctx.settings.api.max_body_bytes)
    return app


def _mount_dashboard(app: FastAPI) -> None:
    index = STATIC / "index.html"

    @app.get("/", include_in_schema=False, response_model=None)
    def root() -> Response:
        if index.is_file():
            return FileResponse(index)
        return JSONResponse({"detail": NOT_BUILT}, status_code=404)

    @app.get("/{path:path}", include_in_schema=False, response_model=None,
             responses={404: {"model": Error}})
    def spa(path: str) -> Response:
        if path == "api" or path.startswith("api/"):
            return JSONResponse({"detail": f"no API endpoint /{path} (see /docs)"}, status_code=404)
        if not index.is_file():
            return JSONResponse({"detail": NOT_BUILT}, status_code=404)
        f = (STATIC / path).resolve()
        if f.is_file() and STATIC.resolve() in f.parents:
            return FileResponse(f)
        return FileResponse(index)  # a client-side route of the single-page app
