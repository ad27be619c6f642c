"""Order pollers against the marketplace simulators over real HTTP, on a real Redis: new orders
are queued once, unchanged re-reads queue nothing, a status change queues one event, the cursor
and the tracking state survive a new Engine, and a channel fault keeps the cursor."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from inventory_engine.config import (
    Settings,
    WebhookSettings,
)
from inventory_engine.http_server import serve_in_thread
from inventory_engine.intake.pollers import (
    PollerLoop,
    poll_once,
    read_cursor,
    tracked_tasks,
)
from inventory_engine.sandbox_channels import channels_for_urls
from inventory_engine.service import Engine
from inventory_engine.simulators import ozon, wildberries, yandex_market

pytestmark = pytest.mark.integration


class SimClock:
    """The simulators' wall clock: real time shifted by ``offset`` (tests move it by hand)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture(scope="module")
def module_clock() -> SimClock:
    return SimClock()


@pytest.fixture(scope="module")
def running_sims(module_clock: SimClock) -> Iterator[dict[str, str]]:
    """The three simulators, started once for the module (each test resets them)."""
    sim_clock = module_clock
    servers = {
        "wb": serve_in_thread(
            wildberries.create_app(
                wildberries.WildberriesSimConfig(
                    chrt_ids=None, wall_clock=lambda: sim_clock().timestamp()
                )
            )
        ),
        "ozon": serve_in_thread(
            ozon.create_app(ozon.OzonSimConfig(auto_products=True), now=sim_clock)
        ),
        "ym": serve_in_thread(yandex_market.create_app(wall_clock=sim_clock)),
    }
    yield {name: server.url for name, server in servers.items()}
    for server in servers.values():
        server.stop()


@pytest.fixture
def sim_clock(module_clock: SimClock) -> SimClock:
    module_clock.offset = timedelta(0)
    return module_clock


@pytest.fixture
def sims(running_sims: dict[str, str], sim_clock: SimClock) -> dict[str, str]:
    """The simulators with no orders, no faults and fresh rate limits."""
    for url in running_sims.values():
        httpx.post(f"{url}/_sim/reset").raise_for_status()
    return running_sims


def channel_settings(urls: dict[str, str]) -> list[Any]:
    """The sandbox's marketplace channels at these simulators, plus a webhook (never polled)."""
    return [
        *channels_for_urls(urls),
        WebhookSettings(
            kind="webhook", name="shop", base_url="http://127.0.0.1:9/stock", secret=SecretStr("s")
        ),
    ]


@pytest.fixture
def make_engine(real_client, sims) -> Iterator[Callable[[], Engine]]:
    """``make_engine()``: a new Engine on the same Redis and simulators (a restarted process)."""
    engines: list[Engine] = []

    def make() -> Engine:
        engine = Engine(Settings(), real_client, channels=channel_settings(sims))
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


@pytest.fixture
def engine(make_engine) -> Engine:
    return make_engine()


def sim_post(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{url}{path}", json=body)
    assert response.status_code < 300, response.text
    return response.json()


def set_faults(url: str, **faults: Any) -> None:
    httpx.put(f"{url}/_sim/faults", json=faults).raise_for_status()


def queued(engine: Engine) -> list[dict[str, Any]]:
    """The queued events, oldest first, each as its ChannelOrder dict plus ``channel``."""
    return [{"channel": entry.channel, **entry.data} for entry in engine.inbox.peek()]


def lines(event: dict[str, Any]) -> list[tuple[str, int]]:
    return [(line["item_id"], line["quantity"]) for line in event["lines"]]


# -- Wildberries ----------------------------------------------------------------------------------


def test_wildberries_new_tasks_are_queued_once_and_each_status_change_once(engine, sims):
    wb = sims["wb"]
    first = sim_post(wb, "/_sim/orders", {"chrtId": 2001})["id"]
    second = sim_post(wb, "/_sim/orders", {"chrtId": 2002})["id"]

    report = poll_once(engine, "wb")
    assert report.ok
    assert report.queued == 2
    events = queued(engine)
    assert [(e["order_id"], e["action"], lines(e)) for e in events] == [
        (str(first), "reserve", [("2001", 1)]),
        (str(second), "reserve", [("2002", 1)]),
    ]
    assert tracked_tasks(engine, "wb") == {str(first), str(second)}

    again = poll_once(engine, "wb")
    assert (again.ok, again.queued) == (True, 0)
    assert again.unchanged >= 2
    assert len(queued(engine)) == 2

    sim_post(wb, f"/_sim/orders/{first}/status", {"supplierStatus": "complete"})
    report = poll_once(engine, "wb")
    assert report.queued == 1
    event = queued(engine)[-1]
    assert (event["order_id"], event["action"], event["status"]) == (
        str(first),
        "commit",
        "complete/waiting",
    )
    assert event["needs_lines"] is True

    sim_post(wb, f"/_sim/orders/{second}/status", {"supplierStatus": "cancel"})
    report = poll_once(engine, "wb")
    assert report.queued == 1
    assert queued(engine)[-1]["action"] == "release"
    # A released task is done: its status is no longer asked for.
    assert tracked_tasks(engine, "wb") == {str(first)}

    assert poll_once(engine, "wb").queued == 0
    assert len(queued(engine)) == 4


def test_wildberries_tracking_survives_a_new_engine(make_engine, sims):
    wb = sims["wb"]
    task = sim_post(wb, "/_sim/orders", {"chrtId": 2001})["id"]
    first = make_engine()
    assert poll_once(first, "wb").queued == 1
    cursor = read_cursor(first, "wb")
    assert cursor is not None
    first.close()

    restarted = make_engine()
    sim_post(wb, f"/_sim/orders/{task}/status", {"wbStatus": "sold"})
    report = poll_once(restarted, "wb")
    assert report.cursor_in == cursor
    assert report.queued == 1  # the status change only: the task was not queued again
    assert [e["action"] for e in queued(restarted)] == ["reserve", "final"]
    assert tracked_tasks(restarted, "wb") == set()


def test_wildberries_fault_keeps_the_state_and_reports(engine, sims):
    wb = sims["wb"]
    sim_post(wb, "/_sim/orders", {"chrtId": 2001})
    assert poll_once(engine, "wb").queued == 1
    cursor = read_cursor(engine, "wb")

    sim_post(wb, "/_sim/orders", {"chrtId": 2002})
    set_faults(wb, error_rate=1)
    report = poll_once(engine, "wb")
    assert not report.ok
    assert "HTTP 50" in (report.error or "")
    assert report.queued == 0
    assert read_cursor(engine, "wb") == cursor

    set_faults(wb, rate_limit_rate=1)
    limited = poll_once(engine, "wb")
    assert not limited.ok
    assert limited.retry_after_s == 1.0  # WB's X-Ratelimit-Retry
    assert read_cursor(engine, "wb") == cursor

    set_faults(wb)
    recovered = poll_once(engine, "wb")
    assert (recovered.ok, recovered.queued) == (True, 1)
    assert len(queued(engine)) == 2


# -- Ozon -----------------------------------------------------------------------------------------


def test_ozon_postings_from_list_and_unfulfilled_are_queued_once(engine, sims):
    url = sims["ozon"]
    posting = sim_post(url, "/_sim/postings", {"products": [{"offer_id": "A", "quantity": 2}]})
    number, sku = posting["posting_number"], str(posting["products"][0]["sku"])

    report = poll_once(engine, "ozon")
    assert report.ok
    # Listed twice (status feed and unfulfilled list), queued once.
    assert (report.fetched, report.queued, report.unchanged) == (2, 1, 1)
    event = queued(engine)[0]
    assert (event["order_id"], event["action"], lines(event)) == (number, "reserve", [(sku, 2)])
    cursor = read_cursor(engine, "ozon")
    assert cursor is not None
    assert cursor.endswith("Z")

    assert poll_once(engine, "ozon").queued == 0
    # That poll may have moved the cursor on (a second passed on a busy machine).
    cursor = read_cursor(engine, "ozon")

    sim_post(url, f"/_sim/postings/{number}/status", {"status": "awaiting_deliver"})
    report = poll_once(engine, "ozon")
    assert report.queued == 1
    assert queued(engine)[-1]["action"] == "commit"
    assert report.cursor_in == cursor
    assert poll_once(engine, "ozon").queued == 0


def test_ozon_cursor_is_used_by_a_new_engine(make_engine, real_client, sims, sim_clock):
    url = sims["ozon"]
    sim_clock.offset = -timedelta(hours=1)  # the posting changed an hour ago
    posting = sim_post(url, "/_sim/postings", {"products": [{"offer_id": "A", "quantity": 1}]})
    number = posting["posting_number"]
    sim_post(url, f"/_sim/postings/{number}/status", {"status": "delivered"})

    first = make_engine()
    assert poll_once(first, "ozon").queued == 1  # the first poll reads the last 24 hours
    cursor = read_cursor(first, "ozon")
    keys = first.ledger.keys.poll("ozon")

    # Without its de-duplication, only the cursor keeps a new engine from reading it again.
    real_client.delete(keys.seen, keys.seen_at)
    restarted = make_engine()
    report = poll_once(restarted, "ozon")
    assert report.cursor_in == cursor
    assert report.queued == 0

    real_client.delete(keys.state)  # no cursor: the 24-hour window again
    assert poll_once(restarted, "ozon").queued == 1


# -- Yandex Market --------------------------------------------------------------------------------


def test_yandex_market_orders_are_queued_once_and_each_change_once(engine, sims):
    url = sims["ym"]
    order = sim_post(url, "/_sim/orders", {"items": [{"offerId": "A", "count": 3}]})
    order_id = str(order["orderId"])

    report = poll_once(engine, "ym")
    assert (report.ok, report.queued) == (True, 1)
    event = queued(engine)[0]
    assert (event["order_id"], event["action"], lines(event)) == (order_id, "reserve", [("A", 3)])
    cursor = read_cursor(engine, "ym")
    assert cursor is not None

    # YM's bound is inclusive: the newest order is listed again, and not queued again.
    again = poll_once(engine, "ym")
    assert (again.fetched, again.queued) == (1, 0)

    sim_post(url, f"/_sim/orders/{order_id}/status", {"status": "DELIVERY"})
    report = poll_once(engine, "ym")
    assert report.queued == 1
    assert queued(engine)[-1]["action"] == "commit"
    assert queued(engine)[-1]["status"] == "DELIVERY/DELIVERY_SERVICE_RECEIVED"


def test_yandex_market_fault_keeps_the_cursor(engine, sims):
    url = sims["ym"]
    sim_post(url, "/_sim/orders", {"items": [{"offerId": "A", "count": 1}]})
    assert poll_once(engine, "ym").queued == 1
    cursor = read_cursor(engine, "ym")

    sim_post(url, "/_sim/orders", {"items": [{"offerId": "B", "count": 1}]})
    set_faults(url, error_rate=1)
    report = poll_once(engine, "ym")
    assert (report.ok, report.queued) == (False, 0)
    assert read_cursor(engine, "ym") == cursor

    set_faults(url)
    assert poll_once(engine, "ym").queued == 1


# -- the loop -------------------------------------------------------------------------------------


def test_loop_polls_every_polled_channel_until_stopped(engine, sims):
    sim_post(sims["wb"], "/_sim/orders", {"chrtId": 2001})
    sim_post(sims["ym"], "/_sim/orders", {"items": [{"offerId": "A", "count": 1}]})
    stop = threading.Event()
    loop = PollerLoop(engine, stop=stop)
    assert loop.names == ["ozon", "wb", "ym"]  # the webhook channel is not polled

    loop.start()
    deadline = time.monotonic() + 5
    while len(queued(engine)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    assert loop.join(timeout=5)
    assert sorted(e["channel"] for e in queued(engine)) == ["wb", "ym"]
    assert all(loop.reports[name].ok for name in loop.names)


def test_loop_backs_off_on_a_failing_channel_and_recovers(engine, sims):
    wb = sims["wb"]
    loop = PollerLoop(engine, ["wb"])
    set_faults(wb, error_rate=1)
    delays = [loop.poll("wb") for _ in range(3)]
    assert delays == [5.0, 10.0, 20.0]
    assert loop.failures["wb"] == 3
    assert not loop.reports["wb"].ok

    set_faults(wb)
    assert loop.poll("wb") == 5.0
    assert loop.failures["wb"] == 0
