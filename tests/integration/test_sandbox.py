"""The sandbox: every channel client, built from settings, against its simulator."""

from __future__ import annotations

import httpx
import pytest

from inventory_engine.channels import build_client, http_client_for
from inventory_engine.channels.base import ItemOutcome, StockUpdate
from inventory_engine.ledger.catalog import CatalogEntry, CatalogStore
from inventory_engine.simulators.sandbox import sandbox_channels, start_sandbox

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sandbox():
    running = start_sandbox(ports={"ozon": 0, "wb": 0, "ym": 0})
    yield running
    running.stop()


ITEM_IDS = {"ozon": "MUG-RED", "wb": "12345678", "ym": "MUG-RED"}


@pytest.mark.parametrize("name", ["ozon", "wb", "ym"])
def test_sandbox_channel_accepts_and_reads_back_stock(sandbox, name):
    settings = next(c for c in sandbox_channels(sandbox) if c.name == name)
    item = ITEM_IDS[name]
    with http_client_for(settings) as http:
        client = build_client(settings, http)
        result = client.push_stock([StockUpdate("MUG-RED", item, 7)])
        shown = client.read_stock([item])
    assert [r.outcome for r in result.items] == [ItemOutcome.ACCEPTED]
    assert shown[item].sellable == 7
    state = httpx.get(f"{sandbox.url(name)}/_sim/state").json()
    assert state["violations"] == {}


def test_sandbox_channels_use_the_contract_names(sandbox):
    names = {(c.name, c.kind) for c in sandbox_channels(sandbox)}
    assert names == {("ozon", "ozon"), ("wb", "wildberries"), ("ym", "yandex_market")}


def test_sandbox_ozon_names_products_as_the_engine_catalog_does(real_client):
    """Issue 12: the Ozon simulator made up its SKUs, so the engine took every sandbox posting
    for an unknown SKU. Given the engine's catalog it uses the catalog's ids, also when the
    catalog is imported after the product was first seen."""
    store = CatalogStore(real_client)
    running = start_sandbox(ports={"ozon": 0, "wb": 0, "ym": 0}, catalog=store)
    try:
        url = running.url("ozon")
        early = httpx.post(
            f"{url}/_sim/postings", json={"products": [{"offer_id": "MUG-RED", "quantity": 1}]}
        ).json()
        store.import_entries(
            [CatalogEntry(sku="MUG", ozon_offer_id="MUG-RED", ozon_sku=1470001, ozon_product_id=9)]
        )
        by_offer = httpx.post(
            f"{url}/_sim/postings", json={"products": [{"offer_id": "MUG-RED", "quantity": 1}]}
        ).json()
        by_sku = httpx.post(
            f"{url}/_sim/postings", json={"products": [{"sku": 1470001, "quantity": 1}]}
        ).json()
    finally:
        running.stop()
    assert store.sku_for("ozon_sku", early["products"][0]["sku"]) is None  # no catalog yet
    for posting in (by_offer, by_sku):
        line = posting["products"][0]
        assert (line["offer_id"], line["sku"]) == ("MUG-RED", 1470001)
        assert store.sku_for("ozon_sku", line["sku"]) == "MUG"


def sandbox_orders(running) -> dict[str, int | str]:
    """One order on each simulator of a sandbox: channel -> the order id the engine reads."""
    with httpx.Client(timeout=10) as http:
        posting = http.post(
            f"{running.url('ozon')}/_sim/postings",
            json={"products": [{"offer_id": "MUG-RED", "quantity": 1}]},
        )
        task = http.post(f"{running.url('wb')}/_sim/orders", json={"chrtId": 12345678})
        order = http.post(
            f"{running.url('ym')}/_sim/orders", json={"items": [{"offerId": "MUG-RED", "count": 1}]}
        )
    return {
        "ozon": posting.json()["posting_number"],
        "ozon order_id": posting.json()["order_id"],
        "wb": task.json()["id"],
        "ym": order.json()["orderId"],
    }


def test_a_restarted_sandbox_never_reissues_an_order_id():
    """Issue 12: the engine's ledger outlives the sandbox's simulators, and a restarted
    ``serve`` numbered its orders from the start again: the ledger took the new orders for
    duplicates of old ones. Nor does ``/_sim/reset`` start the numbers over in the sandbox."""
    seen: list[dict[str, int | str]] = []
    for _ in range(2):
        running = start_sandbox(ports={"ozon": 0, "wb": 0, "ym": 0})
        try:
            seen.append(sandbox_orders(running))
            for name in running.servers:
                httpx.post(f"{running.url(name)}/_sim/reset").raise_for_status()
            seen.append(sandbox_orders(running))
        finally:
            running.stop()
    for channel in seen[0]:
        ids = [orders[channel] for orders in seen]
        assert len(set(ids)) == len(ids), f"{channel} reissued an id: {ids}"
    for channel in ("ozon order_id", "wb", "ym"):  # and they keep increasing
        ids = [int(orders[channel]) for orders in seen]
        assert ids == sorted(ids), channel
