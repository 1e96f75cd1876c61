"""Everything the moderator console reads and does, in one place.

The console's pages (``api/routes/console.py``) call only this module. It signs moderators in
(server-side sessions in PostgreSQL, CSRF tokens bound to the session), reads cases, the review queue,
users and stats through ``core.storage`` (its own SQL in ``core.storage.console``), and performs
decisions, claims and overturns through the very same services as the JSON API
(``api.services.reviews`` / ``api.services.appeals``), so a decision made in the browser is validated,
delivered to the waiting workflow and audited exactly as one made with curl, under the moderator's key
name.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from fastapi import HTTPException
from pydantic import ValidationError
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import CONSOLE_COOKIE, Services, charge
from api.schemas_reporting import AppealDecisionIn, ReviewDecisionIn
from api.services import appeals as appeal_service
from api.services import reviews as review_service
from api.services.cases import temporal_ui_url
from api.services.tenancy import may_see_case, platform_filter, refuse_scoped, visible_case
from core.storage import appeals, audit, cases, keys, stats
from core.storage import console as store
from core.storage.common import Conflict, NotActionable
from core.storage.keys import KeyInfo, Role
from core.storage.reviews import DEFAULT_CLAIM_MINUTES
from domain.escalation import (
    decayed_weight,
    ladder_for,
    level_for_score,
    rung_actions,
    strike_weight,
    weighted_score,
)
from domain.models import ActionType, HarmCategory, LLMVerdict, PlannedAction, Severity
from domain.sessions import UserSessionState
from workflows.contract import STATE_QUERY, event_workflow_id, user_session_id

log = logging.getLogger(__name__)

SESSION_TTL = timedelta(hours=8)
COOKIE_NAME = CONSOLE_COOKIE
# Categories whose message text is blurred until the moderator reveals it (unless they turned blurring off).
SENSITIVE_CATEGORIES = frozenset({HarmCategory.THREAT.value, HarmCategory.IDENTITY_HATE.value})
# The actions a moderator may choose, in the order of the 1-9 keys.
DECISION_ACTIONS: tuple[ActionType, ...] = (ActionType.DELETE, ActionType.WARN, ActionType.TIMEOUT, ActionType.BAN)
QUEUES = ("standard", "senior")
WINDOWS = ("1h", "24h", "7d")


class ConsoleError(Exception):
    """A refusal a moderator can act on: ``status`` is the HTTP status, ``message`` says what to do."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, dict(headers or {})


def _from_http(err: HTTPException) -> ConsoleError:
    """The JSON API's refusal as a console one, keeping its headers (Retry-After of a 429 or 503)."""
    return ConsoleError(err.status_code, str(err.detail), getattr(err, "headers", None))


def _hash(token: str) -> str:
    return store.session_token_hash(token)


# -- sessions --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConsoleSession:
    token_hash: str
    key: KeyInfo
    csrf_token: str
    expires_at: datetime

    @property
    def moderator(self) -> str:
        return self.key.name

    @property
    def is_admin(self) -> bool:
        return self.key.role == Role.ADMIN


async def sign_in(services: Services, *, api_key: str) -> tuple[str, ConsoleSession]:
    """Verify an API key and open a session; returns (cookie token, session). Ingest keys are refused."""
    api_key = api_key.strip()
    if not api_key:
        raise ConsoleError(422, "enter your API key (a moderator or admin key from `safety keys create`)")
    if len(api_key) > 256:
        raise ConsoleError(422, "that is not an API key: keys are under 100 characters")
    try:
        info = await keys.lookup_key(services.pool, api_key)
    except (OSError, asyncpg.PostgresError) as err:
        log.error("console sign-in: key lookup failed: %s", err)
        raise ConsoleError(503, "cannot verify keys right now (database unreachable); try again shortly",
                           {"Retry-After": "5"}) from err
    if info is None:
        raise ConsoleError(401, "unknown or revoked API key; check it, or ask an admin for a moderator key")
    if info.role not in (Role.MODERATOR, Role.ADMIN):
        raise ConsoleError(403, f"the key '{info.name}' has role '{info.role.value}', which cannot sign in to "
                                "the console; use a moderator or admin key "
                                "(`safety keys create --name NAME --role moderator`)")
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + SESSION_TTL
    await store.create_session(services.pool, token_hash=_hash(token), key_id=info.id, moderator=info.name,
                               role=info.role.value, csrf_token=csrf, expires_at=expires)
    log.info("console sign-in", extra={"moderator": info.name, "role": info.role.value})
    return token, ConsoleSession(_hash(token), info, csrf, expires)


async def load_session(services: Services, *, token: str | None) -> ConsoleSession | None:
    """The live session for a cookie token, or None (no cookie, expired, signed out, or key revoked)."""
    if not token or len(token) > 128:
        return None
    row = await store.live_session(services.pool, token_hash=_hash(token))
    if row is None:
        return None
    platforms = row["platforms"]
    info = KeyInfo(row["key_id"], row["moderator"], Role(row["role"]), row["prefix"],
                   frozenset(platforms) if platforms is not None else None)
    return ConsoleSession(row["token_hash"], info, row["csrf_token"], row["expires_at"])


async def sign_out(services: Services, *, session: ConsoleSession) -> None:
    await store.delete_session(services.pool, token_hash=session.token_hash)


def csrf_ok(session: ConsoleSession, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf_token, submitted or "")


async def count_request(services: Services, *, session: ConsoleSession) -> None:
    """The same per-key rate limit as the JSON API (429 when over it)."""
    try:
        await charge(services, session.key, 1)
    except HTTPException as err:
        raise _from_http(err) from err


async def set_flash(services: Services, *, session: ConsoleSession, message: str) -> None:
    await store.set_flash(services.pool, token_hash=session.token_hash, message=message)


async def pop_flash(services: Services, *, session: ConsoleSession) -> str | None:
    return await store.pop_flash(services.pool, token_hash=session.token_hash)


# -- preferences -----------------------------------------------------------------------------------------

async def blur_preference(services: Services, *, moderator: str) -> bool:
    value = await store.blur_sensitive(services.pool, moderator=moderator)
    return True if value is None else value


async def set_blur_preference(services: Services, *, moderator: str, blur: bool) -> None:
    await store.set_blur_sensitive(services.pool, moderator=moderator, blur=blur)


# -- review queue ----------------------------------------------------------------------------------------

@dataclass
class QueueFilters:
    platform: str | None = None
    channel: str | None = None
    category: str | None = None
    clause: str | None = None
    queue: str | None = None

    def query(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


def review_reasons(reasons: list[str]) -> list[str]:
    """Why a person must look: the workflow's 'needs human review: ...' lines, without the prefix."""
    return [r.split(":", 1)[1].strip() for r in reasons if r.startswith("needs human review:")]


def brigading_note(reasons: list[str]) -> str | None:
    return next((r for r in reasons if r.startswith("brigading:")), None)


def _sla(waiting_since: datetime, queue: str, sla_minutes: int, now: datetime) -> dict[str, Any]:
    due = waiting_since + timedelta(minutes=sla_minutes)
    breached = queue == "senior" or now >= due
    left = int((due - now).total_seconds() // 60)
    if breached:
        over = max(0, int((now - due).total_seconds() // 60))
        text = f"SLA breached {over} min ago" if now >= due else "SLA breached (senior queue)"
    else:
        text = f"{left} min left of {sla_minutes}"
    return {"sla_due": due, "sla_breached": breached, "sla_text": text}


async def review_queue(services: Services, *, filters: QueueFilters, key: KeyInfo,
                       limit: int = 100) -> dict[str, Any]:
    """Pending reviews oldest first, with their reasons, SLA clock and claim, plus queue-wide counts; only
    of the key's platforms when it is scoped (a platform outside them: an empty queue)."""
    sla_minutes = int(services.policy.review_sla_minutes)
    moderator = key.name
    platform, scope = platform_filter(key, filters.platform)
    rows = await store.pending_reviews(services.pool, platform=platform, channel=filters.channel,
                                       category=filters.category, clause=filters.clause, queue=filters.queue,
                                       limit=limit, platforms=scope)
    counts = await store.pending_counts(services.pool, sla_minutes=sla_minutes, platforms=key.platform_list)
    now = datetime.now(UTC)
    items = []
    for r in rows:
        item = dict(r)  # a copy: the row stays as stored
        reasons = list(item.pop("reasons") or [])
        item["review_reasons"] = review_reasons(reasons) or ["flagged for review"]
        item["brigading"] = brigading_note(reasons)
        item["mine"] = item["claimed_by"] == moderator
        item.update(_sla(item["waiting_since"], item["queue"], sla_minutes, now))
        items.append(item)
    options = await store.pending_filter_options(services.pool, platforms=key.platform_list)
    return {"items": items, "counts": {**counts, "shown": len(items)}, "sla_minutes": sla_minutes,
            "options": options}


async def claim(services: Services, *, session: ConsoleSession, case_id: str) -> dict[str, Any]:
    """The JSON API's claim: exclusive, with expiry; claiming your own claim again extends it."""
    try:
        return (await review_service.claim(pool=services.pool, case_id=case_id, key=session.key,
                                           minutes=DEFAULT_CLAIM_MINUTES)).model_dump()
    except HTTPException as err:
        raise _from_http(err) from err


async def claim_next(services: Services, *, session: ConsoleSession, filters: QueueFilters) -> str | None:
    """Claim the oldest unclaimed case (or one already yours) in the filtered queue; its id, or None."""
    view = await review_queue(services, filters=filters, key=session.key, limit=20)
    for item in view["items"]:
        if item["claimed_by"] not in (None, session.moderator):
            continue
        try:
            await claim(services, session=session, case_id=item["case_id"])
        except ConsoleError as err:
            if err.status == 409:  # someone was faster: try the next one
                continue
            raise
        return str(item["case_id"])
    return None


# -- the case page ---------------------------------------------------------------------------------------

async def _session_state(services: Services, *, platform: str, user_id: str) -> tuple[UserSessionState | None, str]:
    """The user's live strike state (``state`` query of their session workflow), or None and why."""
    wid = user_session_id(platform, user_id)
    try:
        state = await services.temporal.get_workflow_handle(wid).query(
            STATE_QUERY, result_type=UserSessionState, rpc_timeout=timedelta(seconds=3))
        return state, ""
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None, "no session workflow: no live strikes"
        return None, f"strike state unavailable right now ({err.status.name if err.status else 'error'}); retry"
    except WorkflowQueryFailedError as err:
        return None, f"the session did not answer its state query: {err}"


async def workflow_state(services: Services, *, wid: str) -> dict[str, Any]:
    """The live state of a case's workflow as the Temporal server sees it (no worker round trip):
    running or closed, the activities in flight (with their attempt), the history length."""
    try:
        desc = await services.temporal.get_workflow_handle(wid).describe(rpc_timeout=timedelta(seconds=2))
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return {"status": "not found", "detail": "the workflow's history has expired (retention)"}
        return {"status": "unknown", "detail": "the workflow service did not answer; retry"}
    raw = desc.raw_description
    pending = [f"{a.activity_type.name} (attempt {a.attempt})" for a in raw.pending_activities]
    return {"status": desc.status.name.lower() if desc.status else "unknown", "pending": pending,
            "history_length": raw.workflow_execution_info.history_length, "detail": ""}


@dataclass
class LadderPreview:
    level_now: int
    level_after: int
    ladder_size: int
    score_now: float
    score_after: float
    actions: list[PlannedAction] = field(default_factory=list)
    rungs: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""


def ladder_preview(state: UserSessionState | None, *, services: Services, platform: str, category: str,
                   severity: str) -> LadderPreview:
    """What confirming a violation with the policy's sanction would add: the next rung of the ladder.
    Computed with the same pure functions the session workflow uses, from its current strikes."""
    config = state.config if state is not None else services.policy.escalation
    strikes = state.strikes if state is not None else []
    now = datetime.now(UTC)
    ladder = ladder_for(platform, config)
    try:
        cat, sev = HarmCategory(category), Severity(severity)
    except ValueError:
        cat, sev = HarmCategory.TARGETED_INSULT, Severity.MEDIUM
    before = weighted_score(strikes, now, config)
    after = before + strike_weight(cat, sev, config)
    level_now, level_after = level_for_score(before, len(ladder)), level_for_score(after, len(ladder))
    rungs = [{"n": i + 1, "label": r.label or "+".join(a.value for a in r.actions),
              "current": i + 1 == level_now, "next": i + 1 == level_after} for i, r in enumerate(ladder)]
    note = "" if cat != HarmCategory.NONE else "category 'none' carries no strike weight"
    return LadderPreview(level_now, level_after, len(ladder), round(before, 2), round(after, 2),
                         rung_actions(ladder, level_after), rungs, note)


async def case_page(services: Services, *, session: ConsoleSession, case_id: str) -> dict[str, Any] | None:
    """Everything the case page shows, or None for an unknown case or one outside the moderator's platforms
    (the same answer, as in the JSON API)."""
    case = await cases.case_timeline(services.pool, case_id=case_id)
    if case is None or not may_see_case(session.key, integration=case.get("integration"), platform=case["platform"]):
        return None
    reasons = list(case.get("reasons") or [])
    reasoning = case.get("reasoning") or {}
    verdict: dict[str, Any] | None = None
    if reasoning.get("verdict") is not None:
        try:
            verdict = LLMVerdict.model_validate(reasoning["verdict"]).model_dump(mode="json")
        except ValidationError:
            reasoning = {**reasoning, "detail": (reasoning.get("detail") or "") + " (the stored verdict is unreadable)"}
    context = case.get("context") or {}
    similar = list(context.get("similar_cases") or [])
    if similar:
        outcomes = await store.case_outcomes(services.pool, case_ids=[s.get("case_id") for s in similar])
        # Similar cases come from every platform's history; a scoped moderator sees only their platforms'.
        similar = [s for s in similar if _may_see_outcome(session.key, outcomes.get(s.get("case_id")))]
        for s in similar:
            s["now"] = outcomes.get(s.get("case_id"))
    author = await cases.user_history(services.pool, platform=case["platform"], user_id=case["author_id"],
                                          recent=6)
    target = (await cases.user_history(services.pool, platform=case["platform"], user_id=case["target_id"],
                                           recent=6)) if case.get("target_id") else None
    state, state_note = await _session_state(services, platform=case["platform"], user_id=case["author_id"])
    severity = (verdict or {}).get("severity") or Severity.MEDIUM.value
    # The category a confirmation would most likely carry: the case's, else the verdict's, else an insult.
    preview_category = next((c for c in (case["category"], (verdict or {}).get("category"))
                             if c and c != HarmCategory.NONE.value), HarmCategory.TARGETED_INSULT.value)
    preview = ladder_preview(state, services=services, platform=case["platform"], category=preview_category,
                             severity=severity)
    wid = case.get("workflow_id") or event_workflow_id(case_id)
    live = await workflow_state(services, wid=wid)
    blur_pref = await blur_preference(services, moderator=session.moderator)
    open_appeal = next((a for a in case["appeals"] if a["status"] == "open"), None)
    timeline = [{"at": case["received_at"], "what": "received", "who": case["platform"]},
                {"at": case["completed_at"], "what": f"decided by the pipeline: {_first_decision(case)}",
                 "who": "workflow"}]
    for a in case["audit"]:
        timeline.append({"at": a["at"], "what": a["kind"], "who": a["actor"], "audit": a})
    timeline.sort(key=lambda t: t["at"])
    return {
        "case": case, "reasons": reasons, "review_reasons": review_reasons(reasons),
        "brigading": brigading_note(reasons), "reasoning": reasoning, "verdict": verdict,
        "similar": similar, "author": author, "target": target, "strikes": state, "strikes_note": state_note,
        "preview": preview, "preview_category": preview_category, "preview_severity": severity,
        "temporal_url": temporal_ui_url(services.settings, wid), "workflow_id": wid, "workflow": live,
        "blur": blur_pref and case["category"] in SENSITIVE_CATEGORIES, "blur_pref": blur_pref,
        "pending": case.get("review_status") == "pending", "claim": case.get("claim"),
        "can_overturn": case["decision"] == "action" and not case.get("false_positive") and open_appeal is None,
        "open_appeal": open_appeal, "timeline": timeline,
        "scores": sorted((case.get("category_scores") or {}).items(), key=lambda kv: -float(kv[1])),
        "sla": _sla(case["completed_at"], case.get("review_queue") or "standard",
                    int(services.policy.review_sla_minutes), datetime.now(UTC))
        if case.get("review_status") == "pending" else None,
    }


def _may_see_outcome(key: KeyInfo, outcome: dict[str, Any] | None) -> bool:
    """A similar case is shown when its case row is one the key may see; one whose row is gone (platform
    unknown) only to an unscoped moderator."""
    if outcome is None:
        return key.role != Role.INGEST and key.platforms is None
    return may_see_case(key, integration=outcome["integration"], platform=outcome["platform"])


def _first_decision(case: dict[str, Any]) -> str:
    if case.get("review_status") in ("pending", "decided"):
        return "review"
    return str(case["decision"])


# -- decisions, overturns, appeals -----------------------------------------------------------------------

def decision_input(*, violation: str | None, category: str | None, actions: list[str], timeout_minutes: str | None,
                   note: str | None) -> ReviewDecisionIn:
    """Validate the decision form into the JSON API's input model (422 with what to fix)."""
    if violation not in ("yes", "no"):
        raise ConsoleError(422, "choose whether the message violates the policy (violation: yes or no)")
    allowed = {a.value for a in DECISION_ACTIONS}
    bad = [a for a in actions if a not in allowed]
    if bad:
        raise ConsoleError(422, f"unknown action {bad[0]!r}; choose from {', '.join(sorted(allowed))}")
    minutes: int | None = None
    if timeout_minutes and timeout_minutes.strip():
        if not timeout_minutes.strip().isdigit():
            raise ConsoleError(422, "timeout minutes must be a whole number between 1 and 40320")
        minutes = int(timeout_minutes)
    data: dict[str, Any] = {"violation": violation == "yes", "actions": actions if violation == "yes" else [],
                            "timeout_minutes": minutes, "note": (note or "").strip()}
    if violation == "yes":
        if not category or category == HarmCategory.NONE.value:
            raise ConsoleError(422, "a violation needs a category: choose targeted_insult, identity_hate, threat "
                                    "or profanity")
        data["category"] = category
    try:
        return ReviewDecisionIn.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "form"
        raise ConsoleError(422, f"{where}: {first.get('msg')}") from err


async def decide(services: Services, *, session: ConsoleSession, case_id: str,
                 body: ReviewDecisionIn) -> dict[str, Any]:
    """Deliver the decision to the waiting workflow (the JSON API's path: claim check, Temporal update,
    label, audit under the moderator's key name); returns the case's answer with the executed actions."""
    try:
        outcome = await review_service.decide(pool=services.pool, temporal=services.temporal, case_id=case_id,
                                              body=body, key=session.key)
    except HTTPException as err:
        raise _from_http(err) from err
    return outcome.model_dump(mode="json")


async def overturn(services: Services, *, session: ConsoleSession, case_id: str, reason: str) -> dict[str, Any]:
    """Undo an actioned case: file an appeal in the moderator's name and overturn it at once through the
    appeal path (inverse actions, strike removed, false positive marked)."""
    reason = reason.strip()
    if not reason:
        raise ConsoleError(422, "an overturn needs a reason: say why the action was wrong")
    if len(reason) > 2000:
        raise ConsoleError(422, f"the reason is {len(reason):,} characters; the limit is 2,000")
    try:
        await visible_case(services.pool, session.key, case_id, missing=f"no case with id {case_id}")
    except HTTPException as err:
        raise _from_http(err) from err
    try:
        row = await appeals.file_appeal(services.pool, case_id=case_id, reason=reason,
                                        filed_by=f"moderator:{session.moderator}")
    except Conflict as err:
        raise ConsoleError(409, str(err)) from err
    except NotActionable as err:
        raise ConsoleError(422, str(err)) from err
    if row is None:
        raise ConsoleError(404, f"no case with id {case_id}")
    return await decide_appeal(services, session=session, appeal_id=row["id"], outcome="overturn", note=reason)


async def decide_appeal(services: Services, *, session: ConsoleSession, appeal_id: str, outcome: str,
                        note: str) -> dict[str, Any]:
    try:
        body = AppealDecisionIn(outcome=outcome, note=note.strip())  # type: ignore[arg-type]
    except ValidationError as err:
        raise ConsoleError(422, "choose uphold or overturn; the note may be at most 2,000 characters") from err
    try:
        result = await appeal_service.decide_appeal(pool=services.pool, temporal=services.temporal,
                                                    appeal_id=appeal_id, body=body, key=session.key)
    except HTTPException as err:
        raise _from_http(err) from err
    if hasattr(result, "model_dump"):
        return {"status": "upheld", "appeal": result.model_dump(mode="json")}
    return {"status": "overturn started", "appeal_id": appeal_id}


async def appeals_queue(services: Services, *, status: str | None, key: KeyInfo) -> list[dict[str, Any]]:
    """Appeals oldest first with their case; a scoped moderator sees only appeals of their platforms' cases."""
    rows, _ = await appeals.list_appeals(services.pool, status=status, case_id=None, limit=100)
    if not rows:
        return []
    appealed = await store.appealed_cases(services.pool, case_ids=[r["case_id"] for r in rows])
    rows = [r for r in rows if (c := appealed.get(r["case_id"])) is not None
            and may_see_case(key, integration=c["integration"], platform=c["platform"])]
    rows.sort(key=lambda r: r["created_at"])  # oldest first: the order to work them
    return [{**r, "case": appealed.get(r["case_id"])} for r in rows]


# -- users, overview, audit ------------------------------------------------------------------------------

async def user_page(services: Services, *, platform: str, user_id: str, key: KeyInfo) -> dict[str, Any]:
    """A user's strikes and history; 403 for a platform outside a scoped key's platforms (as the JSON API)."""
    if not key.sees_platform(platform):
        raise ConsoleError(403, f"your key sees only the platforms {', '.join(key.platform_list or [])}; "
                                f"'{platform}' is not one of them")
    state, note = await _session_state(services, platform=platform, user_id=user_id)
    history = await cases.user_history(services.pool, platform=platform, user_id=user_id, recent=50)
    now = datetime.now(UTC)
    strikes = []
    if state is not None:
        window = timedelta(seconds=state.config.decay_window_s)
        for s in sorted(state.strikes, key=lambda s: s.at, reverse=True):
            strikes.append({"strike": s, "weight_now": round(decayed_weight(s, now, state.config), 2),
                            "gone_at": s.at + window})
    return {"platform": platform, "user_id": user_id, "state": state, "note": note, "strikes": strikes,
            "history": history, "workflow_id": user_session_id(platform, user_id)}


async def overview(services: Services, *, window: str, key: KeyInfo) -> dict[str, Any]:
    """The stats and volume series, of the key's platforms only when it is scoped."""
    figures = await stats.compute_stats(services.pool, window=window,
                                        sla_minutes=int(services.policy.review_sla_minutes),
                                        platforms=key.platform_list)
    bucket, n_buckets = {"1h": ("5 minutes", 12), "24h": ("1 hour", 24), "7d": ("6 hours", 28)}[window]
    by_bucket = await store.volume_series(services.pool, since=figures["since"], until=figures["until"],
                                          bucket=bucket, platforms=key.platform_list)
    step = (figures["until"] - figures["since"]) / n_buckets
    series = []
    for i in range(n_buckets):
        start = figures["since"] + step * i
        r = by_bucket.get(start, {"n": 0, "actioned": 0})
        series.append({"start": start, "n": r["n"], "actioned": r["actioned"]})
    return {"stats": figures, "series": series}


async def audit_page(services: Services, *, kind: str | None, key: KeyInfo) -> list[dict[str, Any]]:
    """The audit chain spans every platform: 403 for a scoped key, as in the JSON API."""
    try:
        refuse_scoped(key, "the audit log")
    except HTTPException as err:
        raise _from_http(err) from err
    rows, _ = await audit.list_audit(services.pool, case_id=None, kind=kind, limit=100)
    return rows
