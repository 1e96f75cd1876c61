"""The human review queue: pending cases, exclusive claims, and delivering a moderator's decision to the
waiting case workflow (Temporal update ``submit_review`` on ``event-<case_id>``), which executes the
actions and records them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import asyncpg
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import conflict, cursor_error, not_found, unavailable
from api.schemas_reporting import ClaimPublic, ReviewDecisionIn, ReviewItem, ReviewsPage
from api.services.tenancy import platform_filter, visible_case
from core.storage import cases, reviews
from core.storage.common import Conflict, CursorError
from core.storage.keys import KeyInfo
from domain.reviews import ReviewDecision, ReviewOutcome
from workflows.contract import SUBMIT_REVIEW_UPDATE, event_workflow_id

log = logging.getLogger(__name__)


async def list_reviews(*, pool: asyncpg.Pool, key: KeyInfo, queue: str | None, platform: str | None,
                       category: str | None, claimed: bool | None, limit: int, cursor: str | None) -> ReviewsPage:
    platform, platforms = platform_filter(key, platform)
    try:
        rows, nxt = await reviews.review_queue(pool, queue=queue, platform=platform, category=category,
                                               claimed=claimed, limit=limit, cursor=cursor, platforms=platforms)
    except CursorError as err:
        raise cursor_error(err) from err
    return ReviewsPage(items=[ReviewItem(**r, case_url=f"/v1/cases/{r['case_id']}") for r in rows], next_cursor=nxt)


async def claim(*, pool: asyncpg.Pool, case_id: str, key: KeyInfo, minutes: int) -> ClaimPublic:
    await visible_case(pool, key, case_id, missing=f"no case with id {case_id}")
    try:
        row = await reviews.claim_review(pool, case_id=case_id, moderator=key.name, minutes=minutes)
    except Conflict as err:
        raise conflict(str(err)) from err
    if row is None:
        raise not_found(f"no case with id {case_id}")
    return ClaimPublic(**row)


async def decide(*, pool: asyncpg.Pool, temporal: Client, case_id: str, body: ReviewDecisionIn,
                 key: KeyInfo) -> ReviewOutcome:
    """Deliver the decision (the claim holder's, or anyone's on an unclaimed case); the answer is what the
    case workflow did. 409 when the case refused it or no workflow waits; 503 when it was not delivered."""
    await visible_case(pool, key, case_id, missing=f"no case with id {case_id}")
    try:
        found = await reviews.check_can_decide(pool, case_id=case_id, moderator=key.name)
    except Conflict as err:
        raise conflict(str(err)) from err
    if found is None:
        raise not_found(f"no case with id {case_id}")
    decision = ReviewDecision(reviewer=key.name, decided_at=datetime.now(UTC), **body.model_dump())
    handle = temporal.get_workflow_handle(event_workflow_id(case_id))
    try:
        outcome = await handle.execute_update(SUBMIT_REVIEW_UPDATE, decision, result_type=ReviewOutcome)
    except WorkflowUpdateFailedError as err:
        cause = err.cause.message if err.cause is not None and hasattr(err.cause, "message") else str(err)
        raise conflict(f"case {case_id} refused the decision: {cause}") from err
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise conflict(f"case {case_id} has no running workflow waiting for a review (it completed or "
                           "expired); nothing was changed") from err
        log.error("review delivery failed", extra={"case_id": case_id, "error": str(err)})
        raise unavailable("the workflow service is unreachable; the decision was NOT delivered, retry") from err
    await reviews.release_claim(pool, case_id=case_id)
    await cases.write_label(pool, case_id=case_id, harmful=outcome.decision == "action", source="review",
                            category=body.category.value if body.violation else "none")
    log.info("review delivered", extra={"case_id": case_id, "reviewer": key.name, "decision": outcome.decision})
    return outcome
