"""The hash-chained audit log in PostgreSQL: append (under one lock, so the chain never forks), verify, list.

Entries for a case are written in the same transaction as the change they record.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import asyncpg

from core.storage.common import CursorError, Where, decode_cursor, encode_cursor

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


async def list_audit(pool: asyncpg.Pool, *, case_id: str | None, kind: str | None, limit: int,
                     cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first by sequence number."""
    w = Where()
    if case_id is not None:
        w.add("case_id = {}", case_id)
    if kind is not None:
        w.add("kind = {}", kind)
    if cursor:
        (seq,) = decode_cursor("audit", cursor)
        if not isinstance(seq, int):
            raise CursorError("cursor is not valid: pass back the next_cursor of a previous page unchanged")
        w.add("seq < {}", seq)
    rows = await pool.fetch(f"SELECT seq, at, actor, kind, case_id, payload, hash FROM audit_log {w.sql()} "
                            f"ORDER BY seq DESC LIMIT {w.param(limit + 1)}", *w.args)
    items = [dict(r) for r in rows[:limit]]
    nxt = encode_cursor("audit", items[-1]["seq"]) if len(rows) > limit else None
    return items, nxt
