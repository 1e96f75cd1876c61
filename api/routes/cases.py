"""Cases for moderators: a filtered, paginated list and the full timeline of one case."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.exceptions import RequestValidationError

from api.deps import ServicesDep, require
from api.schemas import ErrorOut
from api.schemas_reporting import (
    ActionLedgerEntry,
    AppealPublic,
    AuditEntryPublic,
    CasePublic,
    CasesPage,
    CaseSummary,
    ReviewPublic,
)
from core.settings import Settings
from core.storage import cases, common
from core.storage.keys import KeyInfo, Role
from domain.models import Decision, HarmCategory
from workflows.contract import event_workflow_id

router = APIRouter(prefix="/v1/cases", tags=["cases"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut},
    422: {"model": ErrorOut}, 429: {"model": ErrorOut}, 503: {"model": ErrorOut},
}
Moderator = Annotated[KeyInfo, Depends(require(Role.MODERATOR))]
Limit = Annotated[int, Query(ge=1, le=200, description="Page size, 1..200.")]
Cursor = Annotated[str | None, Query(max_length=512, description="The next_cursor of the previous page.")]


def invalid(field: str, message: str) -> RequestValidationError:
    """A 422 in the same shape as FastAPI's own query validation errors, naming the field."""
    return RequestValidationError([{"loc": ("query", field), "msg": message, "type": "value_error"}])


def cursor_error(err: common.CursorError) -> RequestValidationError:
    return invalid("cursor", str(err))


def temporal_ui_url(settings: Settings, wid: str) -> str:
    return f"{settings.temporal.ui_public_url}/namespaces/{settings.temporal.namespace}/workflows/{wid}"


def appeal_public(row: dict[str, Any]) -> AppealPublic:
    return AppealPublic.model_validate({**{k: row.get(k) for k in AppealPublic.model_fields if k != "status_url"},
                                        "status_url": f"/v1/appeals/{row['id']}"})


@router.get("", response_model=CasesPage, responses=ERRORS, summary="List cases, newest first",
            description="Filter by platform, channel, author, target, decision, category, time range "
                        "(`from` inclusive, `to` exclusive, on received time) and needs_review. Page with "
                        "`cursor` = the previous page's next_cursor.")
async def list_cases(
    services: ServicesDep, _key: Moderator,
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
    if from_ and to and from_ >= to:
        raise invalid("to", "must be after 'from'")
    filters = cases.CaseFilters(platform=platform, channel=channel, author=author, target=target,
                                    decision=decision.value if decision else None,
                                    category=category.value if category else None, since=from_, until=to,
                                    needs_review=needs_review)
    try:
        rows, nxt = await cases.list_cases(services.pool, filters=filters, limit=limit, cursor=cursor)
    except common.CursorError as err:
        raise cursor_error(err) from err
    return CasesPage(items=[CaseSummary(**r) for r in rows], next_cursor=nxt)


@router.get("/{case_id}", response_model=CasePublic, responses=ERRORS,
            summary="One case's full timeline",
            description="Scores, the context the LLM saw, its verdict and rationale, the policy version, "
                        "actions as recorded and as the platform answered (ledger), the review, appeals, "
                        "the audit entries and a link to the workflow in the Temporal Web UI.")
async def get_case(case_id: str, services: ServicesDep, _key: Moderator) -> CasePublic:
    case = await cases.case_timeline(services.pool, case_id=case_id)
    if case is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no case with id {case_id}: it was not recorded (yet); "
                            f"see /v1/events/{case_id}/status")
    wid = case.get("workflow_id") or event_workflow_id(case_id)
    claim = case["claim"] or {}
    review = ReviewPublic(status=case.get("review_status"), queue=case.get("review_queue"),
                          reviewer=case.get("reviewer"), reviewed_at=case.get("reviewed_at"),
                          decision=case.get("review"), claimed_by=claim.get("moderator"),
                          claim_expires_at=claim.get("expires_at"))
    fields = {k: case.get(k) for k in CasePublic.model_fields
              if k in case and k not in ("review", "appeals", "audit", "action_ledger", "workflow_id")}
    return CasePublic.model_validate({
        **fields, "review": review,
        "action_ledger": [ActionLedgerEntry(**a) for a in case["action_ledger"]],
        "appeals": [appeal_public(a) for a in case["appeals"]],
        "audit": [AuditEntryPublic(**a) for a in case["audit"]],
        "workflow_id": wid, "temporal_ui_url": temporal_ui_url(services.settings, wid),
    })
