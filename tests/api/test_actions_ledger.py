"""ActionActivities against the real PostgreSQL ledger and the fake Discord and Twitch servers.

What a user would notice: a retried or restarted activity never sanctions twice. An attempt killed
while its platform call was in flight leaves the row 'calling'; the retry reads the platform back and
calls again only if the effect is not there (and never, on Twitch, for a delete or a warning it cannot
read back: those become 'unconfirmed'). Shadow mode touches no platform, and an upheld appeal unbans /
lifts the timeout exactly once, even when the unban itself was interrupted.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial

import asyncpg
import pytest
from prometheus_client import REGISTRY
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.actions import ActionActivities
from activities.connectors import ActionRequest, ConnectorRouter, DiscordConnector, LogConnector, TwitchConnector
from domain.actions import RevertInput
from domain.models import ActInput, ActionType, ActResult, ChatEvent, PlannedAction
from tests.doubles.fake_platforms import FakeDiscord, FakeTwitch

CLAUSE = "H3: threat (critical)"

Fake = FakeDiscord | FakeTwitch


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


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def killed_mid_call(run: Callable[[], Awaitable[ActResult]], fake: Fake, action: str,
                          target: str | None) -> None:
    """Run one attempt until the platform has applied ``action`` (on ``target``; None = any) but before its
    answer arrives, then kill the attempt there (the answer hangs; the task is cancelled), as a SIGKILLed
    worker would die."""
    fake.configure(hang=True, slow_actions=[action])
    task = asyncio.ensure_future(run())
    try:
        await until(lambda: any(c.action == action and c.effective and target in (None, c.target)
                                for c in fake.calls))
    finally:
        task.cancel()
        fake.configure(hang=False, slow_actions=[])
    with pytest.raises(asyncio.CancelledError):
        await task


async def claim_as_calling(acts: ActionActivities, inp: ActInput, connector: str) -> str:
    """The row an attempt leaves when it died after marking 'calling' but before its request left."""
    planned = inp.actions[0]
    key = f"{inp.case_id}:{planned.action.value}"
    req = ActionRequest(idempotency_key=key, case_id=inp.case_id, event=inp.event, action=planned)
    assert await acts._claim(req, connector=connector, status="calling", label=planned.action.value,
                             payload=req.payload()) is None
    return key


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


async def test_a_crash_after_the_claim_but_before_the_call_just_calls(
        acts: ActionActivities, discord: FakeDiscord, pool: asyncpg.Pool) -> None:
    ev = event()
    inp = act_input(ev, ActionType.BAN)
    key = f"{ev.event_id}:ban"
    req = ActionRequest(idempotency_key=key, case_id=ev.event_id, event=ev, action=inp.actions[0])
    # 'pending': claimed, never called. The retry needs no read-back.
    assert await acts._claim(req, connector="discord", status="pending", label="ban", payload=req.payload()) is None

    result = await execute(acts, inp)

    assert result.outcomes[0].status == "applied"
    assert [(c.method, c.action) for c in discord.calls] == [("PUT", "ban")]
    assert (await ledger(pool, ev.event_id))[key] == ("applied", "discord")


@pytest.mark.parametrize("platform", ["discord", "twitch"])
async def test_a_ban_killed_mid_call_is_read_back_not_repeated(
        acts: ActionActivities, discord: FakeDiscord, twitch: FakeTwitch, pool: asyncpg.Pool, platform: str) -> None:
    fake: Fake = discord if platform == "discord" else twitch
    ev = event(platform)
    inp = act_input(ev, ActionType.BAN)
    key = f"{ev.event_id}:ban"
    await killed_mid_call(partial(execute, acts, inp), fake, "ban", ev.author_id)
    assert (await ledger(pool, ev.event_id))[key] == ("calling", platform)

    result = await execute(acts, inp)  # Temporal's retry, on a new worker
    again = await execute(acts, inp)

    assert result.outcomes[0].status == "applied", result.outcomes[0].detail
    assert "already in place after an interrupted attempt" in result.outcomes[0].detail
    assert again.outcomes[0].status == "duplicate"
    assert fake.count("ban", ev.author_id) == 1, [(c.method, c.path) for c in fake.calls]
    assert fake.bans == {ev.author_id}
    response = await pool.fetchval("SELECT response FROM actions WHERE idempotency_key = $1", key)
    assert response["reconciled"] is True and response["already_banned"] is False  # this case's own ban


async def test_a_timeout_and_a_delete_killed_mid_call_are_read_back_not_repeated(
        acts: ActionActivities, discord: FakeDiscord, pool: asyncpg.Pool) -> None:
    ev = event()
    for action, name, target in ((ActionType.TIMEOUT, "timeout", ev.author_id),
                                 (ActionType.DELETE, "delete", ev.message_id or "")):
        inp = act_input(ev, action)
        await killed_mid_call(partial(execute, acts, inp), discord, name, target)
        result = await execute(acts, inp)
        assert result.outcomes[0].status == "applied" and "interrupted attempt" in result.outcomes[0].detail
        assert discord.count(name, target) == 1, name
    assert ev.author_id in discord.timeouts and discord.deleted_messages == {ev.message_id}


async def test_a_discord_warning_killed_mid_call_is_found_in_the_dm_channel_not_sent_again(
        acts: ActionActivities, discord: FakeDiscord, pool: asyncpg.Pool) -> None:
    ev = event()
    inp = act_input(ev, ActionType.WARN)
    await killed_mid_call(partial(execute, acts, inp), discord, "send_message", None)

    result = await execute(acts, inp)

    assert result.outcomes[0].status == "applied", result.outcomes[0].detail
    assert len(discord.dms) == 1 and ev.event_id in discord.dms[0]["content"]
    assert [c.action for c in discord.calls].count("send_message") == 1
    assert "read_messages" in [c.action for c in discord.calls]


async def test_an_attempt_that_died_before_its_request_landed_calls_exactly_once(
        acts: ActionActivities, discord: FakeDiscord, twitch: FakeTwitch, pool: asyncpg.Pool) -> None:
    for platform, fake in (("discord", discord), ("twitch", twitch)):
        ev = event(platform)
        inp = act_input(ev, ActionType.BAN)
        key = await claim_as_calling(acts, inp, platform)

        result = await execute(acts, inp)

        assert result.outcomes[0].status == "applied" and "interrupted" not in result.outcomes[0].detail
        assert fake.count("ban", ev.author_id) == 1 and fake.bans == {ev.author_id}
        assert fake.calls[0].action.startswith("read_"), "the retry reads the platform back before calling"
        assert (await ledger(pool, ev.event_id))[key] == ("applied", platform)


@pytest.mark.parametrize("action", [ActionType.WARN, ActionType.DELETE])
async def test_a_twitch_warning_or_delete_killed_mid_call_is_unconfirmed_never_repeated(
        acts: ActionActivities, twitch: FakeTwitch, pool: asyncpg.Pool, action: ActionType) -> None:
    ev = event("twitch")
    inp = act_input(ev, action)
    name, target = ("warn", ev.author_id) if action == ActionType.WARN else ("delete", ev.message_id or "")
    await killed_mid_call(partial(execute, acts, inp), twitch, name, target)
    labels = {"connector": "twitch", "action": action.value}
    before = REGISTRY.get_sample_value("safety_actions_unconfirmed_total", labels) or 0.0

    first = await execute(acts, inp)
    again = await execute(acts, inp)  # a later retry of the activity (e.g. another action failed)

    for result in (first, again):
        assert result.outcomes[0].status == "unconfirmed"
        assert "may have reached twitch" in result.outcomes[0].detail
        assert "Helix has no API" in result.outcomes[0].detail
    assert twitch.count(name, target) == 1
    assert (await ledger(pool, ev.event_id))[f"{ev.event_id}:{action.value}"] == ("unconfirmed", "twitch")
    # Counted once (the alert ActionUnconfirmed fires on it), not again by the later retry.
    assert REGISTRY.get_sample_value("safety_actions_unconfirmed_total", labels) == before + 1


async def test_a_server_error_leaves_the_row_calling_and_the_retry_reads_back(
        acts: ActionActivities, discord: FakeDiscord, pool: asyncpg.Pool) -> None:
    ev = event()
    inp = act_input(ev, ActionType.BAN)
    discord.configure(fail_next=[502])
    with pytest.raises(ApplicationError) as err:
        await execute(acts, inp)
    assert err.value.type == "ConnectorError" and not err.value.non_retryable
    # A 5xx proves nothing either way: the retry reads back (nothing there) and calls.
    assert (await ledger(pool, ev.event_id))[f"{ev.event_id}:ban"] == ("calling", "discord")
    assert (await execute(acts, inp)).outcomes[0].status == "applied"
    assert [c.action for c in discord.calls] == ["ban", "read_ban", "ban"]
    assert discord.count("ban", ev.author_id, effective_only=True) == 1


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
    assert [c.action for c in discord.calls] == ["ban", "ban"]  # a 429 proves nothing landed: no read-back


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


@pytest.mark.parametrize("platform", ["discord", "twitch"])
async def test_an_unban_killed_mid_call_is_read_back_not_repeated(
        acts: ActionActivities, discord: FakeDiscord, twitch: FakeTwitch, pool: asyncpg.Pool, platform: str) -> None:
    fake: Fake = discord if platform == "discord" else twitch
    ev = event(platform)
    await execute(acts, act_input(ev, ActionType.BAN))
    await killed_mid_call(partial(revert, acts, ev), fake, "unban", ev.author_id)
    assert (await ledger(pool, ev.event_id))[f"{ev.event_id}:revert:ban"] == ("calling", platform)

    result = await revert(acts, ev)

    assert result.outcomes[0].status == "reverted" and "interrupted attempt" in result.outcomes[0].detail
    assert fake.count("unban", ev.author_id) == 1 and fake.bans == set()
    assert (await ledger(pool, ev.event_id))[f"{ev.event_id}:revert:ban"] == ("applied", platform)


async def test_a_timeout_lift_that_never_landed_is_made_once(
        acts: ActionActivities, discord: FakeDiscord, pool: asyncpg.Pool) -> None:
    ev = event()
    await execute(acts, act_input(ev, ActionType.TIMEOUT))
    key = f"{ev.event_id}:revert:timeout"
    # The revert attempt died after marking 'calling', before its PATCH left.
    await pool.execute("INSERT INTO actions (idempotency_key, case_id, platform, action, connector, status, request) "
                       "VALUES ($1, $2, 'discord', 'revert_timeout', 'discord', 'calling', '{}')", key, ev.event_id)

    result = await revert(acts, ev)

    assert result.outcomes[0].status == "reverted" and "interrupted" not in result.outcomes[0].detail
    assert discord.count("lift_timeout", ev.author_id) == 1 and discord.timeouts == {}
    assert [c.action for c in discord.calls][-2:] == ["read_member", "lift_timeout"]


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
