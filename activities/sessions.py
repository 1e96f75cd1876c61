"""Session activities: the moderation workflow's one-round-trip door into the session workflows.

A workflow cannot do update-with-start itself, so these activities do it: start the author's (or
target's) session if it is not running, deliver the update, and return its answer. They are
idempotent: the session workflows deduplicate by case id (across continue-as-new too), so a retried
activity never counts a strike or an incident twice and gets the original answer back
(``StrikeResult.duplicate``). The update id is left random on purpose: a server-side duplicate would
replay the first answer even after the case was overturned on appeal.
"""

from __future__ import annotations

import logging
from typing import Any

from temporalio import activity
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from domain.sessions import (
    StrikeInput,
    StrikeResult,
    TargetIncidentInput,
    TargetSessionInput,
    TargetState,
    UserSessionInput,
)
from workflows.contract import (
    APPLY_STRIKE,
    MODERATION_QUEUE,
    RECORD_INCIDENT_UPDATE,
    RECORD_STRIKE_UPDATE,
    RECORD_TARGET_INCIDENT,
    TARGET_SESSION_WORKFLOW,
    USER_SESSION_WORKFLOW,
    target_session_id,
    user_session_id,
)

log = logging.getLogger(__name__)

class SessionActivities:
    """Holds the Temporal client (with the pydantic data converter) and the sessions' task queue."""

    def __init__(self, client: Client, *, task_queue: str = MODERATION_QUEUE, redis: Any = None) -> None:
        self.client, self.task_queue, self.redis = client, task_queue, redis

    @activity.defn(name=APPLY_STRIKE)
    async def apply_strike(self, inp: StrikeInput) -> StrikeResult:
        start = WithStartWorkflowOperation(
            USER_SESSION_WORKFLOW, UserSessionInput(platform=inp.platform, author_id=inp.author_id, config=inp.config),
            id=user_session_id(inp.platform, inp.author_id), task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"strikes of {inp.author_id} on {inp.platform}",
        )
        result: StrikeResult = await self.client.execute_update_with_start_workflow(
            RECORD_STRIKE_UPDATE, inp, start_workflow_operation=start,
            result_type=StrikeResult,
        )
        return result

    @activity.defn(name=RECORD_TARGET_INCIDENT)
    async def record_target_incident(self, inp: TargetIncidentInput) -> TargetState:
        start = WithStartWorkflowOperation(
            TARGET_SESSION_WORKFLOW, TargetSessionInput(platform=inp.platform, target_id=inp.target_id,
                                                        config=inp.config),
            id=target_session_id(inp.platform, inp.target_id), task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"incidents aimed at {inp.target_id} on {inp.platform}",
        )
        result: TargetState = await self.client.execute_update_with_start_workflow(
            RECORD_INCIDENT_UPDATE, inp, start_workflow_operation=start,
            result_type=TargetState,
        )
        if result.brigading and result.review_factor is not None:
            await self._flag(inp, result.review_factor)
        return result

    async def _flag(self, inp: TargetIncidentInput, factor: float) -> None:
        """Tell the API (through Redis, read at ingest) to lower the review threshold for this target until
        the quiet period passes. Redis down: the flag is still in the target session; log and go on."""
        if self.redis is None:
            return
        try:
            await self.redis.set(brigading_key(inp.platform, inp.target_id), str(factor),
                                 ex=inp.config.quiet_period_s)
        except Exception as err:  # noqa: BLE001 - any Redis failure only loses the fast path
            log.warning("could not publish the brigading flag: %s", err, extra={"case_id": inp.case_id})


def brigading_key(platform: str, target_id: str) -> str:
    return f"brigading:{platform}:{target_id}"


__all__ = ["SessionActivities", "brigading_key"]
