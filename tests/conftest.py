"""Session fixtures: real Temporal dev server, PostgreSQL and Redis, started by the suite itself.

Workflow tests use the ``wftest`` namespace with fake activities; API and integration tests use
``default`` with the real workers, so the two never steal each other's tasks.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from temporalio.client import Client

from core.codec import data_converter
from core.db import create_pool, ensure_database, migrate
from core.settings import DatabaseSettings, QdrantSettings, RedisSettings, Settings, TemporalSettings
from core.storage.audit import configure_audit_key
from ops.embedded import EmbeddedPostgres, EmbeddedRedis, TemporalDevServer, free_port

WORKFLOW_TEST_NAMESPACE = "wftest"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("safety-data")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def embedded(data_dir: Path) -> Iterator[dict[str, object]]:
    temporal = TemporalDevServer(data_dir, port=free_port(), ui_port=free_port(), metrics_port=free_port(),
                                 extra_namespaces=(WORKFLOW_TEST_NAMESPACE,), headless=True)
    postgres = EmbeddedPostgres(data_dir, port=free_port())
    redis = EmbeddedRedis(data_dir, port=free_port())
    started = []
    try:
        for svc in (temporal, postgres, redis):
            svc.start()
            started.append(svc)
        yield {"temporal": temporal, "postgres": postgres, "redis": redis}
    finally:
        for svc in reversed(started):
            svc.stop()


@pytest.fixture(scope="session")
def settings(embedded: dict[str, object], data_dir: Path) -> Settings:
    temporal = embedded["temporal"]
    assert isinstance(temporal, TemporalDevServer)
    pg, rd = embedded["postgres"], embedded["redis"]
    assert isinstance(pg, EmbeddedPostgres) and isinstance(rd, EmbeddedRedis)
    return Settings(
        data_dir=data_dir,
        temporal=TemporalSettings(address=f"127.0.0.1:{temporal.port}"),
        database=DatabaseSettings(url=pg.url),
        redis=RedisSettings(url=rd.url),
        qdrant=QdrantSettings(collection="harassment_events"),
    )


@pytest_asyncio.fixture(scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    await ensure_database(settings.database_url)
    await migrate(settings.database_url, app_role=settings.database.app_role)
    configure_audit_key(settings.audit_key_bytes())
    # The owner's pool: tests arrange and tamper with data directly. The API and workers the tests start
    # connect as the restricted app role (settings.app_database_url), as in production.
    p = await create_pool(settings.database_url, max_size=10)
    yield p
    await p.close()


@pytest_asyncio.fixture(scope="session")
async def client(settings: Settings) -> Client:
    # The system's converter (payloads encrypted with the data dir's development key), as the API and
    # workers use it.
    return await Client.connect(settings.temporal_address, data_converter=data_converter(settings))


@pytest_asyncio.fixture(scope="session")
async def wf_client(settings: Settings) -> Client:
    return await Client.connect(settings.temporal_address, namespace=WORKFLOW_TEST_NAMESPACE,
                                data_converter=data_converter(settings))
