"""OzonClient against the Ozon simulator over real HTTP on loopback.

Every request and every answer that crosses the wire is checked against Ozon's official spec
(tests/contract.py), except answers whose status the spec does not declare (Ozon's 429 is
documented only in prose): their exact body is asserted instead. The simulator's limits are
hit on purpose with plain httpx and must answer in Ozon's shape and count the violation.
Time windows run on fake clocks, so nothing here sleeps for 30 s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from inventory_engine.channels.base import (
    ChannelLine,
    ChannelRateLimitedError,
    ChannelRejectedError,
    ChannelUnavailableError,
    ItemOutcome,
    PayloadError,
    StockUpdate,
)
from inventory_engine.channels.ozon import OzonClient
from inventory_engine.channels.ozon_notifications import error_answer, parse_notification
from inventory_engine.domain.models import OrderAction
from inventory_engine.http_server import RunningServer, serve_in_thread
from inventory_engine.simulators.ozon import (
    SANDBOX_API_KEY,
    SANDBOX_CLIENT_ID,
    SANDBOX_WAREHOUSE_ID,
    OzonSimConfig,
    SimProduct,
    create_app,
)
from tests.contract import specs_dir, validate_request, validate_response

pytestmark = pytest.mark.integration

WAREHOUSE = SANDBOX_WAREHOUSE_ID
AUTH = {"Client-Id": SANDBOX_CLIENT_ID, "Api-Key": SANDBOX_API_KEY}
PRODUCTS = (SimProduct("PH11042", 313455276, 140048123), SimProduct("X-1", 313455277, 140048124))
START = datetime(2025, 8, 25, 10, 0, 0, tzinfo=UTC)
RATE_LIMITED = {
    "code": 8,
    "message": "You have reached request rate limit per second",
    "details": [],
}

_SPEC = json.loads((specs_dir() / "ozon-seller-subset.json").read_text(encoding="utf-8"))


def declared(path: str, status: int) -> bool:
    responses = _SPEC["paths"].get(path, {}).get("post", {}).get("responses", {})
    return str(status) in responses or "default" in responses


class Clock:
    """A hand-moved clock: monotonic seconds and an aware UTC wall time moving together."""

    def __init__(self) -> None:
        self.seconds = 1_000.0

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return START + timedelta(seconds=self.seconds - 1_000.0)

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


class Recorder:
    """Response event hook keeping every (request, response) pair for the contract check."""

    def __init__(self) -> None:
        self.pairs: list[tuple[httpx.Request, httpx.Response]] = []

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        self.pairs.append((response.request, response))

    def check(self, *, requests: bool) -> None:
        for request, response in self.pairs:
            path = request.url.path
            if path.startswith("/_sim"):
                continue
            if requests:
                validate_request("ozon", request)
            if declared(path, response.status_code):
                validate_response("ozon", request, response)
            else:
                body = response.json()
                assert set(body) == {"code", "message", "details"}, body


@dataclass
class Sim:
    url: str
    simulator: Any
    clock: Clock
    client: OzonClient
    raw: httpx.Client
    """Plain httpx for deliberate limit-breaking; its answers are checked, its requests not."""
    calls: Recorder
    """What the client sent and got."""

    def admin(self, path: str, payload: dict[str, Any] | None = None) -> Any:
        response = self.raw.post(path, json=payload or {})
        assert response.status_code == 200, response.text
        return response.json()

    def state(self) -> dict[str, Any]:
        return self.raw.get("/_sim/state").json()


@pytest.fixture(scope="module")
def transport() -> Iterator[httpx.HTTPTransport]:
    """One connection pool for every client here (a Client of its own would build an SSL
    context each time, ~50 ms)."""
    shared = httpx.HTTPTransport()
    yield shared
    shared.close()


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[Any, tuple[RunningServer, Any, Clock]]]:
    """Simulators by config, started once per module and reset before each reuse."""
    running: dict[Any, tuple[RunningServer, Any, Clock]] = {}
    yield running
    for server, _, _ in running.values():
        server.server.should_exit = True  # all at once, then wait: each takes ~0.1 s to stop
    for server, _, _ in running.values():
        server.stop()


@pytest.fixture
def start_sim(servers, transport) -> Iterator[Callable[..., Sim]]:
    """``start_sim(**config)``: a clean simulator on loopback and a recorded client for it."""
    recorders: list[tuple[Recorder, Recorder]] = []
    clients: list[httpx.Client] = []

    def start(*, api_key: str = SANDBOX_API_KEY, read_api: str = "v2", **config: Any) -> Sim:
        config.setdefault("products", PRODUCTS)
        key = tuple(sorted(config.items()))
        if key not in servers:
            clock = Clock()
            app = create_app(OzonSimConfig(**config), clock=clock.monotonic, now=clock.now)
            servers[key] = (serve_in_thread(app), app.state.simulator, clock)
        server, simulator, clock = servers[key]
        url = server.url
        clock.seconds = 1_000.0
        client_hook, raw_hook = Recorder(), Recorder()
        http = httpx.Client(
            base_url=url, transport=transport, event_hooks={"response": [client_hook]}
        )
        raw = httpx.Client(base_url=url, transport=transport, event_hooks={"response": [raw_hook]})
        clients.extend([http, raw])
        recorders.append((client_hook, raw_hook))
        raw.post("/_sim/reset").raise_for_status()
        client = OzonClient(
            http,
            name="ozon",
            client_id=SANDBOX_CLIENT_ID,
            api_key=SecretStr(api_key),
            warehouse_id=WAREHOUSE,
            stock_read_api="v1" if read_api == "v1" else "v2",
            now=clock.now,
        )
        return Sim(url, simulator, clock, client, raw, client_hook)

    yield start
    for client in clients:
        client.close()
    for client_hook, raw_hook in recorders:
        client_hook.check(requests=True)
        raw_hook.check(requests=False)


def push_raw(sim: Sim, stocks: list[dict[str, Any]], headers: dict[str, str] = AUTH):
    return sim.raw.post("/v2/products/stocks", json={"stocks": stocks}, headers=headers)


def item(offer_id: str, stock: int, warehouse: int = WAREHOUSE) -> dict[str, Any]:
    return {"offer_id": offer_id, "stock": stock, "warehouse_id": warehouse}


# -- stock -------------------------------------------------------------------------------------


def test_ozon_simulator_push_then_read_back(start_sim):
    sim = start_sim()
    result = sim.client.push_stock([StockUpdate("A", "PH11042", 12), StockUpdate("B", "X-1", 0)])
    assert [i.outcome for i in result.items] == [ItemOutcome.ACCEPTED] * 2
    stock = sim.client.read_stock(["PH11042", "X-1", "UNKNOWN"])
    assert {k: (v.sellable, v.present, v.reserved) for k, v in stock.items()} == {
        "PH11042": (12, 12, 0),
        "X-1": (0, 0, 0),
    }
    state = sim.state()
    assert state["violations"] == {}
    assert {(s["item_id"], s["value"]) for s in state["stock"]} == {("PH11042", 12), ("X-1", 0)}
    received = sim.raw.get("/_sim/received").json()["received"]
    assert [(r["warehouse"], r["item_id"], r["value"]) for r in received] == [
        (str(WAREHOUSE), "PH11042", 12),
        (str(WAREHOUSE), "X-1", 0),
    ]


@pytest.mark.parametrize(
    ("read_api", "paths"),
    [
        ("v1", ["/v4/product/info/stocks", "/v1/product/info/stocks-by-warehouse/fbs"]),
        # v2: one call by offer id; v4 only for the offer without any row (UNKNOWN).
        ("v2", ["/v2/product/info/stocks-by-warehouse/fbs", "/v4/product/info/stocks"]),
    ],
)
def test_ozon_client_reads_back_the_sellable_quantity_by_either_method(start_sim, read_api, paths):
    sim = start_sim(read_api=read_api)
    sim.client.push_stock([StockUpdate("A", "PH11042", 10), StockUpdate("B", "X-1", 0)])
    sim.admin("/_sim/postings", {"products": [{"offer_id": "PH11042", "quantity": 3}]})
    sim.calls.pairs.clear()
    stock = sim.client.read_stock(["PH11042", "X-1", "UNKNOWN"])
    # Ozon holds 3 for its posting: the push-comparable figure is present - reserved = 7.
    assert {k: (v.sellable, v.present, v.reserved) for k, v in stock.items()} == {
        "PH11042": (7, 10, 3),
        "X-1": (0, 0, 0),
    }
    assert [request.url.path for request, _ in sim.calls.pairs] == paths


def test_ozon_simulator_v2_stocks_by_warehouse_pages_by_cursor(start_sim):
    sim = start_sim()
    sim.client.push_stock([StockUpdate("A", "PH11042", 5), StockUpdate("B", "X-1", 2)])
    path = "/v2/product/info/stocks-by-warehouse/fbs"
    ask = {"offer_id": ["PH11042", "X-1"], "limit": 1}
    first = sim.raw.post(path, json=ask, headers=AUTH).json()
    assert first["has_next"] is True
    assert len(first["products"]) == 1
    second = sim.raw.post(path, json=ask | {"cursor": first["cursor"]}, headers=AUTH).json()
    assert second["has_next"] is False
    rows = first["products"] + second["products"]
    assert {
        (r["offer_id"], r["warehouse_id"], r["present"], r["reserved"], r["free_stock"])
        for r in rows
    } == {
        ("PH11042", WAREHOUSE, 5, 0, 5),
        ("X-1", WAREHOUSE, 2, 0, 2),
    }
    by_sku = sim.raw.post(path, json={"sku": ["140048124"], "limit": 10}, headers=AUTH).json()
    assert [r["offer_id"] for r in by_sku["products"]] == ["X-1"]


@pytest.mark.parametrize(
    "payload",
    [
        {"offer_id": ["PH11042"]},
        {"offer_id": ["PH11042"], "limit": 0},
        {"limit": 10},
        {"sku": ["x"], "limit": 1},
    ],
)
def test_ozon_simulator_v2_stocks_by_warehouse_refuses_bad_requests(start_sim, payload):
    sim = start_sim()
    response = sim.raw.post("/v2/product/info/stocks-by-warehouse/fbs", json=payload, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["code"] == 3


def test_ozon_simulator_item_window_throttles_until_30_s_passed(start_sim):
    sim = start_sim()
    update = StockUpdate("A", "PH11042", 5)
    assert sim.client.push_stock([update]).items[0].outcome is ItemOutcome.ACCEPTED
    sim.clock.advance(29.9)
    (throttled,) = sim.client.push_stock([StockUpdate("A", "PH11042", 4)]).items
    assert (throttled.outcome, throttled.code) == (ItemOutcome.THROTTLED, "TOO_MANY_REQUESTS")
    assert throttled.retry_after_s == 30
    assert sim.state()["violations"] == {"item_frequency": 1}
    sim.clock.advance(0.1)
    assert sim.client.push_stock([update]).items[0].outcome is ItemOutcome.ACCEPTED
    # Another warehouse is another pair; the window is per (offer, warehouse).
    answer = push_raw(sim, [item("X-1", 1), item("X-1", 2)]).json()["result"]
    assert [r["updated"] for r in answer] == [True, False]
    assert answer[1]["errors"][0]["code"] == "TOO_MANY_REQUESTS"


def test_ozon_simulator_item_window_is_configurable(start_sim):
    sim = start_sim(item_window_s=1.0)
    sim.client.push_stock([StockUpdate("A", "PH11042", 5)])
    sim.clock.advance(1.0)
    assert sim.client.push_stock([StockUpdate("A", "PH11042", 6)]).items[0].outcome is (
        ItemOutcome.ACCEPTED
    )


def test_ozon_simulator_refuses_more_than_100_items(start_sim):
    sim = start_sim()
    response = push_raw(sim, [item("PH11042", i) for i in range(101)])
    assert response.status_code == 400
    assert response.json() == {
        "code": 3,
        "message": "stocks: value must contain at most 100 item(s)",
        "details": [],
    }
    assert sim.state()["violations"] == {"batch_size": 1}
    assert sim.state()["stock"] == []


def test_ozon_simulator_stock_rate_limit_80_per_minute(start_sim):
    sim = start_sim(stock_requests_per_minute=3)
    for n in range(3):
        assert push_raw(sim, [item(f"O{n}", 1)]).status_code == 200
    response = push_raw(sim, [item("PH11042", 1)])
    assert response.status_code == 429
    assert response.json() == RATE_LIMITED
    with pytest.raises(ChannelRateLimitedError) as caught:
        sim.client.push_stock([StockUpdate("A", "PH11042", 1)])
    assert caught.value.retry_after_s == 1.0
    assert sim.state()["violations"] == {"rate_limit": 2}
    # Other methods have their own (per second) limit.
    assert sim.client.read_stock(["PH11042"])["PH11042"].sellable == 0


def test_ozon_simulator_global_rate_limit_per_second(start_sim):
    sim = start_sim(requests_per_second=2)
    statuses = [
        sim.raw.post("/v3/posting/fbs/get", json={"posting_number": "x"}, headers=AUTH).status_code
        for _ in range(3)
    ]
    assert statuses == [404, 404, 429]
    assert sim.state()["violations"] == {"rate_limit": 1}


def test_ozon_simulator_rate_limits_refill_on_the_injected_clock(start_sim):
    sim = start_sim(stock_requests_per_minute=2, requests_per_second=2)
    get = {"posting_number": "x"}
    assert [push_raw(sim, [item(f"O{n}", 1)]).status_code for n in range(3)] == [200, 200, 429]
    assert sim.raw.post("/v3/posting/fbs/get", json=get, headers=AUTH).status_code == 429
    sim.clock.advance(0.5)  # one request per 500 ms again, but the stock limit is per minute
    assert sim.raw.post("/v3/posting/fbs/get", json=get, headers=AUTH).status_code == 404
    assert push_raw(sim, [item("O9", 1)]).status_code == 429
    sim.clock.advance(30)  # 2 per minute: one stock request per 30 s
    assert push_raw(sim, [item("O9", 1)]).status_code == 200
    assert sim.state()["violations"] == {"rate_limit": 3}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Client-Id": SANDBOX_CLIENT_ID},
        {"Client-Id": "other", "Api-Key": SANDBOX_API_KEY},
        {"Client-Id": SANDBOX_CLIENT_ID, "Api-Key": "wrong"},
    ],
)
def test_ozon_simulator_refuses_bad_credentials(start_sim, headers):
    sim = start_sim()
    response = push_raw(sim, [item("PH11042", 1)], headers=headers)
    assert response.status_code == 403
    assert response.json() == {
        "code": 7,
        "message": "Invalid Api-Key, please contact support",
        "details": [],
    }
    assert sim.state()["violations"] == {"auth": 1}


def test_ozon_client_with_a_wrong_key_is_rejected_without_leaking_it(start_sim):
    sim = start_sim(api_key="not-the-key-xyz")
    with pytest.raises(ChannelRejectedError) as caught:
        sim.client.push_stock([StockUpdate("A", "PH11042", 1)])
    assert caught.value.status_code == 403
    assert "not-the-key-xyz" not in str(caught.value)


def test_ozon_simulator_item_errors_inside_http_200(start_sim):
    sim = start_sim()
    response = push_raw(
        sim,
        [
            item("PH11042", 1_000_000),
            item("NOPE", 1),
            item("X-1", 1, warehouse=1),
            {"product_id": 313455277, "stock": 7, "warehouse_id": WAREHOUSE},
        ],
    )
    assert response.status_code == 200
    rows = response.json()["result"]
    assert [(r["updated"], [e["code"] for e in r["errors"]]) for r in rows] == [
        (False, ["STOCK_TOO_BIG"]),
        (False, ["offer_id_not_found"]),
        (False, ["WAREHOUSE_NOT_FOUND"]),
        (True, []),
    ]
    assert rows[3]["offer_id"] == "X-1"  # found by product_id
    assert sim.state()["violations"] == {}


def test_ozon_client_rejects_unknown_offers_from_the_simulator(start_sim):
    sim = start_sim()
    (unknown,) = sim.client.push_stock([StockUpdate("Z", "NOT-ON-OZON", 3)]).items
    assert (unknown.outcome, unknown.code) == (ItemOutcome.REJECTED, "offer_id_not_found")


def test_ozon_simulator_auto_products_and_admin_catalog(start_sim):
    sim = start_sim(products=(), auto_products=True)
    assert sim.client.push_stock([StockUpdate("A", "NEW-1", 3)]).items[0].outcome is (
        ItemOutcome.ACCEPTED
    )
    added = sim.admin(
        "/_sim/products", {"products": [{"offer_id": "P2", "sku": 77, "product_id": 5}]}
    )
    assert {"offer_id": "P2", "product_id": 5, "sku": 77} in added["products"]
    assert [p["offer_id"] for p in sim.raw.get("/_sim/products").json()["products"]] == [
        "NEW-1",
        "P2",
    ]


class ListedProducts:
    """The seller's record of its Ozon products, edited by the test (the sandbox passes the
    engine's catalog)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def ozon_product(
        self, *, offer_id: str | None = None, sku: int | None = None
    ) -> dict[str, Any] | None:
        return next(
            (r for r in self.rows if r["offer_id"] == offer_id or (sku and r["sku"] == sku)),
            None,
        )


def test_ozon_simulator_postings_use_the_catalog_ids(start_sim):
    """Issue 12: with made-up SKUs every sandbox posting was an unknown SKU to the engine. The
    catalog here arrives after the product was registered (made-up ids), and is read again when
    a posting is made."""
    listed = ListedProducts()
    sim = start_sim(products=(), auto_products=True, catalog=listed)
    listed.rows.append({"offer_id": "EARLY", "product_id": 9001, "sku": 1470001})
    sim.client.push_stock([StockUpdate("A", "EARLY", 5), StockUpdate("B", "LATE", 5)])
    products = {p["offer_id"]: p for p in sim.raw.get("/_sim/products").json()["products"]}
    assert products["EARLY"] == {"offer_id": "EARLY", "product_id": 9001, "sku": 1470001}
    made_up = products["LATE"]

    listed.rows.append({"offer_id": "LATE", "product_id": None, "sku": 1470002})
    posting = sim.admin("/_sim/postings", {"products": [{"offer_id": "LATE", "quantity": 1}]})
    assert [(p["offer_id"], p["sku"]) for p in posting["products"]] == [("LATE", 1470002)]
    by_sku = sim.admin("/_sim/postings", {"products": [{"sku": 1470001, "quantity": 2}]})
    assert [(p["offer_id"], p["sku"]) for p in by_sku["products"]] == [("EARLY", 1470001)]
    # The product keeps its product_id and pushed stock; its old SKU names nothing any more.
    late = sim.client.read_stock(["LATE"])["LATE"]
    assert (late.present, late.reserved, late.sellable) == (5, 1, 4)
    stale = sim.raw.post(
        "/v1/product/info/stocks-by-warehouse/fbs",
        json={"sku": [str(made_up["sku"])]},
        headers=AUTH,
    )
    assert stale.json() == {"result": []}
    products = {p["offer_id"]: p for p in sim.raw.get("/_sim/products").json()["products"]}
    assert products["LATE"] == made_up | {"sku": 1470002}


def test_ozon_simulator_faults_answer_in_ozon_shape(start_sim):
    sim = start_sim()
    sim.raw.put("/_sim/faults", json={"error_rate": 1.0}).raise_for_status()
    with pytest.raises(ChannelUnavailableError):
        sim.client.push_stock([StockUpdate("A", "PH11042", 1)])
    sim.raw.put("/_sim/faults", json={"rate_limit_rate": 1.0}).raise_for_status()
    response = push_raw(sim, [item("PH11042", 1)])
    assert (response.status_code, response.json()) == (429, RATE_LIMITED)
    sim.raw.put("/_sim/faults", json={"item_error_rate": 1.0}).raise_for_status()
    (retry,) = sim.client.push_stock([StockUpdate("A", "PH11042", 1)]).items
    assert (retry.outcome, retry.code) == (ItemOutcome.RETRY, "INTERNAL_ERROR")


def test_ozon_simulator_v4_stocks_pages_with_a_cursor(start_sim):
    sim = start_sim()
    request = {"cursor": "", "filter": {"visibility": "ALL"}, "limit": 1}
    first = sim.raw.post("/v4/product/info/stocks", json=request, headers=AUTH).json()
    assert (first["cursor"], first["total"], first["items"][0]["offer_id"]) == ("1", 2, "PH11042")
    second = sim.raw.post(
        "/v4/product/info/stocks", json=request | {"cursor": "1"}, headers=AUTH
    ).json()
    assert (second["cursor"], second["items"][0]["offer_id"]) == ("", "X-1")
    too_big = sim.raw.post("/v4/product/info/stocks", json=request | {"limit": 1001}, headers=AUTH)
    assert too_big.status_code == 400


# -- postings ----------------------------------------------------------------------------------


def test_ozon_simulator_posting_reserves_like_ozon(start_sim):
    sim = start_sim()
    sim.client.push_stock([StockUpdate("A", "PH11042", 10)])
    posting = sim.admin("/_sim/postings", {"products": [{"offer_id": "PH11042", "quantity": 3}]})
    number = posting["posting_number"]
    read = sim.client.read_stock(["PH11042"])["PH11042"]
    assert (read.present, read.reserved, read.sellable) == (10, 3, 7)
    # The engine pushes what is left for sale; Ozon adds its reservation: present = 7 + 3.
    sim.clock.advance(30)
    sim.client.push_stock([StockUpdate("A", "PH11042", 7)])
    read = sim.client.read_stock(["PH11042"])["PH11042"]
    assert (read.present, read.reserved, read.sellable) == (10, 3, 7)
    sim.admin(f"/_sim/postings/{number}/status", {"status": "awaiting_deliver"})
    assert sim.client.read_stock(["PH11042"])["PH11042"].reserved == 3
    sim.admin(f"/_sim/postings/{number}/status", {"status": "delivering"})
    read = sim.client.read_stock(["PH11042"])["PH11042"]
    assert (read.present, read.reserved, read.sellable) == (7, 0, 7)


def test_ozon_simulator_cancel_before_packing_frees_the_reservation(start_sim):
    sim = start_sim()
    sim.client.push_stock([StockUpdate("A", "X-1", 4)])
    number = sim.admin("/_sim/postings", {"products": [{"sku": 140048124, "quantity": 1}]})[
        "posting_number"
    ]
    assert sim.client.read_stock(["X-1"])["X-1"].sellable == 3
    cancelled = sim.admin(f"/_sim/postings/{number}/status", {"status": "cancelled"})
    assert cancelled["cancellation"]["cancelled_after_ship"] is False
    read = sim.client.read_stock(["X-1"])["X-1"]
    assert (read.present, read.reserved, read.sellable) == (4, 0, 4)
    order = sim.client.get_order(number)
    assert order is not None
    assert order.action is OrderAction.RELEASE


def test_ozon_client_polls_postings_by_status_change(start_sim):
    sim = start_sim()
    first = sim.admin("/_sim/postings", {"products": [{"offer_id": "PH11042", "quantity": 2}]})
    page = sim.client.list_orders(None)
    (order,) = page.orders
    assert (order.order_id, order.action) == (first["posting_number"], OrderAction.RESERVE)
    assert order.lines == (ChannelLine("140048123", 2),)

    sim.clock.advance(3_600)
    second = sim.admin("/_sim/postings", {"products": [{"offer_id": "X-1", "quantity": 1}]})
    sim.admin(f"/_sim/postings/{first['posting_number']}/status", {"status": "awaiting_deliver"})
    sim.clock.advance(600)
    page = sim.client.list_orders(page.cursor)
    assert {(o.order_id, o.action) for o in page.orders} == {
        (first["posting_number"], OrderAction.COMMIT),
        (second["posting_number"], OrderAction.RESERVE),
    }

    sim.clock.advance(3_600)
    sim.admin(
        f"/_sim/postings/{first['posting_number']}/status",
        {"status": "cancelled", "cancelled_after_ship": True},
    )
    sim.clock.advance(10)
    (cancel,) = sim.client.list_orders(page.cursor).orders
    assert (cancel.order_id, cancel.action) == (
        first["posting_number"],
        OrderAction.CANCEL_AFTER_SHIP,
    )


def test_ozon_client_pages_postings_with_offset(start_sim, monkeypatch):
    monkeypatch.setattr("inventory_engine.channels.ozon.ORDERS_PAGE_LIMIT", 2)
    sim = start_sim()
    numbers = [
        sim.admin("/_sim/postings", {"products": [{"offer_id": "X-1", "quantity": 1}]})[
            "posting_number"
        ]
        for _ in range(5)
    ]
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        page = sim.client.list_orders(cursor)
        seen += [o.order_id for o in page.orders]
        cursor = page.cursor
        if not page.more:
            break
    assert seen == numbers
    assert cursor is not None
    assert "|" not in cursor


def test_ozon_client_unfulfilled_list_and_get(start_sim):
    sim = start_sim()
    a = sim.admin("/_sim/postings", {"products": [{"offer_id": "X-1", "quantity": 1}]})
    b = sim.admin(
        "/_sim/postings",
        {"products": [{"offer_id": "PH11042", "quantity": 1}], "status": "awaiting_approve"},
    )
    c = sim.admin("/_sim/postings", {"products": [{"offer_id": "X-1", "quantity": 2}]})
    sim.admin(f"/_sim/postings/{c['posting_number']}/status", {"status": "delivered"})
    unfulfilled = sim.client.list_unfulfilled()
    assert [o.order_id for o in unfulfilled] == [a["posting_number"], b["posting_number"]]
    got = sim.client.get_order(c["posting_number"])
    assert got is not None
    assert (got.action, got.lines) == (OrderAction.FINAL, (ChannelLine("140048124", 2),))
    assert sim.client.get_order("00000000-0000-9") is None


def test_ozon_simulator_posting_list_limits(start_sim):
    sim = start_sim()
    good = {
        "filter": {"since": "2025-01-01T00:00:00Z", "to": "2025-08-25T00:00:00Z"},
        "limit": 10,
        "offset": 0,
    }
    assert sim.raw.post("/v3/posting/fbs/list", json=good, headers=AUTH).status_code == 200
    too_long = good | {"filter": {"since": "2024-01-01T00:00:00Z", "to": "2025-08-25T00:00:00Z"}}
    response = sim.raw.post("/v3/posting/fbs/list", json=too_long, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["code"] == 3
    assert (
        sim.raw.post("/v3/posting/fbs/list", json=good | {"limit": 0}, headers=AUTH).status_code
        == 400
    )
    both = {
        "filter": {
            "cutoff_from": "2025-08-01T00:00:00Z",
            "cutoff_to": "2025-08-30T00:00:00Z",
            "delivering_date_from": "2025-08-01T00:00:00Z",
        },
        "limit": 10,
        "offset": 0,
    }
    response = sim.raw.post("/v3/posting/fbs/unfulfilled/list", json=both, headers=AUTH)
    assert response.status_code == 400


def test_ozon_simulator_admin_errors_are_json(start_sim):
    sim = start_sim()
    bad = sim.raw.post("/_sim/postings", json={"products": [{"offer_id": "NOPE", "quantity": 1}]})
    assert bad.status_code == 400
    assert "error" in bad.json()
    missing = sim.raw.post("/_sim/postings/none/status", json={"status": "delivered"})
    assert missing.status_code == 404
    assert "error" in missing.json()


def test_ozon_simulator_reset_clears_postings_and_windows(start_sim):
    sim = start_sim()
    sim.client.push_stock([StockUpdate("A", "PH11042", 1)])
    sim.admin("/_sim/postings", {"products": [{"offer_id": "PH11042", "quantity": 1}]})
    assert sim.admin("/_sim/reset") == {"reset": True}
    assert sim.raw.get("/_sim/postings").json() == {"postings": []}
    assert sim.client.push_stock([StockUpdate("A", "PH11042", 2)]).items[0].outcome is (
        ItemOutcome.ACCEPTED
    )
    assert sim.state()["violations"] == {}


# -- notifications -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def intake_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A stand-in for the engine's Ozon intake: parses each push and answers as Ozon wants."""
    received: list[dict[str, Any]] = []

    async def intake(request: Request) -> Response:
        payload = await request.json()
        received.append(payload)
        try:
            notification = parse_notification(payload)
        except PayloadError as exc:
            return JSONResponse(error_answer(exc.code, str(exc)), status_code=400)
        return JSONResponse(notification.answer())

    server = serve_in_thread(Starlette(routes=[Route("/ozon", intake, methods=["POST"])]))
    yield f"{server.url}/ozon", received
    server.stop()


@pytest.fixture
def receiver(intake_server) -> tuple[str, list[dict[str, Any]]]:
    url, received = intake_server
    received.clear()
    return url, received


def wait_for(received: list[dict[str, Any]], count: int) -> None:
    deadline = time.monotonic() + 5
    while len(received) < count:
        assert time.monotonic() < deadline, f"only {len(received)} notifications arrived"
        time.sleep(0.01)


def test_ozon_simulator_pushes_posting_notifications(start_sim, receiver):
    url, received = receiver
    sim = start_sim(notify_url=url)
    number = sim.admin("/_sim/postings", {"products": [{"offer_id": "PH11042", "quantity": 2}]})[
        "posting_number"
    ]
    wait_for(received, 1)
    assert received[0] == {
        "message_type": "TYPE_NEW_POSTING",
        "posting_number": number,
        "products": [{"sku": 140048123, "quantity": 2}],
        "in_process_at": "2025-08-25T10:00:00.000Z",
        "warehouse_id": WAREHOUSE,
        "seller_id": 15,
    }
    (order,) = parse_notification(received[0]).orders
    assert (order.action, order.lines) == (OrderAction.RESERVE, (ChannelLine("140048123", 2),))

    sim.clock.advance(60)
    sim.admin(f"/_sim/postings/{number}/status", {"status": "awaiting_deliver"})
    wait_for(received, 2)
    assert received[1] == {
        "message_type": "TYPE_STATE_CHANGED",
        "posting_number": number,
        "new_state": "posting_transferring_to_delivery",
        "changed_state_date": "2025-08-25T10:01:00.000Z",
        "warehouse_id": WAREHOUSE,
        "seller_id": 15,
    }
    sim.admin(f"/_sim/postings/{number}/status", {"status": "cancelled"})
    wait_for(received, 3)
    cancel = received[2]
    assert cancel["message_type"] == "TYPE_POSTING_CANCELLED"
    assert (cancel["old_state"], cancel["new_state"]) == (
        "posting_transferring_to_delivery",
        "posting_canceled",
    )
    assert cancel["products"] == [{"sku": 140048123, "quantity": 2}]
    (order,) = parse_notification(cancel).orders
    assert order.action is OrderAction.CANCEL_AFTER_SHIP
    deadline = time.monotonic() + 5
    while sim.state()["counters"].get("notifications_sent") != 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_ozon_simulator_notify_ping_checks_the_answer(start_sim, receiver):
    url, received = receiver
    sim = start_sim(notify_url=url)
    answer = sim.admin("/_sim/notify-ping")
    assert received == [{"message_type": "TYPE_PING", "time": "2025-08-25T10:00:00.000Z"}]
    assert answer["status_code"] == 200
    assert set(answer["answer"]) == {"version", "name", "time"}


def test_ozon_simulator_notify_ping_without_url_is_a_json_error(start_sim):
    sim = start_sim()
    response = sim.raw.post("/_sim/notify-ping")
    assert response.status_code == 409
    assert "error" in response.json()
