"""The hash-chained audit log, for administrators (verify it with `safety audit verify`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import Admin, Cursor, Limit, PoolDep
from api.errors import ERRORS, cursor_error
from api.schemas_reporting import AuditEntryPublic, AuditPage
from api.services.tenancy import refuse_scoped
from core.storage import audit, common

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("", response_model=AuditPage, responses=ERRORS, summary="Audit entries, newest first")
async def list_audit(pool: PoolDep, key: Admin,
                     case_id: Annotated[str | None, Query(max_length=128)] = None,
                     kind: Annotated[str | None, Query(max_length=64, description="decision, review, appeal.filed, "
                                                       "appeal.decided, key.create, key.rotate, ...")] = None,
                     limit: Limit = 50, cursor: Cursor = None) -> AuditPage:
    refuse_scoped(key, "the audit chain")
    try:
        rows, nxt = await audit.list_audit(pool, case_id=case_id, kind=kind, limit=limit, cursor=cursor)
    except common.CursorError as err:
        raise cursor_error(err) from err
    return AuditPage(items=[AuditEntryPublic(**r) for r in rows], next_cursor=nxt)
