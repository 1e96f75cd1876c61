"""Tenancy: every route x every kind of identity, own case vs another tenant's.

Identities: the ingest key of the integration that sent the case (own), another integration's ingest key
(other), an unscoped moderator, a moderator scoped to discord, an unscoped admin, an admin scoped to
discord, a JWT moderator and no credentials. The cases live on twitch (sent by tenant A) and discord
(sent by tenant B). A case the caller may not see must answer exactly like a missing one: the same
status and the same body as for an id that does not exist.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import jwt
import pytest
import pytest_asyncio
from pydantic import SecretStr

from api.app import create_app
from core.settings import Settings
from core.storage.cases import record_case
from core.storage.keys import Role, create_key
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

JWT_SECRET = "tenancy-jwt-secret-0123456789abcdef012345"
IDENTITIES = ("own", "other", "moderator", "moderator_discord", "admin", "admin_discord", "jwt", "none")
INTERNAL = "LLMUnavailable: connection refused by http://10.0.0.7:8000/v1/chat/completions"


@dataclass
class World:
    headers: dict[str, dict[str, str]]
    tenant_a: str
    actioned: str  # twitch, sent by A, actioned: appealable
    review: str  # twitch, sent by A, waiting for review, with internal error text in its reasons
    discord_review: str  # discord, sent by B, waiting for review
    appeal: str  # an open appeal on ``actioned``


@pytest_asyncio.fixture(scope="module")
async def tenancy_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"jwt_secret": SecretStr(JWT_SECRET)}))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            yield c


async def _record(pool: asyncpg.Pool, *, platform: str, integration: str, decision: Decision,
                  reasons: list[str] | None = None) -> str:
    cid = str(uuid.uuid4())
    now = datetime.now(UTC)
    ev = ChatEvent(event_id=cid, platform=platform, channel_id="c1", author_id=f"au-{cid[:6]}", target_id="t1",
                   content="tenancy test message", message_id=f"m-{cid}", received_at=now, integration=integration)
    acted = decision == Decision.ACTION
    await record_case(pool, CaseRecord(
        case_id=cid, event=ev, path="full", screen=ScreenResult(risk_score=0.9),
        decision=DecideResult(decision=decision, category=HarmCategory.TARGETED_INSULT,
                              needs_review=decision == Decision.REVIEW, reasons=reasons or []),
        actions=[ActionOutcome(action=ActionType.DELETE, connector="discord", idempotency_key=f"{cid}:delete",
                               status="applied", detail="DELETE https://discord.internal:9000/channels/c1/m")]
        if acted else [],
        completed_at=now))
    return cid


@pytest_asyncio.fixture(scope="module")
async def world(pool: asyncpg.Pool, keys: dict[str, str], tenancy_api: httpx.AsyncClient) -> World:
    tag = uuid.uuid4().hex[:6]
    tenant_a, tenant_b = f"tenant-a-{tag}", f"tenant-b-{tag}"
    now = int(time.time())
    token = jwt.encode({"sub": "jwt-mod", "role": "moderator", "iat": now, "exp": now + 3600, "aud": "safety-api"},
                       JWT_SECRET, algorithm="HS256")
    headers = {
        "own": {"X-API-Key": await create_key(pool, name=tenant_a, role=Role.INGEST)},
        "other": {"X-API-Key": await create_key(pool, name=tenant_b, role=Role.INGEST)},
        "moderator": {"X-API-Key": keys["moderator"]},
        "moderator_discord": {"X-API-Key": await create_key(pool, name=f"mod-discord-{tag}", role=Role.MODERATOR,
                                                            platforms=["discord"])},
        "admin": {"X-API-Key": keys["admin"]},
        "admin_discord": {"X-API-Key": await create_key(pool, name=f"admin-discord-{tag}", role=Role.ADMIN,
                                                        platforms=["discord"])},
        "jwt": {"Authorization": f"Bearer {token}"},
        "none": {},
    }
    actioned = await _record(pool, platform="twitch", integration=tenant_a, decision=Decision.ACTION,
                             reasons=["risk 0.900 >= review threshold 0.50", "LLM: violates H1 (0.95): insult"])
    review = await _record(pool, platform="twitch", integration=tenant_a, decision=Decision.REVIEW,
                           reasons=["risk 0.900 >= review threshold 0.50",
                                    f"needs human review: LLM provider unavailable: {INTERNAL}"])
    discord_review = await _record(pool, platform="discord", integration=tenant_b, decision=Decision.REVIEW)
    filed = await tenancy_api.post("/v1/appeals", json={"case_id": actioned, "reason": "not me"},
                                   headers=headers["own"])
    assert filed.status_code == 201, filed.text
    return World(headers, tenant_a, actioned, review, discord_review, filed.json()["id"])


OK, FORBIDDEN, UNAUTH, HIDDEN = "ok", 403, 401, "hidden"  # HIDDEN: the very answer a missing id gets


def _expect(identity: str, table: dict[str, object]) -> object:
    if identity == "none":
        return table.get("none", UNAUTH)
    return table.get(identity, table.get("*", OK))


# route name -> (method, path template with {case}/{appeal}/{review}, body, expectations by identity).
# "*" is the default; identities not named get it. OK means a 2xx (or the listed codes).
ROUTES: dict[str, tuple[str, str, dict[str, object] | None, dict[str, object]]] = {
    "health": ("GET", "/health", None, {"none": OK}),  # no credentials needed, nothing about cases
    "event status": ("GET", "/v1/events/{case}/status", None,
                     {"other": HIDDEN, "moderator_discord": HIDDEN, "admin_discord": HIDDEN}),
    "file appeal": ("POST", "/v1/appeals", {"case_id": "{case}", "reason": "matrix"},
                    {"other": HIDDEN, "moderator_discord": HIDDEN, "admin_discord": HIDDEN, "*": (201, 409)}),
    "get appeal": ("GET", "/v1/appeals/{appeal}", None,
                   {"other": HIDDEN, "moderator_discord": HIDDEN, "admin_discord": HIDDEN}),
    "decide appeal": ("POST", "/v1/appeals/{appeal}/decision", {"outcome": "uphold", "note": "matrix"},
                      {"own": FORBIDDEN, "other": FORBIDDEN, "moderator_discord": HIDDEN, "admin_discord": HIDDEN,
                       "*": "skip"}),  # an allowed caller would close the appeal: test_roles covers that gate
    "list appeals": ("GET", "/v1/appeals", None, {"own": FORBIDDEN, "other": FORBIDDEN}),
    "list cases": ("GET", "/v1/cases", None, {"own": FORBIDDEN, "other": FORBIDDEN}),
    "get case": ("GET", "/v1/cases/{case}", None,
                 {"own": FORBIDDEN, "other": FORBIDDEN, "moderator_discord": HIDDEN, "admin_discord": HIDDEN}),
    "list reviews": ("GET", "/v1/reviews", None, {"own": FORBIDDEN, "other": FORBIDDEN}),
    "claim review": ("POST", "/v1/reviews/{review}/claim?minutes=1", None,
                     {"own": FORBIDDEN, "other": FORBIDDEN, "moderator_discord": HIDDEN, "admin_discord": HIDDEN,
                      "*": (200, 409)}),
    # No workflow waits for this recorded case: an allowed caller gets 409 and nothing changes.
    "decide review": ("POST", "/v1/reviews/{review}/decision", {"violation": False},
                      {"own": FORBIDDEN, "other": FORBIDDEN, "moderator_discord": HIDDEN, "admin_discord": HIDDEN,
                       "*": (409,)}),
    "user": ("GET", "/v1/users/twitch/u1", None,
             {"own": FORBIDDEN, "other": FORBIDDEN, "moderator_discord": FORBIDDEN, "admin_discord": FORBIDDEN}),
    "stats": ("GET", "/v1/stats?window=1h", None, {"own": FORBIDDEN, "other": FORBIDDEN}),
    "ingest": ("POST", "/v1/events/ingest", {"platform": "twitch", "channel_id": "c1", "author_id": "au",
                                             "content": "matrix hello"},
               {"own": (202,), "other": (202,), "admin": (202,), "admin_discord": (202,), "*": FORBIDDEN}),
    "ingest batch": ("POST", "/v1/events/ingest/batch",
                     {"events": [{"platform": "twitch", "channel_id": "c1", "author_id": "au", "content": "hi"}]},
                     {"own": (202,), "other": (202,), "admin": (202,), "admin_discord": (202,),
                      "*": FORBIDDEN}),
    "audit": ("GET", "/v1/audit", None,
              {"own": FORBIDDEN, "other": FORBIDDEN, "moderator": FORBIDDEN, "moderator_discord": FORBIDDEN,
               "jwt": FORBIDDEN, "admin_discord": FORBIDDEN}),
    "exports": ("GET", "/v1/exports/statements-of-reasons?from={since}&to={until}", None,
                {"own": FORBIDDEN, "other": FORBIDDEN, "moderator": FORBIDDEN, "moderator_discord": FORBIDDEN,
                 "jwt": FORBIDDEN}),
}


def _fill(template: str, w: World, *, case: str | None = None, appeal: str | None = None,
          review: str | None = None) -> str:
    now = datetime.now(UTC)
    return (template.replace("{case}", case or w.actioned).replace("{appeal}", appeal or w.appeal)
            .replace("{review}", review or w.review)
            .replace("{since}", (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
            .replace("{until}", (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")))


def _body(body: dict[str, object] | None, w: World, **ids: str) -> dict[str, object] | None:
    if body is None:
        return None
    return {k: _fill(v, w, **ids) if isinstance(v, str) else v for k, v in body.items()}


@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize("route", list(ROUTES))
async def test_tenant_matrix(tenancy_api: httpx.AsyncClient, world: World, route: str, identity: str) -> None:
    method, path, body, table = ROUTES[route]
    expected = _expect(identity, table)
    if expected == "skip":
        return
    h = world.headers[identity]
    r = await tenancy_api.request(method, _fill(path, world), json=_body(body, world), headers=h)
    if expected == HIDDEN:
        ghost = {"case": str(uuid.uuid4()), "appeal": str(uuid.uuid4()), "review": str(uuid.uuid4())}
        missing = await tenancy_api.request(method, _fill(path, world, **ghost), json=_body(body, world, **ghost),
                                            headers=h)
        assert missing.status_code == 404, missing.text
        real = {"case": world.actioned, "appeal": world.appeal, "review": world.review}
        want = missing.text
        for k, v in ghost.items():
            want = want.replace(v, real[k])
        assert (r.status_code, r.text) == (404, want), "another tenant's case must answer like a missing one"
    elif expected == OK:
        assert 200 <= r.status_code < 300, r.text
    elif isinstance(expected, tuple):
        assert r.status_code in expected, r.text
    else:
        assert r.status_code == expected, r.text
    if r.status_code >= 400:
        assert "tenancy test message" not in r.text and "targeted_insult" not in r.text


async def test_lists_show_only_the_keys_platforms(tenancy_api: httpx.AsyncClient, world: World) -> None:
    def ids(r: httpx.Response, field: str = "case_id") -> set[str]:
        assert r.status_code == 200, r.text
        return {item[field] for item in r.json()["items"]}

    for who in ("moderator", "moderator_discord"):
        h = world.headers[who]
        cases = ids(await tenancy_api.get("/v1/cases?limit=200", headers=h))
        reviews = ids(await tenancy_api.get("/v1/reviews?limit=200", headers=h))
        twitch_only = ids(await tenancy_api.get("/v1/cases?platform=twitch&limit=200", headers=h))
        appeals = ids(await tenancy_api.get(f"/v1/appeals?case_id={world.actioned}", headers=h), "id")
        if who == "moderator":
            assert {world.actioned, world.review, world.discord_review} <= cases
            assert {world.review, world.discord_review} <= reviews and world.actioned in twitch_only
            assert world.appeal in appeals
        else:
            assert world.discord_review in cases and not {world.actioned, world.review} & cases
            assert world.discord_review in reviews and world.review not in reviews
            assert twitch_only == set() and appeals == set()
    since, until = _fill("{since}", world), _fill("{until}", world)
    url = f"/v1/exports/statements-of-reasons?from={since}&to={until}"
    assert world.actioned in (await tenancy_api.get(url, headers=world.headers["admin"])).text
    assert world.actioned not in (await tenancy_api.get(url, headers=world.headers["admin_discord"])).text


async def test_scoped_stats_count_only_the_keys_platforms(tenancy_api: httpx.AsyncClient, world: World,
                                                           pool: asyncpg.Pool) -> None:
    everything = (await tenancy_api.get("/v1/stats?window=1h", headers=world.headers["moderator"])).json()
    scoped = (await tenancy_api.get("/v1/stats?window=1h", headers=world.headers["moderator_discord"])).json()
    since, until = (datetime.fromisoformat(scoped[k]) for k in ("since", "until"))
    discord = await pool.fetchval("SELECT count(*) FROM cases WHERE platform = 'discord' AND received_at >= $1 "
                                  "AND received_at < $2", since, until)
    pending = await pool.fetchval("SELECT count(*) FROM cases WHERE platform = 'discord' "
                                  "AND review_status = 'pending'")
    assert scoped["volume"] == discord < everything["volume"]
    assert scoped["review_backlog"]["pending"] == pending < everything["review_backlog"]["pending"]


async def test_similar_cases_of_other_platforms_are_hidden_from_a_scoped_key(
        tenancy_api: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    """The context's similar cases come from every platform's index; a scoped key sees only its own."""
    similar = [{"case_id": cid, "score": 0.9, "category": "targeted_insult", "decision": "action", "platform": p}
               for cid, p in ((world.actioned, "twitch"), (world.review, "twitch"))]
    await pool.execute("UPDATE cases SET context = $2 WHERE case_id = $1", world.discord_review,
                       {"similar_cases": similar})

    async def shown(who: str) -> set[str]:
        r = await tenancy_api.get(f"/v1/cases/{world.discord_review}", headers=world.headers[who])
        assert r.status_code == 200, r.text
        return {s["case_id"] for s in r.json()["context"]["similar_cases"]}

    assert await shown("moderator") == {world.actioned, world.review}
    assert await shown("moderator_discord") == set()


async def test_the_platform_sees_no_internal_error_text(tenancy_api: httpx.AsyncClient, world: World) -> None:
    own = await tenancy_api.get(f"/v1/events/{world.review}/status", headers=world.headers["own"])
    assert own.status_code == 200, own.text
    out = own.json()
    assert "needs human review: LLM provider unavailable" in out["outcome"]["reasons"]
    assert "10.0.0.7" not in own.text and "LLMUnavailable" not in own.text and out["temporal_ui_url"] is None
    acted = await tenancy_api.get(f"/v1/events/{world.actioned}/status", headers=world.headers["own"])
    assert "discord.internal" not in acted.text and acted.json()["outcome"]["actions"][0]["status"] == "applied"
    mod = await tenancy_api.get(f"/v1/cases/{world.review}", headers=world.headers["moderator"])
    assert INTERNAL in mod.text, "moderators keep the full detail"


async def test_a_queued_case_of_another_tenant_is_hidden(tenancy_api: httpx.AsyncClient, world: World) -> None:
    """Before its row exists the case is answered from Temporal: the tenant is the workflow's memo."""
    body = {"platform": "twitch", "channel_id": "c1", "author_id": "au", "content": "hello there",
            "message_id": f"m-{uuid.uuid4().hex}"}
    r = await tenancy_api.post("/v1/events/ingest", json=body, headers=world.headers["own"])
    assert r.status_code == 202, r.text
    eid = r.json()["event_id"]
    mine = await tenancy_api.get(f"/v1/events/{eid}/status", headers=world.headers["own"])
    assert mine.status_code == 200 and mine.json()["status"] in ("queued", "processing"), mine.text
    theirs = await tenancy_api.get(f"/v1/events/{eid}/status", headers=world.headers["other"])
    ghost = str(uuid.uuid4())
    missing = await tenancy_api.get(f"/v1/events/{ghost}/status", headers=world.headers["other"])
    assert (theirs.status_code, theirs.text) == (404, missing.text.replace(ghost, eid))
    scoped = await tenancy_api.get(f"/v1/events/{eid}/status", headers=world.headers["moderator_discord"])
    assert scoped.status_code == 404
