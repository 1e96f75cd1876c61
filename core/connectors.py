"""Platform connectors: how an action reaches the platform.

Every call carries an idempotency key (case id + action) so the platform, or our own action ledger,
drops a repeat. ``log`` records the call it would make (the default); ``webhook`` posts HMAC-SHA256
signed JSON (header ``X-Safety-Signature: sha256=<hex>`` over ``<timestamp>.<body>``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from domain.models import ActionType, ChatEvent, PlannedAction


class ConnectorError(Exception):
    """A retryable platform failure (network, 5xx, 429)."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ConnectorConfigError(Exception):
    """A failure no retry can fix (bad URL, 4xx other than 429)."""


@dataclass(frozen=True)
class ActionRequest:
    idempotency_key: str
    case_id: str
    event: ChatEvent
    action: PlannedAction

    def payload(self) -> dict[str, Any]:
        ev = self.event
        return {
            "idempotency_key": self.idempotency_key, "case_id": self.case_id, "action": self.action.action.value,
            "duration_s": self.action.duration_s, "reason": self.action.reason, "platform": ev.platform,
            "channel_id": ev.channel_id, "user_id": ev.author_id, "message_id": ev.message_id,
        }


class Connector(Protocol):
    name: str

    async def apply(self, req: ActionRequest) -> dict[str, Any]: ...


class LogConnector:
    """Applies nothing: returns the platform call it would have made, which the ledger records."""

    name = "log"

    async def apply(self, req: ActionRequest) -> dict[str, Any]:
        return {"would_call": _describe(req.action.action), "request": req.payload()}


class WebhookConnector:
    name = "webhook"

    def __init__(self, url: str, secret: str, *, timeout_s: float = 5.0, client: httpx.AsyncClient | None = None):
        if not url:
            raise ConnectorConfigError("webhook connector needs SAFETY_CONNECTOR__WEBHOOK_URL")
        self.url, self.secret = url, secret.encode()
        self.client = client or httpx.AsyncClient(timeout=timeout_s)

    def sign(self, timestamp: str, body: bytes) -> str:
        return "sha256=" + hmac.new(self.secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()

    async def apply(self, req: ActionRequest) -> dict[str, Any]:
        body = json.dumps(req.payload(), separators=(",", ":"), sort_keys=True).encode()
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json", "Idempotency-Key": req.idempotency_key,
                   "X-Safety-Timestamp": ts, "X-Safety-Signature": self.sign(ts, body)}
        try:
            resp = await self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as err:
            raise ConnectorError(f"webhook unreachable: {err!r}") from err
        if resp.status_code == 429 or resp.status_code >= 500:
            retry_after = resp.headers.get("Retry-After")
            raise ConnectorError(f"webhook answered {resp.status_code}",
                                 retry_after_s=float(retry_after) if retry_after and retry_after.isdigit() else None)
        if resp.status_code >= 400:
            raise ConnectorConfigError(f"webhook answered {resp.status_code}: {resp.text[:200]}")
        return {"status": resp.status_code, "body": resp.text[:500]}


def _describe(action: ActionType) -> str:
    return {ActionType.WARN: "send warning DM", ActionType.DELETE: "delete message",
            ActionType.TIMEOUT: "timeout member", ActionType.BAN: "ban member",
            ActionType.ESCALATE: "escalate to platform moderators"}[action]


def build_connector(kind: str, *, webhook_url: str = "", webhook_secret: str = "", timeout_s: float = 5.0) -> Connector:
    if kind == "log":
        return LogConnector()
    if kind == "webhook":
        return WebhookConnector(webhook_url, webhook_secret, timeout_s=timeout_s)
    raise ConnectorConfigError(f"unknown connector '{kind}': use 'log' or 'webhook'")
