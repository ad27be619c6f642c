"""``reconcile`` and ``retry`` as a user runs them: the CLI against a real Valkey and the
marketplace simulators over loopback, RQ workers (SimpleWorker, in process) doing the pushes.

The harness here (simulators, an Engine on the same Redis, a config file for the CLI) is also
used by ``test_operate_orders``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result
from rq.timeouts import TimerDeathPenalty
from typer.testing import CliRunner

import workers.runtime
from inventory_engine.channels.base import ChannelLine, ChannelOrder, StockUpdate
from inventory_engine.cli import app
from inventory_engine.config import Settings
from inventory_engine.domain.models import OrderAction
from inventory_engine.http_server import RunningServer, serve_in_thread
from inventory_engine.ledger.catalog import CatalogEntry
from inventory_engine.sandbox_channels import channels_for_urls
from inventory_engine.service import Engine, order_to_dict
from inventory_engine.simulators import ozon, wildberries, yandex_market
from tests.integration.burst import BurstWorker, run_workers

pytestmark = pytest.mark.integration

OZON_SKU = 555
WB_CHRT = 777


class ThreadWorker(BurstWorker):
    """A burst worker that can run outside the main thread (no signal handlers)."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass


@dataclass
class Harness:
    engine: Engine
    sims: dict[str, RunningServer]
    config: Path

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(app, [*args, "--config", str(self.config)])

    def json(self, *args: str) -> tuple[int, Any]:
        result = self.run(*args, "--json")
        assert result.exit_code in (0, 1), result.output
        return result.exit_code, json.loads(result.stdout)

    def work(self) -> None:
        """Drain both queues with a real RQ worker (burst)."""
        run_workers(self.engine)

    def url(self, name: str) -> str:
        return self.sims[name].url

    def shown(self, name: str) -> dict[str, int]:
        state = httpx.get(f"{self.url(name)}/_sim/state").json()
        return {row["item_id"]: row["value"] for row in state["stock"]}


def config_toml(server: Any, urls: dict[str, str]) -> str:
    return f"""
[redis]
url = "redis://{server.host}:{server.port}/0"
[[channels]]
name = "ozon"
kind = "ozon"
base_url = "{urls["ozon"]}"
client_id = "{ozon.SANDBOX_CLIENT_ID}"
api_key = "{ozon.SANDBOX_API_KEY}"
warehouse_id = {ozon.SANDBOX_WAREHOUSE_ID}
[[channels]]
name = "wb"
kind = "wildberries"
base_url = "{urls["wb"]}"
token = "{wildberries.SANDBOX_TOKEN}"
warehouse_id = {wildberries.SANDBOX_WAREHOUSE_ID}
[[channels]]
name = "ym"
kind = "yandex_market"
base_url = "{urls["ym"]}"
api_key = "{yandex_market.SANDBOX_API_KEY}"
campaign_id = {yandex_market.SANDBOX_CAMPAIGN_ID}
business_id = {yandex_market.SANDBOX_BUSINESS_ID}
"""


@pytest.fixture(name="sims")
def sims_fixture() -> Iterator[dict[str, RunningServer]]:
    """Ozon (offers registered on first push), WB knowing only MUG's size, Yandex Market."""
    servers = {
        "ozon": serve_in_thread(ozon.create_app(ozon.OzonSimConfig(auto_products=True))),
        "wb": serve_in_thread(
            wildberries.create_app(wildberries.WildberriesSimConfig(chrt_ids=(WB_CHRT,)))
        ),
        "ym": serve_in_thread(yandex_market.create_app()),
    }
    product = {"offer_id": "MUG", "sku": OZON_SKU}
    httpx.post(
        f"{servers['ozon'].url}/_sim/products", json={"products": [product]}
    ).raise_for_status()
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(name="harness")
def harness_fixture(real_server, real_client, sims, tmp_path, monkeypatch) -> Iterator[Harness]:
    """MUG (10 on hand) listed on every channel and pushed to all three."""
    for name in ("INVENTORY_CONFIG", "INVENTORY_REDIS_URL", "INVENTORY_REDIS__URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("INVENTORY_SANDBOX", raising=False)
    urls = {name: server.url for name, server in sims.items()}
    engine = Engine(Settings(), real_client, channels=channels_for_urls(urls))
    monkeypatch.setitem(workers.runtime._engines, engine.settings.account, engine)
    engine.catalog.import_entries(
        [
            CatalogEntry(
                sku="MUG",
                ozon_offer_id="MUG",
                ozon_sku=OZON_SKU,
                wb_chrt_id=WB_CHRT,
                ym_offer_id="MUG",
            )
        ]
    )
    engine.ledger.set_on_hand("MUG", 10)
    engine.schedule_pushes()
    config = tmp_path / "config.toml"
    config.write_text(config_toml(real_server, urls))
    harness = Harness(engine, sims, config)
    harness.work()
    assert harness.shown("wb") == {str(WB_CHRT): 10}
    yield harness
    engine.close()


def item(payload: dict[str, Any], channel: str, sku: str) -> dict[str, Any]:
    found = [i for i in payload["items"] if i["channel"] == channel and i["sku"] == sku]
    assert len(found) == 1, payload["items"]
    return found[0]


# -- reconcile -----------------------------------------------------------------------------------


def test_reconcile_finds_a_planted_difference_and_repairs_it_through_the_push_path(harness):
    code, payload = harness.json("reconcile")
    assert code == 0, payload
    assert payload["ok"] is True
    assert {c["channel"]: c["counts"] for c in payload["channels"]} == {
        "ozon": {"ok": 1},
        "wb": {"ok": 1},
        "ym": {"ok": 1},
    }

    # Someone sets 3 in the WB seller cabinet: the engine is not told.
    harness.engine.channel("wb").push_stock([StockUpdate("MUG", str(WB_CHRT), 3)])
    code, payload = harness.json("reconcile")
    assert code == 1
    wb = item(payload, "wb", "MUG")
    assert (wb["expected"], wb["actual"], wb["status"]) == (10, 3, "differs")
    assert (wb["last_push"]["quantity"], wb["last_push"]["outcome"]) == (10, "accepted")
    table = harness.run("reconcile", "--channel", "wb")
    assert table.exit_code == 1
    assert "differs" in table.stdout
    assert "accepted" in table.stdout

    code, payload = harness.json("reconcile", "--channel", "wb", "--apply")
    assert code == 1  # found a difference; the correction is only queued
    assert [(c["channel"], c["sku"], c["outcome"]) for c in payload["corrections"]] == [
        ("wb", "MUG", "queued")
    ]
    keys = harness.engine.ledger.keys
    assert harness.engine.client.zscore(keys.dirty("wb"), "MUG") is not None
    assert harness.engine.client.hget(keys.accepted("wb"), "MUG") is None
    assert harness.engine.pushes.count == 1

    harness.work()  # the normal push job sends it
    assert harness.shown("wb") == {str(WB_CHRT): 10}
    assert harness.json("reconcile")[0] == 0


def test_reconcile_apply_wait_reports_the_repair(harness):
    harness.engine.channel("wb").push_stock([StockUpdate("MUG", str(WB_CHRT), 4)])
    stop = threading.Event()

    def work() -> None:
        while not stop.wait(0.05):
            ThreadWorker([harness.engine.pushes], connection=harness.engine.queue_client).work(
                burst=True, logging_level="WARNING"
            )

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        result = harness.run("reconcile", "--apply", "--wait", "--wait-timeout", "30", "--json")
    finally:
        stop.set()
        worker.join(timeout=10)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    [correction] = payload["corrections"]
    assert correction["channel"] == "wb"
    assert (correction["before"], correction["outcome"], correction["sent"]) == (4, "accepted", 10)
    assert correction["after"] == 10
    assert harness.shown("wb") == {str(WB_CHRT): 10}


def test_reconcile_compares_ozon_present_minus_reserved(harness):
    """An Ozon posting reserves on Ozon's side: present stays 10, reserved 2, the buyer sees 8
    — which is what the ledger expects once it applied the order (reference §1.3)."""
    posting = {"posting_number": "P-1", "products": [{"sku": OZON_SKU, "quantity": 2}]}
    httpx.post(f"{harness.url('ozon')}/_sim/postings", json=posting).raise_for_status()
    order = ChannelOrder("P-1", OrderAction.RESERVE, "awaiting_packaging", needs_lines=True)
    harness.engine.queue_order_events("ozon", [order])
    harness.work()
    assert harness.engine.reader.stock("MUG").available == 8

    code, payload = harness.json("reconcile", "--channel", "ozon", "--all")
    assert code == 0, payload
    oz = item(payload, "ozon", "MUG")
    assert (oz["expected"], oz["actual"], oz["present"], oz["reserved"]) == (8, 8, 10, 2)
    assert oz["status"] == "ok"


def test_reconcile_shows_a_change_in_flight_as_pending(harness):
    harness.engine.ledger.adjust_on_hand("MUG", -4, reason="damaged")  # marked, not pushed
    code, payload = harness.json("reconcile", "--channel", "wb")
    assert code == 0
    wb = item(payload, "wb", "MUG")
    assert (wb["expected"], wb["actual"], wb["status"]) == (6, 10, "pending")


# -- stuck and retry -----------------------------------------------------------------------------


def test_reconcile_reports_what_is_stuck_and_retry_sends_it_again(harness):
    engine = harness.engine
    # A SKU WB does not know yet: its push is refused and parked.
    engine.catalog.import_entries([CatalogEntry(sku="CUP", wb_chrt_id=888)])
    engine.ledger.set_on_hand("CUP", 5)
    engine.schedule_pushes()
    harness.work()
    # An Ozon event whose lines could not be fetched (Ozon failing): the job fails.
    faults = {"error_rate": 1.0}
    httpx.put(f"{harness.url('ozon')}/_sim/faults", json=faults).raise_for_status()
    lost = ChannelOrder("P-9", OrderAction.RESERVE, "awaiting_packaging", needs_lines=True)
    engine.events.enqueue("workers.jobs.apply_order_event", "ozon", order_to_dict(lost))
    harness.work()
    httpx.put(f"{harness.url('ozon')}/_sim/faults", json={}).raise_for_status()
    posting = {"posting_number": "P-9", "products": [{"sku": OZON_SKU, "quantity": 1}]}
    httpx.post(f"{harness.url('ozon')}/_sim/postings", json=posting).raise_for_status()

    code, payload = harness.json("reconcile")
    assert code == 1
    assert item(payload, "wb", "CUP")["status"] == "parked"
    stuck = payload["stuck"]
    assert [(p["channel"], p["sku"], p["parked"]["code"]) for p in stuck["parked"]] == [
        ("wb", "CUP", "NotFound")
    ]
    [job] = stuck["failed_jobs"]
    assert (job["channel"], job["order_id"]) == ("ozon", "P-9")
    assert "ozon" in job["error"]

    # Fixed: WB now knows the size, Ozon answers again.
    httpx.post(f"{harness.url('wb')}/_sim/products", json={"chrtIds": [888]}).raise_for_status()
    code, payload = harness.json("retry")
    assert code == 0, payload
    assert [j["order_id"] for j in payload["requeued"]] == ["P-9"]
    assert [(p["channel"], p["sku"]) for p in payload["unparked"]] == [("wb", "CUP")]
    harness.work()
    assert harness.shown("wb")["888"] == 5
    assert engine.reader.order("ozon", "P-9") is not None
    code, payload = harness.json("reconcile", "--channel", "wb")
    assert code == 0, payload
    assert payload["stuck"] == {
        "failed_jobs": [],
        "parked": [],
        "unknown_orders": [],
        "dead_letters": [],
        "drifting": [],
    }
    assert harness.json("reconcile")[1]["stuck"]["failed_jobs"] == []


def test_unknown_sku_orders_are_listed_with_what_they_map_to_now(harness):
    engine = harness.engine
    order = ChannelOrder(
        "P-5",
        OrderAction.RESERVE,
        "awaiting_packaging",
        lines=(ChannelLine(str(OZON_SKU), 1), ChannelLine("999", 2)),
    )
    engine.queue_order_events("ozon", [order])
    harness.work()
    code, payload = harness.json("retry")
    assert code == 0
    [parked] = payload["unknown_sku_orders"]
    assert (parked["channel"], parked["order_id"]) == ("ozon", "P-5")
    assert [(line["item"], line["sku_now"]) for line in parked["lines"]] == [("ozon_sku:999", None)]
    engine.catalog.import_entries([CatalogEntry(sku="SAUCER", ozon_sku=999)])
    engine.ledger.set_on_hand("SAUCER", 5)
    result = harness.run("retry")
    assert "ozon_sku:999 → SAUCER" in result.stdout
    assert "applied" in result.stdout
    # The parked lines joined the reserved order: 2 SAUCERs are held, nothing is parked.
    stock = engine.reader.stock("SAUCER")
    assert (stock.on_hand, stock.reserved) == (5, 2)
    record = engine.reader.order("ozon", "P-5")
    assert ("SAUCER", 2) in [(line.sku, line.quantity) for line in record.lines]
    assert record.unknown_lines == ()
    code, payload = harness.json("retry")
    assert (payload["resolved_unknown_sku_orders"], payload["unknown_sku_orders"]) == ([], [])
    assert engine.reader.stock("SAUCER").reserved == 2  # a second retry changes nothing
    # Once shipped, the goods left: on hand drops by the resolved line too.
    engine.ledger.record_order("ozon", "P-5", [], OrderAction.COMMIT)
    assert (engine.reader.stock("SAUCER").on_hand, engine.reader.stock("SAUCER").reserved) == (3, 0)


def test_a_cancelled_unknown_sku_order_leaves_the_stuck_list_and_one_can_be_dismissed(harness):
    """Issue 12 item 8: a cancelled unknown-SKU order stayed stuck, reconcile exited 1 for good."""
    engine = harness.engine
    lines = (ChannelLine(str(OZON_SKU), 1), ChannelLine("999", 2))
    engine.queue_order_events(
        "ozon",
        [
            ChannelOrder(n, OrderAction.RESERVE, "awaiting_packaging", lines=lines)
            for n in ("P-5", "P-6")
        ],
    )
    harness.work()
    code, payload = harness.json("reconcile")
    assert code == 1
    assert [o["order_id"] for o in payload["stuck"]["unknown_orders"]] == ["P-5", "P-6"]

    engine.queue_order_events("ozon", [ChannelOrder("P-5", OrderAction.RELEASE, "cancelled")])
    harness.work()
    code, payload = harness.json("reconcile")
    assert code == 1
    assert [o["order_id"] for o in payload["stuck"]["unknown_orders"]] == ["P-6"]
    table = harness.run("reconcile")
    assert "order dismiss" in table.stdout

    # Nobody will catalogue item 999: the operator gives up on it, saying why.
    result = harness.run(
        "order", "dismiss", "ozon", "P-6", "--reason", "sample, never stocked", "--by", "alice"
    )
    assert result.exit_code == 0, result.output
    assert "dismissed by alice" in result.stdout
    code, payload = harness.json("reconcile")
    assert code == 0, payload
    assert payload["stuck"]["unknown_orders"] == []
    [entry] = engine.reader.journal(sku="ozon_sku:999", limit=5)
    assert (entry.op, entry.channel, entry.order_id) == ("dismiss_unknown", "ozon", "P-6")
    assert entry.reason == "sample, never stocked (dismissed by alice)"
    assert engine.reader.stock("MUG").reserved == 1  # P-6's known line is still held
    shown = harness.run("order", "show", "ozon", "P-6")
    assert "(dismissed" in shown.stdout
    assert harness.json("order", "show", "ozon", "P-6")[1]["dismissed"]["reason"] == entry.reason

    again = harness.run("order", "dismiss", "ozon", "P-6", "--reason", "again")
    assert again.exit_code == 1
    assert "ozon order P-6 is not stuck" in " ".join(again.output.split())
    blank = harness.run("order", "dismiss", "ozon", "P-7", "--reason", " ")
    assert blank.exit_code == 2
    assert "needs a reason" in blank.output


def test_sandbox_without_simulator_addresses_is_an_error(real_server, tmp_path, monkeypatch):
    for name in ("INVENTORY_CONFIG", "INVENTORY_REDIS_URL", "INVENTORY_REDIS__URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("INVENTORY_SANDBOX", raising=False)
    config = tmp_path / "config.toml"
    config.write_text(f'[redis]\nurl = "redis://{real_server.host}:{real_server.port}/0"\n')
    result = CliRunner().invoke(app, ["reconcile", "--config", str(config)])
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "sandbox mode" in said
    # Issue 12: rich ate "[[channels]]" ("configure [] or ...") and serve was not mentioned.
    assert "configure [[channels]]" in said
    assert "is serve running?" in said
    result = CliRunner().invoke(app, ["reconcile", "--channel", "nope", "--config", str(config)])
    assert result.exit_code == 2
    assert "no channel named 'nope'" in result.output
