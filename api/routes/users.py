"""A user's live strike state (their session workflow) and their case history. The work is in
``api/services/users.py``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import Moderator, PoolDep, TemporalDep
from api.errors import ERRORS
from api.schemas_reporting import UserPublic
from api.services import users

router = APIRouter(prefix="/v1/users", tags=["users"])
_ID = r"^[A-Za-z0-9_.:@#\-]+$"


@router.get("/{platform}/{user_id}", response_model=UserPublic, responses=ERRORS,
            summary="A user's live strikes and case history",
            description="`session` is the answer of the `state` query of workflow `user-<platform>:<user_id>`; "
                        "`found=false` with strikes 0 when the user has no session. History counts cases by "
                        "decision with the user as author and as target.")
async def get_user(platform: Annotated[str, Path(max_length=32, pattern=r"^[a-z0-9_\-]+$")],
                   user_id: Annotated[str, Path(max_length=128, pattern=_ID)],
                   pool: PoolDep, temporal: TemporalDep, key: Moderator) -> UserPublic:
    return await users.user_public(pool=pool, temporal=temporal, platform=platform,
                                   user_id=user_id, key=key)
