"""A signed webhook: the receiver applies the action on its own platform.

Body: the request JSON (sorted keys, compact). Headers: ``Idempotency-Key`` (the receiver must drop a
repeat), ``X-Safety-Timestamp`` and ``X-Safety-Signature: sha256=<hex>``, an HMAC-SHA256 with the shared
secret over ``<timestamp>.<body>``. A revert posts the same shape with ``"action": "revert_<action>"``.

Deduplicating by ``Idempotency-Key`` is the receiver's contract, so there is nothing to read back:
``check`` answers "not known to be in place" and a retry after an interrupted attempt posts again with
the same key, which the receiver drops if the first post reached it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from activities.connectors.base import (
    REVERSIBLE_ACTIONS,
    ActionRequest,
    ConnectorConfigError,
    ConnectorError,
    HttpConnector,
    JSONDict,
    not_reversible,
    parse_seconds,
    transport_error,
)


class WebhookConnector(HttpConnector):
    name = "webhook"
    platform = "webhook"

    def __init__(self, url: str, secret: str, *, timeout_s: float = 5.0,
                 client: httpx.AsyncClient | None = None) -> None:
        if not url:
            raise ConnectorConfigError("webhook connector needs SAFETY_CONNECTOR__WEBHOOK_URL")
        super().__init__(timeout_s=timeout_s, client=client)
        self.url, self.secret = url, secret.encode()

    def sign(self, timestamp: str, body: bytes) -> str:
        return "sha256=" + hmac.new(self.secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()

    async def apply(self, req: ActionRequest) -> JSONDict:
        return await self._post(req, req.payload())

    async def revert(self, req: ActionRequest) -> JSONDict:
        if req.action.action not in REVERSIBLE_ACTIONS:
            return not_reversible(req)
        return await self._post(req, req.payload(revert=True))

    async def check(self, req: ActionRequest) -> JSONDict | None:
        """Always None: the receiver deduplicates by ``Idempotency-Key``, so posting again is safe."""
        return None

    async def check_revert(self, req: ActionRequest) -> JSONDict | None:
        """Always None, for the same reason as ``check``."""
        return None

    async def _post(self, req: ActionRequest, payload: JSONDict) -> JSONDict:
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json", "Idempotency-Key": req.idempotency_key,
                   "X-Safety-Timestamp": ts, "X-Safety-Signature": self.sign(ts, body)}
        try:
            resp = await self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as err:
            raise transport_error("webhook unreachable", err) from err
        if resp.status_code == 429 or resp.status_code >= 500:
            raise ConnectorError(f"webhook answered {resp.status_code}", maybe_applied=resp.status_code != 429,
                                 retry_after_s=parse_seconds(resp.headers.get("Retry-After")))
        if resp.status_code >= 400:
            raise ConnectorConfigError(f"webhook answered {resp.status_code}: {resp.text[:200]}")
        return {"status": resp.status_code, "body": resp.text[:500]}
