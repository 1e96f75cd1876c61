"""Twitch Helix moderation API (``Authorization: Bearer <user token>``, ``Client-Id``).

* delete: ``DELETE /moderation/chat?broadcaster_id&moderator_id&message_id`` (404 = already gone: ok)
* timeout / ban: ``POST /moderation/bans?broadcaster_id&moderator_id``
  ``{"data": {"user_id", "duration" (timeout only), "reason"}}``
* lift timeout / unban: ``DELETE /moderation/bans?broadcaster_id&moderator_id&user_id`` (400 not banned: ok)
* warn: ``POST /moderation/warnings?broadcaster_id&moderator_id`` ``{"data": {"user_id", "reason"}}``

The event's ``channel_id`` is the broadcaster id; the moderator id is the user the token belongs to
(``twitch_moderator_id`` setting). Helix has one "ban" resource for bans and timeouts, so lifting a
timeout is an unban: the actions activity therefore never reverts a timeout while another case's ban
of the same user stands. A ban of a user already banned answers 400 "already banned": that is the
state we wanted, so it is a success (``already_banned`` in the result); the same holds for a timeout
(the user is already sanctioned more strongly, and the result says so).

Answers: 429 -> ``ConnectorError`` with the wait until ``Ratelimit-Reset`` (epoch seconds); 5xx and
network -> ``ConnectorError``; other 4xx -> ``ConnectorConfigError`` with Twitch's message.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from core.connectors.base import (
    REVERSIBLE_ACTIONS,
    ActionRequest,
    ConnectorConfigError,
    ConnectorError,
    HttpConnector,
    JSONDict,
    json_body,
    not_reversible,
    parse_seconds,
)
from domain.models import ActionType

DEFAULT_TWITCH_API = "https://api.twitch.tv/helix"
MAX_TIMEOUT_S = 1_209_600  # two weeks, Helix's limit for a timeout duration
_REASON_LIMIT = 500


class TwitchConnector(HttpConnector):
    name = "twitch"
    platform = "twitch"

    def __init__(self, *, token: str, client_id: str, moderator_id: str, base_url: str = DEFAULT_TWITCH_API,
                 timeout_s: float = 5.0, client: httpx.AsyncClient | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        missing = [name for name, value in (("SAFETY_CONNECTOR__TWITCH_TOKEN", token),
                                            ("SAFETY_CONNECTOR__TWITCH_CLIENT_ID", client_id),
                                            ("SAFETY_CONNECTOR__TWITCH_MODERATOR_ID", moderator_id)) if not value]
        if missing:
            raise ConnectorConfigError(f"Twitch connector needs {', '.join(missing)}")
        super().__init__(timeout_s=timeout_s, client=client)
        self.base_url, self.moderator_id, self._clock = base_url.rstrip("/"), moderator_id, clock
        self._headers = {"Authorization": f"Bearer {token}", "Client-Id": client_id}

    async def apply(self, req: ActionRequest) -> JSONDict:
        action = req.action.action
        if action == ActionType.DELETE:
            return await self._delete_message(req)
        if action in (ActionType.TIMEOUT, ActionType.BAN):
            return await self._ban(req, temporary=action == ActionType.TIMEOUT)
        if action == ActionType.WARN:
            data = {"user_id": req.event.author_id, "reason": _reason(req)}
            return await self._call(req, "POST", "/moderation/warnings", json={"data": data})
        return {"skipped": f"Twitch has no API for '{action.value}'; the case stays with human moderators"}

    async def revert(self, req: ActionRequest) -> JSONDict:
        """Unban (which also lifts a timeout). Unbanning someone not banned is a success."""
        if req.action.action not in REVERSIBLE_ACTIONS:
            return not_reversible(req)
        return await self._call(req, "DELETE", "/moderation/bans", extra={"user_id": req.event.author_id},
                                ok_message="is not banned")

    async def _delete_message(self, req: ActionRequest) -> JSONDict:
        # Without message_id Helix clears the whole chat, so a missing id must never reach the call.
        if not req.event.message_id:
            return {"skipped": "the event has no message_id; nothing to delete"}
        return await self._call(req, "DELETE", "/moderation/chat", extra={"message_id": req.event.message_id},
                                ok_404=True)

    async def _ban(self, req: ActionRequest, *, temporary: bool) -> JSONDict:
        data: JSONDict = {"user_id": req.event.author_id, "reason": _reason(req)}
        if temporary:
            data["duration"] = max(1, min(req.timeout_s, MAX_TIMEOUT_S))
        result = await self._call(req, "POST", "/moderation/bans", json={"data": data},
                                  ok_message="is already banned")
        return {**result, "already_banned": bool(result.get("already"))}

    async def _call(self, req: ActionRequest, method: str, path: str, *, json: JSONDict | None = None,
                    extra: dict[str, str] | None = None, ok_404: bool = False, ok_message: str = "") -> JSONDict:
        params = {"broadcaster_id": req.event.channel_id, "moderator_id": self.moderator_id, **(extra or {})}
        headers = {**self._headers, "Idempotency-Key": req.idempotency_key}
        resp = await self.send(method, self.base_url + path, headers=headers, params=params, json=json)
        return self._result(resp, f"{method} {path}", ok_404=ok_404, ok_message=ok_message)

    def _result(self, resp: httpx.Response, call: str, *, ok_404: bool, ok_message: str) -> JSONDict:
        """Classify Helix's answer: a result dict, or one of the two connector errors."""
        status, body = resp.status_code, json_body(resp)
        text = str(body.get("message", resp.text[:200]))
        message = f"Twitch {call} answered {status}: {text}"
        if status == 429:
            raise ConnectorError(message, retry_after_s=self._retry_after(resp))
        if status >= 500:
            raise ConnectorError(message)
        if (status == 404 and ok_404) or (status == 400 and ok_message and ok_message in text):
            return {"status": status, "call": call, "already": True, "message": text}
        if status == 401:
            raise ConnectorConfigError(f"{message}: check SAFETY_CONNECTOR__TWITCH_TOKEN, _CLIENT_ID and "
                                       "_MODERATOR_ID (the token's user must be a moderator of the channel)")
        if status >= 400:
            raise ConnectorConfigError(message)
        return {"status": status, "call": call}

    def _retry_after(self, resp: httpx.Response) -> float | None:
        """Seconds until ``Ratelimit-Reset`` (epoch seconds); at least 1 s so the retry is not immediate."""
        reset = parse_seconds(resp.headers.get("Ratelimit-Reset"))
        if reset is None:
            return parse_seconds(resp.headers.get("Retry-After"))
        return max(reset - self._clock(), 1.0)


def _reason(req: ActionRequest) -> str:
    return f"{req.action.reason or 'community rules'} (case {req.case_id})"[:_REASON_LIMIT]
