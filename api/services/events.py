"""Ingest and status of chat events: every accepted event becomes one durable case (workflow
``event-<event_id>``), or, in prescreen mode, a clean event is scored here and recorded at once.

The routes in ``api/routes/events.py`` validate the request and call these.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from fastapi import HTTPException, Response, status
from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.screening import screen_text, screen_texts
from activities.sessions import brigading_key
from api.deps import Services, charge
from api.errors import unavailable
from api.schemas import (
    ActionPublic,
    BatchAccepted,
    BatchItemAccepted,
    EventBatchIn,
    EventIn,
    EventStatus,
    IngestAccepted,
    OutcomePublic,
)
from api.services.cases import temporal_ui_url
from api.services.tenancy import may_see_case
from core.metrics import DEPENDENCY_DEGRADED_TOTAL, INGEST_DURATION_MS, INGEST_REQUESTS_TOTAL
from core.settings import Settings
from core.storage import cases
from core.storage.keys import KeyInfo, Role
from domain.models import (
    CaseOutcome,
    CasePath,
    CaseRecord,
    ChatEvent,
    ModerateEventInput,
    PolicyConfig,
    ScreenResult,
    Stage,
)
from domain.policy import PUBLIC_REVIEW_REASONS, clean_decision, is_clean
from workflows import contract
from workflows.moderate import search_attributes_for_start

log = logging.getLogger(__name__)

# Workflow starts one batch request keeps in flight (each is one round trip to Temporal).
_BATCH_STARTS_IN_FLIGHT = 32
EDIT_EVENT_TYPE = "message_edit"


@dataclass(frozen=True)
class EventIdentity:
    """Who a case is: its id, and for an edit the original message's case id and this revision's hash."""

    event_id: str
    edit_of: str | None = None
    revision: str = ""


def _keyed_uuid(secret: bytes, *parts: str) -> str:
    """A UUID-shaped HMAC-SHA256 of the parts under the server's secret: nobody without the secret can
    compute it in advance, and every part (JSON-encoded, so no separator ambiguity) changes it."""
    mac = hmac.new(secret, json.dumps(parts, ensure_ascii=False).encode(), hashlib.sha256).digest()
    return str(uuid.UUID(bytes=mac[:16], version=4))


def revision_of(content: str) -> str:
    """The content hash that names one revision of a platform message."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()[:32]


def event_id_for(body: EventIn, *, secret: bytes, integration: str) -> EventIdentity:
    """The case id of an event. With a platform ``message_id`` it is deterministic, so a redelivery maps
    to the same case, and keyed (``SAFETY_SECRET_KEY``) and scoped to the sending integration, so no
    one can precompute it or claim another integration's messages. An edit (``message_edit``) is a new
    case per revision (content hash), linked to the original message's case by ``edit_of``. Without a
    message_id: random."""
    if not body.message_id:
        return EventIdentity(str(uuid.uuid4()))
    original = _keyed_uuid(secret, "event", integration, body.platform, body.message_id)
    if body.event_type != EDIT_EVENT_TYPE:
        return EventIdentity(original)
    revision = revision_of(body.content)
    return EventIdentity(_keyed_uuid(secret, "edit", integration, body.platform, body.message_id, revision),
                         edit_of=original, revision=revision)


def to_domain(body: EventIn, ident: EventIdentity, *, integration: str = "") -> ChatEvent:
    md = body.metadata
    return ChatEvent(
        event_id=ident.event_id, event_type=body.event_type, platform=body.platform, channel_id=body.channel_id,
        target_id=body.user_id, author_id=body.author_id, content=body.content, message_id=body.message_id,
        timestamp=md.timestamp, user_reputation=md.user_reputation, author_reputation=md.author_reputation,
        channel_history_count=md.channel_history_count, received_at=datetime.now(UTC),
        integration=integration, edit_of=ident.edit_of, revision=ident.revision,
    )


def _event_for(services: Services, body: EventIn, key: KeyInfo) -> ChatEvent:
    secret = services.settings.secret_key.get_secret_value().encode()
    return to_domain(body, event_id_for(body, secret=secret, integration=key.name), integration=key.name)


def check_size(body: EventIn, settings: Settings, *, where: str = "") -> None:
    size = len(body.content.encode("utf-8"))
    limit = settings.api.max_content_bytes
    if size > limit:
        raise HTTPException(413,
                            f"{where}content is {size:,} bytes; the limit is {limit:,} "
                            "(SAFETY_API__MAX_CONTENT_BYTES). Split the message or truncate it.")


async def accept_event(*, services: Services, body: EventIn, key: KeyInfo) -> IngestAccepted:
    """One event: prescreened and recorded when clean (prescreen mode), else its case workflow started.
    503 when Temporal is unreachable: the event is NOT accepted."""
    started = time.perf_counter()
    check_size(body, services.settings)
    event = _event_for(services, body, key)
    inp = ModerateEventInput(event=event, policy=await _policy_for(services, event))
    event_id = event.event_id
    if services.model is not None:
        screen = await asyncio.to_thread(screen_text, services.model, event.content)
        if is_clean(screen, inp.policy):
            recorded = await _record_prescreened(services, [(event, screen)])
            if recorded is not None:
                INGEST_REQUESTS_TOTAL.labels("202").inc()
                INGEST_DURATION_MS.observe((time.perf_counter() - started) * 1000)
                return IngestAccepted(event_id=event_id, processing_url=_status_url(event_id),
                                      duplicate=not recorded[0])
        inp.prescreen = screen  # risky (or the database is down): the workflow takes it from here
    try:
        duplicate = await _start_case(services, inp)
    except RPCError as err:
        INGEST_REQUESTS_TOTAL.labels("503").inc()
        raise unavailable("event NOT accepted: the workflow service is unreachable; retry with the same "
                          "message_id") from err
    INGEST_REQUESTS_TOTAL.labels("202").inc()
    INGEST_DURATION_MS.observe((time.perf_counter() - started) * 1000)
    log.info("event accepted", extra={"event_id": event_id, "platform": event.platform, "duplicate": duplicate,
                                      "key": key.name})
    return IngestAccepted(event_id=event_id, processing_url=_status_url(event_id), duplicate=duplicate)


async def accept_batch(*, services: Services, body: EventBatchIn, key: KeyInfo, response: Response) -> BatchAccepted:
    """Many events, each as ``accept_event`` would take it; 207 (set on ``response``) when some were not
    accepted."""
    started = time.perf_counter()
    limit = services.settings.api.max_batch_events
    if len(body.events) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                            f"the batch has {len(body.events):,} events; the limit is {limit:,} "
                            "(SAFETY_API__MAX_BATCH_EVENTS). Split it into smaller batches.")
    for i, item in enumerate(body.events):
        check_size(item, services.settings, where=f"events.{i}.content: ")
    await charge(services, key, len(body.events) - 1)  # the rate limit counts events, not requests
    events = [_event_for(services, item, key) for item in body.events]
    policies = await _policies_for(services, events)
    inputs = [ModerateEventInput(event=ev, policy=pol) for ev, pol in zip(events, policies, strict=True)]
    results: list[BatchItemAccepted | None] = [None] * len(inputs)
    pending = list(range(len(inputs)))
    if services.model is not None:
        pending = await _prescreen_batch(services, inputs, results)
    await _start_cases(services, inputs, pending, results)
    items = [r for r in results if r is not None]
    not_accepted = sum(1 for r in items if r.status == "not_accepted")
    if not_accepted:
        response.status_code = status.HTTP_207_MULTI_STATUS
        response.headers["Retry-After"] = "2"
    INGEST_REQUESTS_TOTAL.labels(str(response.status_code or 202)).inc()
    INGEST_DURATION_MS.observe((time.perf_counter() - started) * 1000)
    log.info("batch accepted", extra={"events": len(items), "not_accepted": not_accepted, "key": key.name})
    return BatchAccepted(accepted=len(items) - not_accepted, duplicates=sum(1 for r in items if r.duplicate),
                         not_accepted=not_accepted, results=items)


def _status_url(event_id: str) -> str:
    return f"/v1/events/{event_id}/status"


async def _prescreen_batch(services: Services, inputs: list[ModerateEventInput],
                           results: list[BatchItemAccepted | None]) -> list[int]:
    """Score every message of the batch (each alone, on a few threads); record the clean events in one
    transaction. Returns the indices that still need a workflow (risky ones carry their screen result
    into it)."""
    model = services.model
    assert model is not None
    # onnxruntime releases the GIL: a few threads score parts of the batch on all cores at once.
    texts = [i.event.content for i in inputs]
    step = -(-len(texts) // services.settings.api.screening_threads)
    parts = await asyncio.gather(*(asyncio.to_thread(screen_texts, model, texts[i:i + step])
                                   for i in range(0, len(texts), step)))
    screens = [s for part in parts for s in part]
    clean = [k for k, (inp, scr) in enumerate(zip(inputs, screens, strict=True)) if is_clean(scr, inp.policy)]
    recorded = await _record_prescreened(services, [(inputs[k].event, screens[k]) for k in clean]) if clean else []
    if recorded is None:
        recorded_set: set[int] = set()
    else:
        recorded_set = set(clean)
        for k, fresh in zip(clean, recorded, strict=True):
            eid = inputs[k].event.event_id
            results[k] = BatchItemAccepted(index=k, event_id=eid, status="recorded",
                                           processing_url=_status_url(eid), duplicate=not fresh)
    pending = [k for k in range(len(inputs)) if k not in recorded_set]
    for k in pending:
        inputs[k].prescreen = screens[k]
    return pending


async def _start_cases(services: Services, inputs: list[ModerateEventInput], indices: list[int],
                       results: list[BatchItemAccepted | None]) -> None:
    """Start the workflows of ``indices`` concurrently (bounded); each result says queued or not_accepted."""
    gate = asyncio.Semaphore(_BATCH_STARTS_IN_FLIGHT)

    async def one(k: int) -> None:
        eid = inputs[k].event.event_id
        async with gate:
            try:
                duplicate = await _start_case(services, inputs[k])
            except RPCError:  # logged by _start_case; the platform gets no internal error text
                results[k] = BatchItemAccepted(index=k, event_id=eid, status="not_accepted",
                                               error="the workflow service is unreachable; send this event again")
                return
        results[k] = BatchItemAccepted(index=k, event_id=eid, status="queued", processing_url=_status_url(eid),
                                       duplicate=duplicate)

    await asyncio.gather(*(one(k) for k in indices))


async def _start_case(services: Services, inp: ModerateEventInput) -> bool:
    """Start the event's case workflow. Returns True when it already existed (a redelivery); raises
    ``RPCError`` when Temporal is unreachable (the event is then NOT accepted)."""
    event = inp.event
    try:
        await services.temporal.start_workflow(
            contract.MODERATE_EVENT_WORKFLOW, inp, id=contract.event_workflow_id(event.event_id),
            task_queue=contract.MODERATION_QUEUE,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search_attributes_for_start(inp),
            memo={contract.MEMO_INTEGRATION: event.integration},
            static_summary=f"{event.platform} #{event.channel_id}: {event.author_id} -> {event.target_id or '-'}",
            static_details=f"case {event.event_id}, {event.event_type}, message {event.message_id or '-'}",
        )
    except WorkflowAlreadyStartedError:
        return True
    except RPCError as err:
        log.error("ingest failed: temporal unreachable", extra={"event_id": event.event_id, "error": str(err)})
        raise
    return False


async def _policy_for(services: Services, event: ChatEvent) -> PolicyConfig:
    return (await _policies_for(services, [event]))[0]


async def _policies_for(services: Services, events: list[ChatEvent]) -> list[PolicyConfig]:
    """The policy per event: a lower review threshold while its target is being brigaded (a flag the
    target's session publishes in Redis; one MGET for the whole batch). Redis down: the normal policy
    (fail open, counted)."""
    keys = sorted({brigading_key(ev.platform, ev.target_id) for ev in events if ev.target_id})
    if not keys:
        return [services.policy] * len(events)
    try:
        flags = dict(zip(keys, await services.redis.mget(keys), strict=True))
    except (aioredis.RedisError, OSError):
        DEPENDENCY_DEGRADED_TOTAL.labels("redis").inc()
        return [services.policy] * len(events)
    lowered: dict[float, PolicyConfig] = {}  # one copy per brigading factor, shared by its events

    def policy_for(ev: ChatEvent) -> PolicyConfig:
        flag = flags.get(brigading_key(ev.platform, ev.target_id)) if ev.target_id else None
        if flag is None:
            return services.policy
        factor = float(flag)
        if factor not in lowered:
            lowered[factor] = services.policy.model_copy(deep=True)
            lowered[factor].thresholds.review = round(lowered[factor].thresholds.review * factor, 6)
        return lowered[factor]

    return [policy_for(ev) for ev in events]


async def _record_prescreened(services: Services,
                              screened: list[tuple[ChatEvent, ScreenResult]]) -> list[bool] | None:
    """Record clean prescreened events directly, in one transaction. Returns per event True (recorded) or
    False (already recorded), or None when PostgreSQL is unavailable: then the caller starts the
    workflows, which retry until they can."""
    now = datetime.now(UTC)
    records = [CaseRecord(case_id=ev.event_id, event=ev, path=CasePath.PRESCREEN, screen=screen,
                          decision=clean_decision(screen), policy_version=services.policy.version,
                          completed_at=now, stage_ms={"screen": screen.duration_ms}) for ev, screen in screened]
    try:
        return await cases.record_cases(services.pool, records)
    except (OSError, asyncpg.PostgresError) as err:
        log.warning("prescreen record failed; falling back to the workflow",
                    extra={"events": len(records), "error": str(err)})
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


_NO_SUCH_EVENT = "no event with id {eid}: it was never accepted, or its record has expired"
_INTERNAL_URL = re.compile(r"\b(?:https?|grpc|postgres(?:ql)?|redis)://\S+", re.IGNORECASE)
_REVIEW_PREFIX = "needs human review: "


def _platform_reason(reason: str) -> str:
    """A reason as the platform sees it: the kind of reason, never the internal detail after it
    (exception text, provider URLs). A moderator's case view keeps the full text."""
    if reason.startswith(_REVIEW_PREFIX):
        why = reason[len(_REVIEW_PREFIX):]
        for known in PUBLIC_REVIEW_REASONS:
            if why.startswith(known):
                return _REVIEW_PREFIX + known
    return _INTERNAL_URL.sub("<internal>", reason)


def platform_view(outcome: OutcomePublic) -> OutcomePublic:
    """The outcome an ingest key (a platform) sees: reasons without internal detail, actions without the
    connector's response text."""
    return outcome.model_copy(update={
        "reasons": [_platform_reason(r) for r in outcome.reasons],
        "actions": [a.model_copy(update={"detail": ""}) for a in outcome.actions]})


async def event_status(*, services: Services, event_id: uuid.UUID, key: KeyInfo) -> EventStatus:
    """Where a case is: from its row once recorded, else from Temporal (never a query: it answers even
    with every worker down). Another tenant's case answers exactly like a missing one (404)."""
    eid = str(event_id)
    wid = contract.event_workflow_id(eid)
    missing = HTTPException(status.HTTP_404_NOT_FOUND, _NO_SUCH_EVENT.format(eid=eid))
    platform_caller = key.role == Role.INGEST
    base: dict[str, Any] = {"event_id": eid, "workflow_id": wid,
                            "temporal_ui_url": None if platform_caller else temporal_ui_url(services.settings, wid)}

    def shown(outcome: OutcomePublic) -> OutcomePublic:
        return platform_view(outcome) if platform_caller else outcome

    try:
        row = await cases.get_case(services.pool, eid)
    except (OSError, asyncpg.PostgresError):
        row = None  # the database is down: answer from Temporal alone
    if row:
        if not may_see_case(key, integration=row.get("integration"), platform=row["platform"]):
            raise missing
        return EventStatus(**base, status="completed", stage="completed", risk_score=row["risk_score"],
                           outcome=shown(_outcome_from_row(row)))
    handle = services.temporal.get_workflow_handle(wid)
    try:
        desc = await handle.describe(rpc_timeout=timedelta(seconds=2))
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise missing from err
        raise unavailable("status unavailable right now; retry") from err
    integration = await desc.memo_value(contract.MEMO_INTEGRATION, default="")
    platform = desc.typed_search_attributes.get(contract.SA_PLATFORM)
    if not may_see_case(key, integration=str(integration), platform=platform):
        raise missing
    if desc.status == WorkflowExecutionStatus.COMPLETED:
        # The row is written before the workflow completes: it may have landed since the first read.
        try:
            row = await cases.get_case(services.pool, eid)
        except (OSError, asyncpg.PostgresError):
            row = None
        if row:
            return EventStatus(**base, status="completed", stage="completed", risk_score=row["risk_score"],
                               outcome=shown(_outcome_from_row(row)))
        res = await services.temporal.get_workflow_handle(wid, result_type=CaseOutcome).result()
        return EventStatus(**base, status="completed", stage="completed", risk_score=res.risk_score,
                           outcome=shown(_outcome_from_result(res)))
    if desc.status != WorkflowExecutionStatus.RUNNING:
        return EventStatus(**base, status="failed", stage=desc.status.name.lower() if desc.status else "unknown")
    return _running_status(desc, base)


# Stage of a running case, read from the server alone (no query: it answers even with every worker
# down, and costs no worker round trip per poll).
_STAGE_BY_ACTIVITY = {contract.SCREEN_EVENT: Stage.SCREENING, contract.RETRIEVE_CONTEXT: Stage.CONTEXT,
                      contract.REASON_ABOUT_CASE: Stage.REASONING, contract.EXECUTE_ACTIONS: Stage.ACTING,
                      contract.RECORD_CASE: Stage.RECORDING}
_QUEUED_HISTORY_LENGTH = 3  # started, first workflow task scheduled (and maybe started): no worker yet


def _running_status(desc: WorkflowExecutionDescription, base: dict[str, Any]) -> EventStatus:
    raw = desc.raw_description
    risk = desc.typed_search_attributes.get(contract.SA_RISK)
    pending = [_STAGE_BY_ACTIVITY.get(a.activity_type.name) for a in raw.pending_activities]
    stage = next((p for p in pending if p is not None), None)
    if stage is None and raw.workflow_execution_info.history_length <= _QUEUED_HISTORY_LENGTH:
        return EventStatus(**base, status="queued", stage=Stage.QUEUED.value)  # durable, waiting for a worker
    return EventStatus(**base, status="processing", stage=(stage or Stage.SCREENING).value, risk_score=risk)
