"""The propagation benchmark's driver: order events at a fixed rate, open loop.

Events take turns between four sources, each at a quarter of the rate:

* ``ozon``: a posting created in the Ozon simulator (``POST /_sim/postings``), which sends
  ``TYPE_NEW_POSTING`` to the engine's ``/webhooks/ozon``;
* ``ym``: an order created in the Yandex Market simulator (``POST /_sim/orders``), which sends
  ``ORDER_CREATED`` to ``/webhooks/yandex-market/notification``;
* ``wb``: an assembly task created in the Wildberries simulator, found by the engine's poller;
* ``storefront``: ``POST /v1/reservations`` to the engine.

The schedule is open loop: event ``i`` is due at ``start + i / rate`` whatever the answers to
earlier ones (a slow answer does not slow the rate down; ``lag`` says how late a send was).
Requests go over a small keep-alive HTTP/1.1 client on asyncio streams, far cheaper per request
than a general-purpose client: on 2 cores the driver's CPU is taken from the engine.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

from benchmarks.propagation_env import OZON_SKU_BASE, WB_CHRT_BASE, Catalog

SOURCES = ("ozon", "ym", "wb", "storefront")
POOL_SIZE = 256
"""Connections per target at most: bounds the requests in flight to one server."""
IDLE_S = 2.0
"""A pooled connection idle longer than this is closed, not reused (the server may have)."""
REQUEST_TIMEOUT_S = 30.0


@dataclass(slots=True)
class Event:
    """One order event and what the driver saw of it (times in epoch ns)."""

    index: int
    phase: int
    source: str
    order_id: str
    sku: str
    quantity: int
    due_ns: int = 0
    sent_ns: int = 0
    answered_ns: int = 0
    status: int = 0

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.used = reader, writer, time.monotonic()

    def close(self) -> None:
        self.writer.close()


class HttpPool:
    """Keep-alive HTTP/1.1 connections to one host; JSON bodies with Content-Length only."""

    def __init__(self, base_url: str, size: int = POOL_SIZE) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.idle: deque[_Connection] = deque()
        self.slots = asyncio.Semaphore(size)

    async def _connection(self) -> _Connection:
        while self.idle:
            conn = self.idle.pop()
            if time.monotonic() - conn.used < IDLE_S:
                return conn
            conn.close()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return _Connection(reader, writer)

    async def post(
        self, path: str, body: object, headers: str = "", on_send: Event | None = None
    ) -> tuple[int, bytes]:
        """POST ``body`` as JSON; the status and body of the answer. Stamps ``on_send.sent_ns``
        right before the request is written."""
        payload = json.dumps(body, separators=(",", ":")).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n{headers}\r\n"
        ).encode()
        async with self.slots:
            conn = await self._connection()
            try:
                if on_send is not None:
                    on_send.sent_ns = time.time_ns()
                conn.writer.write(head + payload)
                status, answer, keep = await asyncio.wait_for(
                    _read_response(conn.reader), REQUEST_TIMEOUT_S
                )
            except BaseException:
                conn.close()
                raise
            conn.used = time.monotonic()
            if keep:
                self.idle.append(conn)
            else:
                conn.close()
            return status, answer

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split()[1])
    length, keep = 0, True
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value == "close":
            keep = False
        elif name == "transfer-encoding":
            raise ConnectionError(f"unsupported transfer-encoding {value}")
    return status, await reader.readexactly(length), keep


class Driver:
    """Sends the events of each phase; keeps every event it sent."""

    def __init__(
        self, catalog: Catalog, sims: dict[str, str], api: str, token: str, seed: int
    ) -> None:
        self.catalog = catalog
        self.skus = catalog.skus
        self.cum_weights = list(itertools.accumulate(catalog.weights()))
        self.rank = {sku: rank for rank, sku in enumerate(self.skus)}
        self.random = random.Random(seed)
        self.sims, self.api = sims, api
        self.auth = f"Authorization: Bearer {token}\r\n"
        self.events: list[Event] = []
        self.errors: list[str] = []

    def _next_event(self, phase: int) -> Event:
        index = len(self.events)
        source = SOURCES[index % len(SOURCES)]
        sku = self.random.choices(self.skus, cum_weights=self.cum_weights)[0]
        quantity = 1 if source == "wb" or self.random.random() < 0.8 else 2
        order_id = {
            "ozon": f"{70_000_000 + index:08d}-0001-1",
            "ym": str(60_000_000 + index),
            "wb": str(9_000_000 + index),
            "storefront": f"bench-{index}",
        }[source]
        event = Event(index, phase, source, order_id, sku, quantity)
        self.events.append(event)
        return event

    async def _send(self, pools: dict[str, HttpPool], event: Event) -> None:
        rank, q = self.rank[event.sku], event.quantity
        try:
            if event.source == "ozon":
                body: object = {
                    "posting_number": event.order_id,
                    "products": [{"sku": OZON_SKU_BASE + rank, "quantity": q}],
                }
                status, _ = await pools["ozon"].post("/_sim/postings", body, on_send=event)
            elif event.source == "ym":
                items = [{"offerId": event.sku, "count": q}]
                body = {"orderId": int(event.order_id), "items": items}
                status, _ = await pools["ym"].post("/_sim/orders", body, on_send=event)
            elif event.source == "wb":
                body = {"id": int(event.order_id), "chrtId": WB_CHRT_BASE + rank}
                status, _ = await pools["wb"].post("/_sim/orders", body, on_send=event)
            else:
                body = {
                    "reservation_id": event.order_id,
                    "lines": [{"sku": event.sku, "quantity": q}],
                }
                status, _ = await pools["api"].post(
                    "/v1/reservations", body, headers=self.auth, on_send=event
                )
            event.status = status
        except (OSError, TimeoutError, ValueError, IndexError) as exc:
            self.errors.append(f"{event.source} {event.order_id}: {exc!r}")
        event.answered_ns = time.time_ns()

    async def run_phase(self, phase: int, rate: float, seconds: float) -> list[Event]:
        """Send ``rate × seconds`` events, ``1 / rate`` apart; wait for every answer."""
        count = round(rate * seconds)
        pools = {name: HttpPool(url) for name, url in self.sims.items()}
        pools["api"] = HttpPool(self.api)
        loop = asyncio.get_running_loop()
        start_mono, start_ns = loop.time() + 0.05, time.time_ns() + 50_000_000
        tasks: set[asyncio.Task[None]] = set()
        sent: list[Event] = []
        try:
            for i in range(count):
                due = start_mono + i / rate
                delay = due - loop.time()
                if delay > 0.0005:
                    await asyncio.sleep(delay)
                event = self._next_event(phase)
                event.due_ns = start_ns + round(i / rate * 1e9)
                sent.append(event)
                task = loop.create_task(self._send(pools, event))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.wait(tasks)
        finally:
            for pool in pools.values():
                pool.close()
        return sent


def run_phase(driver: Driver, phase: int, rate: float, seconds: float) -> list[Event]:
    """Run one phase on a fresh event loop (uvloop when installed)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(driver.run_phase(phase, rate, seconds))
    return uvloop.run(driver.run_phase(phase, rate, seconds))
