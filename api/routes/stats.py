"""Operational statistics over a time window, for dashboards and reports."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import Moderator, ServicesDep
from api.errors import ERRORS
from api.schemas_reporting import StatsPublic
from core.storage.stats import compute_stats

router = APIRouter(prefix="/v1/stats", tags=["stats"])


@router.get("", response_model=StatsPublic, responses=ERRORS, summary="Volume, decisions, latency, backlog, "
            "false-positive rate and LLM error rates",
            description="Over cases received in the window. The review backlog is current (not windowed); an SLA "
                        "breach is a pending review older than the policy's review SLA, or one already moved to the "
                        "senior queue. False-positive rate = cases overturned on appeal / cases actioned. A "
                        "platform-scoped key sees its platforms' cases only.")
async def stats(services: ServicesDep, key: Moderator,
                window: Annotated[Literal["1h", "24h", "7d", "30d"], Query(description="1h, 24h, 7d or 30d.")] = "24h"
                ) -> StatsPublic:
    sla = int(getattr(services.policy, "review_sla_minutes", 60))
    return StatsPublic(**await compute_stats(services.pool, window=window, sla_minutes=sla,
                                             platforms=key.platform_list))
