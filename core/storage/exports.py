"""The transparency export: actioned cases streamed from PostgreSQL, and each one as a DSA Article 17
statement of reasons."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg


async def actioned_cases(pool: asyncpg.Pool, *, since: datetime, until: datetime,
                         batch: int = 500) -> AsyncIterator[dict[str, Any]]:
    """Cases with at least one applied platform action, decided in [since, until), oldest first.
    Streams from a server-side cursor, so memory does not grow with the range."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        query = """
            SELECT c.*, (SELECT a.id FROM appeals a WHERE a.case_id = c.case_id ORDER BY a.created_at DESC LIMIT 1)
                        AS appeal_id
            FROM cases c
            WHERE c.decision = 'action' AND coalesce(c.reviewed_at, c.completed_at) >= $1
              AND coalesce(c.reviewed_at, c.completed_at) < $2
              AND EXISTS (SELECT 1 FROM jsonb_array_elements(c.actions) a
                          WHERE a->>'status' IN ('applied', 'duplicate'))
            ORDER BY coalesce(c.reviewed_at, c.completed_at), c.case_id
        """
        async for row in conn.cursor(query, since, until, prefetch=batch):
            yield dict(row)


# Mapping to the DSA Transparency Database vocabulary (Article 17 statements of reasons).
_DSA_CATEGORY = {
    "targeted_insult": "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
    "identity_hate": "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
    "profanity": "STATEMENT_CATEGORY_SCOPE_OF_PLATFORM_SERVICE",
    "threat": "STATEMENT_CATEGORY_VIOLENCE",
}


_APPLIED = ("applied", "duplicate")


def statement_of_reasons(case: dict[str, Any], *, platform_name: str = "safety-system") -> dict[str, Any]:
    """One Article 17 statement for an actioned case. Harassment rules are terms-of-service grounds
    (``DECISION_GROUND_INCOMPATIBLE_CONTENT``); this system makes no finding of illegality."""
    applied = [a for a in case.get("actions") or [] if a.get("status") in _APPLIED]
    kinds = {a.get("action") for a in applied}
    visibility = ["DECISION_VISIBILITY_CONTENT_REMOVED"] if "delete" in kinds else []
    account = None
    end_account = None
    if "ban" in kinds:
        account = "DECISION_ACCOUNT_TERMINATED"
    elif "timeout" in kinds:
        account = "DECISION_ACCOUNT_SUSPENDED"
        durations = [a.get("duration_s") for a in applied if a.get("action") == "timeout" and a.get("duration_s")]
        decided = case.get("reviewed_at") or case["completed_at"]
        if durations:
            end_account = (decided + timedelta(seconds=max(durations))).date().isoformat()
    if not visibility and account is None:
        visibility = ["DECISION_VISIBILITY_OTHER"]  # a warning: no restriction beyond the notice itself
    reasoning = case.get("reasoning") or {}
    verdict = reasoning.get("verdict") or {}
    reviewed = bool(case.get("reviewer"))
    clause = verdict.get("policy_clause") or ""
    # Public statements carry no free text (message, LLM rationale, moderator note): it may quote people.
    severity = verdict.get("severity")
    explanation = (f"The message was found incompatible with the harassment policy {case['policy_version']}"
                   + (f", clause {clause}" if clause else "") + f" (category {case['category']}"
                   + (f", severity {severity}" if severity else "") + ")"
                   + (", as decided by a human moderator." if reviewed else ", by automated assessment."))
    decided_at = case.get("reviewed_at") or case["completed_at"]
    appeal_id = case.get("appeal_id")
    return {
        "uuid": case["case_id"],
        "puid": case.get("message_id") or case["case_id"],
        "platform_name": platform_name,
        "decision_visibility": visibility,
        "decision_visibility_other": "warning sent to the author" if visibility == ["DECISION_VISIBILITY_OTHER"]
        else None,
        "decision_monetary": None,
        "decision_provision": None,
        "decision_account": account,
        "account_type": "ACCOUNT_TYPE_PRIVATE",
        "decision_ground": "DECISION_GROUND_INCOMPATIBLE_CONTENT",
        "decision_ground_reference_url": None,
        "illegal_content_legal_ground": None,
        "illegal_content_explanation": None,
        "incompatible_content_ground": f"Harassment policy {case['policy_version']}"
                                       + (f", clause {clause}" if clause else ""),
        "incompatible_content_explanation": explanation[:2000],
        "incompatible_content_illegal": "No",
        "category": _DSA_CATEGORY.get(case["category"], "STATEMENT_CATEGORY_SCOPE_OF_PLATFORM_SERVICE"),
        "category_specification": [case["category"]],
        "content_type": ["CONTENT_TYPE_TEXT"],
        "content_language": None,
        "content_date": (case.get("event_at") or case["received_at"]).date().isoformat(),
        "application_date": decided_at.date().isoformat(),
        "end_date_visibility_restriction": None,
        "end_date_account_restriction": end_account,
        "decision_facts": (f"A {case['event_type']} posted by the account in channel {case['channel_id']} on "
                           f"{case['platform']} was screened (risk {case['risk_score']:.2f}, category "
                           f"{case['category']})" + (f" and assessed against clause {clause}" if clause else "")
                           + (" and decided by a human moderator" if reviewed else "") + ". Actions taken: "
                           + ", ".join(sorted(k for k in kinds if k)) + "."),
        "source_type": "SOURCE_VOLUNTARY",
        "automated_detection": "Yes",
        "automated_decision": "AUTOMATED_DECISION_PARTIALLY" if reviewed else "AUTOMATED_DECISION_FULLY",
        "territorial_scope": None,
        "redress": {
            "internal_complaint": True,
            "how": f"POST /v1/appeals with case_id {case['case_id']} (the platform may file on the user's behalf)",
            "appeal_id": appeal_id,
            "false_positive": bool(case.get("false_positive")),
        },
        "created_at": decided_at.isoformat(),
    }
