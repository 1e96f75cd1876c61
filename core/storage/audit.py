"""The hash-chained audit log in PostgreSQL: append (under one lock, so the chain never forks), verify, list.

Entries for a case are written in the same transaction as the change they record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from core.storage.common import CursorError, Where, decode_cursor, encode_cursor

_AUDIT_LOCK = 7_240_002
GENESIS_HASH = "0" * 64
LEGACY_ALG = "sha256"  # before migration 0006: sha256(prev + body), seq and at not covered, no key
KEYED_ALG = "hmac-sha256"
SWITCH_KIND = "audit.chain_keyed"  # the first keyed entry: records the legacy prefix it continues

_key: bytes | None = None


def configure_audit_key(key: bytes) -> None:
    """Set the process's audit HMAC key (the API, workers, CLI and tests call this with
    ``Settings.audit_key_bytes()``); when never called, the key of ``get_settings()`` is used."""
    global _key
    if len(key) < 16:
        raise ValueError("the audit key is too short: use at least 32 random characters")
    _key = key


def _audit_key() -> bytes:
    global _key
    if _key is None:
        from core.settings import get_settings

        _key = get_settings().audit_key_bytes()
    return _key


def _body(*, actor: str, kind: str, case_id: str | None, payload: dict[str, Any]) -> dict[str, Any]:
    return {"actor": actor, "kind": kind, "case_id": case_id, "payload": payload}


def _canonical(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _at_text(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _audit_hash(prev_hash: str, *, actor: str, kind: str, case_id: str | None, payload: dict[str, Any]) -> str:
    """The legacy (pre-0006) entry hash: unkeyed, seq and at not covered. Only verified, never written."""
    body = _canonical(_body(actor=actor, kind=kind, case_id=case_id, payload=payload))
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def keyed_hash(key: bytes, prev_hash: str, *, seq: int, at: datetime, actor: str, kind: str,
               case_id: str | None, payload: dict[str, Any]) -> str:
    """HMAC-SHA256 over the previous hash, the sequence number, the timestamp and the entry."""
    body = _canonical({**_body(actor=actor, kind=kind, case_id=case_id, payload=payload),
                       "alg": KEYED_ALG, "prev": prev_hash, "seq": seq, "at": _at_text(at)})
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


async def append_audit(
    conn: asyncpg.Connection, *, actor: str, kind: str, case_id: str | None, payload: dict[str, Any]
) -> str:
    """Append one entry to the audit chain. Must run inside a transaction (it takes a transaction lock)."""
    return await append_audit_many(conn, [(actor, kind, case_id, payload)])


AuditEntry = tuple[str, str, str | None, dict[str, Any]]  # actor, kind, case_id, payload


async def append_audit_many(conn: asyncpg.Connection, entries: list[AuditEntry]) -> str:
    """Append entries to the audit chain in order, under one lock; returns the last hash. Must run
    inside a transaction (the lock is held until it commits, so the chain never forks).

    ``seq`` and ``at`` are assigned here, under the lock and before hashing, so both are covered by the
    keyed hash. The first append after migration 0006 (or into an empty chain) starts the keyed chain
    with a switch-over entry recording the legacy prefix (its length and head hash).
    """
    key = _audit_key()
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _AUDIT_LOCK)
    last = await conn.fetchrow("SELECT hash, alg FROM audit_log ORDER BY seq DESC LIMIT 1")
    prev = last["hash"] if last else GENESIS_HASH
    todo = list(entries)
    if last is None or last["alg"] == LEGACY_ALG:
        legacy = await conn.fetchval("SELECT count(*) FROM audit_log")
        todo.insert(0, ("system", SWITCH_KIND, None, {"legacy_entries": legacy, "legacy_head": prev}))
    assigned = await conn.fetch("SELECT nextval(pg_get_serial_sequence('audit_log', 'seq')), clock_timestamp() "
                                "FROM generate_series(1, $1)", len(todo))
    seqs, at = sorted(r[0] for r in assigned), assigned[0][1]
    rows = []
    for seq, (actor, kind, case_id, payload) in zip(seqs, todo, strict=True):
        digest = keyed_hash(key, prev, seq=seq, at=at, actor=actor, kind=kind, case_id=case_id, payload=payload)
        rows.append((seq, at, actor, kind, case_id, payload, prev, digest, KEYED_ALG))
        prev = digest
    await conn.executemany(
        "INSERT INTO audit_log (seq, at, actor, kind, case_id, payload, prev_hash, hash, alg) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        rows,
    )
    return prev


@dataclass
class ChainReport:
    """What ``verify`` found: intact or the first problem, and the head to anchor elsewhere."""

    intact: bool
    checked: int
    broken_seq: int | None = None
    problem: str | None = None
    head_seq: int | None = None
    head_hash: str | None = None
    legacy_entries: int = 0
    keyed_entries: int = 0


def _broken(report: ChainReport, seq: int | None, problem: str) -> ChainReport:
    report.intact, report.broken_seq, report.problem = False, seq, problem
    return report


async def check_audit_chain(pool: asyncpg.Pool, *, key: bytes | None = None, expect_head: str | None = None,
                            expect_count: int | None = None, legacy_entries: int = 0) -> ChainReport:
    """Walk the chain from the first entry.

    Detects an entry changed (payload, actor, kind, case, seq or timestamp) or re-hashed without the
    key, an entry removed or reordered in the middle (its successor's prev_hash no longer matches), a
    legacy (unkeyed) entry after the switch to the keyed chain, and, with an anchor taken earlier
    (``expect_head``: a head hash printed by ``safety audit verify``; ``expect_count``: the number of
    entries then), removal of the tail or of everything (truncation). Exactly ``legacy_entries``
    unkeyed entries (written before migration 0006, pinned outside the database by
    SAFETY_AUDIT_LEGACY_ENTRIES) are accepted at the start: more means entries were re-hashed unkeyed.
    """
    key = key or _audit_key()
    report = ChainReport(intact=True, checked=0)
    prev = GENESIS_HASH
    keyed = False
    anchor_found = expect_head is None
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        async for row in conn.cursor("SELECT * FROM audit_log ORDER BY seq"):
            report.checked += 1
            seq = row["seq"]
            if row["prev_hash"] != prev:
                return _broken(report, seq, "it does not follow the entry before it: an entry before it was "
                                            "removed, inserted or changed")
            if row["alg"] == LEGACY_ALG:
                if keyed:
                    return _broken(report, seq, "an unkeyed entry after the chain became keyed (a downgrade)")
                if report.legacy_entries >= legacy_entries:
                    return _broken(report, seq, f"more unkeyed (pre-0006) entries than the {legacy_entries} pinned "
                                                "by SAFETY_AUDIT_LEGACY_ENTRIES: entries were re-hashed without the "
                                                "key (after an upgrade, pin the count the switch-over entry "
                                                "records: SELECT payload FROM audit_log WHERE kind = "
                                                "'audit.chain_keyed')")
                expected = _audit_hash(prev, actor=row["actor"], kind=row["kind"], case_id=row["case_id"],
                                       payload=row["payload"])
                report.legacy_entries += 1
            elif row["alg"] == KEYED_ALG:
                if not keyed:
                    p = row["payload"]
                    if row["kind"] != SWITCH_KIND or p.get("legacy_entries") != report.legacy_entries \
                            or p.get("legacy_head") != prev:
                        return _broken(report, seq, "the keyed chain does not start with its switch-over entry "
                                                    "matching the legacy entries before it")
                    keyed = True
                expected = keyed_hash(key, prev, seq=seq, at=row["at"], actor=row["actor"], kind=row["kind"],
                                      case_id=row["case_id"], payload=row["payload"])
                report.keyed_entries += 1
            else:
                return _broken(report, seq, f"unknown hash algorithm {row['alg']!r}")
            if not hmac.compare_digest(row["hash"], expected):
                return _broken(report, seq, "its content, seq or timestamp was changed after it was written "
                                            "(or it was re-hashed without the audit key)")
            if expect_head is not None and hmac.compare_digest(row["hash"], expect_head):
                anchor_found = True
            prev = row["hash"]
            report.head_seq, report.head_hash = seq, row["hash"]
    if not anchor_found:
        return _broken(report, None, f"the anchored head {expect_head} is not in the chain: entries up to it were "
                                     "removed (tail deletion or truncation)")
    if expect_count is not None and report.checked < expect_count:
        return _broken(report, None, f"{report.checked} entries but {expect_count} were anchored: entries were "
                                     "removed (tail deletion or truncation)")
    return report


async def verify_audit(pool: asyncpg.Pool) -> tuple[bool, int, int | None]:
    """Walk the chain; returns (intact, entries checked, first broken seq or None)."""
    report = await check_audit_chain(pool)
    return report.intact, report.checked, report.broken_seq


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
