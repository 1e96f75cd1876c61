"""``safety``: run, operate and measure the safety system. ``safety COMMAND --help`` explains each command."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Annotated, cast

import typer

from core.logging import configure_logging
from core.settings import get_settings
from workflows.contract import TASK_QUEUES

app = typer.Typer(
    help="A durable, AI-assisted harassment moderation pipeline for chat platforms.\n\n"
         "Start everything locally with `safety up`; operate cases with the `temporal` CLI and the Web UI.",
    no_args_is_help=True, rich_markup_mode="markdown", pretty_exceptions_show_locals=False,
)
keys_app = typer.Typer(help="Create, list and revoke API keys (stored hashed in PostgreSQL, with a role).",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _setup_logging() -> None:
    s = get_settings()
    configure_logging(s.log_level, json_logs=s.log_json)


@app.command()
def up() -> None:
    """Start the whole system: Temporal dev server (UI on :8233), PostgreSQL, Redis, Qdrant local mode, the API
    on :8001 and one worker per task queue. Embedded servers start only where no external one is configured
    (SAFETY_TEMPORAL__ADDRESS, SAFETY_DATABASE__URL, SAFETY_REDIS__URL, SAFETY_QDRANT__URL). Ctrl-C stops all;
    data stays in SAFETY_DATA_DIR (default .data/)."""
    from ops.stack import run_up

    _setup_logging()
    run_up(get_settings())


@app.command()
def api() -> None:
    """Run the HTTP API alone (ingest, status, health, /metrics, OpenAPI docs at /docs)."""
    import uvicorn

    from api.app import create_app

    _setup_logging()
    s = get_settings()
    uvicorn.run(create_app(s), host=s.api.host, port=s.api.port, log_config=None, access_log=False)


@app.command()
def worker(queue: Annotated[str, typer.Option(help=f"Task queue to serve: {', '.join(TASK_QUEUES)}.")]) -> None:
    """Run one worker process for one task queue (scale each queue on its own backlog)."""
    from workers.run import main

    if queue not in TASK_QUEUES:
        raise typer.BadParameter(f"unknown queue '{queue}'; use one of: {', '.join(TASK_QUEUES)}", param_hint="--queue")
    main(queue)


@app.command()
def migrate() -> None:
    """Create the database if needed and apply pending schema migrations (safe to run repeatedly)."""
    from core.db import ensure_database
    from core.db import migrate as run_migrate

    _setup_logging()
    s = get_settings()
    url = s.database_url
    password = s.database.app_password.get_secret_value() if s.database.app_password else None

    async def go() -> list[str]:
        await ensure_database(url)
        return await run_migrate(url, app_role=s.database.app_role, app_password=password)

    applied = asyncio.run(go())
    typer.echo(f"applied: {', '.join(applied)}" if applied else "schema is up to date")


async def _with_pool(fn):  # type: ignore[no-untyped-def]
    from core.db import create_pool

    pool = await create_pool(get_settings().database_url, max_size=2)
    try:
        return await fn(pool)
    finally:
        await pool.close()


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A label for the key, e.g. the platform integration using it.")],
    role: Annotated[str, typer.Option(
        help="ingest (post events), moderator (read and decide), admin (all).")] = "ingest",
    platforms: Annotated[str | None, typer.Option(
        help="Moderator/admin keys only: comma-separated platforms whose cases the key sees "
             "(e.g. discord,twitch); default every platform.")] = None,
) -> None:
    """Create a key and print it alone on stdout (it is shown once; only its hash is stored)."""
    import re

    from core.storage.keys import Role, create_key

    try:
        r = Role(role)
    except ValueError:
        raise typer.BadParameter("role must be ingest, moderator or admin", param_hint="--role") from None
    scope: list[str] | None = None
    if platforms is not None:
        scope = [p.strip() for p in platforms.split(",") if p.strip()]
        bad = [p for p in scope if not re.fullmatch(r"[a-z0-9_\-]{1,32}", p)]
        if not scope or bad:
            raise typer.BadParameter("give platform names in lower case, comma-separated (e.g. discord,twitch)"
                                     + (f"; not valid: {', '.join(bad)}" if bad else ""), param_hint="--platforms")
        if r == Role.INGEST:
            raise typer.BadParameter("ingest keys see only their own cases already; --platforms is for "
                                     "moderator and admin keys", param_hint="--platforms")
    from core.storage.keys import JWT_NAME_PREFIX

    if name.startswith(JWT_NAME_PREFIX):
        raise typer.BadParameter(f"names starting with '{JWT_NAME_PREFIX}' are reserved for bearer-token callers",
                                 param_hint="--name")
    typer.echo(asyncio.run(_with_pool(lambda pool: create_key(pool, name=name, role=r, platforms=scope))))


@keys_app.command("list")
def keys_list() -> None:
    """List keys (name, role, prefix, created, revoked); secrets are never shown."""
    from rich.console import Console
    from rich.table import Table

    from core.storage.keys import list_keys

    rows = asyncio.run(_with_pool(list_keys))
    table = Table("id", "name", "role", "platforms", "prefix", "created", "revoked")
    for r in rows:
        platforms = cast("list[str] | None", r["platforms"])
        scope = ",".join(platforms) if platforms is not None else "all"
        table.add_row(str(r["id"]), str(r["name"]), str(r["role"]), scope, str(r["prefix"]),
                      str(r["created_at"])[:19], str(r["revoked_at"] or "")[:19])
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Option(help="Revoke every active key with this name.")]) -> None:
    """Revoke keys by name; requests with them get 401 at once on every API process."""
    from core.storage.keys import revoke_key

    n = asyncio.run(_with_pool(lambda pool: revoke_key(pool, name=name)))
    typer.echo(f"revoked {n} key(s)")
    if n:
        _announce_key_change()


@keys_app.command("rotate")
def keys_rotate(name: Annotated[str, typer.Option(help="The name of the key to replace.")]) -> None:
    """Replace the active key with this name by a new one of the same role and print it alone on stdout;
    the old key stops working at once on every API process."""
    from core.storage.keys import KeyNotFoundError, rotate_key

    try:
        typer.echo(asyncio.run(_with_pool(lambda pool: rotate_key(pool, name=name))))
    except KeyNotFoundError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(1) from None
    _announce_key_change()


def _announce_key_change() -> None:
    """Bump the key generation in Redis so every API process drops its cached keys now. Redis down: the
    revocation still holds; processes notice it within SAFETY_API__KEY_CACHE_TTL_S (said on stderr)."""
    import redis.asyncio as aioredis

    from core.storage.keys import bump_key_generation

    async def bump() -> None:
        client = aioredis.from_url(get_settings().redis_url, socket_timeout=3)
        try:
            await bump_key_generation(client)
        finally:
            await client.aclose()

    try:
        asyncio.run(bump())
    except (aioredis.RedisError, OSError) as err:
        ttl = get_settings().api.key_cache_ttl_s
        typer.echo(f"warning: could not notify API processes through Redis ({err}); they stop accepting the "
                   f"old key within {ttl:.0f}s", err=True)


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(help="Events as JSON lines or CSV (columns as the ingest body; "
                                              "metadata.* columns for metadata).", exists=True, dir_okay=False)],
    url: Annotated[str, typer.Option(help="Base URL of the API.")] = "",
    api_key: Annotated[str, typer.Option(envvar="SAFETY_API_KEY", help="API key (default: the dev key).")] = "",
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="Requests in flight.")] = 16,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each outcome.")] = 120.0,
) -> None:
    """Push events through the ingest API with a progress bar, wait for every outcome, and print counts per
    decision and ingest-to-outcome latency p50/p95/p99."""
    from ops.replay import run_replay

    s = get_settings()
    base = url or f"http://{s.api.host}:{s.api.port}"
    key = api_key or _dev_key()
    raise typer.Exit(asyncio.run(run_replay(file, base_url=base, api_key=key, concurrency=concurrency,
                                            timeout_s=timeout)))


@app.command("backup")
def backup_cmd(out: Annotated[Path, typer.Option(help="A new folder to write the backup into.")]) -> None:
    """Back up PostgreSQL (pg_dump) and the Qdrant similar-case collection (a server snapshot, or a copy of
    the local-mode folder) into a new folder with a manifest of sizes and sha256 sums, signed with the backup
    key (SAFETY_BACKUP_KEY; development: <data_dir>/dev-backup-key)."""
    from ops.backup import BackupError, backup

    try:
        manifest = backup(get_settings(), out)
    except (BackupError, subprocess.CalledProcessError, FileExistsError) as err:
        raise typer.BadParameter(_explain(err), param_hint="--out") from err
    files = manifest["files"]
    assert isinstance(files, dict)
    typer.echo(f"backup written to {out}: {len(files)} file(s), "
               f"{sum(int(f['bytes']) for f in files.values()):,} bytes")


@app.command("restore")
def restore_cmd(
    source: Annotated[Path, typer.Option("--from", help="A folder written by `safety backup`.", exists=True,
                                         file_okay=False)],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: the database objects are replaced.")] = False,
) -> None:
    """Restore a backup: checks the manifest's signature (the same SAFETY_BACKUP_KEY as the backup), that
    the folder holds exactly the listed files with their sizes and sha256 sums, then replaces the database
    objects (pg_restore --clean), grants the app role, and restores the Qdrant collection. Stop the API and
    workers first."""
    from ops.backup import BackupError, restore

    if not yes:
        raise typer.BadParameter("restoring replaces the current data; run again with --yes", param_hint="--yes")
    try:
        manifest = restore(get_settings(), source)
    except (BackupError, subprocess.CalledProcessError) as err:
        raise typer.BadParameter(_explain(err), param_hint="--from") from err
    typer.echo(f"restored the backup made at {manifest['created_at']}")


def _explain(err: Exception) -> str:
    if isinstance(err, subprocess.CalledProcessError):
        return f"{Path(str(err.cmd[0])).name} failed: {(err.stderr or '').strip()[:300]}"
    return str(err)


def _dev_key() -> str:
    path = get_settings().data_dir / "dev-api-key"
    if not path.exists():
        raise typer.BadParameter(f"no --api-key given and no {path}; run `safety up` first or pass a key",
                                 param_hint="--api-key")
    return path.read_text().strip()


def _mount_subcommands() -> None:
    """Sub-apps: the model (train/eval/score), the audit chain, and benchmarks. Their heavy imports
    (onnxruntime, torch for training) happen inside their commands, so `safety --help` stays fast."""
    from ops.cli import audit as audit_cli
    from ops.cli import bench as bench_cli
    from ops.cli import demo as demo_cli
    from ops.cli import model as model_cli

    app.add_typer(model_cli.app, name="model", help="Train, evaluate and run the screening model.")
    app.add_typer(audit_cli.app, name="audit", help="Check the hash-chained audit log.")
    app.add_typer(bench_cli.app, name="bench", help="Measure latency and throughput.")
    app.command("demo")(demo_cli.demo)


_mount_subcommands()

if __name__ == "__main__":
    app()
