"""What every connector shares: the request, the two error kinds, the protocol, and HTTP plumbing.

Error contract (the actions activity depends on it):

* ``ConnectorError`` - retrying may help (network failure, timeout, 5xx, 429). Temporal retries the
  activity; ``retry_after_s`` (from the platform's rate-limit headers) becomes the next retry delay.
  ``maybe_applied`` is False only when the platform provably did nothing (a 429, a connection never
  made); otherwise the request may have taken effect and the retry reads the platform back first.
* ``ConnectorConfigError`` - no retry can help (bad token, missing permission, malformed request).
  The activity fails without retrying and the case records the platform's message.
* ``CannotCheck`` - raised by ``check`` for an action the platform cannot read back (Helix message
  deletions and warnings): the actions activity then does not repeat a call that may have landed.

Connectors never retry by themselves: retries belong to Temporal, so each attempt is in history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from domain.models import ActionType, ChatEvent, PlannedAction

JSONDict = dict[str, Any]

# Sanctions with an inverse (unban, lift timeout). A deleted message or a sent warning cannot be undone.
REVERSIBLE_ACTIONS: frozenset[ActionType] = frozenset({ActionType.BAN, ActionType.TIMEOUT})
# Used when a timeout arrives without a duration (the policy always sets one; this is a safety net).
DEFAULT_TIMEOUT_S = 600


class ConnectorError(Exception):
    """A retryable platform failure (network, 5xx, 429). ``retry_after_s`` is the platform's wish."""

    def __init__(self, message: str, *, retry_after_s: float | None = None, maybe_applied: bool = True) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        # False only when the platform provably did not act (rate-limited, never connected).
        self.maybe_applied = maybe_applied


class ConnectorConfigError(Exception):
    """A failure no retry can fix (bad URL or token, missing permission, 4xx other than 429)."""


class CannotCheck(Exception):
    """The platform offers no way to read this action's effect back (the message says which API is missing)."""


@dataclass(frozen=True)
class ActionRequest:
    """One action for one case. ``idempotency_key`` is ``<case>:<action>`` (``<case>:revert:<action>``)."""

    idempotency_key: str
    case_id: str
    event: ChatEvent
    action: PlannedAction

    def payload(self, *, revert: bool = False) -> JSONDict:
        """The JSON the ledger stores and the webhook posts; ``revert`` names the inverse action."""
        ev = self.event
        name = self.action.action.value
        return {
            "idempotency_key": self.idempotency_key, "case_id": self.case_id,
            "action": f"revert_{name}" if revert else name,
            "duration_s": self.action.duration_s, "reason": self.action.reason, "platform": ev.platform,
            "channel_id": ev.channel_id, "user_id": ev.author_id, "message_id": ev.message_id,
        }

    def audit_reason(self, limit: int = 512) -> str:
        """Why, as shown in the platform's audit log: the case id first, so a moderator can look it up."""
        text = f"case {self.case_id}: {self.action.reason}" if self.action.reason else f"case {self.case_id}"
        return text[:limit]

    @property
    def timeout_s(self) -> int:
        return self.action.duration_s or DEFAULT_TIMEOUT_S


class Connector(Protocol):
    """Applies an action to one platform, or reverts it, and reads either effect back.

    ``check`` / ``check_revert`` answer the question a retry asks after an attempt that may have
    reached the platform: is the effect already in place? They return the evidence (a result dict,
    stored in the ledger like ``apply``'s) when it is, None when it is not (or when repeating the call
    is harmless), and raise ``CannotCheck`` when the platform cannot tell. All four may raise the two
    errors above.
    """

    name: str

    async def apply(self, req: ActionRequest) -> JSONDict: ...

    async def revert(self, req: ActionRequest) -> JSONDict: ...

    async def check(self, req: ActionRequest) -> JSONDict | None: ...

    async def check_revert(self, req: ActionRequest) -> JSONDict | None: ...


def not_reversible(req: ActionRequest) -> JSONDict:
    """The answer to reverting a delete or a warning: nothing is called, the ledger says why."""
    return {"reversible": False, "action": req.action.action.value,
            "detail": f"{req.action.action.value} cannot be undone on the platform"}


def describe(action: ActionType) -> str:
    return {ActionType.WARN: "send warning DM", ActionType.DELETE: "delete message",
            ActionType.TIMEOUT: "timeout member", ActionType.BAN: "ban member",
            ActionType.ESCALATE: "escalate to platform moderators"}[action]


def describe_revert(action: ActionType) -> str:
    return {ActionType.TIMEOUT: "lift timeout", ActionType.BAN: "unban member"}.get(action, "nothing (not reversible)")


def url_quote(text: str) -> str:
    """Percent-encode a header value (Discord requires it for X-Audit-Log-Reason)."""
    return quote(text, safe="")


def parse_seconds(value: str | None) -> float | None:
    """A Retry-After style number of seconds, or None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


# Transport failures that happen before any byte of the request reaches the platform.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def transport_error(context: str, err: httpx.HTTPError) -> ConnectorError:
    """A retryable error for a failed HTTP exchange; ``maybe_applied`` unless the request never left."""
    return ConnectorError(f"{context}: {err!r}", maybe_applied=not isinstance(err, _NEVER_SENT))


def json_body(resp: httpx.Response) -> JSONDict:
    """The response body as a dict ({} when empty or not a JSON object)."""
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class HttpConnector:
    """Holds one ``httpx.AsyncClient`` (no retries, bounded timeout) and turns transport failures into
    ``ConnectorError``. A timed-out call may have reached the platform (``maybe_applied``): the retry
    reads the platform back (``check``) before it calls again, with the same idempotency key."""

    platform = "platform"

    def __init__(self, *, timeout_s: float, client: httpx.AsyncClient | None) -> None:
        self.client = client or httpx.AsyncClient(timeout=timeout_s)

    async def send(self, method: str, url: str, *, headers: dict[str, str],
                   params: dict[str, str] | None = None, json: JSONDict | None = None) -> httpx.Response:
        try:
            return await self.client.request(method, url, headers=headers, params=params, json=json)
        except httpx.HTTPError as err:
            raise transport_error(f"{self.platform} unreachable ({method} {url.split('?')[0]})", err) from err

    async def aclose(self) -> None:
        await self.client.aclose()
