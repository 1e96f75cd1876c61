"""The moderator console in PostgreSQL: sign-in sessions (only a SHA-256 of the cookie token is stored),
per-moderator preferences, and the read-only views the console's pages need beyond the JSON API's
(the filtered review queue with its SLA counts, past outcomes of similar cases, the overview's series).

Tables from migration ``0004_console.sql``; cases, reviews, appeals and audit are read, never written here.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import asyncpg

from core.storage.common import Where

# The overview's bucket widths (a whitelist: the value is written into the SQL as an interval literal).
SERIES_BUCKETS = frozenset({"5 minutes", "1 hour", "6 hours"})


# -- sessions --------------------------------------------------------------------------------------------

async def create_session(pool: asyncpg.Pool, *, token_hash: str, key_id: int, moderator: str, role: str,
                         csrf_token: str, expires_at: datetime) -> None:
    """Store a new session (and drop the expired ones in the same transaction)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM console_sessions WHERE expires_at < now()")
        await conn.execute(
            "INSERT INTO console_sessions (token_hash, key_id, moderator, role, csrf_token, expires_at) "
            "VALUES ($1, $2, $3, $4, $5, $6)", token_hash, key_id, moderator, role, csrf_token, expires_at)


def session_token_hash(token: str) -> str:
    """How a session's cookie token is stored: only its SHA-256, so a database read gives no usable cookie."""
    return hashlib.sha256(token.encode()).hexdigest()


async def live_session(pool: asyncpg.Pool, *, token_hash: str) -> dict[str, Any] | None:
    """The session if it has not expired and its key is not revoked, with the key's prefix and platform
    scope (read from the key on every request, never copied into the session); else None."""
    row = await pool.fetchrow(
        """
        SELECT s.token_hash, s.key_id, s.moderator, s.role, s.csrf_token, s.expires_at, k.prefix, k.platforms
        FROM console_sessions s JOIN api_keys k ON k.id = s.key_id AND k.revoked_at IS NULL
        WHERE s.token_hash = $1 AND s.expires_at > now()
        """, token_hash)
    return dict(row) if row is not None else None


async def delete_session(pool: asyncpg.Pool, *, token_hash: str) -> None:
    await pool.execute("DELETE FROM console_sessions WHERE token_hash = $1", token_hash)


async def set_flash(pool: asyncpg.Pool, *, token_hash: str, message: str) -> None:
    await pool.execute("UPDATE console_sessions SET flash = $2 WHERE token_hash = $1", token_hash, message[:1000])


async def pop_flash(pool: asyncpg.Pool, *, token_hash: str) -> str | None:
    """The session's one-shot message, cleared as it is read."""
    return await pool.fetchval(  # type: ignore[no-any-return]
        "UPDATE console_sessions s SET flash = NULL FROM (SELECT flash FROM console_sessions WHERE token_hash = $1 "
        "FOR UPDATE) old WHERE s.token_hash = $1 RETURNING old.flash", token_hash)


# -- preferences -----------------------------------------------------------------------------------------

async def blur_sensitive(pool: asyncpg.Pool, *, moderator: str) -> bool | None:
    """The moderator's blur preference, or None when they never set one."""
    value = await pool.fetchval("SELECT blur_sensitive FROM console_preferences WHERE moderator = $1", moderator)
    return None if value is None else bool(value)


async def set_blur_sensitive(pool: asyncpg.Pool, *, moderator: str, blur: bool) -> None:
    await pool.execute(
        "INSERT INTO console_preferences (moderator, blur_sensitive) VALUES ($1, $2) ON CONFLICT (moderator) "
        "DO UPDATE SET blur_sensitive = EXCLUDED.blur_sensitive, updated_at = now()", moderator, blur)


# -- the review queue ------------------------------------------------------------------------------------

async def pending_reviews(pool: asyncpg.Pool, *, platform: str | None, channel: str | None, category: str | None,
                          clause: str | None, queue: str | None, limit: int,
                          platforms: list[str] | None = None) -> list[dict[str, Any]]:
    """Cases waiting for a person, oldest first, with their live claim (if any); of ``platforms`` only when
    given (a platform-scoped key)."""
    w = Where()
    w.add("c.review_status = 'pending'")
    if platforms is not None:
        w.add("c.platform = ANY({}::text[])", platforms)
    if platform:
        w.add("c.platform = {}", platform)
    if channel:
        w.add("c.channel_id = {}", channel)
    if category:
        w.add("c.category = {}", category)
    if clause:
        w.add("c.reasoning->'verdict'->>'policy_clause' = {}", clause)
    if queue:
        w.add("coalesce(c.review_queue, 'standard') = {}", queue)
    rows = await pool.fetch(
        f"""
        SELECT c.case_id, c.platform, c.channel_id, c.author_id, c.target_id, c.risk_score, c.category, c.reasons,
               coalesce(c.review_queue, 'standard') AS queue, c.received_at, c.completed_at AS waiting_since,
               c.reasoning->'verdict'->>'policy_clause' AS clause, rc.moderator AS claimed_by,
               rc.expires_at AS claim_expires_at
        FROM cases c LEFT JOIN review_claims rc ON rc.case_id = c.case_id AND rc.expires_at > now()
        {w.sql()}
        ORDER BY c.received_at, c.case_id LIMIT {w.param(limit)}
        """, *w.args)
    return [dict(r) for r in rows]


async def pending_counts(pool: asyncpg.Pool, *, sla_minutes: int,
                         platforms: list[str] | None = None) -> dict[str, int]:
    """Queue-wide counts (unfiltered but for a scoped key's ``platforms``): pending, per queue, SLA-breached,
    unclaimed."""
    row = await pool.fetchrow(
        """
        SELECT count(*) AS pending,
               count(*) FILTER (WHERE coalesce(c.review_queue, 'standard') = 'standard') AS standard,
               count(*) FILTER (WHERE c.review_queue = 'senior') AS senior,
               count(*) FILTER (WHERE c.review_queue = 'senior'
                                OR c.completed_at < now() - make_interval(mins => $1)) AS breached,
               count(*) FILTER (WHERE rc.case_id IS NULL) AS unclaimed
        FROM cases c LEFT JOIN review_claims rc ON rc.case_id = c.case_id AND rc.expires_at > now()
        WHERE c.review_status = 'pending' AND ($2::text[] IS NULL OR c.platform = ANY($2::text[]))
        """, sla_minutes, platforms)
    return dict(row)


async def pending_filter_options(pool: asyncpg.Pool, *, platforms: list[str] | None = None) -> dict[str, list[str]]:
    """The platforms, channels and policy clauses present in the queue (the filter choices), of
    ``platforms`` only when given."""
    row = await pool.fetchrow(
        """
        SELECT array_agg(DISTINCT platform) AS platforms, array_agg(DISTINCT channel_id) AS channels,
               array_agg(DISTINCT reasoning->'verdict'->>'policy_clause')
                   FILTER (WHERE reasoning->'verdict'->>'policy_clause' IS NOT NULL) AS clauses
        FROM cases WHERE review_status = 'pending' AND ($1::text[] IS NULL OR platform = ANY($1::text[]))
        """, platforms)
    return {k: sorted(v or []) for k, v in dict(row).items()}


# -- case summaries --------------------------------------------------------------------------------------

async def case_outcomes(pool: asyncpg.Pool, *, case_ids: list[str]) -> dict[str, dict[str, Any]]:
    """How the given cases ended (decision, category, false positive, reviewer), with their tenancy
    (platform, integration), by case id."""
    rows = await pool.fetch(
        "SELECT case_id, platform, integration, decision, category, false_positive, reviewer FROM cases "
        "WHERE case_id = ANY($1)", case_ids)
    return {r["case_id"]: dict(r) for r in rows}


async def appealed_cases(pool: asyncpg.Pool, *, case_ids: list[str]) -> dict[str, dict[str, Any]]:
    """What the appeals queue shows of each appealed case, by case id."""
    rows = await pool.fetch(
        "SELECT case_id, platform, integration, author_id, category, decision, actions, false_positive FROM cases "
        "WHERE case_id = ANY($1)", case_ids)
    return {r["case_id"]: dict(r) for r in rows}


# -- the overview ----------------------------------------------------------------------------------------

async def volume_series(pool: asyncpg.Pool, *, since: datetime, until: datetime, bucket: str,
                        platforms: list[str] | None = None) -> dict[datetime, dict[str, int]]:
    """Cases received (and actioned) per bucket of the window, keyed by the bucket's start; of
    ``platforms`` only when given."""
    if bucket not in SERIES_BUCKETS:
        raise ValueError(f"bucket must be one of {sorted(SERIES_BUCKETS)}")
    rows = await pool.fetch(
        f"""
        SELECT date_bin(interval '{bucket}', received_at, $1) AS bucket, count(*) AS n,
               count(*) FILTER (WHERE decision = 'action') AS actioned
        FROM cases WHERE received_at >= $1 AND received_at < $2
          AND ($3::text[] IS NULL OR platform = ANY($3::text[])) GROUP BY 1 ORDER BY 1
        """, since, until, platforms)
    return {r["bucket"]: {"n": int(r["n"]), "actioned": int(r["actioned"])} for r in rows}
