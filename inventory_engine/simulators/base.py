"""Parts every marketplace simulator shares: fault injection, rate limits, a log of received
stock values, limit-violation counters, and running an ASGI app on loopback in a thread.

The simulators are real HTTP servers (Starlette on uvicorn) that behave as the reference says
the marketplaces do. Each one also serves ``/_sim/...`` admin routes (not part of any
marketplace API) that tests, the demo and the benchmarks use to create orders, inject faults
and read what arrived.
"""

from __future__ import annotations

import asyncio
import functools
import random
import ssl
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class Faults(BaseModel):
    """Faults injected into marketplace API calls (never into ``/_sim`` routes).

    Rates are probabilities per request (per item for ``item_error_rate``).
    """

    model_config = ConfigDict(extra="forbid")

    error_rate: float = Field(default=0.0, ge=0, le=1)
    """Answer 5xx (500/502/503 in turn)."""
    rate_limit_rate: float = Field(default=0.0, ge=0, le=1)
    """Answer the marketplace's rate-limit status (429, or 420 on Yandex Market)."""
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    """Hold the request ``hang_s`` seconds before answering 504, so clients time out."""
    hang_s: float = Field(default=15.0, ge=0, le=120)
    latency_ms: tuple[int, int] = (0, 0)
    """Extra latency, uniform in [min, max] milliseconds, on every API call."""
    item_error_rate: float = Field(default=0.0, ge=0, le=1)
    """Per-item errors inside a stock push that otherwise succeeds."""
    seed: int | None = None


class FaultInjector:
    """Decides, reproducibly when seeded, which requests fail and how."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.configure(faults or Faults())

    def configure(self, faults: Faults) -> None:
        self.faults = faults
        self.random = random.Random(faults.seed)  # noqa: S311 - simulation, not security
        self._errors = 0

    async def delay(self) -> None:
        low, high = self.faults.latency_ms
        if high > 0:
            await asyncio.sleep(self.random.uniform(low, max(low, high)) / 1000)

    def roll(self, rate: float) -> bool:
        return rate > 0 and self.random.random() < rate

    def error_status(self) -> int:
        self._errors += 1
        return (500, 502, 503)[self._errors % 3]


class TokenBucket:
    """A thread-safe token bucket: ``capacity`` burst, ``rate_per_s`` refill.

    The clock is injectable (monotonic seconds), so tests move time by hand instead of sleeping.
    """

    def __init__(
        self,
        capacity: float,
        rate_per_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.rate_per_s = rate_per_s
        self.clock = clock
        self.tokens = capacity
        self.updated = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now

    def take(self, cost: float = 1.0) -> float:
        """Take ``cost`` tokens. Returns 0 on success, else seconds until they would be there."""
        with self._lock:
            self._refill()
            if self.tokens >= cost:
                self.tokens -= cost
                return 0.0
            return (cost - self.tokens) / self.rate_per_s

    def charge(self, cost: float) -> None:
        """Take ``cost`` tokens unconditionally, into debt if need be (WB bills a 4xx as 10
        requests after the fact): the bucket then refuses until it has refilled past zero."""
        with self._lock:
            self._refill()
            self.tokens -= cost


class BackgroundTasks:
    """Fire-and-forget coroutines on the running loop (notification pushes), each referenced
    until it is done: the loop itself holds tasks only weakly."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


@functools.cache
def notify_ssl_context() -> ssl.SSLContext:
    """One TLS context for every notification client: httpx builds a new one per client
    otherwise (~25 ms of CPU each), which caps a simulator at a few dozen notifications a
    second and makes it, not the engine, the bottleneck of a benchmark."""
    return ssl.create_default_context()


ID_EPOCH_S = 1_735_689_600
"""2025-01-01 00:00 UTC: :class:`ClockIds` counts milliseconds from here."""


class ClockIds:
    """Order ids that a simulator started again does not hand out again.

    Each id is the wall clock in milliseconds since 2025, or one above the id before when
    several come within a millisecond; a reset does not start them over. So a simulator started
    afresh (the sandbox of a restarted ``serve``, whose ledger kept its orders) begins above
    every id it handed out before, unless it handed out more than a thousand a second on
    average or the wall clock went back. Numbers from a counter starting at a fixed value
    would be taken for the old orders.
    """

    def __init__(self, wall_clock: Callable[[], float] = time.time) -> None:
        self.wall_clock = wall_clock
        self.last = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self.last = max(self.last + 1, int((self.wall_clock() - ID_EPOCH_S) * 1000))
            return self.last

    def taken(self, value: int) -> None:
        """An id given from outside (an admin route): the next ones go above it."""
        with self._lock:
            self.last = max(self.last, value)


def is_int(value: Any) -> bool:
    """An int that is not a bool (JSON ``true`` must not pass for 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class ReceivedValue:
    """One stock value a simulator accepted: when (epoch ns), for which item, what value."""

    at_ns: int
    warehouse: str
    item_id: str
    value: int


@dataclass
class SimulatorState:
    """Stock, received values and counters of one simulator (thread-safe)."""

    stock: dict[tuple[str, str], int] = field(default_factory=dict)
    received: list[ReceivedValue] = field(default_factory=list)
    violations: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    counters: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accept(self, warehouse: str, item_id: str, value: int) -> None:
        with self.lock:
            self.stock[warehouse, item_id] = value
            self.received.append(ReceivedValue(time.time_ns(), warehouse, item_id, value))

    def violation(self, kind: str) -> None:
        """Count a broken limit (the engine must keep these at 0)."""
        with self.lock:
            self.violations[kind] += 1

    def count(self, name: str, by: int = 1) -> None:
        with self.lock:
            self.counters[name] += by

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "stock": [
                    {"warehouse": w, "item_id": i, "value": v} for (w, i), v in self.stock.items()
                ],
                "violations": dict(self.violations),
                "counters": dict(self.counters),
                "received": len(self.received),
            }

    def reset(self) -> None:
        with self.lock:
            self.stock.clear()
            self.received.clear()
            self.violations.clear()
            self.counters.clear()


def admin_routes(
    state: SimulatorState,
    faults: FaultInjector,
    *,
    on_reset: Callable[[], None] | None = None,
) -> list[Route]:
    """``/_sim`` routes shared by every simulator: state, received values, faults, reset.

    Args:
        on_reset: called by ``POST /_sim/reset`` after the state and the faults are cleared,
            for what the simulator keeps besides them (orders, catalog, rate-limit buckets).
    """

    async def get_state(_: Request) -> Response:
        return JSONResponse(state.snapshot())

    async def get_received(request: Request) -> Response:
        since = int(request.query_params.get("since", "0"))
        with state.lock:
            rows = [
                {"at_ns": r.at_ns, "warehouse": r.warehouse, "item_id": r.item_id, "value": r.value}
                for r in state.received[since:]
            ]
        return JSONResponse({"received": rows, "next": since + len(rows)})

    async def put_faults(request: Request) -> Response:
        faults.configure(Faults.model_validate(await request.json()))
        return JSONResponse(faults.faults.model_dump())

    async def reset(_: Request) -> Response:
        state.reset()
        faults.configure(Faults())
        if on_reset is not None:
            on_reset()
        return JSONResponse({"reset": True})

    return [
        Route("/_sim/state", get_state, methods=["GET"]),
        Route("/_sim/received", get_received, methods=["GET"]),
        Route("/_sim/faults", put_faults, methods=["PUT"]),
        Route("/_sim/reset", reset, methods=["POST"]),
    ]


async def injected_failure(
    faults: FaultInjector,
    *,
    rate_limited: Callable[[], Response],
    error: Callable[[int, str], Response],
) -> Response | None:
    """Apply latency, then maybe a timeout, a 5xx or a rate limit; None = answer normally.

    Args:
        rate_limited: the marketplace's own rate-limit answer (status, headers, body).
        error: builds the marketplace's error body for a status and message.
    """
    await faults.delay()
    f = faults.faults
    if faults.roll(f.timeout_rate):
        await asyncio.sleep(f.hang_s)
        return error(504, "gateway timeout (injected)")
    if faults.roll(f.error_rate):
        return error(faults.error_status(), "internal error (injected)")
    if faults.roll(f.rate_limit_rate):
        return rate_limited()
    return None
