"""A user as moderators see them: the live strike state of their session workflow and their case history."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
from fastapi import HTTPException, status
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.schemas_reporting import UserCaseSummary, UserPublic, UserSession
from core.storage import cases
from core.storage.keys import KeyInfo
from domain.sessions import UserSessionState
from workflows.contract import STATE_QUERY, user_session_id


async def user_session(*, temporal: Client, platform: str, user_id: str) -> UserSession:
    """The answer of the session workflow's ``state`` query; ``found=false`` (strikes 0) without a session,
    and a detail saying so when Temporal cannot answer right now."""
    wid = user_session_id(platform, user_id)
    try:
        state = await temporal.get_workflow_handle(wid).query(STATE_QUERY, result_type=UserSessionState,
                                                              rpc_timeout=timedelta(seconds=3))
        return UserSession(found=True, strikes=state.strikes_active, state=state.model_dump(mode="json"),
                           workflow_id=wid)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return UserSession(found=False, detail="no session workflow: the user has no live strikes",
                               workflow_id=wid)
        code = err.status.name if err.status else "error"
        return UserSession(found=False, detail=f"session state unavailable right now ({code}); strikes "
                           "unknown, retry", workflow_id=wid)
    except WorkflowQueryFailedError as err:
        return UserSession(found=True, detail=f"session did not answer its state query: {err}", workflow_id=wid)


async def user_public(*, pool: asyncpg.Pool, temporal: Client, platform: str, user_id: str,
                      key: KeyInfo) -> UserPublic:
    """403 for a platform outside a scoped key's platforms."""
    if not key.sees_platform(platform):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"this key sees only the platforms {', '.join(key.platform_list or [])}; "
                            f"'{platform}' is not one of them")
    session = await user_session(temporal=temporal, platform=platform, user_id=user_id)
    hist = await cases.user_history(pool, platform=platform, user_id=user_id)
    return UserPublic(platform=platform, user_id=user_id, session=session, as_author=hist["as_author"],
                      as_target=hist["as_target"], overturned=hist["overturned"],
                      recent_cases=[UserCaseSummary(**r) for r in hist["recent_cases"]])
