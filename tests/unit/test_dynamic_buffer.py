"""The opt-in dynamic buffer: recent sales rate × the channel's delay is held back."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from pydantic import SecretStr

from inventory_engine.channels.base import ItemOutcome, ItemResult, PushResult, StockUpdate
from inventory_engine.config import WildberriesSettings
from inventory_engine.domain.models import OrderAction, OrderLine
from inventory_engine.domain.sales_rate import TAU_S, SalesRate, dynamic_buffer
from inventory_engine.ledger.catalog import CatalogEntry, CatalogStore
from inventory_engine.sync.publisher import ChannelPublisher


def test_sales_rate_counts_drops_and_decays():
    rate = SalesRate(0.0, 0, 100)
    rate = rate.observe(90, 1_000)  # 10 sold
    assert rate.per_s == pytest.approx(10 / TAU_S)
    assert rate.observe(95, 2_000).per_s < rate.per_s  # a rise is no sale; the rate decays
    assert SalesRate.decode(rate.encode()) == rate


def test_dynamic_buffer_is_rate_times_window_rounded():
    rate = SalesRate(0.1, 0, 0)  # one unit every 10 s
    assert dynamic_buffer(rate, 30, 0) == 3
    assert dynamic_buffer(rate, 26, 0) == 3  # 2.6 expected sales: hold 3
    assert dynamic_buffer(rate, 0, 0) == 0
    assert dynamic_buffer(SalesRate(0.0, 0, 0), 30, 0) == 0
    assert dynamic_buffer(rate, 30, int(TAU_S * 1000 * 10)) == 0  # long quiet: nothing held


class RecordingChannel:
    """Accepts everything and keeps what it was told (a stand-in for a marketplace client)."""

    kind = "wildberries"
    max_batch = 1000
    catalog_field = "wb_chrt_id"
    order_item_field = "wb_chrt_id"

    def __init__(self) -> None:
        self.name = "wb"
        self.shown: dict[str, int] = {}

    def push_stock(self, updates: Sequence[StockUpdate]) -> PushResult:
        self.shown.update({u.item_id: u.quantity for u in updates})
        return PushResult(tuple(ItemResult(u, ItemOutcome.ACCEPTED) for u in updates))

    def read_stock(self, item_ids):
        return {}

    def list_orders(self, cursor):
        raise NotImplementedError

    def get_order(self, order_id):
        return None


def wb_settings(**extra) -> WildberriesSettings:
    return WildberriesSettings(
        kind="wildberries",
        name="wb",
        base_url="http://127.0.0.1:9",
        token=SecretStr("t"),
        warehouse_id=1,
        **extra,
    )


@pytest.mark.parametrize("enabled", [False, True])
def test_publisher_holds_back_expected_sales_when_enabled(redis_client, clock, enabled):
    from inventory_engine.ledger import RedisLedger

    settings = wb_settings(dynamic_buffer=enabled, dynamic_window_s=300)
    CatalogStore(redis_client, channels=["wb"]).import_entries(
        [CatalogEntry(sku="A", wb_chrt_id=7)]
    )
    ledger = RedisLedger(redis_client, channels=["wb"], clock=clock)
    channel = RecordingChannel()
    publisher = ChannelPublisher(redis_client, settings, channel, clock=clock)
    ledger.set_on_hand("A", 100)
    publisher.publish_until_idle()
    for n in range(10):  # a sale every 6 s for a minute
        clock.advance(seconds=6)
        ledger.record_order("ozon", f"o{n}", [OrderLine(sku="A", quantity=1)], OrderAction.RESERVE)
        publisher.publish_until_idle()
    available = 90
    if enabled:
        # ~10 units sold over the last minute: a rate near 10/300 per s, × 300 s ≈ 8-10 held.
        assert 0 < available - channel.shown["7"] <= 10
    else:
        assert channel.shown["7"] == available


def test_a_relisted_sku_is_sent_to_its_new_id(redis_client, clock):
    """The accepted value is remembered with the marketplace id it went to: after the SKU is
    listed under a new id (a new WB card), the same number is not coalesced away."""
    from inventory_engine.ledger import RedisLedger

    settings = wb_settings()
    catalog = CatalogStore(redis_client, channels=["wb"])
    catalog.import_entries([CatalogEntry(sku="A", wb_chrt_id=7)])
    ledger = RedisLedger(redis_client, channels=["wb"], clock=clock)
    channel = RecordingChannel()
    publisher = ChannelPublisher(redis_client, settings, channel, clock=clock)
    ledger.set_on_hand("A", 5)
    publisher.publish_until_idle()
    assert channel.shown == {"7": 5}
    catalog.import_entries([CatalogEntry(sku="A", wb_chrt_id=8)])  # re-listed; stock unchanged
    publisher.publish_until_idle()
    assert channel.shown == {"7": 5, "8": 5}


def test_a_sku_nobody_counted_is_not_published_until_a_count_arrives(redis_client, clock):
    """Issue 12: ``catalog import`` marked every SKU and the push sent 0 for those without a
    stock count, taking live listings off sale."""
    from inventory_engine.ledger import RedisLedger

    settings = wb_settings()
    CatalogStore(redis_client, channels=["wb"]).import_entries(
        [CatalogEntry(sku="NEW", wb_chrt_id=9), CatalogEntry(sku="SOLD-OUT", wb_chrt_id=10)]
    )
    ledger = RedisLedger(redis_client, channels=["wb"], clock=clock)
    ledger.set_on_hand("SOLD-OUT", 0)  # counted: a real 0
    channel = RecordingChannel()
    publisher = ChannelPublisher(redis_client, settings, channel, clock=clock)
    report = publisher.publish_until_idle()
    assert channel.shown == {"10": 0}
    assert report.uncounted == 1
    ledger.set_on_hand("NEW", 4)
    publisher.publish_until_idle()
    assert channel.shown == {"10": 0, "9": 4}
