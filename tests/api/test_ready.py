"""Ready means ready: /ready (and `safety up`'s banner) wait until every task queue has a polling worker
and the screening model is loaded, so the first event after a start is handled as fast as the next."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest_asyncio
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from core.readiness import queue_pollers, wait_until_served
from core.settings import Settings
from workers.registry import running_worker
from workflows.contract import TASK_QUEUES


@activity.defn(name="ready_probe_noop")
async def noop() -> None:
    return None


async def test_a_queue_without_a_worker_is_not_served_until_one_polls(client: Client) -> None:
    queue = f"ready-probe-{uuid.uuid4().hex[:8]}"
    [(name, state)] = (await queue_pollers(client, [queue])).items()
    assert name == queue and state.startswith("no worker polling") and f"--queue {queue}" in state
    started = time.monotonic()
    assert not (await wait_until_served(client, [queue], timeout_s=1.0))[queue].startswith("ok")
    assert time.monotonic() - started >= 1.0  # it waited, then said so
    async with Worker(client, task_queue=queue, activities=[noop]):
        checks = await wait_until_served(client, [queue], timeout_s=30)
    assert checks[queue].startswith("ok (")


async def test_ready_scope_api_checks_only_the_apis_own_dependencies(api: httpx.AsyncClient) -> None:
    r = await api.get("/ready", params={"scope": "api"})
    assert r.status_code == 200 and r.json()["checks"] == {"temporal": "ok", "postgres": "ok", "redis": "ok"}
    assert (await api.get("/ready", params={"scope": "everything"})).status_code == 422


@pytest_asyncio.fixture(scope="module")
async def all_workers(settings: Settings, client: Client, pool: asyncpg.Pool) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for queue in TASK_QUEUES:
            await stack.enter_async_context(running_worker(client, queue, settings))
        yield


async def test_ready_names_every_queue_and_the_model_and_answers_200_once_all_are_served(
        api: httpx.AsyncClient, all_workers: None) -> None:
    deadline = time.monotonic() + 30
    while True:
        r = await api.get("/ready")
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert r.status_code == 200, r.text
    checks = r.json()["checks"]
    assert {f"queue:{q}" for q in TASK_QUEUES} <= set(checks)
    assert all(checks[f"queue:{q}"].startswith("ok (") for q in TASK_QUEUES)
    assert checks["model"].startswith("ok")
