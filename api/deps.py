"""Typed dependencies. The app's lifespan opens the clients; tests build the app with their own settings."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Annotated

import asyncpg
import redis.asyncio as aioredis
from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader
from temporalio.client import Client

from core import keys
from core.keys import KeyInfo, Role
from core.metrics import DEPENDENCY_DEGRADED_TOTAL
from core.settings import Settings
from domain.models import PolicyConfig

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    temporal: Client
    pool: asyncpg.Pool
    redis: aioredis.Redis
    policy: PolicyConfig
    # Verified keys, so a PostgreSQL blip does not stop ingest for keys seen in the last minute.
    key_cache: dict[str, tuple[float, KeyInfo]] = field(default_factory=dict)
    key_cache_ttl_s: float = 60.0


def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings_dep(services: ServicesDep) -> Settings:
    return services.settings


def get_temporal(services: ServicesDep) -> Client:
    return services.temporal


def get_pool(services: ServicesDep) -> asyncpg.Pool:
    return services.pool


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                               description="An API key from `safety keys create`; roles: ingest, moderator, admin.")


async def authenticate(services: ServicesDep, api_key: Annotated[str | None, Security(_api_key_header)]) -> KeyInfo:
    if not api_key:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing X-API-Key header: create a key with "
                            "`safety keys create --name NAME --role ingest`", headers={"WWW-Authenticate": "APIKey"})
    digest = keys.hash_key(api_key)
    cached = services.key_cache.get(digest)
    now = time.monotonic()
    if cached and now - cached[0] < services.key_cache_ttl_s:
        return cached[1]
    try:
        info = await keys.lookup_key(services.pool, api_key)
    except (OSError, asyncpg.PostgresError) as err:
        if cached:  # stale but known: keep accepting while the database is unreachable
            DEPENDENCY_DEGRADED_TOTAL.labels("postgres").inc()
            return cached[1]
        log.error("key lookup failed: %s", err)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "cannot verify API keys right now (database "
                            "unreachable); retry shortly", headers={"Retry-After": "5"}) from err
    if info is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or revoked API key",
                            headers={"WWW-Authenticate": "APIKey"})
    services.key_cache[digest] = (now, info)
    return info


def require(*roles: Role):  # noqa: ANN201 - returns a dependency
    allowed = set(roles) | {Role.ADMIN}

    async def check(services: ServicesDep, key: Annotated[KeyInfo, Depends(authenticate)]) -> KeyInfo:
        if key.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role '{key.role}' may not do this; it needs one of: "
                                + ", ".join(sorted(r.value for r in allowed)))
        await _rate_limit(services, key)
        return key

    return check


async def _rate_limit(services: ServicesDep, key: KeyInfo) -> None:
    """Fixed one-minute window per key in Redis. Redis down: fail open (documented), count it."""
    limit = services.settings.api.rate_limit_per_minute
    window = int(time.time() // 60)
    rkey = f"ratelimit:{key.id}:{window}"
    try:
        pipe = services.redis.pipeline()
        pipe.incr(rkey)
        pipe.expire(rkey, 120)
        count, _ = await pipe.execute()
    except (aioredis.RedisError, OSError):
        DEPENDENCY_DEGRADED_TOTAL.labels("redis").inc()
        return
    if int(count) > limit:
        retry = 60 - int(time.time()) % 60
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            f"rate limit of {limit} requests per minute for key '{key.name}' reached; "
                            f"retry in {retry}s", headers={"Retry-After": str(retry)})
