"""Keys and tokens against the real PostgreSQL and Redis: revocation reaches every API process at once,
a cached key works only for a bounded time while PostgreSQL is down, and a database outage answers 503
with Retry-After (never 500); JWT subjects are namespaced; malformed cursors are 4xx."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import pytest_asyncio
from typer.testing import CliRunner

from api.app import create_app
from api.deps import CachedKey, Services
from core.settings import Settings, get_settings
from core.storage.keys import Role, create_key
from ops.embedded import free_port


@contextlib.asynccontextmanager
async def _api_process(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """One API process: its own app, key cache, pool and Redis client."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            yield c, app.state.services


@pytest_asyncio.fixture
async def two_processes(settings: Settings) -> AsyncIterator[list[httpx.AsyncClient]]:
    async with _api_process(settings) as (a, _), _api_process(settings) as (b, _):
        yield [a, b]


def _cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    from ops.cli.main import app as cli

    monkeypatch.setenv("SAFETY_DATABASE__URL", settings.database_url)
    monkeypatch.setenv("SAFETY_REDIS__URL", settings.redis_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, list(args))
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("command", ["revoke", "rotate"])
async def test_revocation_takes_effect_at_once_on_every_api_process(
        two_processes: list[httpx.AsyncClient], pool: asyncpg.Pool, settings: Settings,
        monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    name = f"revoked-{uuid.uuid4().hex[:8]}"
    h = {"X-API-Key": await create_key(pool, name=name, role=Role.MODERATOR)}
    for api in two_processes:  # both processes verified (and cached) the key
        assert (await api.get("/v1/reviews", headers=h)).status_code == 200
    await asyncio.to_thread(_cli, settings, monkeypatch, "keys", command, "--name", name)
    for api in two_processes:
        r = await api.get("/v1/reviews", headers=h)
        assert r.status_code == 401, f"the {command}d key still works on a process that cached it: {r.text}"


async def test_a_cached_key_works_only_for_a_bounded_time_while_postgres_is_down(
        settings: Settings, keys: dict[str, str]) -> None:
    bound = settings.api.key_cache_max_stale_s
    async with _api_process(settings) as (api, services):
        mod, admin = {"X-API-Key": keys["moderator"]}, {"X-API-Key": keys["admin"]}
        assert (await api.get("/v1/reviews", headers=mod)).status_code == 200
        assert (await api.get("/v1/reviews", headers=admin)).status_code == 200
        live = services.pool
        # A real PostgreSQL address where nothing listens: every query fails to connect.
        services.pool = await asyncpg.create_pool(f"postgresql://postgres@127.0.0.1:{free_port()}/safety",
                                                  min_size=0, max_size=1)
        try:
            def age(headers: dict[str, str], seconds: float) -> None:
                from core.storage.keys import hash_key

                digest = hash_key(headers["X-API-Key"])
                entry = services.key_cache[digest]
                services.key_cache[digest] = CachedKey(time.monotonic() - seconds, entry.generation, entry.info)

            # Audit and stats: 503 with Retry-After, not 500 (the keys themselves are still cached).
            for path, h in (("/v1/stats?window=1h", mod), ("/v1/audit", admin), ("/v1/cases", mod),
                            ("/v1/reviews", mod)):
                r = await api.get(path, headers=h)
                assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0, (path, r.status_code, r.text)
            age(mod, settings.api.key_cache_ttl_s + 1)  # past the cache's ttl: verified again, and that fails
            r = await api.get("/v1/stats?window=1h", headers=mod)
            assert r.status_code == 503 and "database" in r.json()["detail"], r.text  # key still accepted
            age(mod, bound + 1)  # past the bound: the key itself is refused
            r = await api.get("/v1/reviews", headers=mod)
            assert r.status_code == 503 and "cannot verify API keys" in r.json()["detail"], r.text
            assert int(r.headers["Retry-After"]) > 0
        finally:
            await services.pool.close()
            services.pool = live


def _cursor(*values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


@pytest.mark.parametrize("path", ["/v1/cases", "/v1/reviews", "/v1/appeals", "/v1/audit"])
@pytest.mark.parametrize("cursor", [
    "not-base64-!!", _cursor("cases"), _cursor("reviews"), _cursor("appeals"), _cursor("audit"),
    _cursor("cases", "2026-01-01T00:00:00+00:00", "x", "extra"), _cursor("cases", {"a": 1}, "x"),
    _cursor("reviews", ["2026"], None), _cursor("appeals", "2026-01-01T00:00:00", True), _cursor("audit", 1.5),
    _cursor("audit", "7"), _cursor("audit", 10**30), _cursor("cases", "not a date", "x"), _cursor(None),
    base64.urlsafe_b64encode(b"[" * 5000).decode(),
], ids=lambda c: c[:24])
async def test_malformed_cursors_are_4xx_never_500(api: httpx.AsyncClient, keys: dict[str, str], path: str,
                                                   cursor: str) -> None:
    r = await api.get(path, params={"cursor": cursor[:512]}, headers={"X-API-Key": keys["admin"]})
    assert 400 <= r.status_code < 500, (r.status_code, r.text)


async def test_key_names_cannot_take_the_token_namespace(pool: asyncpg.Pool) -> None:
    with pytest.raises(ValueError, match="reserved"):
        await create_key(pool, name="jwt:alice", role=Role.MODERATOR)


def _cli_result(settings: Settings, monkeypatch: pytest.MonkeyPatch, *args: str):  # noqa: ANN202
    from ops.cli.main import app as cli

    monkeypatch.setenv("SAFETY_DATABASE__URL", settings.database_url)
    monkeypatch.setenv("SAFETY_REDIS__URL", settings.redis_url)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(cli, list(args))
    finally:
        get_settings.cache_clear()


async def test_cli_creates_platform_scoped_keys(api: httpx.AsyncClient, pool: asyncpg.Pool, settings: Settings,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"eu-mods-{uuid.uuid4().hex[:6]}"
    made = await asyncio.to_thread(_cli_result, settings, monkeypatch, "keys", "create", "--name", name,
                                   "--role", "moderator", "--platforms", "twitch,discord")
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    row = await pool.fetchrow("SELECT role, platforms FROM api_keys WHERE name = $1", name)
    assert (row["role"], row["platforms"]) == ("moderator", ["discord", "twitch"])
    assert (await api.get("/v1/users/twitch/someone", headers={"X-API-Key": key})).status_code == 200
    assert (await api.get("/v1/users/kick/someone", headers={"X-API-Key": key})).status_code == 403
    monkeypatch.setenv("COLUMNS", "400")  # rich wraps the table to the terminal width
    listed = await asyncio.to_thread(_cli_result, settings, monkeypatch, "keys", "list")
    assert listed.exit_code == 0 and "discord,twitch" in listed.stdout
    for bad in (["--role", "ingest", "--platforms", "discord"], ["--role", "moderator", "--platforms", "Discord!"],
                ["--role", "moderator", "--platforms", ","]):
        refused = await asyncio.to_thread(_cli_result, settings, monkeypatch, "keys", "create", "--name", name, *bad)
        assert refused.exit_code == 2 and "--platforms" in refused.output, refused.output
    reserved = await asyncio.to_thread(_cli_result, settings, monkeypatch, "keys", "create", "--name", "jwt:eve")
    assert reserved.exit_code == 2 and "reserved" in reserved.output


async def test_a_rotated_key_keeps_its_platform_scope(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    from core.storage.keys import rotate_key

    name = f"scoped-rot-{uuid.uuid4().hex[:6]}"
    await create_key(pool, name=name, role=Role.MODERATOR, platforms=["discord"])
    new = await rotate_key(pool, name=name)
    assert (await api.get("/v1/users/twitch/someone", headers={"X-API-Key": new})).status_code == 403
    assert (await api.get("/v1/users/discord/someone", headers={"X-API-Key": new})).status_code == 200
