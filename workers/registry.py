"""What each task queue's worker runs, built once from settings (clients are opened here, not per call)."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from core.settings import Settings
from workflows import contract
from workflows.contract import TASK_QUEUES

log = logging.getLogger(__name__)


_SCREENING_THREADS = 4


@dataclass
class WorkerSpec:
    queue: str
    workflows: list[type] = field(default_factory=list)
    activities: list[Callable[..., Any]] = field(default_factory=list)
    executor: ThreadPoolExecutor | None = None
    # CPU-bound queues: as many activities at once as the thread pool runs (ONNX uses one thread each).
    max_concurrent_activities: int | None = None


def _load_model(settings: Settings) -> Any:
    from core.screening import ScreeningModel

    model = ScreeningModel.load(settings.screening_model_dir)
    model.screen("warm up")  # the first inference allocates onnxruntime's buffers: pay it before polling
    return model


async def _pool(settings: Settings, stack: contextlib.AsyncExitStack) -> asyncpg.Pool:
    from core.db import create_pool
    from core.storage.audit import configure_audit_key

    configure_audit_key(settings.audit_key_bytes())
    pool = await create_pool(settings.app_database_url, min_size=settings.database.pool_min,
                             max_size=settings.database.pool_max)
    stack.push_async_callback(pool.close)
    return pool


def _embedding_dim(settings: Settings) -> int:
    meta = json.loads((settings.model_dir / "model.json").read_text())
    return int(meta["embedding_dim"])


async def _case_index(settings: Settings, stack: contextlib.AsyncExitStack) -> Any:
    from qdrant_client import AsyncQdrantClient

    from activities.context import CaseIndex, ensure_collection

    if settings.qdrant.url:
        key = settings.qdrant.api_key.get_secret_value() if settings.qdrant.api_key else None
        client = AsyncQdrantClient(url=settings.qdrant.url, api_key=key)
    else:
        path = settings.data_dir / "qdrant"
        path.mkdir(parents=True, exist_ok=True)
        client = AsyncQdrantClient(path=str(path))
    stack.push_async_callback(client.close)
    await ensure_collection(client, settings.qdrant.collection, _embedding_dim(settings))
    return CaseIndex(client, settings.qdrant.collection)


async def build_spec(queue: str, settings: Settings, stack: contextlib.AsyncExitStack,
                     client: Client | None = None) -> WorkerSpec:
    """Open the clients a queue needs (closed by ``stack``) and list its workflows and activities."""
    if queue not in TASK_QUEUES:
        raise ValueError(f"unknown queue '{queue}': one of {', '.join(TASK_QUEUES)}")
    spec = WorkerSpec(queue=queue)
    if queue == contract.MODERATION_QUEUE:
        from activities.appeals import AppealActivities
        from activities.context import RecordActivities
        from activities.screening import ScreeningActivities
        from activities.sessions import SessionActivities
        from workflows.appeals import AppealWorkflow
        from workflows.moderate import ModerateEventWorkflow
        from workflows.sessions import TargetSessionWorkflow, UserSessionWorkflow

        if client is None:
            raise ValueError("the moderation worker needs the Temporal client (appeals reach session workflows)")
        pool = await _pool(settings, stack)
        appeals = AppealActivities(pool, client)
        sessions = SessionActivities(client, redis=_redis(settings))
        spec.workflows = [ModerateEventWorkflow, AppealWorkflow, UserSessionWorkflow, TargetSessionWorkflow]
        # Local activities run here, beside the workflows: screening and recording (the cheap clean path)
        # and the session updates (update-with-start, one round trip each).
        spec.activities = [ScreeningActivities(_load_model(settings)).screen_event, RecordActivities(pool).record_case,
                           sessions.apply_strike, sessions.record_target_incident,
                           appeals.remove_user_strike, appeals.record_appeal_outcome]
        spec.executor = ThreadPoolExecutor(max_workers=_SCREENING_THREADS)
        spec.max_concurrent_activities = _SCREENING_THREADS
    elif queue == contract.SCREENING_QUEUE:
        from activities.screening import ScreeningActivities

        spec.activities = [ScreeningActivities(_load_model(settings)).screen_event]
        spec.executor = ThreadPoolExecutor(max_workers=_SCREENING_THREADS)
        spec.max_concurrent_activities = _SCREENING_THREADS
    elif queue == contract.CONTEXT_QUEUE:
        from activities.context import ContextActivities, RecordActivities
        from activities.reviews import ReviewActivities

        pool = await _pool(settings, stack)
        index = await _case_index(settings, stack)
        review = ReviewActivities(pool)
        spec.activities = [ContextActivities(pool, index).retrieve_context, RecordActivities(pool, index).record_case,
                           review.record_review, review.escalate_review]
    elif queue == contract.REASONING_QUEUE:
        from activities.reasoning import ReasoningActivities

        spec.activities = [ReasoningActivities(settings.llm, redis=_redis(settings)).reason_about_case]
    elif queue == contract.ACTIONS_QUEUE:
        from activities.actions import ActionActivities
        from activities.connectors import build_router

        router = build_router(settings.connector, development=settings.environment == "development")
        stack.push_async_callback(router.aclose)
        from domain.models import ActionType

        caps = {ActionType.BAN: settings.connector.daily_ban_cap,
                ActionType.TIMEOUT: settings.connector.daily_timeout_cap}
        acts = ActionActivities(await _pool(settings, stack), router, daily_caps=caps)
        spec.activities = [acts.execute_actions, acts.revert_actions]
    return spec


def _redis(settings: Settings) -> Any:
    import redis.asyncio as aioredis

    return aioredis.from_url(settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)


def make_worker(client: Client, spec: WorkerSpec, settings: Settings,
                interceptors: Sequence[Any] = ()) -> Worker:
    runner = {} if settings.worker.workflow_sandbox else {"workflow_runner": UnsandboxedWorkflowRunner()}
    return Worker(
        client, task_queue=spec.queue, workflows=spec.workflows, activities=spec.activities,
        activity_executor=spec.executor, **runner,
        max_concurrent_activities=spec.max_concurrent_activities or settings.worker.max_concurrent_activities,
        interceptors=list(interceptors),
    )


@contextlib.asynccontextmanager
async def running_worker(client: Client, queue: str, settings: Settings) -> AsyncIterator[Worker]:
    """Build and run one queue's worker until the block exits, then shut it down explicitly."""
    async with contextlib.AsyncExitStack() as stack:
        spec = await build_spec(queue, settings, stack, client)
        worker = make_worker(client, spec, settings)
        async with worker:
            log.info("worker running", extra={"queue": queue})
            yield worker
        if spec.executor:
            spec.executor.shutdown(wait=False)
