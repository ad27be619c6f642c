"""``inventory-engine serve`` as a user runs it: a real process with its RQ worker processes,
configured channels pointing at the simulators, webhooks over HTTP, SIGTERM to stop."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from inventory_engine.ledger.catalog import CatalogEntry, CatalogStore
from inventory_engine.simulators import ozon, wildberries, yandex_market
from inventory_engine.simulators.sandbox import start_sandbox

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "test-token-123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check, *, seconds: float = 30.0):
    """Poll ``check`` until it returns a truthy value (bounded; no timing is asserted)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.1)
    return None


@pytest.fixture
def engine_process(tmp_path, real_server, real_client):
    sandbox = start_sandbox(ports={"ozon": 0, "wb": 0, "ym": 0})
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(f"""
[redis]
url = "redis://{real_server.host}:{real_server.port}/0"
[http]
host = "127.0.0.1"
port = {port}
api_token = "{TOKEN}"
[workers]
count = 2
[[channels]]
name = "ozon"
kind = "ozon"
base_url = "{sandbox.url("ozon")}"
client_id = "{ozon.SANDBOX_CLIENT_ID}"
api_key = "{ozon.SANDBOX_API_KEY}"
warehouse_id = {ozon.SANDBOX_WAREHOUSE_ID}
[[channels]]
name = "wb"
kind = "wildberries"
base_url = "{sandbox.url("wb")}"
token = "{wildberries.SANDBOX_TOKEN}"
warehouse_id = {wildberries.SANDBOX_WAREHOUSE_ID}
[[channels]]
name = "ym"
kind = "yandex_market"
base_url = "{sandbox.url("ym")}"
api_key = "{yandex_market.SANDBOX_API_KEY}"
campaign_id = {yandex_market.SANDBOX_CAMPAIGN_ID}
business_id = {yandex_market.SANDBOX_BUSINESS_ID}
""")
    CatalogStore(real_client, channels=["ozon", "wb", "ym"]).import_entries(
        [
            CatalogEntry(
                sku="MUG", ozon_offer_id="MUG", ozon_sku=555, wb_chrt_id=777, ym_offer_id="MUG"
            )
        ]
    )
    log_file = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "inventory_engine", "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=log_file,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        ready = wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 200)
        assert ready, "serve did not become ready"
        yield base, sandbox, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
        sandbox.stop()
        log_file.close()


def wb_shows(sandbox) -> dict[str, int]:
    state = httpx.get(f"{sandbox.url('wb')}/_sim/state").json()
    return {row["item_id"]: row["value"] for row in state["stock"]}


def test_serve_ozon_posting_reaches_wb_and_ym_then_stops_cleanly(engine_process):
    base, sandbox, process = engine_process
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.put(f"{base}/v1/stock/MUG", json={"on_hand": 10}, headers=auth).status_code == 200
    assert wait_for(lambda: wb_shows(sandbox) == {"777": 10})

    posting = {
        "message_type": "TYPE_NEW_POSTING",
        "posting_number": "P-9",
        "products": [{"sku": 555, "quantity": 2}],
        "in_process_at": "2026-11-22T10:00:00Z",
        "seller_id": 15,
    }
    answer = httpx.post(f"{base}/webhooks/ozon", json=posting)
    assert answer.json() == {"result": True}
    assert wait_for(lambda: wb_shows(sandbox) == {"777": 8})
    ym = httpx.get(f"{sandbox.url('ym')}/_sim/state").json()
    assert {r["item_id"]: r["value"] for r in ym["stock"]} == {"MUG": 8}
    stock = httpx.get(f"{base}/v1/stock/MUG", headers=auth).json()
    assert (stock["on_hand"], stock["reserved"], stock["available"]) == (10, 2, 8)

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=40) == 0
