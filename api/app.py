"""The FastAPI application: ingest, status, health and metrics (OpenAPI docs on /docs)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import make_asgi_app
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import Services
from api.routes import appeals, audit, cases, codec, console, events, exports, health, reviews, stats, users
from api.routes.events import BATCH_INGEST_PATH
from core.db import create_pool
from core.settings import Settings, get_settings
from core.storage.audit import configure_audit_key
from core.telemetry import instrument_fastapi, setup_tracing
from core.temporal import connect

log = logging.getLogger(__name__)


def _field_path(loc: tuple[object, ...] | list[object]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _field_path(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
              for e in exc.errors()]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return JSONResponse({"detail": f"invalid request: {summary}", "errors": errors}, status_code=422)


async def _data_error(_: Request, exc: Exception) -> JSONResponse:
    """A value the database cannot hold (a date out of range, say) is the caller's input, not our fault."""
    return JSONResponse({"detail": f"a value in the request is out of range: {str(exc).splitlines()[0][:200]}"},
                        status_code=422)


# The database being unreachable (refused, reset, restarting, pool closed or exhausted) is an outage the
# client retries, never a 500: every route answers 503 with Retry-After, whichever query hit it.
_DATABASE_DOWN: tuple[type[Exception], ...] = (
    OSError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError, asyncpg.InterfaceError,
    asyncpg.ConnectionDoesNotExistError, asyncpg.TooManyConnectionsError, TimeoutError)


async def _database_down(request: Request, exc: Exception) -> JSONResponse:
    log.error("database unreachable", extra={"path": request.url.path, "error": f"{type(exc).__name__}: {exc}"})
    return JSONResponse({"detail": "the database is unreachable right now; nothing was changed, retry shortly"},
                        status_code=503, headers={"Retry-After": "5"})


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


class RequestGuard:
    """Refuse, before any route runs: bodies over the size limit (413, declared or streamed), and NUL
    characters in the URL or a JSON body (422; PostgreSQL cannot store them, so they would otherwise
    fail deep inside a case)."""

    def __init__(self, app: ASGIApp, limit: int, path_limits: dict[str, int] | None = None) -> None:
        self.app, self.default_limit = app, limit
        self.path_limits = path_limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope.get("path", ""), self.default_limit)
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
            await _reject(send, 422, "NUL characters (%00) are not allowed in the URL")
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, int(declared), limit)
            return
        # Bodies are bounded (a few KiB; a batch a few MiB): read all of it, check it, then hand it on.
        chunks: list[bytes] = []
        seen = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                await _too_large(send, seen, limit)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        if b"\\u0000" in body or b"\x00" in body:
            await _reject(send, 422, "NUL characters (\\u0000) are not allowed in the request body")
            return
        replayed = False

        async def replay() -> dict[str, object]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect

        await self.app(scope, replay, send)


async def _too_large(send: Send, size: int, limit: int) -> None:
    setting = "MAX_BATCH_BODY_BYTES" if limit != get_settings().api.max_body_bytes else "MAX_BODY_BYTES"
    await _reject(send, 413, f"request body is at least {size:,} bytes; the limit is {limit:,} "
                             f"(SAFETY_API__{setting})")


async def _reject(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    setup_tracing("safety-api", otlp_endpoint=settings.otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        temporal = await connect(settings)
        configure_audit_key(settings.audit_key_bytes())
        pool = await create_pool(settings.app_database_url, min_size=settings.database.pool_min,
                                 max_size=settings.database.pool_max)
        redis = aioredis.from_url(settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        model = None
        if settings.api.prescreen:
            from core.screening import ScreeningModel

            model = ScreeningModel.load(settings.screening_model_dir)
        app.state.services = Services(settings=settings, temporal=temporal, pool=pool, redis=redis,
                                      policy=settings.effective_policy(), model=model)
        try:
            yield
        finally:
            await pool.close()
            await redis.aclose()

    app = FastAPI(
        title="Safety System API",
        version="0.1.0",
        description="Ingest chat events for durable, AI-assisted harassment moderation, and follow each case. "
                    "Every route needs an `X-API-Key` header; each case is a Temporal workflow `event-<event_id>` "
                    "you can trace in the Temporal Web UI.",
        lifespan=lifespan,
    )
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(asyncpg.DataError, _data_error)
    for kind in _DATABASE_DOWN:
        app.add_exception_handler(kind, _database_down)
    app.include_router(health.router)
    app.include_router(events.router)
    app.include_router(reviews.router)
    app.include_router(appeals.router)
    app.include_router(cases.router)
    app.include_router(users.router)
    app.include_router(stats.router)
    app.include_router(audit.router)
    app.include_router(exports.router)
    app.include_router(codec.router)
    # The moderator console (static files first: the console's catch-all page answers unknown paths).
    app.mount("/console/static", StaticFiles(directory=console.STATIC_DIR), name="console-static")
    app.include_router(console.router)
    app.mount("/metrics", make_asgi_app())
    app.add_middleware(RequestGuard, limit=settings.api.max_body_bytes,
                       path_limits={BATCH_INGEST_PATH: settings.api.max_batch_body_bytes,
                                    **dict.fromkeys(codec.CODEC_PATHS, settings.api.max_batch_body_bytes)})
    instrument_fastapi(app)
    return app
