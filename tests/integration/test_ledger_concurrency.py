"""Many clients at once against the real server: the Lua scripts must never oversell a hold.

Each worker thread has its own connection and its own RedisLedger, and all of them start the
same call together behind a barrier.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Any, TypeVar

import pytest
import redis

from inventory_engine.domain.models import OrderAction, OrderLine
from inventory_engine.errors import InsufficientStockError
from inventory_engine.ledger import LedgerReader, OrderOutcome, RedisLedger
from tests.conftest import FakeClock, connect_real, write_bundles

pytestmark = pytest.mark.integration

WORKERS = 50
T = TypeVar("T")


def run_together(server: Any, call: Callable[[RedisLedger, int], T]) -> list[T | Exception]:
    """Run ``call(ledger, i)`` for i in 0..WORKERS-1, one thread and connection each."""
    barrier = Barrier(WORKERS)
    clock = FakeClock()

    def work(i: int) -> T | Exception:
        client = connect_real(server)
        try:
            ledger = RedisLedger(client, channels=["ozon"], clock=clock)
            client.ping()  # connect before the start line
            barrier.wait(timeout=30)
            try:
                return call(ledger, i)
            except InsufficientStockError as exc:
                return exc
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(work, range(WORKERS)))


def one(sku: str) -> list[OrderLine]:
    return [OrderLine(sku=sku, quantity=1)]


def test_try_reserve_concurrent_holds_never_exceed_stock(
    real_server: Any, real_client: redis.Redis
) -> None:
    RedisLedger(real_client).set_on_hand("A", 10)

    results = run_together(real_server, lambda led, i: led.try_reserve(f"r{i}", one("A")))

    held = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, InsufficientStockError)]
    assert len(held) == 10
    assert len(refused) == WORKERS - 10
    assert all(r.created for r in held)
    stock = LedgerReader(real_client).stock("A")
    assert (stock.on_hand, stock.reserved, stock.available) == (10, 10, 0)


def test_try_reserve_concurrent_bundle_holds_never_exceed_components(
    real_server: Any, real_client: redis.Redis
) -> None:
    write_bundles(real_client, {"K": "A:2;B:1"})
    ledger = RedisLedger(real_client)
    ledger.set_on_hand("A", 10)
    ledger.set_on_hand("B", 10)

    results = run_together(real_server, lambda led, i: led.try_reserve(f"r{i}", one("K")))

    assert sum(not isinstance(r, Exception) for r in results) == 5
    assert sum(isinstance(r, InsufficientStockError) for r in results) == WORKERS - 5
    reader = LedgerReader(real_client)
    assert (reader.stock("A").reserved, reader.stock("A").available) == (10, 0)
    assert (reader.stock("B").reserved, reader.stock("B").available) == (5, 5)
    assert reader.stock("K").available == 0


def test_record_order_concurrent_marketplace_orders_are_all_recorded(
    real_server: Any, real_client: redis.Redis
) -> None:
    RedisLedger(real_client).set_on_hand("A", 10)

    results = run_together(
        real_server,
        lambda led, i: led.record_order("ozon", f"o{i}", one("A"), OrderAction.RESERVE),
    )

    outcomes = [r for r in results if isinstance(r, OrderOutcome)]
    assert len(outcomes) == WORKERS
    assert all(o.applied for o in outcomes)
    assert sum(o.oversold_units for o in outcomes) == 40
    reader = LedgerReader(real_client)
    stock = reader.stock("A")
    assert (stock.on_hand, stock.reserved, stock.available) == (10, 50, -40)
    counters = reader.counters()
    assert (counters.oversold_orders, counters.oversold_units) == (40, 40)
    assert len(reader.oversells()) == 40


def test_record_order_concurrent_duplicates_apply_once(
    real_server: Any, real_client: redis.Redis
) -> None:
    RedisLedger(real_client).set_on_hand("A", 10)

    results = run_together(
        real_server,
        lambda led, i: led.record_order(
            "ozon", "o1", [OrderLine(sku="A", quantity=3)], OrderAction.RESERVE
        ),
    )

    assert sum(isinstance(r, OrderOutcome) and r.applied for r in results) == 1
    stock = LedgerReader(real_client).stock("A")
    assert (stock.on_hand, stock.reserved) == (10, 3)
