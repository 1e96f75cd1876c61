from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest_asyncio

from api.app import create_app
from core.settings import Settings
from core.storage.keys import Role, create_key


@pytest_asyncio.fixture(scope="session")
async def api(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest_asyncio.fixture(scope="session")
async def keys(pool: asyncpg.Pool) -> dict[str, str]:
    return {role.value: await create_key(pool, name=f"test-{role.value}", role=role) for role in Role}
