"""The Temporal contract: every name Temporal records or routes by, defined once.

Task queues, workflow types, activity, update and query names, workflow-id builders and search
attributes. The API, the workers, the CLI and the tests import them from here. Each value is written
into workflow histories, visibility records or deployed manifests: renaming one breaks running
workflows, the recorded histories in ``tests/workflows/histories/`` and the dashboards. Don't.

This module has no dependency beyond ``temporalio.common``, so workflows, ``core.settings`` and the
embedded stack can all import it.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

# --- Task queues: one worker deployment each, scaled on its own backlog ---------------------------
MODERATION_QUEUE = "moderation"  # workflows (moderation, sessions, appeals) and their local activities
SCREENING_QUEUE = "screening"
CONTEXT_QUEUE = "context"
REASONING_QUEUE = "reasoning"
ACTIONS_QUEUE = "actions"
# Order matters: a worker's metrics port is its base port plus the queue's index here.
TASK_QUEUES: tuple[str, ...] = (MODERATION_QUEUE, SCREENING_QUEUE, CONTEXT_QUEUE, REASONING_QUEUE, ACTIONS_QUEUE)
# The bench's comparison chain (``safety bench e2e``); no production worker serves it.
NAIVE_QUEUE = "bench-naive"

# --- Workflow types --------------------------------------------------------------------------------
MODERATE_EVENT_WORKFLOW = "ModerateEventWorkflow"
USER_SESSION_WORKFLOW = "UserSessionWorkflow"
TARGET_SESSION_WORKFLOW = "TargetSessionWorkflow"
APPEAL_WORKFLOW = "AppealWorkflow"
NAIVE_CHAIN_WORKFLOW = "NaiveChainWorkflow"

# --- Updates and queries ---------------------------------------------------------------------------
SUBMIT_REVIEW_UPDATE = "submit_review"  # ModerateEventWorkflow: a moderator's decision
CASE_STATUS_QUERY = "status"  # ModerateEventWorkflow: CaseProgress
RECORD_STRIKE_UPDATE = "record_strike"  # UserSessionWorkflow
REMOVE_STRIKE_UPDATE = "remove_strike"  # UserSessionWorkflow (appeal overturned)
RECORD_INCIDENT_UPDATE = "record_incident"  # TargetSessionWorkflow
STATE_QUERY = "state"  # both session workflows

# --- Activities ------------------------------------------------------------------------------------
SCREEN_EVENT = "screen_event"
RETRIEVE_CONTEXT = "retrieve_context"
REASON_ABOUT_CASE = "reason_about_case"
EXECUTE_ACTIONS = "execute_actions"
REVERT_ACTIONS = "revert_actions"
RECORD_CASE = "record_case"
RECORD_REVIEW = "record_review"
ESCALATE_REVIEW = "escalate_review"
APPLY_STRIKE = "apply_strike"  # update-with-start of the author's session
RECORD_TARGET_INCIDENT = "record_target_incident"  # update-with-start of the target's session
REMOVE_USER_STRIKE = "remove_user_strike"
RECORD_APPEAL_OUTCOME = "record_appeal_outcome"
NOOP_ACTIVITY = "bench_noop"  # the bench's naive chain


# --- Workflow ids ----------------------------------------------------------------------------------
def event_workflow_id(event_id: str) -> str:
    """ModerateEventWorkflow of one chat event: at most one case per event id."""
    return f"event-{event_id}"


def _id_part(value: str) -> str:
    """One leading part of a composite workflow id, with the separator ``:`` (and ``%``) percent-encoded,
    so the first ``:`` always ends it: ``discord-x`` + ``1`` and ``discord`` + ``x-1`` differ."""
    return value.replace("%", "%25").replace(":", "%3A")


def user_session_id(platform: str, author_id: str) -> str:
    """UserSessionWorkflow of one author on one platform: ``user-<platform>:<author_id>``.

    Until issue 15 this was ``user-<platform>-<author_id>``, which let ``discord-x`` + ``1`` and
    ``discord`` + ``x-1`` share one session. Sessions started under the old ids keep running until their
    strikes decay (their timers still lift timeouts) but new cases no longer reach them: an author's
    ladder starts again from the first rung after the upgrade (docs/operations.md)."""
    return f"user-{_id_part(platform)}:{author_id}"


def target_session_id(platform: str, target_id: str) -> str:
    """TargetSessionWorkflow of one target (brigading protection) on one platform:
    ``target-<platform>:<target_id>`` (was ``target-<platform>-<target_id>``, see ``user_session_id``)."""
    return f"target-{_id_part(platform)}:{target_id}"


def appeal_workflow_id(appeal_id: str) -> str:
    """AppealWorkflow of one appeal."""
    return f"appeal-{appeal_id}"


# --- Memo of a case workflow (set at start; not a command, so replay is unaffected) ---------------
MEMO_INTEGRATION = "integration"  # the API key name (tenant) that sent the event


# --- Search attributes (registered by `safety up`, the Helm chart and the compose job) -------------
SA_CASE_ID = SearchAttributeKey.for_keyword("CaseId")
SA_PLATFORM = SearchAttributeKey.for_keyword("Platform")
SA_CHANNEL = SearchAttributeKey.for_keyword("ChannelId")
SA_AUTHOR = SearchAttributeKey.for_keyword("AuthorId")
SA_TARGET = SearchAttributeKey.for_keyword("TargetId")
SA_CATEGORY = SearchAttributeKey.for_keyword("Category")
SA_DECISION = SearchAttributeKey.for_keyword("Decision")
SA_RISK = SearchAttributeKey.for_float("RiskScore")
SA_NEEDS_REVIEW = SearchAttributeKey.for_bool("NeedsReview")
SEARCH_ATTRIBUTE_KEYS: tuple[SearchAttributeKey, ...] = (  # type: ignore[type-arg]
    SA_CASE_ID, SA_PLATFORM, SA_CHANNEL, SA_AUTHOR, SA_TARGET, SA_CATEGORY, SA_DECISION, SA_RISK, SA_NEEDS_REVIEW)
# The server's type names (``temporal operator search-attribute create --type``).
_SERVER_TYPE = {"KEYWORD": "Keyword", "DOUBLE": "Double", "BOOL": "Bool"}
SEARCH_ATTRIBUTES: dict[str, str] = {k.name: _SERVER_TYPE[k.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")]
                                     for k in SEARCH_ATTRIBUTE_KEYS}
