"""Several seller accounts in one deployment (issue 15 §1), end to end: ``serve`` with two
``[[accounts]]``, each with its own marketplace simulators, storefront token and webhook paths;
real RQ workers, real HTTP, a real Valkey — or a real local 3-primary Redis Cluster for the
ledger, with the queues on a plain Valkey. Each account's stock, orders, pushes, metrics and CLI
view are its own: a token of one account never reads or changes the other's stock, and a
webhook sent to the wrong account's URL is refused, not applied.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from inventory_engine.ledger import LedgerReader
from inventory_engine.ledger.catalog import CatalogEntry, CatalogStore
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.simulators import ozon, wildberries, yandex_market
from inventory_engine.simulators.sandbox import Sandbox, start_sandbox
from tests.cluster_helpers import LocalCluster, ValkeyProcess
from tests.integration import crash_helpers as h
from tests.integration.conftest import shown

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKENS = {"shop-a": "token-of-shop-a", "shop-b": "token-of-shop-b"}
SELLERS = {"shop-a": 15, "shop-b": 16}
"""The seller ids each account's Ozon channel expects in its pushes."""
MUG = {"ozon": 555, "wb": 777}
HANG_S = 60
"""shop-a's WB answers a request this late (and the engine waits that long for it) in the
isolation step: a push of shop-b that queued behind it could not land within half of it."""


def config_text(
    valkey_url: str, port: int, sandboxes: dict[str, Sandbox], queue_url: str | None = None
) -> str:
    a, b = sandboxes["shop-a"], sandboxes["shop-b"]
    queues = "" if queue_url is None else f'queue_url = "{queue_url}"'
    return f"""
[redis]
url = "{valkey_url}"
{queues}
[http]
host = "127.0.0.1"
port = {port}
[workers]
count = 2

[[accounts]]
name = "shop-a"
api_tokens = ["{TOKENS["shop-a"]}"]
[[accounts.channels]]
name = "ozon"
kind = "ozon"
base_url = "{a.url("ozon")}"
client_id = "{ozon.SANDBOX_CLIENT_ID}"
api_key = "{ozon.SANDBOX_API_KEY}"
warehouse_id = {ozon.SANDBOX_WAREHOUSE_ID}
seller_id = {SELLERS["shop-a"]}
poll_interval_s = 3600
[[accounts.channels]]
name = "wb"
kind = "wildberries"
base_url = "{a.url("wb")}"
token = "{wildberries.SANDBOX_TOKEN}"
warehouse_id = {wildberries.SANDBOX_WAREHOUSE_ID}
poll_interval_s = 3600
timeout_s = {HANG_S}

[[accounts]]
name = "shop-b"
api_tokens = ["{TOKENS["shop-b"]}"]
[[accounts.channels]]
name = "ozon"
kind = "ozon"
base_url = "{b.url("ozon")}"
client_id = "{ozon.SANDBOX_CLIENT_ID}"
api_key = "{ozon.SANDBOX_API_KEY}"
warehouse_id = {ozon.SANDBOX_WAREHOUSE_ID}
seller_id = {SELLERS["shop-b"]}
poll_interval_s = 3600
[[accounts.channels]]
name = "ym"
kind = "yandex_market"
base_url = "{b.url("ym")}"
api_key = "{yandex_market.SANDBOX_API_KEY}"
campaign_id = {yandex_market.SANDBOX_CAMPAIGN_ID}
business_id = {yandex_market.SANDBOX_BUSINESS_ID}
poll_interval_s = 3600
"""


@pytest.fixture
def sandboxes() -> Iterator[dict[str, Sandbox]]:
    running = {name: start_sandbox(ports={"ozon": 0, "wb": 0, "ym": 0}) for name in TOKENS}
    try:
        yield running
    finally:
        for sandbox in running.values():
            sandbox.stop()


def auth(account: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[account]}"}


def posting(number: str, quantity: int, seller_id: int) -> dict[str, Any]:
    return {
        "message_type": "TYPE_NEW_POSTING",
        "posting_number": number,
        "products": [{"sku": MUG["ozon"], "quantity": quantity}],
        "in_process_at": "2026-12-05T10:00:00Z",
        "warehouse_id": ozon.SANDBOX_WAREHOUSE_ID,
        "seller_id": seller_id,
    }


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inventory_engine", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclass
class Ledger:
    """Where the ledger lives: its client (for the test's own reads) and serve's settings."""

    client: redis.Redis
    url: str
    queue_url: str | None = None
    cluster: LocalCluster | None = None


@pytest.fixture(params=["one-redis", "cluster"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    """One Valkey, or a local 3-primary Redis Cluster with the queues on a plain Valkey (the
    accounts spread over the shards)."""
    if request.param == "one-redis":
        server = request.getfixturevalue("real_server")
        yield Ledger(
            request.getfixturevalue("real_client"), f"redis://{server.host}:{server.port}/0"
        )
        return
    cluster = LocalCluster(tmp_path / "cluster")
    queue = ValkeyProcess(tmp_path / "queue", h.free_port())
    client = None
    try:
        cluster.start()
        queue.directory.mkdir()
        queue.start()
        client = cluster.client()
        yield Ledger(client, cluster.url, queue.url, cluster)
    finally:
        if client is not None:
            client.close()
        queue.stop()
        cluster.stop()


def test_two_accounts_run_end_to_end_each_seeing_only_its_own(
    tmp_path: Path, ledger: Ledger, sandboxes: dict[str, Sandbox]
) -> None:
    real_client = ledger.client
    if ledger.cluster is not None:
        # The two accounts' slots are on different shards: each shard serves one of them.
        shards = {ledger.cluster.node_of(AccountKeys(a).on_hand).port for a in TOKENS}
        assert len(shards) == 2
    for account, channels in (("shop-a", ["ozon", "wb"]), ("shop-b", ["ozon", "ym"])):
        CatalogStore(real_client, account=account, channels=channels).import_entries(
            [
                CatalogEntry(
                    sku="MUG",
                    ozon_offer_id="MUG",
                    ozon_sku=MUG["ozon"],
                    wb_chrt_id=MUG["wb"],
                    ym_offer_id="MUG",
                )
            ]
        )
    port = h.free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        config_text(ledger.url, port, sandboxes, queue_url=ledger.queue_url), encoding="utf-8"
    )
    log = tmp_path / "serve.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "inventory_engine", "serve", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    serve = h.Serve(f"http://127.0.0.1:{port}", process, log, config)
    base = serve.base
    http = httpx.Client(timeout=30)
    try:
        assert h.wait_for(lambda: http.get(f"{base}/readyz").status_code == 200), serve.tail()

        # -- storefront: a token opens its own account only ----------------------------------
        assert http.put(f"{base}/v1/stock/MUG", json={"on_hand": 10}, headers=auth("shop-a"))
        answer = http.put(f"{base}/v1/stock/MUG", json={"on_hand": 3}, headers=auth("shop-b"))
        assert answer.status_code == 200, answer.text
        a_view = http.get(f"{base}/v1/stock/MUG", headers=auth("shop-a")).json()
        b_view = http.get(f"{base}/v1/stock/MUG", headers=auth("shop-b")).json()
        assert (a_view["on_hand"], b_view["on_hand"]) == (10, 3)
        other = http.get(f"{base}/v1/stock/MUG", headers={"Authorization": "Bearer nope"})
        assert other.status_code == 403

        # -- pushes: each account's marketplaces show its own number -------------------------
        a, b = sandboxes["shop-a"], sandboxes["shop-b"]
        h.wait_until(
            lambda: shown(a, "wb") == {str(MUG["wb"]): 10} and shown(b, "ym") == {"MUG": 3},
            seconds=60,
            what="each account's first push",
            log=serve,
        )
        assert shown(a, "ym") == {}
        assert shown(b, "wb") == {}

        # -- webhooks: per-account paths, checked against the account's own seller id --------
        ok = http.post(f"{base}/webhooks/shop-a/ozon", json=posting("A-1", 2, SELLERS["shop-a"]))
        assert ok.status_code == 200, ok.text
        wrong = http.post(f"{base}/webhooks/shop-b/ozon", json=posting("A-2", 1, SELLERS["shop-a"]))
        assert wrong.status_code == 400
        assert "not one of account 'shop-b'" in wrong.json()["error"]["message"]
        missing = http.post(f"{base}/webhooks/shop-z/ozon", json=posting("Z-1", 1, 15))
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "ERROR_UNKNOWN"
        # No account is called "default": the unprefixed path names none.
        unprefixed = http.post(f"{base}/webhooks/ozon", json=posting("A-3", 1, 15))
        assert unprefixed.status_code == 404
        h.wait_until(
            lambda: shown(a, "wb") == {str(MUG["wb"]): 8},
            seconds=60,
            what="shop-a's sale to reach its WB",
            log=serve,
        )
        a_stock = LedgerReader(real_client, account="shop-a").stock("MUG")
        b_stock = LedgerReader(real_client, account="shop-b").stock("MUG")
        assert (a_stock.on_hand, a_stock.reserved) == (10, 2)
        assert (b_stock.on_hand, b_stock.reserved) == (3, 0)  # the misrouted push changed nothing
        assert LedgerReader(real_client, account="shop-b").order("ozon", "A-2") is None

        # -- a hold on shop-b moves shop-b only ---------------------------------------------
        hold = http.post(
            f"{base}/v1/reservations",
            json={"reservation_id": "cart-b", "lines": [{"sku": "MUG", "quantity": 1}]},
            headers=auth("shop-b"),
        )
        assert hold.status_code in (200, 201), hold.text
        h.wait_until(
            lambda: shown(b, "ym") == {"MUG": 2}, seconds=60, what="shop-b's hold", log=serve
        )
        assert shown(a, "wb") == {str(MUG["wb"]): 8}

        # -- one account's hanging marketplace does not hold another's pushes ------------------
        h.set_faults(a, "wb", timeout_rate=1.0, hang_s=HANG_S)
        assert http.put(f"{base}/v1/stock/MUG", json={"on_hand": 20}, headers=auth("shop-a"))
        assert http.put(f"{base}/v1/stock/MUG", json={"on_hand": 9}, headers=auth("shop-b"))
        h.wait_until(
            lambda: shown(b, "ym") == {"MUG": 8},
            seconds=HANG_S / 2,
            what="shop-b's change while shop-a's WB hangs",
            log=serve,
        )
        assert shown(a, "wb") == {str(MUG["wb"]): 8}  # shop-a's request is still hanging
        h.set_faults(a, "wb")

        # -- metrics carry the account --------------------------------------------------------
        metrics = http.get(f"{base}/metrics").text
        assert 'account="shop-a"' in metrics
        assert 'account="shop-b"' in metrics

        # -- CLI: --account on every command; accounts list ------------------------------------
        for account, on_hand in (("shop-a", 20), ("shop-b", 9)):
            shown_stock = cli(config, "stock", "show", "MUG", "--account", account)
            assert shown_stock.returncode == 0, shown_stock.stderr
            assert f"{on_hand}" in shown_stock.stdout
        unknown = cli(config, "stock", "show", "MUG", "--account", "shop-z")
        assert unknown.returncode == 2
        assert "no account named 'shop-z'" in unknown.stderr
        listed = cli(config, "accounts", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        accounts = {a["name"]: a for a in json.loads(listed.stdout)}
        assert set(accounts) == {"shop-a", "shop-b"}
        assert accounts["shop-b"]["webhooks"]["ozon"] == "/webhooks/shop-b/ozon"
        assert accounts["shop-a"]["api_tokens"] == 1
        explained = cli(config, "explain", "MUG", "--account", "shop-b", "--json")
        assert explained.returncode in (0, 1), explained.stderr
        assert "ym" in explained.stdout
        assert '"wb"' not in explained.stdout
    finally:
        http.close()
        h.stop_serve(serve)
