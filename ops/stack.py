"""``safety up``: start the whole system on one machine, supervise it, stop it cleanly on Ctrl-C.

Order: embedded Temporal / PostgreSQL / Redis (each only when no external server is configured) ->
database + migrations -> development API key -> the API and one worker process per task queue. A
child that dies is restarted (with back-off); data stays under the data directory between runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr

from core.codec import codec_endpoint, key_ring, ui_codec_endpoint, ui_console_url
from core.settings import Settings
from ops.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    ManagedProcess,
    ServiceError,
    TemporalDevServer,
    port_open,
)
from workflows.contract import TASK_QUEUES

log = logging.getLogger(__name__)


class ChildProcess(ManagedProcess):
    """A process of ours (API or worker), ready when its port answers."""

    def __init__(self, data_dir: Path, name: str, args: list[str], env: dict[str, str], port: int) -> None:
        self.name = name
        super().__init__(data_dir)
        self.args, self.env, self.port = args, env, port
        self.restarts = 0

    def command(self) -> list[str]:
        return [sys.executable, "-m", "ops.cli.main", *self.args]

    def popen_kwargs(self) -> dict[str, object]:
        return {"env": self.env, "cwd": str(Path.cwd())}

    def ready(self) -> bool:
        return port_open(self.port)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.resolve()
        self.services: list[ManagedProcess] = []
        self.children: list[ChildProcess] = []
        self._stopping = False

    # -- infrastructure ---------------------------------------------------------------------------------
    def start_services(self) -> dict[str, str]:
        """Start the embedded servers that are not configured externally; returns env overrides for children."""
        s = self.settings
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env: dict[str, str] = {"SAFETY_DATA_DIR": str(self.data_dir)}
        # Payload encryption key: generated into the data dir on the first development start (every
        # child reads the same file); outside development settings already refused a missing one.
        ring = key_ring(s)
        if not s.temporal.address:
            self._start(TemporalDevServer(self.data_dir, port=s.temporal.port, ui_port=s.temporal.ui_port,
                                          metrics_port=s.temporal.metrics_port, namespace=s.temporal.namespace,
                                          sqlite_pragmas=s.temporal.sqlite_pragmas,
                                          dynamic_config=s.temporal.dynamic_config,
                                          ui_codec_endpoint=ui_codec_endpoint(s) if ring else ""))
        env["SAFETY_TEMPORAL__ADDRESS"] = s.temporal_address
        if not s.database.url:
            self._start(EmbeddedPostgres(self.data_dir, port=s.database.port))
        env["SAFETY_DATABASE__URL"] = s.database_url
        if not s.redis.url:
            self._start(EmbeddedRedis(self.data_dir, port=s.redis.port))
        env["SAFETY_REDIS__URL"] = s.redis_url
        secret = self._dev_secret_key()
        if secret:
            env["SAFETY_SECRET_KEY"] = secret
        return env

    def _dev_secret_key(self) -> str | None:
        """In development without SAFETY_SECRET_KEY: a random key made on first start and kept in
        ``<data_dir>/dev-secret-key`` (mode 0600), like the dev API key, so event ids (HMAC-keyed) are not
        predictable from the public default and stay the same across restarts."""
        from core.settings import DEV_SECRET_KEY

        if self.settings.environment != "development" or self.settings.secret_key.get_secret_value() != DEV_SECRET_KEY:
            return None
        path = self.data_dir / "dev-secret-key"
        if not path.exists():
            import secrets

            path.write_text(secrets.token_hex(32) + "\n")
            path.chmod(0o600)
        return path.read_text().strip()

    def _start(self, svc: ManagedProcess) -> None:
        started = time.monotonic()
        svc.start()
        self.services.append(svc)
        log.info("started %s in %.1fs", svc.name, time.monotonic() - started, extra={"log": str(svc.log_path)})

    async def prepare_database(self) -> str | None:
        """Create the database, apply migrations, and make the development key on first start.

        Returns the development key (stored in ``<data_dir>/dev-api-key``, mode 0600) in development.
        """
        from core.db import create_pool, ensure_database, migrate
        from core.storage import keys

        url = self.settings.database_url
        await ensure_database(url)
        applied = await migrate(url, app_role=self.settings.database.app_role, app_password=_secret(
            self.settings.database.app_password))
        if applied:
            log.info("migrations applied: %s", ", ".join(applied))
        if self.settings.environment != "development":
            return None
        key_file = self.data_dir / "dev-api-key"
        if key_file.exists():
            return key_file.read_text().strip()
        from core.storage.audit import configure_audit_key

        configure_audit_key(self.settings.audit_key_bytes())
        pool = await create_pool(url, max_size=2)
        try:
            key = await keys.create_key(pool, name="dev", role=keys.Role.ADMIN)
        finally:
            await pool.close()
        key_file.write_text(key + "\n")
        key_file.chmod(0o600)
        return key

    # -- our processes ----------------------------------------------------------------------------------
    def start_children(self, env_overrides: dict[str, str]) -> None:
        env = {**os.environ, **env_overrides}
        s = self.settings
        self._spawn(ChildProcess(self.data_dir, "api", ["api"], env, s.api.port))
        for queue in TASK_QUEUES:
            self._spawn(ChildProcess(self.data_dir, f"worker-{queue}", ["worker", "--queue", queue], env,
                                     s.worker_metrics_port(queue)))

    def _spawn(self, child: ChildProcess) -> None:
        child.start(timeout=90)
        self.children.append(child)

    def supervise_once(self) -> None:
        """Restart any child that exited on its own (a crash or a kill), with back-off per restart."""
        for child in self.children:
            if self._stopping or child.alive():
                continue
            code = child.proc.returncode if child.proc else None
            delay = min(2 ** child.restarts, 30)
            log.warning("%s exited (code %s); restarting in %ss", child.name, code, delay)
            time.sleep(delay)
            try:
                child.start(timeout=90)
                child.restarts += 1
            except ServiceError as err:
                log.error("restart of %s failed: %s", child.name, err)

    def stop(self) -> None:
        self._stopping = True
        for proc in reversed(self.children):
            proc.stop()
        for svc in reversed(self.services):
            svc.stop()
        log.info("stopped")


async def _wait_until_served(settings: Settings, stop: Callable[[], bool], timeout_s: float = 120.0) -> dict[str, str]:
    """Wait until every task queue has a polling worker (so the model is loaded): "up" means ready."""
    from core.readiness import wait_until_served
    from core.temporal import connect

    started = time.monotonic()
    client = await connect(settings)
    checks = await wait_until_served(client, timeout_s=timeout_s, stop=stop)
    log.info("workers polling every queue in %.1fs" if all(v.startswith("ok") for v in checks.values())
             else "not every queue is polled after %.0fs", time.monotonic() - started)
    return checks


def banner(settings: Settings, key: str | None, served: dict[str, str] | None = None) -> str:
    api = f"http://{settings.api.host}:{settings.api.port}"
    waiting = {q: v for q, v in (served or {}).items() if not v.startswith("ok")}
    lines = [
        "", "Safety system is up." if not waiting else
        "Safety system started, but NOT ready: " + "; ".join(waiting.values()),
        f"  API + docs      {api}/docs",
        f"  Temporal UI     {settings.temporal.ui_public_url}" if not settings.temporal.address
        else f"  Temporal        {settings.temporal.address}",
        f"  Metrics         {api}/metrics (workers: :{settings.worker.metrics_base_port}-"
        f":{settings.worker.metrics_base_port + len(TASK_QUEUES) - 1})",
        *([f"  Payloads        encrypted (AES-GCM); CLI: temporal ... --codec-endpoint {codec_endpoint(settings)} "
           "--codec-auth 'Bearer <moderator or admin key>'",
           f"  Web UI codec    sign in at {ui_console_url(settings)} first, then tick 'Include cross-origin "
           "credentials' in the UI's Codec Server settings (README: Reading encrypted payloads)"]
          if settings.codec.enabled else ["  Payloads        NOT encrypted (SAFETY_CODEC__ENABLED=false)"]),
        f"  Workers         {len(served)} task queues polled; screening model loaded" if served and not waiting
        else "  Workers         readiness not checked" if not served else "  Workers         see GET /ready",
        f"  Data            {settings.data_dir.resolve()}",
        f"  Logs            {settings.data_dir.resolve() / 'logs'}",
    ]
    if not settings.llm_configured:
        lines.append("  LLM             none configured: cases that need reasoning go to human review "
                     "(set SAFETY_LLM__BASE_URL)")
    if key:
        lines += [f"  Dev API key     {key}   (also in {settings.data_dir / 'dev-api-key'})", "",
                  "Try it:",
                  f"  curl -s -X POST {api}/v1/events/ingest "
                  f"-H \"X-API-Key: $(cat {settings.data_dir}/dev-api-key)\" \\",
                  "    -H 'Content-Type: application/json' \\",
                  "    -d '{\"event_type\":\"message_created\",\"platform\":\"discord\",\"channel_id\":\"general\","
                  "\"user_id\":\"user_456\",\"author_id\":\"user_123\",\"content\":\"hello there\"}'"]
    lines += ["", "Ctrl-C stops everything; data is kept for the next start.", ""]
    return "\n".join(lines)


def run_up(settings: Settings) -> None:
    stack = Stack(settings)
    stop = {"flag": False}

    def _on_signal(signum: int, _frame: object) -> None:
        stop["flag"] = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        env = stack.start_services()
        key = asyncio.run(stack.prepare_database())
        stack.start_children(env)
        served = asyncio.run(_wait_until_served(settings, lambda: stop["flag"]))
        if not stop["flag"]:
            print(banner(settings, key, served), flush=True)
        while not stop["flag"]:
            stack.supervise_once()
            time.sleep(0.5)
    except (ServiceError, subprocess.CalledProcessError, OSError) as err:
        log.error("start-up failed: %s", err)
        stack.stop()
        raise SystemExit(1) from err
    finally:
        if not stack._stopping:
            print("\nstopping...", flush=True)
            stack.stop()
