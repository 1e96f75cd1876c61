"""Reporting API against the real stack: case pages, the review queue and claims, review delivery to a
waiting workflow, appeals, stats, audit (and its tamper check) and the DSA export."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from typer.testing import CliRunner

from core.settings import Settings, get_settings
from core.storage.cases import record_case
from core.storage.keys import Role, create_key
from domain.models import (
    ActionOutcome,
    ActionType,
    CaseRecord,
    ChatEvent,
    DecideResult,
    Decision,
    HarmCategory,
    LLMVerdict,
    ReasonResult,
    ReasonStatus,
    ScreenResult,
    Severity,
)
from domain.reviews import ReviewDecision, ReviewOutcome
from domain.sessions import UserSessionState
from workflows import contract
from workflows.contract import MODERATION_QUEUE, SUBMIT_REVIEW_UPDATE, event_workflow_id, user_session_id


async def make_case(pool: asyncpg.Pool, *, decision: Decision = Decision.ACTION, platform: str = "twitch",
                    received_at: datetime | None = None, case_id: str | None = None, status: str = "applied",
                    actions: tuple[ActionType, ...] = (ActionType.DELETE,), review: bool = False,
                    content: str = "you are an idiot") -> str:
    cid = case_id or f"case-{uuid.uuid4().hex}"
    at = received_at or datetime.now(UTC)
    ev = ChatEvent(event_id=cid, platform=platform, channel_id="chan-1", author_id="author-1", target_id="victim-1",
                   content=content, message_id=f"m-{cid}", received_at=at,
                   integration="test-ingest")  # sent by the `keys` fixture's ingest key
    reason = ReasonResult(status=ReasonStatus.OK, verdict=LLMVerdict(
        violation=True, category=HarmCategory.TARGETED_INSULT, severity=Severity.MEDIUM, policy_clause="H2",
        rationale="calls the target an idiot", confidence=0.93), model="fake", policy_version="harassment-v1")
    outcomes = [ActionOutcome(action=a, connector="log", idempotency_key=f"{cid}:{a.value}", status=status)
                for a in actions] if decision == Decision.ACTION else []
    await record_case(pool, CaseRecord(
        case_id=cid, event=ev, path="full",
        screen=ScreenResult(risk_score=0.91, category_scores={"targeted_insult": 0.91}, model_version="m1"),
        decision=DecideResult(decision=decision, category=HarmCategory.TARGETED_INSULT,
                              needs_review=decision == Decision.REVIEW, reasons=["risk 0.910 >= review threshold"]),
        reason=reason, actions=outcomes, stage_ms={"screen": 3.0, "reason": 120.0}, policy_version="harassment-v1",
        workflow_id=event_workflow_id(cid), completed_at=at + timedelta(seconds=1)))
    if review or decision == Decision.REVIEW:
        await pool.execute("UPDATE cases SET review_status = 'pending', review_queue = 'standard' "
                           "WHERE case_id = $1", cid)
    return cid


def h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


@pytest_asyncio.fixture(scope="module")
async def second_moderator(pool: asyncpg.Pool) -> tuple[str, str]:
    name = f"mod-b-{uuid.uuid4().hex[:6]}"
    return name, await create_key(pool, name=name, role=Role.MODERATOR)


# -- cases: pagination and filters ---------------------------------------------------------------------------

async def test_case_pages_cover_every_case_once_in_order(api: httpx.AsyncClient, keys: dict[str, str],
                                                         pool: asyncpg.Pool) -> None:
    platform = f"pg{uuid.uuid4().hex[:8]}"
    base = datetime(2026, 1, 1, tzinfo=UTC)
    # Pairs share a received_at, so the case_id tie-break decides their order across page boundaries.
    ids = [await make_case(pool, platform=platform, received_at=base + timedelta(seconds=i // 2),
                           case_id=f"p-{uuid.uuid4().hex}") for i in range(25)]
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"platform": platform, "limit": 10}
        if cursor:
            params["cursor"] = cursor
        r = await api.get("/v1/cases", params=params, headers=h(keys["moderator"]))
        assert r.status_code == 200, r.text
        page = r.json()
        seen += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == 3 and [len(p) for p in (seen[:10], seen[10:20], seen[20:])] == [10, 10, 5]
    got = [c["case_id"] for c in seen]
    assert sorted(got) == sorted(ids) and len(set(got)) == 25
    keys_in_order = [(c["received_at"], c["case_id"]) for c in seen]
    assert keys_in_order == sorted(keys_in_order, reverse=True)


async def test_case_filters(api: httpx.AsyncClient, keys: dict[str, str], pool: asyncpg.Pool) -> None:
    platform = f"pf{uuid.uuid4().hex[:8]}"
    acted = await make_case(pool, platform=platform)
    allowed = await make_case(pool, platform=platform, decision=Decision.ALLOW)
    r = await api.get("/v1/cases", params={"platform": platform, "decision": "allow"}, headers=h(keys["moderator"]))
    assert [c["case_id"] for c in r.json()["items"]] == [allowed]
    r = await api.get("/v1/cases", params={"platform": platform, "from": "2000-01-01T00:00:00Z",
                                           "to": "2001-01-01T00:00:00Z"}, headers=h(keys["moderator"]))
    assert r.json()["items"] == []
    r = await api.get("/v1/cases", params={"platform": platform, "author": "author-1"}, headers=h(keys["moderator"]))
    assert {c["case_id"] for c in r.json()["items"]} == {acted, allowed}


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/v1/stats", {"window": "2d"}, "window"),
    ("/v1/cases", {"from": "yesterday"}, "from"),
    ("/v1/cases", {"limit": 0}, "limit"),
    ("/v1/cases", {"limit": 201}, "limit"),
    ("/v1/cases", {"decision": "maybe"}, "decision"),
    ("/v1/cases", {"cursor": "bm90LWEtY3Vyc29y"}, "cursor"),
    ("/v1/cases", {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to"),
    ("/v1/reviews", {"queue": "vip"}, "queue"),
    ("/v1/exports/statements-of-reasons", {"from": "2026-01-01T00:00:00Z"}, "to"),
])
async def test_bad_filters_are_422_naming_the_field(api: httpx.AsyncClient, keys: dict[str, str], path: str,
                                                   params: dict[str, Any], field: str) -> None:
    r = await api.get(path, params=params, headers=h(keys["admin"]))
    assert r.status_code == 422, r.text
    assert field in [e["field"].split(".")[-1] for e in r.json()["errors"]]
    assert field in r.json()["detail"]


async def test_a_cursor_from_another_listing_is_refused(api: httpx.AsyncClient, keys: dict[str, str]) -> None:
    other = base64.urlsafe_b64encode(json.dumps(["audit", 5]).encode()).decode().rstrip("=")
    r = await api.get("/v1/cases", params={"cursor": other}, headers=h(keys["moderator"]))
    assert r.status_code == 422 and "cursor" in r.json()["detail"]


async def test_case_timeline(api: httpx.AsyncClient, keys: dict[str, str], pool: asyncpg.Pool,
                             settings: Settings) -> None:
    cid = await make_case(pool, content="you are an idiot, timeline")
    await pool.execute(
        "INSERT INTO actions (idempotency_key, case_id, platform, action, connector, status, request, response) "
        "VALUES ($1, $2, 'twitch', 'delete', 'log', 'applied', $3, $4)",
        f"{cid}:delete", cid, {"action": "delete"}, {"status": "ok"})
    r = await api.get(f"/v1/cases/{cid}", headers=h(keys["moderator"]))
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["content"] == "you are an idiot, timeline"
    assert c["reasoning"]["verdict"]["policy_clause"] == "H2" and c["reasoning"]["verdict"]["rationale"]
    assert c["policy_version"] == "harassment-v1" and c["stage_ms"] == {"screen": 3.0, "reason": 120.0}
    assert c["action_ledger"][0]["status"] == "applied" and c["action_ledger"][0]["response"] == {"status": "ok"}
    assert [a["kind"] for a in c["audit"]] == ["decision"]
    assert c["temporal_ui_url"] == (f"{settings.temporal.ui_public_url}/namespaces/{settings.temporal.namespace}"
                                    f"/workflows/event-{cid}")
    assert (await api.get("/v1/cases/nope", headers=h(keys["moderator"]))).status_code == 404


# -- review queue and claims ---------------------------------------------------------------------------------

async def test_claims_are_exclusive_and_expire(api: httpx.AsyncClient, keys: dict[str, str], pool: asyncpg.Pool,
                                               second_moderator: tuple[str, str]) -> None:
    platform = f"rq{uuid.uuid4().hex[:8]}"
    cid = await make_case(pool, decision=Decision.REVIEW, platform=platform)
    other_name, other_key = second_moderator
    listed = await api.get("/v1/reviews", params={"platform": platform}, headers=h(keys["moderator"]))
    assert [i["case_id"] for i in listed.json()["items"]] == [cid]

    first = await api.post(f"/v1/reviews/{cid}/claim", headers=h(keys["moderator"]))
    assert first.status_code == 200 and first.json()["moderator"] == "test-moderator"
    again = await api.post(f"/v1/reviews/{cid}/claim", params={"minutes": 60}, headers=h(keys["moderator"]))
    assert again.status_code == 200 and again.json()["expires_at"] > first.json()["expires_at"]

    taken = await api.post(f"/v1/reviews/{cid}/claim", headers=h(other_key))
    assert taken.status_code == 409 and "test-moderator" in taken.json()["detail"]
    blocked = await api.post(f"/v1/reviews/{cid}/decision", json={"violation": False}, headers=h(other_key))
    assert blocked.status_code == 409 and "claimed by test-moderator" in blocked.json()["detail"]

    unclaimed = await api.get("/v1/reviews", params={"platform": platform, "claimed": "false"},
                              headers=h(keys["moderator"]))
    assert unclaimed.json()["items"] == []

    # The claim runs out (moved into the past rather than waited for): the other moderator may take it.
    await pool.execute("UPDATE review_claims SET expires_at = now() - interval '1 second' WHERE case_id = $1", cid)
    took = await api.post(f"/v1/reviews/{cid}/claim", headers=h(other_key))
    assert took.status_code == 200 and took.json()["moderator"] == other_name


async def test_claiming_a_case_not_in_review_is_409(api: httpx.AsyncClient, keys: dict[str, str],
                                                    pool: asyncpg.Pool) -> None:
    cid = await make_case(pool, decision=Decision.ALLOW)
    r = await api.post(f"/v1/reviews/{cid}/claim", headers=h(keys["moderator"]))
    assert r.status_code == 409 and "not waiting for review" in r.json()["detail"]


@workflow.defn(name="StandInReviewCase")
class StandInReviewCase:
    """Stands in for the case workflow: waits for ``submit_review`` and answers a ReviewOutcome."""

    def __init__(self) -> None:
        self.decision: ReviewDecision | None = None

    @workflow.run
    async def run(self, case_id: str) -> str:
        await workflow.wait_condition(lambda: self.decision is not None)
        return case_id

    @workflow.update(name=SUBMIT_REVIEW_UPDATE)
    async def submit_review(self, decision: ReviewDecision) -> ReviewOutcome:
        self.decision = decision
        return ReviewOutcome(case_id=workflow.info().workflow_id.removeprefix("event-"),
                             decision="action" if decision.violation else "allow", reviewer=decision.reviewer,
                             actions=[ActionOutcome(action=a, connector="stand-in", idempotency_key=f"k:{a.value}",
                                                    status="applied") for a in decision.actions])

    @workflow.query(name="decision")
    def get_decision(self) -> ReviewDecision | None:
        return self.decision


@workflow.defn(name="StandInUserSessionState")
class StandInUserSession:
    """Answers the ``state`` query as the user-session workflow does (its state model)."""

    @workflow.run
    async def run(self, strikes: int) -> None:
        self.strikes = strikes
        await workflow.wait_condition(lambda: False)

    @workflow.query(name=contract.STATE_QUERY)
    def state(self) -> UserSessionState:
        return UserSessionState(platform=workflow.info().workflow_id.split("-")[1], author_id="author-1",
                                strikes_active=self.strikes, level=2)


@pytest_asyncio.fixture(scope="module")
async def stand_in_worker(client: Client) -> AsyncIterator[str]:
    queue = f"review-stand-in-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[StandInReviewCase, StandInUserSession],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        yield queue


async def test_review_decision_reaches_the_waiting_workflow(api: httpx.AsyncClient, keys: dict[str, str],
                                                            pool: asyncpg.Pool, client: Client,
                                                            stand_in_worker: str) -> None:
    cid = await make_case(pool, decision=Decision.REVIEW)
    handle = await client.start_workflow(StandInReviewCase.run, cid, id=event_workflow_id(cid),
                                         task_queue=stand_in_worker)
    assert (await api.post(f"/v1/reviews/{cid}/claim", headers=h(keys["moderator"]))).status_code == 200
    started = time.monotonic()
    r = await api.post(f"/v1/reviews/{cid}/decision", headers=h(keys["moderator"]),
                       json={"violation": True, "category": "targeted_insult", "actions": ["delete", "warn"],
                             "note": "clear insult", "reviewer": "someone-else"})
    elapsed = time.monotonic() - started
    assert r.status_code == 200, r.text
    assert elapsed < 1.0, f"review took {elapsed:.2f}s"
    out = r.json()
    assert out["case_id"] == cid and out["decision"] == "action" and out["reviewer"] == "test-moderator"
    assert [a["action"] for a in out["actions"]] == ["delete", "warn"]
    got = await handle.query(StandInReviewCase.get_decision)
    assert got is not None and got.reviewer == "test-moderator" and got.note == "clear insult"
    assert got.category == HarmCategory.TARGETED_INSULT and got.decided_at is not None
    assert await handle.result() == cid
    label = await pool.fetchrow("SELECT label, category FROM labels WHERE case_id = $1 AND source = 'review'", cid)
    assert label is not None and label["label"] is True and label["category"] == "targeted_insult"
    assert await pool.fetchval("SELECT count(*) FROM review_claims WHERE case_id = $1", cid) == 0


async def test_decision_without_a_waiting_workflow_is_409(api: httpx.AsyncClient, keys: dict[str, str],
                                                          pool: asyncpg.Pool) -> None:
    cid = await make_case(pool, decision=Decision.REVIEW)
    r = await api.post(f"/v1/reviews/{cid}/decision", json={"violation": False}, headers=h(keys["moderator"]))
    assert r.status_code == 409 and "no running workflow" in r.json()["detail"]


# -- users ----------------------------------------------------------------------------------------------------

async def test_user_strikes_and_history(api: httpx.AsyncClient, keys: dict[str, str], pool: asyncpg.Pool,
                                        client: Client, stand_in_worker: str) -> None:
    platform = f"us{uuid.uuid4().hex[:8]}"
    await make_case(pool, platform=platform)
    await make_case(pool, platform=platform, decision=Decision.ALLOW)
    r = await api.get(f"/v1/users/{platform}/author-1", headers=h(keys["moderator"]))
    assert r.status_code == 200, r.text
    u = r.json()
    assert u["session"]["found"] is False and u["session"]["strikes"] == 0
    assert u["as_author"] == {"action": 1, "allow": 1} and len(u["recent_cases"]) == 2
    handle = await client.start_workflow(StandInUserSession.run, 3, id=user_session_id(platform, "author-1"),
                                         task_queue=stand_in_worker)
    try:
        u = (await api.get(f"/v1/users/{platform}/author-1", headers=h(keys["moderator"]))).json()
        assert u["session"]["found"] is True and u["session"]["strikes"] == 3 and u["session"]["state"]["level"] == 2
    finally:
        await handle.terminate("test done")
    victim = (await api.get(f"/v1/users/{platform}/victim-1", headers=h(keys["moderator"]))).json()
    assert victim["as_target"] == {"action": 1, "allow": 1} and victim["as_author"] == {}


# -- appeals -------------------------------------------------------------------------------------------------

async def test_appeal_filing_rules_and_uphold(api: httpx.AsyncClient, keys: dict[str, str],
                                              pool: asyncpg.Pool) -> None:
    cid = await make_case(pool)
    filed = await api.post("/v1/appeals", json={"case_id": cid, "reason": "it was a joke between friends"},
                           headers=h(keys["ingest"]))
    assert filed.status_code == 201, filed.text
    appeal = filed.json()
    assert appeal["status"] == "open" and appeal["filed_by"] == "ingest:test-ingest"
    dup = await api.post("/v1/appeals", json={"case_id": cid, "reason": "again"}, headers=h(keys["moderator"]))
    assert dup.status_code == 409 and appeal["id"] in dup.json()["detail"]
    clean = await make_case(pool, decision=Decision.ALLOW)
    r = await api.post("/v1/appeals", json={"case_id": clean, "reason": "x"}, headers=h(keys["ingest"]))
    assert r.status_code == 422 and "not actioned" in r.json()["detail"]

    upheld = await api.post(f"/v1/appeals/{appeal['id']}/decision", json={"outcome": "uphold", "note": "insult"},
                            headers=h(keys["moderator"]))
    assert upheld.status_code == 200 and upheld.json()["status"] == "upheld"
    assert upheld.json()["decided_by"] == "moderator:test-moderator"
    again = await api.post(f"/v1/appeals/{appeal['id']}/decision", json={"outcome": "overturn"},
                           headers=h(keys["moderator"]))
    assert again.status_code == 409
    kinds = [r["kind"] for r in await pool.fetch("SELECT kind FROM audit_log WHERE case_id = $1 ORDER BY seq", cid)]
    assert kinds == ["decision", "appeal.filed", "appeal.decided"]
    label = await pool.fetchrow("SELECT label FROM labels WHERE case_id = $1 AND source = 'appeal'", cid)
    assert label is not None and label["label"] is True
    listed = await api.get("/v1/appeals", params={"case_id": cid}, headers=h(keys["moderator"]))
    assert [a["id"] for a in listed.json()["items"]] == [appeal["id"]]


async def test_overturn_answers_202_and_starts_the_appeal_workflow(api: httpx.AsyncClient, keys: dict[str, str],
                                                                   pool: asyncpg.Pool, client: Client) -> None:
    cid = await make_case(pool)
    appeal = (await api.post("/v1/appeals", json={"case_id": cid, "reason": "not me"},
                             headers=h(keys["moderator"]))).json()
    r = await api.post(f"/v1/appeals/{appeal['id']}/decision", json={"outcome": "overturn", "note": "sarcasm"},
                       headers=h(keys["moderator"]))
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status_url"] == f"/v1/appeals/{appeal['id']}" and r.headers["location"] == body["status_url"]
    handle = client.get_workflow_handle(contract.appeal_workflow_id(appeal["id"]))
    try:
        desc = await handle.describe()
        assert desc.workflow_type == contract.APPEAL_WORKFLOW and desc.task_queue == MODERATION_QUEUE
        assert desc.status == WorkflowExecutionStatus.RUNNING
        status = (await api.get(body["status_url"], headers=h(keys["ingest"]))).json()
        assert status["status"] == "open" and status["pending_outcome"] == "overturn"
        second = await api.post(f"/v1/appeals/{appeal['id']}/decision", json={"outcome": "uphold"},
                                headers=h(keys["moderator"]))
        assert second.status_code == 409 and "being overturned" in second.json()["detail"]
    finally:
        await handle.terminate("test cleanup: no moderation worker in this test")


# -- stats ---------------------------------------------------------------------------------------------------

async def test_stats_shape_and_backlog(api: httpx.AsyncClient, keys: dict[str, str], pool: asyncpg.Pool) -> None:
    before = (await api.get("/v1/stats", params={"window": "1h"}, headers=h(keys["moderator"]))).json()
    cid = await make_case(pool, decision=Decision.REVIEW)
    await pool.execute("UPDATE cases SET review_queue = 'senior' WHERE case_id = $1", cid)
    r = await api.get("/v1/stats", params={"window": "1h"}, headers=h(keys["moderator"]))
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["volume"] == before["volume"] + 1
    assert s["review_backlog"]["pending"] == before["review_backlog"]["pending"] + 1
    assert s["review_backlog"]["sla_breaches"] == before["review_backlog"]["sla_breaches"] + 1
    assert s["latency"]["screen"]["count"] >= 1 and s["latency"]["reason"]["p50_ms"] > 0
    assert s["reasoning_calls"] >= 1 and s["llm_error_rate"] is not None


# -- audit ---------------------------------------------------------------------------------------------------

async def test_audit_listing_filters(api: httpx.AsyncClient, keys: dict[str, str], pool: asyncpg.Pool) -> None:
    cid = await make_case(pool)
    r = await api.get("/v1/audit", params={"case_id": cid}, headers=h(keys["admin"]))
    assert r.status_code == 200 and [e["kind"] for e in r.json()["items"]] == ["decision"]
    page1 = (await api.get("/v1/audit", params={"limit": 2}, headers=h(keys["admin"]))).json()
    page2 = (await api.get("/v1/audit", params={"limit": 2, "cursor": page1["next_cursor"]},
                           headers=h(keys["admin"]))).json()
    seqs = [e["seq"] for e in page1["items"] + page2["items"]]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 4
    assert (await api.get("/v1/audit", headers=h(keys["moderator"]))).status_code == 403


async def test_audit_verify_detects_tampering(settings: Settings, pool: asyncpg.Pool,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from ops.cli.main import app as cli

    await make_case(pool)
    monkeypatch.setenv("SAFETY_DATABASE__URL", settings.database_url)
    monkeypatch.setenv("SAFETY_DATA_DIR", str(settings.data_dir))  # the dev audit key the writers used

    async def verify() -> Any:
        get_settings.cache_clear()
        try:
            return await asyncio.to_thread(CliRunner().invoke, cli, ["audit", "verify"])
        finally:
            get_settings.cache_clear()

    clean = await verify()
    assert clean.exit_code == 0 and "OK" in clean.stdout, clean.output
    target = await pool.fetchrow("SELECT seq, payload FROM audit_log ORDER BY seq DESC LIMIT 1")
    original = target["payload"]
    async with pool.acquire() as conn:
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
        try:
            await conn.execute("UPDATE audit_log SET payload = $2 WHERE seq = $1", target["seq"],
                               {**original, "decision": "allow"})
            broken = await verify()
        finally:  # put the entry back, so the rest of the session sees an intact chain
            await conn.execute("UPDATE audit_log SET payload = $2 WHERE seq = $1", target["seq"], original)
            await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change")
    assert broken.exit_code == 1 and f"seq {target['seq']}" in broken.output
    assert (await verify()).exit_code == 0


# -- transparency export -------------------------------------------------------------------------------------

async def test_statements_of_reasons_export(api: httpx.AsyncClient, keys: dict[str, str],
                                            pool: asyncpg.Pool) -> None:
    day = datetime(2021, 3, 4, 10, 0, tzinfo=UTC) + timedelta(minutes=uuid.uuid4().int % 10_000)
    acted = [await make_case(pool, received_at=day + timedelta(seconds=i),
                             actions=(ActionType.DELETE, ActionType.TIMEOUT)) for i in range(3)]
    await make_case(pool, received_at=day + timedelta(seconds=5), decision=Decision.ALLOW)
    await make_case(pool, received_at=day + timedelta(seconds=6), status="shadow")  # never applied
    await make_case(pool, received_at=day + timedelta(hours=2))  # outside the range
    params = {"from": day.isoformat(), "to": (day + timedelta(hours=1)).isoformat()}
    r = await api.get("/v1/exports/statements-of-reasons", params=params, headers=h(keys["admin"]))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [s["uuid"] for s in lines] == acted
    s = lines[0]
    assert s["decision_visibility"] == ["DECISION_VISIBILITY_CONTENT_REMOVED"]
    assert s["decision_account"] == "DECISION_ACCOUNT_SUSPENDED"
    assert s["decision_ground"] == "DECISION_GROUND_INCOMPATIBLE_CONTENT"
    assert "H2" in s["incompatible_content_ground"] and s["incompatible_content_explanation"]
    assert s["category"] == "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH"
    assert s["automated_detection"] == "Yes" and s["automated_decision"] == "AUTOMATED_DECISION_FULLY"
    assert s["application_date"] == day.date().isoformat() and s["content_type"] == ["CONTENT_TYPE_TEXT"]
    assert s["redress"]["internal_complaint"] is True and "/v1/appeals" in s["redress"]["how"]
    assert "idiot" not in r.text  # neither the message nor free-text rationale is published


# -- feedback ------------------------------------------------------------------------------------------------

async def test_export_labels_prefers_the_appeal_label(api: httpx.AsyncClient, keys: dict[str, str],
                                                      pool: asyncpg.Pool) -> None:
    from core.storage import appeals, cases
    from ops.training.feedback import export_labels

    cid = await make_case(pool, content=f"label me {uuid.uuid4().hex}")
    await cases.write_label(pool, case_id=cid, harmful=True, source="review", category="targeted_insult")
    appeal = await appeals.file_appeal(pool, case_id=cid, reason="r", filed_by="t")
    assert appeal is not None
    # an overturn is recorded only once it was reserved (as the API does before starting the workflow)
    await appeals.mark_overturn_pending(pool, appeal_id=appeal["id"], decided_by="t", note="", workflow_id="w")
    await appeals.record_appeal_decision(pool, appeal_id=appeal["id"], outcome="overturn", decided_by="t", note="")
    text = await pool.fetchval("SELECT content FROM cases WHERE case_id = $1", cid)
    rows = [r for r in await export_labels(pool) if r["text"] == text]
    assert rows == [{"text": text, "label": False, "category": "none", "source": "appeal"}]
