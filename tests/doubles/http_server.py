"""Serve an ASGI app with uvicorn in a daemon thread: the lifecycle shared by the test servers."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn


class BackgroundHTTPServer:
    """Binds ``host:port`` (0 = a free port), serves ``app`` in a daemon thread, stops on request."""

    def __init__(self, host: str, port: int, name: str) -> None:
        self.host, self.port, self.name = host, port, name
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def serve(self, app: Any, timeout_s: float = 10.0) -> None:
        """Start serving and return once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._socket = sock
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, name=self.name,
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.shutdown()
                raise RuntimeError(f"{self.name} did not start on {self.host}:{self.port}")
            time.sleep(0.01)

    def shutdown(self) -> None:
        """Shut down and close the port (new connections are refused)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._socket is not None:
            self._socket.close()
        self._server, self._thread, self._socket = None, None, None
