"""AppealWorkflow on the dev server (namespace wftest): a fake ``revert_actions``, a stand-in user-session
workflow answering ``remove_strike``, and the real strike-removal and recording activities on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import pytest_asyncio
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.appeals import AppealActivities
from core.storage import appeals, stats
from core.storage.cases import record_case
from domain.actions import RevertInput
from domain.appeals import (
    AppealInput,
    AppealOutcomeRecord,
    AppealOutcomeResult,
    AppealResult,
    RemoveStrikeResult,
    RemoveUserStrikeInput,
)
from domain.models import (
    ActionOutcome,
    ActionType,
    ActResult,
    CaseRecord,
    ChatEvent,
    DecideResult,
    Decision,
    HarmCategory,
    ScreenResult,
)
from domain.sessions import RemoveStrikeInput
from workflows.appeals import AppealWorkflow
from workflows.contract import (
    RECORD_APPEAL_OUTCOME,
    REMOVE_STRIKE_UPDATE,
    REMOVE_USER_STRIKE,
    REVERT_ACTIONS,
    STATE_QUERY,
    appeal_workflow_id,
    user_session_id,
)


@workflow.defn(name="StandInUserSession")
class StandInUserSession:
    """Stands in for the user-session workflow: holds strikes (case ids) and drops one on ``remove_strike``."""

    def __init__(self) -> None:
        self.strikes: list[str] = []
        self.reasons: list[str] = []
        self.done = False

    @workflow.run
    async def run(self, strikes: list[str]) -> None:
        self.strikes = list(strikes)
        await workflow.wait_condition(lambda: self.done)

    @workflow.update(name=REMOVE_STRIKE_UPDATE)
    async def remove_strike(self, inp: RemoveStrikeInput) -> None:
        self.strikes.remove(inp.case_id)
        self.reasons.append(inp.reason)

    @workflow.query(name=STATE_QUERY)
    def state(self) -> dict[str, list[str]]:
        return {"strikes": self.strikes, "reasons": self.reasons}


@dataclass
class Harness:
    client: Client
    pool: asyncpg.Pool
    moderation_queue: str
    actions_queue: str
    session_queue: str
    calls: list[str] = field(default_factory=list)
    reverted: list[RevertInput] = field(default_factory=list)


@pytest_asyncio.fixture
async def harness(wf_client: Client, pool: asyncpg.Pool) -> AsyncIterator[Harness]:
    suffix = uuid.uuid4().hex[:8]
    hx = Harness(wf_client, pool, f"appeals-mod-{suffix}", f"appeals-act-{suffix}",
                 f"appeals-session-{suffix}")
    real = AppealActivities(pool, wf_client)

    @activity.defn(name=REVERT_ACTIONS)
    async def revert(inp: RevertInput) -> ActResult:
        hx.calls.append("revert")
        hx.reverted.append(inp)
        return ActResult(outcomes=[ActionOutcome(action=ActionType.TIMEOUT, connector="log", status="reverted",
                                                 idempotency_key=f"{inp.case_id}:revert:timeout")])

    @activity.defn(name=REMOVE_USER_STRIKE)
    async def remove_strike(inp: RemoveUserStrikeInput) -> RemoveStrikeResult:
        hx.calls.append("remove_strike")
        return await real.remove_user_strike(inp)

    @activity.defn(name=RECORD_APPEAL_OUTCOME)
    async def record(inp: AppealOutcomeRecord) -> AppealOutcomeResult:
        hx.calls.append("record")
        return await real.record_appeal_outcome(inp)

    # AppealWorkflow runs in the default sandbox, as in production; the stand-in session has its own queue.
    async with (Worker(wf_client, task_queue=hx.moderation_queue, activities=[remove_strike, record],
                       workflows=[AppealWorkflow]),
                Worker(wf_client, task_queue=hx.session_queue, workflows=[StandInUserSession],
                       workflow_runner=UnsandboxedWorkflowRunner()),
                Worker(wf_client, task_queue=hx.actions_queue, activities=[revert])):
        yield hx


async def _actioned_case(pool: asyncpg.Pool, author: str) -> ChatEvent:
    cid = f"appeal-case-{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    ev = ChatEvent(event_id=cid, platform="twitch", channel_id="chan-9", author_id=author, target_id="victim-9",
                   content="you are trash", message_id=f"m-{cid}", received_at=now)
    await record_case(pool, CaseRecord(
        case_id=cid, event=ev, path="full", screen=ScreenResult(risk_score=0.9),
        decision=DecideResult(decision=Decision.ACTION, category=HarmCategory.TARGETED_INSULT),
        actions=[ActionOutcome(action=ActionType.TIMEOUT, connector="log", idempotency_key=f"{cid}:timeout",
                               status="applied")], completed_at=now))
    return ev


async def _overturn(hx: Harness, ev: ChatEvent) -> tuple[AppealResult, str]:
    appeal = await appeals.file_appeal(hx.pool, case_id=ev.event_id, reason="it was sarcasm", filed_by="ingest:t")
    assert appeal is not None
    wid = appeal_workflow_id(appeal["id"])
    await appeals.mark_overturn_pending(hx.pool, appeal_id=appeal["id"], decided_by="moderator:m1",
                                          note="context shows banter", workflow_id=wid)
    result = await hx.client.execute_workflow(
        AppealWorkflow.run, AppealInput(appeal_id=appeal["id"], case_id=ev.event_id, event=ev, reason="it was sarcasm",
                                        decided_by="moderator:m1", note="context shows banter",
                                        actions_queue=hx.actions_queue),
        id=wid, task_queue=hx.moderation_queue)
    return result, appeal["id"]


async def test_overturn_reverts_then_removes_the_strike_then_records(harness: Harness) -> None:
    hx = harness
    author = f"author-{uuid.uuid4().hex[:6]}"
    ev = await _actioned_case(hx.pool, author)
    session = await hx.client.start_workflow(StandInUserSession.run, [ev.event_id, "older-case"],
                                             id=user_session_id("twitch", author), task_queue=hx.session_queue)
    before = await stats.compute_stats(hx.pool, window="1h", sla_minutes=60)

    result, appeal_id = await _overturn(hx, ev)

    assert hx.calls == ["revert", "remove_strike", "record"]
    assert result.status == "overturned" and result.strike_removed
    assert hx.reverted[0].case_id == ev.event_id and hx.reverted[0].event.author_id == author
    assert "sarcasm" in hx.reverted[0].reason
    state = await session.query(StandInUserSession.state)
    assert state["strikes"] == ["older-case"] and state["reasons"] == [f"appeal {appeal_id} overturned"]
    assert "revert: timeout reverted" in result.details
    await session.terminate("test done")

    appeal = await appeals.get_appeal(hx.pool, appeal_id=appeal_id)
    assert appeal is not None and appeal["status"] == "overturned" and appeal["decided_by"] == "moderator:m1"
    assert appeal["pending_outcome"] is None
    assert await hx.pool.fetchval("SELECT false_positive FROM cases WHERE case_id = $1", ev.event_id) is True
    label = await hx.pool.fetchrow("SELECT label, category FROM labels WHERE case_id = $1 AND source = 'appeal'",
                                   ev.event_id)
    assert label is not None and label["label"] is False and label["category"] == "none"
    audit = await hx.pool.fetch("SELECT kind, actor, payload FROM audit_log WHERE case_id = $1 ORDER BY seq",
                                ev.event_id)
    assert [a["kind"] for a in audit] == ["decision", "appeal.filed", "appeal.decided"]
    assert audit[-1]["actor"] == "moderator:m1" and audit[-1]["payload"]["outcome"] == "overturned"

    after = await stats.compute_stats(hx.pool, window="1h", sla_minutes=60)
    assert after["overturned"] == before["overturned"] + 1
    assert after["actioned"] == before["actioned"]  # the case was actioned before the appeal, too
    assert after["false_positive_rate"] == after["overturned"] / after["actioned"]

    from core.metrics import FALSE_POSITIVE_RATE

    assert FALSE_POSITIVE_RATE._value.get() > 0  # set from the same data over 7 days


async def test_overturn_without_a_session_still_completes(harness: Harness) -> None:
    ev = await _actioned_case(harness.pool, f"nosession-{uuid.uuid4().hex[:6]}")
    result, appeal_id = await _overturn(harness, ev)
    assert result.status == "overturned" and not result.strike_removed
    assert any("nothing to remove" in d for d in result.details)
    appeal = await appeals.get_appeal(harness.pool, appeal_id=appeal_id)
    assert appeal is not None and appeal["status"] == "overturned"


async def test_recording_twice_changes_nothing(harness: Harness) -> None:
    """An activity retry after the outcome was written must not write a second audit entry."""
    ev = await _actioned_case(harness.pool, f"retry-{uuid.uuid4().hex[:6]}")
    _, appeal_id = await _overturn(harness, ev)
    acts = AppealActivities(harness.pool, harness.client)
    again = await acts.record_appeal_outcome(AppealOutcomeRecord(appeal_id=appeal_id, decided_by="moderator:m1"))
    assert again.status == "overturned"
    n = await harness.pool.fetchval("SELECT count(*) FROM audit_log WHERE case_id = $1 AND kind = 'appeal.decided'",
                                    ev.event_id)
    assert n == 1


async def test_an_overturn_under_an_upheld_appeal_reverts_nothing(wf_client: Client, pool: asyncpg.Pool) -> None:
    """The race of issue 15: the appeal was upheld while an overturn workflow was starting. The real
    revert activity re-reads the appeal, refuses (non-retryable), and the workflow ends 'refused'
    without touching the strike or the recorded outcome."""
    from activities.actions import ActionActivities
    from activities.connectors import ConnectorRouter, LogConnector

    suffix = uuid.uuid4().hex[:8]
    real = AppealActivities(pool, wf_client)
    calls: list[str] = []

    @activity.defn(name=REMOVE_USER_STRIKE)
    async def remove_strike(inp: RemoveUserStrikeInput) -> RemoveStrikeResult:
        calls.append("remove_strike")
        return await real.remove_user_strike(inp)

    @activity.defn(name=RECORD_APPEAL_OUTCOME)
    async def record(inp: AppealOutcomeRecord) -> AppealOutcomeResult:
        calls.append("record")
        return await real.record_appeal_outcome(inp)

    ev = await _actioned_case(pool, f"upheld-{suffix}")
    appeal = await appeals.file_appeal(pool, case_id=ev.event_id, reason="sarcasm", filed_by="ingest:t")
    assert appeal is not None
    assert (await appeals.decide_uphold(pool, appeal_id=appeal["id"], decided_by="moderator:m2", note="stands"))
    acts = ActionActivities(pool, ConnectorRouter(LogConnector(), {}))
    async with (Worker(wf_client, task_queue=f"appeals-mod-{suffix}", activities=[remove_strike, record],
                       workflows=[AppealWorkflow]),
                Worker(wf_client, task_queue=f"appeals-act-{suffix}", activities=[acts.revert_actions])):
        result = await wf_client.execute_workflow(
            AppealWorkflow.run, AppealInput(appeal_id=appeal["id"], case_id=ev.event_id, event=ev, reason="sarcasm",
                                            decided_by="moderator:m1", note="", actions_queue=f"appeals-act-{suffix}"),
            id=appeal_workflow_id(appeal["id"]), task_queue=f"appeals-mod-{suffix}")
    assert result.status == "refused" and not result.reverted and calls == []
    assert "upheld by moderator:m2" in result.details[0]
    row = await appeals.get_appeal(pool, appeal_id=appeal["id"])
    assert row is not None and row["status"] == "upheld" and row["decided_by"] == "moderator:m2"
