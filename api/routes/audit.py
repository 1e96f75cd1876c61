"""The hash-chained audit log, for administrators (verify it with `safety audit verify`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import ServicesDep, require
from api.routes.cases import ERRORS, Cursor, Limit, cursor_error
from api.schemas_reporting import AuditEntryPublic, AuditPage
from core.storage import audit, common
from core.storage.keys import KeyInfo, Role

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("", response_model=AuditPage, responses=ERRORS, summary="Audit entries, newest first")
async def list_audit(services: ServicesDep, _key: Annotated[KeyInfo, Depends(require(Role.ADMIN))],
                     case_id: Annotated[str | None, Query(max_length=128)] = None,
                     kind: Annotated[str | None, Query(max_length=64, description="decision, review, appeal.filed, "
                                                       "appeal.decided, key.create, key.rotate, ...")] = None,
                     limit: Limit = 50, cursor: Cursor = None) -> AuditPage:
    try:
        rows, nxt = await audit.list_audit(services.pool, case_id=case_id, kind=kind, limit=limit, cursor=cursor)
    except common.CursorError as err:
        raise cursor_error(err) from err
    return AuditPage(items=[AuditEntryPublic(**r) for r in rows], next_cursor=nxt)
