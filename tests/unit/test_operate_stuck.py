"""Unknown-SKU orders on the stuck list (fakeredis): a cancelled one leaves it, a dismissed one
leaves it with who, why and when in the journal, and dismissing what is not stuck is an error
(issue 12, item 8)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import fakeredis
import pytest

from inventory_engine.config import Settings
from inventory_engine.domain.models import OrderAction, OrderLine
from inventory_engine.ledger.catalog import CatalogEntry
from inventory_engine.operate.stuck import (
    NotStuckError,
    dismiss_unknown_order,
    find_stuck,
    retry_stuck,
)
from inventory_engine.service import Engine

A = OrderAction


@pytest.fixture
def engine() -> Iterator[Engine]:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    app = Engine(Settings(), client)
    app.ledger.set_on_hand("MUG", 10)
    yield app
    client.close()


def order(engine: Engine, order_id: str, *actions: OrderAction) -> None:
    """An order with one known line (MUG ×1) and one the catalog does not know (×2)."""
    lines = [OrderLine(sku="MUG", quantity=1), OrderLine(sku="ozon_sku:999", quantity=2)]
    for action in actions:
        engine.ledger.record_order("ozon", order_id, lines, action, status=action.value)


def stuck_orders(engine: Engine) -> list[str]:
    return [o.order_id for o in find_stuck(engine).unknown_orders]


def parked(engine: Engine) -> int:
    """What the inventory_unknown_sku_orders gauge shows."""
    return int(engine.client.hlen(engine.ledger.keys.unknown_skus))


def test_a_cancelled_unknown_sku_order_leaves_the_stuck_list(engine):
    order(engine, "P-1", A.RESERVE)
    order(engine, "P-2", A.RESERVE)
    assert stuck_orders(engine) == ["P-1", "P-2"]
    order(engine, "P-1", A.RELEASE)
    # Partly cancelled line by line, down to nothing: released too.
    engine.ledger.release("ozon", "P-2", lines=[OrderLine(sku="MUG", quantity=1)], event_id="e1")
    assert stuck_orders(engine) == []
    assert parked(engine) == 0  # the gauge (and its alert) clears as well
    assert engine.reader.stock("MUG").reserved == 0


def test_an_unknown_sku_order_that_shipped_stays_stuck(engine):
    """Its goods left: on hand of the unknown item still has to drop once it is catalogued."""
    order(engine, "P-1", A.RESERVE, A.COMMIT)
    order(engine, "P-2", A.CANCEL_AFTER_SHIP)
    assert stuck_orders(engine) == ["P-1", "P-2"]


def test_one_left_by_an_older_version_is_not_listed_and_retry_clears_it(engine):
    order(engine, "P-1", A.RESERVE, A.RELEASE)
    entry = {"lines": [["ozon_sku:999", 2]], "location": "main", "ms": 5}
    engine.client.hset(engine.ledger.keys.unknown_skus, "ozon|P-1", json.dumps(entry))
    assert stuck_orders(engine) == []
    report = retry_stuck(engine)
    assert [o.order_id for o in report.dropped] == ["P-1"]
    assert parked(engine) == 0
    [entry] = engine.reader.journal(sku="ozon_sku:999", limit=1)
    assert (entry.op, entry.order_id) == ("dismiss_unknown", "P-1")
    assert entry.reason == "the order was cancelled (dismissed by retry)"


def test_a_resolved_order_leaves_the_stuck_list(engine):
    order(engine, "P-1", A.RESERVE)
    engine.catalog.import_entries([CatalogEntry(sku="SAUCER", ozon_sku=999)])
    retry_stuck(engine)
    assert stuck_orders(engine) == []


def test_dismissing_one_drops_it_and_journals_who_why_and_when(engine):
    order(engine, "P-1", A.RESERVE, A.COMMIT)
    order(engine, "P-2", A.RESERVE)
    dismissed = dismiss_unknown_order(
        engine, "ozon", "P-1", reason="sample, never stocked", by="alice"
    )
    assert (dismissed.order_id, [(x.item, x.quantity) for x in dismissed.lines]) == (
        "P-1",
        [("ozon_sku:999", 2)],
    )
    assert stuck_orders(engine) == ["P-2"]
    [entry] = engine.reader.journal(sku="ozon_sku:999", limit=5)
    assert (entry.op, entry.channel, entry.order_id) == ("dismiss_unknown", "ozon", "P-1")
    assert entry.reason == "sample, never stocked (dismissed by alice)"
    assert entry.ms > 0
    # Counters did not move: a dismissal only stops waiting for a person.
    assert (entry.on_hand_before, entry.on_hand_after) == (0, 0)
    assert engine.reader.stock("MUG").on_hand == 9
    record = engine.client.hget(engine.ledger.keys.order("ozon", "P-1"), "dismissed")
    assert json.loads(record)["reason"] == "sample, never stocked (dismissed by alice)"
    # Retry leaves a dismissed order alone, even once the catalog knows the item.
    engine.catalog.import_entries([CatalogEntry(sku="SAUCER", ozon_sku=999)])
    engine.ledger.set_on_hand("SAUCER", 5)
    retry_stuck(engine)
    assert engine.reader.stock("SAUCER").on_hand == 5


def test_dismissing_what_is_not_stuck_is_a_clear_error(engine):
    engine.ledger.record_order("ozon", "P-3", [OrderLine(sku="MUG", quantity=1)], A.RESERVE)
    with pytest.raises(NotStuckError, match="ozon order P-3 is not stuck"):
        dismiss_unknown_order(engine, "ozon", "P-3", reason="x", by="alice")
    with pytest.raises(NotStuckError, match="ozon order P-404 is not stuck"):
        dismiss_unknown_order(engine, "ozon", "P-404", reason="x", by="alice")
    order(engine, "P-1", A.RESERVE)
    with pytest.raises(ValueError, match="needs a reason"):
        dismiss_unknown_order(engine, "ozon", "P-1", reason="  ", by="alice")
    dismiss_unknown_order(engine, "ozon", "P-1", reason="gone", by="alice")
    with pytest.raises(NotStuckError):  # twice: the second finds nothing
        dismiss_unknown_order(engine, "ozon", "P-1", reason="gone", by="alice")
