"""ModerateEventWorkflow: one durable case per chat event (workflow id ``event-<event_id>``).

Clean path (most traffic): screen and record as local activities inside a single workflow task, then
one search-attribute upsert. Risky path: context -> reason -> decide -> act -> record, each a normal
activity on its own task queue with the retry policy and timeouts named below. A failed or unsure
LLM call becomes human review, never a sanction.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as ActivityTimeoutError  # not the builtin TimeoutError

with workflow.unsafe.imports_passed_through():
    from domain.models import (
        ActInput,
        ActionOutcome,
        ActionStatus,
        ActResult,
        CaseContext,
        CaseOutcome,
        CasePath,
        CaseProgress,
        CaseRecord,
        ContextInput,
        DecideResult,
        Decision,
        HarmCategory,
        ModerateEventInput,
        ReasonInput,
        ReasonResult,
        ReasonStatus,
        ScreenInput,
        ScreenResult,
        Severity,
        Stage,
    )
    from domain.policy import (
        after_actions,
        clean_decision,
        decide,
        is_clean,
        review_actions,
        with_brigading,
        with_ladder,
    )
    from domain.reviews import ReviewDecision, ReviewEscalation, ReviewOutcome, ReviewRecord
    from domain.sessions import StrikeInput, StrikeResult, TargetIncidentInput, TargetState
    from workflows import contract

# Retry policies and timeouts. Storage and screening retry until they succeed (an accepted event must
# reach a recorded outcome); context is enrichment and gives up after its deadline.
SCREEN_TIMEOUT = timedelta(seconds=10)
SCREEN_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))
CONTEXT_TIMEOUT = timedelta(seconds=15)
CONTEXT_DEADLINE = timedelta(minutes=2)
CONTEXT_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_interval=timedelta(seconds=10))
REASON_RETRY_INITIAL = timedelta(milliseconds=500)
REASON_RETRY_MAX_INTERVAL = timedelta(seconds=5)
ACT_TIMEOUT = timedelta(seconds=30)
ACT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60),
                        maximum_attempts=20, non_retryable_error_types=["ConnectorConfigError"])
SESSION_TIMEOUT = timedelta(seconds=10)
SESSION_DEADLINE = timedelta(seconds=60)
SESSION_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=5))
RECORD_TIMEOUT = timedelta(seconds=15)
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_interval=timedelta(seconds=30))


def search_attributes_for_start(inp: ModerateEventInput) -> TypedSearchAttributes:
    """The attributes known at ingest, set by the API when it starts the workflow (no extra command)."""
    ev = inp.event
    pairs = [SearchAttributePair(contract.SA_CASE_ID, ev.event_id),
             SearchAttributePair(contract.SA_PLATFORM, ev.platform),
             SearchAttributePair(contract.SA_CHANNEL, ev.channel_id),
             SearchAttributePair(contract.SA_AUTHOR, ev.author_id)]
    if ev.target_id:
        pairs.append(SearchAttributePair(contract.SA_TARGET, ev.target_id))
    return TypedSearchAttributes(pairs)


def _reason_failure(err: ActivityError) -> ReasonResult:
    """Map an exhausted or non-retryable reasoning failure to the status a moderator will see."""
    cause: BaseException | None = err.cause
    last_app: ApplicationError | None = None
    timed_out = False
    while cause is not None:
        if isinstance(cause, ActivityTimeoutError):
            timed_out = True
        if isinstance(cause, ApplicationError) and last_app is None:
            last_app = cause
        cause = cause.__cause__ or getattr(cause, "cause", None)
    kind = last_app.type if last_app else None
    if kind == "LLMInvalidOutput":
        status = ReasonStatus.INVALID_OUTPUT
    elif timed_out or kind == "LLMTimeout":
        status = ReasonStatus.TIMEOUT
    else:
        status = ReasonStatus.UNAVAILABLE
    detail = f"{kind or 'timeout'}: {last_app.message if last_app else err.message}"[:300]
    return ReasonResult(status=status, detail=detail)


@workflow.defn(name=contract.MODERATE_EVENT_WORKFLOW)
class ModerateEventWorkflow:
    @workflow.init
    def __init__(self, inp: ModerateEventInput) -> None:
        self._progress = CaseProgress(stage=Stage.SCREENING)
        self._awaiting_review = False
        self._review: ReviewDecision | None = None
        self._review_outcome: ReviewOutcome | None = None
        self._escalated = False

    @workflow.update(name=contract.SUBMIT_REVIEW_UPDATE)
    async def submit_review(self, decision: ReviewDecision) -> ReviewOutcome:
        """A moderator's decision: returns once its actions are executed and the case is updated."""
        self._review = decision
        await workflow.wait_condition(lambda: self._review_outcome is not None)
        assert self._review_outcome is not None
        return self._review_outcome

    @submit_review.validator
    def _validate_review(self, decision: ReviewDecision) -> None:
        if not self._awaiting_review:
            raise ValueError("this case is not waiting for a review (it was decided, or is still being processed)")
        if self._review is not None:
            raise ValueError(f"this case was already decided by {self._review.reviewer}")

    @workflow.query(name=contract.CASE_STATUS_QUERY)
    def status(self) -> CaseProgress:
        return self._progress

    def _stage(self, stage: Stage, details: str) -> None:
        self._progress.stage = stage
        workflow.set_current_details(details)

    @workflow.run
    async def run(self, inp: ModerateEventInput) -> CaseOutcome:
        ev, policy = inp.event, inp.policy
        case_id = ev.event_id
        info = workflow.info()

        screen = await self._screen(inp)
        self._progress.risk_score = screen.risk_score
        self._progress.category = screen.top_category

        if is_clean(screen, policy):
            decision = clean_decision(screen)
            self._progress.path = CasePath.CLEAN.value
            record = CaseRecord(case_id=case_id, event=ev, path=CasePath.CLEAN, screen=screen, decision=decision,
                                policy_version=policy.version, workflow_id=info.workflow_id, run_id=info.run_id,
                                completed_at=workflow.now(), stage_ms={"screen": screen.duration_ms})
            await workflow.execute_local_activity(
                contract.RECORD_CASE, record, start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY,
                summary="record clean case",
            )
            return self._finish(record, [])

        self._progress.path = CasePath.FULL.value
        workflow.upsert_search_attributes([contract.SA_RISK.value_set(screen.risk_score),
                                           contract.SA_CATEGORY.value_set(screen.top_category.value)])
        stage_ms: dict[str, float] = {"screen": screen.duration_ms}

        brigading = await self._target_incident(inp)

        started = workflow.now()
        self._stage(Stage.CONTEXT, f"risk {screen.risk_score:.2f} ({screen.top_category}): gathering context")
        context = await self._context(inp, screen)
        stage_ms["context"] = (workflow.now() - started).total_seconds() * 1000

        started = workflow.now()
        self._stage(Stage.REASONING, "asking the LLM for a verdict under policy " + policy.version)
        reason = await self._reason(inp, screen, context)
        stage_ms["reason"] = (workflow.now() - started).total_seconds() * 1000

        self._stage(Stage.DECIDING, f"reasoning: {reason.status.value}")
        decision = with_brigading(decide(screen, reason, policy), brigading, target_id=ev.target_id,
                                  window_s=policy.brigading.window_s)
        if decision.decision == Decision.ACTION and reason.verdict is not None:
            decision = with_ladder(decision, await self._strike(inp, decision, reason.verdict.severity))

        outcomes: list[ActionOutcome] = []
        if decision.actions:
            started = workflow.now()
            self._stage(Stage.ACTING, "executing " + ", ".join(a.action.value for a in decision.actions))
            outcomes = await self._act(inp, decision)
            stage_ms["act"] = (workflow.now() - started).total_seconds() * 1000
            # A failed, unconfirmed or capped action sends the case to a person (a capped one waits for review).
            decision = after_actions(decision, outcomes)

        self._stage(Stage.RECORDING, f"decision: {decision.decision.value}")
        record = CaseRecord(case_id=case_id, event=ev, path=CasePath.FULL, screen=screen, decision=decision,
                            context=context, reason=reason, actions=outcomes, stage_ms=stage_ms,
                            policy_version=reason.policy_version or policy.version, workflow_id=info.workflow_id,
                            run_id=info.run_id, completed_at=workflow.now())
        await workflow.execute_activity(
            contract.RECORD_CASE, record, task_queue=contract.CONTEXT_QUEUE, start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY, summary=f"record {decision.decision.value}",
        )
        result = self._finish(record, outcomes)
        if decision.decision == Decision.REVIEW:
            result = await self._await_review(inp, record, result)
        return result

    async def _await_review(self, inp: ModerateEventInput, record: CaseRecord, result: CaseOutcome) -> CaseOutcome:
        """Wait for a moderator (update ``submit_review``); escalate to the senior queue after the SLA."""
        policy = inp.policy
        self._awaiting_review = True
        self._stage(Stage.REVIEW, f"waiting for a moderator (SLA {policy.review_sla_minutes} min)")
        decided = await self._wait_review(timedelta(minutes=policy.review_sla_minutes))
        if not decided:
            self._escalated = True
            await workflow.execute_activity(
                contract.ESCALATE_REVIEW,
                ReviewEscalation(case_id=record.case_id, sla_minutes=policy.review_sla_minutes),
                task_queue=contract.CONTEXT_QUEUE, start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY,
                summary="review SLA passed: moved to the senior queue",
            )
            self._stage(Stage.REVIEW, "waiting for a senior moderator (SLA passed)")
            decided = await self._wait_review(timedelta(days=policy.review_expiry_days))
        if not decided:
            self._awaiting_review = False
            self._stage(Stage.COMPLETED, "review expired without a decision")
            return result
        review = self._review
        assert review is not None
        self._awaiting_review = False
        category = review.category if review.violation else HarmCategory.NONE
        outcomes: list[ActionOutcome] = []
        if review.violation:
            planned = review_actions(category, review.actions, review.timeout_minutes, policy, review.reviewer)
            decision = DecideResult(decision=Decision.ACTION, category=category, actions=planned)
            if not review.actions:  # the moderator left the sanction to the policy: apply the ladder
                decision = await self._escalate(inp, decision, Severity.MEDIUM)
            self._stage(Stage.ACTING, f"moderator {review.reviewer}: executing the decision")
            outcomes = await self._act(inp, decision, automated=False)
        final = Decision.ACTION if review.violation else Decision.ALLOW
        await workflow.execute_activity(
            contract.RECORD_REVIEW, ReviewRecord(case_id=record.case_id, decision=review, final_decision=final.value,
                                                 category=category, actions=outcomes),
            task_queue=contract.CONTEXT_QUEUE, start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY,
            summary=f"record review by {review.reviewer}: {final.value}",
        )
        workflow.upsert_search_attributes([contract.SA_DECISION.value_set(final.value),
                                           contract.SA_NEEDS_REVIEW.value_set(False),
                                           contract.SA_CATEGORY.value_set(category.value)])
        self._review_outcome = ReviewOutcome(case_id=record.case_id, decision=final.value, actions=outcomes,
                                             reviewer=review.reviewer, escalated=self._escalated)
        self._stage(Stage.COMPLETED, f"reviewed by {review.reviewer}: {final.value}")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result.model_copy(update={"decision": final, "needs_review": False, "category": category,
                                         "actions": outcomes,
                                         "reasons": [*result.reasons, f"moderator {review.reviewer}: {final.value}"]})

    async def _wait_review(self, within: timedelta) -> bool:
        try:
            await workflow.wait_condition(lambda: self._review is not None, timeout=within)
            return True
        except TimeoutError:  # the builtin: wait_condition timed out
            return False

    async def _target_incident(self, inp: ModerateEventInput) -> TargetState | None:
        """Count this risky message against its target; returns the state when the target is brigaded."""
        ev = inp.event
        if not ev.target_id:
            return None
        try:
            state = await workflow.execute_local_activity(
                contract.RECORD_TARGET_INCIDENT,
                TargetIncidentInput(platform=ev.platform, target_id=ev.target_id, author_id=ev.author_id,
                                    case_id=ev.event_id, at=ev.received_at, config=inp.policy.brigading),
                result_type=TargetState, start_to_close_timeout=SESSION_TIMEOUT,
                schedule_to_close_timeout=SESSION_DEADLINE, retry_policy=SESSION_RETRY,
                summary=f"incident against target {ev.target_id}",
            )
        except ActivityError as err:
            workflow.logger.warning("target session unavailable: %s", err)
            return None
        return state if state.brigading else None

    async def _strike(self, inp: ModerateEventInput, decision: DecideResult,
                      severity: Severity) -> StrikeResult | None:
        """Record the strike in the author's session; its answer carries the ladder's rung (None: the
        session could not be reached)."""
        ev = inp.event
        try:
            strike = await workflow.execute_local_activity(
                contract.APPLY_STRIKE,
                StrikeInput(platform=ev.platform, author_id=ev.author_id, case_id=ev.event_id,
                            category=decision.category, severity=severity, at=ev.received_at,
                            config=inp.policy.escalation, event=ev),
                result_type=StrikeResult, start_to_close_timeout=SESSION_TIMEOUT,
                schedule_to_close_timeout=SESSION_DEADLINE, retry_policy=SESSION_RETRY,
                summary=f"strike for {ev.author_id}",
            )
        except ActivityError as err:
            workflow.logger.warning("user session unavailable, acting without the ladder: %s", err)
            return None
        return strike

    async def _screen(self, inp: ModerateEventInput) -> ScreenResult:
        if inp.prescreen is not None:
            return inp.prescreen
        arg = ScreenInput(event_id=inp.event.event_id, content=inp.event.content,
                          embedding_from=inp.policy.thresholds.review)
        if inp.policy.local_screening:
            return await workflow.execute_local_activity(
                contract.SCREEN_EVENT, arg, result_type=ScreenResult, start_to_close_timeout=SCREEN_TIMEOUT,
                retry_policy=SCREEN_RETRY, summary="screen message",
            )
        return await workflow.execute_activity(
            contract.SCREEN_EVENT, arg, result_type=ScreenResult, task_queue=contract.SCREENING_QUEUE,
            start_to_close_timeout=SCREEN_TIMEOUT, retry_policy=SCREEN_RETRY, summary="screen message",
        )

    async def _context(self, inp: ModerateEventInput, screen: ScreenResult) -> CaseContext:
        try:
            return await workflow.execute_activity(
                contract.RETRIEVE_CONTEXT, ContextInput(event=inp.event, embedding=screen.embedding),
                result_type=CaseContext, task_queue=contract.CONTEXT_QUEUE, start_to_close_timeout=CONTEXT_TIMEOUT,
                schedule_to_close_timeout=CONTEXT_DEADLINE, retry_policy=CONTEXT_RETRY,
                summary="similar cases + author/target history",
            )
        except ActivityError as err:
            workflow.logger.warning("context unavailable, reasoning without it: %s", err)
            return CaseContext()

    async def _reason(self, inp: ModerateEventInput, screen: ScreenResult, context: CaseContext) -> ReasonResult:
        policy = inp.policy
        try:
            return await workflow.execute_activity(
                contract.REASON_ABOUT_CASE,
                ReasonInput(event=inp.event, screen=screen, context=context, policy_version=policy.version),
                result_type=ReasonResult, task_queue=contract.REASONING_QUEUE,
                start_to_close_timeout=timedelta(seconds=policy.reasoning_attempt_timeout_s),
                schedule_to_close_timeout=timedelta(seconds=policy.reasoning_deadline_s),
                retry_policy=RetryPolicy(
                    initial_interval=REASON_RETRY_INITIAL, maximum_interval=REASON_RETRY_MAX_INTERVAL,
                    maximum_attempts=policy.reasoning_max_attempts,
                    non_retryable_error_types=["LLMBadRequest", "LLMAuthError", "PolicyNotFound"],
                ),
                summary=f"LLM verdict under {policy.version}",
            )
        except ActivityError as err:
            return _reason_failure(err)

    async def _act(self, inp: ModerateEventInput, decision: DecideResult, *, automated: bool = True
                   ) -> list[ActionOutcome]:
        try:
            result = await workflow.execute_activity(
                contract.EXECUTE_ACTIONS,
                ActInput(case_id=inp.event.event_id, event=inp.event, actions=decision.actions,
                         shadow=inp.policy.shadow_mode, automated=automated),
                result_type=ActResult, task_queue=contract.ACTIONS_QUEUE, start_to_close_timeout=ACT_TIMEOUT,
                retry_policy=ACT_RETRY, summary="platform actions: " + ", ".join(a.action for a in decision.actions),
            )
            return result.outcomes
        except ActivityError as err:
            workflow.logger.error("actions failed after retries: %s", err)
            return [ActionOutcome(action=a.action, connector="", idempotency_key=f"{inp.event.event_id}:{a.action}",
                                  status=ActionStatus.FAILED, detail=str(err.cause or err)[:300])
                    for a in decision.actions]

    def _finish(self, record: CaseRecord, outcomes: list[ActionOutcome]) -> CaseOutcome:
        d = record.decision
        workflow.upsert_search_attributes([
            contract.SA_RISK.value_set(record.screen.risk_score), contract.SA_CATEGORY.value_set(d.category.value),
            contract.SA_DECISION.value_set(d.decision.value), contract.SA_NEEDS_REVIEW.value_set(d.needs_review),
        ])
        self._stage(Stage.COMPLETED, f"{d.decision.value}: " + "; ".join(d.reasons)[:400])
        return self._outcome(record, outcomes)

    @staticmethod
    def _outcome(record: CaseRecord, outcomes: list[ActionOutcome]) -> CaseOutcome:
        d = record.decision
        return CaseOutcome(case_id=record.case_id, path=record.path, risk_score=record.screen.risk_score,
                           category=d.category, decision=d.decision, needs_review=d.needs_review,
                           actions=outcomes, reasons=d.reasons)


__all__ = ["ModerateEventWorkflow", "Decision", "search_attributes_for_start"]
