"""Order lines in marketplace ids become seller SKUs through the catalog; unknown ids park."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inventory_engine.channels.ozon_notifications import parse_notification
from inventory_engine.domain.models import OrderAction, OrderLine
from inventory_engine.ledger.catalog import CatalogEntry, CatalogStore
from inventory_engine.service.mapping import to_order_lines, unmapped_sku

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def catalog(redis_client):
    store = CatalogStore(redis_client)
    store.import_entries(
        [CatalogEntry(sku="MUG-RED", ozon_offer_id="MUG-RED", ozon_sku=147451959, wb_chrt_id=5)]
    )
    return store


def test_ozon_new_posting_maps_ozon_sku_to_the_seller_sku(catalog, ledger, reader):
    payload = json.loads((FIXTURES / "ozon" / "new_posting.json").read_text())
    notification = parse_notification(payload)
    (order,) = notification.orders
    lines = to_order_lines(order.lines, catalog, "ozon_sku")
    assert lines == (OrderLine(sku="MUG-RED", quantity=2),)
    ledger.set_on_hand("MUG-RED", 10)
    outcome = ledger.record_order("ozon", order.order_id, lines, order.action)
    assert order.action is OrderAction.RESERVE
    assert outcome.applied
    assert reader.stock("MUG-RED").available == 8


def test_unknown_marketplace_id_is_parked_not_dropped(catalog, ledger, reader):
    from inventory_engine.channels.base import ChannelLine

    lines = to_order_lines([ChannelLine("999", 1), ChannelLine("5", 2)], catalog, "wb_chrt_id")
    assert lines == (
        OrderLine(sku=unmapped_sku("wb_chrt_id", "999"), quantity=1),
        OrderLine(sku="MUG-RED", quantity=2),
    )
    outcome = ledger.record_order("wb", "t1", lines, OrderAction.RESERVE)
    assert outcome.unknown_lines == 1
    assert reader.order("wb", "t1").unknown_lines == (("wb_chrt_id:999", 1),)


def test_storefront_lines_are_already_seller_skus(catalog):
    from inventory_engine.channels.base import ChannelLine

    assert to_order_lines([ChannelLine("ANY", 3)], catalog, "sku") == (
        OrderLine(sku="ANY", quantity=3),
    )
