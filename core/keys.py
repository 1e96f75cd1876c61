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


class Role(StrEnum):
    INGEST = "ingest"
    MODERATOR = "moderator"
    ADMIN = "admin"


@dataclass(frozen=True)
class KeyInfo:
    id: int
    name: str
    role: Role
    prefix: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """Returns (key, prefix)."""
    prefix = secrets.token_hex(4)
    return f"sk_{prefix}_{secrets.token_urlsafe(32)}", prefix


async def create_key(pool: asyncpg.Pool, *, name: str, role: Role) -> str:
    key, prefix = new_key()
    await pool.execute(
        "INSERT INTO api_keys (name, role, prefix, key_hash) VALUES ($1, $2, $3, $4)",
        name, role.value, prefix, hash_key(key),
    )
    return key


async def lookup_key(pool: asyncpg.Pool, key: str) -> KeyInfo | None:
    row = await pool.fetchrow(
        "SELECT id, name, role, prefix FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", hash_key(key)
    )
    return KeyInfo(row["id"], row["name"], Role(row["role"]), row["prefix"]) if row else None


async def revoke_key(pool: asyncpg.Pool, *, name: str) -> int:
    result = await pool.execute("UPDATE api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL", name)
    return int(result.split()[-1])


async def list_keys(pool: asyncpg.Pool) -> list[dict[str, object]]:
    rows = await pool.fetch("SELECT id, name, role, prefix, created_at, revoked_at FROM api_keys ORDER BY id")
    return [dict(r) for r in rows]
