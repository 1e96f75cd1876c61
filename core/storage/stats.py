"""Aggregates over cases for the stats API (and the false-positive gauge)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from core.metrics import FALSE_POSITIVE_RATE

WINDOWS: dict[str, timedelta] = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7),
                                 "30d": timedelta(days=30)}


def _in_scope(param: int, column: str = "platform") -> str:
    """SQL: the row's platform is in the text[] parameter ``$param``, or that parameter is NULL (all)."""
    return f"(${param}::text[] IS NULL OR {column} = ANY(${param}::text[]))"


async def compute_stats(pool: asyncpg.Pool, *, window: str, sla_minutes: int, now: datetime | None = None,
                        platforms: list[str] | None = None) -> dict[str, Any]:
    """Aggregates over cases received in the window, of ``platforms`` only when given (a platform-scoped
    key). Also sets the 7-day false-positive gauge (always over every platform)."""
    until = now or datetime.now(UTC)
    since = until - WINDOWS[window]
    async with pool.acquire() as conn:
        decisions = await conn.fetch(
            "SELECT category, decision, count(*) AS n FROM cases WHERE received_at >= $1 AND received_at < $2 "
            f"AND {_in_scope(3)} GROUP BY category, decision", since, until, platforms)
        actions = await conn.fetch(
            f"""
            SELECT a->>'action' AS action, count(*) AS n
            FROM cases c, jsonb_array_elements(c.actions) a
            WHERE c.received_at >= $1 AND c.received_at < $2 AND a->>'status' IN ('applied', 'duplicate')
              AND {_in_scope(3, "c.platform")}
            GROUP BY 1
            """, since, until, platforms)
        latency = await conn.fetch(
            f"""
            SELECT s.key AS stage, count(*) AS n,
                   percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY s.value::double precision) AS p
            FROM cases c, jsonb_each_text(c.stage_ms) s
            WHERE c.received_at >= $1 AND c.received_at < $2 AND {_in_scope(3, "c.platform")}
            GROUP BY s.key ORDER BY s.key
            """, since, until, platforms)
        backlog = await conn.fetch(
            f"""
            SELECT coalesce(review_queue, 'standard') AS queue, count(*) AS n,
                   count(*) FILTER (WHERE review_queue = 'senior'
                                    OR completed_at < now() - make_interval(mins => $1)) AS breached,
                   min(completed_at) AS oldest
            FROM cases WHERE review_status = 'pending' AND {_in_scope(2)} GROUP BY 1
            """, sla_minutes, platforms)
        appeals = await conn.fetch(
            "SELECT a.status, count(*) AS n FROM appeals a JOIN cases c ON c.case_id = a.case_id "
            f"WHERE a.created_at >= $1 AND a.created_at < $2 AND {_in_scope(3, 'c.platform')} GROUP BY a.status",
            since, until, platforms)
        fp = await conn.fetchrow(
            f"""
            SELECT count(*) FILTER (WHERE decision = 'action' OR false_positive) AS actioned,
                   count(*) FILTER (WHERE false_positive) AS overturned
            FROM cases WHERE received_at >= $1 AND received_at < $2 AND {_in_scope(3)}
            """, since, until, platforms)
        llm = await conn.fetchrow(
            f"""
            SELECT count(*) AS calls,
                   count(*) FILTER (WHERE reasoning->>'status' <> 'ok') AS errors,
                   count(*) FILTER (WHERE reasoning->>'status' = 'timeout') AS timeouts
            FROM cases WHERE reasoning IS NOT NULL AND received_at >= $1 AND received_at < $2 AND {_in_scope(3)}
            """, since, until, platforms)
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
