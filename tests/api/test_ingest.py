"""Ingest API: 202 with a case id, clear 4xx for bad input, one case per platform message."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest
from temporalio.client import Client

from api.schemas import EventIn
from api.services.events import event_id_for
from core.storage.keys import Role, create_key
from workflows.contract import event_workflow_id


def body(**overrides: object) -> dict[str, object]:
    b: dict[str, object] = {"event_type": "message", "platform": "discord", "channel_id": "general",
                            "user_id": "user_456", "author_id": "user_123", "content": "good game everyone",
                            "metadata": {"timestamp": "2026-11-29T12:00:00Z", "user_reputation": 0.8,
                                         "author_reputation": 0.3, "channel_history_count": 150}}
    b.update(overrides)
    return b


async def test_ingest_answers_202_with_case_and_status_url(api: httpx.AsyncClient, keys: dict[str, str],
                                                          client: Client) -> None:
    r = await api.post("/v1/events/ingest", json=body(), headers={"X-API-Key": keys["ingest"]})
    assert r.status_code == 202, r.text
    data = r.json()
    assert data["status"] == "queued" and data["processing_url"] == f"/v1/events/{data['event_id']}/status"
    desc = await client.get_workflow_handle(event_workflow_id(data['event_id'])).describe()
    assert desc.search_attributes["CaseId"] == [data["event_id"]]
    # No worker runs in this module: the case is durable and says it is queued, without hanging.
    status = (await api.get(data["processing_url"], headers={"X-API-Key": keys["ingest"]})).json()
    assert (status["status"], status["stage"]) == ("queued", "queued")
    assert desc.search_attributes["Platform"] == ["discord"]


async def test_same_platform_message_twice_is_one_case(api: httpx.AsyncClient, keys: dict[str, str]) -> None:
    b = body(message_id=f"m-{uuid.uuid4().hex}")
    first = await api.post("/v1/events/ingest", json=b, headers={"X-API-Key": keys["ingest"]})
    second = await api.post("/v1/events/ingest", json=b, headers={"X-API-Key": keys["ingest"]})
    assert first.status_code == second.status_code == 202
    assert first.json()["event_id"] == second.json()["event_id"]
    assert not first.json()["duplicate"] and second.json()["duplicate"]


async def test_event_ids_are_keyed_and_scoped_to_the_integration(api: httpx.AsyncClient, keys: dict[str, str],
                                                                 pool: asyncpg.Pool) -> None:
    """The id of a platform message cannot be precomputed (no public uuid5 of platform:message_id) and
    another integration sending the same platform message id gets its own case, not a duplicate."""
    b = body(message_id=f"m-{uuid.uuid4().hex}")
    other = {"X-API-Key": await create_key(pool, name=f"other-{uuid.uuid4().hex[:6]}", role=Role.INGEST)}
    mine = await api.post("/v1/events/ingest", json=b, headers={"X-API-Key": keys["ingest"]})
    theirs = await api.post("/v1/events/ingest", json=b, headers=other)
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["event_id"] != theirs.json()["event_id"] and not theirs.json()["duplicate"]
    public = uuid.uuid5(uuid.UUID("9f1c2b7a-3e4d-4c5b-8a6f-0d1e2f3a4b5c"), f"discord:{b['message_id']}")
    assert mine.json()["event_id"] != str(public)
    ev = EventIn.model_validate(b)
    assert event_id_for(ev, secret=b"another-secret-entirely", integration="test-ingest").event_id \
        != mine.json()["event_id"], "the id depends on the server's secret"


async def test_missing_or_wrong_key_is_401(api: httpx.AsyncClient) -> None:
    missing = await api.post("/v1/events/ingest", json=body())
    assert missing.status_code == 401 and "X-API-Key" in missing.json()["detail"]
    wrong = await api.post("/v1/events/ingest", json=body(), headers={"X-API-Key": "sk_nope"})
    assert wrong.status_code == 401 and "invalid" in wrong.json()["detail"]


async def test_moderator_key_cannot_ingest(api: httpx.AsyncClient, keys: dict[str, str]) -> None:
    r = await api.post("/v1/events/ingest", json=body(), headers={"X-API-Key": keys[Role.MODERATOR]})
    assert r.status_code == 403 and "ingest" in r.json()["detail"]


async def test_malformed_body_is_422_naming_the_field(api: httpx.AsyncClient, keys: dict[str, str]) -> None:
    h = {"X-API-Key": keys["ingest"]}
    no_author = body()
    del no_author["author_id"]
    r = await api.post("/v1/events/ingest", json=no_author, headers=h)
    assert r.status_code == 422 and "author_id" in r.json()["detail"]
    r = await api.post("/v1/events/ingest", json=body(metadata={"channel_history_count": -5}), headers=h)
    assert r.status_code == 422 and "metadata.channel_history_count" in r.json()["detail"]
    r = await api.post("/v1/events/ingest", content=b"{not json", headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 422
    r = await api.post("/v1/events/ingest", json=body(content=""), headers=h)
    assert r.status_code == 422 and "content" in r.json()["detail"]


async def test_content_over_limit_is_413_with_the_limit(api: httpx.AsyncClient, keys: dict[str, str]) -> None:
    r = await api.post("/v1/events/ingest", json=body(content="x" * 9120), headers={"X-API-Key": keys["ingest"]})
    assert r.status_code == 413
    assert r.json()["detail"].startswith("content is 9,120 bytes; the limit is 4,096")


async def test_oversized_body_is_refused_before_parsing(api: httpx.AsyncClient, keys: dict[str, str]) -> None:
    huge = b'{"content": "' + b"y" * 100_000 + b'"}'
    r = await api.post("/v1/events/ingest", content=huge,
                       headers={"X-API-Key": keys["ingest"], "Content-Type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["detail"]


async def test_unknown_event_status_is_404_and_bad_id_is_422(api: httpx.AsyncClient, keys: dict[str, str]) -> None:
    h = {"X-API-Key": keys["ingest"]}
    r = await api.get(f"/v1/events/{uuid.uuid4()}/status", headers=h)
    assert r.status_code == 404 and "no event" in r.json()["detail"]
    r = await api.get("/v1/events/not-a-uuid/status", headers=h)
    assert r.status_code == 422 and "event_id" in r.json()["detail"]


async def test_health_and_ready(api: httpx.AsyncClient) -> None:
    assert (await api.get("/health")).json() == {"status": "ok"}
    r = await api.get("/ready", params={"scope": "api"})
    assert r.status_code == 200 and r.json()["checks"] == {"temporal": "ok", "postgres": "ok", "redis": "ok"}
    # the whole system's readiness also names every task queue and the model
    checks = (await api.get("/ready")).json()["checks"]
    assert {"queue:moderation", "queue:actions", "model"} <= set(checks)


async def test_openapi_documents_the_ingest_route(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    assert "/v1/events/ingest" in spec["paths"] and "/v1/events/{event_id}/status" in spec["paths"]


async def test_brigaded_target_gets_a_lower_review_threshold(api: httpx.AsyncClient, keys: dict[str, str],
                                                              client: Client, settings: object) -> None:
    import redis.asyncio as aioredis

    from activities.sessions import brigading_key
    from domain.models import ModerateEventInput

    target = f"victim-{uuid.uuid4().hex[:8]}"
    r = aioredis.from_url(settings.redis_url)  # type: ignore[attr-defined]
    await r.set(brigading_key("discord", target), "0.5", ex=60)
    await r.aclose()

    async def review_threshold(user_id: str) -> float:
        resp = await api.post("/v1/events/ingest", json=body(user_id=user_id), headers={"X-API-Key": keys["ingest"]})
        history = await client.get_workflow_handle(event_workflow_id(resp.json()['event_id'])).fetch_history()
        attrs = history.events[0].workflow_execution_started_event_attributes
        (inp,) = await client.data_converter.decode(attrs.input.payloads, [ModerateEventInput])
        return inp.policy.thresholds.review

    normal, lowered = await review_threshold("someone-else"), await review_threshold(target)
    assert lowered == pytest.approx(normal * 0.5)


async def test_nul_characters_are_refused_with_422(api: httpx.AsyncClient, keys: dict[str, str]) -> None:
    h = {"X-API-Key": keys["admin"]}
    r = await api.post("/v1/events/ingest", json=body(content="hi\x00there"), headers=h)
    assert r.status_code == 422 and "NUL" in r.json()["detail"]
    r = await api.get("/v1/cases?platform=dis%00cord", headers=h)
    assert r.status_code == 422 and "NUL" in r.json()["detail"]


async def test_dates_the_database_cannot_hold_are_422(api: httpx.AsyncClient, keys: dict[str, str]) -> None:
    r = await api.get("/v1/exports/statements-of-reasons",
                      params={"from": "0001-01-01T02:33:22+11:11", "to": "0001-01-01T01:00:01Z"},
                      headers={"X-API-Key": keys["admin"]})
    assert r.status_code == 422 and "from" in r.json()["detail"]


# The seed's integration guide sends these names; each maps onto an internal event type.
SEED_EXAMPLE = {"event_type": "message_created", "platform": "discord", "channel_id": "general",
                "user_id": "user_456", "author_id": "user_123",
                "content": "you are worthless, nobody wants you here",
                "metadata": {"timestamp": "2026-11-29T12:00:00Z", "user_reputation": 0.8,
                             "author_reputation": 0.3, "channel_history_count": 150}}


async def _started_event_type(client: Client, event_id: str) -> str:
    from domain.models import ModerateEventInput
    history = await client.get_workflow_handle(f"event-{event_id}").fetch_history()
    attrs = history.events[0].workflow_execution_started_event_attributes
    [inp] = await client.data_converter.decode(attrs.input.payloads, [ModerateEventInput])
    assert isinstance(inp, ModerateEventInput)
    return inp.event.event_type


@pytest.mark.parametrize(("seed_type", "internal"), [("message_created", "message"),
                                                     ("message_edited", "message_edit"),
                                                     ("message_updated", "message_edit")])
async def test_the_seeds_event_types_are_accepted_and_mapped(api: httpx.AsyncClient, keys: dict[str, str],
                                                             client: Client, seed_type: str,
                                                             internal: str) -> None:
    r = await api.post("/v1/events/ingest", json={**SEED_EXAMPLE, "event_type": seed_type},
                       headers={"X-API-Key": keys["ingest"]})
    assert r.status_code == 202, r.text
    assert await _started_event_type(client, r.json()["event_id"]) == internal


async def test_a_deletion_is_refused_saying_what_to_send(api: httpx.AsyncClient, keys: dict[str, str]) -> None:
    r = await api.post("/v1/events/ingest", json={**SEED_EXAMPLE, "event_type": "message_deleted"},
                       headers={"X-API-Key": keys["ingest"]})
    assert r.status_code == 422
    assert "event_type" in r.json()["detail"] and "message_created" in r.json()["detail"]
    r = await api.post("/v1/events/ingest", json={**SEED_EXAMPLE, "event_type": "created"},
                       headers={"X-API-Key": keys["ingest"]})
    assert r.status_code == 422 and "event_type" in r.json()["detail"]
