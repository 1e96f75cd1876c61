"""Human review: the decision a moderator sends to a waiting case, and what the case answers.

The moderation workflow, when its decision needs a person, records the case (decision ``review``) and
then waits for the Temporal update ``submit_review`` (workflow id ``event-<case_id>``). The update
returns once the moderator's actions have been executed and recorded. An SLA timer moves unreviewed
cases to the ``senior`` queue.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from domain.models import ActionOutcome, ActionType, DomainModel, HarmCategory


class ReviewDecision(DomainModel):
    reviewer: str = Field(min_length=1, max_length=128)
    violation: bool
    category: HarmCategory = HarmCategory.NONE
    # Empty with violation=True means "the actions the policy would take for this category".
    actions: list[ActionType] = Field(default_factory=list)
    timeout_minutes: int | None = Field(None, ge=1, le=40320)
    note: str = Field("", max_length=2000)
    decided_at: datetime | None = None


class ReviewOutcome(DomainModel):
    case_id: str
    decision: str  # "action" or "allow"
    actions: list[ActionOutcome] = Field(default_factory=list)
    reviewer: str
    escalated: bool = False


class ReviewRecord(DomainModel):
    """Input of the ``record_review`` activity: updates the case row and appends to the audit chain."""

    case_id: str
    decision: ReviewDecision
    final_decision: str
    category: HarmCategory
    actions: list[ActionOutcome] = Field(default_factory=list)


class ReviewEscalation(DomainModel):
    """Input of the ``escalate_review`` activity: the SLA passed without a decision."""

    case_id: str
    queue: str = "senior"
    sla_minutes: int = 60
