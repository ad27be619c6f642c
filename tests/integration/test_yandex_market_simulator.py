"""The Yandex Market client against the simulator over real HTTP, checked against YM's spec.

Every request the client sends and every answer the simulator gives is validated with
``tests/contract.py``; over-limit requests are sent directly and their exact answers and the
simulator's violation counters asserted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from inventory_engine.channels.base import (
    ChannelRateLimitedError,
    ChannelRejectedError,
    StockUpdate,
)
from inventory_engine.channels.yandex_market import YandexMarketClient
from inventory_engine.channels.yandex_market_notifications import answer_body, parse_notification
from inventory_engine.domain.models import OrderAction
from inventory_engine.http_server import RunningServer, serve_in_thread
from inventory_engine.simulators.base import Faults
from inventory_engine.simulators.yandex_market import (
    SANDBOX_API_KEY,
    SANDBOX_BUSINESS_ID,
    SANDBOX_CAMPAIGN_ID,
    SANDBOX_WAREHOUSE_ID,
    YandexMarketSimConfig,
    create_app,
)
from tests.contract import validate_request, validate_response

pytestmark = pytest.mark.integration

SPEC = "yandex_market"
STOCKS = f"/v2/campaigns/{SANDBOX_CAMPAIGN_ID}/offers/stocks"
ORDERS = f"/v1/businesses/{SANDBOX_BUSINESS_ID}/orders"
HEADERS = {"Api-Key": SANDBOX_API_KEY}


class Clock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Sim:
    """The shared simulator, a recording client for it, and helpers."""

    def __init__(self, url: str, clock: Clock, admin: httpx.Client, stock_api: str = "v2") -> None:
        self.url = url
        self.clock = clock
        self._admin = admin
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []
        self.http = httpx.Client(base_url=url, event_hooks={"response": [self._record]})
        self.client = YandexMarketClient(
            self.http,
            name="ym",
            api_key=SecretStr(SANDBOX_API_KEY),
            campaign_id=SANDBOX_CAMPAIGN_ID,
            business_id=SANDBOX_BUSINESS_ID,
            stock_api="v3" if stock_api == "v3" else "v2",
            warehouse_id=SANDBOX_WAREHOUSE_ID,
        )

    def _record(self, response: httpx.Response) -> None:
        response.read()
        self.exchanges.append((response.request, response))

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._admin.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A direct marketplace call; its answer is checked against the spec."""
        kwargs.setdefault("headers", HEADERS)
        response = self._admin.request(method, path, **kwargs)
        validate_response(SPEC, response.request, response)
        return response

    def violations(self) -> dict[str, int]:
        return self.admin("GET", "/_sim/state")["violations"]

    def check_contract(self) -> None:
        for request, response in self.exchanges:
            validate_request(SPEC, request)
            validate_response(SPEC, request, response)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Starlette, RunningServer, Clock]]:
    """One simulator for the module; each test gives it its own config and a clean state."""
    clock = Clock()
    app = create_app(clock=clock)
    running = serve_in_thread(app)
    yield app, running, clock
    running.stop()


@pytest.fixture
def start(server) -> Iterator[Callable[..., Sim]]:
    app, running, clock = server
    admin = httpx.Client(base_url=running.url)
    made: list[Sim] = []

    def make(*, stock_api: str = "v2", **config: Any) -> Sim:
        market = app.state.market
        market.config = YandexMarketSimConfig(**config)
        market.reset()
        market.faults.configure(Faults())
        sim = Sim(running.url, clock, admin, stock_api)
        made.append(sim)
        return sim

    yield make
    admin.close()
    for sim in made:
        sim.http.close()
        sim.check_contract()


def updates(*pairs: tuple[str, int]) -> list[StockUpdate]:
    return [StockUpdate(sku, sku, quantity) for sku, quantity in pairs]


def body(*pairs: tuple[str, int]) -> dict[str, Any]:
    return {"skus": [{"sku": s, "items": [{"count": c}]} for s, c in pairs]}


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    data = response.json()
    assert data["status"] == "ERROR"
    (error,) = data["errors"]
    return response.status_code, error["code"], error["message"]


# -- stock ---------------------------------------------------------------------------------------


def test_simulator_push_then_read_back(start):
    sim = start()
    result = sim.client.push_stock(updates(("A-1", 5), ("B-1", 0)))
    assert {r.outcome.value for r in result.items} == {"accepted"}
    stock = sim.client.read_stock(["A-1", "B-1", "NEVER"])
    assert {k: v.sellable for k, v in stock.items()} == {"A-1": 5, "B-1": 0}
    received = sim.admin("GET", "/_sim/received")["received"]
    assert [(r["warehouse"], r["item_id"], r["value"]) for r in received] == [
        (str(SANDBOX_CAMPAIGN_ID), "A-1", 5),
        (str(SANDBOX_CAMPAIGN_ID), "B-1", 0),
    ]
    assert sim.violations() == {}


def test_simulator_order_lowers_available_and_cancel_before_packing_restores(start):
    sim = start()
    sim.client.push_stock(updates(("A-1", 5)))
    order = sim.admin("POST", "/_sim/orders", json={"items": [{"offerId": "A-1", "count": 2}]})
    stock = sim.client.read_stock(["A-1"])["A-1"]
    assert (stock.sellable, stock.present, stock.reserved) == (3, 5, 2)
    sim.admin("POST", f"/_sim/orders/{order['orderId']}/status", json={"status": "CANCELLED"})
    assert sim.client.read_stock(["A-1"])["A-1"].sellable == 5


def test_simulator_packed_cancel_waits_for_the_next_push(start):
    sim = start()
    sim.client.push_stock(updates(("A-1", 5)))
    order = sim.admin("POST", "/_sim/orders", json={"items": [{"offerId": "A-1", "count": 2}]})
    path = f"/_sim/orders/{order['orderId']}/status"
    sim.admin("POST", path, json={"status": "PROCESSING", "substatus": "READY_TO_SHIP"})
    sim.admin("POST", path, json={"status": "CANCELLED", "substatus": "SHOP_FAILED"})
    assert sim.client.read_stock(["A-1"])["A-1"].sellable == 3
    sim.client.push_stock(updates(("A-1", 5)))
    assert sim.client.read_stock(["A-1"])["A-1"].sellable == 5


def test_simulator_push_after_an_order_is_taken_as_is(start):
    sim = start()
    sim.client.push_stock(updates(("A-1", 5)))
    sim.admin("POST", "/_sim/orders", json={"items": [{"offerId": "A-1", "count": 2}]})
    sim.client.push_stock(updates(("A-1", 3)))  # the engine already excluded the order
    assert sim.client.read_stock(["A-1"])["A-1"].sellable == 3


def test_simulator_read_back_pages_without_offer_ids(start):
    sim = start()
    sim.client.push_stock(updates(*[(f"S{i:02}", i) for i in range(5)]))
    first = sim.api("POST", STOCKS, params={"limit": 3}, json={})
    token = first.json()["result"]["paging"]["nextPageToken"]
    second = sim.api("POST", STOCKS, params={"limit": 3, "page_token": token}, json={})
    offers = [
        o["offerId"]
        for page in (first, second)
        for o in page.json()["result"]["warehouses"][0]["offers"]
    ]
    assert offers == ["S00", "S01", "S02", "S03", "S04"]
    assert "paging" not in second.json()["result"]


# -- orders --------------------------------------------------------------------------------------


def test_simulator_orders_feed_and_get_order(start):
    sim = start()
    created = sim.admin(
        "POST",
        "/_sim/orders",
        json={"items": [{"offerId": "A-1", "count": 1}, {"offerId": "B-1", "count": 2}]},
    )
    order_id = str(created["orderId"])
    page = sim.client.list_orders(None)
    assert [(o.order_id, o.action) for o in page.orders] == [(order_id, OrderAction.RESERVE)]
    assert [(line.item_id, line.quantity) for line in page.orders[0].lines] == [
        ("A-1", 1),
        ("B-1", 2),
    ]
    sim.admin("POST", f"/_sim/orders/{order_id}/status", json={"status": "DELIVERY"})
    again = sim.client.list_orders(page.cursor)
    assert [(o.order_id, o.action) for o in again.orders] == [(order_id, OrderAction.COMMIT)]
    found = sim.client.get_order(order_id)
    assert found is not None
    assert (found.status, found.action) == (
        "DELIVERY/DELIVERY_SERVICE_RECEIVED",
        OrderAction.COMMIT,
    )
    assert sim.client.get_order("1") is None


def test_simulator_orders_feed_follows_pages(start):
    sim = start()
    for _ in range(55):
        sim.admin("POST", "/_sim/orders", json={"items": [{"offerId": "A-1", "count": 1}]})
    page = sim.client.list_orders(None)
    assert len({o.order_id for o in page.orders}) == 55
    assert sum(1 for r, _ in sim.exchanges if r.url.path == ORDERS) == 2


def test_simulator_orders_other_campaign_is_not_listed(start):
    sim = start()
    sim.admin(
        "POST", "/_sim/orders", json={"campaignId": 99, "items": [{"offerId": "A-1", "count": 1}]}
    )
    assert sim.client.list_orders(None).orders == ()


def test_simulator_orders_period_over_30_days_is_refused(start):
    sim = start()
    now = datetime.now(UTC)
    dates = {
        "updateDateFrom": (now - timedelta(days=31)).isoformat(),
        "updateDateTo": now.isoformat(),
    }
    response = sim.api("POST", ORDERS, json={"dates": dates})
    assert error_of(response) == (400, "BAD_REQUEST", "Too long time period. Maximum is '30' days")
    assert sim.violations() == {"period": 1}


# -- limits and error shapes ---------------------------------------------------------------------


def test_simulator_more_than_2000_skus_is_400_batch_size(start):
    sim = start()
    response = sim.api("PUT", STOCKS, json=body(*[(f"S{i}", 1) for i in range(2001)]))
    assert error_of(response) == (
        400,
        "BAD_REQUEST",
        "Value / length of field (skus) must be between 1 and 2000",
    )
    assert sim.violations() == {"batch_size": 1}
    assert sim.admin("GET", "/_sim/state")["stock"] == []


@pytest.mark.parametrize(
    ("payload", "violation", "message"),
    [
        (body(("A", 1), ("A", 2)), "duplicate_sku", "Duplicate sku in request: 'A'"),
        (
            {"skus": [{"sku": "A", "items": [{"count": 1}, {"count": 2}]}]},
            "bad_request",
            "Value / length of field (items) must be between 1 and 1",
        ),
        (
            body(("A", 2_000_000_001)),
            "count_range",
            "Value of field (count) must be between 0 and 2000000000",
        ),
        ({"skus": []}, "bad_request", "Collection of field must not be empty: skus"),
    ],
    ids=["duplicate", "two-items", "count", "empty"],
)
def test_simulator_refuses_bad_stock_batches_whole(start, payload, violation, message):
    sim = start()
    response = sim.api("PUT", STOCKS, json=payload)
    assert error_of(response) == (400, "BAD_REQUEST", message)
    assert sim.violations() == {violation: 1}
    assert sim.admin("GET", "/_sim/state")["stock"] == []


def test_simulator_unknown_offer_in_seeded_catalog_is_400(start):
    sim = start(offers=frozenset({"A-1"}))
    with pytest.raises(ChannelRejectedError) as caught:
        sim.client.push_stock(updates(("A-1", 1), ("B-1", 1)))
    assert caught.value.status_code == 400
    assert "Offer not found in the catalog: 'B-1'" in str(caught.value)
    assert sim.violations() == {"unknown_sku": 1}
    sim.admin("POST", "/_sim/offers", json={"offerIds": ["B-1"]})
    sim.client.push_stock(updates(("A-1", 1), ("B-1", 1)))
    assert len(sim.admin("GET", "/_sim/state")["stock"]) == 2


@pytest.mark.parametrize(
    ("headers", "message"),
    [({"Api-Key": "wrong"}, "Api-Key token is invalid"), ({}, "Credentials are not specified")],
    ids=["wrong", "missing"],
)
def test_simulator_bad_api_key_is_401(start, headers, message):
    sim = start()
    response = sim.api("PUT", STOCKS, json=body(("A", 1)), headers=headers)
    assert error_of(response) == (401, "UNAUTHORIZED", message)
    assert sim.violations() == {"auth": 1}


def test_simulator_unknown_campaign_is_404(start):
    sim = start()
    response = sim.api("PUT", "/v2/campaigns/1/offers/stocks", json=body(("A", 1)))
    assert error_of(response) == (404, "NOT_FOUND", "Campaign not found: '1'")


def test_simulator_sku_rate_limit_is_420_with_resource_headers(start):
    sim = start(skus_per_window=10)
    sim.client.push_stock(updates(*[(f"S{i}", 1) for i in range(6)]))
    response = sim.api("PUT", STOCKS, json=body(*[(f"T{i}", 1) for i in range(6)]))
    status, code, message = error_of(response)
    assert (status, code, message) == (420, "LIMIT_EXCEEDED", "Hit rate limit of 10 skus per 60 s")
    assert response.headers["X-RateLimit-Resource-Limit"] == "10"
    assert response.headers["X-RateLimit-Resource-Remaining"] == "4"
    until = parsedate_to_datetime(response.headers["X-RateLimit-Resource-Until"])
    assert 0 < (until - datetime.now(UTC)).total_seconds() <= 13
    with pytest.raises(ChannelRateLimitedError) as caught:
        sim.client.push_stock(updates(*[(f"T{i}", 1) for i in range(6)]))
    assert 1 <= caught.value.retry_after_s <= 13
    assert sim.violations() == {"rate_limit": 2}
    sim.clock.now += 60  # the window moves on: no sleeping
    sim.client.push_stock(updates(*[(f"T{i}", 1) for i in range(6)]))
    assert sim.violations() == {"rate_limit": 2}


def test_simulator_parallel_requests_over_the_limit_get_420(start):
    sim = start(max_parallel=1)
    sim.admin("PUT", "/_sim/faults", json={"latency_ms": [300, 300]})
    answers: list[httpx.Response] = []

    def push(sku: str) -> None:
        answers.append(httpx.put(sim.url + STOCKS, json=body((sku, 1)), headers=HEADERS))

    threads = [threading.Thread(target=push, args=(f"P{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200, 420]
    limited = next(a for a in answers if a.status_code == 420)
    validate_response(SPEC, limited.request, limited)
    assert error_of(limited)[2] == (
        f"Hit rate limit of 1 parallel requests for campaignId {SANDBOX_CAMPAIGN_ID}"
    )
    assert sim.violations() == {"rate_limit": 1}


def test_simulator_injected_rate_limit_maps_to_rate_limited_without_violation(start):
    sim = start()
    sim.admin("PUT", "/_sim/faults", json={"rate_limit_rate": 1.0})
    with pytest.raises(ChannelRateLimitedError):
        sim.client.push_stock(updates(("A-1", 1)))
    assert sim.violations() == {}


def test_simulator_reset_route_clears_orders_stock_and_faults(start):
    sim = start()
    sim.client.push_stock(updates(("A-1", 5)))
    sim.admin("POST", "/_sim/orders", json={"items": [{"offerId": "A-1", "count": 2}]})
    sim.admin("PUT", "/_sim/faults", json={"error_rate": 1.0})

    assert sim.admin("POST", "/_sim/reset") == {"reset": True}

    assert sim.admin("GET", "/_sim/orders") == {"orders": []}
    assert sim.admin("GET", "/_sim/state")["stock"] == []
    assert sim.client.read_stock(["A-1"]) == {}
    created = sim.admin("POST", "/_sim/orders", json={"items": [{"offerId": "A-1", "count": 1}]})
    assert created["orderId"] == 51_000_001  # the order ids start over


# -- notifications -------------------------------------------------------------------------------


def test_simulator_sends_notifications_the_parser_reads(start):
    received: list[dict[str, Any]] = []

    async def notification(request: Request) -> Response:
        received.append(await request.json())
        return JSONResponse(answer_body())

    receiver = serve_in_thread(
        Starlette(routes=[Route("/notification", notification, methods=["POST"])])
    )
    try:
        sim = start(notify_url=receiver.url + "/notification")
        sim.admin("POST", "/_sim/notify-ping")
        order = sim.admin("POST", "/_sim/orders", json={"items": [{"offerId": "A-1", "count": 2}]})
        sim.admin("POST", f"/_sim/orders/{order['orderId']}/status", json={"status": "CANCELLED"})
        deadline = time.monotonic() + 5
        while len(received) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        receiver.stop()
    assert [p["notificationType"] for p in received] == [
        "PING",
        "ORDER_CREATED",
        "ORDER_STATUS_UPDATED",
        "ORDER_CANCELLED",
    ]
    parsed = [parse_notification(p, campaign_id=SANDBOX_CAMPAIGN_ID) for p in received]
    assert parsed[0].is_ping
    actions = [(n.orders[0].action, n.orders[0].lines) for n in parsed[1:]]
    assert [a for a, _ in actions] == [
        OrderAction.RESERVE,
        OrderAction.RELEASE,
        OrderAction.RELEASE,
    ]
    assert actions[0][1][0].item_id == "A-1"
    assert sim.admin("GET", "/_sim/state")["counters"]["notifications_sent"] == 4
    statuses = [n["status"] for n in sim.admin("GET", "/_sim/notifications")["notifications"]]
    assert statuses == [200] * 4
