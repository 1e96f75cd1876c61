"""The whole pipeline in one process: real API, real workers for all five queues, real model, Qdrant
local mode, PostgreSQL, Redis, and the OpenAI-compatible test server for the LLM."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from core.settings import LLMSettings, Settings
from core.storage.audit import verify_audit
from tests.doubles.fake_llm import FakeLLMServer
from workers.registry import running_worker
from workflows.contract import TASK_QUEUES

ABUSIVE = "you are a worthless idiot, nobody wants you here, go kill yourself"


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest_asyncio.fixture(scope="module")
async def workers(settings: Settings, client: Client, pool: asyncpg.Pool,
                  llm: FakeLLMServer) -> AsyncIterator[Settings]:
    s = settings.model_copy(update={"llm": LLMSettings(base_url=llm.base_url, api_key="test")})
    async with contextlib.AsyncExitStack() as stack:
        for queue in TASK_QUEUES:
            await stack.enter_async_context(running_worker(client, queue, s))
        yield s


async def _outcome(api: httpx.AsyncClient, key: str, body: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    r = await api.post("/v1/events/ingest", json=body, headers={"X-API-Key": key})
    assert r.status_code == 202, r.text
    url = r.json()["processing_url"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = (await api.get(url, headers={"X-API-Key": key})).json()
        if st["status"] == "completed":
            return st  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no outcome: {st}")


def _body(content: str, author: str = "author-1") -> dict[str, Any]:
    return {"platform": "twitch", "channel_id": "chan-1", "user_id": "victim-1", "author_id": author,
            "content": content, "message_id": uuid.uuid4().hex}


async def test_abusive_message_is_actioned_and_later_cases_see_it(
        api: httpx.AsyncClient, keys: dict[str, str], workers: Settings, pool: asyncpg.Pool) -> None:
    first = await _outcome(api, keys["ingest"], _body(ABUSIVE))
    assert first["outcome"]["decision"] == "action", first
    assert first["outcome"]["policy_version"] == "harassment-v1"
    second = await _outcome(api, keys["ingest"], _body(ABUSIVE + " loser", author="author-2"))
    row = await pool.fetchrow("SELECT context, reasoning FROM cases WHERE case_id = $1", second["event_id"])
    similar = [c["case_id"] for c in row["context"]["similar_cases"]]
    assert first["event_id"] in similar, "a confirmed violation is indexed and retrieved as a similar case"
    assert row["context"]["target"]["recent_cases"] >= 1
    assert row["reasoning"]["status"] == "ok" and row["reasoning"]["prompt_tokens"] > 0
    actions = await pool.fetch("SELECT action, status FROM actions WHERE case_id = $1", first["event_id"])
    assert actions and all(a["status"] == "applied" for a in actions)


async def test_clean_message_is_allowed_on_the_cheap_path(api: httpx.AsyncClient, keys: dict[str, str],
                                                          workers: Settings) -> None:
    out = await _outcome(api, keys["ingest"], _body("thanks for the stream, that was fun"))
    assert out["outcome"]["path"] == "clean" and out["outcome"]["decision"] == "allow"


async def test_provider_down_sends_risky_cases_to_review(api: httpx.AsyncClient, keys: dict[str, str],
                                                         workers: Settings, llm: FakeLLMServer) -> None:
    llm.configure(error_rate=1.0, error_status=503)
    try:
        out = await _outcome(api, keys["ingest"], _body(ABUSIVE + " trash"), timeout=60)
    finally:
        llm.reset()
    assert out["outcome"]["decision"] == "review" and out["outcome"]["needs_review"]
    assert not out["outcome"]["actions"]


async def test_audit_chain_is_intact(pool: asyncpg.Pool, workers: Settings) -> None:
    intact, count, broken = await verify_audit(pool)
    assert intact and broken is None and count >= 1
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await pool.execute("UPDATE audit_log SET actor = 'mallory'")


async def test_review_decision_through_the_api_acts_within_a_second(
        api: httpx.AsyncClient, keys: dict[str, str], workers: Settings, llm: FakeLLMServer,
        pool: asyncpg.Pool) -> None:
    llm.configure(error_rate=1.0, error_status=503)
    try:
        waiting = await _outcome(api, keys["ingest"], _body(ABUSIVE + " clown", author="author-9"), timeout=60)
    finally:
        llm.reset()
    case_id = waiting["event_id"]
    assert waiting["outcome"]["decision"] == "review" and waiting["outcome"]["review_status"] == "pending"
    mod = {"X-API-Key": keys["moderator"]}
    queue = (await api.get("/v1/reviews", headers=mod)).json()
    assert case_id in [item["case_id"] for item in queue["items"]]
    assert (await api.post(f"/v1/reviews/{case_id}/claim", headers=mod)).status_code == 200
    started = time.monotonic()
    r = await api.post(f"/v1/reviews/{case_id}/decision", headers=mod,
                       json={"violation": True, "category": "targeted_insult", "actions": ["delete", "timeout"],
                             "timeout_minutes": 15, "note": "clear insult"})
    elapsed = time.monotonic() - started
    assert r.status_code == 200, r.text
    assert elapsed < 1.0, f"decision took {elapsed:.2f}s to reach its actions"
    assert r.json()["decision"] == "action"
    assert {a["action"]: a["status"] for a in r.json()["actions"]} == {"delete": "applied", "timeout": "applied"}
    row = await pool.fetchrow("SELECT decision, review_status, reviewer FROM cases WHERE case_id = $1", case_id)
    assert row["decision"] == "action" and row["review_status"] == "decided" and row["reviewer"] == "test-moderator"


async def test_five_abusive_messages_climb_the_escalation_ladder(
        api: httpx.AsyncClient, keys: dict[str, str], workers: Settings, client: Client) -> None:
    from domain.sessions import UserSessionState
    from workflows.contract import STATE_QUERY, user_session_id

    author = f"repeat-{uuid.uuid4().hex[:6]}"
    rank = {"warn": 0, "timeout": 1, "ban": 2}
    strongest: list[int] = []
    for i in range(5):
        out = await _outcome(api, keys["ingest"], _body(f"{ABUSIVE} #{i}", author=author))
        assert out["outcome"]["decision"] == "action", out
        assert any("escalation level" in r for r in out["outcome"]["reasons"])
        acts = [a["action"] for a in out["outcome"]["actions"]]
        strongest.append(max(rank.get(a, -1) for a in acts))
    assert strongest == sorted(strongest), f"sanctions must never go down the ladder: {strongest}"
    assert strongest[-1] == rank["ban"]
    state = await client.get_workflow_handle(user_session_id("twitch", author)).query(
        STATE_QUERY, result_type=UserSessionState)
    assert state.strikes_active == 5 and state.banned


async def test_an_edit_into_abuse_is_a_new_case_linked_to_the_original(
        api: httpx.AsyncClient, keys: dict[str, str], workers: Settings, pool: asyncpg.Pool) -> None:
    """Post "hi everyone", edit it into abuse: the edit is moderated as new content (its own case, linked
    to the original's); the same revision delivered again is still that one case."""
    original = _body("hi everyone, good game", author="editor-1")
    first = await _outcome(api, keys["ingest"], original)
    assert first["outcome"]["decision"] == "allow"
    edit = {**original, "event_type": "message_edit", "content": ABUSIVE + " (edited)"}
    r = await api.post("/v1/events/ingest", json=edit, headers={"X-API-Key": keys["ingest"]})
    assert r.status_code == 202 and not r.json()["duplicate"], r.text
    assert r.json()["event_id"] != first["event_id"]
    edited = await _outcome(api, keys["ingest"], edit)
    assert edited["event_id"] == r.json()["event_id"]
    assert edited["outcome"]["decision"] == "action", edited
    again = await api.post("/v1/events/ingest", json=edit, headers={"X-API-Key": keys["ingest"]})
    assert again.json()["event_id"] == edited["event_id"] and again.json()["duplicate"]
    row = await pool.fetchrow("SELECT edit_of, revision, message_id, integration FROM cases WHERE case_id = $1",
                              edited["event_id"])
    assert row["edit_of"] == first["event_id"] and row["message_id"] == original["message_id"]
    assert len(row["revision"]) == 32 and row["integration"] == "test-ingest"
    shown = (await api.get(f"/v1/cases/{edited['event_id']}", headers={"X-API-Key": keys["moderator"]})).json()
    assert (shown["edit_of"], shown["revision"], shown["integration"]) == (first["event_id"], row["revision"],
                                                                          "test-ingest")
    second_edit = {**edit, "content": "hi everyone, sorry about that"}
    third = await _outcome(api, keys["ingest"], second_edit)
    assert third["event_id"] not in (first["event_id"], edited["event_id"])
    assert third["outcome"]["decision"] == "allow"
