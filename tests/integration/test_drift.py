"""Self-healing read-back (issue 14 §1): values changed behind the engine's back on each
simulator are found and repaired by the watch, without any command; a pending change is never
"repaired" backwards; a read that shares the push limit (WB) is paid from the read-back's own
share of it, or from what the pushes leave; one
process reads a channel at a time; an item that keeps drifting is listed as stuck.

Real Valkey, the three simulators over loopback, RQ workers (burst, in process) for the pushes
the repairs queue. The watch is stepped directly: no timing is asserted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from inventory_engine.channels import build_client, http_client_for
from inventory_engine.channels.base import ChannelEndpointRetiredError, StockUpdate
from inventory_engine.http_server import RunningServer, serve_in_thread
from inventory_engine.metrics import definitions as m
from inventory_engine.metrics.recorder import parse_field
from inventory_engine.operate.drift import SPARE_SHARE, DriftWatch
from inventory_engine.operate.pacing import read_limits
from inventory_engine.operate.stuck import find_stuck
from inventory_engine.simulators import ozon, wildberries, yandex_market
from inventory_engine.simulators.sandbox import sandbox_channels
from tests.integration.conftest import AUTH, shown, wait_for
from tests.integration.test_operate_reconcile import (  # noqa: F401 - fixtures
    OZON_SKU,
    WB_CHRT,
    Harness,
    harness_fixture,
)

pytestmark = pytest.mark.integration

ITEM = {"ozon": "MUG", "wb": str(WB_CHRT), "ym": "MUG"}
OZON_WINDOW_S = 0.2
"""The Ozon simulator's per-item window here (30 s in the marketplace): a planted value and
the repair after it each need the window open."""


@pytest.fixture(name="sims")
def sims_fixture() -> Iterator[dict[str, RunningServer]]:
    """As ``test_operate_reconcile``'s, with a short Ozon item window."""
    config = ozon.OzonSimConfig(auto_products=True, item_window_s=OZON_WINDOW_S)
    servers = {
        "ozon": serve_in_thread(ozon.create_app(config)),
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


def open_ozon_windows(harness: Harness) -> None:
    """Let Ozon's item window pass: the simulator's (short here, real time) and the engine's
    own (30 s, on the Redis clock every process shares: jumped ahead)."""
    time.sleep(OZON_WINDOW_S * 1.5)
    harness.engine.client.incrby(harness.engine.ledger.keys.clock_offset, 31_000)


def watch(harness: Harness, channel: str, owner: str = "test-owner") -> DriftWatch:
    return DriftWatch(harness.engine, channel, interval_s=10, owner=owner)


def step_until_read(w: DriftWatch, tries: int = 20) -> list[str]:
    """Step the watch until it read a page (the budget may ask it to wait); the drifted SKUs."""
    for _ in range(tries):
        _, report = w.step()
        if report.read:
            return report.drifted or []
    raise AssertionError("the watch never read a page")


def drift_counts(harness: Harness, channel: str) -> dict[str, int]:
    """``inventory_drift_total`` of ``channel`` by outcome, as stored for the scrape."""
    stored = harness.engine.client.hgetall(harness.engine.ledger.keys.metrics)
    counts: dict[str, int] = {}
    for field, value in stored.items():
        name, labels, _ = parse_field(field.decode())
        if name == m.DRIFT.name and labels[0] == channel:
            counts[labels[1]] = int(value)
    return counts


def plant(harness: Harness, channel: str, value: int) -> None:
    """Someone sets ``value`` in the marketplace's cabinet; the engine is not told."""
    harness.engine.channel(channel).push_stock([StockUpdate("MUG", ITEM[channel], value)])


@pytest.mark.parametrize("channel", ["ozon", "wb", "ym"])
def test_a_value_changed_behind_the_engines_back_is_repaired_by_the_watch(harness, channel):
    open_ozon_windows(harness)
    plant(harness, channel, 3)
    assert harness.shown(channel)[ITEM[channel]] == 3
    open_ozon_windows(harness)

    assert step_until_read(watch(harness, channel)) == ["MUG"]
    keys = harness.engine.ledger.keys
    assert harness.engine.client.zscore(keys.dirty(channel), "MUG") is not None
    assert harness.engine.client.hget(keys.accepted(channel), "MUG") is None  # not coalesced
    harness.work()  # the normal push job sends the ledger's number
    assert harness.shown(channel)[ITEM[channel]] == 10
    assert drift_counts(harness, channel) == {"found": 1, "repaired": 1}

    # Fine on the next pass: nothing found, nothing counted, nothing stuck.
    assert step_until_read(watch(harness, channel)) == []
    assert drift_counts(harness, channel) == {"found": 1, "repaired": 1}
    assert find_stuck(harness.engine).drifting == []


def test_a_pending_change_is_never_repaired_backwards(harness):
    """The ledger moved to 7 and the push has not gone yet: the channel still shows 10. That is
    a change on its way, not drift; the watch leaves it alone."""
    harness.engine.set_on_hand("MUG", 7)  # marks MUG for every channel, queues the pushes
    assert step_until_read(watch(harness, "wb")) == []
    assert drift_counts(harness, "wb") == {}
    harness.work()
    assert harness.shown("wb") == {str(WB_CHRT): 7}


def test_a_parked_item_is_left_to_the_operator(harness):
    harness.engine.client.hset(
        harness.engine.ledger.keys.parked("wb"),
        "MUG",
        '{"code": "X", "message": "refused", "quantity": 10, "item_id": "777", "ms": 1}',
    )
    plant(harness, "wb", 2)
    assert step_until_read(watch(harness, "wb")) == []


def test_an_item_that_keeps_drifting_is_listed_as_stuck(harness):
    for expected_passes in (1, 2):
        plant(harness, "wb", 1)
        assert step_until_read(watch(harness, "wb")) == ["MUG"]
        harness.work()
        assert harness.shown("wb") == {str(WB_CHRT): 10}
        drifting = find_stuck(harness.engine).drifting
        assert [(d.channel, d.sku, d.passes) for d in drifting] == (
            [] if expected_passes == 1 else [("wb", "MUG", 2)]
        )
    assert drift_counts(harness, "wb") == {"found": 2, "repaired": 2, "still_different": 1}


def test_one_process_reads_a_channel_at_a_time(harness):
    first, second = watch(harness, "wb", "host-a/1"), watch(harness, "wb", "host-b/2")
    assert step_until_read(first) == []
    _, report = second.step()
    assert report.skipped == "lease"
    first.release()
    assert step_until_read(second) == []


def freeze_bucket(harness: Harness, name: str, tokens: float) -> None:
    """Set a bucket's tokens with its clock far ahead, so it does not refill during the test."""
    harness.engine.client.hset(
        harness.engine.ledger.keys.bucket(name),
        mapping={"tokens": str(tokens), "ts_ms": str(10**15)},
    )


def tokens(harness: Harness, name: str) -> float:
    return float(harness.engine.client.hget(harness.engine.ledger.keys.bucket(name), "tokens"))


def test_wb_read_back_pays_from_its_own_share_not_the_pushes(harness):
    """WB counts reads and pushes against one limit: the watch pays a page from its own small
    share of it (out of the margin the push defaults leave), not from the push bucket, even when
    the pushes use all of theirs (sustained traffic)."""
    freeze_bucket(harness, "wb", 0)  # the pushes spent every token
    assert step_until_read(watch(harness, "wb")) == []
    assert tokens(harness, "wb") == 0  # no push token taken
    assert tokens(harness, "wb:read") < 1  # the page came from the read-back's share


def test_with_its_share_spent_the_watch_takes_only_what_the_pushes_leave(harness):
    limits = read_limits("wildberries")
    keep = limits.capacity * SPARE_SHARE
    freeze_bucket(harness, "wb:read", 0)
    # The push bucket at the spare share: nothing to spare, the watch waits.
    freeze_bucket(harness, "wb", keep)
    delay, report = watch(harness, "wb").step()
    assert report.skipped == "budget"
    assert 0 < delay <= 1.0
    assert tokens(harness, "wb") == keep
    # Pushes idle, the push bucket full: a page may take one spare token.
    freeze_bucket(harness, "wb", limits.capacity)
    _, report = watch(harness, "wb").step()
    assert report.read == 1
    assert tokens(harness, "wb") == limits.capacity - 1
    assert tokens(harness, "wb:read") < 1  # still short of a page: not taken from it


@pytest.mark.slow
def test_serve_repairs_drift_on_its_own(start_engine, real_client, tmp_path):
    """``serve`` with ``[reconcile] interval_s = 10``: a value changed behind its back on WB
    comes back to the ledger's number with no command run (bounded wait, no timing asserted)."""
    engine = start_engine(extra="[reconcile]\ninterval_s = 10\n")
    answer = httpx.put(f"{engine.base}/v1/stock/MUG", json={"on_hand": 6}, headers=AUTH)
    assert answer.status_code == 200
    assert wait_for(lambda: shown(engine.sandbox, "wb") == {"777": 6})

    wb = next(c for c in sandbox_channels(engine.sandbox) if c.name == "wb")
    with http_client_for(wb) as http:
        build_client(wb, http).push_stock([StockUpdate("MUG", "777", 1)])
    assert shown(engine.sandbox, "wb") == {"777": 1}

    assert wait_for(lambda: shown(engine.sandbox, "wb") == {"777": 6}, seconds=60)
    log = engine.log.read_text()
    assert '"stock_drift"' in log
    assert '"channel": "wb"' in log


def test_a_retired_read_method_pauses_the_watch_and_is_counted(harness, monkeypatch):
    """Issue 14 §3: the read-back meets a method the marketplace retired: not retried every
    few seconds, but waited out with the push path's growing pause, logged and counted."""
    gone = ChannelEndpointRetiredError("wb", 404, "no route", endpoint="POST /api/v3/stocks/{id}")

    class Retired:
        def read_stock(self, item_ids: list[str]) -> dict[str, Any]:
            raise gone

    monkeypatch.setattr(harness.engine, "channel", lambda name: Retired())
    w = watch(harness, "wb")
    first, report = w.step()
    second, _ = w.step()
    assert report.skipped == "retired"
    assert (first, second) == (60.0, 120.0)
    stored = harness.engine.client.hgetall(harness.engine.ledger.keys.metrics)
    counted = {
        labels: int(v)
        for f, v in stored.items()
        for name, labels, _ in [parse_field(f.decode())]
        if name == m.API_ERRORS.name
    }
    assert counted == {("wb", "404", "POST /api/v3/stocks/{id}"): 2}
