"""Action execution through a platform connector, at most one platform call per (case, action) that
can have taken effect; and its inverse.

Ledger protocol (``actions``, unique idempotency key ``<case>:<action>``), one row per action:

* ``pending`` - claimed; no attempt has reached the platform (or the platform provably refused it:
  a 429, a connection never made, a 4xx). A retry simply calls.
* ``calling`` - written immediately before the platform call. A row still ``calling`` when a retry
  arrives means an attempt died (worker SIGKILLed, activity timed out, network lost) after the request
  may have reached the platform. The retry does not repeat blindly: it asks the connector whether the
  effect is already in place (``check``: Discord reads the ban, member, message or DM back; Helix
  lists the channel's banned users). In place -> ``applied`` with that evidence, no second call;
  not in place -> it calls (with the same idempotency key).
* ``unconfirmed`` - the platform cannot read the effect back (Helix chat-message deletes and warnings)
  and an attempt may have reached it: the call is NOT repeated. At most once, not exactly once: the
  outcome's detail tells moderators the action may or may not have landed. A webhook receiver
  deduplicates by the idempotency key (its contract), so for webhooks the repeat is simply made.
* ``applied`` (and ``shadow``, ``capped``) - final for that action: a retry makes no call.

The connector is chosen per event platform (``ConnectorRouter``) and its name is recorded in the row.
``revert_actions`` undoes a case's applied bans and timeouts under keys ``<case>:revert:<action>``,
with the same protocol (``check_revert`` reads back that the unban or lift took effect), so an appeal
applied twice unbans once and a worker killed mid-unban does not unban twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.connectors import (
    ActionRequest,
    CannotCheck,
    Connector,
    ConnectorConfigError,
    ConnectorError,
    ConnectorRouter,
)
from core.metrics import (
    ACTION_FAILED_TOTAL,
    ACTIONS_APPLIED_TOTAL,
    ACTIONS_UNCONFIRMED_TOTAL,
    SANCTION_CAP_REACHED_TOTAL,
)
from core.storage import actions as ledger
from core.storage import appeals
from domain.actions import RevertInput
from domain.appeals import APPEAL_NOT_OVERTURNED
from domain.models import ActInput, ActionOutcome, ActionStatus, ActionType, ActResult, PlannedAction
from workflows import contract

log = logging.getLogger(__name__)

# Temporal waits at most this long before retrying a rate-limited call, whatever the platform asks.
MAX_RETRY_DELAY_S = 120.0
_DONE = ("applied", "not_reversible")  # ledger states a repeat must not call the platform for

JSONDict = dict[str, object]
PlatformCall = Callable[[ActionRequest], Awaitable[JSONDict]]
PlatformCheck = Callable[[ActionRequest], Awaitable[JSONDict | None]]


class ActionActivities:
    """Holds the database pool and the connectors (one router, built once by the worker)."""

    def __init__(self, pool: asyncpg.Pool, connectors: ConnectorRouter | Connector, *,
                 daily_caps: dict[ActionType, int] | None = None) -> None:
        self.pool = pool
        # Circuit breaker: automated sanctions per community per UTC day (a bad model cannot ban a community).
        self.daily_caps = daily_caps if daily_caps is not None else {ActionType.BAN: 50, ActionType.TIMEOUT: 500}
        # A single connector (tests, older wiring) serves every platform.
        self.router = connectors if isinstance(connectors, ConnectorRouter) else ConnectorRouter(connectors)

    @activity.defn(name=contract.EXECUTE_ACTIONS)
    async def execute_actions(self, inp: ActInput) -> ActResult:
        connector = self.router.for_platform(inp.event.platform)
        outcomes = [await self._execute_one(inp, planned, connector) for planned in inp.actions]
        return ActResult(outcomes=outcomes)

    async def _execute_one(self, inp: ActInput, planned: PlannedAction, connector: Connector) -> ActionOutcome:
        key = f"{inp.case_id}:{planned.action.value}"
        req = ActionRequest(idempotency_key=key, case_id=inp.case_id, event=inp.event, action=planned)

        def outcome(status: ActionStatus, detail: str) -> ActionOutcome:
            return ActionOutcome(action=planned.action, connector=connector.name, idempotency_key=key,
                                 status=status, detail=detail)

        if inp.shadow:
            await self._claim(req, connector=connector.name, status="shadow", label=planned.action.value,
                              payload=req.payload())
            return outcome(ActionStatus.SHADOW, "shadow mode: not applied")
        payload = {**req.payload(), "automated": inp.automated}
        cap = self.daily_caps.get(planned.action) if inp.automated else None
        if cap is not None and await self._applied_today(inp, planned.action) >= cap:
            existing = await self._claim(req, connector=connector.name, status="capped", label=planned.action.value,
                                         payload=payload)
            if existing in (None, "capped"):
                SANCTION_CAP_REACHED_TOTAL.labels(inp.event.platform, planned.action.value).inc()
                return outcome(ActionStatus.CAPPED, f"daily cap of {cap} automated {planned.action.value}s in "
                                         f"{inp.event.platform}/{inp.event.channel_id} reached: not applied")
        existing = await self._claim(req, connector=connector.name, status="pending", label=planned.action.value,
                                     payload=payload)
        if existing == "applied":
            return outcome(ActionStatus.DUPLICATE, "already applied; not repeated")
        if existing == "unconfirmed":
            return outcome(ActionStatus.UNCONFIRMED, await self._stored_detail(key))
        if existing == "calling" and (settled := await self._reconcile(req, connector)):
            return outcome(*settled)
        response = await self._call(key, connector.apply, req, connector.name)
        await self._finish(key, "applied", response)
        ACTIONS_APPLIED_TOTAL.labels(connector.name, planned.action.value).inc()
        return outcome(ActionStatus.APPLIED, _detail(response))

    async def _reconcile(self, req: ActionRequest, connector: Connector) -> tuple[str, str] | None:
        """After an attempt that may have reached the platform: (status, detail) when the call must not be
        made again (the effect is in place, or the platform cannot tell), None when it should be made."""
        key = req.idempotency_key
        try:
            evidence = await _read_back(connector.check, req, connector.name)
        except CannotCheck as err:
            detail = (f"not repeated: a previous attempt may have reached {connector.name}, and {err}, so a "
                      f"repeat could duplicate it; check {connector.name} to see whether it took effect")
            await self._finish(key, "unconfirmed", {"unconfirmed": detail})
            ACTIONS_UNCONFIRMED_TOTAL.labels(connector.name, req.action.action.value).inc()
            return "unconfirmed", detail
        if evidence is None:
            return None
        await self._finish(key, "applied", evidence)
        ACTIONS_APPLIED_TOTAL.labels(connector.name, req.action.action.value).inc()
        return "applied", f"already in place after an interrupted attempt ({_detail(evidence)}); not repeated"

    @activity.defn(name=contract.REVERT_ACTIONS)
    async def revert_actions(self, inp: RevertInput) -> ActResult:
        """Revert the case's applied actions, each at most once. Deletes and warnings are answered
        ``not_reversible``; a ban or timeout is ``kept`` while another case's ban of the same user stands
        (on Twitch, and for Discord bans, lifting it would lift that ban too). A kept revert gives up this
        case's claim: when the other case is reverted later, the ban is lifted then. Calling again after
        ``kept`` re-checks and lifts the sanction if nothing else holds it any more."""
        if inp.appeal_id and (refusal := await appeals.revert_refusal(self.pool, appeal_id=inp.appeal_id)):
            log.warning("revert refused", extra={"case_id": inp.case_id, "appeal_id": inp.appeal_id,
                                                 "detail": refusal})
            raise ApplicationError(f"not reverted: {refusal}", type=APPEAL_NOT_OVERTURNED, non_retryable=True)
        rows = await ledger.applied_for_case(self.pool, case_id=inp.case_id, actions=[a.value for a in ActionType])
        connector = self.router.for_platform(inp.event.platform)
        return ActResult(outcomes=[await self._revert_one(inp, row, connector) for row in rows])

    async def _revert_one(self, inp: RevertInput, row: asyncpg.Record, connector: Connector) -> ActionOutcome:
        action = ActionType(row["action"])
        request: dict[str, object] = row["request"] or {}
        duration = request.get("duration_s")
        planned = PlannedAction(action=action, duration_s=duration if isinstance(duration, int) else None,
                                reason=inp.reason or f"revert of case {inp.case_id}")
        key = f"{inp.case_id}:revert:{action.value}"
        req = ActionRequest(idempotency_key=key, case_id=inp.case_id, event=inp.event, action=planned)

        def outcome(status: ActionStatus, detail: str) -> ActionOutcome:
            return ActionOutcome(action=action, connector=connector.name, idempotency_key=key,
                                 status=status, detail=detail)

        existing = await self._claim(req, connector=connector.name, status="pending", label=f"revert_{action.value}",
                                     payload=req.payload(revert=True))
        if existing in _DONE:
            return outcome(ActionStatus.DUPLICATE, "already reverted; not repeated")
        if existing == "calling" and (evidence := await _read_back(connector.check_revert, req, connector.name)):
            await self._finish(key, "applied", evidence)
            return outcome(ActionStatus.REVERTED,
                           f"already reverted by an interrupted attempt ({_detail(evidence)}); not repeated")
        if blocker := await self._standing_ban(inp, action, row["response"] or {}):
            # Recorded as 'kept': this case no longer claims the ban, so the other case's revert may lift it.
            await self._finish(key, "kept", {"kept": blocker})
            return outcome(ActionStatus.KEPT, blocker)
        response = await self._call(key, connector.revert, req, connector.name)
        reversible = response.get("reversible") is not False
        await self._finish(key, "applied" if reversible else "not_reversible", response)
        return outcome(ActionStatus.REVERTED if reversible else ActionStatus.NOT_REVERSIBLE, _detail(response))

    async def _standing_ban(self, inp: RevertInput, action: ActionType, applied: JSONDict) -> str:
        """Why reverting would lift a sanction that is not this case's to lift ('' when it would not)."""
        if action not in (ActionType.BAN, ActionType.TIMEOUT):
            return ""
        if applied.get("already_banned"):
            return "the user was already banned when this case acted; lifting would lift that ban"
        other = await ledger.other_standing_ban(self.pool, platform=inp.event.platform, user_id=inp.event.author_id,
                                                case_id=inp.case_id)
        return f"case {other} still bans this user; lifting would lift that ban too" if other else ""

    async def _claim(self, req: ActionRequest, *, connector: str, status: str, label: str,
                     payload: dict[str, object]) -> str | None:
        """Insert the ledger row; returns the status of an existing row, or None when newly claimed."""
        return await ledger.claim(self.pool, key=req.idempotency_key, case_id=req.case_id, platform=req.event.platform,
                                  label=label, connector=connector, status=status, request=payload)

    async def _applied_today(self, inp: ActInput, action: ActionType) -> int:
        """Automated sanctions of this kind applied today in the event's community (platform + channel)."""
        return await ledger.applied_today(self.pool, platform=inp.event.platform, action=action.value,
                                          channel_id=inp.event.channel_id)

    async def _call(self, key: str, call: PlatformCall, req: ActionRequest, connector: str) -> JSONDict:
        """The platform call, bracketed by the ledger: 'calling' is committed before the request leaves, so
        a retry after a crash knows to read the platform back. An answer that proves nothing happened (a
        429, a connection never made, a 4xx) puts the row back to 'pending': the retry just calls."""
        await self._set_status(key, "calling")
        try:
            return await call(req)
        except ConnectorError as err:
            if not err.maybe_applied:
                await self._set_status(key, "pending")
            raise _temporal_error(err, req, connector) from err
        except ConnectorConfigError as err:
            await self._set_status(key, "pending")
            raise _temporal_error(err, req, connector) from err

    async def _set_status(self, key: str, status: str) -> None:
        await ledger.set_status(self.pool, key, status)

    async def _stored_detail(self, key: str) -> str:
        """What an earlier attempt recorded for an 'unconfirmed' action (repeated in the retry's outcome)."""
        response = await ledger.stored_response(self.pool, key)
        return str((response or {}).get("unconfirmed", "")) or "unconfirmed by an earlier attempt; not repeated"

    async def _finish(self, key: str, status: str, response: dict[str, object]) -> None:
        await ledger.finish(self.pool, key, status, response)


async def _read_back(check: PlatformCheck, req: ActionRequest, connector: str) -> JSONDict | None:
    """Ask the platform whether the effect is in place; ``CannotCheck`` passes through, errors as in a call."""
    try:
        return await check(req)
    except (ConnectorError, ConnectorConfigError) as err:
        raise _temporal_error(err, req, connector) from err


def _temporal_error(err: ConnectorError | ConnectorConfigError, req: ActionRequest, connector: str
                    ) -> ApplicationError:
    """A connector error as Temporal sees it: retryable (with the platform's delay) or not."""
    ACTION_FAILED_TOTAL.labels(connector, req.action.action.value).inc()
    if isinstance(err, ConnectorConfigError):
        return ApplicationError(str(err), type="ConnectorConfigError", non_retryable=True)
    delay = timedelta(seconds=min(err.retry_after_s, MAX_RETRY_DELAY_S)) if err.retry_after_s else None
    return ApplicationError(str(err), type="ConnectorError", next_retry_delay=delay)


def _detail(response: dict[str, object]) -> str:
    """A short line for the case record: what was (or would have been) called."""
    for key in ("would_call", "skipped", "detail"):
        if response.get(key):
            return str(response[key])
    status = str(response.get("status", ""))
    return f"{status} {response['call']}" if response.get("call") else status
