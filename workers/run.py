"""Entry point of one worker process: ``safety worker --queue <name>`` (or ``python -m workers.run <name>``)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from prometheus_client import start_http_server

from core.logging import configure_logging
from core.settings import get_settings
from core.telemetry import setup_tracing
from core.temporal import connect, metrics_runtime
from workers.registry import running_worker

log = logging.getLogger(__name__)


async def serve(queue: str) -> None:
    settings = get_settings()
    setup_tracing(f"safety-worker-{queue}", otlp_endpoint=settings.otlp_endpoint)
    host = settings.worker.metrics_host  # loopback unless the deployment opens it (SAFETY_WORKER__METRICS_HOST)
    start_http_server(settings.worker_metrics_port(queue), addr=host)
    sdk_port = settings.worker_sdk_metrics_port(queue)
    client = await connect(settings, runtime=metrics_runtime(sdk_port, host=host) if sdk_port else None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_worker(client, queue, settings):
        await stop.wait()
        log.info("shutting down worker", extra={"queue": queue})


def main(queue: str) -> None:
    settings = get_settings()
    configure_logging(settings.log_level, json_logs=settings.log_json)
    asyncio.run(serve(queue))


if __name__ == "__main__":
    main(sys.argv[1])
