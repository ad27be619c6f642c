"""Held SKUs never hide fresh ones (issue 11): with more than a thousand Ozon SKUs inside their
30 s item window and marked again, fresh changes still leave in the first round, and the held
ones all leave in the first wake-up after their windows open, without waiting for the safety
net. Real server, real RQ jobs, the Ozon simulator over HTTP; time jumps through the push
scripts' ``clock_offset`` and the simulator's own clock, so the 30 s cost nothing."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

import workers.runtime
from inventory_engine.config import Settings
from inventory_engine.http_server import serve_in_thread
from inventory_engine.ledger.catalog import CatalogEntry
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.redis_io import wall_clock_ms
from inventory_engine.sandbox_channels import channels_for_urls
from inventory_engine.service import Engine
from inventory_engine.simulators import ozon
from inventory_engine.sync.publisher import ChannelPublisher
from tests.integration.burst import run_workers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HELD = [f"H{i:04d}" for i in range(1_200)]
FRESH = [f"F{i}" for i in range(20)]
KEYS = AccountKeys()


class Clock:
    """Wall-clock ms plus a jump shared with the server's push scripts and the simulator."""

    def __init__(self, client) -> None:
        self.client = client
        self.skew_ms = 0

    def ms(self) -> int:
        return wall_clock_ms() + self.skew_ms

    def monotonic_s(self) -> float:
        return self.ms() / 1000

    def jump(self, ms: int) -> None:
        self.skew_ms += ms
        self.client.set(KEYS.clock_offset, self.skew_ms)


class JumpingEngine(Engine):
    clock: Clock

    def publisher(self, name: str) -> ChannelPublisher:
        publisher = super().publisher(name)
        publisher.clock = self.clock.ms
        return publisher


@pytest.fixture
def setup(real_client, monkeypatch) -> Iterator[tuple[JumpingEngine, str]]:
    clock = Clock(real_client)
    server = serve_in_thread(
        ozon.create_app(ozon.OzonSimConfig(auto_products=True), clock=clock.monotonic_s)
    )
    channels = [c for c in channels_for_urls({"ozon": server.url, "wb": "", "ym": ""})][:1]
    engine = JumpingEngine(Settings(), real_client, channels=channels)
    engine.clock = clock
    engine.senders.linger_ms = 0  # no waiting in real time for a jumped due time
    monkeypatch.setitem(workers.runtime._engines, engine.settings.account, engine)
    engine.catalog.import_entries([CatalogEntry(sku=sku, ozon_offer_id=sku) for sku in HELD])
    try:
        yield engine, server.url
    finally:
        engine.close()
        server.stop()


def shown(url: str) -> dict[str, int]:
    state = httpx.get(f"{url}/_sim/state", timeout=30).json()
    return {row["item_id"]: row["value"] for row in state["stock"]}


def tick(engine: JumpingEngine) -> None:
    """What serve does: queue the pushes whose wake-up came, run the workers' jobs."""
    engine.wake_due_pushes(engine.clock.ms())
    run_workers(engine)


def test_held_skus_never_hide_fresh_ones_and_leave_when_their_window_opens(setup):
    engine, url = setup
    for sku in HELD:
        engine.ledger.set_on_hand(sku, 5)
    engine.schedule_pushes()
    for _ in range(5):  # 12 requests of 100: the burst of 10, then Ozon's pace
        tick(engine)
        engine.clock.jump(1_000)
    first = shown(url)
    assert all(first.get(sku) == 5 for sku in HELD)

    # 10 s later (the bucket has refilled, the windows still run) every held SKU changes,
    # then SKUs never sent before do.
    engine.clock.jump(10_000)
    for sku in HELD:
        engine.ledger.set_on_hand(sku, 4)
    engine.catalog.import_entries([CatalogEntry(sku=sku, ozon_offer_id=sku) for sku in FRESH])
    for sku in FRESH:
        engine.ledger.set_on_hand(sku, 7)
    engine.schedule_pushes()
    tick(engine)
    now = shown(url)
    assert all(now.get(sku) == 7 for sku in FRESH), "fresh changes waited behind held ones"
    assert all(now.get(sku) == 5 for sku in HELD)  # still inside the window: not sent

    # The windows open (30 s after each accepted batch): the wake-ups send them all.
    engine.clock.jump(20_500)
    for _ in range(5):
        tick(engine)
        engine.clock.jump(1_000)
    after = shown(url)
    assert [sku for sku in HELD if after.get(sku) != 4] == []
    state = httpx.get(f"{url}/_sim/state", timeout=30).json()
    assert state["violations"] == {}
    assert engine.client.zcard(KEYS.dirty("ozon")) == 0
