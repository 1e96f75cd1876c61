"""Escalation rules for the session workflows: strike weights, decay, the ladder, brigading windows.

Everything here is pure and deterministic: the current time is always passed in, nothing reads the
clock, settings or storage. The session workflows call these functions inside the sandbox, and the
config models travel in the workflow inputs, so every decision can be replayed from history.

How a level is reached
----------------------
Each strike weighs ``category_weights[category] * severity_multipliers[severity]`` (an ordinary
insult at medium severity weighs 1.0; a critical threat weighs 6.0). A strike's weight decays
linearly to zero over ``decay_window_s`` and the strike is dropped once fully decayed. The session's
score is the sum of the decayed weights, and its level is ``ceil(score)`` capped at the ladder's
length: the Nth weighted offence gets the Nth rung. A strike therefore counts towards the level
until it has fully decayed; decay decides how quickly old offences stop adding up with new ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from pydantic import Field

from domain.models import (  # the configs live with PolicyConfig; re-exported here
    ActionType,
    BrigadingConfig,
    DomainModel,
    EscalationConfig,
    HarmCategory,
    LadderRung,
    PlannedAction,
    Severity,
    default_ladder,
)

# Scores within this distance of an integer count as that integer (float sums of decayed weights).
_SCORE_EPSILON = 1e-6


class Strike(DomainModel):
    """A recorded offence, with the answer it got (returned again if the same case is retried)."""

    case_id: str
    category: HarmCategory
    severity: Severity
    weight: float
    at: datetime
    level: int = 0
    actions: list[PlannedAction] = Field(default_factory=list)


class Incident(DomainModel):
    """A harmful message aimed at a target."""

    author_id: str
    case_id: str
    at: datetime


# --- strikes -------------------------------------------------------------------------------------

def strike_weight(category: HarmCategory, severity: Severity, config: EscalationConfig) -> float:
    """Weight of one offence; 0 means it does not count (e.g. category ``none``)."""
    base = config.category_weights.get(category, 1.0)
    return max(0.0, base) * max(0.0, config.severity_multipliers.get(severity, 1.0))


def decay_factor(at: datetime, now: datetime, window: timedelta) -> float:
    """1.0 for a strike made now (or timestamped in the future), falling linearly to 0.0 at ``window``."""
    age = (now - at).total_seconds()
    if age <= 0:
        return 1.0
    return max(0.0, 1.0 - age / window.total_seconds())


def decayed_weight(strike: Strike, now: datetime, config: EscalationConfig) -> float:
    return strike.weight * decay_factor(strike.at, now, timedelta(seconds=config.decay_window_s))


def active_strikes(strikes: Iterable[Strike], now: datetime, config: EscalationConfig) -> list[Strike]:
    """Strikes that still carry weight at ``now`` (fully decayed ones are dropped), oldest first."""
    return sorted((s for s in strikes if decayed_weight(s, now, config) > 0.0), key=lambda s: s.at)


def weighted_score(strikes: Iterable[Strike], now: datetime, config: EscalationConfig) -> float:
    return sum(decayed_weight(s, now, config) for s in strikes)


def ladder_for(platform: str, config: EscalationConfig) -> list[LadderRung]:
    return config.ladders.get(platform) or config.default_ladder


def level_for_score(score: float, ladder_size: int) -> int:
    """0 for no weight; otherwise ``ceil(score)`` capped at the top rung (the ladder never wraps)."""
    if score <= _SCORE_EPSILON:
        return 0
    return min(ladder_size, max(1, math.ceil(score - _SCORE_EPSILON)))


def rung_actions(ladder: Sequence[LadderRung], level: int, *, why: str = "") -> list[PlannedAction]:
    """The planned actions of rung ``level`` (1-based); none for level 0."""
    if level <= 0:
        return []
    rung = ladder[min(level, len(ladder)) - 1]
    reason = f"strike level {level}/{len(ladder)} ({rung.label or '+'.join(a.value for a in rung.actions)})"
    if why:
        reason = f"{reason}: {why}"
    return [PlannedAction(action=a, duration_s=rung.duration_s if a == ActionType.TIMEOUT else None, reason=reason)
            for a in rung.actions]


def level_at(strikes: Iterable[Strike], now: datetime, platform: str, config: EscalationConfig) -> int:
    return level_for_score(weighted_score(strikes, now, config), len(ladder_for(platform, config)))


def session_expires_at(strikes: Iterable[Strike], last_activity: datetime, config: EscalationConfig) -> datetime:
    """When an idle session may end: every strike fully decayed and a full window without activity."""
    window = timedelta(seconds=config.decay_window_s)
    return max([last_activity + window, *(s.at + window for s in strikes)])


# --- brigading -----------------------------------------------------------------------------------

def incidents_in_window(incidents: Iterable[Incident], now: datetime, window_s: int) -> list[Incident]:
    """Incidents with ``now - window < at <= now`` (later timestamps than ``now`` are kept too)."""
    start = now - timedelta(seconds=window_s)
    return [i for i in incidents if i.at > start]


def distinct_authors(incidents: Iterable[Incident], now: datetime, window_s: int) -> int:
    return len({i.author_id for i in incidents_in_window(incidents, now, window_s)})


def is_brigading(distinct: int, config: BrigadingConfig) -> bool:
    return distinct >= config.distinct_authors


__all__ = [
    "BrigadingConfig", "EscalationConfig", "Incident", "LadderRung", "Strike", "active_strikes", "decay_factor",
    "decayed_weight", "default_ladder", "distinct_authors", "incidents_in_window", "is_brigading", "ladder_for",
    "level_at", "level_for_score", "rung_actions", "session_expires_at", "strike_weight", "weighted_score",
]
