"""Domain models of events and cases: the chat event, screening, context, reasoning, the decision, the
actions and the case record, with their enums. The other domain modules (sessions, reviews, appeals,
escalation, actions) hold the models of their own concept; together they are the only types that
travel through Temporal history.

Every model derives from ``DomainModel``, and new fields always get defaults, so a running workflow
can replay history written by an older version. HTTP schemas live in ``api/schemas.py`` and
``api/schemas_reporting.py`` and never enter history.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class HarmCategory(StrEnum):
    """Screening categories. ``none`` means no category scored above its review threshold."""

    NONE = "none"
    TARGETED_INSULT = "targeted_insult"
    IDENTITY_HATE = "identity_hate"
    THREAT = "threat"
    PROFANITY = "profanity"


class Decision(StrEnum):
    """What happened to a case, as recorded and as shown in the ``Decision`` search attribute."""

    ALLOW = "allow"
    ACTION = "action"
    REVIEW = "review"


class CasePath(StrEnum):
    """Which way a case went: ``clean`` (screened below the review threshold in its workflow),
    ``full`` (context, reasoning, decision, actions), ``prescreen`` (screened clean by the API and
    recorded without a workflow)."""

    CLEAN = "clean"
    FULL = "full"
    PRESCREEN = "prescreen"


class ActionStatus(StrEnum):
    """What became of one platform action. Executing: ``applied``, ``duplicate`` (already applied, not
    repeated), ``shadow`` (shadow mode, not applied), ``capped`` (the daily cap withheld it),
    ``unconfirmed`` (may have reached a platform that cannot be read back; not repeated), ``failed``.
    Reverting: ``reverted``, ``kept`` (another case's sanction still stands), ``not_reversible``."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    SHADOW = "shadow"
    CAPPED = "capped"
    UNCONFIRMED = "unconfirmed"
    FAILED = "failed"
    REVERTED = "reverted"
    KEPT = "kept"
    NOT_REVERSIBLE = "not_reversible"


class ActionType(StrEnum):
    WARN = "warn"
    DELETE = "delete"
    TIMEOUT = "timeout"
    BAN = "ban"
    ESCALATE = "escalate"


class Stage(StrEnum):
    QUEUED = "queued"
    SCREENING = "screening"
    CONTEXT = "context"
    REASONING = "reasoning"
    DECIDING = "deciding"
    ACTING = "acting"
    RECORDING = "recording"
    REVIEW = "review"
    COMPLETED = "completed"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class DomainModel(BaseModel):
    """The one base of every model that travels through Temporal history (here and in the other domain
    modules). Unknown fields are ignored, so an older worker can read what a newer one wrote."""

    model_config = ConfigDict(frozen=False, extra="ignore")


class ChatEvent(DomainModel):
    """One chat event as accepted by the ingest API. ``target_id`` is the API's ``user_id``."""

    event_id: str
    event_type: str = "message"
    platform: str
    channel_id: str
    target_id: str | None = None
    author_id: str
    content: str
    message_id: str | None = None
    timestamp: datetime | None = None
    user_reputation: float | None = None
    author_reputation: float | None = None
    channel_history_count: int | None = None
    received_at: datetime
    # The integration (API key name) that sent the event: its tenant. Empty in history written before.
    integration: str = ""
    # An edit (event_type ``message_edit``) is its own case: ``edit_of`` is the case id of the original
    # message, ``revision`` the content hash of this revision (a redelivery of it is the same case).
    edit_of: str | None = None
    revision: str = ""


class ScreeningThresholds(DomainModel):
    """Risk bands: below ``review`` is clean; ``review``..``act`` is ambiguous; above ``act`` is harmful."""

    review: float = 0.5
    act: float = 0.85
    # A score at or above this (None: ``act``) with an LLM "no violation" is a disagreement: the case
    # goes to a person instead of being allowed, so one successful prompt injection cannot allow it.
    disagreement: float | None = None


class LadderRung(DomainModel):
    """One rung: the actions for the Nth weighted offence. ``duration_s`` applies to a timeout."""

    actions: list[ActionType]
    duration_s: int | None = None
    label: str = ""


def default_ladder() -> list[LadderRung]:
    return [
        LadderRung(actions=[ActionType.WARN], label="warn"),
        LadderRung(actions=[ActionType.DELETE, ActionType.WARN], label="delete + warn"),
        LadderRung(actions=[ActionType.TIMEOUT], duration_s=10 * 60, label="timeout 10 min"),
        LadderRung(actions=[ActionType.TIMEOUT], duration_s=24 * 3600, label="timeout 24 h"),
        LadderRung(actions=[ActionType.BAN], label="ban"),
    ]


def _default_category_weights() -> dict[HarmCategory, float]:
    return {
        HarmCategory.NONE: 0.0,
        HarmCategory.PROFANITY: 0.5,
        HarmCategory.TARGETED_INSULT: 1.0,
        HarmCategory.IDENTITY_HATE: 1.5,
        HarmCategory.THREAT: 2.0,
    }


def _default_severity_multipliers() -> dict[Severity, float]:
    return {Severity.LOW: 0.5, Severity.MEDIUM: 1.0, Severity.HIGH: 1.5, Severity.CRITICAL: 3.0}


class EscalationConfig(DomainModel):
    """Per-deployment escalation settings. Travels in each strike, so a change reaches live sessions."""

    category_weights: dict[HarmCategory, float] = Field(default_factory=_default_category_weights)
    severity_multipliers: dict[Severity, float] = Field(default_factory=_default_severity_multipliers)
    # A strike's weight falls linearly to zero over this window; an idle session ends after it.
    decay_window_s: int = Field(default=30 * 24 * 3600, gt=0)
    default_ladder: list[LadderRung] = Field(default_factory=default_ladder, min_length=1)
    # Per-platform ladders (key: ChatEvent.platform); platforms not listed use ``default_ladder``.
    ladders: dict[str, list[LadderRung]] = Field(default_factory=dict)


class BrigadingConfig(DomainModel):
    """Target protection: ``distinct_authors`` different authors within ``window_s`` is brigading."""

    window_s: int = Field(default=60, gt=0)
    distinct_authors: int = Field(default=20, ge=1)
    # The flag clears once no incident has reached the target for this long.
    quiet_period_s: int = Field(default=10 * 60, gt=0)
    # While the flag is up, the screening review threshold for messages to the target is multiplied by this.
    review_factor: float = Field(default=0.5, gt=0.0, le=1.0)
    recommend_slow_mode: bool = True


class PolicyConfig(DomainModel):
    """Decision parameters. They travel in the workflow input so every decision is recorded in history."""

    version: str = "harassment-v1"
    thresholds: ScreeningThresholds = Field(default_factory=ScreeningThresholds)
    # The clause ids of the policy document (Settings.effective_policy reads them from it). A verdict
    # citing any other clause is invalid output and goes to review, so free text never reaches the DSA
    # statement or the author's DM. Empty only in inputs recorded before the check existed: not checked.
    clause_ids: list[str] = Field(default_factory=list)
    # A verdict below this confidence is not acted upon: the case goes to a person.
    min_llm_confidence: float = 0.7
    # Categories a screening score alone may never sanction: they always need reasoning or a person.
    always_reason: list[HarmCategory] = Field(
        default_factory=lambda: [HarmCategory.THREAT, HarmCategory.IDENTITY_HATE]
    )
    # Screen on the moderation worker as a local activity (cheap clean path) or on the screening queue.
    local_screening: bool = True
    timeout_minutes: int = 10
    shadow_mode: bool = False
    # LLM reasoning: per-attempt timeout, overall deadline after which the case goes to review.
    reasoning_attempt_timeout_s: float = 10.0
    reasoning_deadline_s: float = 30.0
    reasoning_max_attempts: int = 4
    # Human review: after the SLA an unreviewed case moves to the senior queue; after the expiry the case
    # stops waiting (it stays in the review queue in the database, and can still be decided by hand).
    review_sla_minutes: int = 60
    review_expiry_days: int = 7
    # Strikes, decay and the escalation ladder (per platform); per-target brigading protection.
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    brigading: BrigadingConfig = Field(default_factory=BrigadingConfig)


class ScreenInput(DomainModel):
    event_id: str
    content: str
    # The embedding is returned only at or above this score (the risky path, where context retrieval
    # uses it); the clean path keeps it out of history, which is most of that path's cost. None = always.
    embedding_from: float | None = None


class ScreenResult(DomainModel):
    risk_score: float
    category_scores: dict[str, float] = Field(default_factory=dict)
    top_category: HarmCategory = HarmCategory.NONE
    # L2-normalised sentence embedding from the screening encoder, reused by context retrieval.
    embedding: list[float] = Field(default_factory=list)
    model_version: str = ""
    duration_ms: float = 0.0


class SimilarCase(DomainModel):
    case_id: str
    score: float
    category: str = ""
    decision: str = ""
    platform: str = ""


class UserHistory(DomainModel):
    recent_cases: int = 0
    recent_actions: int = 0
    recent_reviews: int = 0
    last_category: str | None = None


class ContextInput(DomainModel):
    event: ChatEvent
    embedding: list[float] = Field(default_factory=list)
    top_k: int = 5


class CaseContext(DomainModel):
    similar_cases: list[SimilarCase] = Field(default_factory=list)
    author: UserHistory = Field(default_factory=UserHistory)
    target: UserHistory = Field(default_factory=UserHistory)
    channel_cases_24h: int = 0


class ReasonInput(DomainModel):
    event: ChatEvent
    screen: ScreenResult
    context: CaseContext = Field(default_factory=CaseContext)
    policy_version: str = "harassment-v1"


class LLMVerdict(DomainModel):
    """The structured output the LLM must return (its JSON schema is sent as the response format)."""

    violation: bool
    category: HarmCategory
    severity: Severity
    policy_clause: str = Field(description="The clause id of the policy that applies, e.g. 'H2'.")
    rationale: str
    recommended_action: ActionType | None = None
    confidence: float = Field(ge=0.0, le=1.0)


class ReasonStatus(StrEnum):
    OK = "ok"
    UNAVAILABLE = "unavailable"  # no provider configured, or it is down
    TIMEOUT = "timeout"
    INVALID_OUTPUT = "invalid_output"
    BUDGET_EXHAUSTED = "budget_exhausted"


class ReasonResult(DomainModel):
    status: ReasonStatus
    verdict: LLMVerdict | None = None
    detail: str = ""
    model: str = ""
    policy_version: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    duration_ms: float = 0.0


class PlannedAction(DomainModel):
    action: ActionType
    duration_s: int | None = None
    reason: str = ""


class DecideResult(DomainModel):
    decision: Decision
    category: HarmCategory
    actions: list[PlannedAction] = Field(default_factory=list)
    needs_review: bool = False
    reasons: list[str] = Field(default_factory=list)


class ActInput(DomainModel):
    case_id: str
    event: ChatEvent
    actions: list[PlannedAction]
    shadow: bool = False
    # False when a moderator decided: the daily caps on automated sanctions do not apply to people.
    automated: bool = True


class ActionOutcome(DomainModel):
    action: ActionType
    connector: str
    idempotency_key: str
    status: ActionStatus
    detail: str = ""


class ActResult(DomainModel):
    outcomes: list[ActionOutcome] = Field(default_factory=list)


class CaseRecord(DomainModel):
    """Everything the record activity writes for one case."""

    case_id: str
    event: ChatEvent
    path: CasePath
    screen: ScreenResult
    decision: DecideResult
    context: CaseContext | None = None
    reason: ReasonResult | None = None
    actions: list[ActionOutcome] = Field(default_factory=list)
    stage_ms: dict[str, float] = Field(default_factory=dict)
    policy_version: str = ""
    workflow_id: str = ""
    run_id: str = ""
    completed_at: datetime | None = None


class ModerateEventInput(DomainModel):
    event: ChatEvent
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    # Set in prescreen mode: the API already screened the event, so the workflow does not screen again.
    prescreen: ScreenResult | None = None


class CaseProgress(DomainModel):
    """What the ``status`` query answers while a case runs."""

    stage: Stage
    path: str = ""  # a CasePath once screened
    risk_score: float | None = None
    category: HarmCategory | None = None
    attempts: dict[str, int] = Field(default_factory=dict)


class CaseOutcome(DomainModel):
    case_id: str
    path: CasePath
    stage: Stage = Stage.COMPLETED
    risk_score: float
    category: HarmCategory
    decision: Decision
    needs_review: bool
    actions: list[ActionOutcome] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
