"""The sandbox: every channel client, built from settings, against its simulator."""

from __future__ import annotations

import httpx
import pytest

from inventory_engine.channels import build_client, http_client_for
from inventory_engine.channels.base import ItemOutcome, StockUpdate
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
