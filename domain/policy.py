"""The decision policy: a pure function from scores, verdict and policy settings to a decision.

It never guesses: when the LLM could not give a confident verdict, or a category that always needs
reasoning was screened without one, the case goes to a person. It is deterministic and does no I/O,
so it runs inside the workflow and its inputs are all in history.
"""

from __future__ import annotations

from domain.models import (
    ActionType,
    DecideResult,
    Decision,
    HarmCategory,
    LLMVerdict,
    PlannedAction,
    PolicyConfig,
    ReasonResult,
    ReasonStatus,
    ScreenResult,
    Severity,
)

# What each severity earns when the LLM confirms a violation (before the escalation ladder of the
# user-session workflow is applied on top).
_SEVERITY_ACTIONS: dict[Severity, list[ActionType]] = {
    Severity.LOW: [ActionType.WARN],
    Severity.MEDIUM: [ActionType.DELETE, ActionType.WARN],
    Severity.HIGH: [ActionType.DELETE, ActionType.TIMEOUT],
    Severity.CRITICAL: [ActionType.DELETE, ActionType.BAN],
}
_ACTION_RANK = {ActionType.WARN: 0, ActionType.DELETE: 1, ActionType.TIMEOUT: 2, ActionType.BAN: 3}

_REASON_TEXT: dict[ReasonStatus, str] = {
    ReasonStatus.UNAVAILABLE: "LLM provider unavailable",
    ReasonStatus.TIMEOUT: "LLM reasoning timed out",
    ReasonStatus.INVALID_OUTPUT: "LLM returned invalid output",
    ReasonStatus.BUDGET_EXHAUSTED: "daily LLM budget spent",
}


def is_clean(screen: ScreenResult, policy: PolicyConfig) -> bool:
    """The cheap path: below the review threshold nothing more is done."""
    return screen.risk_score < policy.thresholds.review


def clean_decision(screen: ScreenResult) -> DecideResult:
    return DecideResult(
        decision=Decision.ALLOW, category=HarmCategory.NONE,
        reasons=[f"risk {screen.risk_score:.3f} below review threshold"],
    )


def _actions_for(verdict: LLMVerdict, policy: PolicyConfig) -> list[PlannedAction]:
    actions = _SEVERITY_ACTIONS[verdict.severity]
    # The LLM may recommend a milder action than the severity earns, never a harsher one.
    rec = verdict.recommended_action
    if rec in _ACTION_RANK:
        actions = [a for a in actions if _ACTION_RANK[a] <= _ACTION_RANK[rec]] or [rec]
    why = f"{verdict.policy_clause}: {verdict.category.value} ({verdict.severity.value})"
    return [
        PlannedAction(action=a, duration_s=policy.timeout_minutes * 60 if a == ActionType.TIMEOUT else None, reason=why)
        for a in actions
    ]


def decide(screen: ScreenResult, reason: ReasonResult | None, policy: PolicyConfig) -> DecideResult:
    """Decide a risky case. ``reason`` is None only when reasoning was not attempted."""
    if is_clean(screen, policy):
        return clean_decision(screen)
    category = screen.top_category
    reasons = [f"risk {screen.risk_score:.3f} >= review threshold {policy.thresholds.review:.2f}"]

    if reason is None or reason.status != ReasonStatus.OK or reason.verdict is None:
        status = reason.status if reason else ReasonStatus.UNAVAILABLE
        why = _REASON_TEXT.get(status, status.value)
        detail = f": {reason.detail}" if reason and reason.detail else ""
        return DecideResult(
            decision=Decision.REVIEW, category=category, needs_review=True,
            reasons=[*reasons, f"needs human review: {why}{detail}"],
        )

    verdict = reason.verdict
    if verdict.confidence < policy.min_llm_confidence:
        return DecideResult(
            decision=Decision.REVIEW, category=verdict.category if verdict.violation else category,
            needs_review=True,
            reasons=[*reasons, f"needs human review: LLM confidence {verdict.confidence:.2f} "
                               f"below {policy.min_llm_confidence:.2f}"],
        )
    if not verdict.violation:
        return DecideResult(
            decision=Decision.ALLOW, category=HarmCategory.NONE,
            reasons=[*reasons, f"LLM: no violation ({verdict.confidence:.2f}): {verdict.rationale[:200]}"],
        )
    return DecideResult(
        decision=Decision.ACTION, category=verdict.category, actions=_actions_for(verdict, policy),
        reasons=[*reasons, f"LLM: violates {verdict.policy_clause} ({verdict.confidence:.2f}): "
                           f"{verdict.rationale[:200]}"],
    )


def review_actions(category: HarmCategory, requested: list[ActionType], timeout_minutes: int | None,
                   policy: PolicyConfig, reviewer: str) -> list[PlannedAction]:
    """The actions a moderator's 'violation' decision executes: the ones they chose, or delete + warn."""
    chosen = requested or [ActionType.DELETE, ActionType.WARN]
    minutes = timeout_minutes or policy.timeout_minutes
    return [PlannedAction(action=a, duration_s=minutes * 60 if a == ActionType.TIMEOUT else None,
                          reason=f"moderator {reviewer}: {category.value}") for a in dict.fromkeys(chosen)]


_SANCTIONS = frozenset({ActionType.TIMEOUT, ActionType.BAN})
_ORDER = {ActionType.DELETE: 0, ActionType.WARN: 1, ActionType.TIMEOUT: 2, ActionType.BAN: 3, ActionType.ESCALATE: 4}


def combine_actions(decided: list[PlannedAction], rung: list[PlannedAction]) -> list[PlannedAction]:
    """The verdict's own actions plus the escalation ladder's rung, with at most one sanction.

    Delete and warn are kept from both; of the sanctions (timeout, ban) only the strongest stays (a ban
    beats any timeout, a longer timeout beats a shorter one), so the session's timer that lifts a timeout
    can never undo a ban given by the same case.
    """
    kept: dict[ActionType, PlannedAction] = {}
    for a in [*decided, *rung]:
        if a.action not in _SANCTIONS:
            kept.setdefault(a.action, a)
    sanctions = [a for a in [*decided, *rung] if a.action in _SANCTIONS]
    if sanctions:
        strongest = max(sanctions, key=lambda a: (_ACTION_RANK[a.action], a.duration_s or 0))
        kept[strongest.action] = strongest
    return sorted(kept.values(), key=lambda a: _ORDER[a.action])
