"""``safety audit``: check the keyed, hash-chained audit log (every decision, review, appeal and key change)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import asyncpg
import typer

from core.settings import get_settings

app = typer.Typer(help="Check the keyed, hash-chained audit log.", no_args_is_help=True)


async def _check(expect_head: str | None, expect_count: int | None):  # type: ignore[no-untyped-def]
    from core.db import create_pool
    from core.storage.audit import check_audit_chain

    settings = get_settings()
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        return await check_audit_chain(pool, key=settings.audit_key_bytes(), expect_head=expect_head,
                                       expect_count=expect_count, legacy_entries=settings.audit_legacy_entries)
    finally:
        await pool.close()


@app.command("verify")
def verify(
    expect_head: Annotated[str | None, typer.Option(
        help="A head hash printed by an earlier verify and kept outside the database: it must still be in the "
             "chain (detects removal of the tail, or of everything).")] = None,
    expect_count: Annotated[int | None, typer.Option(
        min=0, help="The entry count printed by an earlier verify: the chain must have at least this many.")] = None,
    print_head: Annotated[bool, typer.Option(
        help="On success print only the head hash (for anchoring elsewhere, e.g. a ticket or another system).")
    ] = False,
) -> None:
    """Walk the chain from the first entry with the audit key (SAFETY_AUDIT_KEY; development:
    <data_dir>/dev-audit-key). Prints the entries checked, the head (seq and hash) and OK, or the first
    problem and exits 1: an entry changed, re-hashed without the key, re-timed, removed or reordered; with
    --expect-head / --expect-count, a removed tail or a truncated table. A chain from before migration
    0006 starts with unkeyed entries: pin their number once with SAFETY_AUDIT_LEGACY_ENTRIES (the
    switch-over entry, kind audit.chain_keyed, records it)."""
    if expect_head is not None and (len(expect_head) != 64 or any(c not in "0123456789abcdef" for c in expect_head)):
        raise typer.BadParameter("a head hash is 64 lowercase hex characters, as printed by `safety audit verify`",
                                 param_hint="--expect-head")
    try:
        report = asyncio.run(_check(expect_head, expect_count))
    except (OSError, asyncpg.PostgresError) as err:
        typer.echo(f"cannot read the audit log: {err} (is PostgreSQL up and SAFETY_DATABASE__URL right?)", err=True)
        raise typer.Exit(2) from err
    if report.intact:
        if print_head:
            typer.echo(report.head_hash or "")
            return
        legacy = f" ({report.legacy_entries} legacy unkeyed, {report.keyed_entries} keyed)" \
            if report.legacy_entries else ""
        typer.echo(f"{report.checked} entries checked{legacy}: OK; head seq {report.head_seq} hash "
                   f"{report.head_hash}")
        return
    where = f"at seq {report.broken_seq}" if report.broken_seq is not None else "(chain incomplete)"
    typer.echo(f"audit chain BROKEN {where} ({report.checked} entries checked): {report.problem}", err=True)
    raise typer.Exit(1)
