"""PostgreSQL: connection pool, database creation and schema migrations.

Migrations are the numbered ``core/migrations/*.sql`` files, applied once each in order under an
advisory lock, so several processes starting together (API and workers) cannot race.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import asyncpg

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 7_240_001


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        url, min_size=min_size, max_size=max_size, init=_init_connection, command_timeout=30
    )
    assert pool is not None
    return pool


async def ensure_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist (connects to ``postgres`` to do so)."""
    parsed = urlparse(url)
    name = parsed.path.lstrip("/") or "postgres"
    admin_url = urlunparse(parsed._replace(path="/postgres"))
    conn = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
            log.info("created database", extra={"database": name})
    finally:
        await conn.close()


async def migrate(url: str) -> list[str]:
    """Apply pending migrations; returns the names applied now (empty when up to date)."""
    conn = await asyncpg.connect(url)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
            if path.name in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", path.name)
            applied.append(path.name)
            log.info("applied migration", extra={"migration": path.name})
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
        await conn.close()
    return applied
