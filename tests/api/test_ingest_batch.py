"""Batch ingest: many events per request, one case each, validated as a whole, nothing half-ingested."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.service import RPCError

from api.app import create_app
from api.schemas import EventIn
from api.services.events import event_id_for
from core.settings import APISettings, Settings
from core.storage import audit, cases
from core.storage.keys import Role, create_key
from domain.models import ModerateEventInput
from ops.bench.ingest import run_ingest, window_rates
from workflows.contract import event_workflow_id

URL = "/v1/events/ingest/batch"
CLEAN = ("thanks everyone, great stream today", "have a nice evening everyone", "see you all tomorrow")
RISKY = "you are a worthless idiot, nobody wants you here, go kill yourself"


def _event(content: str, **overrides: object) -> dict[str, object]:
    ev: dict[str, object] = {"platform": "discord", "channel_id": "c-batch", "user_id": "t1", "author_id": "a1",
                             "content": content, "message_id": uuid.uuid4().hex}
    ev.update(overrides)
    return ev


@pytest_asyncio.fixture(scope="module")
async def prescreen_api(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"api": APISettings(prescreen=True, max_batch_events=50)}))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            yield client


async def test_batch_starts_one_case_per_event_and_reports_redeliveries(
        api: httpx.AsyncClient, keys: dict[str, str], client: Client) -> None:
    h = {"X-API-Key": keys["ingest"]}
    events = [_event(c) for c in CLEAN]
    r = await api.post(URL, json={"events": events}, headers=h)
    assert r.status_code == 202, r.text
    data = r.json()
    assert (data["accepted"], data["duplicates"], data["not_accepted"]) == (3, 0, 0)
    assert [item["index"] for item in data["results"]] == [0, 1, 2]
    for item in data["results"]:
        assert item["status"] == "queued" and item["processing_url"] == f"/v1/events/{item['event_id']}/status"
        desc = await client.get_workflow_handle(event_workflow_id(item['event_id'])).describe()
        assert desc.search_attributes["CaseId"] == [item["event_id"]]
    # The same platform messages again (with one new one): the old ones are duplicates of the same cases.
    again = await api.post(URL, json={"events": [*events, _event("new one")]}, headers=h)
    assert again.status_code == 202
    assert [i["duplicate"] for i in again.json()["results"]] == [True, True, True, False]
    assert [i["event_id"] for i in again.json()["results"][:3]] == [i["event_id"] for i in data["results"]]


async def test_one_invalid_event_refuses_the_whole_batch_naming_it(
        api: httpx.AsyncClient, keys: dict[str, str], pool: asyncpg.Pool) -> None:
    good = _event("hello")
    bad = _event("hello")
    del bad["author_id"]
    r = await api.post(URL, json={"events": [good, bad]}, headers={"X-API-Key": keys["ingest"]})
    assert r.status_code == 422
    assert "events.1" in r.text and "author_id" in r.text
    assert await pool.fetchval("SELECT count(*) FROM cases WHERE message_id = $1", good["message_id"]) == 0


async def test_empty_oversized_and_unauthorised_batches_are_refused_clearly(
        prescreen_api: httpx.AsyncClient, api: httpx.AsyncClient, keys: dict[str, str], settings: Settings) -> None:
    h = {"X-API-Key": keys["ingest"]}
    empty = await api.post(URL, json={"events": []}, headers=h)
    assert empty.status_code == 422 and "events" in empty.text
    too_many = await prescreen_api.post(URL, json={"events": [_event("hi") for _ in range(51)]}, headers=h)
    assert too_many.status_code == 413 and "MAX_BATCH_EVENTS" in too_many.json()["detail"]
    long = "x" * (settings.api.max_content_bytes + 1)
    too_long = await api.post(URL, json={"events": [_event("ok"), _event(long)]}, headers=h)
    assert too_long.status_code == 413 and too_long.json()["detail"].startswith("events.1.content")
    # Bigger than one event's body limit is fine for a batch; bigger than the batch limit is 413.
    assert len(str([_event("y" * 4000) for _ in range(8)])) > settings.api.max_body_bytes
    big = await api.post(URL, json={"events": [_event("y" * 4000) for _ in range(8)]}, headers=h)
    assert big.status_code == 202, big.text
    huge = await api.post(URL, content=b'{"events": [' + b" " * (settings.api.max_batch_body_bytes + 1) + b"]}",
                          headers={**h, "Content-Type": "application/json"})
    assert huge.status_code == 413 and "MAX_BATCH_BODY_BYTES" in huge.json()["detail"]
    unauthorised = await api.post(URL, json={"events": [_event("hi")]}, headers={"X-API-Key": keys["moderator"]})
    assert unauthorised.status_code == 403


async def test_prescreen_batch_records_clean_events_and_starts_workflows_for_risky_ones(
        prescreen_api: httpx.AsyncClient, keys: dict[str, str], client: Client, pool: asyncpg.Pool) -> None:
    h = {"X-API-Key": keys["ingest"]}
    events = [_event(CLEAN[0]), _event(RISKY), _event(CLEAN[1]), _event(CLEAN[2])]
    r = await prescreen_api.post(URL, json={"events": events}, headers=h)
    assert r.status_code == 202, r.text
    results = r.json()["results"]
    assert [i["status"] for i in results] == ["recorded", "queued", "recorded", "recorded"]
    for item in (results[0], results[2], results[3]):
        row = await cases.get_case(pool, item["event_id"])
        assert row is not None and row["path"] == "prescreen" and row["decision"] == "allow"
        with pytest.raises(RPCError):
            await client.get_workflow_handle(event_workflow_id(item['event_id'])).describe()
    history = await client.get_workflow_handle(event_workflow_id(results[1]['event_id'])).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    (inp,) = await client.data_converter.decode(started.input.payloads, [ModerateEventInput])
    assert inp.prescreen is not None and inp.prescreen.risk_score >= inp.policy.thresholds.review
    assert len(inp.prescreen.embedding) > 0
    # Every recorded case has its own link in the audit chain, and the chain is intact.
    n = await pool.fetchval("SELECT count(*) FROM audit_log WHERE case_id = ANY($1::text[]) AND kind = 'decision'",
                            [results[k]["event_id"] for k in (0, 2, 3)])
    assert n == 3
    assert (await audit.verify_audit(pool))[0]
    again = await prescreen_api.post(URL, json={"events": events}, headers=h)
    assert [i["duplicate"] for i in again.json()["results"]] == [True, True, True, True]


async def test_prescreen_batch_scores_match_one_by_one(prescreen_api: httpx.AsyncClient, keys: dict[str, str],
                                                       pool: asyncpg.Pool) -> None:
    """A message's score does not depend on the other messages in its batch (int8 dynamic quantisation
    would make it so if the batch were run as one tensor)."""
    h = {"X-API-Key": keys["ingest"]}
    texts = ["thanks for the raid, that was a great stream with all of you", "see you tomorrow",
             "good game everyone", "have a nice evening everyone", "see you all tomorrow"]
    batch = (await prescreen_api.post(URL, json={"events": [_event(t) for t in texts]}, headers=h)).json()
    for text, item in zip(texts, batch["results"], strict=True):
        single = (await prescreen_api.post("/v1/events/ingest", json=_event(text), headers=h)).json()
        a = await cases.get_case(pool, item["event_id"])
        b = await cases.get_case(pool, single["event_id"])
        assert a is not None and b is not None
        assert a["risk_score"] == b["risk_score"]


def test_window_rates_count_each_full_window() -> None:
    assert window_rates([0.1, 1.0, 4.9, 5.0, 9.9, 10.5], start=0.0, duration_s=10.0) == [0.6, 0.4]
    assert window_rates([], start=0.0, duration_s=4.0) == []


async def test_bench_ingest_reports_what_the_api_accepted(
        prescreen_api: httpx.AsyncClient, keys: dict[str, str], pool: asyncpg.Pool) -> None:
    transport = prescreen_api._transport  # the in-process app of the prescreen fixture
    report = await run_ingest("http://test", keys["ingest"], batch=10, concurrency=2, duration_s=1.0,
                              transport=transport)
    assert report["accepted"] == report["sent"] > 0 and not report["errors"]
    assert report["statuses"] == {"recorded": report["accepted"]}
    assert report["sample_status"] == {"completed": min(200, report["accepted"])}
    assert report["events_per_s"] > 0 and report["request_p99_ms"] >= report["request_p50_ms"]


@pytest_asyncio.fixture(scope="module")
async def limited_api(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"api": APISettings(rate_limit_per_minute=10)}))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            yield client


async def test_the_rate_limit_counts_each_event_of_a_batch(limited_api: httpx.AsyncClient, pool: asyncpg.Pool,
                                                          client: Client, settings: Settings) -> None:
    if time.time() % 60 > 50:  # the window is the wall-clock minute: start the test inside one
        await asyncio.sleep(61 - time.time() % 60)
    name = f"limited-{uuid.uuid4().hex[:6]}"
    h = {"X-API-Key": await create_key(pool, name=name, role=Role.INGEST)}
    for _ in range(3):
        assert (await limited_api.post("/v1/events/ingest", json=_event("hello"), headers=h)).status_code == 202
    batch = [_event("hello") for _ in range(7)]
    assert (await limited_api.post(URL, json={"events": batch}, headers=h)).status_code == 202  # 3 + 7 = 10
    refused = [_event("one more"), _event("and another")]
    over = await limited_api.post(URL, json={"events": refused}, headers=h)
    assert over.status_code == 429 and "a batch counts one per event" in over.json()["detail"]
    assert int(over.headers["Retry-After"]) > 0
    for ev in refused:  # refused before anything was started
        eid = event_id_for(EventIn.model_validate(ev), secret=settings.secret_key.get_secret_value().encode(),
                           integration=name).event_id
        with pytest.raises(RPCError):
            await client.get_workflow_handle(event_workflow_id(eid)).describe()


class _Proxy:
    """A TCP forwarder to the real Temporal server that the test can cut, like a network partition."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._pipe, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_writer]

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))

    def cut(self) -> None:
        self.server.close()
        for w in self.writers:
            w.transport.abort()


async def test_a_batch_the_workflow_service_refuses_is_207_without_internal_error_text(
        settings: Settings, keys: dict[str, str]) -> None:
    from datetime import timedelta

    from temporalio.client import RetryConfig
    from temporalio.contrib.pydantic import pydantic_data_converter

    proxy = _Proxy(int(settings.temporal_address.rsplit(":", 1)[1]))
    port = await proxy.start()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        services = app.state.services
        live = services.temporal
        services.temporal = await Client.connect(
            f"127.0.0.1:{port}", data_converter=pydantic_data_converter,
            retry_config=RetryConfig(max_retries=1, max_elapsed_time_millis=2000))
        proxy.cut()  # the workflow service is now unreachable
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
                r = await asyncio.wait_for(c.post(URL, json={"events": [_event("hello"), _event("there")]},
                                                  headers={"X-API-Key": keys["ingest"]}), timeout=timedelta(
                                                      seconds=60).total_seconds())
        finally:
            services.temporal = live
    assert r.status_code == 207, r.text
    assert [i["status"] for i in r.json()["results"]] == ["not_accepted", "not_accepted"]
    assert all(i["error"] == "the workflow service is unreachable; send this event again"
               for i in r.json()["results"]), r.text
    assert str(port) not in r.text and "127.0.0.1" not in r.text
