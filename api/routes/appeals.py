"""Appeals against actioned cases. Uphold closes the appeal; overturn starts ``AppealWorkflow``
(``appeal-<id>``), which reverts the actions, removes the author's strike and records the outcome.
The work is in ``api/services/appeals.py``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, status
from fastapi.responses import JSONResponse

from api.deps import Cursor, Limit, Moderator, PoolDep, TemporalDep, require
from api.errors import ERRORS
from api.schemas_reporting import AppealDecisionAccepted, AppealDecisionIn, AppealIn, AppealPublic, AppealsPage
from api.services import appeals
from core.storage.keys import KeyInfo, Role

router = APIRouter(prefix="/v1/appeals", tags=["appeals"])
Filer = Annotated[KeyInfo, Depends(require(Role.INGEST, Role.MODERATOR))]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AppealPublic, responses=ERRORS,
             summary="File an appeal against an actioned case",
             description="A platform (ingest key) may file on behalf of its user, for the cases it sent, as may "
                         "a moderator. 404 unknown case (another integration's case answers the same), 409 an "
                         "appeal is already open, 422 the case was not actioned.")
async def file_appeal(body: AppealIn, pool: PoolDep, key: Filer) -> AppealPublic:
    return await appeals.file_appeal(pool=pool, body=body, key=key)


@router.get("", response_model=AppealsPage, responses=ERRORS, summary="List appeals, newest first")
async def list_appeals(pool: PoolDep, key: Moderator,
                       status_: Annotated[Literal["open", "upheld", "overturned"] | None,
                                          Query(alias="status")] = None,
                       case_id: Annotated[str | None, Query(max_length=128)] = None,
                       limit: Limit = 50, cursor: Cursor = None) -> AppealsPage:
    return await appeals.list_appeals(pool=pool, key=key, status=status_, case_id=case_id, limit=limit,
                                      cursor=cursor)


@router.get("/{appeal_id}", response_model=AppealPublic, responses=ERRORS, summary="One appeal and its status")
async def get_appeal(appeal_id: Annotated[str, Path(max_length=64)], pool: PoolDep, key: Filer) -> AppealPublic:
    return await appeals.get_appeal(pool=pool, appeal_id=appeal_id, key=key)


@router.post("/{appeal_id}/decision", response_model=AppealPublic, responses={
                 **ERRORS, 202: {"model": AppealDecisionAccepted,
                                 "description": "Overturn accepted: the actions are being reverted."}},
             summary="Uphold or overturn an appeal",
             description="Uphold: the appeal is closed at once (200). Overturn: answers 202 and the appeal "
                         "workflow reverts the actions, removes the author's strike and marks the case a false "
                         "positive; follow `status_url` until the status is `overturned`.")
async def decide_appeal(appeal_id: Annotated[str, Path(max_length=64)], body: AppealDecisionIn, pool: PoolDep,
                        temporal: TemporalDep, key: Moderator) -> AppealPublic | JSONResponse:
    return await appeals.decide_appeal(pool=pool, temporal=temporal, appeal_id=appeal_id,
                                       body=body, key=key)
