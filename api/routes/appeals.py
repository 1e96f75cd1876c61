"""Appeals against actioned cases. Uphold closes the appeal; overturn starts ``AppealWorkflow``
(``appeal-<id>``), which reverts the actions, removes the author's strike and records the outcome."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import JSONResponse
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.deps import ServicesDep, require
from api.routes.cases import ERRORS, Cursor, Limit, Moderator, appeal_public, cursor_error
from api.schemas_reporting import AppealDecisionAccepted, AppealDecisionIn, AppealIn, AppealPublic, AppealsPage
from core.storage import appeals, cases, common
from core.storage.keys import KeyInfo, Role
from domain.appeals import AppealInput
from domain.models import ChatEvent
from workflows.contract import APPEAL_WORKFLOW, MODERATION_QUEUE, appeal_workflow_id

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/appeals", tags=["appeals"])
Filer = Annotated[KeyInfo, Depends(require(Role.INGEST, Role.MODERATOR))]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AppealPublic, responses=ERRORS,
             summary="File an appeal against an actioned case",
             description="A platform (ingest key) may file on behalf of its user, as may a moderator. "
                         "404 unknown case, 409 an appeal is already open, 422 the case was not actioned.")
async def file_appeal(body: AppealIn, services: ServicesDep, key: Filer) -> AppealPublic:
    try:
        row = await appeals.file_appeal(services.pool, case_id=body.case_id, reason=body.reason,
                                          filed_by=f"{key.role.value}:{key.name}")
    except common.Conflict as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
    except common.NotActionable as err:
        raise HTTPException(422, str(err)) from err
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no case with id {body.case_id}")
    log.info("appeal filed", extra={"case_id": body.case_id, "appeal_id": row["id"], "key": key.name})
    return appeal_public(row)


@router.get("", response_model=AppealsPage, responses=ERRORS, summary="List appeals, newest first")
async def list_appeals(services: ServicesDep, _key: Moderator,
                       status_: Annotated[Literal["open", "upheld", "overturned"] | None,
                                          Query(alias="status")] = None,
                       case_id: Annotated[str | None, Query(max_length=128)] = None,
                       limit: Limit = 50, cursor: Cursor = None) -> AppealsPage:
    try:
        rows, nxt = await appeals.list_appeals(services.pool, status=status_, case_id=case_id, limit=limit,
                                                 cursor=cursor)
    except common.CursorError as err:
        raise cursor_error(err) from err
    return AppealsPage(items=[appeal_public(r) for r in rows], next_cursor=nxt)


@router.get("/{appeal_id}", response_model=AppealPublic, responses=ERRORS, summary="One appeal and its status")
async def get_appeal(appeal_id: str, services: ServicesDep, _key: Filer) -> AppealPublic:
    row = await appeals.get_appeal(services.pool, appeal_id=appeal_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no appeal with id {appeal_id}")
    return appeal_public(row)


@router.post("/{appeal_id}/decision", response_model=AppealPublic, responses={
                 **ERRORS, 202: {"model": AppealDecisionAccepted,
                                 "description": "Overturn accepted: the actions are being reverted."}},
             summary="Uphold or overturn an appeal",
             description="Uphold: the appeal is closed at once (200). Overturn: answers 202 and the appeal "
                         "workflow reverts the actions, removes the author's strike and marks the case a false "
                         "positive; follow `status_url` until the status is `overturned`.")
async def decide_appeal(appeal_id: str, body: AppealDecisionIn, services: ServicesDep,
                        key: Moderator) -> AppealPublic | JSONResponse:
    moderator = f"moderator:{key.name}"
    try:
        if body.outcome == "uphold":
            row = await appeals.decide_uphold(services.pool, appeal_id=appeal_id, decided_by=moderator,
                                                note=body.note)
            if row is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no appeal with id {appeal_id}")
            return appeal_public(row)
        wid = appeal_workflow_id(appeal_id)
        row = await appeals.mark_overturn_pending(services.pool, appeal_id=appeal_id, decided_by=moderator,
                                                    note=body.note, workflow_id=wid)
    except common.Conflict as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no appeal with id {appeal_id}")
    case = await cases.case_timeline(services.pool, case_id=row["case_id"])
    assert case is not None  # appeals reference cases
    event = ChatEvent(event_id=case["case_id"], event_type=case["event_type"], platform=case["platform"],
                      channel_id=case["channel_id"], target_id=case["target_id"], author_id=case["author_id"],
                      content=case["content"], message_id=case["message_id"], timestamp=case["event_at"],
                      received_at=case["received_at"])
    inp = AppealInput(appeal_id=appeal_id, case_id=case["case_id"], event=event, reason=row["reason"],
                      decided_by=moderator, note=body.note)
    try:
        await services.temporal.start_workflow(APPEAL_WORKFLOW, inp, id=wid, task_queue=MODERATION_QUEUE,
                                               id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                                               static_summary=f"overturn appeal {appeal_id} of case {case['case_id']}")
    except WorkflowAlreadyStartedError:
        pass  # a retried request: the overturn is already under way
    except RPCError as err:
        await appeals.clear_overturn_pending(services.pool, appeal_id=appeal_id)
        log.error("appeal workflow not started", extra={"appeal_id": appeal_id, "error": str(err)})
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "overturn NOT started: the workflow service is "
                            "unreachable; retry", headers={"Retry-After": "2"}) from err
    log.info("appeal overturn started", extra={"case_id": case["case_id"], "appeal_id": appeal_id,
                                               "moderator": key.name})
    accepted = AppealDecisionAccepted(appeal=appeal_public(row), status_url=f"/v1/appeals/{appeal_id}",
                                      workflow_id=wid)
    return JSONResponse(accepted.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED,
                        headers={"Location": accepted.status_url})
