"""Ingest and status routes: every accepted event becomes one durable case (workflow ``event-<event_id>``).
The work is in ``api/services/events.py``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status

from api.deps import Ingester, ServicesDep, require
from api.errors import INGEST_ERRORS
from api.schemas import BatchAccepted, ErrorOut, EventBatchIn, EventIn, EventStatus, IngestAccepted
from api.services import events
from core.storage.keys import KeyInfo, Role

router = APIRouter(prefix="/v1/events", tags=["events"])

BATCH_INGEST_PATH = "/v1/events/ingest/batch"


@router.post("/ingest", status_code=status.HTTP_202_ACCEPTED, response_model=IngestAccepted,
             responses=INGEST_ERRORS,
             summary="Accept a chat event for moderation",
             description="Validates the event, starts its case workflow and answers 202 at once. The same "
                         "platform `message_id` ingested twice by the same integration (API key name) returns the "
                         "same `event_id` and one case; the id is keyed with the server's secret, so it cannot be "
                         "precomputed. An edit (`event_type: message_edit`) is a new case per revision of the "
                         "content, linked to the original message's case. "
                         "503 means the event was NOT accepted (Temporal unreachable): retry it.")
async def ingest(body: EventIn, services: ServicesDep, key: Ingester) -> IngestAccepted:
    return await events.accept_event(services=services, body=body, key=key)


@router.post("/ingest/batch", status_code=status.HTTP_202_ACCEPTED, response_model=BatchAccepted,
             responses={**INGEST_ERRORS, 207: {"model": BatchAccepted,
                                               "description": "Some events were NOT accepted: send those again."}},
             summary="Accept many chat events in one request",
             description="For high-volume platforms: one request carries up to SAFETY_API__MAX_BATCH_EVENTS "
                         "events. Each accepted event becomes one case exactly as with `/ingest` (same "
                         "`event_id` rule, duplicates reported); in prescreen mode each message is scored on its "
                         "own (the same score as `/ingest` gives it), and the clean events are recorded in one "
                         "transaction. 202: all "
                         "accepted. 207: some were not (Temporal unreachable): their `status` is "
                         "`not_accepted`; send them again. One invalid event refuses the whole batch (422 "
                         "naming `events.<index>`), so nothing is half-ingested by a malformed request.")
async def ingest_batch(body: EventBatchIn, services: ServicesDep, response: Response, key: Ingester) -> BatchAccepted:
    return await events.accept_batch(services=services, body=body, key=key, response=response)


@router.get("/{event_id}/status", response_model=EventStatus, responses={**INGEST_ERRORS, 404: {"model": ErrorOut}},
            summary="Where a case is: its stage, and the outcome once finished",
            description="An ingest key sees only the cases its integration sent (another's answers 404 exactly "
                        "like a missing one) and reasons without internal detail; a platform-scoped moderator "
                        "key sees only its platforms' cases.")
async def event_status(event_id: Annotated[uuid.UUID, Path(description="The event_id returned by ingest.")],
                       services: ServicesDep,
                       key: Annotated[KeyInfo, Depends(require(Role.INGEST, Role.MODERATOR))]) -> EventStatus:
    return await events.event_status(services=services, event_id=event_id, key=key)
