"""The default connector: applies nothing and returns the platform call it would have made."""

from __future__ import annotations

from activities.connectors.base import (
    REVERSIBLE_ACTIONS,
    ActionRequest,
    JSONDict,
    describe,
    describe_revert,
    not_reversible,
)


class LogConnector:
    """Dry run: the ledger records what would have been called, so a deployment can be checked first."""

    name = "log"

    async def apply(self, req: ActionRequest) -> JSONDict:
        return {"would_call": describe(req.action.action), "request": req.payload()}

    async def revert(self, req: ActionRequest) -> JSONDict:
        if req.action.action not in REVERSIBLE_ACTIONS:
            return not_reversible(req)
        return {"would_call": describe_revert(req.action.action), "request": req.payload(revert=True)}

    async def check(self, req: ActionRequest) -> JSONDict | None:
        """Nothing to reconcile: a dry run changes nothing, so "applying" it again is harmless."""
        return None

    async def check_revert(self, req: ActionRequest) -> JSONDict | None:
        return None

    async def aclose(self) -> None:
        return None
