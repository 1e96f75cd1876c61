"""A user's live strike state (their session workflow) and their case history."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import ServicesDep
from api.routes.cases import ERRORS, Moderator
from api.schemas_reporting import UserCaseSummary, UserPublic, UserSession
from core.storage import cases
from workflows.contract import STATE_QUERY, user_session_id

router = APIRouter(prefix="/v1/users", tags=["users"])
_ID = r"^[A-Za-z0-9_.:@#\-]+$"


def _strikes(state: Any) -> int:
    """``strikes_active`` of the session state (strikes that still count), else the strike list's length."""
    if not isinstance(state, dict):
        return 0
    value = state.get("strikes_active", state.get("strikes", 0))
    if isinstance(value, list):
        return len(value)
    return int(value) if isinstance(value, int | float) else 0


@router.get("/{platform}/{user_id}", response_model=UserPublic, responses=ERRORS,
            summary="A user's live strikes and case history",
            description="`session` is the answer of the `state` query of workflow `user-<platform>-<user_id>`; "
                        "`found=false` with strikes 0 when the user has no session. History counts cases by "
                        "decision with the user as author and as target.")
async def get_user(platform: Annotated[str, Path(max_length=32, pattern=r"^[a-z0-9_\-]+$")],
                   user_id: Annotated[str, Path(max_length=128, pattern=_ID)],
                   services: ServicesDep, _key: Moderator) -> UserPublic:
    wid = user_session_id(platform, user_id)
    try:
        state = await services.temporal.get_workflow_handle(wid).query(STATE_QUERY, rpc_timeout=timedelta(seconds=3))
        session = UserSession(found=True, strikes=_strikes(state),
                              state=state if isinstance(state, dict) else {"value": state}, workflow_id=wid)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            session = UserSession(found=False, detail="no session workflow: the user has no live strikes",
                                  workflow_id=wid)
        else:
            code = err.status.name if err.status else "error"
            session = UserSession(found=False, detail=f"session state unavailable right now ({code}); strikes "
                                  "unknown, retry", workflow_id=wid)
    except WorkflowQueryFailedError as err:
        session = UserSession(found=True, detail=f"session did not answer its state query: {err}", workflow_id=wid)
    hist = await cases.user_history(services.pool, platform=platform, user_id=user_id)
    return UserPublic(platform=platform, user_id=user_id, session=session, as_author=hist["as_author"],
                      as_target=hist["as_target"], overturned=hist["overturned"],
                      recent_cases=[UserCaseSummary(**r) for r in hist["recent_cases"]])
