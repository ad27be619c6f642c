"""The push path against the simulators over real HTTP, on a real Redis: latest values arrive,
decreases go first, Ozon's item window is respected, failures lose nothing."""

from __future__ import annotations

import time
from dataclasses import replace

import httpx
import pytest
from pydantic import SecretStr

from inventory_engine.channels import build_client, http_client_for
from inventory_engine.config import OzonSettings, WildberriesSettings, YandexMarketSettings
from inventory_engine.domain.models import OrderAction, OrderLine
from inventory_engine.http_server import serve_in_thread
from inventory_engine.ledger import RedisLedger
from inventory_engine.ledger.catalog import CatalogEntry, CatalogStore
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.simulators import ozon, wildberries, yandex_market
from inventory_engine.sync.limits import LIMITS
from inventory_engine.sync.publisher import ChannelPublisher

pytestmark = pytest.mark.integration

KEYS = AccountKeys()
WINDOW_S = 0.4
"""Ozon's 30 s item window, shrunk for the test in both the simulator and the publisher."""
CATALOG = [
    CatalogEntry(sku="A", ozon_offer_id="A", ozon_sku=1001, wb_chrt_id=2001, ym_offer_id="A"),
    CatalogEntry(sku="B", ozon_offer_id="B", ozon_sku=1002, wb_chrt_id=2002, ym_offer_id="B"),
    CatalogEntry(sku="NOT-ON-WB", ozon_offer_id="N", ozon_sku=1003, ym_offer_id="N"),
]


@pytest.fixture
def simulators():
    servers = {
        "ozon": serve_in_thread(
            ozon.create_app(ozon.OzonSimConfig(auto_products=True, item_window_s=WINDOW_S))
        ),
        "wb": serve_in_thread(
            wildberries.create_app(wildberries.WildberriesSimConfig(chrt_ids=(2001, 2002)))
        ),
        "ym": serve_in_thread(yandex_market.create_app()),
    }
    yield {name: server.url for name, server in servers.items()}
    for server in servers.values():
        server.stop()


@pytest.fixture
def setup(real_client, simulators):
    settings = {
        "ozon": OzonSettings(
            kind="ozon",
            name="ozon",
            base_url=simulators["ozon"],
            client_id=ozon.SANDBOX_CLIENT_ID,
            api_key=SecretStr(ozon.SANDBOX_API_KEY),
            warehouse_id=ozon.SANDBOX_WAREHOUSE_ID,
        ),
        "wb": WildberriesSettings(
            kind="wildberries",
            name="wb",
            base_url=simulators["wb"],
            token=SecretStr(wildberries.SANDBOX_TOKEN),
            warehouse_id=wildberries.SANDBOX_WAREHOUSE_ID,
        ),
        "ym": YandexMarketSettings(
            kind="yandex_market",
            name="ym",
            base_url=simulators["ym"],
            api_key=SecretStr(yandex_market.SANDBOX_API_KEY),
            campaign_id=yandex_market.SANDBOX_CAMPAIGN_ID,
            business_id=yandex_market.SANDBOX_BUSINESS_ID,
        ),
    }
    CatalogStore(real_client, channels=list(settings)).import_entries(CATALOG)
    ledger = RedisLedger(real_client, channels=list(settings))
    https = [http_client_for(s) for s in settings.values()]
    publishers = {}
    for (name, channel_settings), http in zip(settings.items(), https, strict=True):
        limits = LIMITS[channel_settings.kind]
        if name == "ozon":
            limits = replace(limits, item_window_s=WINDOW_S)
        publishers[name] = ChannelPublisher(
            real_client, channel_settings, build_client(channel_settings, http), limits=limits
        )
    for publisher in publishers.values():
        # The catalog import marked every listed SKU: its first values (0) go out now.
        publisher.publish_until_idle()
    yield ledger, publishers, simulators
    for http in https:
        http.close()


def shown(url: str) -> dict[str, int]:
    return {row["item_id"]: row["value"] for row in httpx.get(f"{url}/_sim/state").json()["stock"]}


def received(url: str, since: int = 0) -> list[tuple[str, int]]:
    rows = httpx.get(f"{url}/_sim/received", params={"since": since}).json()["received"]
    return [(row["item_id"], row["value"]) for row in rows]


def wait_until_accepted(publisher: ChannelPublisher) -> int:
    """Publish until something is accepted or 5 s pass (bounded; no timing is asserted)."""
    for _ in range(100):
        accepted = publisher.publish_until_idle().accepted
        if accepted:
            return accepted
        time.sleep(0.05)
    return 0


def violations(url: str) -> dict[str, int]:
    return httpx.get(f"{url}/_sim/state").json()["violations"]


def test_an_order_on_one_channel_reaches_the_others(setup):
    ledger, publishers, urls = setup
    ledger.set_on_hand("A", 10)
    ledger.set_on_hand("B", 5)
    for publisher in publishers.values():
        publisher.publish_until_idle()
    ledger.record_order("ozon", "p1", [OrderLine(sku="A", quantity=2)], OrderAction.RESERVE)
    for name in ("wb", "ym"):
        report = publishers[name].publish_until_idle()
        assert report.accepted == 1
        assert report.latencies_ms
    assert shown(urls["wb"]) == {"2001": 8, "2002": 5}  # NOT-ON-WB has no chrtId
    assert shown(urls["ym"])["A"] == 8
    for url in urls.values():
        assert violations(url) == {}


def test_unlisted_and_unchanged_items_are_not_sent(setup):
    ledger, publishers, urls = setup
    start = len(received(urls["wb"]))
    ledger.set_on_hand("NOT-ON-WB", 3)
    first = publishers["wb"].publish_until_idle()
    assert first.not_listed == 1
    assert received(urls["wb"], start) == []
    ledger.set_on_hand("A", 4)
    publishers["wb"].publish_until_idle()
    ledger.adjust_on_hand("A", +1, reason="found")
    ledger.adjust_on_hand("A", -1, reason="lost again")
    again = publishers["wb"].publish_until_idle()
    assert again.unchanged == 1
    assert received(urls["wb"], start) == [("2001", 4)]


def test_decreases_are_sent_before_increases(setup):
    ledger, publishers, urls = setup
    ledger.set_on_hand("A", 10)
    ledger.set_on_hand("B", 10)
    publishers["ym"].publish_until_idle()
    ledger.set_on_hand("A", 20)  # up
    ledger.set_on_hand("B", 1)  # down: goes first
    publishers["ym"].publish_until_idle()
    assert received(urls["ym"])[-2:] == [("B", 1), ("A", 20)]


def test_ozon_item_window_sends_the_latest_value_when_it_opens(setup):
    ledger, publishers, urls = setup
    publisher = publishers["ozon"]
    start = len(received(urls["ozon"]))
    ledger.set_on_hand("A", 10)
    # The catalog's first values opened a window for every item: wait for it (bounded).
    assert wait_until_accepted(publisher) == 1
    ledger.set_on_hand("A", 9)
    ledger.set_on_hand("A", 7)  # two quick changes inside the window
    waiting = publisher.publish_until_idle()
    assert waiting.sent == 0
    assert waiting.next_due_ms is not None
    assert wait_until_accepted(publisher) == 1
    assert received(urls["ozon"], start) == [("A", 10), ("A", 7)]
    assert violations(urls["ozon"]) == {}


def test_a_failed_request_marks_everything_again(setup):
    ledger, publishers, urls = setup
    ledger.set_on_hand("A", 6)
    httpx.put(f"{urls['wb']}/_sim/faults", json={"error_rate": 1.0})
    failed = publishers["wb"].publish_until_idle()
    assert failed.accepted == 0
    assert failed.next_due_ms is not None
    assert publishers["wb"].client.zscore(KEYS.dirty("wb"), "A") is not None
    httpx.put(f"{urls['wb']}/_sim/faults", json={})
    # A 5xx may have landed: the value is forgotten and sent again after a second's back-off.
    assert publishers["wb"].client.hget(KEYS.accepted("wb"), "A") is None
    assert failed.next_due_ms - publishers["wb"].clock() <= 1_000
    time.sleep(1.05)
    assert publishers["wb"].publish_until_idle().accepted == 1
    assert shown(urls["wb"])["2001"] == 6


def test_values_above_the_channel_ceiling_are_clamped(setup):
    ledger, publishers, urls = setup
    ledger.set_on_hand("A", 150_000)  # WB takes at most 100,000
    publishers["wb"].publish_until_idle()
    assert shown(urls["wb"])["2001"] == 100_000
    assert violations(urls["wb"]) == {}


def test_a_rejected_item_is_parked_with_the_reason(setup, real_client):
    ledger, publishers, urls = setup
    CatalogStore(real_client).import_entries([CatalogEntry(sku="GHOST", wb_chrt_id=2999)])
    ledger.set_on_hand("GHOST", 2)
    ledger.set_on_hand("A", 3)
    first = publishers["wb"].publish_until_idle()  # WB: 409 NotFound for 2999
    assert (first.rejected, first.retried) == (1, 1)  # A was in the refused batch: sent again
    assert wait_until_accepted(publishers["wb"]) == 1
    parked = real_client.hget(KEYS.parked("wb"), "GHOST")
    assert parked is not None
    assert b"NotFound" in parked
    assert shown(urls["wb"])["2001"] == 3
    assert real_client.zscore(KEYS.dirty("wb"), "GHOST") is None  # parked, not looping


def test_a_push_worker_that_dies_after_claiming_loses_nothing(setup, real_client):
    """Claimed SKUs are held under a lease; a sender killed before it settled them (SIGKILL:
    here a claim that is never settled) leaves them in flight, and once the lease ends the
    next round marks and sends them again."""
    ledger, publishers, urls = setup
    wb = publishers["wb"]
    ledger.set_on_hand("A", 7)
    wb.state.lease_ms = 300  # the dead sender's lease, short for the test
    dead = wb.state.claim(10)
    assert [c.sku for c in dead.skus] == ["A"]
    wb.state.lease_ms = 60_000
    keys = AccountKeys()
    assert real_client.zscore(keys.dirty("wb"), "A") is None  # claimed: not marked any more
    assert real_client.zscore(keys.inflight("wb"), "A") is not None
    assert shown(urls["wb"]).get("2001") != 7  # not sent: the claim never went out

    assert wb.publish_until_idle().accepted == 0  # the lease still runs: nothing to send yet
    time.sleep(0.35)  # the lease has run out
    assert wb.publish_until_idle().accepted == 1
    assert shown(urls["wb"])["2001"] == 7
    assert real_client.zcard(keys.inflight("wb")) == 0


def test_a_sender_that_breaks_mid_round_gives_its_claims_back(setup, real_client):
    """An exception between claim and settle (Redis, a bug) settles the unanswered SKUs at
    once instead of leaving them to the lease."""
    ledger, publishers, urls = setup
    wb = publishers["wb"]
    ledger.set_on_hand("A", 7)

    class Broken(Exception):
        pass

    original = wb.channel.push_stock

    def broken(_updates):
        raise Broken

    wb.channel.push_stock = broken  # type: ignore[method-assign]
    with pytest.raises(Broken):
        wb.publish_once()
    wb.channel.push_stock = original  # type: ignore[method-assign]
    keys = AccountKeys()
    assert real_client.zcard(keys.inflight("wb")) == 0
    assert real_client.zcard(keys.senders("wb")) == 0
    assert real_client.zscore(keys.dirty("wb"), "A") is not None
    time.sleep(1.05)  # marked again after the one-second retry delay
    assert wb.publish_until_idle().accepted == 1
    assert shown(urls["wb"])["2001"] == 7
