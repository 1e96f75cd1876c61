"""API keys: random, shown once, stored only as a SHA-256 hash with a role.

Keys carry 256 bits of randomness, so a fast hash is enough (no password stretching needed); the
visible prefix lets an operator tell keys apart without the secret.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

import asyncpg
import redis.asyncio as aioredis

from core.storage.audit import append_audit

# A bearer token's caller is named ``jwt:<sub>``; no API key may take a name in that namespace.
JWT_NAME_PREFIX = "jwt:"
# Redis counter bumped by every revocation and rotation: each API process drops its cached keys when it
# changes (checked on every request), so a revoked key stops working at once everywhere.
KEY_GENERATION = "safety:keys:generation"


class Role(StrEnum):
    INGEST = "ingest"
    MODERATOR = "moderator"
    ADMIN = "admin"


@dataclass(frozen=True)
class KeyInfo:
    """A verified caller. ``name`` is its integration (tenant) for ingest keys; ``platforms`` limits a
    moderator/admin key to those platforms' cases (None: every platform)."""

    id: int
    name: str
    role: Role
    prefix: str
    platforms: frozenset[str] | None = None

    def sees_platform(self, platform: str) -> bool:
        return self.platforms is None or platform in self.platforms

    @property
    def platform_list(self) -> list[str] | None:
        """The scope as a sorted list for SQL (``platform = ANY(...)``), None when unscoped."""
        return sorted(self.platforms) if self.platforms is not None else None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """Returns (key, prefix)."""
    prefix = secrets.token_hex(4)
    return f"sk_{prefix}_{secrets.token_urlsafe(32)}", prefix


async def create_key(pool: asyncpg.Pool, *, name: str, role: Role, actor: str = "cli",
                     platforms: list[str] | None = None) -> str:
    """Create a key and append ``key.create`` to the audit chain (name, role, prefix, platforms; never the
    secret). ``platforms`` scopes a moderator/admin key to those platforms (None: all)."""
    if name.startswith(JWT_NAME_PREFIX):
        raise ValueError(f"key names starting with '{JWT_NAME_PREFIX}' are reserved for bearer-token callers; "
                         "choose another name")
    key, prefix = new_key()
    scope = sorted(set(platforms)) if platforms is not None else None
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO api_keys (name, role, prefix, key_hash, platforms) VALUES ($1, $2, $3, $4, $5)",
            name, role.value, prefix, hash_key(key), scope,
        )
        await append_audit(conn, actor=actor, kind="key.create", case_id=None,
                           payload={"name": name, "role": role.value, "prefix": prefix, "platforms": scope})
    return key


def _key_info(row: asyncpg.Record) -> KeyInfo:
    platforms = row["platforms"]
    return KeyInfo(row["id"], row["name"], Role(row["role"]), row["prefix"],
                   frozenset(platforms) if platforms is not None else None)


async def lookup_key(pool: asyncpg.Pool, key: str) -> KeyInfo | None:
    row = await pool.fetchrow(
        "SELECT id, name, role, prefix, platforms FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        hash_key(key))
    return _key_info(row) if row else None


async def revoke_key(pool: asyncpg.Pool, *, name: str, actor: str = "cli") -> int:
    """Revoke every active key with this name; appends ``key.revoke`` when at least one was revoked.
    Call ``bump_key_generation`` afterwards so API processes stop accepting it at once."""
    async with pool.acquire() as conn, conn.transaction():
        prefixes = await conn.fetch(
            "UPDATE api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING prefix", name)
        if prefixes:
            await append_audit(conn, actor=actor, kind="key.revoke", case_id=None,
                               payload={"name": name, "prefixes": sorted(r["prefix"] for r in prefixes)})
    return len(prefixes)


class KeyNotFoundError(LookupError):
    pass


async def bump_key_generation(redis: aioredis.Redis) -> None:
    """Tell every API process that keys changed (after a revocation or rotation has committed)."""
    await redis.incr(KEY_GENERATION)


async def rotate_key(pool: asyncpg.Pool, *, name: str, actor: str = "cli") -> str:
    """Replace the active key(s) named ``name`` with one new key of the same role, atomically.

    The old keys are revoked in the same transaction; call ``bump_key_generation`` afterwards so API
    processes drop their cached copies at once (otherwise within SAFETY_API__KEY_CACHE_TTL_S).
    Raises ``KeyNotFoundError`` when no active key has this name.
    """
    key, prefix = new_key()
    async with pool.acquire() as conn, conn.transaction():
        old = await conn.fetch(
            "SELECT id, role, prefix, platforms FROM api_keys WHERE name = $1 AND revoked_at IS NULL ORDER BY id "
            "FOR UPDATE",
            name)
        if not old:
            raise KeyNotFoundError(f"no active key named '{name}'; create one with `safety keys create`")
        role = old[-1]["role"]  # the newest key's role (and scope), if several were created under one name
        platforms = old[-1]["platforms"]
        await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = ANY($1::bigint[])",
                           [r["id"] for r in old])
        await conn.execute("INSERT INTO api_keys (name, role, prefix, key_hash, platforms) "
                           "VALUES ($1, $2, $3, $4, $5)", name, role, prefix, hash_key(key), platforms)
        await append_audit(conn, actor=actor, kind="key.rotate", case_id=None,
                           payload={"name": name, "role": role, "prefix": prefix,
                                    "revoked_prefixes": [r["prefix"] for r in old]})
    return key


async def list_keys(pool: asyncpg.Pool) -> list[dict[str, object]]:
    rows = await pool.fetch("SELECT id, name, role, prefix, platforms, created_at, revoked_at FROM api_keys "
                            "ORDER BY id")
    return [dict(r) for r in rows]
