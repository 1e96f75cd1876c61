"""Fake Discord (REST v10) and Twitch (Helix) moderation APIs for tests. TEST DOUBLES, not platforms.

Each server speaks its platform's request and response shapes for exactly the endpoints the
connectors use (the mutating calls and the reads a retry uses to check whether an interrupted call
took effect), checks auth headers and bodies the way the real API does (401/400/404 with the
platform's error body), keeps state (bans with their reasons, timeouts, deleted messages, DMs,
warnings) and records every call (method, path, query, body, ``Idempotency-Key``, decoded
``X-Audit-Log-Reason``, answer). ``count(action, target)`` says how many calls asked for one action on
one target, e.g. ``count("ban", user)`` = PUT bans for that user: the check that a retried or restarted
worker did not sanction twice. Reads are recorded under their own names (``read_ban``, ``read_member``,
``read_message``, ``read_messages``, ``read_banned``), so they never count as a mutating call.

Dials (``configure``): ``rate_limit_next=N`` answers 429 with the platform's rate-limit headers for
the next N calls (Discord: ``Retry-After`` + JSON ``retry_after``; Twitch: ``Ratelimit-Reset`` epoch
seconds); ``fail_next=[500, 503]`` answers those statuses in turn; ``latency_s`` delays each answer;
``hang=True`` holds each answer until released; ``slow_actions=["ban"]`` limits latency and hang to
those recorded actions. Faults come before auth, as a rate limiter in front of the API would answer.
Latency and hang come AFTER the state change, like a platform that processed the request but whose
answer is slow or lost: a client killed mid-call leaves the effect in place.

    with FakeDiscord() as discord:
        connector = DiscordConnector(token=discord.token, guild_id=discord.guild_id, base_url=discord.base_url)
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tests.doubles.http_server import BackgroundHTTPServer

__all__ = ["FakeDiscord", "FakePlatformConfig", "FakeTwitch", "RecordedCall"]

JSONDict = dict[str, Any]


class FakePlatformConfig(BaseModel):
    """Every dial. Unknown fields are rejected so a typo in a test is loud."""

    model_config = ConfigDict(extra="forbid")

    rate_limit_next: int = Field(default=0, ge=0)
    retry_after_s: float = Field(default=2.5, ge=0)
    fail_next: list[int] = Field(default_factory=list)
    latency_s: float = Field(default=0.0, ge=0)
    hang: bool = False
    hang_max_s: float = 60.0
    # Recorded action names ("ban", "delete", ...) that latency and hang apply to; empty = every call.
    slow_actions: list[str] = Field(default_factory=list)


@dataclass
class RecordedCall:
    """One request as the fake saw it, and what it answered."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    idempotency_key: str | None
    audit_reason: str | None
    action: str = ""
    target: str = ""
    status: int = 0
    effective: bool = False  # the call changed platform state (a new ban, a deletion, a DM sent, ...)
    at: float = field(default_factory=time.time)


@dataclass
class _Answer:
    response: Response
    effective: bool = False


class _State:
    """Configuration, platform state and recorded calls; shared between the server and test threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stopping = False
        self.reset()

    def reset(self, **config: Any) -> None:
        with self.lock:
            self.config = FakePlatformConfig(**config)
            self.calls: list[RecordedCall] = []
            self.bans: set[str] = set()
            self.timeouts: dict[str, str] = {}  # user id -> until (ISO 8601)
            self.ban_records: dict[str, JSONDict] = {}  # user id -> reason, created_at (bans and timeouts)
            self.deleted: set[str] = set()
            self.dms: list[JSONDict] = []  # messages sent to DM channels
            self.warnings: list[JSONDict] = []
            self.nonces: dict[str, JSONDict] = {}
            self._next_id = 1_000_000_000_000_000_000

    def new_id(self) -> str:
        with self.lock:
            self._next_id += 1
            return str(self._next_id)

    def configure(self, **changes: Any) -> FakePlatformConfig:
        with self.lock:
            self.config = FakePlatformConfig.model_validate({**self.config.model_dump(), **changes})
            return self.config

    def injected_fault(self) -> int | None:
        """The status to answer instead of handling the call (429 or a scheduled failure), if any."""
        with self.lock:
            if self.config.rate_limit_next:
                self.config.rate_limit_next -= 1
                return 429
            if self.config.fail_next:
                return self.config.fail_next.pop(0)
            return None

    def slowed(self, action: str) -> bool:
        with self.lock:
            return not self.config.slow_actions or action in self.config.slow_actions

    def latency(self, action: str) -> float:
        with self.lock:
            latency = self.config.latency_s
        return latency if self.slowed(action) else 0.0

    def hanging(self, action: str) -> bool:
        with self.lock:
            hang = self.config.hang and not self.stopping
        return hang and self.slowed(action)


Handler = Callable[[Request, Any], Awaitable[_Answer]]


class _FakePlatform:
    """Shared server machinery: uvicorn in a daemon thread on a free port, like ``FakeLLMServer``."""

    thread_name = "fake-platform"
    api_prefix = ""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.state = _State()
        self._http = BackgroundHTTPServer(host, port, self.thread_name)

    # --- what tests use -------------------------------------------------------------------------
    @property
    def bans(self) -> set[str]:
        with self.state.lock:
            return set(self.state.bans)

    @property
    def timeouts(self) -> dict[str, str]:
        with self.state.lock:
            return dict(self.state.timeouts)

    @property
    def deleted_messages(self) -> set[str]:
        with self.state.lock:
            return set(self.state.deleted)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}{self.api_prefix}"

    @property
    def calls(self) -> list[RecordedCall]:
        """Recorded calls, oldest first (a copy)."""
        with self.state.lock:
            return list(self.state.calls)

    def count(self, action: str, target: str, *, effective_only: bool = False) -> int:
        """Calls that asked for ``action`` on ``target`` (any answer, or only those that changed state).
        ``count("ban", user)`` counts the ban requests (PUT at Discord, POST at Twitch) for that user."""
        return sum(1 for c in self.calls
                   if c.action == action and c.target == target and (c.effective or not effective_only))

    def configure(self, **changes: Any) -> FakePlatformConfig:
        return self.state.configure(**changes)

    def reset(self, **config: Any) -> None:
        """Back to defaults: no bans, timeouts, recorded calls or faults; releases a hang."""
        self.state.reset(**config)

    # --- subclasses ---------------------------------------------------------------------------
    def routes(self, app: FastAPI) -> None:
        raise NotImplementedError

    def fault_response(self, status: int) -> Response:
        raise NotImplementedError

    def auth_error(self, request: Request) -> Response | None:
        raise NotImplementedError

    # --- request plumbing ---------------------------------------------------------------------
    async def handle(self, request: Request, action: str, target: str, handler: Handler) -> Response:
        """Record the call, apply injected faults and auth, run ``handler`` (the state changes now) and
        record its answer; only then wait out any latency or hang before the answer leaves."""
        body = await _read_json(request)
        call = RecordedCall(method=request.method, path=request.url.path, query=dict(request.query_params),
                            body=body, idempotency_key=request.headers.get("idempotency-key"),
                            audit_reason=_unquoted(request.headers.get("x-audit-log-reason")),
                            action=action, target=target)
        with self.state.lock:
            self.state.calls.append(call)
        answer = await self._answer(request, body, handler)
        call.status, call.effective = answer.response.status_code, answer.effective
        await self._delay(action)
        return answer.response

    async def _answer(self, request: Request, body: Any, handler: Handler) -> _Answer:
        fault = self.state.injected_fault()
        if fault is not None:
            return _Answer(self.fault_response(fault))
        denied = self.auth_error(request)
        if denied is not None:
            return _Answer(denied)
        return await handler(request, body)

    async def _delay(self, action: str) -> None:
        if latency := self.state.latency(action):
            await asyncio.sleep(latency)
        # Polls: the release comes from another thread (reset/configure/stop); 20 ms does not matter here.
        deadline = time.monotonic() + self.state.config.hang_max_s
        while self.state.hanging(action) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    # --- lifecycle ----------------------------------------------------------------------------
    def create_app(self) -> FastAPI:
        app = FastAPI(title=f"{self.thread_name} (test double)", docs_url=None, redoc_url=None, openapi_url=None)
        self.routes(app)
        return app

    def start(self, timeout_s: float = 10.0) -> Self:
        self.state.stopping = False
        self._http.serve(self.create_app(), timeout_s)
        self.port = self._http.port
        return self

    def stop(self) -> None:
        """Release hung requests, shut down, and close the port (new connections are refused)."""
        self.state.stopping = True
        self._http.shutdown()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# ================================================================================================
# Discord REST v10
# ================================================================================================

_DISCORD_MAX_TIMEOUT = timedelta(days=28)


def _discord_error(status: int, message: str, code: int = 0, errors: JSONDict | None = None) -> JSONResponse:
    body: JSONDict = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status)


def _form_error(field_name: str, code: str, message: str) -> JSONResponse:
    """Discord's 50035 Invalid Form Body, with the field's error as the real API nests it."""
    return _discord_error(400, "Invalid Form Body", 50035,
                          {field_name: {"_errors": [{"code": code, "message": message}]}})


class FakeDiscord(_FakePlatform):
    """Discord v10 for one guild and one bot token. ``base_url`` ends in ``/api/v10``."""

    thread_name = "fake-discord"
    api_prefix = "/api/v10"

    def __init__(self, *, token: str = "fake-discord-bot-token", guild_id: str = "900000000000000001",
                 bot_user_id: str = "900000000000000002", host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self.token, self.guild_id, self.bot_user_id = token, guild_id, bot_user_id

    @property
    def dms(self) -> list[JSONDict]:
        with self.state.lock:
            return list(self.state.dms)

    def fault_response(self, status: int) -> Response:
        if status == 429:
            wait = self.state.config.retry_after_s
            headers = {"Retry-After": str(math.ceil(wait)), "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                       "X-RateLimit-Reset-After": f"{wait:g}", "X-RateLimit-Scope": "user"}
            return JSONResponse({"message": "You are being rate limited.", "retry_after": wait, "global": False},
                                status_code=429, headers=headers)
        return _discord_error(status, f"{status}: Server Error")

    def auth_error(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bot {self.token}":
            return _discord_error(401, "401: Unauthorized")
        return None

    def _guild_error(self, guild_id: str) -> Response | None:
        return None if guild_id == self.guild_id else _discord_error(404, "Unknown Guild", 10004)

    def routes(self, app: FastAPI) -> None:
        p = self.api_prefix

        @app.delete(p + "/channels/{channel_id}/messages/{message_id}")
        async def delete_message(request: Request, channel_id: str, message_id: str) -> Response:
            return await self.handle(request, "delete", message_id, lambda r, b: self._delete(message_id))

        @app.patch(p + "/guilds/{guild_id}/members/{user_id}")
        async def modify_member(request: Request, guild_id: str, user_id: str) -> Response:
            body = await _read_json(request)
            lifting = isinstance(body, dict) and body.get("communication_disabled_until", "") is None
            return await self.handle(request, "lift_timeout" if lifting else "timeout", user_id,
                                     lambda r, b: self._timeout(guild_id, user_id, b))

        @app.put(p + "/guilds/{guild_id}/bans/{user_id}")
        async def ban(request: Request, guild_id: str, user_id: str) -> Response:
            return await self.handle(request, "ban", user_id, lambda r, b: self._ban(r, guild_id, user_id, b))

        @app.delete(p + "/guilds/{guild_id}/bans/{user_id}")
        async def unban(request: Request, guild_id: str, user_id: str) -> Response:
            return await self.handle(request, "unban", user_id, lambda r, b: self._unban(guild_id, user_id))

        @app.post(p + "/users/@me/channels")
        async def open_dm(request: Request) -> Response:
            body = await _read_json(request)
            target = str(body.get("recipient_id", "")) if isinstance(body, dict) else ""
            return await self.handle(request, "open_dm", target, lambda r, b: self._open_dm(b))

        @app.post(p + "/channels/{channel_id}/messages")
        async def send_message(request: Request, channel_id: str) -> Response:
            return await self.handle(request, "send_message", channel_id,
                                     lambda r, b: self._send(channel_id, b))

        self._read_routes(app)

    def _read_routes(self, app: FastAPI) -> None:
        """The reads a retry uses to see whether an interrupted call took effect."""
        p = self.api_prefix

        @app.get(p + "/guilds/{guild_id}/bans/{user_id}")
        async def get_ban(request: Request, guild_id: str, user_id: str) -> Response:
            return await self.handle(request, "read_ban", user_id, lambda r, b: self._get_ban(guild_id, user_id))

        @app.get(p + "/guilds/{guild_id}/members/{user_id}")
        async def get_member(request: Request, guild_id: str, user_id: str) -> Response:
            return await self.handle(request, "read_member", user_id,
                                     lambda r, b: self._get_member(guild_id, user_id))

        @app.get(p + "/channels/{channel_id}/messages/{message_id}")
        async def get_message(request: Request, channel_id: str, message_id: str) -> Response:
            return await self.handle(request, "read_message", message_id,
                                     lambda r, b: self._get_message(channel_id, message_id))

        @app.get(p + "/channels/{channel_id}/messages")
        async def list_messages(request: Request, channel_id: str) -> Response:
            return await self.handle(request, "read_messages", channel_id,
                                     lambda r, b: self._list_messages(channel_id, r.query_params.get("limit")))

    async def _delete(self, message_id: str) -> _Answer:
        with self.state.lock:
            if message_id in self.state.deleted:
                return _Answer(_discord_error(404, "Unknown Message", 10008))
            self.state.deleted.add(message_id)
        return _Answer(Response(status_code=204), effective=True)

    async def _timeout(self, guild_id: str, user_id: str, body: Any) -> _Answer:
        if (err := self._guild_error(guild_id)) is not None:
            return _Answer(err)
        if not isinstance(body, dict) or "communication_disabled_until" not in body:
            return _Answer(_form_error("communication_disabled_until", "BASE_TYPE_REQUIRED",
                                       "This field is required"))
        until = body["communication_disabled_until"]
        if until is not None and (problem := _timeout_problem(until)):
            return _Answer(_form_error("communication_disabled_until", "DATE_TIME_INVALID", problem))
        with self.state.lock:
            if user_id in self.state.bans:
                return _Answer(_discord_error(404, "Unknown Member", 10007))
            before = self.state.timeouts.get(user_id)
            if until is None:
                self.state.timeouts.pop(user_id, None)
            else:
                self.state.timeouts[user_id] = until
        member = {"user": {"id": user_id}, "roles": [], "communication_disabled_until": until}
        return _Answer(JSONResponse(member), effective=(before is None) != (until is None))

    async def _ban(self, request: Request, guild_id: str, user_id: str, body: Any) -> _Answer:
        if (err := self._guild_error(guild_id)) is not None:
            return _Answer(err)
        if body is not None:
            seconds = body.get("delete_message_seconds", 0) if isinstance(body, dict) else None
            if not isinstance(seconds, int) or not 0 <= seconds <= 604800:
                return _Answer(_form_error("delete_message_seconds", "NUMBER_TYPE_MAX",
                                           "int value should be between 0 and 604800"))
        reason = _unquoted(request.headers.get("x-audit-log-reason"))
        with self.state.lock:
            new = user_id not in self.state.bans
            self.state.bans.add(user_id)
            self.state.timeouts.pop(user_id, None)  # a banned user is no longer a member
            if new:  # Discord keeps the audit-log reason of the ban that created it
                self.state.ban_records[user_id] = {"reason": reason, "created_at": datetime.now(UTC).isoformat()}
        return _Answer(Response(status_code=204), effective=new)

    async def _unban(self, guild_id: str, user_id: str) -> _Answer:
        if (err := self._guild_error(guild_id)) is not None:
            return _Answer(err)
        with self.state.lock:
            if user_id not in self.state.bans:
                return _Answer(_discord_error(404, "Unknown Ban", 10026))
            self.state.bans.discard(user_id)
            self.state.ban_records.pop(user_id, None)
        return _Answer(Response(status_code=204), effective=True)

    async def _open_dm(self, body: Any) -> _Answer:
        recipient = body.get("recipient_id") if isinstance(body, dict) else None
        if not isinstance(recipient, str | int) or not str(recipient).isdigit():
            return _Answer(_form_error("recipient_id", "NUMBER_TYPE_COERCE",
                                       f"Value \"{recipient}\" is not snowflake."))
        channel = {"id": f"8{int(recipient) % 10**17:017d}", "type": 1, "last_message_id": None,
                   "recipients": [{"id": str(recipient)}]}
        return _Answer(JSONResponse(channel))

    async def _send(self, channel_id: str, body: Any) -> _Answer:
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(content, str) or not content.strip():
            return _Answer(_discord_error(400, "Cannot send an empty message", 50006))
        if len(content) > 2000:
            return _Answer(_form_error("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length."))
        nonce = body.get("nonce")
        if nonce is not None and len(str(nonce)) > 25:
            return _Answer(_form_error("nonce", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."))
        with self.state.lock:
            if body.get("enforce_nonce") and nonce is not None and str(nonce) in self.state.nonces:
                return _Answer(JSONResponse(self.state.nonces[str(nonce)]))
        message = {"id": self.state.new_id(), "channel_id": channel_id, "content": content, "nonce": nonce,
                   "type": 0, "timestamp": datetime.now(UTC).isoformat()}
        with self.state.lock:
            self.state.dms.append(message)
            if nonce is not None:
                self.state.nonces[str(nonce)] = message
        return _Answer(JSONResponse(message), effective=True)

    async def _get_ban(self, guild_id: str, user_id: str) -> _Answer:
        if (err := self._guild_error(guild_id)) is not None:
            return _Answer(err)
        with self.state.lock:
            if user_id not in self.state.bans:
                return _Answer(_discord_error(404, "Unknown Ban", 10026))
            reason = self.state.ban_records.get(user_id, {}).get("reason")
        return _Answer(JSONResponse({"reason": reason, "user": _discord_user(user_id)}))

    async def _get_member(self, guild_id: str, user_id: str) -> _Answer:
        if (err := self._guild_error(guild_id)) is not None:
            return _Answer(err)
        with self.state.lock:
            if user_id in self.state.bans:
                return _Answer(_discord_error(404, "Unknown Member", 10007))
            until = self.state.timeouts.get(user_id)
        return _Answer(JSONResponse({"user": _discord_user(user_id), "nick": None, "avatar": None, "roles": [],
                                     "joined_at": "2024-01-01T00:00:00+00:00", "deaf": False, "mute": False,
                                     "flags": 0, "pending": False, "communication_disabled_until": until}))

    async def _get_message(self, channel_id: str, message_id: str) -> _Answer:
        """Every message exists until deleted (the fake has no message history of its own)."""
        with self.state.lock:
            if message_id in self.state.deleted:
                return _Answer(_discord_error(404, "Unknown Message", 10008))
        return _Answer(JSONResponse({"id": message_id, "channel_id": channel_id, "type": 0, "content": "",
                                     "author": _discord_user("1"), "timestamp": datetime.now(UTC).isoformat()}))

    async def _list_messages(self, channel_id: str, limit: str | None) -> _Answer:
        """The channel's messages sent through this fake, newest first (Discord's order), at most ``limit``."""
        count = int(limit) if limit and limit.isdigit() else 50
        if not 1 <= count <= 100:
            return _Answer(_form_error("limit", "NUMBER_TYPE_MAX", "int value should be between 1 and 100"))
        author = {**_discord_user(self.bot_user_id), "bot": True}
        with self.state.lock:
            mine = [{**m, "author": author} for m in self.state.dms if m["channel_id"] == channel_id]
        return _Answer(JSONResponse(list(reversed(mine))[:count]))


def _discord_user(user_id: str) -> JSONDict:
    return {"id": user_id, "username": f"user{user_id[-6:]}", "discriminator": "0", "global_name": None,
            "avatar": None}


def _timeout_problem(value: Any) -> str:
    """Why Discord would refuse this communication_disabled_until ('' when it is acceptable)."""
    if not isinstance(value, str):
        return "Could not interpret value as a timestamp."
    try:
        until = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return f"Could not interpret \"{value}\" as a date or datetime."
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    if until - datetime.now(UTC) > _DISCORD_MAX_TIMEOUT:
        return "Timeout must be less than 28 days in the future."
    return ""


# ================================================================================================
# Twitch Helix
# ================================================================================================

_TWITCH_MAX_TIMEOUT_S = 1_209_600


def _twitch_error(status: int, message: str) -> JSONResponse:
    names = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
             429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
    return JSONResponse({"error": names.get(status, "Error"), "status": status, "message": message},
                        status_code=status)


class FakeTwitch(_FakePlatform):
    """Helix moderation for one app (client id) and one moderator's user token. ``base_url`` ends in ``/helix``."""

    thread_name = "fake-twitch"
    api_prefix = "/helix"

    def __init__(self, *, token: str = "fake-twitch-user-token", client_id: str = "fakeclientid0123456789",
                 moderator_id: str = "141981764", host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self.token, self.client_id, self.moderator_id = token, client_id, moderator_id

    @property
    def warnings(self) -> list[JSONDict]:
        with self.state.lock:
            return list(self.state.warnings)

    def fault_response(self, status: int) -> Response:
        if status == 429:
            reset = math.ceil(time.time() + self.state.config.retry_after_s)
            resp = _twitch_error(429, "Too Many Requests")
            resp.headers.update({"Ratelimit-Limit": "800", "Ratelimit-Remaining": "0", "Ratelimit-Reset": str(reset)})
            return resp
        return _twitch_error(status, "fake Twitch injected error")

    def auth_error(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return _twitch_error(401, "OAuth token is missing")
        if auth != f"Bearer {self.token}":
            return _twitch_error(401, "Invalid OAuth token")
        if request.headers.get("client-id") != self.client_id:
            return _twitch_error(401, "Client ID and OAuth token do not match")
        q = request.query_params
        # Get Banned Users takes no moderator_id: the token's user must moderate broadcaster_id.
        required = ("broadcaster_id",) if request.method == "GET" else ("broadcaster_id", "moderator_id")
        for name in required:
            if not q.get(name):
                return _twitch_error(400, f"Missing required parameter \"{name}\"")
        if "moderator_id" in required and q["moderator_id"] != self.moderator_id:
            return _twitch_error(401, "The ID in moderator_id must match the user ID found in the request's "
                                      "OAuth token.")
        return None

    def routes(self, app: FastAPI) -> None:
        p = self.api_prefix

        @app.delete(p + "/moderation/chat")
        async def delete_chat(request: Request) -> Response:
            message_id = request.query_params.get("message_id", "")
            return await self.handle(request, "delete", message_id, lambda r, b: self._delete(message_id))

        @app.post(p + "/moderation/bans")
        async def ban(request: Request) -> Response:
            body = await _read_json(request)
            data = body.get("data") if isinstance(body, dict) else None
            target = str(data.get("user_id", "")) if isinstance(data, dict) else ""
            action = "timeout" if isinstance(data, dict) and "duration" in data else "ban"
            return await self.handle(request, action, target, lambda r, b: self._ban(r, b))

        @app.delete(p + "/moderation/bans")
        async def unban(request: Request) -> Response:
            user_id = request.query_params.get("user_id", "")
            return await self.handle(request, "unban", user_id, lambda r, b: self._unban(user_id))

        @app.post(p + "/moderation/warnings")
        async def warn(request: Request) -> Response:
            body = await _read_json(request)
            data = body.get("data") if isinstance(body, dict) else None
            target = str(data.get("user_id", "")) if isinstance(data, dict) else ""
            return await self.handle(request, "warn", target, lambda r, b: self._warn(r, b))

        @app.get(p + "/moderation/banned")
        async def banned(request: Request) -> Response:
            user_ids = request.query_params.getlist("user_id")
            return await self.handle(request, "read_banned", ",".join(user_ids),
                                     lambda r, b: self._banned(user_ids))

    async def _delete(self, message_id: str) -> _Answer:
        if not message_id:
            # The real API would clear the whole chat: a connector must never send this.
            return _Answer(_twitch_error(400, "fake Twitch: message_id missing (Helix would clear the whole chat)"))
        with self.state.lock:
            if message_id in self.state.deleted:
                return _Answer(_twitch_error(404, "The ID in message_id was not found."))
            self.state.deleted.add(message_id)
        return _Answer(Response(status_code=204), effective=True)

    async def _ban(self, request: Request, body: Any) -> _Answer:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            return _Answer(_twitch_error(400, "Missing required parameter \"data\""))
        user_id, duration, reason = data.get("user_id"), data.get("duration"), data.get("reason", "")
        if not isinstance(user_id, str) or not user_id:
            return _Answer(_twitch_error(400, "Missing required parameter \"user_id\""))
        if duration is not None and (not isinstance(duration, int) or not 1 <= duration <= _TWITCH_MAX_TIMEOUT_S):
            return _Answer(_twitch_error(400, "The value in the duration field is not valid."))
        if not isinstance(reason, str) or len(reason) > 500:
            return _Answer(_twitch_error(400, "The text in the reason field is too long."))
        now = datetime.now(UTC)
        end = (now + timedelta(seconds=duration)).isoformat() if duration else None
        with self.state.lock:
            if user_id in self.state.bans:
                return _Answer(_twitch_error(400, "The user specified in the user_id field is already banned."))
            if end is None:
                self.state.bans.add(user_id)
                self.state.timeouts.pop(user_id, None)
            else:
                self.state.timeouts[user_id] = end
            self.state.ban_records[user_id] = {"reason": reason, "created_at": now.isoformat()}
        record = {"broadcaster_id": request.query_params["broadcaster_id"], "moderator_id": self.moderator_id,
                  "user_id": user_id, "created_at": now.isoformat(), "end_time": end}
        return _Answer(JSONResponse({"data": [record]}), effective=True)

    async def _unban(self, user_id: str) -> _Answer:
        if not user_id:
            return _Answer(_twitch_error(400, "Missing required parameter \"user_id\""))
        with self.state.lock:
            if user_id not in self.state.bans and user_id not in self.state.timeouts:
                return _Answer(_twitch_error(400, "The user specified in the user_id field is not banned."))
            self.state.bans.discard(user_id)
            self.state.timeouts.pop(user_id, None)
            self.state.ban_records.pop(user_id, None)
        return _Answer(Response(status_code=204), effective=True)

    async def _banned(self, user_ids: list[str]) -> _Answer:
        """Get Banned Users, filtered by ``user_id``: bans (``expires_at`` "") and running timeouts."""
        now = datetime.now(UTC)
        with self.state.lock:
            entries = [self._banned_entry(u, now) for u in user_ids]
        return _Answer(JSONResponse({"data": [e for e in entries if e is not None], "pagination": {}}))

    def _banned_entry(self, user_id: str, now: datetime) -> JSONDict | None:
        """One user's entry (the caller holds the lock), or None when neither banned nor timed out."""
        end = self.state.timeouts.get(user_id)
        if user_id not in self.state.bans and (end is None or datetime.fromisoformat(end) <= now):
            return None
        record = self.state.ban_records.get(user_id, {})
        return {"user_id": user_id, "user_login": f"user{user_id}", "user_name": f"User{user_id}",
                "expires_at": "" if user_id in self.state.bans else _rfc3339(end),
                "created_at": _rfc3339(record.get("created_at")), "reason": record.get("reason", ""),
                "moderator_id": self.moderator_id, "moderator_login": "fakemod", "moderator_name": "FakeMod"}

    async def _warn(self, request: Request, body: Any) -> _Answer:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not data.get("user_id"):
            return _Answer(_twitch_error(400, "Missing required parameter \"user_id\""))
        reason = data.get("reason")
        if not isinstance(reason, str) or not reason:
            return _Answer(_twitch_error(400, "Missing required parameter \"reason\""))
        if len(reason) > 500:
            return _Answer(_twitch_error(400, "The text in the reason field is too long."))
        record = {"broadcaster_id": request.query_params["broadcaster_id"], "user_id": str(data["user_id"]),
                  "moderator_id": self.moderator_id, "reason": reason}
        with self.state.lock:
            self.state.warnings.append(record)
        return _Answer(JSONResponse({"data": [record]}), effective=True)


def _rfc3339(iso: str | None) -> str:
    """Helix's timestamp format (``2022-03-15T02:00:28Z``)."""
    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _read_json(request: Request) -> Any:
    """The JSON body, or None when there is none (Starlette caches it, so reading twice is free)."""
    raw = await request.body()
    if not raw:
        return None
    try:
        return await request.json()
    except ValueError:
        return None


def _unquoted(value: str | None) -> str | None:
    return unquote(value) if value is not None else None
