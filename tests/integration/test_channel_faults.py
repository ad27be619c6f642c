"""Issue §2, channel faults: the three marketplace simulators answer 5xx, 429/420, time out,
answer slowly and fail single items at set rates while many changes for several SKUs flow through
the engine (real RQ SimpleWorker bursts on a real Valkey, the push jobs exactly as ``serve`` runs
them). Then the faults stop and the engine settles:

* every item ends at its latest value on every channel (the value the ledger publishes now);
* the simulators counted no broken limit (``violations == {}``: rate limits, batch sizes, Ozon's
  30 s per-item window);
* retries back off: after each failed stock request the next one to that marketplace came no
  sooner than the publisher's pause (1, 2, 4, 8, 15, 30 s for consecutive 5xx/timeouts; the
  marketplace's retry time for a 429/420), read from the simulators' own request logs.

Time is virtual: the publishers, the simulators and the push path's Lua scripts (through the
``clock_offset`` key they add to the server's TIME) share one clock that runs with the wall clock
and is moved ahead by the test, so Ozon's 30 s window and minute-long pauses cost no real time.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import workers.runtime
from inventory_engine.channels.base import ChannelLine, ChannelOrder
from inventory_engine.config import Settings
from inventory_engine.domain.models import OrderAction, OrderLine
from inventory_engine.errors import InsufficientStockError
from inventory_engine.http_server import RunningServer, serve_in_thread
from inventory_engine.intake.storefront import stock_body
from inventory_engine.ledger.catalog import CatalogEntry
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.redis_io import wall_clock_ms
from inventory_engine.sandbox_channels import channels_for_urls
from inventory_engine.service import Engine
from inventory_engine.simulators import ozon, wildberries, yandex_market
from inventory_engine.sync.publisher import ChannelPublisher
from inventory_engine.timing import FAILURE_BACKOFF_MS
from tests.integration import burst

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = 20_241_122
SKUS = ("MUG", "CUP", "PLATE", "BOWL", "SPOON", "FORK")
CHANNELS = ("ozon", "wb", "ym")
STEPS = 120
WB_STEPS = 60
STEP_MS = (100, 200, 500, 1_000, 3_000)
"""Virtual time between two steps of the faulty phase, drawn from these (~2 min in all)."""
CLIENT_TIMEOUT_S = 0.3
"""The channels' HTTP timeout here; an injected hang (``HANG_S``) outlasts it."""
HANG_S = 0.5
FAULTS = {
    "error_rate": 0.10,  # 500/502/503
    "rate_limit_rate": 0.10,  # 429 (Ozon, WB) / 420 (YM)
    "timeout_rate": 0.03,  # hangs past the client's timeout, then 504
    "hang_s": HANG_S,
    "latency_ms": [0, 40],  # slow answers, within the timeout
    "item_error_rate": 0.20,  # Ozon INTERNAL_ERROR items, WB 409 StoreIsProcessing
}
STOCK_ROUTES = {
    "ozon": ("POST", "/v2/products/stocks"),
    "wb": ("PUT", f"/api/v3/stocks/{wildberries.SANDBOX_WAREHOUSE_ID}"),
    "ym": ("PUT", f"/v2/campaigns/{yandex_market.SANDBOX_CAMPAIGN_ID}/offers/stocks"),
}
RATE_LIMITED = {"ozon": {429}, "wb": {429}, "ym": {420, 429}}
RATE_LIMIT_PAUSE_MS = 1_000
"""The least wait any of the three asks for after a 429/420 (Ozon sends none: the client waits
1 s; WB's X-Ratelimit-Retry and YM's Until have whole-second resolution, at least 1 s)."""
KICK_EVERY_STEPS = 16
OUTAGE_MS = 40_000
ITEM_ERRORS = {"ozon", "wb"}
"""Marketplaces whose stock push can fail for single items (YM's cannot)."""
"""``serve``'s safety-net kick (every 5 s) in steps of the faulty phase."""


class VirtualClock:
    """Epoch ms that run with the wall clock, plus whatever the test jumped ahead; the jump is
    written to the server too (the push scripts' ``clock_offset``)."""

    def __init__(self, client: Any = None) -> None:
        self.skew_ms = 0
        self.client = client

    def ms(self) -> int:
        return wall_clock_ms() + self.skew_ms

    def seconds(self) -> float:
        return self.ms() / 1000

    def advance(self, ms: int) -> None:
        self.skew_ms += ms
        if self.client is not None:
            self.client.set(AccountKeys().clock_offset, self.skew_ms)


@dataclass(frozen=True, slots=True)
class Request:
    started_ms: int
    method: str
    path: str
    status: int


@dataclass
class RequestLog:
    """An ASGI wrapper around a simulator recording each marketplace request (not ``/_sim``):
    the virtual time it arrived and the status it was answered with."""

    app: ASGIApp
    clock: VirtualClock
    rows: list[Request] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sim"):
            await self.app(scope, receive, send)
            return
        started = self.clock.ms()
        status: list[int] = []

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.rows.append(Request(started, scope["method"], scope["path"], (status or [0])[0]))

    def stock_requests(self, channel: str) -> list[Request]:
        method, path = STOCK_ROUTES[channel]
        rows = [r for r in self.rows if (r.method, r.path) == (method, path)]
        return sorted(rows, key=lambda r: r.started_ms)


class VirtualTimeEngine(Engine):
    """The engine with its publishers on the virtual clock (the ledger keeps the wall clock:
    only its dirty marks' times come from it, and those only feed the latency figures)."""

    clock: VirtualClock

    def publisher(self, name: str) -> ChannelPublisher:
        publisher = super().publisher(name)
        publisher.clock = self.clock.ms
        return publisher


@dataclass
class Harness:
    engine: VirtualTimeEngine
    clock: VirtualClock
    servers: dict[str, RunningServer]
    logs: dict[str, RequestLog]

    def url(self, channel: str) -> str:
        return self.servers[channel].url

    def set_faults(self, channel: str, faults: dict[str, Any]) -> None:
        httpx.put(f"{self.url(channel)}/_sim/faults", json=faults).raise_for_status()

    def sim_state(self, channel: str) -> dict[str, Any]:
        state: dict[str, Any] = httpx.get(f"{self.url(channel)}/_sim/state").json()
        return state

    def shown(self, channel: str) -> dict[str, int]:
        return {row["item_id"]: row["value"] for row in self.sim_state(channel)["stock"]}


def item_id(channel: str, index: int) -> str:
    """The id each marketplace knows SKUS[index] by in its stock (Ozon and YM: the offer id)."""
    return str(3_000 + index) if channel == "wb" else SKUS[index]


def order_item_id(channel: str, index: int) -> str:
    """The id each marketplace names SKUS[index] by in its orders."""
    return {"ozon": str(1_000 + index), "wb": str(3_000 + index), "ym": SKUS[index]}[channel]


@pytest.fixture
def harness(request, real_client, monkeypatch) -> Iterator[Harness]:
    """The simulators on the virtual clock, the engine pointed at them, SKUS in the catalog.
    ``wb_error_cost`` (indirect parameter, default 10 as WB bills): requests a WB 4xx costs."""
    wb_error_cost = getattr(request, "param", {}).get("wb_error_cost", 10)
    clock = VirtualClock(real_client)
    apps: dict[str, Callable[[], Any]] = {
        "ozon": lambda: ozon.create_app(
            ozon.OzonSimConfig(auto_products=True), clock=clock.seconds
        ),
        "wb": lambda: wildberries.create_app(
            wildberries.WildberriesSimConfig(
                chrt_ids=None, clock=clock.seconds, error_cost=wb_error_cost
            )
        ),
        "ym": lambda: yandex_market.create_app(clock=clock.seconds),
    }
    logs = {name: RequestLog(build(), clock) for name, build in apps.items()}
    servers: dict[str, RunningServer] = {}
    try:
        for name, log in logs.items():
            servers[name] = serve_in_thread(log)  # type: ignore[arg-type]
        channels = [
            settings.model_copy(update={"timeout_s": CLIENT_TIMEOUT_S})
            for settings in channels_for_urls({name: s.url for name, s in servers.items()})
        ]
        engine = VirtualTimeEngine(Settings(), real_client, channels=channels)
        engine.clock = clock
        engine.senders.linger_ms = 0  # no waiting in real time for a virtual due time
        monkeypatch.setitem(workers.runtime._engines, engine.settings.account, engine)
        engine.catalog.import_entries(
            [
                CatalogEntry(
                    sku=sku,
                    ozon_offer_id=sku,
                    ozon_sku=1_000 + index,
                    wb_chrt_id=3_000 + index,
                    ym_offer_id=sku,
                )
                for index, sku in enumerate(SKUS)
            ]
        )
        yield Harness(engine, clock, servers, logs)
        engine.close()
    finally:
        for server in servers.values():
            server.server.should_exit = True
        for server in servers.values():
            server.stop()


def run_workers(engine: Engine) -> None:
    """Drain both queues with a real RQ SimpleWorker (burst: returns when they are empty), and
    wait for the channel senders its push jobs started; again while they queued more."""
    burst.run_workers(engine)


def tick(harness: Harness, *, kick: bool) -> None:
    """What ``serve`` does between two steps: queue the pushes whose wake-up came (the waker),
    now and then re-queue channels with changes left (the safety-net kick), run the workers."""
    engine = harness.engine
    engine.wake_due_pushes(harness.clock.ms())
    if kick:
        engine.schedule_pushes(engine.pending_channels())
    run_workers(engine)


class Shop:
    """Random, seeded activity: stock counts, storefront checkouts, marketplace orders."""

    def __init__(self, engine: Engine, rng: random.Random) -> None:
        self.engine, self.rng = engine, rng
        self.carts: list[str] = []
        self.orders: list[tuple[str, str, int, int]] = []  # channel, id, sku index, quantity
        self.serial = itertools.count(1)

    def act(self) -> None:
        roll = self.rng.random()
        if roll < 0.30:
            index = self.rng.randrange(len(SKUS))
            self.engine.set_on_hand(SKUS[index], self.rng.randint(0, 40))
        elif roll < 0.50:
            self.checkout()
        elif roll < 0.80:
            self.marketplace_order()
        else:
            self.advance_order()

    def checkout(self) -> None:
        if self.carts and self.rng.random() < 0.5:
            cart = self.carts.pop(self.rng.randrange(len(self.carts)))
            if self.rng.random() < 0.7:
                self.engine.commit_reservation(cart)
            else:
                self.engine.release_reservation(cart)
            return
        cart = f"cart-{next(self.serial)}"
        line = OrderLine(sku=self.rng.choice(SKUS), quantity=self.rng.randint(1, 3))
        try:
            self.engine.reserve(cart, [line])
        except InsufficientStockError:
            return
        self.carts.append(cart)

    def marketplace_order(self) -> None:
        channel = self.rng.choice(CHANNELS)
        index = self.rng.randrange(len(SKUS))
        quantity = self.rng.randint(1, 2)
        order_id = f"{channel}-{next(self.serial)}"
        self.orders.append((channel, order_id, index, quantity))
        self.queue(channel, order_id, index, quantity, OrderAction.RESERVE)

    def advance_order(self) -> None:
        if not self.orders:
            return
        channel, order_id, index, quantity = self.orders.pop(self.rng.randrange(len(self.orders)))
        action = OrderAction.COMMIT if self.rng.random() < 0.7 else OrderAction.RELEASE
        self.queue(channel, order_id, index, quantity, action)

    def queue(
        self, channel: str, order_id: str, index: int, quantity: int, action: OrderAction
    ) -> None:
        line = ChannelLine(order_item_id(channel, index), quantity)
        order = ChannelOrder(order_id, action, action.value, lines=(line,))
        self.engine.queue_order_events(channel, [order], source="test")


def settle(harness: Harness, *, rounds: int = 300) -> int:
    """Faults are off: let the engine run until no channel has anything left to send. Virtual
    time jumps to each wake-up (Ozon's window, a pause). Returns the rounds it took."""
    engine = harness.engine
    keys = engine.ledger.keys
    for round_number in range(1, rounds + 1):
        tick(harness, kick=True)
        if not engine.pending_channels():
            return round_number
        wakeups = engine.queue_client.zrange(keys.push_wakeups, 0, 0, withscores=True)
        due = int(wakeups[0][1]) if wakeups else harness.clock.ms() + 1_000
        harness.clock.advance(max(1, due - harness.clock.ms()))
    pytest.fail(f"still pending after {rounds} rounds: {engine.pending_channels()}")


def assert_backed_off(log: RequestLog, channel: str) -> dict[str, int]:
    """Every failed stock request was followed by a pause at least as long as the publisher's
    (consecutive 5xx/timeouts escalate; a 429/420 waits the retry time). Returns counts."""
    failures = 0
    seen = {"requests": 0, "unavailable": 0, "rate_limited": 0, "escalated": 0}
    rows = log.stock_requests(channel)
    seen["requests"] = len(rows)
    for previous, following in itertools.pairwise(rows):
        gap = following.started_ms - previous.started_ms
        if previous.status in RATE_LIMITED[channel]:
            seen["rate_limited"] += 1
            least = RATE_LIMIT_PAUSE_MS
        elif previous.status >= 500:
            failures += 1
            seen["unavailable"] += 1
            seen["escalated"] += failures > 1
            least = FAILURE_BACKOFF_MS[min(failures, len(FAILURE_BACKOFF_MS)) - 1]
        else:
            failures = 0  # answered (2xx, or WB's 409 naming items): the back-off starts over
            continue
        assert gap >= least, (
            f"{channel}: a request {gap} ms after a {previous.status} "
            f"(failure {failures} in a row), the pause is {least} ms"
        )
    return seen


def run_faulty_phase(
    harness: Harness,
    faults: dict[str, dict[str, Any]],
    *,
    steps: int,
    step_ms: tuple[int, ...] = STEP_MS,
) -> None:
    """Seeded activity with ``faults`` per channel, then no faults and settle."""
    engine, clock = harness.engine, harness.clock
    rng = random.Random(SEED)
    shop = Shop(engine, rng)
    for sku in SKUS:
        engine.set_on_hand(sku, rng.randint(5, 30))
    engine.schedule_pushes()
    tick(harness, kick=False)  # the first values go out before the faults start
    for index, (channel, channel_faults) in enumerate(faults.items()):
        harness.set_faults(channel, {**channel_faults, "seed": SEED + index})
    for step in range(steps):
        for _ in range(rng.randint(1, 3)):
            shop.act()
        tick(harness, kick=step % KICK_EVERY_STEPS == 0)
        # Bursts of changes close together (rate limits), and gaps that let Ozon's window turn.
        clock.advance(rng.choice(step_ms))
    # Every SKU's last change meets a per-item error where the marketplace has them: it is
    # delivered only if failed items are sent again.
    for sku in SKUS:
        engine.set_on_hand(sku, rng.randint(41, 60))
    for channel in ITEM_ERRORS & set(faults):
        harness.set_faults(channel, {"item_error_rate": 1.0})
    for _ in range(3):
        tick(harness, kick=True)
        clock.advance(31_000)  # Ozon's item window opens again
    for channel in faults:
        harness.set_faults(channel, {})
    settle(harness)
    for queue in (engine.events, engine.pushes):
        assert queue.failed_job_registry.count == 0
        assert queue.scheduled_job_registry.count == 0


def assert_latest_values_shown(harness: Harness) -> None:
    engine = harness.engine
    for channel in CHANNELS:
        shown = harness.shown(channel)
        for index, sku in enumerate(SKUS):
            body = stock_body(engine, sku)
            assert body is not None
            target = body.channels[channel].target
            assert shown.get(item_id(channel, index)) == target, (
                f"{channel} shows {shown.get(item_id(channel, index))} for {sku}, "
                f"the ledger publishes {target}"
            )
            assert body.channels[channel].accepted == target
            assert not body.channels[channel].pending
        assert engine.client.hlen(engine.ledger.keys.parked(channel)) == 0


@pytest.mark.parametrize("harness", [{"wb_error_cost": 1}], indirect=True)
def test_under_faults_every_item_ends_at_its_latest_value_within_the_limits(harness):
    # WB here bills a 4xx as 1 request, not 10: that part is the xfail test below.
    run_faulty_phase(harness, dict.fromkeys(CHANNELS, FAULTS), steps=STEPS)

    assert_latest_values_shown(harness)
    for channel in CHANNELS:
        assert harness.sim_state(channel)["violations"] == {}, channel
    seen = {channel: assert_backed_off(harness.logs[channel], channel) for channel in CHANNELS}
    # The faults were really met: failed requests on every marketplace, both kinds in all.
    for channel, counts in seen.items():
        assert counts["unavailable"] + counts["rate_limited"] > 0, (channel, counts)
    assert sum(counts["unavailable"] for counts in seen.values()) > 0, seen
    assert sum(counts["rate_limited"] for counts in seen.values()) > 0, seen
    pushes = engine_pushes(harness.engine)
    assert {("ozon", "retry"), ("wb", "retry")} <= pushes  # item errors met and sent again

    # A whole outage: YM answers only 5xx for 40 s. The pauses grow 1, 2, 4, 8, 15 s
    # (requests at 0, 1, 3, 7, 15, 30 s; the next one is due at 60 s): no hammering, no giving
    # up.
    engine, clock, log = harness.engine, harness.clock, harness.logs["ym"]
    before = len(log.stock_requests("ym"))
    harness.set_faults("ym", {"error_rate": 1.0})
    engine.set_on_hand(SKUS[0], 77)
    began = clock.ms()
    for step in itertools.count():
        tick(harness, kick=step % KICK_EVERY_STEPS == 0)
        if clock.ms() - began >= OUTAGE_MS:
            break
        clock.advance(500)
    outage = [r for r in log.stock_requests("ym")[before:] if r.started_ms - began < OUTAGE_MS]
    assert all(row.status >= 500 for row in outage)
    gaps = [b.started_ms - a.started_ms for a, b in itertools.pairwise(outage)]
    # Real time runs under the virtual clock too: a loaded machine may fit one request fewer.
    assert 3 <= len(gaps) <= 5, gaps
    for gap, pause in zip(gaps, FAILURE_BACKOFF_MS, strict=False):
        assert gap >= pause, gaps
    harness.set_faults("ym", {})
    settle(harness)
    assert_latest_values_shown(harness)
    assert harness.shown("ym")[SKUS[0]] == stock_body(engine, SKUS[0]).channels["ym"].target


def test_wb_item_errors_billed_tenfold_stay_within_wbs_limit(harness):
    faults = {"item_error_rate": 0.5}
    run_faulty_phase(harness, {"wb": faults}, steps=WB_STEPS, step_ms=(100, 200))
    assert_latest_values_shown(harness)
    assert harness.sim_state("wb")["violations"] == {}


def engine_pushes(engine: Engine) -> set[tuple[str, str]]:
    """(channel, outcome) pairs of the engine's push log."""
    rows = engine.client.xrange(engine.ledger.keys.pushes)
    return {(_text(row[b"channel"]), _text(row[b"outcome"])) for _, row in rows}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
