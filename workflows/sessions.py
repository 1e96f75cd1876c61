"""Long-running session workflows: one per author (strikes, ladder, expiring sanctions) and one per
target (brigading protection).

Both are driven by updates, which the moderation pipeline sends with update-with-start (see
``activities/sessions.py``), so one round trip starts the session if needed and returns its answer.
The update handlers are synchronous: each one changes state and answers within the workflow task it
arrives in. The main loop only does timed work (lifting sanctions, clearing the brigading flag,
ending idle sessions) and continues as new before the history grows large, after waiting for every
handler to finish, so no update is lost across the boundary.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.escalation import (
        Incident,
        Strike,
        active_strikes,
        distinct_authors,
        incidents_in_window,
        is_brigading,
        ladder_for,
        level_for_score,
        rung_actions,
        session_expires_at,
        strike_weight,
        weighted_score,
    )
    from domain.models import ActionStatus, ActionType, ActResult, ChatEvent, PlannedAction
    from domain.sessions import (
        LiftedSanction,
        PendingLift,
        RemoveStrikeInput,
        RevertInput,
        StrikeInput,
        StrikeResult,
        TargetIncidentInput,
        TargetSessionInput,
        TargetState,
        UserSessionInput,
        UserSessionState,
    )
    from workflows import contract

# Lifting a sanction must eventually happen, but a platform outage must not wedge the session: retry
# for a while, then record the failure in the state (visible to moderators) and move on.
REVERT_TIMEOUT = timedelta(seconds=30)
REVERT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1),
                           maximum_attempts=30, non_retryable_error_types=["ConnectorConfigError"])
# Lifted sanctions kept in the state for moderators (older ones are dropped).
LIFTED_HISTORY = 50
# Incidents kept per target window. A brigade far above any threshold needs no exact count, and this
# bounds the state carried across continue-as-new.
MAX_INCIDENTS = 1_000


def _has_room(max_history_events: int) -> bool:
    info = workflow.info()
    return not info.is_continue_as_new_suggested() and info.get_current_history_length() < max_history_events


async def _sleep_until(deadline: datetime | None, wake: asyncio.Event) -> None:
    """Wait for ``wake`` or the durable timer to ``deadline`` (no timer when there is nothing to wait for)."""
    if deadline is None:
        await workflow.wait_condition(wake.is_set)
        return
    remaining = (deadline - workflow.now()).total_seconds()
    if remaining <= 0:
        return
    try:
        await workflow.wait_condition(wake.is_set, timeout=timedelta(seconds=remaining))
    except TimeoutError:
        pass


@workflow.defn(name=contract.USER_SESSION_WORKFLOW)
class UserSessionWorkflow:
    """Strikes of one author on one platform (id ``user-<platform>:<author_id>``)."""

    @workflow.init
    def __init__(self, inp: UserSessionInput) -> None:
        self._s = inp.state or UserSessionState(platform=inp.platform, author_id=inp.author_id, config=inp.config)
        if self._s.last_activity_at is None:
            self._s.last_activity_at = workflow.now()
        self._max_history = inp.max_history_events
        self._wake = asyncio.Event()

    # --- handlers --------------------------------------------------------------------------------

    @workflow.query(name=contract.STATE_QUERY)
    def state(self) -> UserSessionState:
        # A query must not change the workflow's state: answer from a refreshed copy.
        snapshot = self._s.model_copy(deep=True)
        _refresh(snapshot, workflow.now())
        return snapshot

    @workflow.update(name=contract.RECORD_STRIKE_UPDATE)
    def record_strike(self, inp: StrikeInput) -> StrikeResult:
        now = workflow.now()
        s = self._s
        s.config = inp.config
        ladder = ladder_for(s.platform, s.config)
        self._refresh(now)
        previous = next((x for x in s.strikes if x.case_id == inp.case_id), None)
        if previous is not None:
            return self._result(inp.case_id, previous.level, previous.actions, duplicate=True)
        if inp.case_id in s.overturned:
            return self._result(inp.case_id, s.level, [], overturned=True)

        weight = strike_weight(inp.category, inp.severity, s.config)
        s.last_activity_at = now
        self._wake.set()
        if weight <= 0:
            return self._result(inp.case_id, s.level, [])
        strike = Strike(case_id=inp.case_id, category=inp.category, severity=inp.severity, weight=weight, at=inp.at)
        s.strikes.append(strike)
        s.strikes_recorded += 1
        score = weighted_score(s.strikes, now, s.config)
        strike.level = level_for_score(score, len(ladder))
        strike.actions = rung_actions(ladder, strike.level, why=f"{inp.category.value} ({inp.severity.value})")
        self._schedule_lifts(inp, strike, now)
        self._refresh(now)
        return self._result(inp.case_id, strike.level, strike.actions)

    @record_strike.validator
    def _validate_strike(self, inp: StrikeInput) -> None:
        if (inp.platform, inp.author_id) != (self._s.platform, self._s.author_id):
            raise ValueError(f"strike for {inp.platform}/{inp.author_id} sent to the session of "
                             f"{self._s.platform}/{self._s.author_id}")

    @workflow.update(name=contract.REMOVE_STRIKE_UPDATE)
    def remove_strike(self, inp: RemoveStrikeInput) -> UserSessionState:
        """Appeal overturned: the case stops counting and the level is re-computed.

        A pending lift of the case's timeout stays scheduled (lifting twice is harmless); undoing the
        case's sanctions now is the appeal flow's job, which owns the case.
        """
        now = workflow.now()
        s = self._s
        removed = [x for x in s.strikes if x.case_id == inp.case_id]
        s.strikes = [x for x in s.strikes if x.case_id != inp.case_id]
        s.overturned[inp.case_id] = now
        s.last_activity_at = now
        if any(a.action == ActionType.BAN for x in removed for a in x.actions):
            s.banned = False
        self._refresh(now)
        self._wake.set()
        return s

    @remove_strike.validator
    def _validate_remove(self, inp: RemoveStrikeInput) -> None:
        # Refused (nothing written to history) when the session holds no such strike; removing an
        # already removed one is accepted, so a retried appeal activity sees success again.
        if inp.case_id not in self._s.overturned and all(x.case_id != inp.case_id for x in self._s.strikes):
            raise ValueError(f"no active strike for case {inp.case_id} in {self._s.platform}/{self._s.author_id}: "
                             "never recorded, carried no weight, or already decayed")

    # --- main loop -------------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: UserSessionInput) -> UserSessionState:
        while True:
            await self._lift_due()
            if not _has_room(self._max_history):
                await workflow.wait_condition(workflow.all_handlers_finished)
                self._refresh(workflow.now())
                s = self._s.model_copy(update={"runs": self._s.runs + 1})
                workflow.continue_as_new(UserSessionInput(platform=s.platform, author_id=s.author_id, config=s.config,
                                                          state=s, max_history_events=self._max_history))
            now = workflow.now()
            self._refresh(now)
            if self._idle_until() <= now:
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._idle_until() <= workflow.now():
                    return self._s
            self._wake.clear()
            await _sleep_until(self._next_deadline(), self._wake)

    # --- helpers ---------------------------------------------------------------------------------

    def _refresh(self, now: datetime) -> None:
        _refresh(self._s, now)

    def _result(self, case_id: str, level: int, actions: list[PlannedAction], *, duplicate: bool = False,
                overturned: bool = False) -> StrikeResult:
        s = self._s
        ladder = ladder_for(s.platform, s.config)
        label = ladder[level - 1].label if 0 < level <= len(ladder) else ""
        return StrikeResult(case_id=case_id, level=level, actions=actions, strikes_active=s.strikes_active,
                            weighted_score=s.weighted_score, ladder_size=len(ladder), rung_label=label,
                            duplicate=duplicate, overturned=overturned)

    def _schedule_lifts(self, inp: StrikeInput, strike: Strike, now: datetime) -> None:
        """Mirror the platform: a ban makes earlier timeouts moot; a new timeout replaces an earlier one."""
        s = self._s
        kinds = {a.action for a in strike.actions}
        if ActionType.BAN in kinds:
            s.banned = True
            s.pending_lifts = []
            return
        for planned in strike.actions:
            if planned.action == ActionType.TIMEOUT and planned.duration_s:
                s.pending_lifts = [p for p in s.pending_lifts if p.action != ActionType.TIMEOUT]
                s.pending_lifts.append(PendingLift(
                    case_id=inp.case_id, action=ActionType.TIMEOUT, duration_s=planned.duration_s,
                    until=now + timedelta(seconds=planned.duration_s), event=_lift_event(inp, now),
                ))

    async def _lift_due(self) -> None:
        while True:
            now = workflow.now()
            due = [p for p in self._s.pending_lifts if p.until <= now]
            if not due:
                return
            lift = min(due, key=lambda p: p.until)
            # Removed before the call, so a handler running meanwhile sees the current truth.
            self._s.pending_lifts = [p for p in self._s.pending_lifts if p is not lift]
            reason = f"{lift.action.value} of {lift.duration_s}s expired"
            try:
                result = await workflow.execute_activity(
                    contract.REVERT_ACTIONS, RevertInput(case_id=lift.case_id, event=lift.event, reason=reason),
                    result_type=ActResult, task_queue=contract.ACTIONS_QUEUE, start_to_close_timeout=REVERT_TIMEOUT,
                    retry_policy=REVERT_RETRY, summary=f"lift {lift.action.value} of case {lift.case_id}",
                )
                outcomes = ", ".join(f"{o.action.value}: {o.status}" for o in result.outcomes)
                ok = not any(o.status == ActionStatus.FAILED for o in result.outcomes)
                detail = f"{reason}; {outcomes or 'nothing to lift'}"[:300]
            except ActivityError as err:
                workflow.logger.error("lifting %s of case %s failed: %s", lift.action, lift.case_id, err)
                ok, detail = False, f"lift failed after retries: {err.cause or err}"[:300]
            self._s.lifted = [*self._s.lifted, LiftedSanction(case_id=lift.case_id, action=lift.action,
                                                               lifted_at=workflow.now(), ok=ok, detail=detail)]
            self._s.lifted = self._s.lifted[-LIFTED_HISTORY:]

    def _idle_until(self) -> datetime:
        """When the session may end: nothing pending, every strike decayed, a quiet window passed."""
        s = self._s
        if s.pending_lifts:
            return datetime.max.replace(tzinfo=workflow.now().tzinfo)
        assert s.last_activity_at is not None
        return session_expires_at(s.strikes, s.last_activity_at, s.config)

    def _next_deadline(self) -> datetime | None:
        s = self._s
        deadlines = [p.until for p in s.pending_lifts]
        if not s.pending_lifts:
            deadlines.append(self._idle_until())
        return min(deadlines) if deadlines else None


def _refresh(s: UserSessionState, now: datetime) -> None:
    """Drop decayed strikes and stale appeal records; re-compute score and level at ``now``."""
    s.strikes = active_strikes(s.strikes, now, s.config)
    window = timedelta(seconds=s.config.decay_window_s)
    s.overturned = {k: v for k, v in s.overturned.items() if v + window > now}
    s.weighted_score = round(weighted_score(s.strikes, now, s.config), 6)
    s.level = level_for_score(s.weighted_score, len(ladder_for(s.platform, s.config)))
    s.strikes_active = len(s.strikes)
    s.as_of = now


def _lift_event(inp: StrikeInput, now: datetime) -> ChatEvent:
    """The event a lift passes to ``revert_actions``: who and where, without the message text (which
    the session has no use for and would otherwise carry across every continue-as-new)."""
    if inp.event is not None:
        return inp.event.model_copy(update={"content": ""})
    return ChatEvent(event_id=inp.case_id, platform=inp.platform, channel_id="", author_id=inp.author_id,
                     content="", received_at=now)


@workflow.defn(name=contract.TARGET_SESSION_WORKFLOW)
class TargetSessionWorkflow:
    """Incidents aimed at one target on one platform (id ``target-<platform>:<target_id>``)."""

    @workflow.init
    def __init__(self, inp: TargetSessionInput) -> None:
        self._s = inp.state or TargetState(platform=inp.platform, target_id=inp.target_id, config=inp.config)
        if self._s.last_received_at is None:
            self._s.last_received_at = workflow.now()
        self._max_history = inp.max_history_events
        self._wake = asyncio.Event()

    @workflow.query(name=contract.STATE_QUERY)
    def state(self) -> TargetState:
        return self._s

    @workflow.update(name=contract.RECORD_INCIDENT_UPDATE)
    def record_incident(self, inp: TargetIncidentInput) -> TargetState:
        """Count the incident; raise the brigading flag when enough distinct authors are in the window.

        The window is measured in event time, ending at the newest incident, so pipeline latency does
        not split a burst; the quiet period is measured in workflow time since the last incident.
        """
        s = self._s
        s.config = inp.config
        now = workflow.now()
        s.last_received_at = now
        self._wake.set()
        if any(i.case_id == inp.case_id for i in s.incidents):
            return self._answer(raised=False)
        s.incidents.append(Incident(author_id=inp.author_id, case_id=inp.case_id, at=inp.at))
        s.incidents_recorded += 1
        ref = max(i.at for i in s.incidents)
        s.last_incident_at = ref
        s.incidents = incidents_in_window(s.incidents, ref, s.config.window_s)[-MAX_INCIDENTS:]
        s.incidents_in_window = len(s.incidents)
        s.distinct_authors = distinct_authors(s.incidents, ref, s.config.window_s)
        s.peak_distinct_authors = max(s.peak_distinct_authors, s.distinct_authors)
        raised = False
        if not s.brigading and is_brigading(s.distinct_authors, s.config):
            raised = True
            s.brigading, s.brigading_since, s.cleared_at = True, now, None
        if s.brigading:
            s.notify_moderators = True
            s.slow_mode_recommended = s.config.recommend_slow_mode
            s.review_factor = s.config.review_factor
        return self._answer(raised=raised)

    def _answer(self, *, raised: bool) -> TargetState:
        # The raw incidents stay out of the answer: it is written to history once per incident.
        return self._s.model_copy(update={"newly_raised": raised, "incidents": []})

    @record_incident.validator
    def _validate_incident(self, inp: TargetIncidentInput) -> None:
        if (inp.platform, inp.target_id) != (self._s.platform, self._s.target_id):
            raise ValueError(f"incident for {inp.platform}/{inp.target_id} sent to the session of "
                             f"{self._s.platform}/{self._s.target_id}")

    @workflow.run
    async def run(self, inp: TargetSessionInput) -> TargetState:
        while True:
            if not _has_room(self._max_history):
                await workflow.wait_condition(workflow.all_handlers_finished)
                s = self._s.model_copy(update={"runs": self._s.runs + 1})
                workflow.continue_as_new(TargetSessionInput(platform=s.platform, target_id=s.target_id,
                                                            config=s.config, state=s,
                                                            max_history_events=self._max_history))
            now = workflow.now()
            s = self._s
            if s.brigading and self._quiet_until() <= now:
                s.brigading, s.notify_moderators, s.slow_mode_recommended = False, False, False
                s.review_factor, s.cleared_at = None, now
            if not s.brigading and self._quiet_until() <= now:
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self._s.brigading and self._quiet_until() <= workflow.now():
                    self._s.incidents, self._s.distinct_authors, self._s.incidents_in_window = [], 0, 0
                    return self._s
            self._wake.clear()
            await _sleep_until(self._quiet_until(), self._wake)

    def _quiet_until(self) -> datetime:
        """Brigading clears after the quiet period; otherwise the session ends once its window is empty."""
        s = self._s
        assert s.last_received_at is not None
        span = s.config.quiet_period_s if s.brigading else s.config.window_s
        return s.last_received_at + timedelta(seconds=span)


__all__ = ["TargetSessionWorkflow", "UserSessionWorkflow"]
