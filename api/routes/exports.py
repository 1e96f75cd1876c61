"""Transparency exports: EU DSA Article 17 statements of reasons, one per actioned case."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from api.deps import Admin, PoolDep
from api.errors import ERRORS, invalid
from core.storage import exports

router = APIRouter(prefix="/v1/exports", tags=["exports"])


@router.get("/statements-of-reasons", responses={**ERRORS, 200: {"content": {"application/x-ndjson": {}},
                                                                  "description": "One statement per line."}},
            response_class=StreamingResponse,
            summary="DSA statements of reasons as JSON lines",
            description="One statement per case with an applied platform action decided in [`from`, `to`). Field "
                        "names follow the DSA Transparency Database API (decision_visibility, decision_account, "
                        "decision_ground, incompatible_content_ground, category, automated_detection, "
                        "automated_decision, application_date, ...), plus `redress` (how to appeal).")
async def statements_of_reasons(
    pool: PoolDep, key: Admin,
    from_: Annotated[datetime, Query(alias="from", description="ISO 8601, inclusive.")],
    to: Annotated[datetime, Query(description="ISO 8601, exclusive.")],
) -> StreamingResponse:
    if from_.tzinfo is None or to.tzinfo is None:
        raise invalid("from" if from_.tzinfo is None else "to", "give a time zone (e.g. 2026-11-01T00:00:00Z)")
    for name, value in (("from", from_), ("to", to)):
        try:
            in_range = 1970 <= value.astimezone(UTC).year <= 9999
        except OverflowError:
            in_range = False
        if not in_range:
            raise invalid(name, "must be between 1970 and 9999 (UTC)")
    if from_ >= to:
        raise invalid("to", "must be after 'from'")

    async def lines() -> AsyncIterator[bytes]:
        async for case in exports.actioned_cases(pool, since=from_, until=to):
            if not key.sees_platform(case["platform"]):
                continue  # a platform-scoped admin key exports only its platforms' statements
            yield (json.dumps(exports.statement_of_reasons(case), ensure_ascii=False) + "\n").encode()

    name = f"statements-of-reasons_{from_:%Y%m%dT%H%M%S}_{to:%Y%m%dT%H%M%S}.jsonl"
    return StreamingResponse(lines(), media_type="application/x-ndjson",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})
