"""The human review queue: list pending cases, claim one exclusively, and deliver the decision to the
waiting case workflow (Temporal update ``submit_review`` on ``event-<case_id>``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import ServicesDep
from api.routes.cases import ERRORS, Cursor, Limit, Moderator, cursor_error
from api.schemas_reporting import ClaimPublic, ReviewDecisionIn, ReviewItem, ReviewsPage
from core.storage import cases, common, reviews
from domain.models import HarmCategory
from domain.reviews import ReviewDecision, ReviewOutcome
from workflows.contract import SUBMIT_REVIEW_UPDATE, event_workflow_id

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/reviews", tags=["reviews"])


@router.get("", response_model=ReviewsPage, responses=ERRORS, summary="Cases waiting for a moderator, oldest first")
async def list_reviews(
    services: ServicesDep, _key: Moderator,
    queue: Literal["standard", "senior"] | None = None,
    platform: Annotated[str | None, Query(max_length=32)] = None,
    category: HarmCategory | None = None,
    claimed: Annotated[bool | None, Query(description="true: only claimed; false: only unclaimed.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ReviewsPage:
    try:
        rows, nxt = await reviews.review_queue(services.pool, queue=queue, platform=platform,
                                                 category=category.value if category else None, claimed=claimed,
                                                 limit=limit, cursor=cursor)
    except common.CursorError as err:
        raise cursor_error(err) from err
    return ReviewsPage(items=[ReviewItem(**r, case_url=f"/v1/cases/{r['case_id']}") for r in rows], next_cursor=nxt)


@router.post("/{case_id}/claim", response_model=ClaimPublic, responses=ERRORS,
             summary="Claim a case exclusively for a while",
             description="409 while another moderator holds an unexpired claim. Claiming again extends your claim.")
async def claim(case_id: str, services: ServicesDep, key: Moderator,
                minutes: Annotated[int, Query(ge=1, le=240, description="Claim length.")] =
                reviews.DEFAULT_CLAIM_MINUTES) -> ClaimPublic:
    try:
        row = await reviews.claim_review(services.pool, case_id=case_id, moderator=key.name, minutes=minutes)
    except common.Conflict as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no case with id {case_id}")
    return ClaimPublic(**row)


@router.post("/{case_id}/decision", response_model=ReviewOutcome, responses=ERRORS,
             summary="Decide a case waiting for review",
             description="You must hold the claim, or the case must be unclaimed. The decision is delivered to the "
                         "case workflow, which executes the actions and records them; the answer is what it did.")
async def decide(case_id: str, body: ReviewDecisionIn, services: ServicesDep, key: Moderator) -> ReviewOutcome:
    try:
        found = await reviews.check_can_decide(services.pool, case_id=case_id, moderator=key.name)
    except common.Conflict as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no case with id {case_id}")
    decision = ReviewDecision(reviewer=key.name, decided_at=datetime.now(UTC), **body.model_dump())
    handle = services.temporal.get_workflow_handle(event_workflow_id(case_id))
    try:
        outcome = await handle.execute_update(SUBMIT_REVIEW_UPDATE, decision, result_type=ReviewOutcome)
    except WorkflowUpdateFailedError as err:
        cause = err.cause.message if err.cause is not None and hasattr(err.cause, "message") else str(err)
        raise HTTPException(status.HTTP_409_CONFLICT, f"case {case_id} refused the decision: {cause}") from err
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise HTTPException(status.HTTP_409_CONFLICT, f"case {case_id} has no running workflow waiting for a "
                                "review (it completed or expired); nothing was changed") from err
        log.error("review delivery failed", extra={"case_id": case_id, "error": str(err)})
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the workflow service is unreachable; the "
                            "decision was NOT delivered, retry", headers={"Retry-After": "2"}) from err
    await reviews.release_claim(services.pool, case_id=case_id)
    await cases.write_label(services.pool, case_id=case_id, harmful=outcome.decision == "action",
                                source="review", category=body.category.value if body.violation else "none")
    log.info("review delivered", extra={"case_id": case_id, "reviewer": key.name, "decision": outcome.decision})
    return outcome
