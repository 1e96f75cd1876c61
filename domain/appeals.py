"""Models of the appeal workflow (``AppealWorkflow``): what it is given, what its activities take and
return, and what it answers. They travel through Temporal history: new fields always get defaults.

An appeal that a moderator overturns reverts the case's platform actions (``RevertInput`` in
``domain/actions.py``), removes the author's strike and records the outcome.
"""

from __future__ import annotations

from pydantic import Field

from domain.models import ChatEvent, DomainModel
from workflows.contract import ACTIONS_QUEUE

# The revert activity's error type when the appeal is not held by an overturn (e.g. it was upheld).
APPEAL_NOT_OVERTURNED = "AppealNotOverturned"


class AppealInput(DomainModel):
    appeal_id: str
    case_id: str
    event: ChatEvent
    reason: str
    decided_by: str
    note: str = ""
    # Where revert_actions runs (the actions worker); in the input so tests can point it elsewhere.
    actions_queue: str = ACTIONS_QUEUE


class AppealResult(DomainModel):
    appeal_id: str
    status: str
    reverted: bool
    strike_removed: bool
    details: list[str] = Field(default_factory=list)


class RemoveUserStrikeInput(DomainModel):
    case_id: str
    platform: str
    author_id: str
    reason: str = "appeal overturned"


class RemoveStrikeResult(DomainModel):
    removed: bool
    detail: str = ""


class AppealOutcomeRecord(DomainModel):
    appeal_id: str
    outcome: str = "overturn"  # "uphold" | "overturn"
    decided_by: str
    note: str = ""
    # What the workflow did before recording, kept in the audit trail of the workflow history.
    reverted: bool = False
    strike_removed: bool = False
    details: list[str] = Field(default_factory=list)


class AppealOutcomeResult(DomainModel):
    appeal_id: str
    status: str


__all__ = ["AppealInput", "AppealOutcomeRecord", "AppealOutcomeResult", "AppealResult", "RemoveStrikeResult",
           "RemoveUserStrikeInput"]
