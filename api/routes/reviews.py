"""The human review queue: list pending cases, claim one exclusively, and deliver the decision to the
waiting case workflow (Temporal update ``submit_review`` on ``event-<case_id>``). The work is in
``api/services/reviews.py``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from api.deps import Cursor, Limit, Moderator, PoolDep, TemporalDep
from api.errors import ERRORS
from api.schemas_reporting import ClaimPublic, ReviewDecisionIn, ReviewsPage
from api.services import reviews
from core.storage.reviews import DEFAULT_CLAIM_MINUTES
from domain.models import HarmCategory
from domain.reviews import ReviewOutcome

router = APIRouter(prefix="/v1/reviews", tags=["reviews"])


@router.get("", response_model=ReviewsPage, responses=ERRORS, summary="Cases waiting for a moderator, oldest first")
async def list_reviews(
    pool: PoolDep, key: Moderator,
    queue: Literal["standard", "senior"] | None = None,
    platform: Annotated[str | None, Query(max_length=32)] = None,
    category: HarmCategory | None = None,
    claimed: Annotated[bool | None, Query(description="true: only claimed; false: only unclaimed.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ReviewsPage:
    return await reviews.list_reviews(pool=pool, key=key, queue=queue, platform=platform,
                                      category=category.value if category else None, claimed=claimed, limit=limit,
                                      cursor=cursor)


@router.post("/{case_id}/claim", response_model=ClaimPublic, responses=ERRORS,
             summary="Claim a case exclusively for a while",
             description="409 while another moderator holds an unexpired claim. Claiming again extends your claim.")
async def claim(case_id: Annotated[str, Path(max_length=128)], pool: PoolDep, key: Moderator,
                minutes: Annotated[int, Query(ge=1, le=240, description="Claim length.")] =
                DEFAULT_CLAIM_MINUTES) -> ClaimPublic:
    return await reviews.claim(pool=pool, case_id=case_id, key=key, minutes=minutes)


@router.post("/{case_id}/decision", response_model=ReviewOutcome, responses=ERRORS,
             summary="Decide a case waiting for review",
             description="You must hold the claim, or the case must be unclaimed. The decision is delivered to the "
                         "case workflow, which executes the actions and records them; the answer is what it did.")
async def decide(case_id: Annotated[str, Path(max_length=128)], body: ReviewDecisionIn, pool: PoolDep,
                 temporal: TemporalDep, key: Moderator) -> ReviewOutcome:
    return await reviews.decide(pool=pool, temporal=temporal, case_id=case_id, body=body, key=key)
