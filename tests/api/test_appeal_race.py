"""Appeal decisions are exclusive in the database: of a concurrent uphold and overturn (or two upholds)
of one appeal exactly one wins and the other is answered 409; and the revert activity re-reads the
appeal and refuses to revert the actions under an upheld appeal. Real API, PostgreSQL and Temporal."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment

from activities.actions import ActionActivities
from activities.connectors import ConnectorRouter, LogConnector
from core.storage import appeals
from domain.actions import RevertInput
from domain.appeals import APPEAL_NOT_OVERTURNED
from domain.models import ActInput, ActionType, ChatEvent, PlannedAction
from tests.api.test_reporting import h, make_case
from workflows import contract

ROUNDS = 12


async def _appeal(api: httpx.AsyncClient, keys: dict[str, str], pool: asyncpg.Pool) -> str:
    cid = await make_case(pool)
    r = await api.post("/v1/appeals", json={"case_id": cid, "reason": "race"}, headers=h(keys["ingest"]))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _decide(api: httpx.AsyncClient, key: str, appeal_id: str, outcome: str) -> httpx.Response:
    return await api.post(f"/v1/appeals/{appeal_id}/decision", json={"outcome": outcome, "note": outcome},
                          headers=h(key))


async def _cleanup(client: Client, appeal_id: str) -> None:
    try:  # no moderation worker in these tests: the overturn workflow waits; end it
        await client.get_workflow_handle(contract.appeal_workflow_id(appeal_id)).terminate("test cleanup")
    except RPCError:
        pass


async def test_concurrent_uphold_and_overturn_exactly_one_wins(api: httpx.AsyncClient, keys: dict[str, str],
                                                               pool: asyncpg.Pool, client: Client) -> None:
    for i in range(ROUNDS):
        appeal_id = await _appeal(api, keys, pool)
        order = ("uphold", "overturn") if i % 2 else ("overturn", "uphold")
        try:
            results = dict(zip(order, await asyncio.gather(
                *(_decide(api, keys["moderator"], appeal_id, o) for o in order)), strict=True))
        finally:
            await _cleanup(client, appeal_id)
        codes = {o: r.status_code for o, r in results.items()}
        row = await pool.fetchrow("SELECT status, pending_outcome FROM appeals WHERE id = $1", appeal_id)
        if codes["uphold"] == 200:
            assert codes["overturn"] == 409, (i, codes, results["overturn"].text)
            assert (row["status"], row["pending_outcome"]) == ("upheld", None)
        else:
            assert codes == {"uphold": 409, "overturn": 202}, (i, codes, results["uphold"].text)
            assert (row["status"], row["pending_outcome"]) == ("open", "overturn")
        decided = await pool.fetchval("SELECT count(*) FROM audit_log WHERE kind = 'appeal.decided' "
                                      "AND payload->>'appeal_id' = $1", appeal_id)
        assert decided == (1 if codes["uphold"] == 200 else 0)


async def test_concurrent_upholds_exactly_one_wins(api: httpx.AsyncClient, keys: dict[str, str],
                                                   pool: asyncpg.Pool) -> None:
    for _ in range(ROUNDS // 2):
        appeal_id = await _appeal(api, keys, pool)
        first, second = await asyncio.gather(_decide(api, keys["moderator"], appeal_id, "uphold"),
                                             _decide(api, keys["admin"], appeal_id, "uphold"))
        assert sorted([first.status_code, second.status_code]) == [200, 409], (first.text, second.text)
        loser = first if first.status_code == 409 else second
        assert "already decided (upheld by" in loser.json()["detail"]


async def test_the_revert_activity_refuses_under_an_upheld_appeal(pool: asyncpg.Pool) -> None:
    acts = ActionActivities(pool, ConnectorRouter(LogConnector(), {}))
    ev = ChatEvent(event_id=str(uuid.uuid4()), platform="other", channel_id="c", author_id=f"a-{uuid.uuid4().hex}",
                   content="(not sent)", message_id="m", received_at=datetime.now(UTC))
    await make_case(pool, case_id=ev.event_id, platform="other")
    plan = [PlannedAction(action=ActionType.TIMEOUT, duration_s=600, reason="H2")]
    await ActivityEnvironment().run(acts.execute_actions, ActInput(case_id=ev.event_id, event=ev, actions=plan))
    row = await appeals.file_appeal(pool, case_id=ev.event_id, reason="not me", filed_by="ingest:t")
    assert row is not None
    upheld = await appeals.decide_uphold(pool, appeal_id=row["id"], decided_by="moderator:m", note="stands")
    assert upheld is not None and upheld["status"] == "upheld"
    # an overturn workflow that started anyway (the old race) reaches its revert step
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(acts.revert_actions, RevertInput(
            case_id=ev.event_id, event=ev, appeal_id=row["id"], reason="appeal overturned"))
    assert err.value.type == APPEAL_NOT_OVERTURNED and err.value.non_retryable and "upheld" in err.value.message
    statuses = {r["idempotency_key"]: r["status"] for r in await pool.fetch(
        "SELECT idempotency_key, status FROM actions WHERE case_id = $1", ev.event_id)}
    assert statuses == {f"{ev.event_id}:timeout": "applied"}  # nothing reverted

    # held by an overturn, the same call reverts
    ev2 = ev.model_copy(update={"event_id": str(uuid.uuid4())})
    await make_case(pool, case_id=ev2.event_id, platform="other")
    await ActivityEnvironment().run(acts.execute_actions, ActInput(case_id=ev2.event_id, event=ev2, actions=plan))
    row2 = await appeals.file_appeal(pool, case_id=ev2.event_id, reason="not me", filed_by="ingest:t")
    assert row2 is not None
    assert await appeals.mark_overturn_pending(pool, appeal_id=row2["id"], decided_by="moderator:m", note="",
                                               workflow_id="w") is not None
    out = await ActivityEnvironment().run(acts.revert_actions, RevertInput(
        case_id=ev2.event_id, event=ev2, appeal_id=row2["id"], reason="appeal overturned"))
    assert [o.status for o in out.outcomes] == ["reverted"], out
