"""``safety audit``: check the hash-chained audit log (every decision, review, appeal and key change)."""

from __future__ import annotations

import asyncio

import typer

from core.settings import get_settings

app = typer.Typer(help="Check the hash-chained audit log.", no_args_is_help=True)


async def _verify(url: str) -> tuple[bool, int, int | None]:
    from core.db import create_pool
    from core.storage.audit import verify_audit

    pool = await create_pool(url, max_size=2)
    try:
        return await verify_audit(pool)
    finally:
        await pool.close()


@app.command("verify")
def verify() -> None:
    """Walk the chain from the first entry; print the number of entries checked and OK, or the first
    broken entry and exit 1 (an entry was altered or removed after it was written)."""
    ok, checked, broken = asyncio.run(_verify(get_settings().database_url))
    if ok:
        typer.echo(f"{checked} entries checked: OK")
        return
    typer.echo(f"audit chain BROKEN at seq {broken} ({checked} entries checked): the entry or the one before it "
               "was changed or removed after it was written", err=True)
    raise typer.Exit(1)
