"""The decision policy: pure functions from scores, verdict and policy settings to a decision, and the
post-decision rules that refine it (brigading, the escalation ladder, what the platform did).

It never guesses: when the LLM could not give a confident verdict, or a category that always needs
reasoning was screened without one, the case goes to a person. Everything here is deterministic, does
no I/O and returns new values (the input decision is never changed), so it runs inside the workflow,
its inputs are all in history, and each rule is unit-tested without Temporal.
"""

from __future__ import annotations

from domain.models import (
    ActionOutcome,
    ActionStatus,
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
from domain.sessions import StrikeResult, TargetState

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
# The kinds of "needs human review" reason a platform may see; what follows them (provider errors,
# exception text, internal URLs) is for moderators only (api/services/events.py platform_view).
PUBLIC_REVIEW_REASONS: tuple[str, ...] = (
    *_REASON_TEXT.values(), "LLM confidence", "disagreement", "a platform action failed after retries",
    "a platform action may not have been applied")


def disagreement_threshold(policy: PolicyConfig) -> float:
    """The score from which an LLM "no violation" is not enough to allow (default: the act threshold)."""
    thr = policy.thresholds
    return thr.disagreement if thr.disagreement is not None else thr.act


def clause_is_valid(verdict: LLMVerdict, policy: PolicyConfig) -> bool:
    """The verdict cites one of the policy's clause ids (not checked for inputs recorded before
    ``clause_ids`` existed)."""
    return not policy.clause_ids or verdict.policy_clause in policy.clause_ids


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
    if not clause_is_valid(verdict, policy):
        # Treated as invalid output: the cited text is not repeated anywhere (it may be an injection).
        return DecideResult(
            decision=Decision.REVIEW, category=verdict.category if verdict.violation else category,
            needs_review=True,
            reasons=[*reasons, f"needs human review: {_REASON_TEXT[ReasonStatus.INVALID_OUTPUT]}: policy_clause "
                               f"is not a clause of policy {policy.version}"],
        )
    if verdict.confidence < policy.min_llm_confidence:
        return DecideResult(
            decision=Decision.REVIEW, category=verdict.category if verdict.violation else category,
            needs_review=True,
            reasons=[*reasons, f"needs human review: LLM confidence {verdict.confidence:.2f} "
                               f"below {policy.min_llm_confidence:.2f}"],
        )
    if not verdict.violation and screen.risk_score >= disagreement_threshold(policy):
        return DecideResult(
            decision=Decision.REVIEW, category=category, needs_review=True,
            reasons=[*reasons, f"needs human review: disagreement: screened {screen.risk_score:.3f} >= "
                               f"{disagreement_threshold(policy):.2f} but the LLM found no violation "
                               f"({verdict.confidence:.2f}): {verdict.rationale[:200]}"],
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


# -- post-decision rules: each takes the decision so far and returns a new one ------------------------

def with_brigading(decision: DecideResult, brigading: TargetState | None, *, target_id: str | None,
                   window_s: int) -> DecideResult:
    """Note a brigading episode against the target in the reasons (moderators are notified by the
    target's session); ``brigading`` is None when the target is not brigaded."""
    if brigading is None:
        return decision
    note = (f"brigading: {brigading.distinct_authors} distinct authors aimed harmful messages at {target_id} "
            f"within {window_s}s; moderators notified"
            + ("; slow mode recommended" if brigading.slow_mode_recommended else ""))
    return decision.model_copy(update={"reasons": [*decision.reasons, note]})


def with_ladder(decision: DecideResult, strike: StrikeResult | None) -> DecideResult:
    """Add the author's escalation-ladder rung to an action decision (at most one sanction survives);
    ``strike`` is None when the author's session could not be reached: the verdict's actions stand alone."""
    if strike is None:
        return decision.model_copy(update={
            "reasons": [*decision.reasons, "escalation ladder unavailable: acted on the verdict alone"]})
    return decision.model_copy(update={
        "actions": combine_actions(decision.actions, strike.actions),
        "reasons": [*decision.reasons, f"escalation level {strike.level}/{strike.ladder_size} "
                                       f"({strike.rung_label}); {strike.strikes_active} active strike(s)"]})


def after_actions(decision: DecideResult, outcomes: list[ActionOutcome]) -> DecideResult:
    """What the platform did decides whether a person must look: a failed or unconfirmed action flags the
    case for review; an action the daily cap withheld turns the case into a review (a person decides it)."""
    reasons = list(decision.reasons)
    needs_review, final = decision.needs_review, decision.decision
    if any(o.status == ActionStatus.FAILED for o in outcomes):
        needs_review = True
        reasons.append("needs human review: a platform action failed after retries")
    if any(o.status == ActionStatus.UNCONFIRMED for o in outcomes):
        # The platform cannot say whether an interrupted call landed, and it was not repeated.
        needs_review = True
        reasons.append("needs human review: a platform action may not have been applied "
                       "(interrupted call, not repeated; check the platform)")
    capped = [o for o in outcomes if o.status == ActionStatus.CAPPED]
    if capped:
        final, needs_review = Decision.REVIEW, True
        reasons.append("needs human review: " + "; ".join(o.detail for o in capped))
    if reasons == decision.reasons:
        return decision
    return decision.model_copy(update={"decision": final, "needs_review": needs_review, "reasons": reasons})
