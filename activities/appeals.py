"""Activities of the appeal workflow that run on the moderation worker: remove the author's strike
from their session workflow, and record the appeal's outcome (appeal row, false-positive mark, label,
audit entry). Both are idempotent, so Temporal may retry them freely."""

from __future__ import annotations

import logging

import asyncpg
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from core.storage import appeals
from domain.appeals import (
    AppealOutcomeRecord,
    AppealOutcomeResult,
    RemoveStrikeResult,
    RemoveUserStrikeInput,
)
from domain.sessions import RemoveStrikeInput as SessionRemoveStrike
from workflows.contract import RECORD_APPEAL_OUTCOME, REMOVE_STRIKE_UPDATE, REMOVE_USER_STRIKE, user_session_id

log = logging.getLogger(__name__)

class AppealActivities:
    def __init__(self, pool: asyncpg.Pool, client: Client) -> None:
        self.pool, self.client = pool, client

    @activity.defn(name=REMOVE_USER_STRIKE)
    async def remove_user_strike(self, inp: RemoveUserStrikeInput) -> RemoveStrikeResult:
        """Ask the author's session workflow to drop the strike this case gave. No session (never started,
        or it ended) means there is no strike to remove."""
        wid = user_session_id(inp.platform, inp.author_id)
        update = SessionRemoveStrike(case_id=inp.case_id, reason=inp.reason)
        try:
            await self.client.get_workflow_handle(wid).execute_update(REMOVE_STRIKE_UPDATE, update)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return RemoveStrikeResult(removed=False, detail=f"no session workflow {wid}: nothing to remove")
            raise  # transient: Temporal retries the activity
        except WorkflowUpdateFailedError as err:
            # The session refused (e.g. it holds no strike for this case): retrying would not change that.
            msg = getattr(err.cause, "message", str(err))
            log.info("strike not removed", extra={"case_id": inp.case_id, "detail": msg})
            return RemoveStrikeResult(removed=False, detail=f"session {wid} refused: {msg}")
        return RemoveStrikeResult(removed=True, detail=f"strike for case {inp.case_id} removed from {wid}")

    @activity.defn(name=RECORD_APPEAL_OUTCOME)
    async def record_appeal_outcome(self, inp: AppealOutcomeRecord) -> AppealOutcomeResult:
        note = inp.note
        if inp.details:
            note = (note + "\n" if note else "") + "; ".join(inp.details)
        row = await appeals.record_appeal_decision(self.pool, appeal_id=inp.appeal_id, outcome=inp.outcome,
                                                     decided_by=inp.decided_by, note=note[:2000])
        if row is None:
            from temporalio.exceptions import ApplicationError

            raise ApplicationError(f"no appeal {inp.appeal_id}", type="AppealNotFound", non_retryable=True)
        return AppealOutcomeResult(appeal_id=inp.appeal_id, status=row["status"])
