"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.schemas import ReadyOut
from core.readiness import model_check, queue_pollers

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the process is up")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", response_model=ReadyOut, responses={503: {"model": ReadyOut}},
            summary="Readiness: dependencies reachable, every task queue polled by a worker, model loaded",
            description="`scope=system` (default): ready only when Temporal, PostgreSQL and Redis answer, every "
                        "task queue has a polling worker and the screening model is loaded, so the next event is "
                        "handled at once. `scope=api`: this API process's own dependencies only (the load "
                        "balancer's probe: without workers, events still queue durably).")
async def ready(services: ServicesDep,
                scope: Annotated[Literal["system", "api"], Query(description="system or api")] = "system",
                ) -> JSONResponse:
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
    if scope == "system":
        if checks["temporal"] == "ok":
            try:
                queues = await queue_pollers(services.temporal)
            except Exception as err:  # noqa: BLE001 - not ready; say why
                queues = {"workers": f"cannot list task queue pollers: {type(err).__name__}"}
        else:
            queues = {"workers": "unknown: Temporal is unreachable"}
        checks.update({f"queue:{q}": v for q, v in queues.items()})
        checks["model"] = model_check(services.model is not None, queues)
    ok = all(v.startswith("ok") for v in checks.values())
    return JSONResponse(ReadyOut(ready=ok, checks=checks).model_dump(), status_code=200 if ok else 503)
