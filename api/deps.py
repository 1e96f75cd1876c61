"""Typed dependencies. The app's lifespan opens the clients; tests build the app with their own settings."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import asyncpg
import jwt
import redis.asyncio as aioredis
from fastapi import Depends, HTTPException, Query, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from core.codec import allowed_origins
from core.metrics import DEPENDENCY_DEGRADED_TOTAL
from core.settings import Settings
from core.storage import console as console_store
from core.storage import keys
from core.storage.keys import KeyInfo, Role
from domain.models import PolicyConfig

if TYPE_CHECKING:  # the model pulls in onnxruntime, which the API loads only in prescreen mode
    from core.screening.model import ScreeningModel

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    temporal: Client
    pool: asyncpg.Pool
    redis: aioredis.Redis
    policy: PolicyConfig
    # Loaded only in prescreen mode (SAFETY_API__PRESCREEN=true).
    model: ScreeningModel | None = None
    # Verified keys by hash, each with when it was verified and the key generation then (see
    # ``authenticate``): a revocation anywhere drops them at once; a PostgreSQL outage keeps them working
    # for SAFETY_API__KEY_CACHE_MAX_STALE_S at most.
    key_cache: dict[str, CachedKey] = field(default_factory=dict)


@dataclass(frozen=True)
class CachedKey:
    verified_at: float  # time.monotonic()
    generation: str
    info: KeyInfo


def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings_dep(services: ServicesDep) -> Settings:
    return services.settings


def get_temporal(services: ServicesDep) -> Client:
    return services.temporal


def get_pool(services: ServicesDep) -> asyncpg.Pool:
    return services.pool


# One piece of Services, for a route that needs only that.
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                               description="An API key from `safety keys create`; roles: ingest, moderator, admin.")


_bearer = HTTPBearer(auto_error=False, description="A moderator JWT (HS256 with SAFETY_JWT_SECRET; claims sub, "
                                                   "role=moderator, aud=SAFETY_JWT_AUDIENCE, iat, exp; lifetime "
                                                   "at most SAFETY_JWT_MAX_LIFETIME_S), accepted wherever X-API-Key "
                                                   "is. The caller is named `jwt:<sub>`.")
# Roles a bearer token may carry. Admin work needs an API key, so every admin action traces to a stored key.
_JWT_ROLES = frozenset({Role.MODERATOR})
JWT_KEY_ID = 0  # KeyInfo.id of a token identity (stored keys start at 1)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "APIKey, Bearer"})


def _from_token(settings: Settings, token: str) -> KeyInfo:
    """Verify an HS256 bearer token; the caller is identified by its ``sub`` claim (used as reviewer name)."""
    if settings.jwt_secret is None:
        raise _unauthorized("bearer tokens are not enabled on this server (SAFETY_JWT_SECRET is unset); "
                            "use an X-API-Key header")
    try:
        claims = jwt.decode(token, settings.jwt_secret.get_secret_value(), algorithms=["HS256"],
                            issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                            options={"require": ["exp", "iat", "sub", "role", "aud"]})
    except jwt.ExpiredSignatureError as err:
        raise _unauthorized("bearer token expired; get a new one") from err
    except jwt.InvalidAudienceError as err:
        raise _unauthorized(f"invalid bearer token: its audience is not '{settings.jwt_audience}' "
                            "(SAFETY_JWT_AUDIENCE); get a token issued for this API") from err
    except jwt.InvalidTokenError as err:
        raise _unauthorized(f"invalid bearer token: {err}") from err
    sub, role = claims.get("sub"), claims.get("role")
    if not isinstance(sub, str) or not sub.strip() or len(sub) > 128:
        raise _unauthorized("invalid bearer token: 'sub' must be a non-empty string of at most 128 characters")
    if not isinstance(role, str) or role not in {r.value for r in _JWT_ROLES}:
        shown = role if isinstance(role, str) else type(role).__name__
        raise _unauthorized(f"invalid bearer token: role '{shown}' cannot be granted by a token; "
                            "tokens carry the single string role 'moderator' (use an API key for other roles)")
    exp, iat = claims["exp"], claims["iat"]
    if not isinstance(exp, int | float) or not isinstance(iat, int | float) or exp - iat > settings.jwt_max_lifetime_s:
        raise _unauthorized(f"invalid bearer token: its lifetime (exp - iat) is over the "
                            f"{settings.jwt_max_lifetime_s}s this API accepts (SAFETY_JWT_MAX_LIFETIME_S); "
                            "issue shorter-lived tokens")
    # Namespaced, so a token's subject never acts as (or collides with) an API key of the same name.
    return KeyInfo(JWT_KEY_ID, f"{keys.JWT_NAME_PREFIX}{sub}", Role(role), "jwt")


async def authenticate(services: ServicesDep, api_key: Annotated[str | None, Security(_api_key_header)],
                       bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None) -> KeyInfo:
    if not api_key and bearer is not None:
        return _from_token(services.settings, bearer.credentials)
    if not api_key:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing X-API-Key header: create a key with "
                            "`safety keys create --name NAME --role ingest` (moderators may instead send "
                            "`Authorization: Bearer <token>`)", headers={"WWW-Authenticate": "APIKey"})
    digest = keys.hash_key(api_key)
    cached = services.key_cache.get(digest)
    now = time.monotonic()
    api = services.settings.api
    generation = await _key_generation(services)
    if (cached and generation is not None and cached.generation == generation
            and now - cached.verified_at < api.key_cache_ttl_s):
        return cached.info
    try:
        info = await keys.lookup_key(services.pool, api_key)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
        # Stale but known: keep accepting while the database is unreachable, for a bounded time only.
        if cached and now - cached.verified_at < api.key_cache_max_stale_s:
            DEPENDENCY_DEGRADED_TOTAL.labels("postgres").inc()
            return cached.info
        log.error("key lookup failed: %s", err)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "cannot verify API keys right now (database "
                            "unreachable); retry shortly", headers={"Retry-After": "5"}) from err
    if info is None:
        services.key_cache.pop(digest, None)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or revoked API key",
                            headers={"WWW-Authenticate": "APIKey"})
    if generation is not None:  # Redis down: no cache (every request is checked against the database)
        services.key_cache[digest] = CachedKey(now, generation, info)
    return info


async def _key_generation(services: Services) -> str | None:
    """The key generation (bumped by every revocation and rotation, see ``keys.bump_key_generation``);
    None when Redis cannot say, and then no cached key is trusted."""
    try:
        value = await services.redis.get(keys.KEY_GENERATION)
    except (aioredis.RedisError, OSError):
        DEPENDENCY_DEGRADED_TOTAL.labels("redis").inc()
        return None
    return value.decode() if isinstance(value, bytes) else str(value or "0")


def require(*roles: Role):  # noqa: ANN201 - returns a dependency
    allowed = set(roles) | {Role.ADMIN}

    async def check(services: ServicesDep, key: Annotated[KeyInfo, Depends(authenticate)]) -> KeyInfo:
        if key.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role '{key.role}' may not do this; it needs one of: "
                                + ", ".join(sorted(r.value for r in allowed)))
        await _rate_limit(services, key)
        return key

    return check


async def charge(services: ServicesDep, key: KeyInfo, units: int) -> None:
    """Count ``units`` more against the key's rate limit (a batch request costs one unit per event; the
    request itself was counted by ``require``). 429 when that goes over the limit."""
    if units > 0:
        await _rate_limit(services, key, units)


async def _rate_limit(services: ServicesDep, key: KeyInfo, units: int = 1) -> None:
    """Fixed one-minute window per key in Redis. Redis down: fail open (documented), count it."""
    limit = services.settings.api.rate_limit_per_minute
    window = int(time.time() // 60)
    who = key.name if key.id == JWT_KEY_ID else str(key.id)  # a token's name is already jwt:<sub>
    rkey = f"ratelimit:{who}:{window}"
    try:
        pipe = services.redis.pipeline()
        pipe.incrby(rkey, units)
        pipe.expire(rkey, 120)
        count, _ = await pipe.execute()
    except (aioredis.RedisError, OSError):
        DEPENDENCY_DEGRADED_TOTAL.labels("redis").inc()
        return
    if int(count) > limit:
        retry = 60 - int(time.time()) % 60
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            f"rate limit of {limit} requests per minute for key '{key.name}' reached (a batch "
                            f"counts one per event); retry in {retry}s", headers={"Retry-After": str(retry)})


# Caller identities by role (admins pass every check), and the paging parameters of the list routes.
Moderator = Annotated[KeyInfo, Depends(require(Role.MODERATOR))]
Admin = Annotated[KeyInfo, Depends(require(Role.ADMIN))]
Ingester = Annotated[KeyInfo, Depends(require(Role.INGEST))]
Limit = Annotated[int, Query(ge=1, le=200, description="Page size, 1..200.")]
Cursor = Annotated[str | None, Query(max_length=512, description="The next_cursor of the previous page.")]


# --- Who may read decrypted workflow payloads (the remote codec: api/routes/codec.py) ---------------------
# The console's session cookie (set by api/routes/console.py: HttpOnly, SameSite=Strict, Path=/console).
CONSOLE_COOKIE = "safety_console"
_CODEC_ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace, X-API-Key"


def codec_cors_headers(request: Request, settings: Settings) -> dict[str, str]:
    """CORS for the codec endpoints: only the Web UI's configured origins get an answer, with credentials
    (the console cookie rides along on a credentialed fetch). Any other origin gets no CORS headers, so a
    browser there cannot read a decrypted payload."""
    origin = request.headers.get("origin")
    if not origin or origin not in allowed_origins(settings):
        return {}
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true",
            "Access-Control-Allow-Methods": "POST, OPTIONS", "Access-Control-Allow-Headers": _CODEC_ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600", "Vary": "Origin"}


async def _console_session_key(services: Services, request: Request) -> KeyInfo | None:
    """The moderator or admin signed in to the console with this request's cookie, or None."""
    token = request.cookies.get(CONSOLE_COOKIE)
    if not token or len(token) > 128:
        return None
    try:
        row = await console_store.live_session(services.pool, token_hash=console_store.session_token_hash(token))
    except (OSError, asyncpg.PostgresError) as err:
        log.error("console session lookup failed: %s", err)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "cannot verify the console session right now "
                            "(database unreachable); retry shortly", headers={"Retry-After": "5"}) from err
    if row is None:
        return None
    key = KeyInfo(row["key_id"], row["moderator"], Role(row["role"]), row["prefix"])
    return key if key.role in (Role.MODERATOR, Role.ADMIN) else None


async def payload_reader(request: Request, services: ServicesDep,
                         api_key: Annotated[str | None, Security(_api_key_header)],
                         bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None) -> KeyInfo:
    """An operator who may see decrypted workflow payloads (moderators and admins; the same people who read
    message content in the console): their key (``X-API-Key``, or ``Authorization: Bearer sk_...`` as
    ``temporal --codec-auth`` sends it), a moderator token, or their console session cookie (which the
    browser sends only to ``/console/...``: the Web UI's codec endpoint is ``/console/codec``). A cookie
    request from an origin other than the Web UI's is refused. Refusals carry the CORS headers, so the Web
    UI can show why."""
    cors = codec_cors_headers(request, services.settings)
    try:
        if not api_key and bearer is not None and bearer.credentials.startswith("sk_"):
            api_key, bearer = bearer.credentials, None  # `temporal --codec-auth "Bearer sk_..."`
        if not api_key and bearer is None:
            key = await _console_session_key(services, request)
            if key is None:
                raise HTTPException(
                    status.HTTP_401_UNAUTHORIZED,
                    "the codec endpoint decrypts workflow payloads for operators only: sign in to /console as a "
                    "moderator or admin in this browser (the Web UI then sends the session cookie to "
                    "/console/codec when 'Include cross-origin credentials' is on), or send a moderator or admin "
                    "key (X-API-Key, or `--codec-auth 'Bearer <key>'` on the temporal CLI) or a moderator token "
                    "(Authorization: Bearer <jwt>)", headers={"WWW-Authenticate": "APIKey, Bearer"})
            if request.headers.get("origin") and not cors:
                raise HTTPException(status.HTTP_403_FORBIDDEN,
                                    f"origin {request.headers['origin'][:100]!r} may not read payloads with the "
                                    "console session; only the Temporal Web UI's origin "
                                    "(SAFETY_TEMPORAL__UI_PUBLIC_URL, SAFETY_CODEC__CORS_ORIGINS) may")
        else:
            key = await authenticate(services, api_key, bearer)
            if key.role not in (Role.MODERATOR, Role.ADMIN):
                raise HTTPException(status.HTTP_403_FORBIDDEN,
                                    f"role '{key.role}' may not read workflow payloads; use a moderator or admin "
                                    "key or token, or sign in to the console")
        await _rate_limit(services, key)
    except HTTPException as err:
        raise HTTPException(err.status_code, err.detail, headers={**(err.headers or {}), **cors}) from err
    return key


PayloadReader = Annotated[KeyInfo, Depends(payload_reader)]
