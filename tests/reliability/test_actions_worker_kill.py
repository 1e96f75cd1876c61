"""The actions worker SIGKILLed while its platform call is in flight, then restarted: the case still
completes with the ban applied, and the platform saw exactly one ban request (issue #5, done-when).

Real pieces: the actions worker is ``python -m workers.run actions``, its own OS process, with the
real ``ActionActivities``, Discord connector and PostgreSQL ledger, pointed at the session's Temporal
dev server (namespace ``wftest``) and at a fake Discord that speaks the real REST shapes. The rest of
``ModerateEventWorkflow`` (screening, reasoning, recording, the escalation ladder) runs in this process
with the fake activities of the workflow tests, so the case reaches the act stage in milliseconds.

The fake applies the ban when the PUT arrives and then holds its answer (``hang`` on ``ban``), like a
platform that processed the request while the worker died. The test waits until the ban is in place,
``kill -9``s the worker, starts a new one and lets Temporal retry the activity once its 30 s
start-to-close timeout has expired (a SIGKILLed worker cannot report anything, which is why this test
takes about 40 s and is in the slow suite). The retry finds the ledger row 'calling', reads the ban
back (GET ban) and records it applied without a second PUT.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from core.codec import key_spec
from core.settings import Settings
from domain.models import (
    ActionType,
    CaseOutcome,
    ChatEvent,
    HarmCategory,
    ModerateEventInput,
    PlannedAction,
    PolicyConfig,
    Severity,
)
from ops.embedded import free_port
from tests.conftest import WORKFLOW_TEST_NAMESPACE
from tests.doubles.fake_platforms import FakeDiscord
from tests.harness import REPO
from tests.workflows.test_moderate_workflow import Fakes, _verdict
from workflows import contract
from workflows.contract import ACTIONS_QUEUE, MODERATION_QUEUE, TASK_QUEUES, event_workflow_id
from workflows.moderate import ACT_TIMEOUT, ModerateEventWorkflow

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

WORKER_START_S = 60.0


class ActionsWorkerProcess:
    """One ``python -m workers.run actions`` process at a time; every process it started is tracked so
    teardown can end exactly those (a test may leave one killed and one running)."""

    def __init__(self, settings: Settings, discord: FakeDiscord, log_dir: Path) -> None:
        self.log_path = log_dir / "actions-worker.log"
        metrics_port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SAFETY_")},
            "SAFETY_DATA_DIR": str(log_dir), "SAFETY_LOG_LEVEL": "INFO",
            "SAFETY_TEMPORAL__ADDRESS": settings.temporal_address,
            "SAFETY_TEMPORAL__NAMESPACE": WORKFLOW_TEST_NAMESPACE,
            "SAFETY_DATABASE__URL": settings.database_url, "SAFETY_REDIS__URL": settings.redis_url,
            "SAFETY_AUDIT_KEY": settings.audit_key_bytes().decode(),  # the chain's key, not a new dev key
            # Only the actions queue's port (base + its index) is bound; the SDK metrics are off.
            "SAFETY_WORKER__METRICS_BASE_PORT": str(metrics_port - TASK_QUEUES.index(ACTIONS_QUEUE)),
            "SAFETY_WORKER__SDK_METRICS_BASE_PORT": "0",
            "SAFETY_CONNECTOR__DISCORD_API_BASE": discord.base_url,
            "SAFETY_CONNECTOR__DISCORD_BOT_TOKEN": discord.token,
            "SAFETY_CONNECTOR__DISCORD_GUILD_ID": discord.guild_id,
            # the payload key of the test's own client (its data dir differs from this worker's)
            "SAFETY_CODEC__KEYS": key_spec(settings),
        }
        self.started: list[subprocess.Popen[bytes]] = []

    @property
    def current(self) -> subprocess.Popen[bytes]:
        return self.started[-1]

    def start(self) -> None:
        """Start a worker and wait until it polls the actions queue."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "workers.run", ACTIONS_QUEUE], env=self.env, cwd=REPO,
                                    stdout=log, stderr=subprocess.STDOUT)
        self.started.append(proc)
        deadline = time.monotonic() + WORKER_START_S
        while b"worker running" not in self.log_path.read_bytes()[offset:]:
            assert proc.poll() is None, f"actions worker exited ({proc.returncode}):\n{self.log_tail()}"
            assert time.monotonic() < deadline, "actions worker not running in time:\n" + self.log_tail()
            time.sleep(0.1)

    def kill(self) -> None:
        """``kill -9``: no shutdown, no activity failure reported to Temporal, the HTTP call cut off."""
        os.kill(self.current.pid, signal.SIGKILL)
        self.current.wait(10)

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)

    def log_tail(self, n: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


@pytest.fixture
def discord() -> Iterator[FakeDiscord]:
    with FakeDiscord() as fake:
        yield fake


@pytest.fixture
def actions_worker(settings: Settings, discord: FakeDiscord, pool: asyncpg.Pool,
                   tmp_path: Path) -> Iterator[ActionsWorkerProcess]:
    # ``pool`` first: the session database is created and migrated before the worker opens its own pool.
    worker = ActionsWorkerProcess(settings, discord, tmp_path)
    try:
        yield worker
    finally:
        worker.stop_all()


@pytest_asyncio.fixture
async def workflow_side(wf_client: Client) -> AsyncIterator[Fakes]:
    """Every queue but ``actions`` served in this process with the workflow tests' fakes: a confirmed
    critical threat, and an escalation ladder whose rung is a ban (so the case deletes and bans)."""
    fakes = Fakes()
    fakes.reason = lambda _: _verdict(category=HarmCategory.THREAT, severity=Severity.CRITICAL,
                                      policy_clause="H3", recommended_action=ActionType.BAN)
    fakes.rung = [PlannedAction(action=ActionType.BAN)]
    workers = [Worker(wf_client, task_queue=q, workflows=[ModerateEventWorkflow] if q == MODERATION_QUEUE else [],
                      activities=fakes.activities()) for q in TASK_QUEUES if q != ACTIONS_QUEUE]
    for w in workers:
        await w.__aenter__()
    try:
        yield fakes
    finally:
        for w in workers:
            await w.__aexit__(None, None, None)


async def _until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        await asyncio.sleep(0.02)


async def test_killing_the_actions_worker_mid_ban_never_bans_twice(
        wf_client: Client, discord: FakeDiscord, actions_worker: ActionsWorkerProcess, workflow_side: Fakes,
        pool: asyncpg.Pool) -> None:
    user, message = str(uuid.uuid4().int)[:18], str(uuid.uuid4().int)[:18]
    ev = ChatEvent(event_id=str(uuid.uuid4()), platform="discord", channel_id=str(uuid.uuid4().int)[:18],
                   author_id=user, content="score=0.95 i will find you", message_id=message,
                   received_at=datetime.now(UTC))
    discord.configure(hang=True, slow_actions=["ban"])  # the ban lands; its answer never comes back
    actions_worker.start()
    handle = await wf_client.start_workflow(
        ModerateEventWorkflow.run,
        ModerateEventInput(event=ev, policy=PolicyConfig(reasoning_deadline_s=5, reasoning_attempt_timeout_s=2)),
        id=event_workflow_id(ev.event_id), task_queue=MODERATION_QUEUE)

    await _until(lambda: user in discord.bans, "the first worker's ban reaching Discord")
    actions_worker.kill()
    discord.configure(hang=False, slow_actions=[])
    assert (await pool.fetchval("SELECT status FROM actions WHERE idempotency_key = $1",
                                f"{ev.event_id}:ban")) == "calling"
    actions_worker.start()  # as the supervisor (or Kubernetes) would

    outcome: CaseOutcome = await asyncio.wait_for(handle.result(), ACT_TIMEOUT.total_seconds() + 60)

    statuses = {o.action: (o.status, o.detail) for o in outcome.actions}
    assert statuses[ActionType.BAN][0] == "applied", statuses
    assert "already in place after an interrupted attempt" in statuses[ActionType.BAN][1]
    assert statuses[ActionType.DELETE][0] == "duplicate", statuses  # applied before the kill, not repeated
    # Checked at the platform: one PUT ban and one DELETE message, ever; the retry only read the ban back.
    assert discord.count("ban", user) == 1, [(c.method, c.path) for c in discord.calls]
    assert discord.count("delete", message) == 1
    assert discord.count("read_ban", user) == 1 and discord.bans == {user}
    rows = await pool.fetch("SELECT action, status FROM actions WHERE case_id = $1", ev.event_id)
    assert {r["action"]: r["status"] for r in rows} == {"delete": "applied", "ban": "applied"}
    assert await _act_attempts(handle) == [2], "the restarted worker's retry (attempt 2) must finish the act"


async def _act_attempts(handle: WorkflowHandle[Any, Any]) -> list[int]:
    """Attempt numbers of the act activity as the history records them (only the last start is recorded)."""
    history = await handle.fetch_history()
    scheduled = {e.event_id for e in history.events
                 if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                 and e.activity_task_scheduled_event_attributes.activity_type.name == contract.EXECUTE_ACTIONS}
    return [e.activity_task_started_event_attributes.attempt for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
            and e.activity_task_started_event_attributes.scheduled_event_id in scheduled]
