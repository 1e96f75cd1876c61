"""System of record in PostgreSQL: cases, platform actions and the hash-chained audit log.

Writes are idempotent, so a retried activity never records twice: a case is keyed by its id, an
action by its idempotency key (case id + action), and audit entries for a case are keyed by kind.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from domain.models import CaseRecord, Decision, UserHistory
from domain.reviews import ReviewEscalation, ReviewRecord

_AUDIT_LOCK = 7_240_002
GENESIS_HASH = "0" * 64


def _audit_hash(prev_hash: str, *, actor: str, kind: str, case_id: str | None, payload: dict[str, Any]) -> str:
    body = json.dumps({"actor": actor, "kind": kind, "case_id": case_id, "payload": payload},
                      sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


async def append_audit(
    conn: asyncpg.Connection, *, actor: str, kind: str, case_id: str | None, payload: dict[str, Any]
) -> str:
    """Append one entry to the audit chain. Must run inside a transaction (it takes a transaction lock)."""
    return await append_audit_many(conn, [(actor, kind, case_id, payload)])


AuditEntry = tuple[str, str, str | None, dict[str, Any]]  # actor, kind, case_id, payload


async def append_audit_many(conn: asyncpg.Connection, entries: list[AuditEntry]) -> str:
    """Append entries to the audit chain in order, under one lock; returns the last hash. Must run
    inside a transaction (the lock is held until it commits, so the chain never forks)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _AUDIT_LOCK)
    prev = await conn.fetchval("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1") or GENESIS_HASH
    rows = []
    for actor, kind, case_id, payload in entries:
        digest = _audit_hash(prev, actor=actor, kind=kind, case_id=case_id, payload=payload)
        rows.append((actor, kind, case_id, payload, prev, digest))
        prev = digest
    await conn.executemany(
        "INSERT INTO audit_log (actor, kind, case_id, payload, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6)",
        rows,
    )
    return prev


async def verify_audit(pool: asyncpg.Pool) -> tuple[bool, int, int | None]:
    """Walk the chain; returns (intact, entries checked, first broken seq or None)."""
    prev = GENESIS_HASH
    count = 0
    async with pool.acquire() as conn, conn.transaction():
        async for row in conn.cursor("SELECT * FROM audit_log ORDER BY seq"):
            count += 1
            expected = _audit_hash(prev, actor=row["actor"], kind=row["kind"], case_id=row["case_id"],
                                   payload=row["payload"])
            if row["prev_hash"] != prev or row["hash"] != expected:
                return False, count, row["seq"]
            prev = row["hash"]
    return True, count, None


_INSERT_CASE = """
    INSERT INTO cases (case_id, platform, channel_id, author_id, target_id, message_id, event_type, content,
        path, risk_score, category, category_scores, decision, needs_review, reasons, actions, context,
        reasoning, stage_ms, model_version, policy_version, workflow_id, run_id, event_at, received_at,
        completed_at, review_status, review_queue)
    VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,
            $27,$28)
    ON CONFLICT (case_id) DO NOTHING
    RETURNING true
"""


def _case_row(rec: CaseRecord) -> tuple[Any, ...]:
    ev = rec.event
    return (
        rec.case_id, ev.platform, ev.channel_id, ev.author_id, ev.target_id, ev.message_id, ev.event_type,
        ev.content, rec.path, rec.screen.risk_score, rec.decision.category.value, rec.screen.category_scores,
        rec.decision.decision.value, rec.decision.needs_review, rec.decision.reasons,
        [a.model_dump(mode="json") for a in rec.actions],
        rec.context.model_dump(mode="json") if rec.context else None,
        rec.reason.model_dump(mode="json") if rec.reason else None,
        rec.stage_ms, rec.screen.model_version, rec.policy_version, rec.workflow_id, rec.run_id,
        ev.timestamp, ev.received_at, rec.completed_at or datetime.now(UTC),
        *(("pending", "standard") if rec.decision.decision == Decision.REVIEW else (None, None)),
    )


def _decision_audit(rec: CaseRecord) -> dict[str, Any]:
    return {
        "decision": rec.decision.decision.value, "category": rec.decision.category.value,
        "risk_score": round(rec.screen.risk_score, 6), "needs_review": rec.decision.needs_review,
        "actions": [f"{a.action.value}:{a.status}" for a in rec.actions],
        "policy_version": rec.policy_version, "model_version": rec.screen.model_version,
    }


async def record_case(pool: asyncpg.Pool, rec: CaseRecord) -> bool:
    """Insert the case and its audit entry once. Returns False when the case was already recorded."""
    return (await record_cases(pool, [rec]))[0]


async def record_cases(pool: asyncpg.Pool, recs: list[CaseRecord]) -> list[bool]:
    """Insert cases and their audit entries in one transaction, each once. Returns per record whether it
    was new (False: already recorded). The audit chain lock is taken once for the whole batch."""
    fresh: list[bool] = []
    async with pool.acquire() as conn, conn.transaction():
        for rec in recs:  # fetchval uses the connection's statement cache: one prepare per connection
            fresh.append(bool(await conn.fetchval(_INSERT_CASE, *_case_row(rec))))
        entries = [("system", "decision", rec.case_id, _decision_audit(rec))
                   for rec, new in zip(recs, fresh, strict=True) if new]
        if entries:
            await append_audit_many(conn, entries)
    return fresh


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


async def get_case(pool: asyncpg.Pool, case_id: str) -> dict[str, Any] | None:
    row = await pool.fetchrow("SELECT * FROM cases WHERE case_id = $1", case_id)
    return dict(row) if row else None


async def _history(pool: asyncpg.Pool, column: str, platform: str, user_id: str | None, days: int) -> UserHistory:
    if not user_id:
        return UserHistory()
    since = datetime.now(UTC) - timedelta(days=days)
    row = await pool.fetchrow(
        f"""
        SELECT count(*) AS cases,
               count(*) FILTER (WHERE decision = 'action') AS actions,
               count(*) FILTER (WHERE needs_review) AS reviews,
               (array_agg(category ORDER BY received_at DESC) FILTER (WHERE decision <> 'allow'))[1] AS last_category
        FROM cases WHERE platform = $1 AND {column} = $2 AND received_at >= $3 AND decision <> 'allow'
        """,
        platform, user_id, since,
    )
    return UserHistory(recent_cases=row["cases"], recent_actions=row["actions"], recent_reviews=row["reviews"],
                       last_category=row["last_category"])


async def author_history(pool: asyncpg.Pool, platform: str, author_id: str, days: int = 30) -> UserHistory:
    """The author's recent non-clean cases (flagged, reviewed or actioned)."""
    return await _history(pool, "author_id", platform, author_id, days)


async def target_history(pool: asyncpg.Pool, platform: str, target_id: str | None, days: int = 7) -> UserHistory:
    """Harmful incidents recently aimed at the target."""
    return await _history(pool, "target_id", platform, target_id, days)


async def channel_cases_24h(pool: asyncpg.Pool, platform: str, channel_id: str) -> int:
    since = datetime.now(UTC) - timedelta(hours=24)
    return int(await pool.fetchval(
        "SELECT count(*) FROM cases WHERE platform=$1 AND channel_id=$2 AND received_at>=$3 AND decision<>'allow'",
        platform, channel_id, since,
    ))
