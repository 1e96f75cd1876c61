"""Cases for moderators: a filtered, paginated list and the full timeline of one case."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import Cursor, Limit, Moderator, PoolDep, SettingsDep
from api.errors import ERRORS
from api.schemas_reporting import CasePublic, CasesPage
from api.services import cases
from domain.models import Decision, HarmCategory

router = APIRouter(prefix="/v1/cases", tags=["cases"])


@router.get("", response_model=CasesPage, responses=ERRORS, summary="List cases, newest first",
            description="Filter by platform, channel, author, target, decision, category, time range "
                        "(`from` inclusive, `to` exclusive, on received time) and needs_review. Page with "
                        "`cursor` = the previous page's next_cursor.")
async def list_cases(
    pool: PoolDep, key: Moderator,
    platform: Annotated[str | None, Query(max_length=32)] = None,
    channel: Annotated[str | None, Query(max_length=128)] = None,
    author: Annotated[str | None, Query(max_length=128)] = None,
    target: Annotated[str | None, Query(max_length=128)] = None,
    decision: Decision | None = None,
    category: HarmCategory | None = None,
    from_: Annotated[datetime | None, Query(alias="from", description="ISO 8601, inclusive.")] = None,
    to: Annotated[datetime | None, Query(description="ISO 8601, exclusive.")] = None,
    needs_review: bool | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CasesPage:
    filters = cases.case_filters(key=key, platform=platform, channel=channel, author=author, target=target,
                                 decision=decision.value if decision else None,
                                 category=category.value if category else None, since=from_, until=to,
                                 needs_review=needs_review)
    return await cases.list_cases(pool=pool, filters=filters, limit=limit, cursor=cursor)


@router.get("/{case_id}", response_model=CasePublic, responses=ERRORS,
            summary="One case's full timeline",
            description="Scores, the context the LLM saw, its verdict and rationale, the policy version, "
                        "actions as recorded and as the platform answered (ledger), the review, appeals, "
                        "the audit entries and a link to the workflow in the Temporal Web UI.")
async def get_case(case_id: Annotated[str, Path(max_length=128)], pool: PoolDep, settings: SettingsDep,
                   key: Moderator) -> CasePublic:
    return await cases.case_public(pool=pool, settings=settings, case_id=case_id, key=key)
