"""Appeals against actioned cases, as the API offers them. Uphold closes the appeal at once; overturn
starts ``AppealWorkflow`` (``appeal-<id>``), which reverts the actions, removes the author's strike and
records the outcome."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import HTTPException, status
from fastapi.responses import JSONResponse
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.errors import conflict, cursor_error, not_found, unavailable
from api.schemas_reporting import AppealDecisionAccepted, AppealDecisionIn, AppealIn, AppealPublic, AppealsPage
from api.services.tenancy import visible_case
from core.storage import appeals, cases
from core.storage.common import Conflict, CursorError, NotActionable
from core.storage.keys import KeyInfo
from domain.appeals import AppealInput
from domain.models import ChatEvent
from workflows.contract import APPEAL_WORKFLOW, MODERATION_QUEUE, appeal_workflow_id

log = logging.getLogger(__name__)


def appeal_public(row: dict[str, Any]) -> AppealPublic:
    return AppealPublic.model_validate({**{k: row.get(k) for k in AppealPublic.model_fields if k != "status_url"},
                                        "status_url": f"/v1/appeals/{row['id']}"})


async def file_appeal(*, pool: asyncpg.Pool, body: AppealIn, key: KeyInfo) -> AppealPublic:
    """404 unknown case (or another tenant's: the same answer, checked before anything that would tell
    them apart), 409 an appeal is already open, 422 the case was not actioned."""
    await visible_case(pool, key, body.case_id, missing=f"no case with id {body.case_id}")
    try:
        row = await appeals.file_appeal(pool, case_id=body.case_id, reason=body.reason,
                                        filed_by=f"{key.role.value}:{key.name}")
    except Conflict as err:
        raise conflict(str(err)) from err
    except NotActionable as err:
        raise HTTPException(422, str(err)) from err
    if row is None:
        raise not_found(f"no case with id {body.case_id}")
    log.info("appeal filed", extra={"case_id": body.case_id, "appeal_id": row["id"], "key": key.name})
    return appeal_public(row)


async def list_appeals(*, pool: asyncpg.Pool, key: KeyInfo, status: str | None, case_id: str | None, limit: int,
                       cursor: str | None) -> AppealsPage:
    """A platform-scoped key sees only appeals of its platforms' cases (a page may then hold fewer than
    ``limit`` items; follow ``next_cursor`` as usual)."""
    try:
        rows, nxt = await appeals.list_appeals(pool, status=status, case_id=case_id, limit=limit, cursor=cursor)
    except CursorError as err:
        raise cursor_error(err) from err
    if key.platforms is not None and rows:
        owners = await cases.case_tenancy(pool, sorted({r["case_id"] for r in rows}))
        rows = [r for r in rows if r["case_id"] in owners and key.sees_platform(owners[r["case_id"]].platform)]
    return AppealsPage(items=[appeal_public(r) for r in rows], next_cursor=nxt)


async def _visible_appeal(pool: asyncpg.Pool, key: KeyInfo, appeal_id: str) -> dict[str, Any]:
    """The appeal when its case is one ``key`` may see; else the same 404 as for an unknown appeal."""
    missing = f"no appeal with id {appeal_id}"
    row = await appeals.get_appeal(pool, appeal_id=appeal_id)
    if row is None:
        raise not_found(missing)
    await visible_case(pool, key, row["case_id"], missing=missing)
    return row


async def get_appeal(*, pool: asyncpg.Pool, appeal_id: str, key: KeyInfo) -> AppealPublic:
    return appeal_public(await _visible_appeal(pool, key, appeal_id))


async def decide_appeal(*, pool: asyncpg.Pool, temporal: Client, appeal_id: str, body: AppealDecisionIn,
                        key: KeyInfo) -> AppealPublic | JSONResponse:
    """Uphold: the closed appeal. Overturn: 202 with the workflow that carries it out."""
    await _visible_appeal(pool, key, appeal_id)
    moderator = f"moderator:{key.name}"
    try:
        if body.outcome == "uphold":
            row = await appeals.decide_uphold(pool, appeal_id=appeal_id, decided_by=moderator,
                                                note=body.note)
            if row is None:
                raise not_found(f"no appeal with id {appeal_id}")
            return appeal_public(row)
        wid = appeal_workflow_id(appeal_id)
        row = await appeals.mark_overturn_pending(pool, appeal_id=appeal_id, decided_by=moderator,
                                                    note=body.note, workflow_id=wid)
    except Conflict as err:
        raise conflict(str(err)) from err
    if row is None:
        raise not_found(f"no appeal with id {appeal_id}")
    case = await cases.case_timeline(pool, case_id=row["case_id"])
    assert case is not None  # appeals reference cases
    event = ChatEvent(event_id=case["case_id"], event_type=case["event_type"], platform=case["platform"],
                      channel_id=case["channel_id"], target_id=case["target_id"], author_id=case["author_id"],
                      content=case["content"], message_id=case["message_id"], timestamp=case["event_at"],
                      received_at=case["received_at"])
    inp = AppealInput(appeal_id=appeal_id, case_id=case["case_id"], event=event, reason=row["reason"],
                      decided_by=moderator, note=body.note)
    try:
        await temporal.start_workflow(APPEAL_WORKFLOW, inp, id=wid, task_queue=MODERATION_QUEUE,
                                               id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                                               static_summary=f"overturn appeal {appeal_id} of case {case['case_id']}")
    except WorkflowAlreadyStartedError:
        pass  # a retried request: the overturn is already under way
    except RPCError as err:
        await appeals.clear_overturn_pending(pool, appeal_id=appeal_id)
        log.error("appeal workflow not started", extra={"appeal_id": appeal_id, "error": str(err)})
        raise unavailable("overturn NOT started: the workflow service is unreachable; retry") from err
    log.info("appeal overturn started", extra={"case_id": case["case_id"], "appeal_id": appeal_id,
                                               "moderator": key.name})
    accepted = AppealDecisionAccepted(appeal=appeal_public(row), status_url=f"/v1/appeals/{appeal_id}",
                                      workflow_id=wid)
    return JSONResponse(accepted.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED,
                        headers={"Location": accepted.status_url})
