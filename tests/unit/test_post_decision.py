"""The post-decision rules (domain/policy.py): brigading, the escalation ladder, and what the platform did.

Each one returns a new decision and leaves its input as it was, so the workflow's decision is a chain
of values; these tests need no Temporal.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.models import (
    ActionOutcome,
    ActionStatus,
    ActionType,
    DecideResult,
    Decision,
    HarmCategory,
    PlannedAction,
)
from domain.policy import after_actions, with_brigading, with_ladder
from domain.sessions import StrikeResult, TargetState


def action_decision() -> DecideResult:
    return DecideResult(decision=Decision.ACTION, category=HarmCategory.THREAT,
                        actions=[PlannedAction(action=ActionType.DELETE), PlannedAction(action=ActionType.WARN)],
                        reasons=["LLM: violates H3"])


def outcome(action: ActionType, status: ActionStatus, detail: str = "") -> ActionOutcome:
    return ActionOutcome(action=action, connector="log", idempotency_key=f"c:{action}", status=status, detail=detail)


def test_brigading_is_noted_with_the_target_and_the_window() -> None:
    d = action_decision()
    state = TargetState(platform="twitch", target_id="t1", brigading=True, distinct_authors=7,
                        slow_mode_recommended=True)
    out = with_brigading(d, state, target_id="t1", window_s=300)
    assert out.reasons[-1] == ("brigading: 7 distinct authors aimed harmful messages at t1 within 300s; "
                               "moderators notified; slow mode recommended")
    assert d.reasons == ["LLM: violates H3"]  # the input is unchanged
    assert with_brigading(d, None, target_id="t1", window_s=300) == d


def test_the_ladder_adds_its_rung_and_keeps_one_strongest_sanction() -> None:
    d = action_decision()
    strike = StrikeResult(case_id="c", level=3, ladder_size=5, rung_label="timeout 1h", strikes_active=3,
                          actions=[PlannedAction(action=ActionType.TIMEOUT, duration_s=3600),
                                   PlannedAction(action=ActionType.TIMEOUT, duration_s=600)])
    out = with_ladder(d, strike)
    assert [(a.action, a.duration_s) for a in out.actions] == [
        (ActionType.DELETE, None), (ActionType.WARN, None), (ActionType.TIMEOUT, 3600)]
    assert out.reasons[-1] == "escalation level 3/5 (timeout 1h); 3 active strike(s)"
    assert [a.action for a in d.actions] == [ActionType.DELETE, ActionType.WARN]


def test_without_the_session_the_verdict_acts_alone_and_says_so() -> None:
    d = action_decision()
    out = with_ladder(d, None)
    assert out.actions == d.actions
    assert out.reasons[-1] == "escalation ladder unavailable: acted on the verdict alone"


def test_a_failed_or_unconfirmed_action_flags_review_but_keeps_the_decision() -> None:
    d = action_decision()
    failed = after_actions(d, [outcome(ActionType.DELETE, ActionStatus.FAILED)])
    assert failed.decision == Decision.ACTION and failed.needs_review
    assert failed.reasons[-1] == "needs human review: a platform action failed after retries"
    unconfirmed = after_actions(d, [outcome(ActionType.DELETE, ActionStatus.UNCONFIRMED)])
    assert unconfirmed.needs_review and "may not have been applied" in unconfirmed.reasons[-1]
    assert not d.needs_review


def test_a_capped_sanction_turns_the_case_into_a_review_naming_the_cap() -> None:
    d = action_decision()
    out = after_actions(d, [outcome(ActionType.DELETE, ActionStatus.APPLIED),
                            outcome(ActionType.BAN, ActionStatus.CAPPED, "daily cap of 10 automated bans reached")])
    assert out.decision == Decision.REVIEW and out.needs_review
    assert out.reasons[-1] == "needs human review: daily cap of 10 automated bans reached"
    assert d.decision == Decision.ACTION


@given(st.lists(st.sampled_from([ActionStatus.APPLIED, ActionStatus.DUPLICATE, ActionStatus.SHADOW]), max_size=5))
def test_actions_that_landed_change_nothing(statuses: list[ActionStatus]) -> None:
    d = action_decision()
    assert after_actions(d, [outcome(ActionType.DELETE, s) for s in statuses]) == d


def test_enums_keep_the_recorded_strings() -> None:
    assert ActionStatus.NOT_REVERSIBLE == "not_reversible" and f"{ActionStatus.CAPPED}" == "capped"
    assert ActionOutcome.model_validate({"action": "ban", "connector": "x", "idempotency_key": "k",
                                         "status": "unconfirmed"}).model_dump(mode="json")["status"] == "unconfirmed"
