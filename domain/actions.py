"""Inputs of the action activities beyond ``ActInput`` (they travel through Temporal history).

New fields always get defaults, so a running appeal workflow can replay older history.
"""

from __future__ import annotations

from domain.models import ChatEvent, DomainModel


class RevertInput(DomainModel):
    """Undo a case's applied sanctions (an appeal overturned): unban a ban, lift a timeout.

    ``event`` is the case's event (it names the platform, channel and user); ``reason`` goes to the
    platform's audit log, e.g. ``"appeal 42 overturned: ..."``. Deleted messages and sent warnings stay as they are.
    """

    case_id: str
    event: ChatEvent
    reason: str = ""
    # Set by AppealWorkflow: the revert activity re-reads this appeal and refuses to revert unless an
    # overturn holds it (never under an upheld appeal). Empty for other reverts (sessions lifting a ban).
    appeal_id: str = ""
