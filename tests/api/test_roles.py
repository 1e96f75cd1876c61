"""Who may call what: every reporting route x every identity, from one table; JWT bearer tokens; key rotation."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import httpx
import jwt
import pytest
import pytest_asyncio
from pydantic import SecretStr
from typer.testing import CliRunner

from api.app import create_app
from core.settings import Settings, get_settings
from core.storage.cases import record_case
from core.storage.keys import Role, create_key, rotate_key
from domain.models import (
    ActionOutcome,
    ActionType,
    CaseRecord,
    ChatEvent,
    DecideResult,
    Decision,
    HarmCategory,
    ScreenResult,
)

JWT_SECRET = "test-jwt-secret-0123456789abcdef0123456789"
MOD, INGEST, ADMIN = Role.MODERATOR, Role.INGEST, Role.ADMIN
IDENTITIES = ("ingest", "moderator", "admin", "none", "bad_key", "jwt_moderator")
CASE_ID = f"roles-{uuid.uuid4().hex}"

# (method, path, json body, roles allowed besides admin, status when allowed).
# Mutations aim at ids that do not exist, so an allowed caller gets a deterministic 404 and nothing changes.
ROUTES: list[tuple[str, str, dict[str, object] | None, set[Role], int]] = [
    ("GET", "/v1/reviews", None, {MOD}, 200),
    ("POST", "/v1/reviews/no-such-case/claim", None, {MOD}, 404),
    ("POST", "/v1/reviews/no-such-case/decision", {"violation": False}, {MOD}, 404),
    ("POST", "/v1/appeals", {"case_id": "no-such-case", "reason": "not me"}, {INGEST, MOD}, 404),
    ("GET", "/v1/appeals", None, {MOD}, 200),
    ("GET", "/v1/appeals/no-such-appeal", None, {INGEST, MOD}, 404),
    ("POST", "/v1/appeals/no-such-appeal/decision", {"outcome": "uphold"}, {MOD}, 404),
    ("GET", "/v1/cases", None, {MOD}, 200),
    ("GET", f"/v1/cases/{CASE_ID}", None, {MOD}, 200),
    ("GET", "/v1/users/twitch/roles-user", None, {MOD}, 200),
    ("GET", "/v1/stats?window=1h", None, {MOD}, 200),
    ("GET", "/v1/audit", None, set(), 200),
    ("GET", "/v1/exports/statements-of-reasons?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z", None, set(), 200),
]


def _token(sub: str = "jwt-mod", role: object = "moderator", exp_in: float = 300, secret: str = JWT_SECRET,
           **claims: object) -> str:
    now = int(time.time())
    body: dict[str, object] = {"sub": sub, "role": role, "iat": now, "exp": now + int(exp_in), "aud": "safety-api"}
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, secret, algorithm="HS256")


def _expected(identity: str, allowed: set[Role], ok: int) -> int:
    if identity in ("none", "bad_key"):
        return 401
    role = Role.MODERATOR if identity == "jwt_moderator" else Role(identity)
    return ok if role in allowed | {Role.ADMIN} else 403


@pytest_asyncio.fixture(scope="module")
async def jwt_api(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"jwt_secret": SecretStr(JWT_SECRET)}))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            yield c


@pytest_asyncio.fixture(scope="module")
async def one_case(pool: asyncpg.Pool) -> str:
    now = datetime.now(UTC)
    ev = ChatEvent(event_id=CASE_ID, platform="twitch", channel_id="c", author_id="a", target_id="t",
                   content="you idiot", received_at=now)
    await record_case(pool, CaseRecord(
        case_id=CASE_ID, event=ev, path="full", screen=ScreenResult(risk_score=0.9),
        decision=DecideResult(decision=Decision.ACTION, category=HarmCategory.TARGETED_INSULT),
        actions=[ActionOutcome(action=ActionType.DELETE, connector="log", idempotency_key=f"{CASE_ID}:delete",
                               status="applied")], completed_at=now))
    return CASE_ID


def _headers(identity: str, keys: dict[str, str]) -> dict[str, str]:
    if identity == "none":
        return {}
    if identity == "bad_key":
        return {"X-API-Key": "sk_00000000_not-a-real-key"}
    if identity == "jwt_moderator":
        return {"Authorization": f"Bearer {_token()}"}
    return {"X-API-Key": keys[identity]}


@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize(("method", "path", "body", "allowed", "ok"), ROUTES,
                         ids=[f"{m} {p.split('?')[0]}" for m, p, *_ in ROUTES])
async def test_role_matrix(jwt_api: httpx.AsyncClient, keys: dict[str, str], one_case: str, identity: str,
                           method: str, path: str, body: dict[str, object] | None, allowed: set[Role],
                           ok: int) -> None:
    r = await jwt_api.request(method, path, json=body, headers=_headers(identity, keys))
    assert r.status_code == _expected(identity, allowed, ok), r.text


async def test_ingest_key_cannot_read_cases(api: httpx.AsyncClient, keys: dict[str, str], one_case: str) -> None:
    r = await api.get(f"/v1/cases/{one_case}", headers={"X-API-Key": keys["ingest"]})
    assert r.status_code == 403 and "moderator" in r.json()["detail"]
    assert "you idiot" not in r.text


@pytest.mark.parametrize(("token", "why"), [
    (_token(exp_in=-60), "expired"),
    (_token(secret="another-secret-0123456789abcdef0123456789"), "invalid"),
    (_token(role="admin"), "role 'admin'"),
    ("not.a.jwt", "invalid"),
    # A role that is a list (or any non-string) was a 500.
    (_token(role=["moderator", "admin"]), "role 'list'"),
    (_token(role={"r": "moderator"}), "role 'dict'"),
    # Audience checked: another service's token, or none, is refused.
    (_token(aud="another-service"), "audience"),
    (_token(aud=None), "aud"),
    # Lifetime capped (exp - iat <= SAFETY_JWT_MAX_LIFETIME_S, 12 h by default) and iat required.
    (_token(exp_in=30 * 24 * 3600), "lifetime"),
    (_token(iat=None), "iat"),
    (_token(iat="yesterday"), "invalid"),
])
async def test_bad_bearer_tokens_are_401(jwt_api: httpx.AsyncClient, token: str, why: str) -> None:
    r = await jwt_api.get("/v1/reviews", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and why in r.json()["detail"], r.text


async def test_bearer_refused_when_jwt_is_not_configured(api: httpx.AsyncClient) -> None:
    r = await api.get("/v1/reviews", headers={"Authorization": f"Bearer {_token()}"})
    assert r.status_code == 401 and "SAFETY_JWT_SECRET" in r.json()["detail"]


async def test_rotated_key_replaces_the_old_one(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    name = f"rot-{uuid.uuid4().hex[:8]}"
    old = await create_key(pool, name=name, role=Role.MODERATOR)
    new = await rotate_key(pool, name=name)
    assert new != old
    assert (await api.get("/v1/reviews", headers={"X-API-Key": old})).status_code == 401
    assert (await api.get("/v1/reviews", headers={"X-API-Key": new})).status_code == 200
    kinds = [r["kind"] for r in await pool.fetch(
        "SELECT kind FROM audit_log WHERE payload->>'name' = $1 ORDER BY seq", name)]
    assert kinds == ["key.create", "key.rotate"]


async def test_cli_rotate_prints_only_the_new_key(settings: Settings, pool: asyncpg.Pool,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from ops.cli.main import app as cli

    name = f"rot-cli-{uuid.uuid4().hex[:8]}"
    old = await create_key(pool, name=name, role=Role.INGEST)
    monkeypatch.setenv("SAFETY_DATABASE__URL", settings.database_url)
    get_settings.cache_clear()
    try:
        result = await asyncio.to_thread(CliRunner().invoke, cli, ["keys", "rotate", "--name", name])
        missing = await asyncio.to_thread(CliRunner().invoke, cli, ["keys", "rotate", "--name", name + "-nope"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    new = result.stdout.strip()
    assert new.startswith("sk_") and "\n" not in new
    rows = await pool.fetch("SELECT role, revoked_at IS NULL AS active FROM api_keys WHERE name = $1 ORDER BY id", name)
    assert [(r["role"], r["active"]) for r in rows] == [("ingest", False), ("ingest", True)]
    assert old != new
    assert missing.exit_code == 1


async def test_token_subject_is_the_moderator_name(jwt_api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    cid = f"roles-claim-{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    ev = ChatEvent(event_id=cid, platform="twitch", channel_id="c", author_id="a", content="hm", received_at=now)
    await record_case(pool, CaseRecord(case_id=cid, event=ev, path="full", screen=ScreenResult(risk_score=0.6),
                                       decision=DecideResult(decision=Decision.REVIEW, category=HarmCategory.THREAT,
                                                             needs_review=True), completed_at=now))
    await pool.execute("UPDATE cases SET review_status = 'pending', review_queue = 'standard' WHERE case_id = $1", cid)
    r = await jwt_api.post(f"/v1/reviews/{cid}/claim", headers={"Authorization": f"Bearer {_token(sub='alice')}"})
    # Namespaced: a token's subject is `jwt:<sub>`, never the name of an API key.
    assert r.status_code == 200 and r.json()["moderator"] == "jwt:alice", r.text
