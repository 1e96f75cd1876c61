"""`safety up` as a subprocess on a fresh data directory and free ports: the harness the end-to-end and
fault-injection suites share."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from ops.embedded import free_port, port_open
from workflows.contract import TASK_QUEUES

REPO = Path(__file__).resolve().parents[1]


def free_block(n: int, start: int = 21000) -> int:
    """The first of ``n`` consecutive ports that nothing listens on."""
    for base in range(start, 60000, 97):
        if all(not port_open(p) for p in range(base, base + n)):
            return base
    raise RuntimeError("no free port block")


class StackProcess:
    """One `safety up`, its ports and environment; the reasoning worker points at ``llm_url``."""

    def __init__(self, data_dir: Path, llm_url: str, *, extra_env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir.resolve()
        n = len(TASK_QUEUES)
        self.ports = {"temporal": free_port(), "ui": free_port(), "tmetrics": free_port(), "pg": free_port(),
                      "redis": free_port(), "api": free_port(), "workers": free_block(n)}
        self.ports["sdk"] = free_block(n, start=self.ports["workers"] + n)
        self.env = {**os.environ,
                    "SAFETY_DATA_DIR": str(self.data_dir), "SAFETY_TEMPORAL__PORT": str(self.ports["temporal"]),
                    "SAFETY_TEMPORAL__UI_PORT": str(self.ports["ui"]),
                    "SAFETY_TEMPORAL__METRICS_PORT": str(self.ports["tmetrics"]),
                    "SAFETY_DATABASE__PORT": str(self.ports["pg"]), "SAFETY_REDIS__PORT": str(self.ports["redis"]),
                    "SAFETY_API__PORT": str(self.ports["api"]),
                    "SAFETY_WORKER__METRICS_BASE_PORT": str(self.ports["workers"]),
                    "SAFETY_WORKER__SDK_METRICS_BASE_PORT": str(self.ports["sdk"]),
                    "SAFETY_LLM__BASE_URL": llm_url, "SAFETY_LLM__API_KEY": "test-key", **(extra_env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = f"http://127.0.0.1:{self.ports['api']}"
        self.log_path = self.data_dir / "up.log"

    def start(self, timeout: float = 180) -> None:
        """Start and wait for this start's banner (the log is appended to across restarts)."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen([sys.executable, "-m", "ops.cli.main", "up"], env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, cwd=REPO)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "safety up exited:\n" + self.log_tail()
            if b"Safety system is up." in self.log_path.read_bytes()[offset:]:
                return
            time.sleep(0.5)
        raise AssertionError("safety up not ready in time:\n" + self.log_tail())

    def log_tail(self, n: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def stop(self, grace: float = 120) -> int | None:
        """Ctrl-C, as a user would; returns the exit code (None if it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None

    def workers(self, queue: str | None = None) -> list[psutil.Process]:
        """The worker processes the supervisor runs (optionally one queue's)."""
        assert self.proc is not None
        out = []
        for p in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                cmd = p.cmdline()
            except psutil.Error:
                continue
            if "ops.cli.main" in cmd and "worker" in cmd and (queue is None or queue in cmd):
                out.append(p)
        return out

    @property
    def key(self) -> str:
        return (self.data_dir / "dev-api-key").read_text().strip()

    @property
    def db_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.ports['pg']}/safety"
