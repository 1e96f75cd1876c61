"""Backup and restore against the real PostgreSQL and Qdrant local mode: what was backed up comes back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from qdrant_client import AsyncQdrantClient, models

from core.db import ensure_database
from core.settings import DatabaseSettings, Settings
from core.storage import cases
from domain.models import CaseRecord, ChatEvent, DecideResult, Decision, HarmCategory, ScreenResult
from ops.backup import BackupError, backup, restore


async def test_backup_then_restore_into_a_fresh_database_brings_cases_and_vectors_back(
        settings: Settings, pool: asyncpg.Pool, tmp_path: Path) -> None:
    case_id = str(uuid.uuid4())
    ev = ChatEvent(event_id=case_id, platform="discord", channel_id="c", author_id="a", content="backup me",
                   received_at=datetime.now(UTC))
    await cases.record_case(pool, CaseRecord(
        case_id=case_id, event=ev, path="full", screen=ScreenResult(risk_score=0.9),
        decision=DecideResult(decision=Decision.ACTION, category=HarmCategory.TARGETED_INSULT)))
    data = tmp_path / "data"
    qdrant = AsyncQdrantClient(path=str(data / "qdrant"))
    await qdrant.create_collection("harassment_events", vectors_config=models.VectorParams(
        size=4, distance=models.Distance.COSINE))
    await qdrant.upsert("harassment_events", points=[models.PointStruct(id=1, vector=[1, 0, 0, 0],
                                                                        payload={"case_id": case_id})])
    await qdrant.close()

    source = settings.model_copy(update={"data_dir": data})
    manifest = backup(source, tmp_path / "bk")
    assert "postgres.dump" in manifest["files"]  # type: ignore[operator]

    fresh_url = settings.database_url.rsplit("/", 1)[0] + f"/restore_{uuid.uuid4().hex[:8]}"
    await ensure_database(fresh_url)
    target = settings.model_copy(update={"data_dir": tmp_path / "restored",
                                         "database": DatabaseSettings(url=fresh_url)})
    restore(target, tmp_path / "bk")
    conn = await asyncpg.connect(fresh_url)
    try:
        assert await conn.fetchval("SELECT content FROM cases WHERE case_id = $1", case_id) == "backup me"
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE case_id = $1", case_id) == 1
    finally:
        await conn.close()
    restored = AsyncQdrantClient(path=str(tmp_path / "restored" / "qdrant"))
    assert (await restored.count("harassment_events")).count == 1
    await restored.close()


def test_a_tampered_backup_is_refused(settings: Settings, tmp_path: Path) -> None:
    backup(settings.model_copy(update={"data_dir": tmp_path / "empty"}), tmp_path / "bk")
    with (tmp_path / "bk" / "postgres.dump").open("ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(BackupError, match="changed since it was written"):
        restore(settings, tmp_path / "bk")
