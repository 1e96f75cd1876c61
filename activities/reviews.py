"""Activities of human review, on the context worker: record a moderator's decision on the case row
(once, with its audit entry) and move an unreviewed case to the senior queue when its SLA passes.
Both are idempotent, so Temporal may retry them freely."""

from __future__ import annotations

import asyncpg
from temporalio import activity

from core.storage import reviews
from domain.reviews import ReviewEscalation, ReviewRecord
from workflows import contract


class ReviewActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @activity.defn(name=contract.RECORD_REVIEW)
    async def record_review(self, rec: ReviewRecord) -> bool:
        return await reviews.record_review(self.pool, rec)

    @activity.defn(name=contract.ESCALATE_REVIEW)
    async def escalate_review(self, esc: ReviewEscalation) -> None:
        await reviews.escalate_review(self.pool, esc)


__all__ = ["ReviewActivities"]
