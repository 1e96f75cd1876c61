"""The console's pure helpers: form validation, the SLA clock, reasons, and the ladder preview (the same
pure escalation functions the session workflow uses)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.services.console import (
    ConsoleError,
    _sla,
    brigading_note,
    decision_input,
    ladder_preview,
    review_reasons,
)
from domain.escalation import Strike
from domain.models import ActionType, EscalationConfig, HarmCategory, PolicyConfig, Severity
from domain.sessions import UserSessionState


class _Services:
    policy = PolicyConfig()


def test_decision_form_becomes_the_json_apis_input() -> None:
    body = decision_input(violation="yes", category="threat", actions=["timeout", "delete"], timeout_minutes="30",
                          note="  confirmed ")
    assert body.violation and body.category == HarmCategory.THREAT
    assert body.actions == [ActionType.TIMEOUT, ActionType.DELETE] and body.timeout_minutes == 30
    assert body.note == "confirmed"
    allow = decision_input(violation="no", category="threat", actions=["ban"], timeout_minutes="", note=None)
    assert not allow.violation and allow.actions == [] and allow.category == HarmCategory.NONE


@pytest.mark.parametrize(("fields", "message"), [
    ({"violation": None}, "choose whether"),
    ({"violation": "maybe"}, "choose whether"),
    ({"violation": "yes", "category": ""}, "needs a category"),
    ({"violation": "yes", "category": "spam"}, "category"),
    ({"violation": "yes", "category": "threat", "actions": ["escalate"]}, "unknown action"),
    ({"violation": "yes", "category": "threat", "timeout_minutes": "-5"}, "whole number"),
    ({"violation": "yes", "category": "threat", "timeout_minutes": "0"}, "timeout_minutes"),
])
def test_decision_form_refusals_say_what_to_fix(fields: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"violation": "yes", "category": "threat", "actions": [], "timeout_minutes": "",
                               "note": "", **fields}
    with pytest.raises(ConsoleError) as err:
        decision_input(**args)  # type: ignore[arg-type]
    assert err.value.status == 422 and message in err.value.message


def test_sla_clock_counts_down_then_reports_the_breach() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    fresh = _sla(now - timedelta(minutes=15), "standard", 60, now)
    assert not fresh["sla_breached"] and fresh["sla_text"] == "45 min left of 60"
    late = _sla(now - timedelta(minutes=75), "standard", 60, now)
    assert late["sla_breached"] and late["sla_text"] == "SLA breached 15 min ago"
    senior = _sla(now - timedelta(minutes=5), "senior", 60, now)
    assert senior["sla_breached"] and "senior" in senior["sla_text"]


def test_reasons_for_review_and_the_brigading_flag() -> None:
    reasons = ["risk 0.9 >= review threshold 0.19", "needs human review: LLM provider unavailable",
               "brigading: 20 distinct authors aimed harmful messages at sam within 60s"]
    assert review_reasons(reasons) == ["LLM provider unavailable"]
    assert brigading_note(reasons) == reasons[2]
    assert brigading_note(reasons[:2]) is None


def test_ladder_preview_is_the_next_rung_from_the_live_strikes() -> None:
    services = _Services()
    first = ladder_preview(None, services=services, platform="discord", category="targeted_insult",  # type: ignore[arg-type]
                           severity="medium")
    assert (first.level_now, first.level_after) == (0, 1) and [a.action for a in first.actions] == [ActionType.WARN]
    now = datetime.now(UTC)
    config = EscalationConfig()
    strikes = [Strike(case_id=f"c{i}", category=HarmCategory.TARGETED_INSULT, severity=Severity.MEDIUM, weight=1.0,
                      at=now - timedelta(minutes=1)) for i in range(2)]
    state = UserSessionState(platform="discord", author_id="u", config=config, strikes=strikes)
    third = ladder_preview(state, services=services, platform="discord", category="targeted_insult",  # type: ignore[arg-type]
                           severity="medium")
    assert third.level_now == 2 and third.level_after == 3
    assert [a.action for a in third.actions] == [ActionType.TIMEOUT] and third.actions[0].duration_s == 600
    assert [r["n"] for r in third.rungs if r["next"]] == [3]
    none = ladder_preview(state, services=services, platform="discord", category="none",  # type: ignore[arg-type]
                          severity="medium")
    assert none.level_after == none.level_now and "no strike weight" in none.note
