"""One way to run an ASGI app in this process: uvicorn in a background thread, returned once it
accepts connections. The engine's HTTP intake and the marketplace simulators both use it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn

START_TIMEOUT_S = 10.0
GRACEFUL_STOP_S = 5.0
"""Requests still in flight at shutdown get this long to finish, then they are cut (uvicorn
would otherwise wait for them without limit)."""


@dataclass
class RunningServer:
    """An ASGI app served by uvicorn in a background thread."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=GRACEFUL_STOP_S + 5)


def serve_in_thread(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, name: str = "http", **options: Any
) -> RunningServer:
    """Start ``app`` on ``host:port`` (0 = a free port) and return once it accepts requests.

    ``options`` go to :class:`uvicorn.Config` (its logging, lifespan and access log are off:
    the engine logs through structlog).

    Raises:
        RuntimeError: the server did not start within :data:`START_TIMEOUT_S`.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        **{
            "log_level": "warning",
            "lifespan": "off",
            "access_log": False,
            "timeout_graceful_shutdown": GRACEFUL_STOP_S,
            **options,
        },
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"{name}-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"{name}: the HTTP server did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return RunningServer(url=f"http://{host}:{bound}", server=server, thread=thread)
