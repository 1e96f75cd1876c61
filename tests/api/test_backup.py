"""Backup and restore against the real PostgreSQL and Qdrant local mode: what was backed up comes back;
the manifest is signed and restore accepts exactly the files it lists."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr
from qdrant_client import AsyncQdrantClient, models

from core.db import ensure_database
from core.settings import DatabaseSettings, Settings
from core.storage import cases
from domain.models import CaseRecord, ChatEvent, DecideResult, Decision, HarmCategory, ScreenResult
from ops.backup import BackupError, backup, restore, verify


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

    source = settings.model_copy(update={"data_dir": data, "backup_key": _same_key(settings)})
    manifest = backup(source, tmp_path / "bk")
    assert "postgres.dump" in manifest["files"]  # type: ignore[operator]

    fresh_url = settings.database_url.rsplit("/", 1)[0] + f"/restore_{uuid.uuid4().hex[:8]}"
    await ensure_database(fresh_url)
    target = settings.model_copy(update={"data_dir": tmp_path / "restored", "backup_key": _same_key(settings),
                                         "database": DatabaseSettings(url=fresh_url)})
    restore(target, tmp_path / "bk")
    conn = await asyncpg.connect(fresh_url)
    try:
        assert await conn.fetchval("SELECT content FROM cases WHERE case_id = $1", case_id) == "backup me"
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE case_id = $1", case_id) == 1
        # privileges are granted afresh: the app role may insert and read the audit log, never change it
        assert await conn.fetchval("SELECT has_table_privilege('safety_app', 'audit_log', 'INSERT')")
        assert not await conn.fetchval("SELECT has_table_privilege('safety_app', 'audit_log', 'UPDATE')")
        assert await conn.fetchval("SELECT has_table_privilege('safety_app', 'cases', 'UPDATE')")
    finally:
        await conn.close()
    restored = AsyncQdrantClient(path=str(tmp_path / "restored" / "qdrant"))
    assert (await restored.count("harassment_events")).count == 1
    await restored.close()


def test_a_tampered_backup_is_refused(settings: Settings, tmp_path: Path) -> None:
    backup(settings.model_copy(update={"data_dir": tmp_path / "empty", "backup_key": _same_key(settings)}),
           tmp_path / "bk")
    with (tmp_path / "bk" / "postgres.dump").open("ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(BackupError, match="changed since it was written"):
        restore(settings, tmp_path / "bk")


def _same_key(settings: Settings) -> SecretStr:
    """The session's backup key, set explicitly (a development key lives in its own data dir)."""
    return SecretStr(settings.backup_key_bytes().decode())


def _signed_backup(settings: Settings, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "qdrant" / "collection").mkdir(parents=True)
    (data / "qdrant" / "collection" / "storage.sqlite").write_bytes(b"vectors")
    bk = tmp_path / "bk"
    manifest = backup(settings.model_copy(update={"data_dir": data, "backup_key": _same_key(settings)}), bk)
    assert set(manifest["files"]) == {"postgres.dump", "qdrant/collection/storage.sqlite"}  # type: ignore[arg-type]
    sig = manifest["signature"]
    assert isinstance(sig, dict) and sig["alg"] == "hmac-sha256" and len(sig["value"]) == 64
    return bk


def test_a_backup_verifies_against_its_signed_manifest(settings: Settings, tmp_path: Path) -> None:
    bk = _signed_backup(settings, tmp_path)
    assert verify(bk, settings.backup_key_bytes())["files"]


def test_a_manifest_with_a_bad_or_missing_signature_is_refused(settings: Settings, tmp_path: Path) -> None:
    bk = _signed_backup(settings, tmp_path)
    path = bk / "manifest.json"
    manifest = json.loads(path.read_text())
    # re-point the listed sha256 at a swapped dump: the unsigned sums match, the signature does not
    (bk / "postgres.dump").write_bytes(b"attacker's dump")
    manifest["files"]["postgres.dump"] = {"bytes": 15, "sha256": hashlib.sha256(b"attacker's dump").hexdigest()}
    path.write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="signature does not verify"):
        restore(settings, bk)
    del manifest["signature"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="not signed"):
        restore(settings, bk)
    with pytest.raises(BackupError, match="signature does not verify"):  # another installation's key
        verify(_signed_backup(settings, tmp_path / "other"), b"another-installation-backup-key-0123")


def test_a_backup_with_a_missing_file_is_refused(settings: Settings, tmp_path: Path) -> None:
    bk = _signed_backup(settings, tmp_path)
    (bk / "qdrant" / "collection" / "storage.sqlite").unlink()
    with pytest.raises(BackupError, match="missing: qdrant/collection/storage.sqlite"):
        restore(settings, bk)


@pytest.mark.parametrize("extra", ["evil.sql", "qdrant/collection/extra.bin", "qdrant/new/x"])
def test_a_backup_with_any_extra_file_is_refused(settings: Settings, tmp_path: Path, extra: str) -> None:
    bk = _signed_backup(settings, tmp_path)
    (bk / extra).parent.mkdir(parents=True, exist_ok=True)
    (bk / extra).write_bytes(b"")
    with pytest.raises(BackupError, match=f"does not list: {extra}"):
        restore(settings, bk)


def test_a_backup_with_a_link_is_refused(settings: Settings, tmp_path: Path) -> None:
    bk = _signed_backup(settings, tmp_path)
    (bk / "link").symlink_to(bk / "postgres.dump")
    with pytest.raises(BackupError, match="link or special file: link"):
        restore(settings, bk)
