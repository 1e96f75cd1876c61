"""Cases for moderators: the filtered list and one case's full timeline, as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from api.errors import cursor_error, invalid, not_found
from api.schemas_reporting import (
    ActionLedgerEntry,
    AuditEntryPublic,
    CasePublic,
    CasesPage,
    CaseSummary,
    ReviewPublic,
)
from api.services.tenancy import may_see_case, platform_filter
from core.settings import Settings
from core.storage import cases
from core.storage.common import CursorError
from core.storage.keys import KeyInfo
from workflows.contract import event_workflow_id


def temporal_ui_url(settings: Settings, wid: str) -> str:
    """The workflow's page in the Temporal Web UI."""
    return f"{settings.temporal.ui_public_url}/namespaces/{settings.temporal.namespace}/workflows/{wid}"


async def list_cases(*, pool: asyncpg.Pool, filters: cases.CaseFilters, limit: int, cursor: str | None) -> CasesPage:
    if filters.since and filters.until and filters.since >= filters.until:
        raise invalid("to", "must be after 'from'")
    try:
        rows, nxt = await cases.list_cases(pool, filters=filters, limit=limit, cursor=cursor)
    except CursorError as err:
        raise cursor_error(err) from err
    return CasesPage(items=[CaseSummary(**r) for r in rows], next_cursor=nxt)


async def case_public(*, pool: asyncpg.Pool, settings: Settings, case_id: str, key: KeyInfo) -> CasePublic:
    """The case with its ledger, review, appeals, audit entries and workflow link; 404 when not recorded,
    or when it belongs to a platform outside the key's scope (the same answer)."""
    from api.services.appeals import appeal_public  # appeals build on cases, not the other way round

    case = await cases.case_timeline(pool, case_id=case_id)
    if case is None or not may_see_case(key, integration=case.get("integration"), platform=case["platform"]):
        raise not_found(f"no case with id {case_id}: it was not recorded (yet); see /v1/events/{case_id}/status")
    context = case.get("context")
    if key.platforms is not None and context and context.get("similar_cases"):
        # The similar cases come from every platform's index: a scoped key sees only its platforms' (those
        # whose case row is gone have no known platform and are left out too).
        similar = context["similar_cases"]
        owners = await cases.case_tenancy(pool, sorted({str(s.get("case_id")) for s in similar}))
        case["context"] = {**context, "similar_cases": [
            s for s in similar if (o := owners.get(str(s.get("case_id")))) is not None
            and may_see_case(key, integration=o.integration, platform=o.platform)]}
    wid = case.get("workflow_id") or event_workflow_id(case_id)
    claim = case["claim"] or {}
    review = ReviewPublic(status=case.get("review_status"), queue=case.get("review_queue"),
                          reviewer=case.get("reviewer"), reviewed_at=case.get("reviewed_at"),
                          decision=case.get("review"), claimed_by=claim.get("moderator"),
                          claim_expires_at=claim.get("expires_at"))
    fields: dict[str, Any] = {k: case.get(k) for k in CasePublic.model_fields
                              if k in case and k not in ("review", "appeals", "audit", "action_ledger", "workflow_id")}
    return CasePublic.model_validate({
        **fields, "review": review,
        "action_ledger": [ActionLedgerEntry(**a) for a in case["action_ledger"]],
        "appeals": [appeal_public(a) for a in case["appeals"]],
        "audit": [AuditEntryPublic(**a) for a in case["audit"]],
        "workflow_id": wid, "temporal_ui_url": temporal_ui_url(settings, wid),
    })


def case_filters(*, key: KeyInfo, platform: str | None, channel: str | None, author: str | None,
                 target: str | None, decision: str | None, category: str | None, since: datetime | None,
                 until: datetime | None, needs_review: bool | None) -> cases.CaseFilters:
    """The list filters, limited to the key's platforms when it is scoped."""
    platform, platforms = platform_filter(key, platform)
    return cases.CaseFilters(platform=platform, channel=channel, author=author, target=target, decision=decision,
                             category=category, since=since, until=until, needs_review=needs_review,
                             platforms=platforms)
