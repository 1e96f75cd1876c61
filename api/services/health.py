"""Readiness: which of the system's parts answer, and whether every task queue is served.

``scope="api"``: this API process's own dependencies (Temporal, PostgreSQL, Redis), the load balancer's
probe: without workers, events still queue durably. ``scope="system"`` adds one check per task queue of
``workflows/contract.py`` (a worker polls it: ``core/readiness.py``) and the screening model, so a 200
means the next event is handled at once.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Literal

from api.deps import Services
from api.schemas import ReadyOut
from core.readiness import model_check, queue_pollers

ReadyScope = Literal["system", "api"]


async def _dependencies(services: Services) -> dict[str, str]:
    async def temporal() -> None:
        await services.temporal.service_client.check_health(timeout=timedelta(seconds=2))

    async def postgres() -> None:
        await services.pool.fetchval("SELECT 1", timeout=2)  # the readiness ping (architecture rule 3)

    async def redis() -> None:
        await services.redis.ping()

    checks: dict[str, str] = {}
    for name, probe in (("temporal", temporal), ("postgres", postgres), ("redis", redis)):
        try:
            await asyncio.wait_for(probe(), 3)
            checks[name] = "ok"
        except Exception as err:  # noqa: BLE001 - any failure means not ready; say which
            checks[name] = f"unreachable: {type(err).__name__}"
    return checks


async def readiness(services: Services, *, scope: ReadyScope) -> ReadyOut:
    """Every check by name; ``ready`` only when each one starts with ``ok``."""
    checks = await _dependencies(services)
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
    return ReadyOut(ready=all(v.startswith("ok") for v in checks.values()), checks=checks)
