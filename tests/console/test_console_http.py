"""The console over plain HTTP against the in-process app (real PostgreSQL, Redis, Temporal): sign-in
rules, sessions, CSRF, and that bad input of every kind answers a 4xx page that says what to do."""

from __future__ import annotations

import re
import time
import uuid
from contextlib import aclosing

import asyncpg
import httpx
import pytest

from core.settings import Settings
from core.storage.keys import Role, create_key

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _token(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


async def _sign_in(api: httpx.AsyncClient, key: str) -> tuple[httpx.AsyncClient, str]:
    """A separate cookie jar per moderator; returns the client and the session's CSRF token."""
    client = httpx.AsyncClient(transport=api._transport, base_url="http://test")  # noqa: SLF001
    page = await client.get("/console/login")
    r = await client.post("/console/login", data={"csrf_token": _token(page.text), "api_key": key,
                                                   "next": "/console/queue"})
    assert r.status_code == 303 and r.headers["location"] == "/console/queue", r.text
    queue = await client.get("/console/queue")
    assert queue.status_code == 200
    return client, _token(queue.text)


async def test_pages_need_a_session_and_send_security_headers(api: httpx.AsyncClient) -> None:
    r = await api.get("/console/queue")
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next=%2Fconsole%2Fqueue")
    login = await api.get("/console/login")
    assert login.status_code == 200
    assert login.headers["content-security-policy"].startswith("default-src 'self'")
    assert login.headers["x-frame-options"] == "DENY"
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    # htmx is served from the package (vendored, with its licence), never from a CDN.
    js = await api.get("/console/static/htmx.min.js")
    assert js.status_code == 200 and js.text.startswith("/*! htmx 2.") and "BSD" in js.text.splitlines()[0]
    assert "https://" not in login.text.replace("https://htmx.org", "")


async def test_sign_in_refuses_ingest_keys_bad_keys_and_stale_forms(api: httpx.AsyncClient,
                                                                   keys: dict[str, str]) -> None:
    client = httpx.AsyncClient(transport=api._transport, base_url="http://test")  # noqa: SLF001
    async with aclosing(client):
        token = _token((await client.get("/console/login")).text)
        r = await client.post("/console/login", data={"csrf_token": token, "api_key": keys["ingest"]})
        assert r.status_code == 403 and "role &#39;ingest&#39;, which cannot sign in" in r.text
        assert "safety_console=" not in r.headers.get("set-cookie", "")
        token = _token(r.text)
        r = await client.post("/console/login", data={"csrf_token": token, "api_key": "sk_nope"})
        assert r.status_code == 401 and "unknown or revoked API key" in r.text
        r = await client.post("/console/login", data={"csrf_token": _token(r.text), "api_key": "  "})
        assert r.status_code == 422
        # Without the login form's token (a cross-site post), nothing is checked and nobody is signed in.
        fresh = httpx.AsyncClient(transport=api._transport, base_url="http://test")  # noqa: SLF001
        async with fresh:
            r = await fresh.post("/console/login", data={"csrf_token": "forged", "api_key": keys["moderator"]})
            assert r.status_code == 403 and "CSRF" in r.text
            assert "safety_console=" not in r.headers.get("set-cookie", "")


async def test_csrf_token_is_required_on_every_form(api: httpx.AsyncClient, keys: dict[str, str]) -> None:
    client, csrf = await _sign_in(api, keys["moderator"])
    async with aclosing(client):
        for path, data in [("/console/queue/claim-next", {}), ("/console/cases/abc/claim", {}),
                           ("/console/cases/abc/decision", {"violation": "no"}),
                           ("/console/cases/abc/overturn", {"reason": "x"}), ("/console/preferences", {"blur": "off"}),
                           ("/console/appeals/abc/decision", {"outcome": "uphold"}), ("/console/logout", {})]:
            for token in (None, "wrong", csrf[:-1]):
                body = {**data, **({"csrf_token": token} if token else {})}
                r = await client.post(path, data=body)
                assert r.status_code == 403 and "CSRF check failed" in r.text, (path, token, r.status_code)
        # Still signed in: the refused sign-out did nothing.
        assert (await client.get("/console/queue")).status_code == 200


async def test_bad_ids_filters_and_forms_answer_4xx_pages(api: httpx.AsyncClient, keys: dict[str, str]) -> None:
    client, csrf = await _sign_in(api, keys["moderator"])
    async with aclosing(client):
        gets = {
            "/console/cases/no-such-case": (404, "no case with id no-such-case"),
            "/console/cases/bad%20id": (404, "not a valid id"),
            "/console/cases/" + "x" * 300: (404, "not a valid id"),
            "/console/cases/%27%3B--/live": (404, "not a valid id"),
            "/console/queue?category=spam": (422, "category &#39;spam&#39; is unknown"),
            "/console/queue?queue=vip": (422, "choose standard or senior"),
            "/console/queue?platform=DISCORD!": (422, "platform"),
            "/console/queue?clause=%3Cscript%3E": (422, "policy clause"),
            "/console/queue?sort=new": (422, "unknown filter &#39;sort&#39;"),
            "/console/queue/rows?channel=" + "c" * 200: (422, "channel is not valid"),
            "/console/overview?window=30m": (422, "choose 1h, 24h or 7d"),
            "/console/appeals?status=maybe": (422, "choose open, upheld, overturned or all"),
            "/console/users/Discord/u1": (404, "platform"),
            "/console/users/discord/bad%20user": (404, "user id"),
            "/console/admin/audit": (403, "the audit log is for admins"),
            "/console/nothing/here": (404, "no console page"),
        }
        for path, (status, text) in gets.items():
            r = await client.get(path)
            assert r.status_code == status and text in r.text, (path, r.status_code, r.text[-600:])
        posts = {
            "/console/cases/no-such-case/decision": ({"violation": "no"}, 404, "no case with id"),
            "/console/cases/c1/decision": ({}, 422, "choose whether the message violates"),
            "/console/cases/c2/decision": ({"violation": "yes", "category": "none"}, 422, "needs a category"),
            "/console/cases/c3/decision": ({"violation": "yes", "category": "threat", "actions": "nuke"}, 422,
                                           "unknown action"),
            "/console/cases/c4/decision": ({"violation": "yes", "category": "threat", "timeout_minutes": "soon"}, 422,
                                           "whole number"),
            "/console/cases/c5/decision": ({"violation": "yes", "category": "threat", "timeout_minutes": "99999"}, 422,
                                           "timeout_minutes"),
            "/console/cases/c6/decision": ({"violation": "no", "note": "n" * 2001}, 422, "note"),
            "/console/cases/no-such-case/claim": ({}, 404, "no case with id"),
            "/console/cases/no-such-case/overturn": ({"reason": "wrong"}, 404, "no case with id"),
            "/console/cases/c7/overturn": ({"reason": "   "}, 422, "needs a reason"),
            "/console/appeals/no-such-appeal/decision": ({"outcome": "uphold"}, 404, "no appeal"),
            "/console/appeals/a1/decision": ({"outcome": "maybe"}, 422, "choose uphold or overturn"),
            "/console/appeals/a2/decision": ({"outcome": "overturn", "note": ""}, 422, "needs a note"),
            "/console/preferences": ({"blur": "sometimes"}, 422, "blur must be"),
        }
        for path, (data, status, text) in posts.items():
            r = await client.post(path, data={**data, "csrf_token": csrf})
            assert r.status_code == status and text in r.text, (path, r.status_code, r.text[-600:])


async def test_moderator_cannot_open_admin_pages_and_admin_can(api: httpx.AsyncClient, keys: dict[str, str]) -> None:
    mod, _ = await _sign_in(api, keys["moderator"])
    admin, _ = await _sign_in(api, keys["admin"])
    async with aclosing(mod), aclosing(admin):
        assert "Audit log (admin)" not in (await mod.get("/console/queue")).text
        r = await mod.get("/console/admin/audit")
        assert r.status_code == 403 and "role &#39;moderator&#39;" in r.text
        r = await admin.get("/console/admin/audit")
        assert r.status_code == 200 and 'data-testid="audit"' in r.text


async def test_sessions_expire_end_at_sign_out_and_die_with_their_key(api: httpx.AsyncClient,
                                                                      pool: asyncpg.Pool) -> None:
    key = await create_key(pool, name="console-expiry", role=Role.MODERATOR)
    client, csrf = await _sign_in(api, key)
    async with aclosing(client):
        await pool.execute("UPDATE console_sessions SET expires_at = now() - interval '1 second' "
                           "WHERE moderator = 'console-expiry'")
        r = await client.get("/console/queue")
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
    client, csrf = await _sign_in(api, key)
    async with aclosing(client):
        r = await client.post("/console/logout", data={"csrf_token": csrf})
        assert r.status_code == 303
        # The server forgot the session: replaying the old cookie does not sign anyone in.
        assert await pool.fetchval("SELECT count(*) FROM console_sessions WHERE moderator = 'console-expiry' "
                                   "AND expires_at > now()") == 0
    client, csrf = await _sign_in(api, key)
    async with aclosing(client):
        await pool.execute("UPDATE api_keys SET revoked_at = now() WHERE name = 'console-expiry'")
        r = await client.get("/console/queue")
        assert r.status_code == 303, "a revoked key's console session must end at once"


async def test_queue_shows_sla_breach_senior_queue_brigading_and_claims(api: httpx.AsyncClient, pool: asyncpg.Pool,
                                                                       keys: dict[str, str]) -> None:
    """A case row as the workflow records one that waited past its SLA and moved to the senior queue."""
    case_id = f"console-{uuid.uuid4().hex[:12]}"
    channel = f"raid-{uuid.uuid4().hex[:8]}"  # a channel no other test uses, to filter on
    await pool.execute(
        """
        INSERT INTO cases (case_id, platform, channel_id, author_id, target_id, event_type, content, path, risk_score,
                           category, category_scores, decision, needs_review, reasons, reasoning, received_at,
                           completed_at, review_status, review_queue)
        VALUES ($1, 'discord', $4, 'raider-x', 'sam', 'message', 'you are pathetic', 'full', 0.91,
                'targeted_insult', '{"targeted_insult": 0.91}', 'review', true, $2, $3, now() - interval '2 hours',
                now() - interval '2 hours', 'pending', 'senior')
        """, case_id,
        ["risk 0.910 >= review threshold 0.19", "needs human review: LLM provider unavailable: connection refused",
         "brigading: 21 distinct authors aimed harmful messages at sam within 60s; moderators notified"],
        {"status": "unavailable", "detail": "connection refused"}, channel)
    mod, csrf = await _sign_in(api, keys["moderator"])
    admin, admin_csrf = await _sign_in(api, keys["admin"])
    async with aclosing(mod), aclosing(admin):
        page = (await mod.get(f"/console/queue?channel={channel}")).text
        row = page[page.index(f'data-case-id="{case_id}"'):]
        row = row[:row.index("</tr>")]
        assert "SLA breached" in row and "senior" in row and "brigading" in row
        assert "LLM provider unavailable: connection refused" in row
        assert case_id not in (await mod.get(f"/console/queue?channel={channel}&queue=standard")).text
        assert case_id in (await mod.get(f"/console/queue/rows?channel={channel}&queue=senior")).text
        case_page = (await mod.get(f"/console/cases/{case_id}")).text
        assert "No verdict: reasoning status <strong>unavailable</strong> (connection refused)" in case_page
        assert "brigading: 21 distinct authors" in case_page and "SLA breached" in case_page
        # The admin claims it; the moderator can neither claim nor decide it, and claim-next passes it by.
        r = await admin.post(f"/console/cases/{case_id}/claim", data={"csrf_token": admin_csrf})
        assert r.status_code == 303
        r = await mod.post(f"/console/cases/{case_id}/claim", data={"csrf_token": csrf})
        assert r.status_code == 409 and "is claimed by test-admin" in r.text
        r = await mod.post(f"/console/cases/{case_id}/decision", data={"csrf_token": csrf, "violation": "no"})
        assert r.status_code == 409 and "only the claim holder may decide it" in r.text
        r = await mod.post(f"/console/queue/claim-next?channel={channel}", data={"csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"].startswith("/console/queue")
        assert "Nothing to claim" in (await mod.get(r.headers["location"])).text
        # The holder's decision reaches Temporal, which has no workflow waiting: a 409 that says so.
        r = await admin.post(f"/console/cases/{case_id}/decision", data={"csrf_token": admin_csrf, "violation": "no"})
        assert r.status_code == 409 and "no running workflow waiting for a review" in r.text
        user = await mod.get("/console/users/discord/raider-x")
        assert user.status_code == 200 and "no live strikes" in user.text and case_id[:12] in user.text


async def _insert_case(pool: asyncpg.Pool, *, platform: str, channel: str, pending: bool,
                       edit_of: str | None = None) -> str:
    """A recorded case as the workflow writes one: pending review, or actioned (appealable)."""
    case_id = f"console-{uuid.uuid4().hex[:12]}"
    await pool.execute(
        """
        INSERT INTO cases (case_id, platform, channel_id, author_id, target_id, event_type, content, path, risk_score,
                           category, category_scores, decision, needs_review, reasons, reasoning, received_at,
                           completed_at, review_status, review_queue, integration, edit_of, revision)
        VALUES ($1, $2, $3, 'tenant-author', 'sam', $6, 'you are pathetic', 'full', 0.91, 'targeted_insult',
                '{"targeted_insult": 0.91}', $4, $5, $7, '{}', now() - interval '5 minutes',
                now() - interval '5 minutes', $8, $9, 'test-ingest', $10, $11)
        """, case_id, platform, channel, "review" if pending else "action", pending,
        "message_edit" if edit_of else "message", ["needs human review: tenancy test"] if pending else [],
        "pending" if pending else None, "standard" if pending else None, edit_of, "abc123def456" if edit_of else "")
    return case_id


async def test_platform_scoped_moderator_sees_only_their_platforms_in_the_console(
        api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    """A moderator scoped to one platform (``safety keys create --platforms``): the queue, case pages, user
    pages, the overview and the appeals show only that platform; another platform's case answers like a
    missing one (404), its user page 403, and a scoped admin's audit page 403 (as in the JSON API)."""
    tag = uuid.uuid4().hex[:8]
    mine, other, channel = f"pa{tag}", f"pb{tag}", f"tenancy-{tag}"
    scoped_key = await create_key(pool, name=f"console-scoped-{tag}", role=Role.MODERATOR, platforms=[mine])
    admin_key = await create_key(pool, name=f"console-scoped-admin-{tag}", role=Role.ADMIN, platforms=[mine])
    own_pending = await _insert_case(pool, platform=mine, channel=channel, pending=True)
    own_edit = await _insert_case(pool, platform=mine, channel=channel, pending=True, edit_of=own_pending)
    foreign_pending = await _insert_case(pool, platform=other, channel=channel, pending=True)
    own_actioned = await _insert_case(pool, platform=mine, channel=channel, pending=False)
    foreign_actioned = await _insert_case(pool, platform=other, channel=channel, pending=False)
    for cid in (own_actioned, foreign_actioned):
        await pool.execute("INSERT INTO appeals (case_id, reason, filed_by) "
                           "VALUES ($1, 'not me', 'ingest:test-ingest')", cid)
    foreign_appeal = await pool.fetchval("SELECT id FROM appeals WHERE case_id = $1", foreign_actioned)
    # Similar cases come from every platform's index: the scoped moderator sees only their platform's.
    similar = [{"case_id": cid, "score": 0.9, "category": "targeted_insult", "decision": "action", "platform": p}
               for cid, p in ((own_actioned, mine), (foreign_actioned, other))]
    await pool.execute("UPDATE cases SET context = $2 WHERE case_id = $1", own_pending, {"similar_cases": similar})
    mod, csrf = await _sign_in(api, scoped_key)
    admin, _ = await _sign_in(api, admin_key)
    async with aclosing(mod), aclosing(admin):
        queue = (await mod.get(f"/console/queue?channel={channel}")).text
        assert own_pending in queue and own_edit in queue and foreign_pending not in queue
        assert other not in queue, "the platform filter must not offer platforms outside the key's scope"
        assert foreign_pending not in (await mod.get(f"/console/queue/rows?platform={other}")).text
        assert foreign_pending not in (await mod.get("/console/queue/rows")).text
        # Another platform's case answers exactly like an unknown one, on every route.
        missing = await mod.get(f"/console/cases/console-{uuid.uuid4().hex[:12]}")
        for path in (f"/console/cases/{foreign_pending}", f"/console/cases/{foreign_pending}/live"):
            r = await mod.get(path)
            assert r.status_code == 404 == missing.status_code and "no case with id" in r.text, path
        for path, data in ((f"/console/cases/{foreign_pending}/claim", {}),
                           (f"/console/cases/{foreign_pending}/decision", {"violation": "no"}),
                           (f"/console/cases/{foreign_actioned}/overturn", {"reason": "wrong"}),
                           (f"/console/appeals/{foreign_appeal}/decision", {"outcome": "uphold", "note": ""})):
            r = await mod.post(path, data={"csrf_token": csrf, **data})
            assert r.status_code == 404, (path, r.status_code, r.text[:300])
        assert await pool.fetchval("SELECT count(*) FROM review_claims WHERE case_id = $1", foreign_pending) == 0
        assert await pool.fetchval("SELECT count(*) FROM appeals WHERE case_id = $1", foreign_actioned) == 1
        own = await mod.get(f"/console/cases/{own_pending}")
        assert own.status_code == 200 and own_pending in own.text
        panel = own.text[own.text.index('data-testid="similar"'):]
        panel = panel[:panel.index("</section>")]
        assert f"/console/cases/{own_actioned}" in panel and foreign_actioned not in panel
        edit = (await mod.get(f"/console/cases/{own_edit}")).text
        assert 'data-testid="edit-of"' in edit and f'href="/console/cases/{own_pending}"' in edit
        assert (await mod.post(f"/console/cases/{own_pending}/claim", data={"csrf_token": csrf})).status_code == 303
        # Users: their platform answers, another one is refused as in GET /v1/users.
        assert (await mod.get(f"/console/users/{mine}/tenant-author")).status_code == 200
        r = await mod.get(f"/console/users/{other}/tenant-author")
        assert r.status_code == 403 and mine in r.text
        # Appeals: only those of the key's platforms' cases.
        appeals_page = (await mod.get("/console/appeals")).text
        assert own_actioned[:12] in appeals_page and foreign_actioned[:12] not in appeals_page
        # The overview counts only the key's platform: 3 cases received, 2 waiting for review.
        overview = (await mod.get("/console/overview?window=1h")).text
        assert re.search(r'data-testid="volume">3<', overview)
        assert re.search(r'data-testid="backlog">2<', overview)
        # The audit chain spans every platform: a scoped admin is refused.
        r = await admin.get("/console/admin/audit")
        assert r.status_code == 403 and "spans every platform" in r.text


async def test_rate_limited_pages_say_when_to_retry(api: httpx.AsyncClient, pool: asyncpg.Pool,
                                                     settings: Settings) -> None:
    """The console shares the JSON API's per-key rate limit; its 429 page keeps the Retry-After header."""
    import redis.asyncio as aioredis

    name = f"console-limited-{uuid.uuid4().hex[:8]}"
    key = await create_key(pool, name=name, role=Role.MODERATOR)
    key_id = await pool.fetchval("SELECT id FROM api_keys WHERE name = $1", name)
    client, _ = await _sign_in(api, key)
    redis = aioredis.from_url(settings.redis_url)
    try:
        async with aclosing(client):
            for window in (int(time.time() // 60), int(time.time() // 60) + 1):  # a minute may turn meanwhile
                await redis.set(f"ratelimit:{key_id}:{window}", 10**9, ex=120)
            r = await client.get("/console/queue")
            assert r.status_code == 429 and "rate limit" in r.text
            assert 0 < int(r.headers["Retry-After"]) <= 60
    finally:
        await redis.aclose()
