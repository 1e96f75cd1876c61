"""AppealWorkflow (``appeal-<appeal_id>``, task queue ``moderation``): overturn an actioned case.

Its models are in ``domain/appeals.py``; its names and id in ``workflows/contract.py``.

Steps, in order: ``revert_actions`` on the actions queue (undo the platform actions), then
``remove_user_strike`` (the author's session workflow forgets the strike), then
``record_appeal_outcome`` (appeal overturned, case marked false positive, label, audit entry).
Revert and record retry until they succeed: an overturn a moderator decided must complete. Removing
the strike is best effort after its deadline (the outcome records that it failed). The revert activity
first re-reads the appeal and refuses (non-retryable ``AppealNotOverturned``) unless this overturn holds
it; the workflow then ends with status ``refused`` and changes nothing else.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.actions import RevertInput
    from domain.appeals import (
        APPEAL_NOT_OVERTURNED,
        AppealInput,
        AppealOutcomeRecord,
        AppealOutcomeResult,
        AppealResult,
        RemoveStrikeResult,
        RemoveUserStrikeInput,
    )
    from domain.models import ActResult
    from workflows import contract

__all__ = ["AppealWorkflow"]

REVERT_TIMEOUT = timedelta(seconds=30)
REVERT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60),
                           non_retryable_error_types=["ConnectorConfigError"])
STRIKE_TIMEOUT = timedelta(seconds=15)
STRIKE_DEADLINE = timedelta(minutes=10)
STRIKE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
RECORD_TIMEOUT = timedelta(seconds=15)
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_interval=timedelta(seconds=30),
                           non_retryable_error_types=["AppealNotFound"])


@workflow.defn(name=contract.APPEAL_WORKFLOW)
class AppealWorkflow:
    @workflow.run
    async def run(self, inp: AppealInput) -> AppealResult:
        details: list[str] = []
        workflow.set_current_details(f"reverting the actions of case {inp.case_id}")
        try:
            reverted = await workflow.execute_activity(
                contract.REVERT_ACTIONS, RevertInput(case_id=inp.case_id, event=inp.event, appeal_id=inp.appeal_id,
                                                     reason=f"appeal {inp.appeal_id} overturned: {inp.reason}"[:2000]),
                result_type=ActResult, task_queue=inp.actions_queue, start_to_close_timeout=REVERT_TIMEOUT,
                retry_policy=REVERT_RETRY, summary="revert the case's platform actions",
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == APPEAL_NOT_OVERTURNED:
                return AppealResult(appeal_id=inp.appeal_id, status="refused", reverted=False, strike_removed=False,
                                    details=[cause.message])
            raise
        details.append("revert: " + (", ".join(f"{o.action.value} {o.status}" for o in reverted.outcomes)
                                     or "nothing to revert"))
        workflow.set_current_details("removing the author's strike")
        strike_removed = False
        try:
            strike = await workflow.execute_activity(
                contract.REMOVE_USER_STRIKE,
                RemoveUserStrikeInput(case_id=inp.case_id, platform=inp.event.platform, author_id=inp.event.author_id,
                                      reason=f"appeal {inp.appeal_id} overturned"),
                result_type=RemoveStrikeResult, start_to_close_timeout=STRIKE_TIMEOUT,
                schedule_to_close_timeout=STRIKE_DEADLINE, retry_policy=STRIKE_RETRY,
                summary="remove the author's strike",
            )
            strike_removed = strike.removed
            details.append(strike.detail)
        except ActivityError as err:
            details.append(f"strike NOT removed: {err.cause or err}")
        workflow.set_current_details("recording the outcome")
        recorded = await workflow.execute_activity(
            contract.RECORD_APPEAL_OUTCOME,
            AppealOutcomeRecord(appeal_id=inp.appeal_id, outcome="overturn", decided_by=inp.decided_by, note=inp.note,
                                reverted=True, strike_removed=strike_removed, details=details),
            result_type=AppealOutcomeResult, start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY,
            summary="record the appeal outcome",
        )
        return AppealResult(appeal_id=inp.appeal_id, status=recorded.status, reverted=True,
                            strike_removed=strike_removed, details=details)
