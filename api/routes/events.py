"""Ingest and status: every accepted event becomes one durable case (workflow ``event-<event_id>``)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import asyncpg
import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, HTTPException, Path, status
from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities import names
from activities.screening import screen_text
from activities.sessions import brigading_key
from api.deps import ServicesDep, require
from api.schemas import ActionPublic, ErrorOut, EventIn, EventStatus, IngestAccepted, OutcomePublic
from core import store
from core.keys import KeyInfo, Role
from core.metrics import DEPENDENCY_DEGRADED_TOTAL, INGEST_DURATION_MS, INGEST_REQUESTS_TOTAL
from core.settings import Settings
from core.temporal import workflow_id
from domain.models import (
    CaseOutcome,
    CaseRecord,
    ChatEvent,
    ModerateEventInput,
    PolicyConfig,
    ScreenResult,
    Stage,
)
from domain.policy import clean_decision, is_clean
from workflows.moderate import MODERATION_QUEUE, SA_RISK, search_attributes_for_start

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/events", tags=["events"])

_EVENT_NS = uuid.UUID("9f1c2b7a-3e4d-4c5b-8a6f-0d1e2f3a4b5c")
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 413: {"model": ErrorOut}, 422: {"model": ErrorOut},
    429: {"model": ErrorOut}, 503: {"model": ErrorOut},
}


def event_id_for(body: EventIn) -> str:
    """Deterministic for a platform message (so a redelivery maps to the same case), random otherwise."""
    if body.message_id:
        return str(uuid.uuid5(_EVENT_NS, f"{body.platform}:{body.message_id}"))
    return str(uuid.uuid4())


def _to_domain(body: EventIn, event_id: str) -> ChatEvent:
    md = body.metadata
    return ChatEvent(
        event_id=event_id, event_type=body.event_type, platform=body.platform, channel_id=body.channel_id,
        target_id=body.user_id, author_id=body.author_id, content=body.content, message_id=body.message_id,
        timestamp=md.timestamp, user_reputation=md.user_reputation, author_reputation=md.author_reputation,
        channel_history_count=md.channel_history_count, received_at=datetime.now(UTC),
    )


def _check_size(body: EventIn, settings: Settings) -> None:
    size = len(body.content.encode("utf-8"))
    limit = settings.api.max_content_bytes
    if size > limit:
        raise HTTPException(413,
                            f"content is {size:,} bytes; the limit is {limit:,} (SAFETY_API__MAX_CONTENT_BYTES). "
                            "Split the message or truncate it.")


@router.post("/ingest", status_code=status.HTTP_202_ACCEPTED, response_model=IngestAccepted, responses=_ERRORS,
             summary="Accept a chat event for moderation",
             description="Validates the event, starts its case workflow and answers 202 at once. The same "
                         "platform `message_id` ingested twice returns the same `event_id` and one case. "
                         "503 means the event was NOT accepted (Temporal unreachable): retry it.")
async def ingest(body: EventIn, services: ServicesDep,
                 key: Annotated[KeyInfo, Depends(require(Role.INGEST))]) -> IngestAccepted:
    started = time.perf_counter()
    settings = services.settings
    _check_size(body, settings)
    event_id = event_id_for(body)
    event = _to_domain(body, event_id)
    inp = ModerateEventInput(event=event, policy=await _policy_for(services, event))
    if services.model is not None:
        screen = await asyncio.to_thread(screen_text, services.model, event.content)
        if is_clean(screen, inp.policy):
            recorded = await _record_prescreened(services, event, screen)
            if recorded is not None:
                INGEST_REQUESTS_TOTAL.labels("202").inc()
                INGEST_DURATION_MS.observe((time.perf_counter() - started) * 1000)
                return IngestAccepted(event_id=event_id, processing_url=f"/v1/events/{event_id}/status",
                                      duplicate=not recorded)
        inp.prescreen = screen  # risky (or the database is down): the workflow takes it from here
    duplicate = False
    try:
        await services.temporal.start_workflow(
            "ModerateEventWorkflow", inp, id=workflow_id(event_id), task_queue=MODERATION_QUEUE,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search_attributes_for_start(inp),
            static_summary=f"{event.platform} #{event.channel_id}: {event.author_id} -> {event.target_id or '-'}",
            static_details=f"case {event_id}, {event.event_type}, message {event.message_id or '-'}",
        )
    except WorkflowAlreadyStartedError:
        duplicate = True
    except RPCError as err:
        INGEST_REQUESTS_TOTAL.labels("503").inc()
        log.error("ingest failed: temporal unreachable", extra={"event_id": event_id, "error": str(err)})
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "event NOT accepted: the workflow service is "
                            "unreachable; retry with the same message_id", headers={"Retry-After": "2"}) from err
    INGEST_REQUESTS_TOTAL.labels("202").inc()
    INGEST_DURATION_MS.observe((time.perf_counter() - started) * 1000)
    log.info("event accepted", extra={"event_id": event_id, "platform": event.platform, "duplicate": duplicate,
                                      "key": key.name})
    return IngestAccepted(event_id=event_id, processing_url=f"/v1/events/{event_id}/status", duplicate=duplicate)


async def _policy_for(services: ServicesDep, event: ChatEvent) -> PolicyConfig:
    """The policy for this event: lower review threshold while its target is being brigaded (a flag the
    target's session publishes in Redis). Redis down: the normal policy (fail open, counted)."""
    if not event.target_id:
        return services.policy
    try:
        flag = await services.redis.get(brigading_key(event.platform, event.target_id))
    except (aioredis.RedisError, OSError):
        DEPENDENCY_DEGRADED_TOTAL.labels("redis").inc()
        return services.policy
    if flag is None:
        return services.policy
    policy = services.policy.model_copy(deep=True)
    policy.thresholds.review = round(policy.thresholds.review * float(flag), 6)
    return policy


async def _record_prescreened(services: ServicesDep, event: ChatEvent, screen: ScreenResult) -> bool | None:
    """Record a clean prescreened event directly. Returns True (recorded), False (already recorded), or
    None when PostgreSQL is unavailable: then the caller starts the workflow, which retries until it can."""
    record = CaseRecord(case_id=event.event_id, event=event, path="prescreen", screen=screen,
                        decision=clean_decision(screen), policy_version=services.policy.version,
                        completed_at=datetime.now(UTC), stage_ms={"screen": screen.duration_ms})
    try:
        return await store.record_case(services.pool, record)
    except (OSError, asyncpg.PostgresError) as err:
        log.warning("prescreen record failed; falling back to the workflow", extra={"event_id": event.event_id,
                                                                                     "error": str(err)})
        return None


def _outcome_from_row(row: dict[str, Any]) -> OutcomePublic:
    return OutcomePublic(
        path=row["path"], risk_score=row["risk_score"], category=row["category"],
        category_scores=row["category_scores"], decision=row["decision"], needs_review=row["needs_review"],
        actions=[ActionPublic(**{k: a.get(k, "") for k in ("action", "status", "connector", "detail")})
                 for a in row["actions"]],
        reasons=row["reasons"], policy_version=row["policy_version"], model_version=row["model_version"],
        stage_ms=row["stage_ms"], completed_at=row["completed_at"], review_status=row.get("review_status"),
    )


def _outcome_from_result(res: CaseOutcome) -> OutcomePublic:
    return OutcomePublic(path=res.path, risk_score=res.risk_score, category=res.category.value,
                         decision=res.decision.value, needs_review=res.needs_review, reasons=res.reasons,
                         actions=[ActionPublic(action=a.action.value, status=a.status, connector=a.connector,
                                               detail=a.detail) for a in res.actions])


@router.get("/{event_id}/status", response_model=EventStatus, responses=_ERRORS,
            summary="Where a case is: its stage, and the outcome once finished")
async def event_status(event_id: Annotated[uuid.UUID, Path(description="The event_id returned by ingest.")],
                       services: ServicesDep,
                       _key: Annotated[KeyInfo, Depends(require(Role.INGEST, Role.MODERATOR))]) -> EventStatus:
    eid = str(event_id)
    wid = workflow_id(eid)
    ui = f"{services.settings.temporal.ui_public_url}/namespaces/{services.settings.temporal.namespace}/workflows/{wid}"
    base = {"event_id": eid, "workflow_id": wid, "temporal_ui_url": ui}
    try:
        row = await store.get_case(services.pool, eid)
    except (OSError, asyncpg.PostgresError):
        row = None  # the database is down: answer from Temporal alone
    if row:
        return EventStatus(**base, status="completed", stage="completed", risk_score=row["risk_score"],
                           outcome=_outcome_from_row(row))
    handle = services.temporal.get_workflow_handle(wid)
    try:
        desc = await handle.describe(rpc_timeout=timedelta(seconds=2))
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no event with id {eid}: it was never accepted, or "
                                "its record has expired") from err
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "status unavailable right now; retry",
                            headers={"Retry-After": "2"}) from err
    if desc.status == WorkflowExecutionStatus.COMPLETED:
        # The row is written before the workflow completes: it may have landed since the first read.
        try:
            row = await store.get_case(services.pool, eid)
        except (OSError, asyncpg.PostgresError):
            row = None
        if row:
            return EventStatus(**base, status="completed", stage="completed", risk_score=row["risk_score"],
                               outcome=_outcome_from_row(row))
        res = await services.temporal.get_workflow_handle(wid, result_type=CaseOutcome).result()
        return EventStatus(**base, status="completed", stage="completed", risk_score=res.risk_score,
                           outcome=_outcome_from_result(res))
    if desc.status != WorkflowExecutionStatus.RUNNING:
        return EventStatus(**base, status="failed", stage=desc.status.name.lower() if desc.status else "unknown")
    return _running_status(desc, base)


# Stage of a running case, read from the server alone (no query: it answers even with every worker
# down, and costs no worker round trip per poll).
_STAGE_BY_ACTIVITY = {names.SCREEN_EVENT: Stage.SCREENING, names.RETRIEVE_CONTEXT: Stage.CONTEXT,
                      names.REASON_ABOUT_CASE: Stage.REASONING, names.EXECUTE_ACTIONS: Stage.ACTING,
                      names.RECORD_CASE: Stage.RECORDING}
_QUEUED_HISTORY_LENGTH = 3  # started, first workflow task scheduled (and maybe started): no worker yet


def _running_status(desc: WorkflowExecutionDescription, base: dict[str, str]) -> EventStatus:
    raw = desc.raw_description
    risk = desc.typed_search_attributes.get(SA_RISK)
    pending = [_STAGE_BY_ACTIVITY.get(a.activity_type.name) for a in raw.pending_activities]
    stage = next((p for p in pending if p is not None), None)
    if stage is None and raw.workflow_execution_info.history_length <= _QUEUED_HISTORY_LENGTH:
        return EventStatus(**base, status="queued", stage=Stage.QUEUED.value)  # durable, waiting for a worker
    return EventStatus(**base, status="processing", stage=(stage or Stage.SCREENING).value, risk_score=risk)
