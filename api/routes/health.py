"""Liveness and readiness (the checks themselves: ``api/services/health.py``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.schemas import ReadyOut
from api.services import health as svc

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
                scope: Annotated[svc.ReadyScope, Query(description="system or api")] = "system") -> JSONResponse:
    out = await svc.readiness(services, scope=scope)
    return JSONResponse(out.model_dump(), status_code=200 if out.ready else 503)
