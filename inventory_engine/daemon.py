"""``serve``: HTTP intake, RQ workers, pollers and the periodic sweeps in one supervised command.

* The ledger's Redis: the configured URL, or the embedded server (started and stopped here).
* Sandbox mode: with no ``[[channels]]`` configured, the three marketplace simulators start on
  loopback and the engine publishes to them (a banner says so).
* Workers are child processes (``inventory-engine worker``); one that dies is started again.
* SIGTERM/SIGINT: workers get SIGTERM (RQ's warm shutdown finishes the job in hand), then the
  HTTP server, pollers and simulators stop, then the embedded server flushes and stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

import redis
import structlog

from inventory_engine.config import ChannelSettings, Settings, redact_url
from inventory_engine.errors import InventoryError
from inventory_engine.http_server import RunningServer
from inventory_engine.runtime import queue_connection, redis_connection
from inventory_engine.service import Engine, Engines
from inventory_engine.timing import (
    PUSH_KICK_INTERVAL_S,
    SWEEP_INTERVAL_S,
    WAKE_INTERVAL_S,
    WORKER_STOP_TIMEOUT_S,
)

if TYPE_CHECKING:
    from inventory_engine.simulators.sandbox import Sandbox

log = structlog.get_logger()


class WorkerPool:
    """``count`` worker processes: the first serves the events queue, the second the push
    queue, the rest alternate; a dead one is restarted by :meth:`supervise`."""

    def __init__(self, count: int, env: dict[str, str], config: str | None) -> None:
        self.env = env
        self.config = config
        self.queues = ["events" if i % 2 == 0 else "push" for i in range(max(count, 2))]
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * len(self.queues)

    def _start(self, index: int) -> None:
        command = [
            sys.executable,
            "-m",
            "inventory_engine",
            "worker",
            "--queues",
            self.queues[index],
        ]
        if self.config:
            command += ["--config", self.config]
        # A session of its own: the worker's RQ scheduler child can be stopped with it (a
        # SIGKILLed worker would otherwise leave the child running, holding the scheduler lock).
        process = subprocess.Popen(  # noqa: S603 - our own command
            command, env=self.env, start_new_session=True
        )
        self.processes[index] = process
        log.info("worker_started", queues=self.queues[index], pid=process.pid)

    def supervise(self) -> None:
        for index, process in enumerate(self.processes):
            if process is None or process.poll() is not None:
                if process is not None:
                    log.warning("worker_exited", pid=process.pid, code=process.returncode)
                    _kill_group(process)
                self._start(index)

    def alive(self) -> int:
        """Worker processes running now (``inventory_worker_processes``)."""
        return sum(1 for p in self.processes if p is not None and p.poll() is None)

    def stop(self) -> None:
        running = [p for p in self.processes if p is not None and p.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        # Say what the shutdown waits for: a worker finishes the job in hand and its senders'
        # requests in flight, and is killed after WORKER_STOP_TIMEOUT_S.
        log.info(
            "workers_stopping",
            pids=[p.pid for p in running],
            timeout_s=WORKER_STOP_TIMEOUT_S,
        )
        started = time.monotonic()
        for worker in self.processes:
            if worker is None:
                continue
            process = worker
            try:
                process.wait(timeout=WORKER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning(
                    "worker_killed",
                    pid=process.pid,
                    reason=f"still running {WORKER_STOP_TIMEOUT_S:g} s after SIGTERM",
                )
                process.kill()
            _kill_group(process)
        log.info("workers_stopped", seconds=round(time.monotonic() - started, 2))


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Whatever the worker left behind in its session (its scheduler child)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def serve(
    settings: Settings, *, stop: threading.Event | None = None, config: str | None = None
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set)."""
    stop = stop or threading.Event()
    _stop_on_signals(stop)
    with redis_connection(settings) as client:
        http_port = settings.http.port or _free_port(settings.http.host)
        engine_url = f"http://{settings.http.host}:{http_port}"
        sandbox = None if _configured(settings) else _start_sandbox(settings, client, engine_url)
        queue_client = queue_connection(settings, client)
        engines = Engines(
            settings, client, queue_client=queue_client, channels=_sandbox_channels(sandbox)
        )
        engine = engines.first
        # The workers use the same Redis: the configured URL, or the embedded server's.
        env = dict(os.environ, INVENTORY_REDIS__URL=settings.redis.url or _url_of(client))
        env.pop("INVENTORY_REDIS_URL", None)  # it would override the URL resolved here
        if sandbox is not None:
            urls = json.dumps(sandbox.urls())
            # So that `reconcile` and `orders check` from another shell can read them back,
            # and the workers publish to the same simulators.
            client.set(engine.ledger.keys.sandbox, urls)
            env["INVENTORY_SANDBOX"] = urls
        workers = WorkerPool(settings.workers.count, env, config)
        http = _start_http(
            engines, settings.http.host, http_port, workers.alive, sandbox=sandbox is not None
        )
        pollers: list[threading.Thread] = []
        for each in engines:
            pollers += _start_pollers(each, stop) + _start_drift_watch(each, stop)
        waker = threading.Thread(target=_wake_pushes, args=(engines, stop), name="waker")
        waker.start()
        _log_started(settings, engine_url, engines, workers)
        try:
            _loop(engines, workers, stop)
        finally:
            stopping = time.monotonic()
            workers.stop()
            http.stop()
            _join_all([waker, *pollers], timeout_s=THREAD_STOP_TIMEOUT_S)
            engines.close()
            if queue_client is not client:
                queue_client.close()
            if sandbox is not None:
                with contextlib.suppress(redis.RedisError):
                    client.delete(engine.ledger.keys.sandbox)
                sandbox.stop()
            log.info("engine_stopped", stop_seconds=round(time.monotonic() - stopping, 2))


THREAD_STOP_TIMEOUT_S = 10.0
"""The waker, pollers and read-back threads get this long, together, to finish what they are
doing (one HTTP read at most); they are daemon threads, so one still busy does not hold the
process."""


def _join_all(threads: list[threading.Thread], *, timeout_s: float) -> None:
    """Join ``threads`` against one deadline (not ``timeout_s`` each, one after another)."""
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    busy = [t.name for t in threads if t.is_alive()]
    if busy:
        log.warning("threads_still_busy_at_stop", threads=busy, waited_s=timeout_s)


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` (only the main thread may install handlers: the demo
    runs ``serve`` in a thread and sets ``stop`` itself)."""

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("shutdown_requested", signal=signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)


def _start_sandbox(settings: Settings, client: redis.Redis, engine_url: str) -> Sandbox:
    """Sandbox mode: no ``[[channels]]``, so the three simulators start on loopback."""
    from inventory_engine.ledger.catalog import CatalogStore
    from inventory_engine.simulators.sandbox import start_sandbox

    # The simulators name items as the catalog does (read when an order is placed).
    sandbox = start_sandbox(
        ports={"ozon": 0, "wb": 0, "ym": 0},
        engine_url=engine_url,
        catalog=CatalogStore(client, account=settings.account),
    )
    log.warning(
        "sandbox_mode",
        message="no [[channels]] configured: publishing to the built-in simulators",
        simulators=sandbox.urls(),
    )
    return sandbox


def _sandbox_channels(sandbox: Sandbox | None) -> list[ChannelSettings]:
    """The channel settings that point the engine at a running sandbox's simulators."""
    if sandbox is None:
        return []
    from inventory_engine.simulators.sandbox import sandbox_channels

    return sandbox_channels(sandbox)


def _configured(settings: Settings) -> bool:
    """Real channels or accounts configured (else: sandbox mode)."""
    return bool(settings.channels or settings.accounts)


def _log_started(
    settings: Settings, engine_url: str, engines: Engines, workers: WorkerPool
) -> None:
    for account, tokens in settings.api_tokens().items():
        if not tokens:
            log.warning(
                "api_token_missing",
                account=account,
                message="no [http] api_token is set (with [[accounts]]: the account's "
                "api_tokens): the storefront API /v1 answers 401 to every call of this "
                "account until one is (webhooks and /metrics are not affected)",
            )
    log.info(
        "engine_started",
        redis="embedded" if settings.redis.url is None else redact_url(settings.redis.url),
        http=engine_url,
        accounts={e.settings.account: list(e.channel_settings) for e in engines},
        workers=len(workers.queues),
    )


def _loop(engines: Engines, workers: WorkerPool, stop: threading.Event) -> None:
    ticks = 0
    while not stop.is_set():
        workers.supervise()
        kick = ticks % int(PUSH_KICK_INTERVAL_S / SWEEP_INTERVAL_S) == 0
        for engine in engines:
            _sweep(engine, kick=kick)
        ticks += 1
        stop.wait(SWEEP_INTERVAL_S)


def _sweep(engine: Engine, *, kick: bool) -> None:
    """One account's periodic work: expired holds, the safety-net push kick, the inbox."""
    try:
        released = engine.ledger.expire_due()
        if released:
            log.info("reservations_expired", account=engine.settings.account, count=released)
            engine.schedule_pushes()
        if kick:
            # Only channels with changes left: an idle engine queues no jobs.
            engine.schedule_pushes(engine.pending_channels())
            # Events a killed worker left unacknowledged are taken over by the next drain.
            if engine.inbox.length():
                engine.schedule_inbox()
    except (InventoryError, redis.RedisError) as exc:
        # Redis restarting or briefly unreachable (or one shard of a cluster): keep going,
        # say so once per tick; other accounts are swept all the same.
        log.warning("sweep_failed", account=engine.settings.account, error=str(exc))


def _wake_pushes(engines: Engines, stop: threading.Event) -> None:
    """Queue each channel's push the moment its held items may go (Ozon's window)."""
    failures = 0
    while not stop.wait(WAKE_INTERVAL_S if failures == 0 else min(failures, 10) * 0.5):
        failed = False
        for engine in engines:
            try:
                engine.wake_due_pushes()
            except (InventoryError, redis.RedisError) as exc:
                failed = True
                if failures == 0:
                    log.warning("push_wake_failed", account=engine.settings.account, error=str(exc))
        failures = failures + 1 if failed else 0


def _url_of(client: object) -> str:
    kwargs = client.get_connection_kwargs()  # type: ignore[attr-defined]
    password = kwargs.get("password")
    auth = f":{password}@" if password else ""
    return f"redis://{auth}{kwargs.get('host')}:{kwargs.get('port')}/{kwargs.get('db', 0)}"


def _start_http(
    engines: Engines,
    host: str,
    port: int,
    worker_processes: Callable[[], int],
    *,
    sandbox: bool = False,
) -> RunningServer:
    from inventory_engine.api import create_app, serve_http

    app = create_app(engines, worker_processes=worker_processes, sandbox=sandbox)
    return serve_http(app, host=host, port=port)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _start_drift_watch(engine: Engine, stop: threading.Event) -> list[threading.Thread]:
    """The continuous read-back (``[reconcile]``): drift is repaired without an operator."""
    reconcile = engine.settings.reconcile
    if not reconcile.enabled:
        return []
    from inventory_engine.operate.drift import DriftWatchLoop

    return DriftWatchLoop(engine, reconcile.interval_s, stop).start()


def _start_pollers(engine: Engine, stop: threading.Event) -> list[threading.Thread]:
    from inventory_engine.intake.pollers import PollerLoop

    names = [n for n, c in engine.channel_settings.items() if c.kind != "webhook"]
    thread = threading.Thread(
        target=PollerLoop(engine, names, stop).run,
        name=f"pollers-{engine.settings.account}",
        daemon=True,
    )
    thread.start()
    return [thread]
