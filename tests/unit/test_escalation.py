"""Escalation rules: weights, decay, the ladder and the brigading window (pure functions, no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.escalation import (
    BrigadingConfig,
    EscalationConfig,
    Incident,
    LadderRung,
    Strike,
    active_strikes,
    default_ladder,
    distinct_authors,
    incidents_in_window,
    is_brigading,
    ladder_for,
    level_at,
    level_for_score,
    rung_actions,
    session_expires_at,
    strike_weight,
    weighted_score,
)
from domain.models import ActionType, HarmCategory, Severity

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
CFG = EscalationConfig()  # 30-day window, default ladder


def _strike(n: int, at: datetime, category: HarmCategory = HarmCategory.TARGETED_INSULT,
            severity: Severity = Severity.MEDIUM, config: EscalationConfig = CFG) -> Strike:
    return Strike(case_id=f"c{n}", category=category, severity=severity, at=at,
                  weight=strike_weight(category, severity, config))


def test_weights_follow_category_and_severity() -> None:
    assert strike_weight(HarmCategory.TARGETED_INSULT, Severity.MEDIUM, CFG) == 1.0
    assert strike_weight(HarmCategory.PROFANITY, Severity.LOW, CFG) == 0.25
    assert strike_weight(HarmCategory.THREAT, Severity.CRITICAL, CFG) == 6.0
    assert strike_weight(HarmCategory.NONE, Severity.CRITICAL, CFG) == 0.0


def test_five_offences_climb_the_default_ladder_in_order() -> None:
    ladder = ladder_for("discord", CFG)
    strikes: list[Strike] = []
    seen = []
    for n in range(6):
        strikes.append(_strike(n, T0 + n * timedelta(minutes=1)))
        now = T0 + n * timedelta(minutes=1)
        level = level_at(strikes, now, "discord", CFG)
        seen.append([(a.action, a.duration_s) for a in rung_actions(ladder, level)])
    assert seen == [
        [(ActionType.WARN, None)],
        [(ActionType.DELETE, None), (ActionType.WARN, None)],
        [(ActionType.TIMEOUT, 600)],
        [(ActionType.TIMEOUT, 86400)],
        [(ActionType.BAN, None)],
        [(ActionType.BAN, None)],  # the ladder tops out, it never wraps
    ]


def test_a_critical_threat_jumps_rungs() -> None:
    strikes = [_strike(1, T0, HarmCategory.THREAT, Severity.CRITICAL)]
    assert level_at(strikes, T0, "discord", CFG) == 5


def test_decay_lowers_the_level_and_expires_strikes() -> None:
    strikes = [_strike(1, T0), _strike(2, T0 + timedelta(minutes=1))]
    assert level_at(strikes, T0 + timedelta(minutes=1), "discord", CFG) == 2
    # Half-way through the window the two strikes weigh one offence together.
    assert abs(weighted_score(strikes, T0 + 15 * DAY, CFG) - 1.0) < 1e-3
    assert active_strikes(strikes, T0 + 30 * DAY + timedelta(minutes=1), CFG) == []
    assert level_at(strikes, T0 + 31 * DAY, "discord", CFG) == 0
    # A new offence after the window starts the ladder again.
    fresh = [*active_strikes(strikes, T0 + 31 * DAY, CFG), _strike(3, T0 + 31 * DAY)]
    assert level_at(fresh, T0 + 31 * DAY, "discord", CFG) == 1


def test_ladders_are_configurable_per_platform() -> None:
    twitch = [LadderRung(actions=[ActionType.TIMEOUT], duration_s=60, label="1 min"),
              LadderRung(actions=[ActionType.BAN], label="ban")]
    cfg = EscalationConfig(ladders={"twitch": twitch})
    assert ladder_for("twitch", cfg) == twitch
    assert ladder_for("discord", cfg) == default_ladder()
    strikes = [_strike(1, T0, config=cfg), _strike(2, T0, config=cfg), _strike(3, T0, config=cfg)]
    assert level_at(strikes, T0, "twitch", cfg) == 2
    assert [a.action for a in rung_actions(twitch, 1)] == [ActionType.TIMEOUT]
    assert rung_actions(twitch, 1)[0].duration_s == 60


def test_idle_session_expires_a_window_after_the_last_strike() -> None:
    strikes = [_strike(1, T0), _strike(2, T0 + DAY)]
    assert session_expires_at(strikes, T0 + DAY, CFG) == T0 + 31 * DAY


def test_brigading_needs_the_configured_number_of_distinct_authors() -> None:
    cfg = BrigadingConfig()
    incidents = [Incident(author_id=f"a{i}", case_id=f"c{i}", at=T0 + timedelta(seconds=2 * i)) for i in range(20)]
    now = incidents[-1].at
    assert distinct_authors(incidents, now, cfg.window_s) == 20 and is_brigading(20, cfg)
    assert distinct_authors(incidents[:19], now, cfg.window_s) == 19 and not is_brigading(19, cfg)
    # The same author twenty times is one author.
    same = [Incident(author_id="a", case_id=f"c{i}", at=now) for i in range(20)]
    assert distinct_authors(same, now, cfg.window_s) == 1
    # Twenty authors spread over ten minutes are not a brigade.
    spread = [Incident(author_id=f"a{i}", case_id=f"c{i}", at=T0 + timedelta(seconds=30 * i)) for i in range(20)]
    assert distinct_authors(spread, spread[-1].at, cfg.window_s) == 2


# --- properties ----------------------------------------------------------------------------------

_categories = st.sampled_from(list(HarmCategory))
_severities = st.sampled_from(list(Severity))
_offsets = st.integers(min_value=0, max_value=60 * 86400)
_strikes = st.lists(st.tuples(_categories, _severities, _offsets), max_size=30).map(
    lambda xs: [_strike(i, T0 + timedelta(seconds=o), c, s) for i, (c, s, o) in enumerate(xs)])


@settings(max_examples=200, deadline=None)
@given(strikes=_strikes, t1=_offsets, later=st.integers(min_value=0, max_value=60 * 86400))
def test_decay_never_increases_the_score(strikes: list[Strike], t1: int, later: int) -> None:
    now = T0 + timedelta(seconds=t1)
    then = now + timedelta(seconds=later)
    assert weighted_score(strikes, then, CFG) <= weighted_score(strikes, now, CFG) + 1e-9
    assert level_at(strikes, then, "discord", CFG) <= level_at(strikes, now, "discord", CFG)


@settings(max_examples=200, deadline=None)
@given(strikes=_strikes, extra=st.tuples(_categories, _severities), t=_offsets)
def test_another_offence_never_lowers_the_level(strikes: list[Strike], extra: tuple[HarmCategory, Severity],
                                               t: int) -> None:
    now = T0 + timedelta(seconds=t)
    more = [*strikes, _strike(999, now, *extra)]
    assert level_at(more, now, "discord", CFG) >= level_at(strikes, now, "discord", CFG)


@given(a=st.floats(min_value=0, max_value=50), b=st.floats(min_value=0, max_value=50),
       size=st.integers(min_value=1, max_value=10))
def test_ladder_is_monotone_in_weighted_offences(a: float, b: float, size: int) -> None:
    lo, hi = sorted((a, b))
    assert 0 <= level_for_score(lo, size) <= level_for_score(hi, size) <= size


@given(n=st.integers(min_value=0, max_value=20))
def test_nth_offence_gets_nth_rung(n: int) -> None:
    assert level_for_score(float(n), 5) == min(n, 5)


@given(incidents=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 300)), max_size=60),
       window=st.integers(1, 120), now=st.integers(0, 400))
def test_distinct_authors_never_exceed_incidents(incidents: list[tuple[int, int]], window: int, now: int) -> None:
    items = [Incident(author_id=f"a{a}", case_id=f"c{i}", at=T0 + timedelta(seconds=s))
             for i, (a, s) in enumerate(incidents)]
    at = T0 + timedelta(seconds=now)
    assert distinct_authors(items, at, window) <= len(incidents_in_window(items, at, window)) <= len(items)
