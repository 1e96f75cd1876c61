"""Models of the session workflows (per author, per target); their names and ids are in workflows/contract.py.

The moderation workflow reaches a session through an activity (``apply_strike`` /
``record_target_incident``) that does update-with-start, so it gets the session's answer in one round
trip. Every model here travels through history: new fields always get defaults.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field, field_validator

from domain.actions import RevertInput  # input of ``revert_actions``, which lifts an expired timeout
from domain.escalation import BrigadingConfig, EscalationConfig, Incident, Strike
from domain.models import ActionType, ChatEvent, DomainModel, HarmCategory, PlannedAction, Severity

# Continue-as-new once the history has this many events (or when the server suggests it earlier).
DEFAULT_MAX_HISTORY_EVENTS = 2_000


def _utc(value: datetime) -> datetime:
    """Event times without a zone are taken as UTC (workflow time is always UTC-aware)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# --- user sessions -------------------------------------------------------------------------------

class StrikeInput(DomainModel):
    """One confirmed offence. ``case_id`` makes it idempotent: a retried strike gets the same answer."""

    platform: str
    author_id: str
    case_id: str
    category: HarmCategory
    severity: Severity
    at: datetime
    config: EscalationConfig = Field(default_factory=EscalationConfig)
    # The event that earned the strike; a timer that lifts a temporary sanction passes it to
    # ``revert_actions``. Without it a minimal event (no channel, no content) is sent.
    event: ChatEvent | None = None

    _at_utc = field_validator("at")(_utc)


class StrikeResult(DomainModel):
    case_id: str
    level: int
    # The actions of rung ``level``; empty when the offence carries no weight or was already overturned.
    actions: list[PlannedAction] = Field(default_factory=list)
    strikes_active: int = 0
    weighted_score: float = 0.0
    ladder_size: int = 0
    rung_label: str = ""
    # True when this case had already been recorded (a retry): the original answer is returned.
    duplicate: bool = False
    # True when the case's strike was overturned on appeal before this (late) call: nothing applies.
    overturned: bool = False


class RemoveStrikeInput(DomainModel):
    case_id: str
    reason: str = "appeal overturned"


class PendingLift(DomainModel):
    """A temporary sanction and the moment its timer lifts it."""

    case_id: str
    action: ActionType
    until: datetime
    event: ChatEvent
    duration_s: int


class LiftedSanction(DomainModel):
    case_id: str
    action: ActionType
    lifted_at: datetime
    ok: bool = True
    detail: str = ""


class UserSessionState(DomainModel):
    """What the ``state`` query answers, and everything carried across continue-as-new."""

    platform: str
    author_id: str
    config: EscalationConfig = Field(default_factory=EscalationConfig)
    # Level and score are computed as of this moment: the workflow's last task (an idle session
    # does not wake up just to decay; every strike re-computes them before answering).
    as_of: datetime | None = None
    level: int = 0
    weighted_score: float = 0.0
    strikes_active: int = 0
    strikes: list[Strike] = Field(default_factory=list)
    pending_lifts: list[PendingLift] = Field(default_factory=list)
    # The most recent lifts (bounded), newest last.
    lifted: list[LiftedSanction] = Field(default_factory=list)
    # Cases overturned on appeal and when, so a late retry of their strike is not counted again.
    overturned: dict[str, datetime] = Field(default_factory=dict)
    banned: bool = False
    strikes_recorded: int = 0
    last_activity_at: datetime | None = None
    runs: int = 1


class UserSessionInput(DomainModel):
    platform: str
    author_id: str
    config: EscalationConfig = Field(default_factory=EscalationConfig)
    # Carried over by continue-as-new; None for a new session.
    state: UserSessionState | None = None
    max_history_events: int = DEFAULT_MAX_HISTORY_EVENTS


# --- target sessions -----------------------------------------------------------------------------

class TargetIncidentInput(DomainModel):
    """A harmful message from ``author_id`` aimed at ``target_id``; ``case_id`` makes it idempotent."""

    platform: str
    target_id: str
    author_id: str
    case_id: str
    at: datetime
    config: BrigadingConfig = Field(default_factory=BrigadingConfig)

    _at_utc = field_validator("at")(_utc)


class TargetState(DomainModel):
    """Brigading state of one target: the update's answer, the ``state`` query, the continue-as-new carry."""

    platform: str
    target_id: str
    config: BrigadingConfig = Field(default_factory=BrigadingConfig)
    brigading: bool = False
    brigading_since: datetime | None = None
    # Moderators must be told while brigading; ``brigading_since`` identifies the episode.
    notify_moderators: bool = False
    slow_mode_recommended: bool = False
    # Lowered screening review threshold for messages to this target while brigading; None = policy default.
    review_factor: float | None = None
    distinct_authors: int = 0
    incidents_in_window: int = 0
    peak_distinct_authors: int = 0
    # True only in the answer to the incident that raised the flag.
    newly_raised: bool = False
    last_incident_at: datetime | None = None
    last_received_at: datetime | None = None
    cleared_at: datetime | None = None
    incidents: list[Incident] = Field(default_factory=list)
    incidents_recorded: int = 0
    runs: int = 1


class TargetSessionInput(DomainModel):
    platform: str
    target_id: str
    config: BrigadingConfig = Field(default_factory=BrigadingConfig)
    state: TargetState | None = None
    max_history_events: int = DEFAULT_MAX_HISTORY_EVENTS


__all__ = [
    "DEFAULT_MAX_HISTORY_EVENTS", "LiftedSanction", "PendingLift", "RemoveStrikeInput", "RevertInput",
    "StrikeInput", "StrikeResult", "TargetIncidentInput", "TargetSessionInput", "TargetState", "UserSessionInput",
    "UserSessionState",
]
