"""Appeals in PostgreSQL: file one, read and list them, reserve one for an overturn, and record the outcome
once (status, label, the case's false-positive mark and an audit entry).

Deciding is exclusive in the database: an uphold is one conditional UPDATE of an open appeal that no
overturn has reserved, an overturn reserves the open appeal under a row lock (``mark_overturn_pending``)
and only the reserved overturn can later record ``overturned``. Of two concurrent decisions exactly one
wins; the other gets Conflict (HTTP 409). ``revert_refusal`` lets the revert activity re-check.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from core.storage.audit import append_audit
from core.storage.cases import write_label
from core.storage.common import Conflict, NotActionable, Where, cursor_time, decode_cursor, encode_cursor


async def file_appeal(pool: asyncpg.Pool, *, case_id: str, reason: str, filed_by: str) -> dict[str, Any] | None:
    """None: unknown case. Raises NotActionable when the case was not actioned, Conflict when an appeal
    is already open."""
    async with pool.acquire() as conn, conn.transaction():
        case = await conn.fetchrow("SELECT decision FROM cases WHERE case_id = $1 FOR UPDATE", case_id)
        if case is None:
            return None
        if case["decision"] != "action":
            raise NotActionable(f"case {case_id} was not actioned (decision '{case['decision']}'); only cases "
                                "with an enforcement action can be appealed")
        existing = await conn.fetchval("SELECT id FROM appeals WHERE case_id = $1 AND status = 'open'", case_id)
        if existing:
            raise Conflict(f"case {case_id} already has an open appeal ({existing}); follow it at "
                           f"/v1/appeals/{existing}")
        row = await conn.fetchrow(
            "INSERT INTO appeals (case_id, reason, filed_by) VALUES ($1, $2, $3) RETURNING *", case_id, reason,
            filed_by)
        await append_audit(conn, actor=filed_by, kind="appeal.filed", case_id=case_id,
                           payload={"appeal_id": row["id"], "reason": reason[:500]})
    return dict(row)


async def get_appeal(pool: asyncpg.Pool, *, appeal_id: str) -> dict[str, Any] | None:
    row = await pool.fetchrow("SELECT * FROM appeals WHERE id = $1", appeal_id)
    return dict(row) if row else None


async def list_appeals(pool: asyncpg.Pool, *, status: str | None, case_id: str | None, limit: int,
                       cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    w = Where()
    if status is not None:
        w.add("status = {}", status)
    if case_id is not None:
        w.add("case_id = {}", case_id)
    if cursor:
        at, aid = decode_cursor("appeals", cursor)
        w.add("(created_at, id) < ({}, {})", cursor_time(at), str(aid))
    rows = await pool.fetch(f"SELECT * FROM appeals {w.sql()} ORDER BY created_at DESC, id DESC "
                            f"LIMIT {w.param(limit + 1)}", *w.args)
    items = [dict(r) for r in rows[:limit]]
    nxt = encode_cursor("appeals", items[-1]["created_at"], items[-1]["id"]) if len(rows) > limit else None
    return items, nxt


async def record_appeal_decision(pool: asyncpg.Pool, *, appeal_id: str, outcome: str, decided_by: str,
                                 note: str) -> dict[str, Any] | None:
    """Close an appeal as ``upheld`` or ``overturned`` once: status, label, and (overturned) the case's
    false-positive mark, with an ``appeal.decided`` audit entry. Returns the appeal row; a repeat call
    (an activity retry) changes nothing and returns the row as it is.

    Conditional in one statement: ``uphold`` closes only an open appeal no overturn has reserved;
    ``overturn`` only an open appeal reserved for it (``mark_overturn_pending``). A caller that lost
    the race gets the row as it is (status not what it asked for)."""
    row, _ = await _record_decision(pool, appeal_id=appeal_id, outcome=outcome, decided_by=decided_by, note=note)
    return row


async def _record_decision(pool: asyncpg.Pool, *, appeal_id: str, outcome: str, decided_by: str,
                           note: str) -> tuple[dict[str, Any] | None, bool]:
    """(the row, whether this call decided it)."""
    status = {"uphold": "upheld", "overturn": "overturned"}[outcome]
    pending = "pending_outcome IS NULL" if outcome == "uphold" else "pending_outcome = 'overturn'"
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"""
            UPDATE appeals SET status = $2, decided_by = $3, note = $4, decided_at = now(), updated_at = now(),
                pending_outcome = NULL
            WHERE id = $1 AND status = 'open' AND {pending} RETURNING *
            """, appeal_id, status, decided_by, note)
        if row is None:
            existing = await conn.fetchrow("SELECT * FROM appeals WHERE id = $1", appeal_id)
            return (dict(existing) if existing else None), False
        case = await conn.fetchrow("SELECT category FROM cases WHERE case_id = $1", row["case_id"])
        if status == "overturned":
            await conn.execute("UPDATE cases SET false_positive = true WHERE case_id = $1", row["case_id"])
        await write_label(conn, case_id=row["case_id"], harmful=status == "upheld", source="appeal",
                          category=case["category"] if status == "upheld" else "none")
        await append_audit(conn, actor=decided_by, kind="appeal.decided", case_id=row["case_id"],
                           payload={"appeal_id": appeal_id, "outcome": status, "note": note[:500]})
    return dict(row), True


async def mark_overturn_pending(pool: asyncpg.Pool, *, appeal_id: str, decided_by: str, note: str,
                                workflow_id: str) -> dict[str, Any] | None:
    """Reserve the appeal for an overturn (so two moderators cannot both decide it). None: unknown appeal."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("SELECT * FROM appeals WHERE id = $1 FOR UPDATE", appeal_id)
        if row is None:
            return None
        _check_open(row)
        updated = await conn.fetchrow(
            "UPDATE appeals SET pending_outcome = 'overturn', decided_by = $2, note = $3, workflow_id = $4, "
            "updated_at = now() WHERE id = $1 RETURNING *", appeal_id, decided_by, note, workflow_id)
    return dict(updated)


async def clear_overturn_pending(pool: asyncpg.Pool, *, appeal_id: str) -> None:
    await pool.execute("UPDATE appeals SET pending_outcome = NULL, decided_by = NULL, workflow_id = NULL "
                       "WHERE id = $1 AND status = 'open'", appeal_id)


def _check_open(row: asyncpg.Record | dict[str, Any]) -> None:
    if row["status"] != "open":
        raise Conflict(f"appeal {row['id']} was already decided ({row['status']} by {row['decided_by']})")
    if row["pending_outcome"]:
        raise Conflict(f"appeal {row['id']} is being overturned (requested by {row['decided_by']}); "
                       f"follow it at /v1/appeals/{row['id']}")


async def decide_uphold(pool: asyncpg.Pool, *, appeal_id: str, decided_by: str, note: str) -> dict[str, Any] | None:
    """Uphold an open, unreserved appeal. None: unknown appeal. Raises Conflict when it was already
    decided or an overturn holds it (also when that happened concurrently: the UPDATE is conditional)."""
    row, decided = await _record_decision(pool, appeal_id=appeal_id, outcome="uphold", decided_by=decided_by,
                                          note=note)
    if row is None:
        return None
    if not decided:
        _check_open(row)  # raises: decided, or an overturn holds it
        raise Conflict(f"appeal {appeal_id} could not be upheld; read it at /v1/appeals/{appeal_id}")
    return row


async def revert_refusal(pool: asyncpg.Pool, *, appeal_id: str) -> str | None:
    """Why the actions of this appeal's case must NOT be reverted, or None when an overturn holds it
    (reserved, or already recorded as overturned: a retry). Read by the revert activity just before it
    calls the platform."""
    row = await pool.fetchrow("SELECT status, pending_outcome, decided_by FROM appeals WHERE id = $1", appeal_id)
    if row is None:
        return f"no appeal {appeal_id}"
    if row["status"] == "overturned" or (row["status"] == "open" and row["pending_outcome"] == "overturn"):
        return None
    if row["status"] == "upheld":
        return f"appeal {appeal_id} was upheld by {row['decided_by']}: the actions stand"
    return f"appeal {appeal_id} is open but no overturn holds it"
