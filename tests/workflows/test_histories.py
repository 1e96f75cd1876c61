"""The determinism gate: histories recorded by earlier versions (``tests/workflows/histories/``) replay
against the current workflow code, in the SDK's sandbox as the workers run it.

A change that would break a running workflow (a reordered or new command without ``workflow.patched``,
a renamed activity, a model field added without a default) makes its replay fail here. To record new
histories after an intended change: ``.venv/bin/python -m tests.workflows.record_histories`` (see its
docstring for when to keep the old files). They replay through the workers' converter, payload codec on:
the recorded payloads are plain, as a workflow started before encryption was turned on.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from core.codec import ENCODING, AESGCMCodec, KeyRing
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


# The converter the workers run with: pydantic JSON with the payload codec on (a throwaway key: the recorded
# histories hold no ciphertext). A worker that has encryption on must still replay the workflows that were
# started before it was turned on, so the gate replays them exactly as such a worker would; the codec's
# decode passes a payload without its encoding through unchanged (core/codec.py).
PRODUCTION_CONVERTER = replace(pydantic_data_converter, payload_codec=AESGCMCodec(
    KeyRing(current="gate", keys={"gate": os.urandom(32)})))


def test_recorded_histories_are_plain_so_they_replay_anywhere() -> None:
    """Recorded without the codec (``record_histories`` connects with the plain converter): a history
    encrypted with one machine's development key would not be readable in CI."""
    for path in FILES:
        for event in _load(path).events:
            for p in event.workflow_execution_started_event_attributes.input.payloads:
                assert p.metadata.get("encoding") != ENCODING, f"{path.name} holds encrypted payloads"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_recorded_history_replays_against_the_current_code(path: Path) -> None:
    result = await Replayer(workflows=WORKFLOWS, data_converter=PRODUCTION_CONVERTER).replay_workflow(
        _load(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure}"
