"""The FastAPI application: ingest, status, health and metrics (OpenAPI docs on /docs)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import make_asgi_app
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import Services
from api.routes import appeals, audit, cases, events, exports, health, reviews, stats, users
from core.db import create_pool
from core.settings import Settings, get_settings
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


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


class BodySizeLimit:
    """Refuse bodies over the limit with 413 before they are read into memory (declared or streamed)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(send, int(declared))
            return
        seen = 0

        async def limited() -> dict[str, object]:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge(seen)
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge as err:
            await self._reject(send, err.size)

    async def _reject(self, send: Send, size: int) -> None:
        body = (f'{{"detail":"request body is at least {size:,} bytes; the limit is {self.limit:,} '
                f'(SAFETY_API__MAX_BODY_BYTES)"}}').encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    setup_tracing("safety-api", otlp_endpoint=settings.otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        temporal = await connect(settings)
        pool = await create_pool(settings.database_url, min_size=settings.database.pool_min,
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
    app.include_router(health.router)
    app.include_router(events.router)
    app.include_router(reviews.router)
    app.include_router(appeals.router)
    app.include_router(cases.router)
    app.include_router(users.router)
    app.include_router(stats.router)
    app.include_router(audit.router)
    app.include_router(exports.router)
    app.mount("/metrics", make_asgi_app())
    app.add_middleware(BodySizeLimit, limit=settings.api.max_body_bytes)
    instrument_fastapi(app)
    return app
