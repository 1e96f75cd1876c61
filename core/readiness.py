"""Ready means ready: every task queue has a worker polling it (and so its model loaded).

"Up" used to mean "the processes answer": the first event after a start then waited ~8 s for workers
to poll, and a run right after start had a clean p99 of 4 s. Here a queue counts as served when Temporal's
``DescribeTaskQueue`` lists a poller of the task type its worker takes (workflow tasks for
``moderation``, activity tasks for the others) that polled recently. A worker builds its activities,
loading the screening model, before it starts polling: a poller on ``moderation`` and ``screening`` also
means the model is loaded and warmed up in that worker.

Used by ``GET /ready`` (``api/services/health.py``) and by ``safety up`` before it prints its banner.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from datetime import timedelta

from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from workflows.contract import MODERATION_QUEUE, SCREENING_QUEUE, TASK_QUEUES

__all__ = ["POLLER_FRESH_S", "model_check", "queue_pollers", "wait_until_served"]

# A poller that has not polled for this long is gone (a long poll lasts at most ~70 s; Temporal keeps a
# departed poller in the list for minutes).
POLLER_FRESH_S = 90.0
WORKFLOW_QUEUES = frozenset({MODERATION_QUEUE})  # workflow tasks; every other queue serves activities


def _task_type(queue: str) -> TaskQueueType.ValueType:
    return (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW if queue in WORKFLOW_QUEUES
            else TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)


async def _pollers(client: Client, queue: str, timeout_s: float) -> int:
    resp = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(namespace=client.namespace,
                                 task_queue=TaskQueue(name=queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                                 task_queue_type=_task_type(queue)),
        timeout=timedelta(seconds=timeout_s))
    now = time.time()
    return sum(1 for p in resp.pollers
               if not p.HasField("last_access_time") or now - p.last_access_time.ToSeconds() <= POLLER_FRESH_S)


async def queue_pollers(client: Client, queues: Iterable[str] = TASK_QUEUES, *,
                        timeout_s: float = 2.0) -> dict[str, str]:
    """Per queue: ``ok`` (n pollers) or why it is not served yet. Raises ``RPCError`` if Temporal is down."""
    names = list(queues)
    counts = await asyncio.gather(*(_pollers(client, q, timeout_s) for q in names))
    return {q: (f"ok ({n} poller{'s' if n != 1 else ''})" if n else
                f"no worker polling the {q} queue yet (start `safety worker --queue {q}`)")
            for q, n in zip(names, counts, strict=True)}


def model_check(loaded_here: bool, queues: dict[str, str]) -> str:
    """The screening model's state: loaded in this process (prescreen API), or in the workers that screen
    (they poll only once it is loaded and warmed up)."""
    if loaded_here:
        return "ok (loaded in the API: prescreen mode)"
    screening = [q for q in (MODERATION_QUEUE, SCREENING_QUEUE) if q in queues]
    if screening and all(queues[q].startswith("ok") for q in screening):
        return "ok (loaded by the moderation and screening workers)"
    return "not loaded yet: the moderation and screening workers load it before they poll"


async def wait_until_served(client: Client, queues: Iterable[str] = TASK_QUEUES, *, timeout_s: float = 120.0,
                            interval_s: float = 0.5, stop: Callable[[], bool] = lambda: False) -> dict[str, str]:
    """Wait until every queue has a polling worker; returns the last check (not all ``ok`` on timeout, or
    when ``stop()`` turns true: Ctrl-C during start-up)."""
    deadline = time.monotonic() + timeout_s
    names = list(queues)
    while True:
        try:
            checks = await queue_pollers(client, names)
        except RPCError as err:
            checks = dict.fromkeys(names, f"Temporal unreachable: {err.message}")
        if all(v.startswith("ok") for v in checks.values()) or time.monotonic() > deadline or stop():
            return checks
        await asyncio.sleep(interval_s)
