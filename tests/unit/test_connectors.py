"""Connectors against the fake Discord and Twitch servers over real HTTP: request shapes, inverses,
rate limits, auth failures, the idempotent answers (already deleted, already banned, not banned) and
the read-backs a retry uses (``check`` / ``check_revert``) after an attempt that may have landed."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from activities.connectors import (
    ActionRequest,
    CannotCheck,
    ConnectorConfigError,
    ConnectorError,
    DiscordConnector,
    LogConnector,
    TwitchConnector,
    WebhookConnector,
    build_connector,
    build_router,
)
from activities.connectors.webhook import REPLAY_WINDOW_S, SignatureError, verify_signature
from core.settings import ConnectorSettings
from domain.models import ActionType, ChatEvent, PlannedAction
from ops.embedded import free_port
from tests.doubles.fake_platforms import FakeDiscord, FakeTwitch
from tests.production import production_settings

CLAUSE = "H1: targeted_insult (medium)"


def snowflake() -> str:
    return str(uuid.uuid4().int)[:18]


def request(action: ActionType, *, platform: str = "discord", duration_s: int | None = None,
            reason: str = CLAUSE, message_id: str | None = "auto") -> ActionRequest:
    case_id = str(uuid.uuid4())
    event = ChatEvent(event_id=case_id, platform=platform, channel_id=snowflake(), author_id=snowflake(),
                      content="(not sent to platforms)", received_at=datetime.now(UTC),
                      message_id=snowflake() if message_id == "auto" else message_id)
    planned = PlannedAction(action=action, duration_s=duration_s, reason=reason)
    return ActionRequest(idempotency_key=f"{case_id}:{action.value}", case_id=case_id, event=event, action=planned)


@pytest.fixture(scope="module")
def discord_server() -> Iterator[FakeDiscord]:
    with FakeDiscord() as server:
        yield server


@pytest.fixture(scope="module")
def twitch_server() -> Iterator[FakeTwitch]:
    with FakeTwitch() as server:
        yield server


@pytest.fixture
def discord(discord_server: FakeDiscord) -> DiscordConnector:
    discord_server.reset()
    return DiscordConnector(token=discord_server.token, guild_id=discord_server.guild_id,
                            base_url=discord_server.base_url, timeout_s=2.0)


@pytest.fixture
def twitch(twitch_server: FakeTwitch) -> TwitchConnector:
    twitch_server.reset()
    return TwitchConnector(token=twitch_server.token, client_id=twitch_server.client_id,
                           moderator_id=twitch_server.moderator_id, base_url=twitch_server.base_url, timeout_s=2.0)


# --- Discord ------------------------------------------------------------------------------------


async def test_discord_delete_sends_auth_audit_reason_and_key_and_a_repeat_is_a_success(
        discord: DiscordConnector, discord_server: FakeDiscord) -> None:
    req = request(ActionType.DELETE)
    first = await discord.apply(req)
    again = await discord.apply(req)

    call = discord_server.calls[0]
    assert (call.method, call.path) == ("DELETE", f"/api/v10/channels/{req.event.channel_id}"
                                                  f"/messages/{req.event.message_id}")
    assert call.audit_reason == f"case {req.case_id}: {CLAUSE}"
    assert call.idempotency_key == req.idempotency_key
    assert first["status"] == 204 and again == {**again, "status": 404, "already": True}
    assert discord_server.deleted_messages == {req.event.message_id}
    assert discord_server.count("delete", req.event.message_id or "", effective_only=True) == 1


async def test_discord_timeout_patches_the_member_until_now_plus_duration_and_revert_lifts_it(
        discord: DiscordConnector, discord_server: FakeDiscord) -> None:
    req = request(ActionType.TIMEOUT, duration_s=600)
    before = datetime.now(UTC)
    await discord.apply(req)

    call = discord_server.calls[-1]
    assert (call.method, call.path) == ("PATCH", f"/api/v10/guilds/{discord_server.guild_id}"
                                                 f"/members/{req.event.author_id}")
    until = datetime.fromisoformat(call.body["communication_disabled_until"])
    assert before + timedelta(seconds=599) <= until <= datetime.now(UTC) + timedelta(seconds=601)
    assert req.event.author_id in discord_server.timeouts

    reverted = await discord.revert(req)
    assert discord_server.calls[-1].body == {"communication_disabled_until": None}
    assert reverted["status"] == 200 and discord_server.timeouts == {}


async def test_discord_ban_puts_the_ban_and_revert_unbans_once(
        discord: DiscordConnector, discord_server: FakeDiscord) -> None:
    req = request(ActionType.BAN)
    await discord.apply(req)
    await discord.apply(req)  # Discord answers 204 again: a repeat changes nothing

    ban = discord_server.calls[0]
    assert (ban.method, ban.path, ban.body) == (
        "PUT", f"/api/v10/guilds/{discord_server.guild_id}/bans/{req.event.author_id}", {"delete_message_seconds": 0})
    assert discord_server.count("ban", req.event.author_id, effective_only=True) == 1

    first, second = await discord.revert(req), await discord.revert(req)
    assert discord_server.calls[-1].method == "DELETE"
    assert first["status"] == 204 and second["already"] is True and second["code"] == 10026
    assert discord_server.bans == set()
    assert discord_server.count("unban", req.event.author_id, effective_only=True) == 1


async def test_discord_lifting_the_timeout_of_someone_gone_is_a_success_but_timing_them_out_is_not(
        discord: DiscordConnector, discord_server: FakeDiscord) -> None:
    req = request(ActionType.TIMEOUT, duration_s=60)
    banned_by_another_case = ActionRequest(idempotency_key="other:ban", case_id="other", event=req.event,
                                           action=PlannedAction(action=ActionType.BAN))
    await discord.apply(banned_by_another_case)
    lifted = await discord.revert(req)
    assert lifted["already"] is True and lifted["code"] == 10007
    with pytest.raises(ConnectorConfigError, match="Unknown Member"):
        await discord.apply(req)


async def test_discord_warning_opens_a_dm_and_sends_it_once_per_idempotency_key(
        discord: DiscordConnector, discord_server: FakeDiscord) -> None:
    req = request(ActionType.WARN)
    result = await discord.apply(req)
    await discord.apply(req)  # a repeat after a crash: same nonce, Discord returns the first message

    open_dm, send = discord_server.calls[0], discord_server.calls[1]
    assert (open_dm.method, open_dm.path, open_dm.body) == (
        "POST", "/api/v10/users/@me/channels", {"recipient_id": req.event.author_id})
    assert (send.method, send.path) == ("POST", f"/api/v10/channels/{result['dm_channel_id']}/messages")
    assert CLAUSE in send.body["content"] and send.body["enforce_nonce"] is True
    assert len(discord_server.dms) == 1


async def test_discord_delete_and_warning_are_not_reversible_and_make_no_call(
        discord: DiscordConnector, discord_server: FakeDiscord) -> None:
    for action in (ActionType.DELETE, ActionType.WARN):
        assert (await discord.revert(request(action)))["reversible"] is False
    assert discord_server.calls == []


async def test_discord_429_carries_retry_after_from_the_body(
        discord: DiscordConnector, discord_server: FakeDiscord) -> None:
    discord_server.configure(rate_limit_next=1, retry_after_s=1.75)
    req = request(ActionType.BAN)
    with pytest.raises(ConnectorError) as err:
        await discord.apply(req)
    assert err.value.retry_after_s == 1.75
    await discord.apply(req)  # the next call goes through
    assert discord_server.bans == {req.event.author_id}


async def test_discord_bad_token_is_a_config_error_naming_the_setting(discord_server: FakeDiscord) -> None:
    discord_server.reset()
    wrong = DiscordConnector(token="revoked", guild_id=discord_server.guild_id, base_url=discord_server.base_url)
    with pytest.raises(ConnectorConfigError, match="401.*DISCORD_BOT_TOKEN"):
        await wrong.apply(request(ActionType.BAN))
    assert discord_server.bans == set()


async def test_discord_unknown_guild_is_a_config_error(discord_server: FakeDiscord) -> None:
    discord_server.reset()
    wrong = DiscordConnector(token=discord_server.token, guild_id="123456789012345678",
                             base_url=discord_server.base_url)
    with pytest.raises(ConnectorConfigError, match="Unknown Guild"):
        await wrong.apply(request(ActionType.BAN))


async def test_discord_5xx_and_a_hung_call_are_retryable(
        discord: DiscordConnector, discord_server: FakeDiscord) -> None:
    discord_server.configure(fail_next=[502])
    with pytest.raises(ConnectorError, match="502") as err:
        await discord.apply(request(ActionType.BAN))
    assert err.value.retry_after_s is None

    impatient = DiscordConnector(token=discord_server.token, guild_id=discord_server.guild_id,
                                 base_url=discord_server.base_url, timeout_s=0.3)
    discord_server.configure(hang=True)
    req = request(ActionType.BAN)
    try:
        with pytest.raises(ConnectorError, match="unreachable") as hung:
            await impatient.apply(req)
        # The platform processed the request; only the answer was lost: the ban is in place.
        assert hung.value.maybe_applied and discord_server.bans == {req.event.author_id}
    finally:
        discord_server.reset()


async def test_a_slow_answer_times_the_client_out_but_the_ban_landed_and_reads_back(
        discord: DiscordConnector, discord_server: FakeDiscord) -> None:
    impatient = DiscordConnector(token=discord_server.token, guild_id=discord_server.guild_id,
                                 base_url=discord_server.base_url, timeout_s=0.3)
    discord_server.configure(latency_s=1.0, slow_actions=["ban"])  # only the ban's answer is slow
    req = request(ActionType.BAN)
    with pytest.raises(ConnectorError) as err:
        await impatient.apply(req)
    evidence = await impatient.check(req)
    assert err.value.maybe_applied and evidence is not None and evidence["already_banned"] is False
    assert discord_server.count("ban", req.event.author_id) == 1


async def test_only_answers_that_prove_nothing_happened_are_not_maybe_applied(
        discord: DiscordConnector, discord_server: FakeDiscord) -> None:
    discord_server.configure(rate_limit_next=1, fail_next=[503])
    with pytest.raises(ConnectorError) as limited:
        await discord.apply(request(ActionType.BAN))
    with pytest.raises(ConnectorError) as failed:
        await discord.apply(request(ActionType.BAN))
    closed = DiscordConnector(token="t", guild_id="100000000000000001", base_url=f"http://127.0.0.1:{free_port()}/api/v10")
    with pytest.raises(ConnectorError) as refused:
        await closed.apply(request(ActionType.BAN))
    assert (limited.value.maybe_applied, failed.value.maybe_applied, refused.value.maybe_applied) == (
        False, True, False)


@pytest.mark.parametrize("action", [ActionType.BAN, ActionType.TIMEOUT, ActionType.DELETE, ActionType.WARN])
async def test_discord_check_reads_each_effect_back(
        discord: DiscordConnector, discord_server: FakeDiscord, action: ActionType) -> None:
    req = request(action, duration_s=600)
    assert await discord.check(req) is None
    applied = await discord.apply(req)
    evidence = await discord.check(req)

    assert evidence is not None and evidence["reconciled"] is True and evidence["call"].startswith("GET ")
    mutating = [c for c in discord_server.calls if c.method != "GET" and c.action != "open_dm"]
    assert len(mutating) == 1, [(c.method, c.path) for c in discord_server.calls]
    if action == ActionType.WARN:
        assert evidence["message_id"] == applied["message_id"]
        assert discord_server.calls[-1].query == {"limit": "50"}


async def test_discord_check_tells_a_ban_this_case_did_not_place(
        discord: DiscordConnector, discord_server: FakeDiscord) -> None:
    req = request(ActionType.BAN)
    other = ActionRequest(idempotency_key="other:ban", case_id="other", event=req.event, action=req.action)
    await discord.apply(other)
    assert (await discord.check(req) or {})["already_banned"] is True
    assert (await discord.check(other) or {})["already_banned"] is False


async def test_discord_check_revert_sees_the_unban_and_the_lifted_timeout(
        discord: DiscordConnector, discord_server: FakeDiscord) -> None:
    for action in (ActionType.BAN, ActionType.TIMEOUT):
        req = request(action, duration_s=600)
        await discord.apply(req)
        assert await discord.check_revert(req) is None, action
        await discord.revert(req)
        assert (await discord.check_revert(req) or {}).get("reconciled") is True, action
    assert await discord.check_revert(request(ActionType.DELETE)) is None


async def test_discord_an_expired_timeout_is_not_in_place(discord_server: FakeDiscord) -> None:
    discord_server.reset()
    later = datetime.now(UTC) + timedelta(hours=1)
    connector = DiscordConnector(token=discord_server.token, guild_id=discord_server.guild_id,
                                 base_url=discord_server.base_url, now=lambda: later)
    req = request(ActionType.TIMEOUT, duration_s=60)
    await DiscordConnector(token=discord_server.token, guild_id=discord_server.guild_id,
                           base_url=discord_server.base_url).apply(req)
    assert await connector.check(req) is None
    assert (await connector.check_revert(req) or {}).get("communication_disabled_until", "x") is None


def test_discord_warning_names_the_case_whatever_the_template() -> None:
    req = request(ActionType.WARN)
    default = DiscordConnector(token="t", guild_id="100000000000000001")
    custom = DiscordConnector(token="t", guild_id="100000000000000001", warning_template="Be nice ({reason}).")
    long = DiscordConnector(token="t", guild_id="100000000000000001", warning_template="x" * 3000 + " {case_id}")
    assert default.warning_text(req).endswith(f"Reference: case {req.case_id}.")
    assert custom.warning_text(req) == f"Be nice ({CLAUSE}). (case {req.case_id})"
    assert len(long.warning_text(req)) == 2000 and long.warning_text(req).endswith(f"(case {req.case_id})")
    with pytest.raises(ConnectorConfigError, match="case_id"):
        DiscordConnector(token="t", guild_id="100000000000000001", warning_template="{user}")


async def test_discord_audit_reason_is_url_encoded(discord: DiscordConnector, discord_server: FakeDiscord) -> None:
    req = request(ActionType.BAN, reason="H2: menace — « tu vas voir »")
    await discord.apply(req)
    assert discord_server.calls[0].audit_reason == f"case {req.case_id}: H2: menace — « tu vas voir »"


# --- Twitch -------------------------------------------------------------------------------------


async def test_twitch_delete_uses_the_channel_as_broadcaster_and_a_repeat_is_a_success(
        twitch: TwitchConnector, twitch_server: FakeTwitch) -> None:
    req = request(ActionType.DELETE, platform="twitch")
    await twitch.apply(req)
    again = await twitch.apply(req)

    call = twitch_server.calls[0]
    assert (call.method, call.path) == ("DELETE", "/helix/moderation/chat")
    assert call.query == {"broadcaster_id": req.event.channel_id, "moderator_id": twitch_server.moderator_id,
                          "message_id": req.event.message_id}
    assert call.idempotency_key == req.idempotency_key
    assert again["status"] == 404 and again["already"] is True
    assert twitch_server.deleted_messages == {req.event.message_id}


async def test_twitch_never_deletes_without_a_message_id(twitch: TwitchConnector, twitch_server: FakeTwitch) -> None:
    result = await twitch.apply(request(ActionType.DELETE, platform="twitch", message_id=None))
    assert "no message_id" in result["skipped"] and twitch_server.calls == []


async def test_twitch_timeout_posts_a_ban_with_duration_and_revert_unbans(
        twitch: TwitchConnector, twitch_server: FakeTwitch) -> None:
    req = request(ActionType.TIMEOUT, platform="twitch", duration_s=600)
    await twitch.apply(req)

    call = twitch_server.calls[0]
    assert (call.method, call.path) == ("POST", "/helix/moderation/bans")
    assert call.query == {"broadcaster_id": req.event.channel_id, "moderator_id": twitch_server.moderator_id}
    assert call.body == {"data": {"user_id": req.event.author_id, "duration": 600,
                                  "reason": f"{CLAUSE} (case {req.case_id})"}}
    assert req.event.author_id in twitch_server.timeouts

    await twitch.revert(req)
    unban = twitch_server.calls[-1]
    assert (unban.method, unban.path) == ("DELETE", "/helix/moderation/bans")
    assert unban.query["user_id"] == req.event.author_id and twitch_server.timeouts == {}


async def test_twitch_ban_has_no_duration_and_already_banned_is_a_success(
        twitch: TwitchConnector, twitch_server: FakeTwitch) -> None:
    req = request(ActionType.BAN, platform="twitch")
    first = await twitch.apply(req)
    second = await twitch.apply(req)

    assert "duration" not in twitch_server.calls[0].body["data"]
    assert first["already_banned"] is False and second["already_banned"] is True
    assert twitch_server.calls[1].status == 400
    assert twitch_server.count("ban", req.event.author_id, effective_only=True) == 1

    await twitch.revert(req)
    not_banned = await twitch.revert(req)
    assert not_banned["already"] is True and twitch_server.bans == set()


async def test_twitch_warning_posts_user_and_reason(twitch: TwitchConnector, twitch_server: FakeTwitch) -> None:
    req = request(ActionType.WARN, platform="twitch")
    await twitch.apply(req)
    call = twitch_server.calls[0]
    assert (call.method, call.path) == ("POST", "/helix/moderation/warnings")
    assert call.body == {"data": {"user_id": req.event.author_id, "reason": f"{CLAUSE} (case {req.case_id})"}}
    assert twitch_server.warnings[0]["user_id"] == req.event.author_id
    assert (await twitch.revert(req))["reversible"] is False and len(twitch_server.calls) == 1


@pytest.mark.parametrize("action", [ActionType.BAN, ActionType.TIMEOUT])
async def test_twitch_check_lists_the_banned_user_and_check_revert_sees_the_unban(
        twitch: TwitchConnector, twitch_server: FakeTwitch, action: ActionType) -> None:
    req = request(action, platform="twitch", duration_s=600)
    assert await twitch.check(req) is None
    await twitch.apply(req)
    evidence = await twitch.check(req)

    assert evidence is not None and evidence["already_banned"] is False
    assert (evidence["expires_at"] == "") is (action == ActionType.BAN)
    read = twitch_server.calls[-1]
    assert (read.method, read.path, read.query) == (
        "GET", "/helix/moderation/banned", {"broadcaster_id": req.event.channel_id, "user_id": req.event.author_id})
    assert await twitch.check_revert(req) is None
    await twitch.revert(req)
    assert (await twitch.check_revert(req) or {}).get("reconciled") is True
    assert twitch_server.count(action.value, req.event.author_id) == 1


async def test_twitch_a_timeout_is_not_a_ban_but_a_ban_covers_a_timeout(
        twitch: TwitchConnector, twitch_server: FakeTwitch) -> None:
    timeout = request(ActionType.TIMEOUT, platform="twitch", duration_s=600)
    ban = ActionRequest(idempotency_key=f"{timeout.case_id}:ban", case_id=timeout.case_id, event=timeout.event,
                        action=PlannedAction(action=ActionType.BAN, reason=CLAUSE))
    await twitch.apply(timeout)
    assert await twitch.check(ban) is None
    await twitch.apply(ban)
    assert (await twitch.check(timeout) or {}).get("expires_at") == ""


async def test_twitch_deletes_and_warnings_cannot_be_read_back(
        twitch: TwitchConnector, twitch_server: FakeTwitch) -> None:
    for action in (ActionType.DELETE, ActionType.WARN):
        with pytest.raises(CannotCheck, match="Helix has no API"):
            await twitch.check(request(action, platform="twitch"))
    assert await twitch.check(request(ActionType.DELETE, platform="twitch", message_id=None)) is None
    assert twitch_server.calls == []


async def test_twitch_429_waits_until_ratelimit_reset(twitch: TwitchConnector, twitch_server: FakeTwitch) -> None:
    twitch_server.configure(rate_limit_next=1, retry_after_s=3)
    with pytest.raises(ConnectorError) as err:
        await twitch.apply(request(ActionType.BAN, platform="twitch"))
    assert err.value.retry_after_s is not None and 2.0 <= err.value.retry_after_s <= 4.0


async def test_twitch_token_of_another_user_is_a_config_error(twitch_server: FakeTwitch) -> None:
    twitch_server.reset()
    wrong = TwitchConnector(token=twitch_server.token, client_id=twitch_server.client_id, moderator_id="999",
                            base_url=twitch_server.base_url)
    with pytest.raises(ConnectorConfigError, match="401.*moderator_id"):
        await wrong.apply(request(ActionType.BAN, platform="twitch"))
    bad_client = TwitchConnector(token=twitch_server.token, client_id="other", base_url=twitch_server.base_url,
                                 moderator_id=twitch_server.moderator_id)
    with pytest.raises(ConnectorConfigError, match="Client ID"):
        await bad_client.apply(request(ActionType.BAN, platform="twitch"))
    assert twitch_server.bans == set()


# --- webhook, log and routing -------------------------------------------------------------------


async def test_webhook_revert_posts_a_signed_revert_action() -> None:
    seen: list[httpx.Request] = []

    def receiver(r: httpx.Request) -> httpx.Response:
        seen.append(r)
        return httpx.Response(200, text="ok")

    hook = WebhookConnector("http://receiver.test/hook", "s3cret", client=httpx.AsyncClient(
        transport=httpx.MockTransport(receiver)))
    req = request(ActionType.BAN)
    await hook.revert(req)
    assert (await hook.revert(request(ActionType.DELETE)))["reversible"] is False

    (sent,) = seen
    # signed over timestamp, idempotency key and body
    signed = (sent.headers["X-Safety-Timestamp"].encode() + b"." + req.idempotency_key.encode() + b"." + sent.content)
    expected = "sha256=" + hmac.new(b"s3cret", signed, hashlib.sha256).hexdigest()
    assert sent.headers["X-Safety-Signature"] == expected
    assert verify_signature(b"s3cret", sent.headers, sent.content) == req.idempotency_key
    assert json.loads(sent.content)["action"] == "revert_ban"
    assert sent.headers["Idempotency-Key"] == req.idempotency_key
    # The receiver deduplicates by Idempotency-Key: nothing to read back, a retry simply posts again.
    assert await hook.check(req) is None and await hook.check_revert(req) is None and len(seen) == 1


def test_router_picks_the_platform_connector_only_when_configured() -> None:
    settings = ConnectorSettings(discord_bot_token=SecretStr("t"), discord_guild_id="900000000000000001")
    router = build_router(settings)
    assert router.for_platform("Discord").name == "discord"
    assert router.for_platform("twitch").name == "log"
    assert router.for_platform("telegram").name == "log"
    assert isinstance(build_connector(settings, "discord"), DiscordConnector)
    assert isinstance(build_connector(ConnectorSettings(), "discord"), LogConnector)


def test_a_half_configured_platform_is_refused_at_start() -> None:
    with pytest.raises(ConnectorConfigError, match="DISCORD_GUILD_ID"):
        build_router(ConnectorSettings(discord_bot_token=SecretStr("t")))
    with pytest.raises(ConnectorConfigError, match="TWITCH_CLIENT_ID.*TWITCH_MODERATOR_ID"):
        build_router(ConnectorSettings(twitch_token=SecretStr("t")))


# --- ids and paths at the platform edge ---------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("message_id", ".."), ("message_id", "../.."), ("message_id", "%2e%2e"), ("message_id", "123/../456"),
    ("message_id", "1234567890123456789012"), ("author_id", "user_123"), ("author_id", "../../channels/1"),
    ("channel_id", "general"), ("author_id", "99999999999999999999"),  # 20 digits but over 2**64
])
async def test_discord_ids_must_be_snowflakes_and_no_request_is_sent_otherwise(
        discord: DiscordConnector, discord_server: FakeDiscord, field: str, value: str) -> None:
    base = request(ActionType.DELETE if field != "author_id" else ActionType.BAN)
    req = dataclasses.replace(base, event=base.event.model_copy(update={field: value}))
    with pytest.raises(ConnectorConfigError, match="not a snowflake"):
        await discord.apply(req)
    with pytest.raises(ConnectorConfigError, match="not a snowflake"):
        await discord.check(req)
    assert discord_server.calls == []  # the channel itself was never addressed


async def test_discord_warn_refuses_a_bad_author_before_opening_a_dm(
        discord: DiscordConnector, discord_server: FakeDiscord) -> None:
    base = request(ActionType.WARN)
    req = dataclasses.replace(base, event=base.event.model_copy(update={"author_id": "1/../../guilds"}))
    with pytest.raises(ConnectorConfigError, match="user id"):
        await discord.apply(req)
    assert discord_server.calls == []


def test_discord_guild_setting_must_be_a_snowflake() -> None:
    with pytest.raises(ConnectorConfigError, match="DISCORD_GUILD_ID"):
        DiscordConnector(token="t", guild_id="../1")


def test_webhook_refuses_to_run_without_a_secret_outside_development() -> None:
    hook = ConnectorSettings(kind="webhook", webhook_url="http://receiver.test/hook")
    with pytest.raises(ConnectorConfigError, match="WEBHOOK_SECRET"):
        build_router(hook)
    assert build_router(hook, development=True).for_platform("any").name == "webhook"
    with pytest.raises(ValueError, match="WEBHOOK_SECRET"):
        production_settings(connector=hook)


async def test_webhook_without_a_secret_in_development_is_unsigned_not_signed_with_an_empty_key() -> None:
    seen: list[httpx.Request] = []
    hook = WebhookConnector("http://receiver.test/hook", "", require_secret=False, client=httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200))))
    await hook.apply(request(ActionType.BAN))
    assert "X-Safety-Signature" not in seen[0].headers


async def test_webhook_receivers_refuse_replays_outside_the_window_and_swapped_keys() -> None:
    seen: list[httpx.Request] = []
    hook = WebhookConnector("http://receiver.test/hook", "s3cret", client=httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200))))
    req = request(ActionType.BAN)
    await hook.apply(req)
    (sent,) = seen
    ts = int(sent.headers["X-Safety-Timestamp"])
    assert verify_signature(b"s3cret", sent.headers, sent.content, now=ts + REPLAY_WINDOW_S) == req.idempotency_key
    with pytest.raises(SignatureError, match="replay window"):  # the same signed request, replayed later
        verify_signature(b"s3cret", sent.headers, sent.content, now=ts + REPLAY_WINDOW_S + 1)
    swapped = {**sent.headers, "Idempotency-Key": f"{uuid.uuid4()}:ban"}  # made to look like a new action
    with pytest.raises(SignatureError, match="bad signature"):
        verify_signature(b"s3cret", swapped, sent.content)
    with pytest.raises(SignatureError, match="bad signature"):
        verify_signature(b"other", sent.headers, sent.content)
    with pytest.raises(SignatureError, match="missing"):
        verify_signature(b"s3cret", {}, sent.content)
