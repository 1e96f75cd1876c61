"""ActionActivities against the real PostgreSQL ledger and the fake Discord and Twitch servers.

What a user would notice: a retried or restarted activity never sanctions twice, a crash between
the ledger claim and the platform call repeats the call once with the same key, shadow mode touches
no platform, and an upheld appeal unbans / lifts the timeout exactly once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.actions import ActionActivities
from core.connectors import ActionRequest, ConnectorRouter, DiscordConnector, LogConnector, TwitchConnector
from core.testing.fake_platforms import FakeDiscord, FakeTwitch
from domain.actions import RevertInput
from domain.models import ActInput, ActionType, ActResult, ChatEvent, PlannedAction

CLAUSE = "H3: threat (critical)"


def snowflake() -> str:
    return str(uuid.uuid4().int)[:18]


def event(platform: str = "discord", author_id: str | None = None) -> ChatEvent:
    return ChatEvent(event_id=str(uuid.uuid4()), platform=platform, channel_id=snowflake(),
                     author_id=author_id or snowflake(), content="(not sent)", message_id=snowflake(),
                     received_at=datetime.now(UTC))


def act_input(ev: ChatEvent, *actions: ActionType, shadow: bool = False) -> ActInput:
    planned = [PlannedAction(action=a, duration_s=600 if a == ActionType.TIMEOUT else None, reason=CLAUSE)
               for a in actions]
    return ActInput(case_id=ev.event_id, event=ev, actions=planned, shadow=shadow)


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeDiscord, FakeTwitch]]:
    with FakeDiscord() as discord, FakeTwitch() as twitch:
        yield discord, twitch


@pytest.fixture
def discord(fakes: tuple[FakeDiscord, FakeTwitch]) -> FakeDiscord:
    fakes[0].reset()
    return fakes[0]


@pytest.fixture
def twitch(fakes: tuple[FakeDiscord, FakeTwitch]) -> FakeTwitch:
    fakes[1].reset()
    return fakes[1]


@pytest.fixture
def acts(pool: asyncpg.Pool, discord: FakeDiscord, twitch: FakeTwitch) -> ActionActivities:
    router = ConnectorRouter(LogConnector(), {
        "discord": DiscordConnector(token=discord.token, guild_id=discord.guild_id, base_url=discord.base_url,
                                    timeout_s=2.0),
        "twitch": TwitchConnector(token=twitch.token, client_id=twitch.client_id, moderator_id=twitch.moderator_id,
                                  base_url=twitch.base_url, timeout_s=2.0),
    })
    return ActionActivities(pool, router)


async def execute(acts: ActionActivities, inp: ActInput) -> ActResult:
    return await ActivityEnvironment().run(acts.execute_actions, inp)


async def revert(acts: ActionActivities, ev: ChatEvent, reason: str = "appeal upheld") -> ActResult:
    return await ActivityEnvironment().run(acts.revert_actions, RevertInput(case_id=ev.event_id, event=ev,
                                                                            reason=reason))


async def ledger(pool: asyncpg.Pool, case_id: str) -> dict[str, tuple[str, str]]:
    rows = await pool.fetch("SELECT idempotency_key, status, connector FROM actions WHERE case_id = $1", case_id)
    return {r["idempotency_key"]: (r["status"], r["connector"]) for r in rows}


async def test_a_retry_after_success_makes_no_second_platform_call(
        acts: ActionActivities, discord: FakeDiscord, pool: asyncpg.Pool) -> None:
    ev = event()
    inp = act_input(ev, ActionType.DELETE, ActionType.BAN)
    first = await execute(acts, inp)
    retried = await execute(acts, inp)

    assert [o.status for o in first.outcomes] == ["applied", "applied"]
    assert [o.status for o in retried.outcomes] == ["duplicate", "duplicate"]
    assert discord.count("ban", ev.author_id) == 1 and discord.count("delete", ev.message_id or "") == 1
    assert await ledger(pool, ev.event_id) == {f"{ev.event_id}:delete": ("applied", "discord"),
                                               f"{ev.event_id}:ban": ("applied", "discord")}


async def test_a_crash_after_the_claim_repeats_once_with_the_same_key(
        acts: ActionActivities, discord: FakeDiscord, pool: asyncpg.Pool) -> None:
    ev = event()
    inp = act_input(ev, ActionType.BAN)
    key = f"{ev.event_id}:ban"
    req = ActionRequest(idempotency_key=key, case_id=ev.event_id, event=ev, action=inp.actions[0])
    # The worker claimed the row, reached Discord, and died before marking the row applied.
    assert await acts._claim(req, connector="discord", status="pending", label="ban", payload=req.payload()) is None
    await acts.router.apply(req)

    result = await execute(acts, inp)
    again = await execute(acts, inp)

    assert result.outcomes[0].status == "applied" and again.outcomes[0].status == "duplicate"
    assert [c.idempotency_key for c in discord.calls] == [key, key]
    assert discord.count("ban", ev.author_id, effective_only=True) == 1
    assert discord.bans == {ev.author_id}
    assert (await ledger(pool, ev.event_id))[key] == ("applied", "discord")


async def test_shadow_mode_records_but_calls_no_platform(
        acts: ActionActivities, discord: FakeDiscord, pool: asyncpg.Pool) -> None:
    ev = event()
    result = await execute(acts, act_input(ev, ActionType.DELETE, ActionType.BAN, shadow=True))
    assert [o.status for o in result.outcomes] == ["shadow", "shadow"]
    assert discord.calls == []
    assert {s for s, _ in (await ledger(pool, ev.event_id)).values()} == {"shadow"}
    assert (await revert(acts, ev)).outcomes == []  # nothing was applied, so nothing is undone


async def test_a_rate_limit_becomes_a_retryable_error_with_the_platform_delay(
        acts: ActionActivities, discord: FakeDiscord, pool: asyncpg.Pool) -> None:
    ev = event()
    inp = act_input(ev, ActionType.BAN)
    discord.configure(rate_limit_next=1, retry_after_s=7.5)
    with pytest.raises(ApplicationError) as err:
        await execute(acts, inp)
    assert err.value.type == "ConnectorError" and not err.value.non_retryable
    assert err.value.next_retry_delay == timedelta(seconds=7.5)
    assert (await ledger(pool, ev.event_id))[f"{ev.event_id}:ban"] == ("pending", "discord")

    assert (await execute(acts, inp)).outcomes[0].status == "applied"  # Temporal's retry
    assert discord.count("ban", ev.author_id, effective_only=True) == 1


async def test_a_rejected_token_fails_without_retry(pool: asyncpg.Pool, discord: FakeDiscord) -> None:
    wrong = DiscordConnector(token="revoked", guild_id=discord.guild_id, base_url=discord.base_url)
    acts = ActionActivities(pool, ConnectorRouter(LogConnector(), {"discord": wrong}))
    with pytest.raises(ApplicationError) as err:
        await execute(acts, act_input(event(), ActionType.BAN))
    assert err.value.type == "ConnectorConfigError" and err.value.non_retryable
    assert discord.bans == set()


async def test_each_platform_uses_its_own_connector_and_the_ledger_names_it(
        acts: ActionActivities, twitch: FakeTwitch, discord: FakeDiscord, pool: asyncpg.Pool) -> None:
    on_twitch, elsewhere = event("twitch"), event("telegram")
    t = await execute(acts, act_input(on_twitch, ActionType.TIMEOUT))
    e = await execute(acts, act_input(elsewhere, ActionType.BAN))

    assert t.outcomes[0].connector == "twitch" and on_twitch.author_id in twitch.timeouts
    assert e.outcomes[0].connector == "log" and e.outcomes[0].detail == "ban member"
    assert discord.calls == []
    assert (await ledger(pool, elsewhere.event_id))[f"{elsewhere.event_id}:ban"] == ("applied", "log")


async def test_revert_lifts_a_timeout_once_even_when_called_twice(
        acts: ActionActivities, discord: FakeDiscord, pool: asyncpg.Pool) -> None:
    ev = event()
    await execute(acts, act_input(ev, ActionType.DELETE, ActionType.TIMEOUT))
    assert ev.author_id in discord.timeouts

    first = await revert(acts, ev)
    second = await revert(acts, ev)

    assert {o.action: o.status for o in first.outcomes} == {ActionType.DELETE: "not_reversible",
                                                            ActionType.TIMEOUT: "reverted"}
    assert {o.status for o in second.outcomes} == {"duplicate"}
    assert discord.timeouts == {} and discord.count("lift_timeout", ev.author_id) == 1
    assert discord.calls[-1].audit_reason == f"case {ev.event_id}: appeal upheld"
    assert (await ledger(pool, ev.event_id))[f"{ev.event_id}:revert:timeout"] == ("applied", "discord")


async def test_revert_unbans_once_even_when_called_twice(
        acts: ActionActivities, discord: FakeDiscord, twitch: FakeTwitch) -> None:
    for platform, fake in (("discord", discord), ("twitch", twitch)):
        ev = event(platform)
        await execute(acts, act_input(ev, ActionType.DELETE, ActionType.BAN))
        assert fake.bans == {ev.author_id}

        await revert(acts, ev)
        await revert(acts, ev)

        assert fake.bans == set()
        assert fake.count("unban", ev.author_id) == 1, platform


async def test_revert_keeps_a_ban_another_case_still_holds(acts: ActionActivities, discord: FakeDiscord) -> None:
    user = snowflake()
    first, second = event(author_id=user), event(author_id=user)
    await execute(acts, act_input(first, ActionType.BAN))
    await execute(acts, act_input(second, ActionType.BAN))

    kept = await revert(acts, first)
    assert kept.outcomes[0].status == "kept" and second.event_id in kept.outcomes[0].detail
    assert discord.bans == {user} and discord.count("unban", user) == 0

    await revert(acts, second)  # the other case's appeal is upheld too: now the ban may go
    assert discord.bans == set()


async def test_daily_cap_withholds_automated_bans_but_not_a_moderators(pool: asyncpg.Pool) -> None:
    acts = ActionActivities(pool, LogConnector(), daily_caps={ActionType.BAN: 2})
    channel = f"raid-{uuid.uuid4().hex[:8]}"

    def ban(automated: bool = True, ch: str = channel) -> ActInput:
        ev = ChatEvent(event_id=str(uuid.uuid4()), platform="webhook", channel_id=ch, author_id=uuid.uuid4().hex,
                       content="x", received_at=datetime.now(UTC))
        return ActInput(case_id=ev.event_id, event=ev, actions=[PlannedAction(action=ActionType.BAN)],
                        automated=automated)

    env = ActivityEnvironment()
    statuses = [(await env.run(acts.execute_actions, ban())).outcomes[0].status for _ in range(3)]
    assert statuses == ["applied", "applied", "capped"]
    capped = ban()
    first = await env.run(acts.execute_actions, capped)
    again = await env.run(acts.execute_actions, capped)  # a retry stays withheld, never applied late
    assert first.outcomes[0].status == again.outcomes[0].status == "capped"
    assert "daily cap of 2 automated bans" in first.outcomes[0].detail
    assert (await env.run(acts.execute_actions, ban(automated=False))).outcomes[0].status == "applied"
    assert (await env.run(acts.execute_actions, ban(ch=channel + "-other"))).outcomes[0].status == "applied"
