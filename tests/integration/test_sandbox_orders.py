"""Sandbox orders end to end: ``serve`` with no channels, the seller's first hour.

Start ``serve`` (sandbox mode: the built-in simulators), import a catalog and a stock count with
the CLI, place an order on each simulator through its admin route: the ledger must take every
one for the catalogued SKU (not park it as an unknown SKU) and available stock must go down.
Then restart ``serve`` on the same Redis: the simulators start afresh, the ledger does not, and
the orders placed after the restart must be new orders, not duplicates of the old ones.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from inventory_engine.ledger import LedgerReader
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.reads import OrderRecord
from tests.integration.conftest import TOKEN, free_port, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CATALOG = """sku,ozon_offer_id,ozon_sku,ozon_product_id,wb_chrt_id,ym_offer_id,bundle
MUG,MUG-OZ,1470001,9000001,77000001,MUG-YM,
TEA,TEA-OZ,1470002,9000002,77000002,TEA-YM,
"""
STOCK = "sku,on_hand\nMUG,20\nTEA,20\n"


@dataclass
class SandboxServe:
    process: subprocess.Popen[bytes]
    base: str
    sims: dict[str, str]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def config(tmp_path: Path, real_server: Any) -> Path:
    """A configuration with no ``[[channels]]``: ``serve`` runs the sandbox."""
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[redis]
url = "redis://{real_server.host}:{real_server.port}/0"
[http]
host = "127.0.0.1"
port = {free_port()}
api_token = "{TOKEN}"
[workers]
count = 2
"""
    )
    return path


@pytest.fixture
def start_serve(
    config: Path, tmp_path: Path, real_client: redis.Redis
) -> Iterator[Callable[[], SandboxServe]]:
    """``start()``: ``serve`` in sandbox mode until ready; every one is stopped at the end."""
    started: list[SandboxServe] = []
    files: list[Any] = []
    port = int(config.read_text().split("port = ")[1].split()[0])

    def start() -> SandboxServe:
        log = tmp_path / f"serve-{len(started)}.log"
        handle = log.open("w")
        files.append(handle)
        process = subprocess.Popen(
            [sys.executable, "-m", "inventory_engine", "serve", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=handle,
        )
        base = f"http://127.0.0.1:{port}"
        running = SandboxServe(process, base, {}, log)
        started.append(running)
        ready = wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 200)
        assert ready, "serve did not become ready:\n" + log.read_text()[-3000:]
        recorded = real_client.get(AccountKeys().sandbox)
        assert recorded, "serve did not record its simulators"
        running.sims = json.loads(recorded)
        return running

    try:
        yield start
    finally:
        for running in started:
            running.stop()
        for handle in files:
            handle.close()


def cli(config: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "inventory_engine", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def import_catalog_and_stock(config: Path, tmp_path: Path) -> None:
    """What a seller does once ``serve`` runs: the catalog, then a stock count."""
    (tmp_path / "catalog.csv").write_text(CATALOG)
    (tmp_path / "stock.csv").write_text(STOCK)
    cli(config, "catalog", "import", str(tmp_path / "catalog.csv"))
    cli(config, "stock", "import", str(tmp_path / "stock.csv"))


def place_orders(sims: dict[str, str]) -> dict[str, str]:
    """One order of one MUG on each simulator, as its admin route makes it: channel -> order id.

    Each is placed the way the seller knows the item there: Ozon by the seller's article
    (``offer_id``), Wildberries by its size id, Yandex Market by the offer id.
    """
    with httpx.Client(timeout=10) as http:
        posting = http.post(
            f"{sims['ozon']}/_sim/postings",
            json={"products": [{"offer_id": "MUG-OZ", "quantity": 1}]},
        )
        assert posting.status_code == 200, posting.text
        task = http.post(f"{sims['wb']}/_sim/orders", json={"chrtId": 77000001})
        assert task.status_code == 201, task.text
        order = http.post(
            f"{sims['ym']}/_sim/orders", json={"items": [{"offerId": "MUG-YM", "count": 1}]}
        )
        assert order.status_code == 201, order.text
    return {
        "ozon": posting.json()["posting_number"],
        "wb": str(task.json()["id"]),
        "ym": str(order.json()["orderId"]),
    }


def recorded(reader: LedgerReader, orders: dict[str, str]) -> dict[str, OrderRecord] | None:
    """The ledger's record of each order, once it has all of them."""
    found = {channel: reader.order(channel, order_id) for channel, order_id in orders.items()}
    if any(record is None for record in found.values()):
        return None
    return {channel: record for channel, record in found.items() if record is not None}


def assert_taken_for_the_mug(records: dict[str, OrderRecord]) -> None:
    for channel, record in records.items():
        assert record.unknown_lines == (), f"{channel}: parked as an unknown SKU"
        assert [(line.sku, line.quantity) for line in record.lines] == [("MUG", 1)], channel


def test_sandbox_orders_move_stock_on_every_marketplace(start_serve, config, tmp_path, real_client):
    """Issue 12 item 5: the Ozon simulator made up its own SKU numbers, so every sandbox
    posting was an unknown SKU in the ledger. The catalog is imported after ``serve`` started,
    as a new seller does, and an Ozon posting named by Ozon's SKU must work too."""
    running = start_serve()
    import_catalog_and_stock(config, tmp_path)
    reader = LedgerReader(real_client)
    assert reader.stock("MUG").available == 20

    orders = place_orders(running.sims)
    records = wait_for(lambda: recorded(reader, orders))
    assert records, (
        f"not every order reached the ledger: {orders}\n" + running.log.read_text()[-3000:]
    )
    assert_taken_for_the_mug(records)
    assert wait_for(lambda: reader.stock("MUG").available == 17)
    assert reader.counters().unknown_sku_orders == 0

    # Ozon's own SKU of the item (what the catalog's ozon_sku says) names the same product.
    posting = httpx.post(
        f"{running.sims['ozon']}/_sim/postings",
        json={"products": [{"sku": 1470002, "quantity": 2}]},
        timeout=10,
    )
    assert posting.status_code == 200, posting.text
    assert [(p["offer_id"], p["sku"]) for p in posting.json()["products"]] == [("TEA-OZ", 1470002)]
    assert wait_for(lambda: reader.stock("TEA").available == 18)
    assert reader.counters().unknown_sku_orders == 0


def test_sandbox_restart_never_reuses_an_order_id(start_serve, config, tmp_path, real_client):
    """Issue 12 item 6: after a restart the simulators numbered their orders from the start
    again, and the ledger (which kept its orders) took a new order for a duplicate."""
    first = start_serve()
    import_catalog_and_stock(config, tmp_path)
    reader = LedgerReader(real_client)
    before = place_orders(first.sims)
    assert wait_for(lambda: recorded(reader, before)), before
    assert wait_for(lambda: reader.stock("MUG").available == 17)
    first.stop()

    second = start_serve()
    after = place_orders(second.sims)
    for channel in before:
        assert after[channel] != before[channel], f"{channel} reissued order {after[channel]}"
    records = wait_for(lambda: recorded(reader, after))
    assert records, f"not every order reached the ledger: {after}"
    assert_taken_for_the_mug(records)
    assert wait_for(lambda: reader.stock("MUG").available == 14)
