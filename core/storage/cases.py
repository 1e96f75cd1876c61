"""Cases in PostgreSQL: record them (idempotently, with their audit entry), read one, list them, and the
per-user and per-channel history that context retrieval and the users API read.

Writes are idempotent, so a retried activity never records twice: a case is keyed by its id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from core.storage.audit import append_audit_many
from core.storage.common import Where, cursor_time, decode_cursor, encode_cursor
from domain.models import CaseRecord, Decision, UserHistory

_INSERT_CASE = """
    INSERT INTO cases (case_id, platform, channel_id, author_id, target_id, message_id, event_type, content,
        path, risk_score, category, category_scores, decision, needs_review, reasons, actions, context,
        reasoning, stage_ms, model_version, policy_version, workflow_id, run_id, event_at, received_at,
        completed_at, review_status, review_queue, integration, edit_of, revision)
    VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,
            $27,$28,$29,$30,$31)
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
        ev.integration or None, ev.edit_of, ev.revision,
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


async def get_case(pool: asyncpg.Pool, case_id: str) -> dict[str, Any] | None:
    row = await pool.fetchrow("SELECT * FROM cases WHERE case_id = $1", case_id)
    return dict(row) if row else None


@dataclass(frozen=True)
class CaseTenancy:
    """Who a case belongs to: the integration (API key name) that sent it and its platform."""

    integration: str | None
    platform: str


async def case_tenancy(pool: asyncpg.Pool, case_ids: list[str]) -> dict[str, CaseTenancy]:
    """The tenancy of each recorded case among ``case_ids`` (missing ones are absent)."""
    rows = await pool.fetch("SELECT case_id, integration, platform FROM cases WHERE case_id = ANY($1::text[])",
                            case_ids)
    return {r["case_id"]: CaseTenancy(r["integration"], r["platform"]) for r in rows}


@dataclass
class CaseFilters:
    platform: str | None = None
    channel: str | None = None
    author: str | None = None
    target: str | None = None
    decision: str | None = None
    category: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    needs_review: bool | None = None
    # A platform-scoped key's platforms (None: every platform).
    platforms: list[str] | None = None


_CASE_SUMMARY_COLS = ("case_id, platform, channel_id, author_id, target_id, event_type, path, risk_score, category, "
                      "decision, needs_review, review_status, false_positive, received_at, completed_at")


async def list_cases(pool: asyncpg.Pool, *, filters: CaseFilters, limit: int,
                     cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first, ordered by (received_at, case_id) descending."""
    w = Where()
    f = filters
    for column, value in (("platform", f.platform), ("channel_id", f.channel), ("author_id", f.author),
                          ("target_id", f.target), ("decision", f.decision), ("category", f.category)):
        if value is not None:
            w.add(f"{column} = {{}}", value)
    if f.since is not None:
        w.add("received_at >= {}", f.since)
    if f.until is not None:
        w.add("received_at < {}", f.until)
    if f.needs_review is not None:
        w.add("needs_review = {}", f.needs_review)
    if f.platforms is not None:
        w.add("platform = ANY({}::text[])", f.platforms)
    if cursor:
        at, case_id = decode_cursor("cases", cursor)
        w.add("(received_at, case_id) < ({}, {})", cursor_time(at), str(case_id))
    rows = await pool.fetch(
        f"SELECT {_CASE_SUMMARY_COLS} FROM cases {w.sql()} ORDER BY received_at DESC, case_id DESC "
        f"LIMIT {w.param(limit + 1)}", *w.args)
    items = [dict(r) for r in rows[:limit]]
    nxt = encode_cursor("cases", items[-1]["received_at"], items[-1]["case_id"]) if len(rows) > limit else None
    return items, nxt


async def case_timeline(pool: asyncpg.Pool, *, case_id: str) -> dict[str, Any] | None:
    """The case row with its action ledger, claim, appeals and audit entries."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM cases WHERE case_id = $1", case_id)
        if row is None:
            return None
        case = dict(row)
        case["action_ledger"] = [dict(r) for r in await conn.fetch(
            "SELECT action, connector, status, idempotency_key, request, response, created_at FROM actions "
            "WHERE case_id = $1 ORDER BY id", case_id)]
        claim = await conn.fetchrow("SELECT moderator, expires_at FROM review_claims WHERE case_id = $1 "
                                    "AND expires_at > now()", case_id)
        case["claim"] = dict(claim) if claim else None
        case["appeals"] = [dict(r) for r in await conn.fetch(
            "SELECT * FROM appeals WHERE case_id = $1 ORDER BY created_at, id", case_id)]
        case["audit"] = [dict(r) for r in await conn.fetch(
            "SELECT seq, at, actor, kind, case_id, payload, hash FROM audit_log WHERE case_id = $1 ORDER BY seq",
            case_id)]
    return case


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


async def user_history(pool: asyncpg.Pool, *, platform: str, user_id: str, recent: int = 20) -> dict[str, Any]:
    async with pool.acquire() as conn:
        counts = await conn.fetch(
            """
            SELECT 'author' AS role, decision, count(*) AS n FROM cases WHERE platform = $1 AND author_id = $2
            GROUP BY decision
            UNION ALL
            SELECT 'target', decision, count(*) FROM cases WHERE platform = $1 AND target_id = $2 GROUP BY decision
            """, platform, user_id)
        overturned = await conn.fetchval(
            "SELECT count(*) FROM cases WHERE platform = $1 AND author_id = $2 AND false_positive", platform, user_id)
        rows = await conn.fetch(
            """
            SELECT case_id, CASE WHEN author_id = $2 THEN 'author' ELSE 'target' END AS role, decision, category,
                   risk_score, false_positive, received_at
            FROM cases WHERE platform = $1 AND (author_id = $2 OR target_id = $2)
            ORDER BY received_at DESC, case_id DESC LIMIT $3
            """, platform, user_id, recent)
    as_author = {r["decision"]: r["n"] for r in counts if r["role"] == "author"}
    as_target = {r["decision"]: r["n"] for r in counts if r["role"] == "target"}
    return {"as_author": as_author, "as_target": as_target, "overturned": int(overturned),
            "recent_cases": [dict(r) for r in rows]}


async def write_label(conn: asyncpg.Connection | asyncpg.Pool, *, case_id: str, harmful: bool, source: str,
                      category: str) -> None:
    """One label per (case, source); a later decision from the same source replaces the earlier one."""
    await conn.execute(
        """
        INSERT INTO labels (case_id, label, source, category) VALUES ($1, $2, $3, $4)
        ON CONFLICT (case_id, source) DO UPDATE SET label = EXCLUDED.label, category = EXCLUDED.category,
            created_at = now()
        """, case_id, harmful, source, category)
