"""Discord REST API v10, as a bot (``Authorization: Bot <token>``).

* delete: ``DELETE /channels/{channel_id}/messages/{message_id}`` (404 Unknown Message = already gone: ok)
* timeout: ``PATCH /guilds/{guild_id}/members/{user_id}`` ``{"communication_disabled_until": <ISO 8601>}``;
  lifting it is the same PATCH with ``null``
* ban: ``PUT /guilds/{guild_id}/bans/{user_id}`` ``{"delete_message_seconds": 0}`` (idempotent at Discord)
* unban: ``DELETE /guilds/{guild_id}/bans/{user_id}`` (404 Unknown Ban = not banned: ok)
* warn: ``POST /users/@me/channels`` ``{"recipient_id"}``, then ``POST /channels/{dm_id}/messages``
  ``{"content", "nonce", "enforce_nonce": true}``

Read-back (``check``, asked by a retry after an attempt that may have reached Discord; every effect
can be read back, so nothing is ever sent twice and nothing is left unconfirmed):

* ban: ``GET /guilds/{guild_id}/bans/{user_id}`` (200 ban object = banned; 404 Unknown Ban = not)
* timeout: ``GET /guilds/{guild_id}/members/{user_id}``: ``communication_disabled_until`` in the
  future = timed out (404 Unknown Member = gone, so a timeout is not in place but a lift is)
* delete: ``GET /channels/{channel_id}/messages/{message_id}`` (404 Unknown Message = deleted)
* warn: the DM channel (``POST /users/@me/channels`` is get-or-create, not a sanction), then
  ``GET /channels/{dm_id}/messages?limit=50``: a message naming the case id = sent. The warning text
  therefore always names the case (``{case_id}`` in the template, else appended).

The guild is the ``discord_guild_id`` setting: a chat event carries the channel, not the guild, so one
deployment moderates one guild (a bot in several guilds runs one actions worker per guild). Every call
carries ``X-Audit-Log-Reason`` (URL-encoded ``case <id>: <policy clause ...>``), so the guild's audit
log names the case, and Discord stores it as the ban's ``reason``: a ban that does not name this case
was someone else's (``already_banned``). The warning DM is also sent with a ``nonce`` derived from the
idempotency key and ``enforce_nonce`` (Discord drops a repeat within minutes), a second line of defence.

Ids are checked before any call: every id that goes into a path (guild, channel, message, user, DM
channel) must be a snowflake (17-20 digits, below 2**64), and each path segment is percent-encoded, so
an id such as ``..`` can never turn "delete this message" into a request on the channel itself. An id
that is not a snowflake is a ``ConnectorConfigError`` (no retry can fix it; the case goes to a person).

Answers: 429 -> ``ConnectorError`` with ``retry_after`` (JSON, else the ``Retry-After`` header);
5xx and network -> ``ConnectorError``; other 4xx -> ``ConnectorConfigError`` with Discord's message.
Reading needs the permissions the actions imply plus Read Message History (for the message and DM reads).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from activities.connectors.base import (
    REVERSIBLE_ACTIONS,
    ActionRequest,
    ConnectorConfigError,
    ConnectorError,
    HttpConnector,
    JSONDict,
    json_body,
    not_reversible,
    parse_seconds,
    url_quote,
)
from domain.models import ActionType

DEFAULT_DISCORD_API = "https://discord.com/api/v10"
MAX_TIMEOUT_S = 28 * 24 * 3600  # Discord refuses communication_disabled_until beyond 28 days
# Discord's 404 codes that mean "the state we want is already there" (the guild itself must exist).
_UNKNOWN_CHANNEL, _UNKNOWN_MEMBER, _UNKNOWN_MESSAGE, _UNKNOWN_BAN = 10003, 10007, 10008, 10026
_WARNING = ("A moderator action was taken on your message in this server ({reason}). Please follow the rules. "
            "Reference: case {case_id}.")
_DM_LIMIT = 2000  # characters in one Discord message
_DM_LOOKBACK = 50  # recent DM messages a retry searches for the warning (the case id)
_SNOWFLAKE = re.compile(r"[0-9]{17,20}")


def snowflake(value: object, what: str) -> str:
    """``value`` as a Discord snowflake path segment, or ``ConnectorConfigError`` saying which id is bad."""
    text = "" if value is None else str(value)
    if not _SNOWFLAKE.fullmatch(text) or int(text) >= 2**64:
        raise ConnectorConfigError(f"Discord {what} {text[:40]!r} is not a snowflake (17-20 digits); no request "
                                   "was sent. Send Discord's numeric ids in the event.")
    return url_quote(text)


def _path(*segments: str) -> str:
    """A path from literal segments and already-validated ids, each percent-encoded (dots included)."""
    return "".join("/" + url_quote(seg).replace(".", "%2E") for seg in segments)


class DiscordConnector(HttpConnector):
    name = "discord"
    platform = "discord"

    def __init__(self, *, token: str, guild_id: str, base_url: str = DEFAULT_DISCORD_API, timeout_s: float = 5.0,
                 warning_template: str = _WARNING, client: httpx.AsyncClient | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        if not token:
            raise ConnectorConfigError("Discord connector needs SAFETY_CONNECTOR__DISCORD_BOT_TOKEN")
        if not guild_id:
            raise ConnectorConfigError("Discord connector needs SAFETY_CONNECTOR__DISCORD_GUILD_ID "
                                       "(the server the bot moderates)")
        snowflake(guild_id, "guild id (SAFETY_CONNECTOR__DISCORD_GUILD_ID)")
        try:
            warning_template.format(reason="", case_id="")
        except (KeyError, IndexError, ValueError) as err:
            raise ConnectorConfigError("SAFETY_CONNECTOR__DISCORD_WARNING_TEMPLATE may only use the {reason} "
                                       f"and {{case_id}} placeholders: {err!r}") from err
        super().__init__(timeout_s=timeout_s, client=client)
        self.base_url, self.guild_id = base_url.rstrip("/"), guild_id
        self.warning_template, self._now = warning_template, now
        self._auth = f"Bot {token}"

    async def apply(self, req: ActionRequest) -> JSONDict:
        action = req.action.action
        if action == ActionType.DELETE:
            return await self._delete_message(req)
        if action == ActionType.TIMEOUT:
            until = self._now() + timedelta(seconds=min(req.timeout_s, MAX_TIMEOUT_S))
            return await self._set_timeout(req, until.isoformat())
        if action == ActionType.BAN:
            return await self._call(req, "PUT", self._ban_path(req), json={"delete_message_seconds": 0})
        if action == ActionType.WARN:
            return await self._warn(req)
        return {"skipped": f"Discord has no API for '{action.value}'; the case stays with human moderators"}

    async def revert(self, req: ActionRequest) -> JSONDict:
        """Unban a ban, lift a timeout. An unban of someone not banned is a success (already reverted)."""
        action = req.action.action
        if action not in REVERSIBLE_ACTIONS:
            return not_reversible(req)
        if action == ActionType.TIMEOUT:
            return await self._set_timeout(req, None)
        return await self._call(req, "DELETE", self._ban_path(req), done_codes=(_UNKNOWN_BAN,))

    async def check(self, req: ActionRequest) -> JSONDict | None:
        """Whether an earlier attempt's effect is in place (the evidence), or None when it is not."""
        action = req.action.action
        if action == ActionType.BAN:
            return await self._ban_evidence(req)
        if action == ActionType.TIMEOUT:
            return await self._timeout_evidence(req, lifted=False)
        if action == ActionType.DELETE:
            return await self._deleted_evidence(req)
        if action == ActionType.WARN:
            return await self._warning_evidence(req)
        return None  # no API call is made for it, so repeating is harmless

    async def check_revert(self, req: ActionRequest) -> JSONDict | None:
        """Whether an earlier unban / timeout lift took effect (the evidence), or None when it did not."""
        action = req.action.action
        if action == ActionType.BAN:
            path = self._ban_path(req)
            ban = await self._read(path, missing=(_UNKNOWN_BAN,))
            return None if ban is not None else _evidence(path, 404, already=True, code=_UNKNOWN_BAN)
        if action == ActionType.TIMEOUT:
            return await self._timeout_evidence(req, lifted=True)
        return None  # not reversible: the revert makes no call

    def _ban_path(self, req: ActionRequest) -> str:
        return _path("guilds", self.guild_id, "bans", snowflake(req.event.author_id, "user id (author_id)"))

    def _member_path(self, req: ActionRequest) -> str:
        return _path("guilds", self.guild_id, "members", snowflake(req.event.author_id, "user id (author_id)"))

    @staticmethod
    def _message_path(req: ActionRequest) -> str:
        return _path("channels", snowflake(req.event.channel_id, "channel id"), "messages",
                     snowflake(req.event.message_id, "message id"))

    async def _ban_evidence(self, req: ActionRequest) -> JSONDict | None:
        """The ban object, if any. Discord keeps the audit-log reason as the ban's reason, so a ban that
        does not name this case was there before it (``already_banned``: a revert must not lift it)."""
        path = self._ban_path(req)
        ban = await self._read(path, missing=(_UNKNOWN_BAN,))
        if not isinstance(ban, dict):
            return None
        ours = f"case {req.case_id}" in str(ban.get("reason") or "")
        return _evidence(path, 200, already_banned=not ours)

    async def _timeout_evidence(self, req: ActionRequest, *, lifted: bool) -> JSONDict | None:
        """A timeout is in place while ``communication_disabled_until`` is in the future; a lift is in
        place when it is not (or when the member left: nothing is left to lift)."""
        path = self._member_path(req)
        member = await self._read(path, missing=(_UNKNOWN_MEMBER,))
        if not isinstance(member, dict):
            return _evidence(path, 404, already=True, code=_UNKNOWN_MEMBER) if lifted else None
        until = member.get("communication_disabled_until")
        timed_out = _in_future(until, self._now())
        if timed_out == lifted:
            return None
        return _evidence(path, 200, communication_disabled_until=until if timed_out else None)

    async def _deleted_evidence(self, req: ActionRequest) -> JSONDict | None:
        if not req.event.message_id:
            return None  # apply skips it without a call
        path = self._message_path(req)
        message = await self._read(path, missing=(_UNKNOWN_MESSAGE, _UNKNOWN_CHANNEL))
        return None if message is not None else _evidence(path, 404, already=True)

    async def _warning_evidence(self, req: ActionRequest) -> JSONDict | None:
        """The warning DM among the DM channel's recent messages (found by the case id it names)."""
        dm_id = await self._open_dm(req)
        path = _path("channels", dm_id, "messages")
        recent = await self._read(path, params={"limit": str(_DM_LOOKBACK)})
        for message in recent if isinstance(recent, list) else []:
            if isinstance(message, dict) and req.case_id in str(message.get("content", "")):
                return {**_evidence(path, 200), "dm_channel_id": dm_id, "message_id": message.get("id")}
        return None

    async def _read(self, path: str, *, missing: tuple[int, ...] = (),
                    params: dict[str, str] | None = None) -> Any:
        """GET a resource: its JSON, or None when Discord answers 404 with one of the ``missing`` codes."""
        resp = await self.send("GET", self.base_url + path, headers={"Authorization": self._auth}, params=params)
        if _result(resp, f"GET {path}", done_codes=missing).get("already"):
            return None
        try:
            return resp.json()
        except ValueError as err:
            raise ConnectorError(f"Discord GET {path} answered {resp.status_code} without JSON") from err

    async def _delete_message(self, req: ActionRequest) -> JSONDict:
        if not req.event.message_id:
            return {"skipped": "the event has no message_id; nothing to delete"}
        path = self._message_path(req)
        return await self._call(req, "DELETE", path, done_codes=(_UNKNOWN_MESSAGE, _UNKNOWN_CHANNEL))

    async def _set_timeout(self, req: ActionRequest, until: str | None) -> JSONDict:
        path = self._member_path(req)
        # Lifting the timeout of someone who left the guild: nothing is left to lift.
        done = (_UNKNOWN_MEMBER,) if until is None else ()
        result = await self._call(req, "PATCH", path, json={"communication_disabled_until": until}, done_codes=done)
        return {**result, "communication_disabled_until": until}

    async def _warn(self, req: ActionRequest) -> JSONDict:
        """Open (or reuse) the DM channel, then post the warning once (nonce + enforce_nonce)."""
        dm_id = await self._open_dm(req)
        nonce = hashlib.sha256(req.idempotency_key.encode()).hexdigest()[:25]
        sent = await self._call(req, "POST", _path("channels", dm_id, "messages"),
                                json={"content": self.warning_text(req), "nonce": nonce, "enforce_nonce": True},
                                keep_body=True)
        return {"status": sent["status"], "call": sent["call"], "dm_channel_id": dm_id,
                "message_id": sent.get("body", {}).get("id")}

    def warning_text(self, req: ActionRequest) -> str:
        """The DM text. It always names the case: that is how a retry finds a DM an interrupted attempt
        sent (and how the user can cite it in an appeal). A template without ``{case_id}`` gets it appended."""
        text = self.warning_template.format(reason=req.action.reason or "community rules", case_id=req.case_id)
        if req.case_id in text[:_DM_LIMIT]:
            return text[:_DM_LIMIT]
        suffix = f" (case {req.case_id})"
        return text[:_DM_LIMIT - len(suffix)] + suffix

    async def _open_dm(self, req: ActionRequest) -> str:
        """The DM channel with the author (get-or-create at Discord, so opening it twice is harmless)."""
        recipient = snowflake(req.event.author_id, "user id (author_id)")
        dm = await self._call(req, "POST", "/users/@me/channels", json={"recipient_id": recipient}, keep_body=True)
        dm_id = str(dm.get("body", {}).get("id", ""))
        if not dm_id:
            raise ConnectorError("Discord opened a DM channel without an id")
        return snowflake(dm_id, "DM channel id (from Discord)")

    async def _call(self, req: ActionRequest, method: str, path: str, *, json: JSONDict | None = None,
                    done_codes: tuple[int, ...] = (), keep_body: bool = False) -> JSONDict:
        """One call; the result holds Discord's body only when asked (the ledger stores the result)."""
        headers = {"Authorization": self._auth, "X-Audit-Log-Reason": url_quote(req.audit_reason()),
                   "Idempotency-Key": req.idempotency_key}
        resp = await self.send(method, self.base_url + path, headers=headers, json=json)
        result = _result(resp, f"{method} {path}", done_codes=done_codes)
        if not keep_body:
            result.pop("body", None)
        return result


def _result(resp: httpx.Response, call: str, *, done_codes: tuple[int, ...]) -> JSONDict:
    """Classify Discord's answer: a result dict, or one of the two connector errors."""
    status, body = resp.status_code, json_body(resp)
    message = f"Discord {call} answered {status}: {body.get('message', resp.text[:200])} (code {body.get('code')})"
    if status == 429:
        retry = body.get("retry_after")
        retry_s = float(retry) if isinstance(retry, int | float) else parse_seconds(resp.headers.get("Retry-After"))
        raise ConnectorError(message, retry_after_s=retry_s, maybe_applied=False)
    if status >= 500:
        raise ConnectorError(message)
    if status == 404 and body.get("code") in done_codes:
        return {"status": status, "call": call, "already": True, "code": body.get("code")}
    if status == 401:
        raise ConnectorConfigError(f"{message}: check SAFETY_CONNECTOR__DISCORD_BOT_TOKEN")
    if status == 403:
        raise ConnectorConfigError(f"{message}: the bot lacks the permission for this action in the guild")
    if status >= 400:
        raise ConnectorConfigError(message)
    return {"status": status, "call": call, "body": body}


def _evidence(path: str, status: int, **found: Any) -> JSONDict:
    """What a read-back found, in the shape of a call result (the ledger stores it as the response)."""
    return {"status": status, "call": f"GET {path}", "reconciled": True, **found}


def _in_future(value: object, now: datetime) -> bool:
    """Whether an ISO 8601 timestamp (Discord's ``communication_disabled_until``) lies after ``now``."""
    if not isinstance(value, str) or not value:
        return False
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) > now
