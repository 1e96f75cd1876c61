"""Prescreen mode: the API screens itself; clean events are recorded without a workflow."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.service import RPCError

from api.app import create_app
from core.settings import APISettings, Settings
from domain.models import ModerateEventInput
from workflows.contract import event_workflow_id


@pytest_asyncio.fixture(scope="module")
async def prescreen_api(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"api": APISettings(prescreen=True)}))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            yield client


def _body(content: str, message_id: str | None = None) -> dict[str, object]:
    return {"platform": "discord", "channel_id": "c1", "user_id": "t1", "author_id": "a1", "content": content,
            "message_id": message_id or uuid.uuid4().hex}


async def test_clean_event_is_recorded_directly_without_a_workflow(
        prescreen_api: httpx.AsyncClient, keys: dict[str, str], client: Client) -> None:
    h = {"X-API-Key": keys["ingest"]}
    body = _body("thanks everyone, great stream today")
    r = await prescreen_api.post("/v1/events/ingest", json=body, headers=h)
    assert r.status_code == 202
    status = (await prescreen_api.get(r.json()["processing_url"], headers=h)).json()
    assert status["status"] == "completed" and status["outcome"]["path"] == "prescreen"
    assert status["outcome"]["decision"] == "allow"
    with pytest.raises(RPCError):
        await client.get_workflow_handle(event_workflow_id(r.json()['event_id'])).describe()
    again = await prescreen_api.post("/v1/events/ingest", json=body, headers=h)
    assert again.json()["event_id"] == r.json()["event_id"] and again.json()["duplicate"]


async def test_risky_event_starts_a_workflow_carrying_the_screen_result(
        prescreen_api: httpx.AsyncClient, keys: dict[str, str], client: Client) -> None:
    r = await prescreen_api.post("/v1/events/ingest", headers={"X-API-Key": keys["ingest"]},
                                 json=_body("you are a worthless idiot, nobody wants you here, go kill yourself"))
    assert r.status_code == 202
    handle = client.get_workflow_handle(event_workflow_id(r.json()['event_id']))
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    (inp,) = await client.data_converter.decode(started.input.payloads, [ModerateEventInput])
    assert inp.prescreen is not None and inp.prescreen.risk_score >= inp.policy.thresholds.review
    assert len(inp.prescreen.embedding) > 0
