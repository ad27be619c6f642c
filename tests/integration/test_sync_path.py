"""Issue 4's scenarios through the queue, real RQ workers (SimpleWorker, in process), a real
Redis and the marketplace simulators over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

import workers.runtime
from inventory_engine.channels.ozon_notifications import parse_notification
from inventory_engine.config import Settings
from inventory_engine.ledger.catalog import CatalogEntry
from inventory_engine.ledger.redis_io import wall_clock_ms
from inventory_engine.service import Engine
from inventory_engine.simulators.sandbox import sandbox_channels
from tests.integration import burst

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
OZON_SKU = 147451959


@pytest.fixture
def engine(real_client, sandbox, monkeypatch):
    app = Engine(Settings(), real_client, channels=sandbox_channels(sandbox))
    monkeypatch.setitem(workers.runtime._engines, app.settings.account, app)
    app.catalog.import_entries(
        [
            CatalogEntry(
                sku="MUG", ozon_offer_id="MUG", ozon_sku=OZON_SKU, wb_chrt_id=777, ym_offer_id="MUG"
            )
        ]
    )
    app.ledger.set_on_hand("MUG", 10)
    app.schedule_pushes()
    run_workers(app)
    yield app
    app.close()


def run_workers(app: Engine) -> None:
    """Drain both queues with a real RQ worker (burst) and wait for the senders it started."""
    burst.run_workers(app)


def shown(sandbox, name: str) -> dict[str, int]:
    state = httpx.get(f"{sandbox.url(name)}/_sim/state").json()
    return {row["item_id"]: row["value"] for row in state["stock"]}


def new_posting(number: str, quantity: int) -> dict:
    payload = json.loads((FIXTURES / "ozon" / "new_posting.json").read_text())
    payload["posting_number"] = number
    payload["products"] = [{"sku": OZON_SKU, "quantity": quantity}]
    payload.pop("warehouse_id", None)
    return payload


def cancel(number: str, quantity: int) -> dict:
    return {
        "message_type": "TYPE_POSTING_CANCELLED",
        "posting_number": number,
        "products": [{"sku": OZON_SKU, "quantity": quantity}],
        "old_state": "posting_created",
        "new_state": "posting_canceled",
        "changed_state_date": "2026-11-22T10:00:00Z",
        "reason": {"id": 0, "message": ""},
        "warehouse_id": 0,
        "seller_id": 15,
    }


def deliver(app: Engine, payload: dict) -> None:
    app.queue_order_events("ozon", parse_notification(payload).orders)


def test_ozon_order_reaches_wb_and_ym_and_duplicates_change_nothing(engine, sandbox):
    assert shown(sandbox, "wb") == {"777": 10}
    for _ in range(3):
        deliver(engine, new_posting("P-1", 2))
    run_workers(engine)
    assert shown(sandbox, "wb") == {"777": 8}
    assert shown(sandbox, "ym") == {"MUG": 8}
    stock = engine.reader.stock("MUG")
    assert (stock.on_hand, stock.reserved) == (10, 2)


def test_cancel_before_prepare_returns_stock_everywhere(engine, sandbox):
    deliver(engine, new_posting("P-2", 2))
    run_workers(engine)
    deliver(engine, cancel("P-2", 2))
    run_workers(engine)
    assert shown(sandbox, "wb") == {"777": 10}
    assert engine.reader.stock("MUG").reserved == 0


def test_cancel_arriving_before_its_order_keeps_stock(engine, sandbox):
    deliver(engine, cancel("P-3", 2))
    deliver(engine, new_posting("P-3", 2))
    run_workers(engine)
    assert engine.reader.stock("MUG").available == 10
    assert shown(sandbox, "wb") == {"777": 10}


def test_storefront_reservations_publish_to_every_marketplace(engine, sandbox):
    from inventory_engine.domain.models import OrderLine

    engine.reserve("cart-1", [OrderLine(sku="MUG", quantity=3)])
    run_workers(engine)
    assert shown(sandbox, "wb") == {"777": 7}
    assert shown(sandbox, "ym") == {"MUG": 7}


def test_a_change_inside_ozons_window_is_scheduled_not_sent(engine, sandbox):
    engine.ledger.set_on_hand("MUG", 9)
    engine.schedule_pushes()
    run_workers(engine)
    # 10 went to Ozon a moment ago: 9 waits for its 30 s item window (a wake-up for when it
    # opens), while WB and YM take it at once. Ozon's simulator saw no too-early update.
    assert shown(sandbox, "ozon") == {"MUG": 10}
    assert shown(sandbox, "wb") == {"777": 9}
    state = httpx.get(f"{sandbox.url('ozon')}/_sim/state").json()
    assert state["violations"] == {}
    due = engine.queue_client.zscore(engine.ledger.keys.push_wakeups, "ozon")
    # The wake-up is the moment MUG's window opens: 30 s + a margin after Ozon took 10 (the
    # server's due time carried to the engine's clock: a millisecond of rounding either way).
    window_opens = engine.client.hget(engine.ledger.keys.not_before("ozon"), "MUG")
    assert window_opens is not None
    assert due is not None
    assert abs(due - int(window_opens)) <= 5
    assert due > wall_clock_ms()
    # Before the window opens nothing is queued; once it has, exactly one push is.
    assert engine.wake_due_pushes(now_ms=int(due) - 1) == []
    assert engine.pushes.count == 0
    assert engine.wake_due_pushes(now_ms=int(due)) == ["ozon"]
    assert engine.pushes.count == 1
    assert engine.wake_due_pushes(now_ms=int(due) + 1) == []


def test_pending_channels_name_only_channels_with_changes_left(engine, sandbox):
    assert engine.pending_channels() == []  # everything pushed: the kick would queue nothing
    engine.ledger.set_on_hand("MUG", 4)
    assert engine.pending_channels() == ["ozon", "wb", "ym"]
    assert engine.schedule_pushes(engine.pending_channels()) == 3
    assert engine.schedule_pushes(engine.pending_channels()) == 0  # guarded: no pile-up
