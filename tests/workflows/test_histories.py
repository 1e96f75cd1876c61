"""The determinism gate: histories recorded by earlier versions (``tests/workflows/histories/``) replay
against the current workflow code, in the SDK's sandbox as the workers run it.

A change that would break a running workflow (a reordered or new command without ``workflow.patched``,
a renamed activity, a model field added without a default) makes its replay fail here. To record new
histories after an intended change: ``.venv/bin/python -m tests.workflows.record_histories`` (see its
docstring for when to keep the old files).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows import contract
from workflows.appeals import AppealWorkflow
from workflows.moderate import ModerateEventWorkflow
from workflows.sessions import TargetSessionWorkflow, UserSessionWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"
FILES = sorted(HISTORIES.glob("*.json"))
WORKFLOWS = [ModerateEventWorkflow, UserSessionWorkflow, TargetSessionWorkflow, AppealWorkflow]


def _load(path: Path) -> WorkflowHistory:
    doc = json.loads(path.read_text())
    return WorkflowHistory.from_json(doc["workflow_id"], doc["history"])


def _type(history: WorkflowHistory) -> str:
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


def test_every_workflow_path_has_a_recorded_history() -> None:
    by_name = {p.stem: _load(p) for p in FILES}
    assert {_type(h) for h in by_name.values()} == {
        contract.MODERATE_EVENT_WORKFLOW, contract.USER_SESSION_WORKFLOW, contract.TARGET_SESSION_WORKFLOW,
        contract.APPEAL_WORKFLOW}
    assert {"moderate_clean", "moderate_action", "moderate_review", "appeal_overturn"} <= set(by_name)
    for session in ("user_session_run1", "target_session_run1"):  # runs that ended in continue-as-new
        assert by_name[session].events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    review = [e for e in by_name["moderate_review"].events
              if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
    assert review, "the review history must contain the moderator's submit_review update"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_recorded_history_replays_against_the_current_code(path: Path) -> None:
    result = await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(
        _load(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure}"
