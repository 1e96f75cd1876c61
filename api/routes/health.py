"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.schemas import ReadyOut

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the process is up")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", response_model=ReadyOut, summary="Readiness: Temporal, PostgreSQL and Redis reachable",
            responses={503: {"model": ReadyOut}})
async def ready(services: ServicesDep) -> JSONResponse:
    async def temporal() -> None:
        await services.temporal.service_client.check_health(timeout=timedelta(seconds=2))

    async def postgres() -> None:
        await services.pool.fetchval("SELECT 1", timeout=2)

    async def redis() -> None:
        await services.redis.ping()

    checks: dict[str, str] = {}
    for name, probe in (("temporal", temporal), ("postgres", postgres), ("redis", redis)):
        try:
            await asyncio.wait_for(probe(), 3)
            checks[name] = "ok"
        except Exception as err:  # noqa: BLE001 - any failure means not ready; say which
            checks[name] = f"unreachable: {type(err).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(ReadyOut(ready=ok, checks=checks).model_dump(), status_code=200 if ok else 503)
