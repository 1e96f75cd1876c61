"""Human review in PostgreSQL: the queue of pending cases, exclusive claims, and recording a moderator's
decision or an SLA escalation (each once, with its audit entry)."""

from __future__ import annotations

from typing import Any

import asyncpg

from core.storage.audit import append_audit
from core.storage.common import Conflict, Where, cursor_time, decode_cursor, encode_cursor
from domain.reviews import ReviewEscalation, ReviewRecord

DEFAULT_CLAIM_MINUTES = 15


async def review_queue(pool: asyncpg.Pool, *, queue: str | None, platform: str | None, category: str | None,
                       claimed: bool | None, limit: int, cursor: str | None = None,
                       platforms: list[str] | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Pending reviews, oldest first (the order they should be worked); ``platforms`` limits them to a
    scoped key's platforms (None: every platform)."""
    w = Where()
    w.clauses.append("c.review_status = 'pending'")
    if queue is not None:
        w.add("c.review_queue = {}", queue)
    if platform is not None:
        w.add("c.platform = {}", platform)
    if category is not None:
        w.add("c.category = {}", category)
    if platforms is not None:
        w.add("c.platform = ANY({}::text[])", platforms)
    if claimed is True:
        w.clauses.append("rc.case_id IS NOT NULL")
    elif claimed is False:
        w.clauses.append("rc.case_id IS NULL")
    if cursor:
        at, case_id = decode_cursor("reviews", cursor)
        w.add("(c.received_at, c.case_id) > ({}, {})", cursor_time(at), str(case_id))
    rows = await pool.fetch(
        f"""
        SELECT c.case_id, c.platform, c.channel_id, c.author_id, c.target_id, c.content, c.risk_score, c.category,
               c.category_scores, c.reasons, coalesce(c.review_queue, 'standard') AS queue, c.received_at,
               c.completed_at AS waiting_since, rc.moderator AS claimed_by, rc.expires_at AS claim_expires_at
        FROM cases c
        LEFT JOIN review_claims rc ON rc.case_id = c.case_id AND rc.expires_at > now()
        {w.sql()}
        ORDER BY c.received_at, c.case_id
        LIMIT {w.param(limit + 1)}
        """, *w.args)
    items = [dict(r) for r in rows[:limit]]
    nxt = encode_cursor("reviews", items[-1]["received_at"], items[-1]["case_id"]) if len(rows) > limit else None
    return items, nxt


async def claim_review(pool: asyncpg.Pool, *, case_id: str, moderator: str, minutes: int) -> dict[str, Any] | None:
    """Take (or extend) the exclusive claim. None: unknown case. Raises Conflict when the case is not
    pending review or another moderator holds an unexpired claim."""
    async with pool.acquire() as conn, conn.transaction():
        status = await conn.fetchrow("SELECT review_status FROM cases WHERE case_id = $1 FOR UPDATE", case_id)
        if status is None:
            return None
        if status["review_status"] != "pending":
            raise Conflict(f"case {case_id} is not waiting for review (review status: "
                           f"{status['review_status'] or 'none'}); nothing to claim")
        row = await conn.fetchrow(
            """
            INSERT INTO review_claims (case_id, moderator, claimed_at, expires_at)
            VALUES ($1, $2, now(), now() + make_interval(mins => $3))
            ON CONFLICT (case_id) DO UPDATE SET moderator = EXCLUDED.moderator, expires_at = EXCLUDED.expires_at,
                claimed_at = CASE WHEN review_claims.moderator = EXCLUDED.moderator
                                  AND review_claims.expires_at > now()
                                  THEN review_claims.claimed_at ELSE EXCLUDED.claimed_at END
            WHERE review_claims.moderator = EXCLUDED.moderator OR review_claims.expires_at <= now()
            RETURNING case_id, moderator, claimed_at, expires_at
            """, case_id, moderator, minutes)
        if row is None:
            holder = await conn.fetchrow("SELECT moderator, expires_at FROM review_claims WHERE case_id = $1",
                                         case_id)
            raise Conflict(f"case {case_id} is claimed by {holder['moderator']} until "
                           f"{holder['expires_at'].isoformat()}; pick another case or wait for the claim to expire")
    return dict(row)


async def check_can_decide(pool: asyncpg.Pool, *, case_id: str, moderator: str) -> dict[str, Any] | None:
    """None: unknown case. Raises Conflict when it is not pending or someone else holds the claim."""
    row = await pool.fetchrow(
        """
        SELECT c.review_status, c.reviewer, rc.moderator AS holder, rc.expires_at
        FROM cases c LEFT JOIN review_claims rc ON rc.case_id = c.case_id AND rc.expires_at > now()
        WHERE c.case_id = $1
        """, case_id)
    if row is None:
        return None
    if row["review_status"] == "decided":
        raise Conflict(f"case {case_id} was already decided by {row['reviewer']}")
    if row["review_status"] != "pending":
        raise Conflict(f"case {case_id} is not waiting for review (review status: {row['review_status'] or 'none'})")
    if row["holder"] is not None and row["holder"] != moderator:
        raise Conflict(f"case {case_id} is claimed by {row['holder']} until {row['expires_at'].isoformat()}; "
                       "only the claim holder may decide it")
    return dict(row)


async def release_claim(pool: asyncpg.Pool, *, case_id: str) -> None:
    await pool.execute("DELETE FROM review_claims WHERE case_id = $1", case_id)


async def record_review(pool: asyncpg.Pool, rec: ReviewRecord) -> bool:
    """Apply a moderator's decision to the case once (a retry finds it decided and changes nothing)."""
    d = rec.decision
    async with pool.acquire() as conn, conn.transaction():
        updated = await conn.fetchval(
            """
            UPDATE cases SET decision = $2, category = $3, needs_review = false, review_status = 'decided',
                   reviewer = $4, reviewed_at = now(), review = $5, actions = actions || $6::jsonb
            WHERE case_id = $1 AND review_status IS DISTINCT FROM 'decided' RETURNING true
            """,
            rec.case_id, rec.final_decision, rec.category.value, d.reviewer, d.model_dump(mode="json"),
            [a.model_dump(mode="json") for a in rec.actions],
        )
        if not updated:
            return False
        await append_audit(conn, actor=f"moderator:{d.reviewer}", kind="review", case_id=rec.case_id,
                           payload={"decision": rec.final_decision, "category": rec.category.value,
                                    "actions": [f"{a.action.value}:{a.status}" for a in rec.actions],
                                    "note": d.note[:500]})
    return True


async def escalate_review(pool: asyncpg.Pool, esc: ReviewEscalation) -> None:
    async with pool.acquire() as conn, conn.transaction():
        updated = await conn.fetchval(
            "UPDATE cases SET review_queue = $2 WHERE case_id = $1 AND review_status = 'pending' "
            "AND review_queue IS DISTINCT FROM $2 RETURNING true", esc.case_id, esc.queue)
        if updated:
            await append_audit(conn, actor="system", kind="review_escalated", case_id=esc.case_id,
                               payload={"queue": esc.queue, "sla_minutes": esc.sla_minutes})
