"""The action ledger in PostgreSQL: one row per platform action (keyed by its idempotency key, case id +
action), which makes every platform call exactly-once across activity retries and worker crashes.

Row states: ``pending`` (claimed, not called), ``calling`` (committed before the request leaves, so a
retry after a crash reads the platform back), then ``applied``, ``unconfirmed``, ``shadow``, ``capped``,
``kept`` or ``not_reversible``. The actions activity (``activities/actions.py``) drives them.
"""

from __future__ import annotations

from typing import Any

import asyncpg


async def claim(pool: asyncpg.Pool, *, key: str, case_id: str, platform: str, label: str, connector: str,
                status: str, request: dict[str, object]) -> str | None:
    """Insert the ledger row; returns the status of an existing row, or None when newly claimed."""
    row = await pool.fetchrow(
        """
        WITH ins AS (
            INSERT INTO actions (idempotency_key, case_id, platform, action, connector, status, request)
            VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (idempotency_key) DO NOTHING RETURNING status
        ) SELECT (SELECT status FROM ins) AS new, (SELECT status FROM actions WHERE idempotency_key = $1) AS old
        """,
        key, case_id, platform, label, connector, status, request,
    )
    return None if row["new"] else row["old"]


async def set_status(pool: asyncpg.Pool, key: str, status: str) -> None:
    await pool.execute("UPDATE actions SET status = $2 WHERE idempotency_key = $1", key, status)


async def finish(pool: asyncpg.Pool, key: str, status: str, response: dict[str, object]) -> None:
    await pool.execute("UPDATE actions SET status = $2, response = $3 WHERE idempotency_key = $1",
                       key, status, response)


async def stored_response(pool: asyncpg.Pool, key: str) -> Any:
    return await pool.fetchval("SELECT response FROM actions WHERE idempotency_key = $1", key)


async def applied_today(pool: asyncpg.Pool, *, platform: str, action: str, channel_id: str) -> int:
    """Automated sanctions of this kind applied today in one community (platform + channel)."""
    return int(await pool.fetchval(
        """
        SELECT count(*) FROM actions
        WHERE platform = $1 AND action = $2 AND status = 'applied' AND request->>'channel_id' = $3
          AND request->>'automated' = 'true' AND created_at >= date_trunc('day', now() AT TIME ZONE 'UTC')
        """,
        platform, action, channel_id,
    ))


async def applied_for_case(pool: asyncpg.Pool, *, case_id: str, actions: list[str]) -> list[asyncpg.Record]:
    """The case's applied actions (of these kinds), in the order they were taken."""
    return await pool.fetch(
        "SELECT action, request, response FROM actions WHERE case_id = $1 AND status = 'applied' "
        "AND action = ANY($2::text[]) ORDER BY id", case_id, actions)


async def other_standing_ban(pool: asyncpg.Pool, *, platform: str, user_id: str, case_id: str) -> str | None:
    """Another case whose ban of this user is applied and not reverted (None: there is none)."""
    return await pool.fetchval(
        """
        SELECT a.case_id FROM actions a
        WHERE a.platform = $1 AND a.request->>'user_id' = $2 AND a.action = 'ban' AND a.status = 'applied'
          AND a.case_id <> $3
          AND NOT EXISTS (SELECT 1 FROM actions r WHERE r.idempotency_key = a.case_id || ':revert:ban'
                          AND r.status IN ('applied', 'kept'))
        LIMIT 1
        """, platform, user_id, case_id)
