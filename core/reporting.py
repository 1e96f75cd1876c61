"""Reporting services over PostgreSQL: cases, the review queue and claims, appeals, stats, audit, exports.

Routes call these; they only read and write storage (Temporal calls stay in the routes and workflows).
Every function takes keyword-only arguments. Pages use keyset pagination with an opaque cursor, so a
page is stable while new cases arrive.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from core.metrics import FALSE_POSITIVE_RATE
from core.store import append_audit

WINDOWS: dict[str, timedelta] = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7),
                                 "30d": timedelta(days=30)}
DEFAULT_CLAIM_MINUTES = 15


class CursorError(ValueError):
    """The cursor is not one this API issued (or was issued by another listing)."""


class Conflict(Exception):
    """A state conflict a user can resolve (409): the message says what to do."""


class NotActionable(Exception):
    """The request is well-formed but the target is in the wrong state for it (422)."""


# -- cursors ---------------------------------------------------------------------------------------------

def encode_cursor(kind: str, *values: object) -> str:
    raw = json.dumps([kind, *[v.isoformat() if isinstance(v, datetime) else v for v in values]],
                     separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> list[Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as err:
        raise CursorError("cursor is not valid: pass back the next_cursor of a previous page unchanged") from err
    if not isinstance(data, list) or not data or data[0] != kind:
        raise CursorError(f"cursor is not valid for this listing ({kind}): pass back a next_cursor from it")
    return data[1:]


def _ts(value: Any) -> datetime:
    if not isinstance(value, str):
        raise CursorError("cursor is not valid: pass back the next_cursor of a previous page unchanged")
    try:
        return datetime.fromisoformat(value)
    except ValueError as err:
        raise CursorError("cursor is not valid: pass back the next_cursor of a previous page unchanged") from err


class _Where:
    """Builds a parameterised WHERE clause."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.args: list[Any] = []

    def add(self, template: str, *values: Any) -> None:
        """``template`` uses ``{}`` for each value, replaced by the next ``$n``."""
        marks = []
        for v in values:
            self.args.append(v)
            marks.append(f"${len(self.args)}")
        self.clauses.append(template.format(*marks))

    def sql(self) -> str:
        return ("WHERE " + " AND ".join(self.clauses)) if self.clauses else ""

    def param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


# -- cases -----------------------------------------------------------------------------------------------

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


_CASE_SUMMARY_COLS = ("case_id, platform, channel_id, author_id, target_id, event_type, path, risk_score, category, "
                      "decision, needs_review, review_status, false_positive, received_at, completed_at")


async def list_cases(pool: asyncpg.Pool, *, filters: CaseFilters, limit: int,
                     cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first, ordered by (received_at, case_id) descending."""
    w = _Where()
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
    if cursor:
        at, case_id = decode_cursor("cases", cursor)
        w.add("(received_at, case_id) < ({}, {})", _ts(at), str(case_id))
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


# -- review queue and claims -----------------------------------------------------------------------------

async def review_queue(pool: asyncpg.Pool, *, queue: str | None, platform: str | None, category: str | None,
                       claimed: bool | None, limit: int,
                       cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Pending reviews, oldest first (the order they should be worked)."""
    w = _Where()
    w.clauses.append("c.review_status = 'pending'")
    if queue is not None:
        w.add("c.review_queue = {}", queue)
    if platform is not None:
        w.add("c.platform = {}", platform)
    if category is not None:
        w.add("c.category = {}", category)
    if claimed is True:
        w.clauses.append("rc.case_id IS NOT NULL")
    elif claimed is False:
        w.clauses.append("rc.case_id IS NULL")
    if cursor:
        at, case_id = decode_cursor("reviews", cursor)
        w.add("(c.received_at, c.case_id) > ({}, {})", _ts(at), str(case_id))
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


async def write_label(conn: asyncpg.Connection | asyncpg.Pool, *, case_id: str, harmful: bool, source: str,
                      category: str) -> None:
    """One label per (case, source); a later decision from the same source replaces the earlier one."""
    await conn.execute(
        """
        INSERT INTO labels (case_id, label, source, category) VALUES ($1, $2, $3, $4)
        ON CONFLICT (case_id, source) DO UPDATE SET label = EXCLUDED.label, category = EXCLUDED.category,
            created_at = now()
        """, case_id, harmful, source, category)


# -- appeals ---------------------------------------------------------------------------------------------

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
    w = _Where()
    if status is not None:
        w.add("status = {}", status)
    if case_id is not None:
        w.add("case_id = {}", case_id)
    if cursor:
        at, aid = decode_cursor("appeals", cursor)
        w.add("(created_at, id) < ({}, {})", _ts(at), str(aid))
    rows = await pool.fetch(f"SELECT * FROM appeals {w.sql()} ORDER BY created_at DESC, id DESC "
                            f"LIMIT {w.param(limit + 1)}", *w.args)
    items = [dict(r) for r in rows[:limit]]
    nxt = encode_cursor("appeals", items[-1]["created_at"], items[-1]["id"]) if len(rows) > limit else None
    return items, nxt


async def record_appeal_decision(pool: asyncpg.Pool, *, appeal_id: str, outcome: str, decided_by: str,
                                 note: str) -> dict[str, Any] | None:
    """Close an appeal as ``upheld`` or ``overturned`` once: status, label, and (overturned) the case's
    false-positive mark, with an ``appeal.decided`` audit entry. Returns the appeal row; a repeat call
    (an activity retry) changes nothing and returns the row as it is."""
    status = {"uphold": "upheld", "overturn": "overturned"}[outcome]
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """
            UPDATE appeals SET status = $2, decided_by = $3, note = $4, decided_at = now(), updated_at = now(),
                pending_outcome = NULL
            WHERE id = $1 AND status = 'open' RETURNING *
            """, appeal_id, status, decided_by, note)
        if row is None:
            existing = await conn.fetchrow("SELECT * FROM appeals WHERE id = $1", appeal_id)
            return dict(existing) if existing else None
        case = await conn.fetchrow("SELECT category FROM cases WHERE case_id = $1", row["case_id"])
        if status == "overturned":
            await conn.execute("UPDATE cases SET false_positive = true WHERE case_id = $1", row["case_id"])
        await write_label(conn, case_id=row["case_id"], harmful=status == "upheld", source="appeal",
                          category=case["category"] if status == "upheld" else "none")
        await append_audit(conn, actor=decided_by, kind="appeal.decided", case_id=row["case_id"],
                           payload={"appeal_id": appeal_id, "outcome": status, "note": note[:500]})
    return dict(row)


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
    row = await get_appeal(pool, appeal_id=appeal_id)
    if row is None:
        return None
    _check_open(row)
    return await record_appeal_decision(pool, appeal_id=appeal_id, outcome="uphold", decided_by=decided_by,
                                        note=note)


# -- users -----------------------------------------------------------------------------------------------

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


# -- stats -----------------------------------------------------------------------------------------------

async def compute_stats(pool: asyncpg.Pool, *, window: str, sla_minutes: int,
                        now: datetime | None = None) -> dict[str, Any]:
    """Aggregates over cases received in the window. Also sets the 7-day false-positive gauge."""
    until = now or datetime.now(UTC)
    since = until - WINDOWS[window]
    async with pool.acquire() as conn:
        decisions = await conn.fetch(
            "SELECT category, decision, count(*) AS n FROM cases WHERE received_at >= $1 AND received_at < $2 "
            "GROUP BY category, decision", since, until)
        actions = await conn.fetch(
            """
            SELECT a->>'action' AS action, count(*) AS n
            FROM cases c, jsonb_array_elements(c.actions) a
            WHERE c.received_at >= $1 AND c.received_at < $2 AND a->>'status' IN ('applied', 'duplicate')
            GROUP BY 1
            """, since, until)
        latency = await conn.fetch(
            """
            SELECT s.key AS stage, count(*) AS n,
                   percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY s.value::double precision) AS p
            FROM cases c, jsonb_each_text(c.stage_ms) s
            WHERE c.received_at >= $1 AND c.received_at < $2
            GROUP BY s.key ORDER BY s.key
            """, since, until)
        backlog = await conn.fetch(
            """
            SELECT coalesce(review_queue, 'standard') AS queue, count(*) AS n,
                   count(*) FILTER (WHERE review_queue = 'senior'
                                    OR completed_at < now() - make_interval(mins => $1)) AS breached,
                   min(completed_at) AS oldest
            FROM cases WHERE review_status = 'pending' GROUP BY 1
            """, sla_minutes)
        appeals = await conn.fetch(
            "SELECT status, count(*) AS n FROM appeals WHERE created_at >= $1 AND created_at < $2 GROUP BY status",
            since, until)
        fp = await conn.fetchrow(
            """
            SELECT count(*) FILTER (WHERE decision = 'action' OR false_positive) AS actioned,
                   count(*) FILTER (WHERE false_positive) AS overturned
            FROM cases WHERE received_at >= $1 AND received_at < $2
            """, since, until)
        llm = await conn.fetchrow(
            """
            SELECT count(*) AS calls,
                   count(*) FILTER (WHERE reasoning->>'status' <> 'ok') AS errors,
                   count(*) FILTER (WHERE reasoning->>'status' = 'timeout') AS timeouts
            FROM cases WHERE reasoning IS NOT NULL AND received_at >= $1 AND received_at < $2
            """, since, until)
        await _set_fp_gauge(conn, until)

    by_category: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for r in decisions:
        by_category.setdefault(r["category"], {})[r["decision"]] = r["n"]
        totals[r["decision"]] = totals.get(r["decision"], 0) + r["n"]
    pending = sum(r["n"] for r in backlog)
    oldest = min((r["oldest"] for r in backlog), default=None)
    actioned, overturned = int(fp["actioned"]), int(fp["overturned"])
    calls = int(llm["calls"])
    return {
        "window": window, "since": since, "until": until, "volume": sum(totals.values()), "decisions": totals,
        "decisions_by_category": by_category, "actions": {r["action"]: r["n"] for r in actions},
        "latency": {r["stage"]: {"count": r["n"], "p50_ms": r["p"][0], "p95_ms": r["p"][1], "p99_ms": r["p"][2]}
                    for r in latency},
        "review_backlog": {"pending": pending, "by_queue": {r["queue"]: r["n"] for r in backlog},
                           "sla_minutes": sla_minutes, "sla_breaches": sum(r["breached"] for r in backlog),
                           "oldest_pending_at": oldest},
        "appeals": {r["status"]: r["n"] for r in appeals},
        "actioned": actioned, "overturned": overturned,
        "false_positive_rate": overturned / actioned if actioned else None,
        "reasoning_calls": calls,
        "llm_error_rate": int(llm["errors"]) / calls if calls else None,
        "llm_timeout_rate": int(llm["timeouts"]) / calls if calls else None,
    }


async def _set_fp_gauge(conn: asyncpg.Connection, until: datetime) -> None:
    """The gauge is defined over the last 7 days whatever window was asked for."""
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE decision = 'action' OR false_positive) AS actioned, "
        "count(*) FILTER (WHERE false_positive) AS overturned FROM cases WHERE received_at >= $1 AND received_at < $2",
        until - WINDOWS["7d"], until)
    FALSE_POSITIVE_RATE.set(row["overturned"] / row["actioned"] if row["actioned"] else 0.0)


# -- audit -----------------------------------------------------------------------------------------------

async def list_audit(pool: asyncpg.Pool, *, case_id: str | None, kind: str | None, limit: int,
                     cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first by sequence number."""
    w = _Where()
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


# -- transparency export ---------------------------------------------------------------------------------

async def actioned_cases(pool: asyncpg.Pool, *, since: datetime, until: datetime,
                         batch: int = 500) -> AsyncIterator[dict[str, Any]]:
    """Cases with at least one applied platform action, decided in [since, until), oldest first.
    Streams from a server-side cursor, so memory does not grow with the range."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        query = """
            SELECT c.*, (SELECT a.id FROM appeals a WHERE a.case_id = c.case_id ORDER BY a.created_at DESC LIMIT 1)
                        AS appeal_id
            FROM cases c
            WHERE c.decision = 'action' AND coalesce(c.reviewed_at, c.completed_at) >= $1
              AND coalesce(c.reviewed_at, c.completed_at) < $2
              AND EXISTS (SELECT 1 FROM jsonb_array_elements(c.actions) a
                          WHERE a->>'status' IN ('applied', 'duplicate'))
            ORDER BY coalesce(c.reviewed_at, c.completed_at), c.case_id
        """
        async for row in conn.cursor(query, since, until, prefetch=batch):
            yield dict(row)


# Mapping to the DSA Transparency Database vocabulary (Article 17 statements of reasons).
_DSA_CATEGORY = {
    "targeted_insult": "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
    "identity_hate": "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
    "profanity": "STATEMENT_CATEGORY_SCOPE_OF_PLATFORM_SERVICE",
    "threat": "STATEMENT_CATEGORY_VIOLENCE",
}
_APPLIED = ("applied", "duplicate")


def statement_of_reasons(case: dict[str, Any], *, platform_name: str = "safety-system") -> dict[str, Any]:
    """One Article 17 statement for an actioned case. Harassment rules are terms-of-service grounds
    (``DECISION_GROUND_INCOMPATIBLE_CONTENT``); this system makes no finding of illegality."""
    applied = [a for a in case.get("actions") or [] if a.get("status") in _APPLIED]
    kinds = {a.get("action") for a in applied}
    visibility = ["DECISION_VISIBILITY_CONTENT_REMOVED"] if "delete" in kinds else []
    account = None
    end_account = None
    if "ban" in kinds:
        account = "DECISION_ACCOUNT_TERMINATED"
    elif "timeout" in kinds:
        account = "DECISION_ACCOUNT_SUSPENDED"
        durations = [a.get("duration_s") for a in applied if a.get("action") == "timeout" and a.get("duration_s")]
        decided = case.get("reviewed_at") or case["completed_at"]
        if durations:
            end_account = (decided + timedelta(seconds=max(durations))).date().isoformat()
    if not visibility and account is None:
        visibility = ["DECISION_VISIBILITY_OTHER"]  # a warning: no restriction beyond the notice itself
    reasoning = case.get("reasoning") or {}
    verdict = reasoning.get("verdict") or {}
    reviewed = bool(case.get("reviewer"))
    clause = verdict.get("policy_clause") or ""
    # Public statements carry no free text (message, LLM rationale, moderator note): it may quote people.
    severity = verdict.get("severity")
    explanation = (f"The message was found incompatible with the harassment policy {case['policy_version']}"
                   + (f", clause {clause}" if clause else "") + f" (category {case['category']}"
                   + (f", severity {severity}" if severity else "") + ")"
                   + (", as decided by a human moderator." if reviewed else ", by automated assessment."))
    decided_at = case.get("reviewed_at") or case["completed_at"]
    appeal_id = case.get("appeal_id")
    return {
        "uuid": case["case_id"],
        "puid": case.get("message_id") or case["case_id"],
        "platform_name": platform_name,
        "decision_visibility": visibility,
        "decision_visibility_other": "warning sent to the author" if visibility == ["DECISION_VISIBILITY_OTHER"]
        else None,
        "decision_monetary": None,
        "decision_provision": None,
        "decision_account": account,
        "account_type": "ACCOUNT_TYPE_PRIVATE",
        "decision_ground": "DECISION_GROUND_INCOMPATIBLE_CONTENT",
        "decision_ground_reference_url": None,
        "illegal_content_legal_ground": None,
        "illegal_content_explanation": None,
        "incompatible_content_ground": f"Harassment policy {case['policy_version']}"
                                       + (f", clause {clause}" if clause else ""),
        "incompatible_content_explanation": explanation[:2000],
        "incompatible_content_illegal": "No",
        "category": _DSA_CATEGORY.get(case["category"], "STATEMENT_CATEGORY_SCOPE_OF_PLATFORM_SERVICE"),
        "category_specification": [case["category"]],
        "content_type": ["CONTENT_TYPE_TEXT"],
        "content_language": None,
        "content_date": (case.get("event_at") or case["received_at"]).date().isoformat(),
        "application_date": decided_at.date().isoformat(),
        "end_date_visibility_restriction": None,
        "end_date_account_restriction": end_account,
        "decision_facts": (f"A {case['event_type']} posted by the account in channel {case['channel_id']} on "
                           f"{case['platform']} was screened (risk {case['risk_score']:.2f}, category "
                           f"{case['category']})" + (f" and assessed against clause {clause}" if clause else "")
                           + (" and decided by a human moderator" if reviewed else "") + ". Actions taken: "
                           + ", ".join(sorted(k for k in kinds if k)) + "."),
        "source_type": "SOURCE_VOLUNTARY",
        "automated_detection": "Yes",
        "automated_decision": "AUTOMATED_DECISION_PARTIALLY" if reviewed else "AUTOMATED_DECISION_FULLY",
        "territorial_scope": None,
        "redress": {
            "internal_complaint": True,
            "how": f"POST /v1/appeals with case_id {case['case_id']} (the platform may file on the user's behalf)",
            "appeal_id": appeal_id,
            "false_positive": bool(case.get("false_positive")),
        },
        "created_at": decided_at.isoformat(),
    }
