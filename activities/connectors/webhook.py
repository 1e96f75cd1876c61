"""A signed webhook: the receiver applies the action on its own platform.

Body: the request JSON (sorted keys, compact). Headers: ``Idempotency-Key`` (the receiver must drop a
repeat), ``X-Safety-Timestamp`` (Unix seconds) and ``X-Safety-Signature: sha256=<hex>``, an HMAC-SHA256
with the shared secret over ``<timestamp>.<idempotency key>.<body>``: the key a receiver deduplicates by
is signed too, so it cannot be swapped to make a captured request look new. A revert posts the same shape
with ``"action": "revert_<action>"``.

What a receiver checks (``verify_signature`` does all of it, for Python receivers and the tests):

1. the signature, compared in constant time;
2. the **replay window**: ``X-Safety-Timestamp`` within ``REPLAY_WINDOW_S`` (300 s) of its own clock,
   either way; older requests are refused even when correctly signed (a captured request cannot be
   replayed later);
3. ``Idempotency-Key`` not seen in the last ``REPLAY_WINDOW_S`` (at least): a retry inside the window is a
   duplicate to drop. Our retries re-sign with a fresh timestamp and the same key.

Outside development the connector refuses to start without ``SAFETY_CONNECTOR__WEBHOOK_SECRET`` (settings
refuse it too); in development without a secret it posts unsigned (no signature header) and says so.

Deduplicating by ``Idempotency-Key`` is the receiver's contract, so there is nothing to read back:
``check`` answers "not known to be in place" and a retry after an interrupted attempt posts again with
the same key, which the receiver drops if the first post reached it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping

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

log = logging.getLogger(__name__)

REPLAY_WINDOW_S = 300


class SignatureError(ValueError):
    """A webhook request a receiver must refuse (the message says why)."""


def signature(secret: bytes, timestamp: str, idempotency_key: str, body: bytes) -> str:
    message = timestamp.encode() + b"." + idempotency_key.encode() + b"." + body
    return "sha256=" + hmac.new(secret, message, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, headers: Mapping[str, str], body: bytes, *, now: float | None = None,
                     window_s: float = REPLAY_WINDOW_S) -> str:
    """What a receiver runs before acting: the signature over timestamp, idempotency key and body, and the
    replay window. Returns the idempotency key (deduplicate by it); raises ``SignatureError``."""
    lower = {k.lower(): v for k, v in headers.items()}
    ts, key, sig = lower.get("x-safety-timestamp", ""), lower.get("idempotency-key", ""), lower.get(
        "x-safety-signature", "")
    if not (ts and key and sig):
        raise SignatureError("missing X-Safety-Timestamp, Idempotency-Key or X-Safety-Signature")
    if not ts.isdigit():
        raise SignatureError("X-Safety-Timestamp is not Unix seconds")
    if not hmac.compare_digest(sig, signature(secret, ts, key, body)):
        raise SignatureError("bad signature")
    age = (time.time() if now is None else now) - int(ts)
    if abs(age) > window_s:
        raise SignatureError(f"timestamp is {age:+.0f} s from now; outside the {window_s:.0f} s replay window")
    return key


class WebhookConnector(HttpConnector):
    name = "webhook"
    platform = "webhook"

    def __init__(self, url: str, secret: str, *, timeout_s: float = 5.0, require_secret: bool = True,
                 client: httpx.AsyncClient | None = None) -> None:
        if not url:
            raise ConnectorConfigError("webhook connector needs SAFETY_CONNECTOR__WEBHOOK_URL")
        if not secret and require_secret:
            raise ConnectorConfigError("webhook connector needs SAFETY_CONNECTOR__WEBHOOK_SECRET outside development: "
                                       "receivers must be able to tell our requests from forged ones")
        if not secret:
            log.warning("webhook requests are NOT signed: SAFETY_CONNECTOR__WEBHOOK_SECRET is unset (development)")
        super().__init__(timeout_s=timeout_s, client=client)
        self.url, self.secret = url, secret.encode()

    def sign(self, timestamp: str, idempotency_key: str, body: bytes) -> str:
        return signature(self.secret, timestamp, idempotency_key, body)

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
                   "X-Safety-Timestamp": ts}
        if self.secret:
            headers["X-Safety-Signature"] = self.sign(ts, req.idempotency_key, body)
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
