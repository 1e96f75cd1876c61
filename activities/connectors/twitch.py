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

Read-back (``check``, asked by a retry after an attempt that may have reached Twitch):

* ban / timeout and their lift: ``GET /moderation/banned?broadcaster_id&user_id`` (``data[]`` holds the
  user while banned or timed out; ``expires_at`` is "" for a ban). Needs the ``moderation:read`` or
  ``moderator:manage:banned_users`` scope. A ban whose reason does not name this case was someone
  else's (``already_banned``), as with the 400 "already banned" answer.
* delete and warn: Helix has NO API to read a deleted chat message or a sent warning back. ``check``
  raises ``CannotCheck``, and the actions activity does not repeat a call that may have reached Twitch:
  the ledger says ``unconfirmed`` and the case record tells moderators. At most once, not exactly once,
  for these two: a second warning (or a second delete) is worse than a possibly missing one.

Answers: 429 -> ``ConnectorError`` with the wait until ``Ratelimit-Reset`` (epoch seconds); 5xx and
network -> ``ConnectorError``; other 4xx -> ``ConnectorConfigError`` with Twitch's message.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from activities.connectors.base import (
    REVERSIBLE_ACTIONS,
    ActionRequest,
    CannotCheck,
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

    async def check(self, req: ActionRequest) -> JSONDict | None:
        """Whether an earlier attempt's ban or timeout is in place; deletes and warnings cannot be read back."""
        action = req.action.action
        if action == ActionType.DELETE and req.event.message_id:
            raise CannotCheck("Helix has no API to read a deleted chat message back")
        if action == ActionType.WARN:
            raise CannotCheck("Helix has no API to read a warning back")
        if action not in (ActionType.BAN, ActionType.TIMEOUT):
            return None  # apply makes no call for it, so repeating is harmless
        entry, call = await self._banned_entry(req)
        # A timeout is in place under any sanction (a ban is stronger, as "already banned" means in apply).
        if entry is None or (action == ActionType.BAN and entry.get("expires_at")):
            return None
        ours = f"(case {req.case_id})" in str(entry.get("reason") or "")
        return {"status": 200, "call": call, "reconciled": True, "expires_at": entry.get("expires_at"),
                "already_banned": not ours}

    async def check_revert(self, req: ActionRequest) -> JSONDict | None:
        """Whether an earlier unban (which also lifts a timeout) took effect: the user is no longer listed."""
        if req.action.action not in REVERSIBLE_ACTIONS:
            return None  # not reversible: the revert makes no call
        entry, call = await self._banned_entry(req)
        return {"status": 200, "call": call, "reconciled": True, "already": True} if entry is None else None

    async def _banned_entry(self, req: ActionRequest) -> tuple[JSONDict | None, str]:
        """The author's entry in the channel's banned users (bans and running timeouts), or None."""
        call = "GET /moderation/banned"
        params = {"broadcaster_id": req.event.channel_id, "user_id": req.event.author_id}
        resp = await self.send("GET", self.base_url + "/moderation/banned", headers=self._headers, params=params)
        self._result(resp, call, ok_404=False, ok_message="")
        data = json_body(resp).get("data")
        for entry in data if isinstance(data, list) else []:
            if isinstance(entry, dict) and entry.get("user_id") == req.event.author_id:
                return entry, call
        return None, call

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
            raise ConnectorError(message, retry_after_s=self._retry_after(resp), maybe_applied=False)
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
    """The reason Twitch shows (and lists with the ban). The case reference is never truncated away:
    ``check`` tells this case's ban from someone else's by it."""
    suffix = f" (case {req.case_id})"
    return (req.action.reason or "community rules")[:_REASON_LIMIT - len(suffix)] + suffix
