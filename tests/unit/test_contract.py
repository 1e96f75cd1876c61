"""The Temporal contract's values are recorded in histories, visibility and the deployed manifests.

Every other module and test imports them from ``workflows/contract.py``; this test is the one place
that writes them out, so a rename shows up here as a deliberate, reviewed change (it would break
running workflows and the recorded histories in ``tests/workflows/histories/``).
"""

from __future__ import annotations

import ast
from pathlib import Path

from workflows import contract

REPO = Path(__file__).resolve().parents[2]


def test_values_are_the_recorded_ones() -> None:
    assert contract.TASK_QUEUES == ("moderation", "screening", "context", "reasoning", "actions")
    assert (contract.MODERATE_EVENT_WORKFLOW, contract.USER_SESSION_WORKFLOW, contract.TARGET_SESSION_WORKFLOW,
            contract.APPEAL_WORKFLOW) == ("ModerateEventWorkflow", "UserSessionWorkflow", "TargetSessionWorkflow",
                                          "AppealWorkflow")
    assert (contract.SUBMIT_REVIEW_UPDATE, contract.CASE_STATUS_QUERY, contract.RECORD_STRIKE_UPDATE,
            contract.REMOVE_STRIKE_UPDATE, contract.RECORD_INCIDENT_UPDATE, contract.STATE_QUERY) == (
        "submit_review", "status", "record_strike", "remove_strike", "record_incident", "state")
    assert [contract.SCREEN_EVENT, contract.RETRIEVE_CONTEXT, contract.REASON_ABOUT_CASE, contract.EXECUTE_ACTIONS,
            contract.REVERT_ACTIONS, contract.RECORD_CASE, contract.RECORD_REVIEW, contract.ESCALATE_REVIEW,
            contract.APPLY_STRIKE, contract.RECORD_TARGET_INCIDENT, contract.REMOVE_USER_STRIKE,
            contract.RECORD_APPEAL_OUTCOME] == [
        "screen_event", "retrieve_context", "reason_about_case", "execute_actions", "revert_actions", "record_case",
        "record_review", "escalate_review", "apply_strike", "record_target_incident", "remove_user_strike",
        "record_appeal_outcome"]
    assert contract.event_workflow_id("e1") == "event-e1"
    # Changed on purpose in issue 15 (was user-twitch-u1 / target-discord-t1, which collided across
    # platforms): sessions under the old ids are no longer reached by new cases (docs/operations.md).
    assert contract.user_session_id("twitch", "u1") == "user-twitch:u1"
    assert contract.target_session_id("discord", "t1") == "target-discord:t1"
    assert contract.appeal_workflow_id("42") == "appeal-42"
    assert contract.SEARCH_ATTRIBUTES == {
        "CaseId": "Keyword", "Platform": "Keyword", "ChannelId": "Keyword", "AuthorId": "Keyword",
        "TargetId": "Keyword", "Category": "Keyword", "Decision": "Keyword", "RiskScore": "Double",
        "NeedsReview": "Bool"}


def test_session_ids_do_not_collide_across_platforms() -> None:
    """``discord-x`` + ``1`` and ``discord`` + ``x-1`` were both ``user-discord-x-1``: one author's strikes
    counted against another platform's user."""
    for build in (contract.user_session_id, contract.target_session_id):
        assert build("discord-x", "1") != build("discord", "x-1")
        assert build("a:b", "c") != build("a", "b:c")
        assert build("a%3Ab", "c") != build("a:b", "c")


def _string_constants(path: Path) -> dict[str, str]:
    tree = ast.parse(path.read_text())
    out: dict[str, str] = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id.isupper() and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            out[node.targets[0].id] = node.value.value
    return out


def test_no_temporal_name_is_defined_outside_the_contract() -> None:
    """A module-level constant elsewhere whose value is a queue, workflow, activity, update or query name
    is a second definition that can drift from the contract."""
    names = {v for k, v in _string_constants(REPO / "workflows" / "contract.py").items()}
    offenders = []
    for folder in ("api", "activities", "core", "domain", "ops", "workers", "workflows"):
        for path in sorted((REPO / folder).rglob("*.py")) if (REPO / folder).exists() else []:
            if path.name == "contract.py":
                continue
            for const, value in _string_constants(path).items():
                if value in names:
                    offenders.append(f"{path.relative_to(REPO)}: {const} = {value!r}")
    assert not offenders, "define these in workflows/contract.py and import them: " + "; ".join(offenders)
