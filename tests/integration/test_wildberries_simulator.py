"""WildberriesClient against the WB simulator over real HTTP, every exchange checked against the
official specs; plus the simulator's own limits and error shapes, hit directly with httpx."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from inventory_engine.channels.base import (
    ChannelRateLimitedError,
    ChannelRejectedError,
    ChannelUnavailableError,
    ItemOutcome,
    StockUpdate,
)
from inventory_engine.channels.wildberries import WildberriesClient
from inventory_engine.domain.models import OrderAction
from inventory_engine.http_server import RunningServer, serve_in_thread
from inventory_engine.simulators.base import TokenBucket
from inventory_engine.simulators.wildberries import (
    SANDBOX_TOKEN,
    SANDBOX_WAREHOUSE_ID,
    WildberriesSimConfig,
    WildberriesSimulator,
    create_app,
)
from tests import contract
from tests.contract import validate_request

pytestmark = pytest.mark.integration

CATALOG = (1001, 1002, 1003)
WAREHOUSE = SANDBOX_WAREHOUSE_ID
AUTH = {"Authorization": SANDBOX_TOKEN}
PROBLEM_KEYS = {
    "title", "detail", "code", "requestId", "origin", "status", "statusText", "timestamp"
}  # fmt: skip


class ManualClock:
    """The simulator's monotonic clock, moved by the tests: buckets refill only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder(httpx.BaseTransport):
    """A real HTTP transport that keeps every (request, response) pair for contract checks."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        self.exchanges.append((request, response))
        return response

    def close(self) -> None:
        self.inner.close()


validate_response = contract.validate_response


def spec_name(path: str) -> str:
    return "wildberries_stocks" if path.startswith("/api/v3/stocks") else "wildberries_orders"


def assert_contract(recorder: Recorder) -> None:
    assert recorder.exchanges, "nothing was sent"
    for request, response in recorder.exchanges:
        name = spec_name(request.url.path)
        validate_request(name, request)
        validate_response(name, request, response)


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def server(clock: ManualClock) -> Iterator[RunningServer]:
    app = create_app(WildberriesSimConfig(chrt_ids=CATALOG, clock=clock))
    running = serve_in_thread(app)
    running.simulator = app.state.simulator  # type: ignore[attr-defined]
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def sim(server: RunningServer) -> WildberriesSimulator:
    httpx.post(f"{server.url}/_sim/reset").raise_for_status()
    simulator: WildberriesSimulator = server.simulator  # type: ignore[attr-defined]
    return simulator


@pytest.fixture
def raw(server: RunningServer, sim: WildberriesSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url) as client:
        yield client


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def make_client(
    server: RunningServer, recorder: Recorder, token: str = SANDBOX_TOKEN
) -> WildberriesClient:
    http = httpx.Client(base_url=server.url, transport=recorder, timeout=5)
    return WildberriesClient(http, name="wb", token=SecretStr(token), warehouse_id=WAREHOUSE)


@pytest.fixture
def client(
    server: RunningServer, sim: WildberriesSimulator, recorder: Recorder
) -> Iterator[WildberriesClient]:
    wb = make_client(server, recorder)
    try:
        yield wb
    finally:
        wb.http.close()


def updates(*pairs: tuple[int, int]) -> list[StockUpdate]:
    return [StockUpdate(sku=f"SKU-{i}", item_id=str(i), quantity=q) for i, q in pairs]


# -- the client against the simulator ------------------------------------------------------------


def test_simulator_push_and_read_back_round_trip(
    client: WildberriesClient, sim: WildberriesSimulator, recorder: Recorder, raw: httpx.Client
) -> None:
    result = client.push_stock(updates((1001, 5), (1002, 0)))
    stock = client.read_stock(["1001", "1002", "1003"])

    assert [r.outcome for r in result.items] == [ItemOutcome.ACCEPTED] * 2
    assert {k: v.sellable for k, v in stock.items()} == {"1001": 5, "1002": 0, "1003": 0}
    received = raw.get("/_sim/received").json()["received"]
    assert [(r["item_id"], r["value"]) for r in received] == [("1001", 5), ("1002", 0)]
    assert sim.state.violations == {}
    assert_contract(recorder)


def test_simulator_409_unknown_chrt_id_rejected_others_retried_then_applied(
    client: WildberriesClient, sim: WildberriesSimulator, recorder: Recorder
) -> None:
    result = client.push_stock(updates((1001, 3), (999, 1)))

    assert [(r.outcome, r.code) for r in result.items] == [
        (ItemOutcome.RETRY, "NotListed"),
        (ItemOutcome.REJECTED, "NotFound"),
    ]
    assert sim.state.stock == {}  # the simulator applies nothing of a 409 batch by default
    again = client.push_stock([r.update for r in result.by_outcome(ItemOutcome.RETRY)])
    assert again.items[0].outcome is ItemOutcome.ACCEPTED
    assert sim.state.stock == {(str(WAREHOUSE), "1001"): 3}
    assert_contract(recorder)


def test_simulator_store_processing_makes_the_batch_retry(
    client: WildberriesClient, recorder: Recorder, raw: httpx.Client
) -> None:
    raw.put(f"/_sim/warehouses/{WAREHOUSE}", json={"isProcessing": True}).raise_for_status()

    result = client.push_stock(updates((1001, 1), (1002, 2)))

    assert {(r.outcome, r.code) for r in result.items} == {(ItemOutcome.RETRY, "StoreIsProcessing")}
    assert_contract(recorder)


def test_simulator_orders_flow_new_then_statuses_then_get_order(
    client: WildberriesClient, recorder: Recorder, raw: httpx.Client
) -> None:
    first = raw.post("/_sim/orders", json={"chrtId": 1001, "article": "A-1", "price": 1500})
    second = raw.post("/_sim/orders", json={"chrtId": 1002})
    first_id, second_id = first.json()["id"], second.json()["id"]

    page = client.list_orders(None)
    assert [(o.order_id, o.action, o.lines[0].item_id) for o in page.orders] == [
        (str(first_id), OrderAction.RESERVE, "1001"),
        (str(second_id), OrderAction.RESERVE, "1002"),
    ]

    raw.post(f"/_sim/orders/{first_id}/status", json={"supplierStatus": "confirm"})
    raw.post(
        f"/_sim/orders/{second_id}/status",
        json={"supplierStatus": "complete", "wbStatus": "sorted"},
    )
    assert client.list_orders(page.cursor).orders == ()  # confirmed tasks leave the new list
    statuses = client.order_statuses([first_id, second_id, 1])
    assert [(o.order_id, o.action, o.needs_lines) for o in statuses] == [
        (str(first_id), OrderAction.RESERVE, False),
        (str(second_id), OrderAction.COMMIT, True),
    ]

    found = client.get_order(str(second_id))
    assert found is not None
    assert (found.action, found.lines[0].item_id, found.lines[0].quantity) == (
        OrderAction.COMMIT,
        "1002",
        1,
    )
    assert client.get_order("1") is None
    assert_contract(recorder)


def test_simulator_get_order_finds_a_task_in_an_older_window(
    client: WildberriesClient, recorder: Recorder, raw: httpx.Client
) -> None:
    forty_days_ago = time.time() - 40 * 86_400
    task = raw.post("/_sim/orders", json={"chrtId": 1003, "createdAt": forty_days_ago}).json()
    raw.post(f"/_sim/orders/{task['id']}/status", json={"wbStatus": "sold"})

    found = client.get_order(str(task["id"]))

    assert found is not None
    assert found.action is OrderAction.FINAL
    assert found.lines[0].item_id == "1003"
    assert_contract(recorder)


def test_simulator_wrong_token_is_401_and_counted(
    server: RunningServer, sim: WildberriesSimulator, recorder: Recorder
) -> None:
    wrong = make_client(server, recorder, token="not-the-token")
    with pytest.raises(ChannelRejectedError) as caught:
        wrong.push_stock(updates((1001, 1)))
    wrong.http.close()

    assert caught.value.status_code == 401
    assert "not-the-token" not in str(caught.value)
    assert sim.state.violations["auth"] == 1
    assert_contract(recorder)


def test_simulator_bearer_prefix_is_refused(raw: httpx.Client, sim: WildberriesSimulator) -> None:
    response = raw.post(
        f"/api/v3/stocks/{WAREHOUSE}",
        json={"chrtIds": [1001]},
        headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"},
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert set(response.json()) == PROBLEM_KEYS


def test_simulator_injected_faults_map_to_channel_errors(
    client: WildberriesClient, raw: httpx.Client
) -> None:
    raw.put("/_sim/faults", json={"error_rate": 1.0}).raise_for_status()
    with pytest.raises(ChannelUnavailableError):
        client.push_stock(updates((1001, 1)))
    raw.put("/_sim/faults", json={"rate_limit_rate": 1.0}).raise_for_status()
    with pytest.raises(ChannelRateLimitedError) as caught:
        client.list_orders(None)
    assert caught.value.retry_after_s == 1.0


# -- the simulator's limits, hit directly ----------------------------------------------------------


def put_stocks(raw: httpx.Client, body: Any, warehouse: int = WAREHOUSE) -> httpx.Response:
    return raw.put(f"/api/v3/stocks/{warehouse}", json=body, headers=AUTH)


def test_simulator_unknown_field_names_get_204_and_change_nothing(
    raw: httpx.Client, sim: WildberriesSimulator
) -> None:
    body = {"stocks": [{"barcode": "2042688657617", "amount": 5}, {"chrtId": 1001, "quantity": 5}]}

    response = put_stocks(raw, body)

    assert response.status_code == 204
    assert sim.state.stock == {}
    assert sim.state.counters["ignored_items"] == 2
    validate_response("wildberries_stocks", response.request, response)


def test_simulator_refuses_the_dropped_sku_field_with_400_sku_upload_disabled(
    raw: httpx.Client, sim: WildberriesSimulator
) -> None:
    # WB 2026: chrtId is the only item id; a body still sending sku is a 400 (spec example
    # SKUUploadDisabled), not the silent 204 other unknown names get.
    body = {"stocks": [{"sku": "2042688657617", "amount": 5}, {"chrtId": 1001, "amount": 5}]}

    response = put_stocks(raw, body)

    assert response.status_code == 400
    assert response.json()["code"] == "SKUUploadDisabled"
    assert sim.state.stock == {}
    assert sim.state.violations["sku_field"] == 1
    validate_response("wildberries_stocks", response.request, response)


def test_simulator_batch_over_1000_is_400_and_a_violation(
    raw: httpx.Client, sim: WildberriesSimulator
) -> None:
    body = {"stocks": [{"chrtId": 1001, "amount": 1}] * 1001}

    response = put_stocks(raw, body)

    assert response.status_code == 400
    assert response.json() == {
        "code": "IncorrectRequestBody",
        "message": "stocks: at most 1000 items",
    }
    assert sim.state.violations["batch_size"] == 1
    validate_response("wildberries_stocks", response.request, response)


def test_simulator_amount_over_limit_is_409_upload_data_limit(
    raw: httpx.Client, sim: WildberriesSimulator
) -> None:
    body = {"stocks": [{"chrtId": 1001, "amount": 100_001}, {"chrtId": 1002, "amount": 1}]}

    response = put_stocks(raw, body)

    assert response.status_code == 409
    assert response.json() == [
        {
            "code": "UploadDataLimit",
            "message": "Upload limit exceeded.",
            "data": [{"chrtId": 1001, "amount": 100_001}],
        }
    ]
    assert sim.state.stock == {}
    validate_response("wildberries_stocks", response.request, response)


def test_simulator_unknown_warehouse_and_bad_body_answer_wb_errors(raw: httpx.Client) -> None:
    missing = put_stocks(raw, {"stocks": [{"chrtId": 1001, "amount": 1}]}, warehouse=77)
    bad = put_stocks(raw, {"stocks": [{"chrtId": "1001", "amount": 1}]})

    assert (missing.status_code, missing.json()) == (404, {"code": "NotFound", "message": ""})
    assert (bad.status_code, bad.json()["code"]) == (400, "IncorrectRequestBody")
    validate_response("wildberries_stocks", missing.request, missing)
    validate_response("wildberries_stocks", bad.request, bad)


def test_simulator_rate_limit_burst_then_429_with_retry_header(
    raw: httpx.Client, sim: WildberriesSimulator, clock: ManualClock
) -> None:
    read = {"chrtIds": [1001]}
    statuses = [
        raw.post(f"/api/v3/stocks/{WAREHOUSE}", json=read, headers=AUTH).status_code
        for _ in range(20)
    ]
    limited = raw.post(f"/api/v3/stocks/{WAREHOUSE}", json=read, headers=AUTH)

    assert statuses == [200] * 20
    assert limited.status_code == 429
    assert limited.headers["X-Ratelimit-Retry"] == "1"
    assert limited.headers["content-type"] == "application/problem+json"
    problem = limited.json()
    assert set(problem) == PROBLEM_KEYS
    assert (problem["title"], problem["status"], problem["statusText"]) == (
        "too many requests",
        429,
        "Too Many Requests",
    )
    assert sim.state.violations["rate_limit"] == 1
    validate_response("wildberries_stocks", limited.request, limited)
    # The order methods have their own bucket.
    assert raw.get("/api/v3/orders/new", headers=AUTH).status_code == 200
    clock.advance(0.2)  # one request per 200 ms
    assert raw.post(f"/api/v3/stocks/{WAREHOUSE}", json=read, headers=AUTH).status_code == 200


def test_simulator_a_4xx_costs_ten_requests(
    raw: httpx.Client, sim: WildberriesSimulator, clock: ManualClock
) -> None:
    for _ in range(2):
        assert put_stocks(raw, {"stocks": []}).status_code == 400

    response = raw.post(f"/api/v3/stocks/{WAREHOUSE}", json={"chrtIds": [1001]}, headers=AUTH)

    assert response.status_code == 429
    assert sim.state.violations["rate_limit"] == 1
    clock.advance(0.2)
    assert raw.post(f"/api/v3/stocks/{WAREHOUSE}", json={"chrtIds": []}, headers=AUTH).is_success


def test_simulator_orders_list_pages_and_enforces_limit(
    raw: httpx.Client, sim: WildberriesSimulator
) -> None:
    ids = [raw.post("/_sim/orders", json={"chrtId": 1001}).json()["id"] for _ in range(3)]

    first = raw.get("/api/v3/orders", params={"limit": 2, "next": 0}, headers=AUTH)
    after = first.json()["next"]
    second = raw.get("/api/v3/orders", params={"limit": 2, "next": after}, headers=AUTH)
    too_many = raw.get("/api/v3/orders", params={"limit": 1001, "next": 0}, headers=AUTH)
    too_long = raw.get(
        "/api/v3/orders",
        params={"limit": 10, "next": 0, "dateFrom": 0, "dateTo": 31 * 86_400},
        headers=AUTH,
    )

    assert [o["id"] for o in first.json()["orders"]] == ids[:2]
    assert [o["id"] for o in second.json()["orders"]] == ids[2:]
    assert too_many.status_code == 400
    assert too_long.status_code == 400
    assert too_long.json()["code"] == "IncorrectParameter"
    assert sim.state.violations["batch_size"] == 1
    for response in (first, second, too_long):
        validate_request("wildberries_orders", response.request)
    for response in (first, second, too_many, too_long):
        validate_response("wildberries_orders", response.request, response)


def test_simulator_status_batch_over_1000_is_400(
    raw: httpx.Client, sim: WildberriesSimulator
) -> None:
    response = raw.post(
        "/api/v3/orders/status", json={"orders": list(range(1, 1002))}, headers=AUTH
    )

    assert response.status_code == 400
    assert sim.state.violations["batch_size"] == 1
    validate_response("wildberries_orders", response.request, response)


def test_simulator_admin_rejects_unknown_statuses_and_reset_clears_tasks(
    raw: httpx.Client, sim: WildberriesSimulator
) -> None:
    task = raw.post("/_sim/orders", json={"chrtId": 1001}).json()

    bad = raw.post(f"/_sim/orders/{task['id']}/status", json={"wbStatus": "lost"})
    raw.post("/_sim/reset").raise_for_status()

    assert bad.status_code == 400
    assert raw.get("/api/v3/orders/new", headers=AUTH).json() == {"orders": []}


def test_simulator_products_route_extends_the_catalog(
    raw: httpx.Client, sim: WildberriesSimulator
) -> None:
    assert put_stocks(raw, {"stocks": [{"chrtId": 5005, "amount": 2}]}).status_code == 409
    raw.post("/_sim/products", json={"chrtIds": [5005]}).raise_for_status()
    assert put_stocks(raw, {"stocks": [{"chrtId": 5005, "amount": 2}]}).status_code == 204
    assert sim.state.stock[str(WAREHOUSE), "5005"] == 2
    raw.post("/_sim/reset").raise_for_status()
    assert sim.catalog == set(CATALOG)


def test_simulator_can_apply_the_valid_items_of_a_409_batch(recorder: Recorder) -> None:
    app = create_app(
        WildberriesSimConfig(chrt_ids=CATALOG, apply_valid_items_on_409=True, clock=ManualClock())
    )
    running = serve_in_thread(app)
    wb = make_client(running, recorder)
    try:
        result = wb.push_stock(updates((1001, 4), (999, 1)))
    finally:
        wb.http.close()
        running.stop()

    # Either way the client resends the unlisted item: harmless when WB did apply it.
    assert [r.outcome for r in result.items] == [ItemOutcome.RETRY, ItemOutcome.REJECTED]
    assert app.state.simulator.state.stock == {(str(WAREHOUSE), "1001"): 4}
    assert_contract(recorder)


def test_token_bucket_refills_on_the_injected_clock() -> None:
    clock = ManualClock()
    bucket = TokenBucket(2, 5.0, clock=clock)  # burst 2, one token per 200 ms

    assert (bucket.take(), bucket.take()) == (0.0, 0.0)
    assert bucket.take() == pytest.approx(0.2)
    clock.advance(0.2)
    assert bucket.take() == 0.0
    assert bucket.take(2) == pytest.approx(0.4)  # a failed take costs nothing
    clock.advance(10)
    assert bucket.take(2) == 0.0  # refilled to capacity, never beyond


def test_token_bucket_charge_goes_into_debt() -> None:
    clock = ManualClock()
    bucket = TokenBucket(20, 5.0, clock=clock)

    assert bucket.take() == 0.0
    bucket.charge(9)  # WB: the 4xx that request got is billed as 10 in all
    assert bucket.tokens == 10
    bucket.charge(15)
    assert bucket.tokens == -5
    assert bucket.take() == pytest.approx(6 / 5.0)  # back above zero, then one more token
    clock.advance(1.2)
    assert bucket.take() == 0.0


def test_simulator_reset_route_also_refills_buckets_and_clears_faults(
    raw: httpx.Client, sim: WildberriesSimulator
) -> None:
    for _ in range(2):
        assert put_stocks(raw, {"stocks": []}).status_code == 400  # 20 requests billed
    assert put_stocks(raw, {"stocks": []}).status_code == 429
    raw.put("/_sim/faults", json={"error_rate": 1.0}).raise_for_status()

    assert raw.post("/_sim/reset").json() == {"reset": True}

    assert sim.faults.faults.error_rate == 0
    assert sim.state.violations == {}
    read = {"chrtIds": [1001]}
    assert raw.post(f"/api/v3/stocks/{WAREHOUSE}", json=read, headers=AUTH).status_code == 200
