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


async def migrate(url: str, *, app_role: str | None = None, app_password: str | None = None) -> list[str]:
    """Apply pending migrations; returns the names applied now (empty when up to date).

    With ``app_role``, then create that login role if missing and grant it what the API and workers
    need (``grant_app_role``), under the same lock.
    """
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
        if app_role:
            await grant_app_role(conn, app_role, password=app_password)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
        await conn.close()
    return applied


async def grant_app_role(conn: asyncpg.Connection, role: str, *, password: str | None = None) -> None:
    """Create the app's login role if missing (needs CREATEROLE) and grant it what the API and workers
    need: read and write on every table and sequence of the schema, except that ``audit_log`` is
    INSERT and SELECT only (no UPDATE, DELETE, TRUNCATE) and ``schema_migrations`` read-only. The role
    owns nothing, so it cannot disable triggers or alter tables. Idempotent; run after every migration.
    """
    if role == await conn.fetchval("SELECT current_user"):
        raise RuntimeError(f"the app role {role} is the owner running the migrations: use a dedicated role "
                           "(SAFETY_DATABASE__APP_ROLE), so the app cannot disable the audit triggers")
    ident = await conn.fetchval("SELECT quote_ident($1)", role)
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    pw = f" PASSWORD {await conn.fetchval('SELECT quote_literal($1)', password)}" if password else ""
    if not exists:
        try:
            await conn.execute(f"CREATE ROLE {ident} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE{pw}")
        except asyncpg.DuplicateObjectError:  # another database of the same cluster created it meanwhile
            pass
    elif pw:
        await conn.execute(f"ALTER ROLE {ident} LOGIN{pw}")
    if await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = $1", role):
        raise RuntimeError(f"the app role {role} is a superuser: use a dedicated role (SAFETY_DATABASE__APP_ROLE)")
    database = await conn.fetchval("SELECT quote_ident(current_database())")
    await conn.execute(f"""
        GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {ident};
        GRANT USAGE ON SCHEMA public TO {ident};
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {ident};
        GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {ident};
        REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_log FROM {ident};
        REVOKE UPDATE ON SEQUENCE audit_log_seq_seq FROM {ident};
        REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON schema_migrations FROM {ident};
    """)
