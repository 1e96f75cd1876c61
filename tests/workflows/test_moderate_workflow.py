"""ModerateEventWorkflow against a real Temporal dev server, with fake activities under the real names.

The fakes read the wanted screening score from the message ("score=0.72 ...") and the wanted LLM
behaviour from the test, so each test pins one path through the workflow.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer, Worker

from domain.models import (
    ActInput,
    ActionOutcome,
    ActionType,
    ActResult,
    CaseContext,
    CaseOutcome,
    CaseRecord,
    ChatEvent,
    ContextInput,
    Decision,
    HarmCategory,
    LLMVerdict,
    ModerateEventInput,
    PlannedAction,
    PolicyConfig,
    ReasonInput,
    ReasonResult,
    ReasonStatus,
    ScreenInput,
    ScreenResult,
    Severity,
)
from domain.reviews import ReviewDecision, ReviewEscalation, ReviewOutcome, ReviewRecord
from domain.sessions import StrikeInput, StrikeResult, TargetIncidentInput, TargetState
from workflows import contract
from workflows.contract import (
    APPLY_STRIKE,
    MODERATION_QUEUE,
    RECORD_TARGET_INCIDENT,
    SUBMIT_REVIEW_UPDATE,
    event_workflow_id,
)
from workflows.moderate import ModerateEventWorkflow

QUEUES = contract.TASK_QUEUES


class Fakes:
    def __init__(self) -> None:
        self.records: list[CaseRecord] = []
        self.acted: list[ActInput] = []
        self.reason_calls = 0
        self.reason: Callable[[ReasonInput], ReasonResult] = lambda _: ReasonResult(status=ReasonStatus.UNAVAILABLE)
        self.fail_actions = False
        self.reviews: list[ReviewRecord] = []
        self.escalations: list[ReviewEscalation] = []
        self.review_outcome: ReviewOutcome | None = None
        self.strikes: list[StrikeInput] = []
        self.incidents: list[TargetIncidentInput] = []
        self.rung: list[PlannedAction] = [PlannedAction(action=ActionType.WARN)]
        self.brigading = False
        self.cap_bans = False
        self.unconfirmed_delete = False

    def activities(self) -> list[Any]:
        fakes = self

        @activity.defn(name=contract.SCREEN_EVENT)
        async def screen(inp: ScreenInput) -> ScreenResult:
            score = float(inp.content.split()[0].removeprefix("score="))
            return ScreenResult(risk_score=score, top_category=HarmCategory.TARGETED_INSULT,
                                category_scores={"targeted_insult": score}, embedding=[0.1] * 4,
                                model_version="fake")

        @activity.defn(name=contract.RETRIEVE_CONTEXT)
        async def context(inp: ContextInput) -> CaseContext:
            assert inp.embedding == [0.1] * 4, "the screening embedding must be passed on, not recomputed"
            return CaseContext(channel_cases_24h=3)

        @activity.defn(name=contract.REASON_ABOUT_CASE)
        async def reason(inp: ReasonInput) -> ReasonResult:
            fakes.reason_calls += 1
            return fakes.reason(inp)

        @activity.defn(name=contract.EXECUTE_ACTIONS)
        async def act(inp: ActInput) -> ActResult:
            if fakes.fail_actions:
                raise ApplicationError("platform down", type="ConnectorConfigError", non_retryable=True)
            fakes.acted.append(inp)

            def status(a: ActionType) -> str:
                if fakes.unconfirmed_delete and a == ActionType.DELETE:
                    return "unconfirmed"
                return "capped" if fakes.cap_bans and inp.automated and a == ActionType.BAN else "applied"

            return ActResult(outcomes=[ActionOutcome(action=a.action, connector="fake", status=status(a.action),
                                                     idempotency_key=f"{inp.case_id}:{a.action}",
                                                     detail="daily cap of 1 automated bans reached")
                                       for a in inp.actions])

        @activity.defn(name=contract.RECORD_CASE)
        async def record(rec: CaseRecord) -> bool:
            fakes.records.append(rec)
            return True

        @activity.defn(name=APPLY_STRIKE)
        async def strike(inp: StrikeInput) -> StrikeResult:
            fakes.strikes.append(inp)
            return StrikeResult(case_id=inp.case_id, level=len(fakes.strikes), ladder_size=5,
                                actions=fakes.rung, rung_label="fake rung", strikes_active=len(fakes.strikes))

        @activity.defn(name=RECORD_TARGET_INCIDENT)
        async def incident(inp: TargetIncidentInput) -> TargetState:
            fakes.incidents.append(inp)
            return TargetState(platform=inp.platform, target_id=inp.target_id, brigading=fakes.brigading,
                               distinct_authors=20 if fakes.brigading else 1)

        @activity.defn(name=contract.RECORD_REVIEW)
        async def record_review(rec: ReviewRecord) -> bool:
            fakes.reviews.append(rec)
            return True

        @activity.defn(name=contract.ESCALATE_REVIEW)
        async def escalate(esc: ReviewEscalation) -> None:
            fakes.escalations.append(esc)

        return [screen, context, reason, act, record, record_review, escalate, strike, incident]


def _verdict(**overrides: Any) -> ReasonResult:
    fields: dict[str, Any] = {"violation": True, "category": HarmCategory.TARGETED_INSULT, "severity": Severity.MEDIUM,
                              "policy_clause": "H1", "rationale": "insults the target", "confidence": 0.95,
                              "recommended_action": ActionType.DELETE}
    fields.update(overrides)
    return ReasonResult(status=ReasonStatus.OK, verdict=LLMVerdict(**fields), policy_version="harassment-v1")


def _event(content: str) -> ChatEvent:
    return ChatEvent(event_id=str(uuid.uuid4()), platform="discord", channel_id="general", author_id="a1",
                     target_id="t1", content=content, received_at=datetime.now(UTC))


NOT_A_VIOLATION = ReviewDecision(reviewer="mod-1", violation=False, note="banter")


async def _run(client: Client, fakes: Fakes, content: str, policy: PolicyConfig | None = None,
               review: ReviewDecision = NOT_A_VIOLATION) -> tuple[CaseOutcome, Any]:
    """Run one case to its end; if it waits for a person, deliver ``review`` as the moderator would."""
    workers = [Worker(client, task_queue=q, workflows=[ModerateEventWorkflow] if q == MODERATION_QUEUE else [],
                      activities=fakes.activities()) for q in QUEUES]
    ev = _event(content)
    inp = ModerateEventInput(event=ev, policy=policy or PolicyConfig(reasoning_deadline_s=5,
                                                                      reasoning_attempt_timeout_s=2))
    for w in workers:
        await w.__aenter__()
    try:
        handle = await client.start_workflow(ModerateEventWorkflow.run, inp, id=event_workflow_id(ev.event_id),
                                             task_queue=MODERATION_QUEUE)
        result_task = asyncio.create_task(handle.result())
        while not result_task.done():
            if fakes.records and fakes.records[-1].decision.decision == Decision.REVIEW:
                try:
                    fakes.review_outcome = await handle.execute_update(SUBMIT_REVIEW_UPDATE, review,
                                                                       result_type=ReviewOutcome)
                    break
                except WorkflowUpdateFailedError:
                    pass  # recorded, but the workflow task that starts the wait has not run yet
            await asyncio.sleep(0.05)
        result = await result_task
        history = await handle.fetch_history()
    finally:
        for w in workers:
            await w.__aexit__(None, None, None)
    # Determinism gate: the history this run wrote must replay against the current workflow code.
    await Replayer(workflows=[ModerateEventWorkflow], data_converter=client.data_converter).replay_workflow(history)
    return result, history


async def test_clean_event_takes_the_cheap_path(wf_client: Client) -> None:
    fakes = Fakes()
    result, history = await _run(wf_client, fakes, "score=0.05 hello there")
    assert result.decision == Decision.ALLOW and result.path == "clean" and not result.needs_review
    assert len(fakes.records) == 1 and fakes.records[0].path == "clean"
    assert fakes.reason_calls == 0 and not fakes.acted
    kinds = [e.event_type for e in history.events]
    # One workflow task, screening and recording as local activities: no activity tasks at all.
    assert kinds.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) == 1
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds


async def test_confirmed_violation_is_actioned_and_recorded(wf_client: Client) -> None:
    fakes = Fakes()
    fakes.reason = lambda _: _verdict()
    result, _ = await _run(wf_client, fakes, "score=0.72 you are worthless")
    assert result.decision == Decision.ACTION and result.path == "full"
    assert [a.action for a in fakes.acted[0].actions] == [ActionType.DELETE, ActionType.WARN]
    assert fakes.records[0].reason is not None and fakes.records[0].context.channel_cases_24h == 3
    assert fakes.records[0].policy_version == "harassment-v1"


async def test_llm_says_no_violation_allows(wf_client: Client) -> None:
    fakes = Fakes()
    fakes.reason = lambda _: _verdict(violation=False, category=HarmCategory.NONE, severity=Severity.LOW)
    result, _ = await _run(wf_client, fakes, "score=0.6 that play was sick")
    assert result.decision == Decision.ALLOW and not fakes.acted


@pytest.mark.parametrize("status", [ReasonStatus.UNAVAILABLE, ReasonStatus.BUDGET_EXHAUSTED])
async def test_no_llm_verdict_goes_to_review_never_a_sanction(wf_client: Client, status: ReasonStatus) -> None:
    fakes = Fakes()
    fakes.reason = lambda _: ReasonResult(status=status, detail="no provider")
    result, _ = await _run(wf_client, fakes, "score=0.95 i will find you")
    first = fakes.records[0].decision
    assert first.decision == Decision.REVIEW and first.needs_review
    assert any("human review" in r for r in first.reasons)
    assert not fakes.acted, "no sanction without a verdict or a person"
    assert result.decision == Decision.ALLOW and fakes.reviews[0].decision.reviewer == "mod-1"


async def test_low_confidence_goes_to_review(wf_client: Client) -> None:
    fakes = Fakes()
    fakes.reason = lambda _: _verdict(confidence=0.4)
    await _run(wf_client, fakes, "score=0.7 hmm")
    first = fakes.records[0].decision
    assert first.decision == Decision.REVIEW and "confidence" in " ".join(first.reasons)
    assert not fakes.acted


async def test_provider_errors_exhaust_retries_then_review(wf_client: Client) -> None:
    fakes = Fakes()

    def failing(_: ReasonInput) -> ReasonResult:
        raise ApplicationError("503 from provider", type="LLMServerError")

    fakes.reason = failing
    policy = PolicyConfig(reasoning_deadline_s=20, reasoning_attempt_timeout_s=2, reasoning_max_attempts=3)
    result, _ = await _run(wf_client, fakes, "score=0.8 die", policy)
    assert fakes.reason_calls == 3
    first = fakes.records[0].decision
    assert first.decision == Decision.REVIEW and not fakes.acted
    assert any("LLMServerError" in r for r in first.reasons)


async def test_invalid_output_is_reported_as_such(wf_client: Client) -> None:
    fakes = Fakes()

    def bad(_: ReasonInput) -> ReasonResult:
        raise ApplicationError("not JSON", type="LLMInvalidOutput")

    fakes.reason = bad
    policy = PolicyConfig(reasoning_deadline_s=20, reasoning_attempt_timeout_s=2, reasoning_max_attempts=2)
    await _run(wf_client, fakes, "score=0.8 x", policy)
    first = fakes.records[0].decision
    assert first.decision == Decision.REVIEW
    assert any("invalid output" in r for r in first.reasons)


async def test_auth_error_is_not_retried(wf_client: Client) -> None:
    fakes = Fakes()

    def unauthorised(_: ReasonInput) -> ReasonResult:
        raise ApplicationError("401", type="LLMAuthError", non_retryable=True)

    fakes.reason = unauthorised
    await _run(wf_client, fakes, "score=0.8 x")
    assert fakes.reason_calls == 1 and fakes.records[0].decision.decision == Decision.REVIEW


async def test_failed_platform_action_flags_review(wf_client: Client) -> None:
    fakes = Fakes()
    fakes.reason = lambda _: _verdict(severity=Severity.HIGH, recommended_action=ActionType.TIMEOUT)
    fakes.fail_actions = True
    result, _ = await _run(wf_client, fakes, "score=0.9 x")
    assert result.decision == Decision.ACTION and result.needs_review
    assert all(a.status == "failed" for a in result.actions)
    assert fakes.records[0].decision.needs_review


async def test_moderator_decision_executes_actions_and_answers_the_update(wf_client: Client) -> None:
    fakes = Fakes()
    decision = ReviewDecision(reviewer="mod-7", violation=True, category=HarmCategory.THREAT,
                              actions=[ActionType.DELETE, ActionType.TIMEOUT], timeout_minutes=30)
    result, _ = await _run(wf_client, fakes, "score=0.9 i know where you live", review=decision)
    assert fakes.review_outcome is not None and fakes.review_outcome.decision == "action"
    assert [o.action for o in fakes.review_outcome.actions] == [ActionType.DELETE, ActionType.TIMEOUT]
    assert fakes.acted[0].actions[1].duration_s == 1800
    assert fakes.reviews[0].final_decision == "action" and fakes.reviews[0].category == HarmCategory.THREAT
    assert result.decision == Decision.ACTION and not result.needs_review and result.category == HarmCategory.THREAT


async def test_review_is_refused_for_a_case_not_waiting(wf_client: Client) -> None:
    fakes = Fakes()
    workers = [Worker(wf_client, task_queue=q, workflows=[ModerateEventWorkflow] if q == MODERATION_QUEUE else [],
                      activities=fakes.activities()) for q in QUEUES]
    ev = _event("score=0.01 hi")
    async with workers[0], workers[1], workers[2], workers[3], workers[4]:
        handle = await wf_client.start_workflow(ModerateEventWorkflow.run, ModerateEventInput(event=ev),
                                                id=event_workflow_id(ev.event_id), task_queue=MODERATION_QUEUE)
        await handle.result()
        with pytest.raises(Exception) as err:
            await handle.execute_update(SUBMIT_REVIEW_UPDATE, NOT_A_VIOLATION, result_type=ReviewOutcome)
        assert isinstance(err.value, WorkflowUpdateFailedError) or "completed" in str(err.value).lower()


async def test_unreviewed_case_is_escalated_after_the_sla() -> None:
    """Time-skipping server: the SLA timer fires without waiting an hour of wall-clock time."""
    from core.temporal import ensure_search_attributes
    from tests.doubles.temporal import start_time_skipping

    env = await start_time_skipping()
    async with env:
        assert "RiskScore" in await ensure_search_attributes(env.client)
        fakes = Fakes()
        workers = [Worker(env.client, task_queue=q, workflows=[ModerateEventWorkflow] if q == MODERATION_QUEUE else [],
                          activities=fakes.activities()) for q in QUEUES]
        ev = _event("score=0.9 unclear")
        policy = PolicyConfig(review_sla_minutes=60, review_expiry_days=1, reasoning_deadline_s=5,
                              reasoning_attempt_timeout_s=2)
        async with workers[0], workers[1], workers[2], workers[3], workers[4]:
            handle = await env.client.start_workflow(ModerateEventWorkflow.run,
                                                     ModerateEventInput(event=ev, policy=policy),
                                                     id=event_workflow_id(ev.event_id), task_queue=MODERATION_QUEUE)
            result = await handle.result()  # skips the hour of SLA and the day of expiry
    assert [e.case_id for e in fakes.escalations] == [ev.event_id]
    assert fakes.escalations[0].queue == "senior"
    assert result.decision == Decision.REVIEW and result.needs_review and not fakes.reviews


async def test_ladder_rung_escalates_the_verdicts_sanction(wf_client: Client) -> None:
    fakes = Fakes()
    fakes.reason = lambda _: _verdict(severity=Severity.HIGH, recommended_action=ActionType.TIMEOUT)
    fakes.rung = [PlannedAction(action=ActionType.BAN, reason="rung 5")]
    result, _ = await _run(wf_client, fakes, "score=0.9 again")
    assert [a.action for a in fakes.acted[0].actions] == [ActionType.DELETE, ActionType.BAN]
    assert fakes.strikes[0].severity == Severity.HIGH and fakes.strikes[0].event is not None
    assert any("escalation level 1/5" in r for r in result.reasons)


async def test_brigaded_target_is_flagged_in_the_case(wf_client: Client) -> None:
    fakes = Fakes()
    fakes.brigading = True
    fakes.reason = lambda _: _verdict()
    result, _ = await _run(wf_client, fakes, "score=0.6 pile on")
    assert fakes.incidents and fakes.incidents[0].target_id == "t1"
    assert any(r.startswith("brigading: 20 distinct authors") for r in result.reasons)


async def test_clean_events_touch_no_session(wf_client: Client) -> None:
    fakes = Fakes()
    await _run(wf_client, fakes, "score=0.01 hi")
    assert not fakes.incidents and not fakes.strikes


async def test_capped_sanction_sends_the_case_to_a_person(wf_client: Client) -> None:
    fakes = Fakes()
    fakes.reason = lambda _: _verdict(severity=Severity.CRITICAL, recommended_action=ActionType.BAN)
    fakes.rung = []
    fakes.cap_bans = True
    decision = ReviewDecision(reviewer="mod-3", violation=True, category=HarmCategory.TARGETED_INSULT,
                              actions=[ActionType.BAN])
    result, _ = await _run(wf_client, fakes, "score=0.95 raid", review=decision)
    first = fakes.records[0].decision
    assert first.decision == Decision.REVIEW and any("daily cap" in r for r in first.reasons)
    assert fakes.acted[0].automated and not fakes.acted[1].automated  # the moderator's ban is not capped
    assert result.decision == Decision.ACTION


async def test_an_unconfirmed_action_flags_the_case_for_a_person(wf_client: Client) -> None:
    fakes = Fakes()
    fakes.reason = lambda _: _verdict(severity=Severity.HIGH, recommended_action=ActionType.TIMEOUT)
    fakes.unconfirmed_delete = True
    result, _ = await _run(wf_client, fakes, "score=0.9 insult")
    record = fakes.records[0]
    assert [o.status for o in record.actions if o.action == ActionType.DELETE] == ["unconfirmed"]
    assert record.decision.needs_review and result.needs_review
    assert any("may not have been applied" in r for r in result.reasons)
