"""Action execution through a platform connector, exactly once per (case, action).

The ledger row (``actions``, unique idempotency key) is claimed before the platform call and marked
applied after it. A retry after a crash sees the row: if applied, it is skipped; if still pending, the
call is repeated with the same idempotency key, which the platform (or webhook receiver) deduplicates.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import names
from core.connectors import ActionRequest, Connector, ConnectorConfigError, ConnectorError
from core.metrics import ACTION_FAILED_TOTAL, ACTIONS_APPLIED_TOTAL
from domain.models import ActInput, ActionOutcome, ActResult


class ActionActivities:
    def __init__(self, pool: asyncpg.Pool, connector: Connector) -> None:
        self.pool, self.connector = pool, connector

    @activity.defn(name=names.EXECUTE_ACTIONS)
    async def execute_actions(self, inp: ActInput) -> ActResult:
        outcomes = []
        for planned in inp.actions:
            key = f"{inp.case_id}:{planned.action.value}"
            req = ActionRequest(idempotency_key=key, case_id=inp.case_id, event=inp.event, action=planned)
            if inp.shadow:
                await self._claim(req, status="shadow")
                outcomes.append(ActionOutcome(action=planned.action, connector=self.connector.name,
                                              idempotency_key=key, status="shadow", detail="shadow mode: not applied"))
                continue
            existing = await self._claim(req, status="pending")
            if existing == "applied":
                outcomes.append(ActionOutcome(action=planned.action, connector=self.connector.name,
                                              idempotency_key=key, status="duplicate",
                                              detail="already applied; not repeated"))
                continue
            try:
                response = await self.connector.apply(req)
            except ConnectorError as err:
                ACTION_FAILED_TOTAL.labels(self.connector.name, planned.action.value).inc()
                delay = timedelta(seconds=min(err.retry_after_s, 120)) if err.retry_after_s else None
                raise ApplicationError(str(err), type="ConnectorError", next_retry_delay=delay) from err
            except ConnectorConfigError as err:
                ACTION_FAILED_TOTAL.labels(self.connector.name, planned.action.value).inc()
                raise ApplicationError(str(err), type="ConnectorConfigError", non_retryable=True) from err
            await self.pool.execute(
                "UPDATE actions SET status = 'applied', response = $2 WHERE idempotency_key = $1", key, response)
            ACTIONS_APPLIED_TOTAL.labels(self.connector.name, planned.action.value).inc()
            outcomes.append(ActionOutcome(action=planned.action, connector=self.connector.name,
                                          idempotency_key=key, status="applied",
                                          detail=str(response.get("would_call") or response.get("status", ""))))
        return ActResult(outcomes=outcomes)

    async def _claim(self, req: ActionRequest, *, status: str) -> str | None:
        """Insert the ledger row; returns the status of an existing row, or None when newly claimed."""
        row = await self.pool.fetchrow(
            """
            WITH ins AS (
                INSERT INTO actions (idempotency_key, case_id, platform, action, connector, status, request)
                VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (idempotency_key) DO NOTHING RETURNING status
            ) SELECT (SELECT status FROM ins) AS new, (SELECT status FROM actions WHERE idempotency_key = $1) AS old
            """,
            req.idempotency_key, req.case_id, req.event.platform, req.action.action.value, self.connector.name,
            status, req.payload(),
        )
        return None if row["new"] else row["old"]
