"""The stock and catalog commands against a real embedded server, as a user runs them."""

from __future__ import annotations

import json
import threading

import pytest
import redis
from typer.testing import CliRunner

from inventory_engine.cli import app
from inventory_engine.config import EmbeddedSettings, load_settings
from inventory_engine.daemon import THREAD_STOP_TIMEOUT_S, serve
from inventory_engine.domain.models import OrderLine
from inventory_engine.embedded import ensure_embedded_server
from inventory_engine.ledger import LedgerReader, RedisLedger
from inventory_engine.timing import WORKER_STOP_TIMEOUT_S

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path, monkeypatch):
    """One embedded server for the test; the CLI finds it through the state directory."""
    for name in ("INVENTORY_CONFIG", "INVENTORY_REDIS_URL", "INVENTORY_REDIS__URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INVENTORY_EMBEDDED__STATE_DIR", str(tmp_path / "state"))
    running = ensure_embedded_server(EmbeddedSettings(state_dir=tmp_path / "state"))
    yield redis.Redis.from_url(running.url)
    running.stop()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def stock_json(*args: str) -> dict:
    code, output = run("stock", "show", *args, "--json")
    assert code == 0, output
    return json.loads(output)


def test_cli_stock_set_adjust_show(server):
    assert run("stock", "set", "A", "10")[0] == 0
    code, output = run("stock", "adjust", "A", "--by=-3", "--reason", "damaged")
    assert code == 0, output
    shown = stock_json("A")
    assert (shown["on_hand"], shown["reserved"], shown["available"]) == (7, 0, 7)
    entry = LedgerReader(server).journal(sku="A", limit=1)[0]
    assert (entry.op, entry.reason, entry.channel) == ("adjust_on_hand", "damaged", "cli")


def test_cli_stock_adjust_below_zero_changes_nothing(server):
    run("stock", "set", "A", "2")
    code, output = run("stock", "adjust", "A", "--by=-3", "--reason", "lost")
    assert code == 2  # an error (bad input): see the CLI's exit codes
    assert "would make it -1" in output
    assert stock_json("A")["on_hand"] == 2


def test_cli_stock_show_per_location_and_unknown_sku(server):
    run("stock", "set", "A", "4", "--location", "east")
    run("stock", "set", "A", "6")
    shown = stock_json("A")
    assert shown["on_hand"] == 10
    assert shown["locations"]["east"]["on_hand"] == 4
    code, output = run("stock", "show", "NOPE")
    assert code == 1
    assert "unknown SKU NOPE" in output


def test_cli_stock_import_is_all_or_nothing(server, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("sku,on_hand,location\nA,5,\nB,7,east\n")
    code, output = run("stock", "import", str(good))
    assert code == 0, output
    assert "2 rows read, 2 counts changed" in output
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,on_hand\nA,50\nB,-1\n")
    code, output = run("stock", "import", str(bad))
    assert code == 2  # an error (bad input): see the CLI's exit codes
    assert "row 2" in output
    assert stock_json("A")["on_hand"] == 5  # the good first row of the bad file was not applied


def test_cli_catalog_import_defines_bundles(server, tmp_path):
    run("stock", "set", "A", "9")
    run("stock", "set", "B", "2")
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "sku,ozon_offer_id,ozon_sku,ozon_product_id,wb_chrt_id,ym_offer_id,bundle\n"
        "A,A,1001,2001,3001,A,\nB,B,1002,2002,3002,B,\nKIT,KIT,1003,2003,3003,KIT,A:2;B:1\n"
    )
    code, output = run("catalog", "import", str(catalog))
    assert code == 0, output
    assert "3 catalog entries written (1 bundles)" in output
    assert stock_json("KIT")["available"] == 2
    code, output = run("stock", "set", "KIT", "5")
    assert code == 2  # an error (bad input): see the CLI's exit codes
    assert "is a bundle" in output


def test_cli_catalog_import_names_skus_without_a_count(server, tmp_path):
    run("stock", "set", "A", "9")
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "sku,ozon_offer_id,ozon_sku,ozon_product_id,wb_chrt_id,ym_offer_id,bundle\n"
        "A,A,1001,2001,3001,A,\nNEW,NEW,1002,2002,3002,NEW,\n"
    )
    code, output = run("catalog", "import", str(catalog))
    assert code == 0, output
    assert "1 SKU(s) have no stock count yet (NEW)" in " ".join(output.split())


def test_cli_catalog_import_bad_row_writes_nothing(server, tmp_path):
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("sku,ozon_sku,bundle\nA,1,\nKIT,2,A:1;GHOST:1\n")
    code, output = run("catalog", "import", str(catalog))
    assert code == 2  # an error (bad input): see the CLI's exit codes
    assert "row 2" in output
    assert "GHOST is not in the catalog" in output
    assert server.hlen("inv:{default}:catalog") == 0


def test_serve_releases_expired_holds_and_stops_on_request(server):
    settings = load_settings(http={"port": 0}, workers={"count": 2})
    ledger = RedisLedger(server)
    ledger.set_on_hand("A", 3)
    ledger.try_reserve("cart-1", [OrderLine(sku="A", quantity=2)], ttl_s=1)
    assert LedgerReader(server).stock("A").reserved == 2

    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(settings,), kwargs={"stop": stop})
    thread.start()
    try:
        # Poll (bounded) until the 1 s hold has been swept; no timing is asserted.
        for _ in range(100):
            if LedgerReader(server).stock("A").reserved == 0:
                break
            stop.wait(0.1)
        assert LedgerReader(server).stock("A").reserved == 0
        assert LedgerReader(server).order("storefront", "cart-1").state == "expired"
    finally:
        stop.set()
        # Bounded by serve's own stop timeouts (workers, then threads), with room for a loaded
        # machine: the test checks that serve stops, not how fast.
        thread.join(timeout=WORKER_STOP_TIMEOUT_S + THREAD_STOP_TIMEOUT_S + 30)
    assert not thread.is_alive()


def test_cli_changes_are_published_like_any_other(server):
    """A count from the CLI marks the SKU for every channel serve publishes to (the sandbox's
    here) and queues their push jobs."""
    from rq import Queue

    from inventory_engine.ledger.keys import AccountKeys
    from inventory_engine.service import PUSH_QUEUE

    assert run("stock", "set", "A", "5")[0] == 0
    keys = AccountKeys()
    for channel in ("ozon", "wb", "ym"):
        assert server.zscore(keys.dirty(channel), "A") is not None
    assert Queue(PUSH_QUEUE, connection=server).count == 3


def test_help_keeps_bracketed_words_and_renders_code():
    """Issue 12: rich markup ate "[redis]" and showed ``serve`` raw."""
    result = CliRunner().invoke(app, ["serve", "--help"], terminal_width=200)
    said = " ".join(result.output.split())
    assert "when no [redis] url is set" in said
    result = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert "``" not in result.output
