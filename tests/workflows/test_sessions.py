"""Session workflows against real Temporal servers, with a fake ``revert_actions`` under its real name.

The dev-server tests (``wf_client``, namespace ``wftest``) reach the sessions the way the moderation
pipeline does, through ``SessionActivities`` (update-with-start). The timer tests run on the
time-skipping test server, where days pass in milliseconds. Every history written is replayed
against the current workflow code as the determinism gate, and every session still running at the
end of a test is terminated, so none is left waiting on the shared task queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.sessions import SessionActivities
from domain.escalation import BrigadingConfig, EscalationConfig
from domain.models import ActionOutcome, ActionType, ActResult, ChatEvent, HarmCategory, Severity
from domain.sessions import (
    RemoveStrikeInput,
    RevertInput,
    StrikeInput,
    TargetIncidentInput,
    TargetSessionInput,
    UserSessionInput,
)
from tests.doubles.temporal import start_time_skipping
from workflows import contract
from workflows.contract import ACTIONS_QUEUE, MODERATION_QUEUE, target_session_id, user_session_id
from workflows.sessions import TargetSessionWorkflow, UserSessionWorkflow

PLATFORM = "discord"
WORKFLOWS = [UserSessionWorkflow, TargetSessionWorkflow]


class Fakes:
    def __init__(self) -> None:
        # (input, the server's clock when the activity was scheduled)
        self.reverted: list[tuple[RevertInput, datetime]] = []

    def activities(self) -> list[object]:
        fakes = self

        @activity.defn(name=contract.REVERT_ACTIONS)
        async def revert_actions(inp: RevertInput) -> ActResult:
            fakes.reverted.append((inp, activity.info().scheduled_time))
            return ActResult(outcomes=[ActionOutcome(action=ActionType.TIMEOUT, connector="fake", status="reverted",
                                                     idempotency_key=f"{inp.case_id}:revert:timeout")])

        return [revert_actions]


@asynccontextmanager
async def _workers(client: Client, fakes: Fakes, *session_ids: str) -> AsyncIterator[None]:
    """Workers for the test's duration; on the way out (pass or fail) its sessions are terminated."""
    try:
        async with Worker(client, task_queue=MODERATION_QUEUE, workflows=WORKFLOWS), \
                Worker(client, task_queue=ACTIONS_QUEUE, activities=fakes.activities()):
            yield
    finally:
        for wid in session_ids:
            handle = client.get_workflow_handle(wid)
            with contextlib.suppress(RPCError):
                if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                    await handle.terminate("test finished")


async def _histories(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run of a workflow id, oldest first, following the continue-as-new chain backwards."""
    run_id = (await client.get_workflow_handle(workflow_id).describe()).run_id
    out: list[WorkflowHistory] = []
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        out.append(history)
        run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
    return out[::-1]


async def _replay(client: Client, *workflow_ids: str) -> int:
    """Replay every run of each workflow against the current code (determinism gate); returns the run count."""
    runs = 0
    replayer = Replayer(workflows=WORKFLOWS, data_converter=client.data_converter)
    for wid in workflow_ids:
        for history in await _histories(client, wid):
            await replayer.replay_workflow(history)
            runs += 1
    return runs


def _event(author: str, case_id: str) -> ChatEvent:
    return ChatEvent(event_id=case_id, platform=PLATFORM, channel_id="general", author_id=author, target_id="t1",
                     content="you are worthless", received_at=datetime.now(UTC))


def _strike(author: str, case_id: str, at: datetime | None = None, config: EscalationConfig | None = None,
            category: HarmCategory = HarmCategory.TARGETED_INSULT, severity: Severity = Severity.MEDIUM) -> StrikeInput:
    return StrikeInput(platform=PLATFORM, author_id=author, case_id=case_id, category=category, severity=severity,
                       at=at or datetime.now(UTC), config=config or EscalationConfig(),
                       event=_event(author, case_id))


def _uid(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


# --- dev server ----------------------------------------------------------------------------------

async def test_five_strikes_climb_the_ladder_and_an_overturned_case_lowers_the_level(wf_client: Client) -> None:
    author = _uid("a")
    wid = user_session_id(PLATFORM, author)
    sessions = SessionActivities(wf_client)
    async with _workers(wf_client, Fakes(), wid):
        results = [await sessions.apply_strike(_strike(author, f"{author}-c{i}")) for i in range(1, 6)]
        assert [r.level for r in results] == [1, 2, 3, 4, 5]
        assert [[(a.action, a.duration_s) for a in r.actions] for r in results] == [
            [(ActionType.WARN, None)],
            [(ActionType.DELETE, None), (ActionType.WARN, None)],
            [(ActionType.TIMEOUT, 600)],
            [(ActionType.TIMEOUT, 86400)],
            [(ActionType.BAN, None)],
        ]
        handle = wf_client.get_workflow_handle_for(UserSessionWorkflow.run, wid)
        state = await handle.query(UserSessionWorkflow.state)
        assert (state.level, state.strikes_active, state.banned) == (5, 5, True)
        assert [s.case_id for s in state.strikes] == [f"{author}-c{i}" for i in range(1, 6)]
        assert state.pending_lifts == []  # the ban made the pending timeout lifts moot

        # A retried activity gets the original answer and does not count twice.
        again = await sessions.apply_strike(_strike(author, f"{author}-c3"))
        assert again.duplicate and again.level == 3 and again.actions == results[2].actions
        assert again.strikes_active == 5

        # Appeal overturned the banning case: the level drops and the ban flag clears.
        overturn = UserSessionWorkflow.remove_strike
        after = await handle.execute_update(overturn, RemoveStrikeInput(case_id=f"{author}-c5"))
        assert (after.level, after.strikes_active, after.banned) == (4, 4, False)
        after = await handle.execute_update(overturn, RemoveStrikeInput(case_id=f"{author}-c1"))
        assert after.level == 3
        # Removing again is accepted (a retried appeal); a case the session never counted is refused.
        assert (await handle.execute_update(overturn, RemoveStrikeInput(case_id=f"{author}-c1"))).level == 3
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(overturn, RemoveStrikeInput(case_id="never-seen"))
        # A late retry of an overturned case does not bring its strike back.
        late = await sessions.apply_strike(_strike(author, f"{author}-c5"))
        assert late.overturned and late.actions == [] and late.level == 3
        # The next real offence is the fourth: timeout 24 h.
        nxt = await sessions.apply_strike(_strike(author, f"{author}-c6"))
        assert nxt.level == 4 and [(a.action, a.duration_s) for a in nxt.actions] == [(ActionType.TIMEOUT, 86400)]
        assert (await handle.query(UserSessionWorkflow.state)).level == 4
        await _replay(wf_client, wid)


async def test_update_with_start_answers_in_one_call_and_rejects_the_wrong_session(wf_client: Client) -> None:
    author = _uid("a")
    wid = user_session_id(PLATFORM, author)
    sessions = SessionActivities(wf_client)
    async with _workers(wf_client, Fakes(), wid):
        # No session exists yet: one call starts it and returns the level.
        first = await sessions.apply_strike(_strike(author, "c1", category=HarmCategory.THREAT,
                                                    severity=Severity.HIGH))
        assert first.level == 3 and first.weighted_score == 3.0
        assert [a.action for a in first.actions] == [ActionType.TIMEOUT]
        desc = await wf_client.get_workflow_handle(wid).describe()
        assert desc.status == WorkflowExecutionStatus.RUNNING and desc.workflow_type == "UserSessionWorkflow"
        # Category ``none`` carries no weight: no strike, no action.
        zero = await sessions.apply_strike(_strike(author, "c2", category=HarmCategory.NONE))
        assert zero.actions == [] and zero.strikes_active == 1
        # The pending timeout lift is visible to moderators.
        state = await wf_client.get_workflow_handle_for(UserSessionWorkflow.run, wid).query(UserSessionWorkflow.state)
        assert [p.case_id for p in state.pending_lifts] == ["c1"] and state.pending_lifts[0].duration_s == 600
        # A strike addressed to the wrong session is rejected before it touches the state or history.
        with pytest.raises(WorkflowUpdateFailedError):
            await wf_client.get_workflow_handle(wid).execute_update(
                UserSessionWorkflow.record_strike, _strike("someone-else", "c3"))
        assert (await wf_client.get_workflow_handle_for(UserSessionWorkflow.run, wid)
                .query(UserSessionWorkflow.state)).strikes_recorded == 1
        await _replay(wf_client, wid)


async def test_continue_as_new_keeps_strikes_and_loses_no_concurrent_update(wf_client: Client) -> None:
    author = _uid("a")
    wid = user_session_id(PLATFORM, author)
    sessions = SessionActivities(wf_client)
    async with _workers(wf_client, Fakes(), wid):
        # Started with a tiny history limit; the pipeline's update-with-start then attaches to it.
        await wf_client.start_workflow(UserSessionWorkflow.run,
                                       UserSessionInput(platform=PLATFORM, author_id=author, max_history_events=25),
                                       id=wid, task_queue=MODERATION_QUEUE)
        sequential = [await sessions.apply_strike(_strike(author, f"s{i}")) for i in range(5)]
        assert [r.level for r in sequential] == [1, 2, 3, 4, 5]
        burst = await asyncio.gather(*(sessions.apply_strike(_strike(author, f"b{i}")) for i in range(30)))
        assert not any(r.duplicate for r in burst)
        assert sorted(r.strikes_active for r in burst) == list(range(6, 36))  # each one counted exactly once
        state = await wf_client.get_workflow_handle_for(UserSessionWorkflow.run, wid).query(UserSessionWorkflow.state)
        assert state.strikes_recorded == 35 and state.strikes_active == 35 and state.level == 5
        assert {s.case_id for s in state.strikes} == {f"s{i}" for i in range(5)} | {f"b{i}" for i in range(30)}
        assert state.runs > 1
        runs = await _replay(wf_client, wid)
        assert runs == state.runs > 1


async def test_twenty_distinct_authors_raise_brigading_and_nineteen_do_not(wf_client: Client) -> None:
    sessions = SessionActivities(wf_client)
    brigaded, calm = _uid("t"), _uid("t")

    def incident(target: str, author: str, case_id: str) -> TargetIncidentInput:
        return TargetIncidentInput(platform=PLATFORM, target_id=target, author_id=author, case_id=case_id,
                                   at=datetime.now(UTC))

    ids = (target_session_id(PLATFORM, brigaded), target_session_id(PLATFORM, calm))
    async with _workers(wf_client, Fakes(), *ids):
        # A tiny history limit, so the burst also crosses continue-as-new boundaries.
        await wf_client.start_workflow(TargetSessionWorkflow.run,
                                       TargetSessionInput(platform=PLATFORM, target_id=brigaded, max_history_events=20),
                                       id=ids[0], task_queue=MODERATION_QUEUE)
        answers = await asyncio.gather(*(sessions.record_target_incident(incident(brigaded, f"a{i}", f"{brigaded}-{i}"))
                                         for i in range(20)))
        assert sum(a.newly_raised for a in answers) == 1
        raised = next(a for a in answers if a.newly_raised)
        assert raised.brigading and raised.distinct_authors == 20
        state = await wf_client.get_workflow_handle_for(
            TargetSessionWorkflow.run, target_session_id(PLATFORM, brigaded)).query(TargetSessionWorkflow.state)
        assert state.brigading and state.notify_moderators and state.brigading_since is not None
        assert state.slow_mode_recommended and state.review_factor == BrigadingConfig().review_factor
        assert state.distinct_authors == 20 and state.incidents_recorded == 20 and state.runs > 1

        # Nineteen authors, some of them repeating themselves, stay below the threshold.
        calm_calls = [incident(calm, f"a{i}", f"{calm}-{i}") for i in range(19)]
        calm_calls += [incident(calm, f"a{i}", f"{calm}-again-{i}") for i in range(5)]
        answers = await asyncio.gather(*(sessions.record_target_incident(c) for c in calm_calls))
        assert not any(a.brigading for a in answers)
        state = await wf_client.get_workflow_handle_for(
            TargetSessionWorkflow.run, target_session_id(PLATFORM, calm)).query(TargetSessionWorkflow.state)
        assert not state.brigading and state.distinct_authors == 19 and state.incidents_in_window == 24
        assert state.review_factor is None and not state.slow_mode_recommended and not state.notify_moderators
        await _replay(wf_client, *ids)


# --- time-skipping server ------------------------------------------------------------------------

@pytest_asyncio.fixture(scope="module")
async def skipping() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_time_skipping()
    yield env
    await env.shutdown()


async def test_a_temporary_timeout_is_lifted_by_its_timer(skipping: WorkflowEnvironment) -> None:
    client, fakes, author = skipping.client, Fakes(), _uid("a")
    async with _workers(client, fakes, user_session_id(PLATFORM, author)):
        handle = await client.start_workflow(UserSessionWorkflow.run,
                                             UserSessionInput(platform=PLATFORM, author_id=author),
                                             id=user_session_id(PLATFORM, author), task_queue=MODERATION_QUEUE)
        for i in range(1, 4):
            sent_at = await skipping.get_current_time()
            result = await handle.execute_update(UserSessionWorkflow.record_strike,
                                                 _strike(author, f"c{i}", at=sent_at))
        assert [(a.action, a.duration_s) for a in result.actions] == [(ActionType.TIMEOUT, 600)]

        await skipping.sleep(timedelta(minutes=9))
        assert fakes.reverted == []
        [pending] = (await handle.query(UserSessionWorkflow.state)).pending_lifts
        assert pending.case_id == "c3" and pending.until - sent_at >= timedelta(seconds=600)

        await skipping.sleep(timedelta(minutes=2))
        state = await handle.query(UserSessionWorkflow.state)
        for _ in range(100):  # the activity runs in real time once its timer fired; bounded wait
            if state.lifted:
                break
            await asyncio.sleep(0.05)
            state = await handle.query(UserSessionWorkflow.state)
        assert [(lift.case_id, lift.ok) for lift in state.lifted] == [("c3", True)] and state.pending_lifts == []
        assert "timeout: reverted" in state.lifted[0].detail
        [(reverted, scheduled_at)] = fakes.reverted
        assert reverted.case_id == "c3" and reverted.event.channel_id == "general"
        assert reverted.event.author_id == author and "600s" in reverted.reason
        assert scheduled_at >= pending.until  # lifted by the timer, not before the timeout ran out
        await _replay(client, handle.id)


async def test_strikes_decay_after_the_window_and_the_idle_session_ends(skipping: WorkflowEnvironment) -> None:
    client, author = skipping.client, _uid("a")
    config = EscalationConfig(decay_window_s=3600)
    async with _workers(client, Fakes(), user_session_id(PLATFORM, author)):
        handle = await client.start_workflow(UserSessionWorkflow.run,
                                             UserSessionInput(platform=PLATFORM, author_id=author, config=config),
                                             id=user_session_id(PLATFORM, author), task_queue=MODERATION_QUEUE)
        for i in range(1, 3):
            result = await handle.execute_update(
                UserSessionWorkflow.record_strike,
                _strike(author, f"c{i}", at=await skipping.get_current_time(), config=config))
        assert result.level == 2

        await skipping.sleep(timedelta(minutes=45))
        # Both strikes now weigh a quarter each: together less than one offence, so level 1. A query
        # answers as of the workflow's last task (``as_of``); an offence that carries no weight wakes it.
        await handle.execute_update(UserSessionWorkflow.record_strike,
                                    _strike(author, "c0", at=await skipping.get_current_time(), config=config,
                                            category=HarmCategory.NONE))
        state = await handle.query(UserSessionWorkflow.state)
        assert state.level == 1 and 0.45 < state.weighted_score < 0.55 and state.strikes_active == 2
        assert state.as_of is not None and state.as_of - state.strikes[0].at >= timedelta(minutes=45)

        # After the window nothing is left and the session ends itself.
        final = await handle.result()
        assert (final.level, final.strikes, final.weighted_score) == (0, [], 0.0)
        assert final.strikes_recorded == 2
        await _replay(client, handle.id)


async def test_brigading_flag_clears_after_the_quiet_period(skipping: WorkflowEnvironment) -> None:
    client, target = skipping.client, _uid("t")
    config = BrigadingConfig(distinct_authors=3, window_s=60, quiet_period_s=300)
    async with _workers(client, Fakes(), target_session_id(PLATFORM, target)):
        handle = await client.start_workflow(TargetSessionWorkflow.run,
                                             TargetSessionInput(platform=PLATFORM, target_id=target, config=config),
                                             id=target_session_id(PLATFORM, target), task_queue=MODERATION_QUEUE)
        for i in range(3):
            answer = await handle.execute_update(
                TargetSessionWorkflow.record_incident,
                TargetIncidentInput(platform=PLATFORM, target_id=target, author_id=f"a{i}", case_id=f"c{i}",
                                    at=await skipping.get_current_time(), config=config))
        assert answer.brigading and answer.newly_raised
        raised_at = answer.brigading_since
        assert raised_at is not None

        await skipping.sleep(timedelta(minutes=4))
        assert (await handle.query(TargetSessionWorkflow.state)).brigading

        final = await handle.result()  # skips time until the quiet-period timer clears the flag
        assert not final.brigading and not final.slow_mode_recommended and final.review_factor is None
        assert final.cleared_at is not None and final.cleared_at - raised_at >= timedelta(seconds=300)
        await _replay(client, handle.id)
