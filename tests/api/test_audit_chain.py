"""The keyed audit chain against the real PostgreSQL: what `safety audit verify` detects, the TRUNCATE
trigger, the restricted app role, the switch-over from a legacy (unkeyed) chain and the key settings.

Tampering runs in a private database of the session's server, so the shared chain stays intact.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr, ValidationError
from typer.testing import CliRunner

from core.db import create_pool, ensure_database, migrate
from core.settings import DatabaseSettings, RedisSettings, Settings, TemporalSettings, get_settings
from core.storage.audit import GENESIS_HASH, _audit_hash, append_audit, check_audit_chain
from tests.production import production_fields

TRIGGERS = ("audit_log_no_change", "audit_log_no_truncate")


@pytest_asyncio.fixture
async def private(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[tuple[Settings, asyncpg.Pool]]:
    """A fresh, migrated database of its own (app role granted), with its owner's pool."""
    url = settings.database_url.rsplit("/", 1)[0] + f"/audit_{uuid.uuid4().hex[:10]}"
    await ensure_database(url)
    await migrate(url, app_role=settings.database.app_role)
    own = settings.model_copy(update={"database": DatabaseSettings(url=url)})
    own_pool = await create_pool(url, max_size=3)  # (``pool`` is requested for the session's audit key)
    try:
        yield own, own_pool
    finally:
        await own_pool.close()


async def _append(pool: asyncpg.Pool, n: int, case_id: str | None = None) -> None:
    for i in range(n):
        async with pool.acquire() as conn, conn.transaction():
            await append_audit(conn, actor="test", kind="decision", case_id=case_id or f"case-{i}",
                               payload={"decision": "action", "i": i})


async def _cli(own: Settings, *args: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from ops.cli.main import app as cli

    monkeypatch.setenv("SAFETY_DATABASE__URL", own.database_url)
    monkeypatch.setenv("SAFETY_DATA_DIR", str(own.data_dir))  # the same dev audit key as the writers
    get_settings.cache_clear()
    try:
        return await asyncio.to_thread(CliRunner().invoke, cli, ["audit", "verify", *args])
    finally:
        get_settings.cache_clear()


async def _tamper(pool: asyncpg.Pool, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Run statements as the owner with the audit triggers disabled (what a superuser can do)."""
    async with pool.acquire() as conn:
        for t in TRIGGERS:
            await conn.execute(f"ALTER TABLE audit_log DISABLE TRIGGER {t}")
        try:
            for sql, args in statements:
                await conn.execute(sql, *args)
        finally:
            for t in TRIGGERS:
                await conn.execute(f"ALTER TABLE audit_log ENABLE TRIGGER {t}")


async def _rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM audit_log ORDER BY seq")


async def _rehash_from(pool: asyncpg.Pool, seq: int, *, key: bytes | None, payload: dict[str, Any],
                       upto: int | None = None) -> None:
    """An attacker's rewrite: change the entry at ``seq`` and recompute every hash from there on, either
    with the legacy unkeyed algorithm (``key`` None) or keyed with a key they guessed."""
    from core.storage.audit import keyed_hash

    rows = await _rows(pool)
    prev = GENESIS_HASH
    stmts: list[tuple[str, tuple[Any, ...]]] = []
    for r in rows:
        if r["seq"] < seq:
            prev = r["hash"]
            continue
        if upto is not None and r["seq"] > upto:
            break
        body = payload if r["seq"] == seq else r["payload"]
        if key is None:
            digest = _audit_hash(prev, actor=r["actor"], kind=r["kind"], case_id=r["case_id"], payload=body)
            alg = "sha256"
        else:
            digest = keyed_hash(key, prev, seq=r["seq"], at=r["at"], actor=r["actor"], kind=r["kind"],
                                case_id=r["case_id"], payload=body)
            alg = "hmac-sha256"
        stmts.append(("UPDATE audit_log SET payload = $2, prev_hash = $3, hash = $4, alg = $5 WHERE seq = $1",
                      (r["seq"], body, prev, digest, alg)))
        prev = digest
    # hashes are UNIQUE: clear them first so the rewrite cannot collide with itself midway
    await _tamper(pool, ("UPDATE audit_log SET hash = 'x' || seq WHERE seq >= $1 AND seq <= $2",
                         (seq, upto or 2**62)), *stmts)


async def test_a_clean_chain_verifies_and_prints_its_head(private: tuple[Settings, asyncpg.Pool],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    own, pool = private
    await _append(pool, 3)
    rows = await _rows(pool)
    assert [r["kind"] for r in rows][0] == "audit.chain_keyed" and {r["alg"] for r in rows} == {"hmac-sha256"}
    out = await _cli(own, monkeypatch=monkeypatch)
    assert out.exit_code == 0, out.output
    assert f"4 entries checked: OK; head seq {rows[-1]['seq']} hash {rows[-1]['hash']}" in out.stdout
    head = await _cli(own, "--print-head", monkeypatch=monkeypatch)
    assert head.exit_code == 0 and head.stdout.strip() == rows[-1]["hash"]
    anchored = await _cli(own, "--expect-head", rows[-1]["hash"], "--expect-count", "4", monkeypatch=monkeypatch)
    assert anchored.exit_code == 0, anchored.output
    bad = await _cli(own, "--expect-head", "nothex", monkeypatch=monkeypatch)
    assert bad.exit_code == 2 and "64 lowercase hex" in bad.output


@pytest.mark.parametrize("attacker_key", [None, b"guessed-key-guessed-key-guessed-k"], ids=["unkeyed", "wrong-key"])
async def test_a_payload_rewritten_and_rehashed_without_the_key_is_detected(
        private: tuple[Settings, asyncpg.Pool], monkeypatch: pytest.MonkeyPatch, attacker_key: bytes | None) -> None:
    own, pool = private
    await _append(pool, 4)
    target = (await _rows(pool))[2]
    await _rehash_from(pool, target["seq"], key=attacker_key, payload={**target["payload"], "decision": "allow"})
    out = await _cli(own, monkeypatch=monkeypatch)
    assert out.exit_code == 1 and f"BROKEN at seq {target['seq']}" in out.output, out.output


async def test_a_changed_timestamp_or_seq_is_detected(private: tuple[Settings, asyncpg.Pool],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    own, pool = private
    await _append(pool, 4)
    rows = await _rows(pool)
    await _tamper(pool, ("UPDATE audit_log SET at = at - interval '1 hour' WHERE seq = $1", (rows[2]["seq"],)))
    out = await _cli(own, monkeypatch=monkeypatch)
    assert out.exit_code == 1 and f"BROKEN at seq {rows[2]['seq']}" in out.output and "timestamp" in out.output
    await _tamper(pool, ("UPDATE audit_log SET at = $2 WHERE seq = $1", (rows[2]["seq"], rows[2]["at"])))
    assert (await _cli(own, monkeypatch=monkeypatch)).exit_code == 0
    await _tamper(pool, ("UPDATE audit_log SET seq = seq + 1000 WHERE seq = $1", (rows[-1]["seq"],)))
    out = await _cli(own, monkeypatch=monkeypatch)
    assert out.exit_code == 1 and f"BROKEN at seq {rows[-1]['seq'] + 1000}" in out.output, out.output


async def test_a_deleted_middle_entry_is_detected(private: tuple[Settings, asyncpg.Pool],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    own, pool = private
    await _append(pool, 4)
    rows = await _rows(pool)
    await _tamper(pool, ("DELETE FROM audit_log WHERE seq = $1", (rows[2]["seq"],)))
    out = await _cli(own, monkeypatch=monkeypatch)
    assert out.exit_code == 1 and f"BROKEN at seq {rows[3]['seq']}" in out.output, out.output


async def test_a_deleted_tail_is_detected_against_the_anchored_head(private: tuple[Settings, asyncpg.Pool],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    own, pool = private
    await _append(pool, 4)
    head = (await _cli(own, "--print-head", monkeypatch=monkeypatch)).stdout.strip()
    await _tamper(pool, ("DELETE FROM audit_log WHERE hash = $1", (head,)))
    assert (await _cli(own, monkeypatch=monkeypatch)).exit_code == 0  # a shorter chain is a valid chain...
    out = await _cli(own, "--expect-head", head, monkeypatch=monkeypatch)  # ...but not the anchored one
    assert out.exit_code == 1 and "tail deletion or truncation" in out.output, out.output
    out = await _cli(own, "--expect-count", "5", monkeypatch=monkeypatch)
    assert out.exit_code == 1 and "4 entries but 5 were anchored" in out.output, out.output


async def test_truncate_is_refused_and_a_forced_truncation_is_detected(private: tuple[Settings, asyncpg.Pool],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    own, pool = private
    await _append(pool, 3)
    head = (await _cli(own, "--print-head", monkeypatch=monkeypatch)).stdout.strip()
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await pool.execute("TRUNCATE audit_log")
    assert await pool.fetchval("SELECT count(*) FROM audit_log") == 4
    await _tamper(pool, ("TRUNCATE audit_log", ()))
    await _append(pool, 2)  # the app carries on with a new chain
    out = await _cli(own, "--expect-head", head, monkeypatch=monkeypatch)
    assert out.exit_code == 1 and "is not in the chain" in out.output, out.output


async def test_the_app_role_may_only_insert_and_select_the_audit_log(
        private: tuple[Settings, asyncpg.Pool], monkeypatch: pytest.MonkeyPatch) -> None:
    own, pool = private
    await _append(pool, 1)
    assert own.app_database_url.startswith("postgresql://safety_app@")
    app = await create_pool(own.app_database_url, max_size=2)
    try:
        assert await app.fetchval("SELECT current_user") == "safety_app"
        await _append(app, 2)  # insert (and the sequence) allowed
        assert await app.fetchval("SELECT count(*) FROM audit_log") == 4  # select allowed
        for sql in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log", "TRUNCATE audit_log",
                    "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change",
                    "ALTER TABLE audit_log DISABLE TRIGGER ALL",
                    "SELECT setval('audit_log_seq_seq', 1)", "DROP TABLE audit_log",
                    "INSERT INTO schema_migrations (name) VALUES ('x')"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):  # by privilege, before any trigger
                await app.execute(sql)
        await app.execute("UPDATE api_keys SET name = name")  # the rest of the schema stays writable
    finally:
        await app.close()
    assert (await _cli(own, monkeypatch=monkeypatch)).exit_code == 0


async def test_the_api_connects_as_the_app_role(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    users = {r["usename"] for r in await pool.fetch(
        "SELECT usename FROM pg_stat_activity WHERE datname = current_database()")}
    assert "safety_app" in users


async def test_a_legacy_chain_is_verified_up_to_the_switch_over_and_keyed_after(
        private: tuple[Settings, asyncpg.Pool], monkeypatch: pytest.MonkeyPatch) -> None:
    own, pool = private
    prev = GENESIS_HASH
    for i in range(3):  # entries written before migration 0006: unkeyed, alg 'sha256'
        digest = _audit_hash(prev, actor="old", kind="decision", case_id=f"old-{i}", payload={"i": i})
        await pool.execute("INSERT INTO audit_log (actor, kind, case_id, payload, prev_hash, hash, alg) "
                           "VALUES ('old', 'decision', $1, $2, $3, $4, 'sha256')", f"old-{i}", {"i": i}, prev, digest)
        prev = digest
    legacy_head = prev
    await _append(pool, 2)
    rows = await _rows(pool)
    switch = rows[3]
    assert switch["kind"] == "audit.chain_keyed" and switch["alg"] == "hmac-sha256"
    assert switch["payload"] == {"legacy_entries": 3, "legacy_head": legacy_head}
    unpinned = await _cli(own, monkeypatch=monkeypatch)  # unkeyed entries are refused until pinned
    assert unpinned.exit_code == 1 and f"BROKEN at seq {rows[0]['seq']}" in unpinned.output
    assert "SAFETY_AUDIT_LEGACY_ENTRIES" in unpinned.output
    monkeypatch.setenv("SAFETY_AUDIT_LEGACY_ENTRIES", "3")
    out = await _cli(own, monkeypatch=monkeypatch)
    assert out.exit_code == 0 and "6 entries checked (3 legacy unkeyed, 3 keyed): OK" in out.stdout, out.output
    report = await check_audit_chain(pool, key=own.audit_key_bytes(), legacy_entries=3)
    assert report.intact and (report.legacy_entries, report.keyed_entries) == (3, 3)
    # the unkeyed prefix can still be re-hashed by anyone, but the keyed switch-over entry pins its head
    await _rehash_from(pool, rows[1]["seq"], key=None, payload={"i": 99}, upto=rows[2]["seq"])
    out = await _cli(own, monkeypatch=monkeypatch)
    assert out.exit_code == 1 and f"BROKEN at seq {switch['seq']}" in out.output, out.output
    # and re-hashing the whole chain as unkeyed (a downgrade) exceeds the pinned legacy count
    await _rehash_from(pool, rows[1]["seq"], key=None, payload={"i": 99})
    out = await _cli(own, monkeypatch=monkeypatch)
    assert out.exit_code == 1 and f"BROKEN at seq {switch['seq']}" in out.output and "pinned" in out.output


def test_production_refuses_a_missing_or_weak_audit_or_backup_key() -> None:
    strong = SecretStr(secrets.token_hex(32))
    fields = {k: v for k, v in production_fields().items() if k not in ("audit_key", "backup_key")}
    base: dict[str, Any] = {**fields, "temporal": TemporalSettings(address="t:7233"),
                            "database": DatabaseSettings(url="postgresql://o@db/safety",
                                                         app_password=SecretStr("app pass/word")),
                            "redis": RedisSettings(url="redis://r:6379/0")}
    with pytest.raises(ValidationError, match="SAFETY_AUDIT_KEY is missing"):
        Settings(**base, backup_key=strong)
    with pytest.raises(ValidationError, match="SAFETY_AUDIT_KEY is weak"):
        Settings(**base, audit_key=SecretStr("abc"), backup_key=strong)
    with pytest.raises(ValidationError, match="SAFETY_AUDIT_KEY is weak"):
        Settings(**base, audit_key=SecretStr("a" * 64), backup_key=strong)
    with pytest.raises(ValidationError, match="SAFETY_AUDIT_KEY is weak"):  # a pattern, not random
        Settings(**base, audit_key=SecretStr("k" * 8 + "0123456789abcdef0123456789abcdef"), backup_key=strong)
    with pytest.raises(ValidationError, match="SAFETY_BACKUP_KEY is missing"):
        Settings(**base, audit_key=strong)
    ok = Settings(**base, audit_key=strong, backup_key=strong)
    assert ok.audit_key_bytes() == strong.get_secret_value().encode()
    assert ok.app_database_url == "postgresql://safety_app:app%20pass%2Fword@db/safety"
    no_app_role = {**base, "database": DatabaseSettings(url="postgresql://o@db/safety")}
    with pytest.raises(ValidationError, match="SAFETY_DATABASE__APP_PASSWORD"):
        Settings(**no_app_role, audit_key=strong, backup_key=strong)


def test_the_development_key_is_generated_once_into_the_data_dir(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "d")
    key = s.audit_key_bytes()
    path = tmp_path / "d" / "dev-audit-key"
    assert len(key) == 64 and path.stat().st_mode & 0o777 == 0o600
    assert Settings(data_dir=tmp_path / "d").audit_key_bytes() == key != s.backup_key_bytes()
    assert hmac.compare_digest(hashlib.sha256(key).digest(), hashlib.sha256(path.read_text().strip().encode()).digest())


def test_processes_starting_together_share_one_development_key(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as ex:
        keys = set(ex.map(lambda _: Settings(data_dir=tmp_path / "d").audit_key_bytes(), range(32)))
    assert len(keys) == 1 and sorted(p.name for p in (tmp_path / "d").iterdir()) == ["dev-audit-key"]


async def test_upgrading_a_legacy_chain_across_migration_0006(settings: Settings, pool: asyncpg.Pool,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database migrated before 0006 with entries written the old way: 0006 marks them legacy, the next
    append writes the switch-over entry, and verify checks both parts once the legacy count is pinned."""
    import shutil

    import core.db

    old = tmp_path / "migrations"
    old.mkdir()
    for path in sorted(core.db.MIGRATIONS_DIR.glob("*.sql")):
        if path.name < "0006":
            shutil.copy(path, old / path.name)
    url = settings.database_url.rsplit("/", 1)[0] + f"/upgrade_{uuid.uuid4().hex[:10]}"
    await ensure_database(url)
    monkeypatch.setattr(core.db, "MIGRATIONS_DIR", old)
    await migrate(url)
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM information_schema.columns "
                                   "WHERE table_name = 'audit_log' AND column_name = 'alg'") == 0
        prev = GENESIS_HASH
        for i in range(2):  # what main's append_audit wrote: no seq/at in the hash, no key
            digest = _audit_hash(prev, actor="old", kind="decision", case_id=None, payload={"i": i})
            await conn.execute("INSERT INTO audit_log (actor, kind, case_id, payload, prev_hash, hash) "
                               "VALUES ('old', 'decision', NULL, $1::jsonb, $2, $3)", f'{{"i": {i}}}', prev, digest)
            prev = digest
    finally:
        await conn.close()
    monkeypatch.undo()
    assert "0006_audit_keyed.sql" in await migrate(url, app_role=settings.database.app_role)
    own = settings.model_copy(update={"database": DatabaseSettings(url=url)})
    upgraded = await create_pool(url, max_size=2)
    try:
        assert [r["alg"] for r in await _rows(upgraded)] == ["sha256", "sha256"]
        await _append(upgraded, 1)
        rows = await _rows(upgraded)
        assert [r["kind"] for r in rows] == ["decision", "decision", "audit.chain_keyed", "decision"]
        assert rows[2]["payload"] == {"legacy_entries": 2, "legacy_head": prev}
        monkeypatch.setenv("SAFETY_AUDIT_LEGACY_ENTRIES", "2")
        out = await _cli(own, monkeypatch=monkeypatch)
        assert out.exit_code == 0 and "4 entries checked (2 legacy unkeyed, 2 keyed): OK" in out.stdout, out.output
    finally:
        await upgraded.close()


async def test_verify_without_a_reachable_database_says_so(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    down = settings.model_copy(update={"database": DatabaseSettings(url="postgresql://postgres@127.0.0.1:1/safety")})
    out = await _cli(down, monkeypatch=monkeypatch)
    assert out.exit_code == 2 and "cannot read the audit log" in out.output and "Traceback" not in out.output
