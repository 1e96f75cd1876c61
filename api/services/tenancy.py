"""Who may see which case. Every case records the integration (API key name) that sent it:

- an ingest key (a platform integration) sees, and appeals, only the cases it sent;
- a moderator or admin key sees every platform's cases, or only its platforms' when it was created with
  ``safety keys create --platforms discord,twitch`` (the audit chain, which spans every platform, is
  then refused with 403); a bearer token (JWT) is an unscoped moderator.

A case the caller may not see answers exactly like a missing one (the same 404 body), so a status code
never tells another tenant that a case exists or how it was decided.
"""

from __future__ import annotations

import asyncpg
from fastapi import HTTPException, status

from core.storage import cases
from core.storage.keys import KeyInfo, Role


def may_see_case(key: KeyInfo, *, integration: str | None, platform: str | None) -> bool:
    """Tenancy of one case (``platform`` None: not known yet, only the integration is checked)."""
    if key.role == Role.INGEST:
        return bool(integration) and integration == key.name
    return platform is None or key.sees_platform(platform)


async def visible_case(pool: asyncpg.Pool, key: KeyInfo, case_id: str, *, missing: str) -> cases.CaseTenancy:
    """The case's tenancy when ``key`` may see it; else 404 with ``missing``, the same answer as for a
    case that does not exist."""
    found = (await cases.case_tenancy(pool, [case_id])).get(case_id)
    if found is None or not may_see_case(key, integration=found.integration, platform=found.platform):
        raise HTTPException(status.HTTP_404_NOT_FOUND, missing)
    return found


def platform_filter(key: KeyInfo, platform: str | None) -> tuple[str | None, list[str] | None]:
    """A list route's (platform, platforms) filter for ``key``: a scoped key asking for a platform outside
    its scope gets an empty scope (an empty page, as for a platform without cases)."""
    scope = key.platform_list
    if scope is not None and platform is not None and platform not in scope:
        return platform, []
    return platform, scope


def refuse_scoped(key: KeyInfo, what: str) -> None:
    """403 for a route that spans every platform (the audit chain) and a scoped key."""
    if key.platforms is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"{what} spans every platform; this key is scoped to {', '.join(sorted(key.platforms))}. "
                            "Use an unscoped key (`safety keys create` without --platforms).")
