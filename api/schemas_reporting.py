"""HTTP schemas of the moderator reporting API (named by role). They never enter workflow history."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from domain.models import ActionType, HarmCategory


class ActionLedgerEntry(BaseModel):
    """One row of the ``actions`` ledger: what was asked of the platform and what it answered."""

    action: str
    connector: str
    status: str
    idempotency_key: str
    request: dict[str, Any] = Field(default_factory=dict)
    response: dict[str, Any] | None = None
    created_at: datetime


class AuditEntryPublic(BaseModel):
    seq: int
    at: datetime
    actor: str
    kind: str
    case_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    hash: str


class CaseSummary(BaseModel):
    case_id: str
    platform: str
    channel_id: str
    author_id: str
    target_id: str | None = None
    event_type: str
    path: str
    risk_score: float
    category: str
    decision: str
    needs_review: bool
    review_status: str | None = None
    false_positive: bool = False
    received_at: datetime
    completed_at: datetime


class CasesPage(BaseModel):
    items: list[CaseSummary]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; null on the last page.")


class ReviewPublic(BaseModel):
    status: str | None = None
    queue: str | None = None
    reviewer: str | None = None
    reviewed_at: datetime | None = None
    decision: dict[str, Any] | None = None
    claimed_by: str | None = None
    claim_expires_at: datetime | None = None


class AppealPublic(BaseModel):
    id: str
    case_id: str
    reason: str
    status: Literal["open", "upheld", "overturned"]
    filed_by: str
    decided_by: str | None = None
    note: str = ""
    pending_outcome: str | None = Field(None, description="'overturn' while the overturn workflow runs.")
    workflow_id: str | None = None
    created_at: datetime
    decided_at: datetime | None = None
    status_url: str


class AppealsPage(BaseModel):
    items: list[AppealPublic]
    next_cursor: str | None = None


class CasePublic(CaseSummary):
    """The full timeline of one case, for moderators."""

    message_id: str | None = None
    integration: str | None = Field(None, description="The integration (API key name) that sent the event.")
    edit_of: str | None = Field(None, description="For an edit (message_edit): the case of the original message.")
    revision: str = Field("", description="For an edit: the content hash of this revision.")
    content: str
    category_scores: dict[str, float] = Field(default_factory=dict)
    reasons: list[str] = Field(default_factory=list)
    context: dict[str, Any] | None = Field(None, description="The context the LLM saw: similar cases, histories.")
    reasoning: dict[str, Any] | None = Field(None, description="The LLM result: status, verdict with policy clause, "
                                                                "rationale, confidence, model, cost.")
    stage_ms: dict[str, float] = Field(default_factory=dict)
    model_version: str = ""
    policy_version: str = ""
    actions: list[dict[str, Any]] = Field(default_factory=list, description="Action outcomes as recorded on the case.")
    action_ledger: list[ActionLedgerEntry] = Field(default_factory=list)
    review: ReviewPublic
    appeals: list[AppealPublic] = Field(default_factory=list)
    audit: list[AuditEntryPublic] = Field(default_factory=list)
    event_at: datetime | None = None
    workflow_id: str
    temporal_ui_url: str


class ReviewItem(BaseModel):
    case_id: str
    platform: str
    channel_id: str
    author_id: str
    target_id: str | None = None
    content: str
    risk_score: float
    category: str
    category_scores: dict[str, float] = Field(default_factory=dict)
    reasons: list[str] = Field(default_factory=list)
    queue: str
    received_at: datetime
    waiting_since: datetime
    claimed_by: str | None = None
    claim_expires_at: datetime | None = None
    case_url: str


class ReviewsPage(BaseModel):
    items: list[ReviewItem]
    next_cursor: str | None = None


class ClaimPublic(BaseModel):
    case_id: str
    moderator: str
    claimed_at: datetime
    expires_at: datetime


class ReviewDecisionIn(BaseModel):
    """A moderator's decision; the reviewer is the caller (key name or token subject)."""

    violation: bool
    category: HarmCategory = HarmCategory.NONE
    actions: list[ActionType] = Field(default_factory=list, description="Empty with violation=true: the policy's "
                                                                         "actions for the category.")
    timeout_minutes: int | None = Field(None, ge=1, le=40320)
    note: str = Field("", max_length=2000)


class AppealIn(BaseModel):
    case_id: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=4000)


class AppealDecisionIn(BaseModel):
    outcome: Literal["uphold", "overturn"]
    note: str = Field("", max_length=2000)


class AppealDecisionAccepted(BaseModel):
    appeal: AppealPublic
    status_url: str
    workflow_id: str


class UserCaseSummary(BaseModel):
    case_id: str
    role: Literal["author", "target"]
    decision: str
    category: str
    risk_score: float
    false_positive: bool = False
    received_at: datetime


class UserSession(BaseModel):
    found: bool
    strikes: int = 0
    state: dict[str, Any] | None = None  # the session workflow's `state` query answer
    detail: str = ""
    workflow_id: str


class UserPublic(BaseModel):
    platform: str
    user_id: str
    session: UserSession
    as_author: dict[str, int] = Field(default_factory=dict, description="Case counts by decision, as author.")
    as_target: dict[str, int] = Field(default_factory=dict, description="Case counts by decision, as target.")
    overturned: int = 0
    recent_cases: list[UserCaseSummary] = Field(default_factory=list)


class StagePercentiles(BaseModel):
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float


class ReviewBacklog(BaseModel):
    pending: int
    by_queue: dict[str, int] = Field(default_factory=dict)
    sla_minutes: int
    sla_breaches: int = Field(description="Pending reviews older than the SLA or already in the senior queue.")
    oldest_pending_at: datetime | None = None


class StatsPublic(BaseModel):
    window: str
    since: datetime
    until: datetime
    volume: int
    decisions: dict[str, int] = Field(default_factory=dict)
    decisions_by_category: dict[str, dict[str, int]] = Field(default_factory=dict)
    actions: dict[str, int] = Field(default_factory=dict, description="Applied platform actions by type.")
    latency: dict[str, StagePercentiles] = Field(default_factory=dict)
    review_backlog: ReviewBacklog
    appeals: dict[str, int] = Field(default_factory=dict)
    actioned: int
    overturned: int
    false_positive_rate: float | None = Field(None, description="Overturned / actioned cases in the window; "
                                                                "null when nothing was actioned.")
    reasoning_calls: int
    llm_error_rate: float | None = None
    llm_timeout_rate: float | None = None


class AuditPage(BaseModel):
    items: list[AuditEntryPublic]
    next_cursor: str | None = None
