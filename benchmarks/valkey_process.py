"""A ``valkey-server`` child process of a benchmark's own, on 127.0.0.1: started on a free port
(tried again when another process takes the port between the probe and the bind), waited for
until it answers, and stopped without saving. The benchmarks' server classes say only which
arguments their server takes (:meth:`ValkeyProcess.arguments`)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from benchmarks.allocators import allocators
from inventory_engine.embedded import find_server_binary

START_TIMEOUT_S = 30.0
START_ATTEMPTS = 3


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ValkeyProcess:
    """One server in ``directory`` (its log: ``server.log`` there)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.binary = find_server_binary()
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def arguments(self) -> list[str]:
        """The server's arguments after the binary, for ``self.port`` and ``self.directory``."""
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        """The server's environment: the first of :func:`benchmarks.allocators.allocators`, the
        engine's own setting for its embedded server, so a benchmark measures the server as the
        engine runs it (and says so from the same place)."""
        return allocators()[0].environment

    def start(self) -> ValkeyProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        for _attempt in range(START_ATTEMPTS):
            self.port = free_port()
            self.proc = subprocess.Popen(
                [self.binary, *self.arguments()],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=self.environment(),
            )
            if self._wait_ready():
                return self
            self._kill()
        raise RuntimeError(f"{self.binary} did not start; see {self.directory / 'server.log'}")

    def client(self, **options: Any) -> redis.Redis:
        """A plain client of this server alone."""
        return redis.Redis(host="127.0.0.1", port=self.port, **options)

    def stop(self) -> None:
        """Shut down without saving (nothing here is worth keeping)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(redis.RedisError):
                self.client(socket_timeout=5).shutdown(nosave=True)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        self._kill()

    def _wait_ready(self) -> bool:
        client = self.client(socket_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    return False
                with contextlib.suppress(redis.RedisError):
                    if client.ping():
                        return True
                time.sleep(0.05)
            return False
        finally:
            client.close()

    def _kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
