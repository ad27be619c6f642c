"""WildberriesClient on httpx.MockTransport: request shapes, per-item outcomes, error mapping."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from inventory_engine.channels import wildberries
from inventory_engine.channels.base import (
    ChannelClient,
    ChannelRateLimitedError,
    ChannelRejectedError,
    ChannelUnavailableError,
    ItemOutcome,
    PayloadError,
    StockUpdate,
)
from inventory_engine.channels.wildberries import WildberriesClient
from inventory_engine.config import WildberriesSettings
from inventory_engine.domain.models import OrderAction

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wildberries"
TOKEN = "wb-secret-token-value"
WAREHOUSE = 658434
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

Handler = Callable[[httpx.Request], httpx.Response]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def make_client(handler: Handler, sent: list[httpx.Request] | None = None) -> WildberriesClient:
    def record(request: httpx.Request) -> httpx.Response:
        if sent is not None:
            sent.append(request)
        return handler(request)

    http = httpx.Client(
        base_url="https://marketplace-api.wildberries.ru", transport=httpx.MockTransport(record)
    )
    return WildberriesClient(
        http, name="wb", token=SecretStr(TOKEN), warehouse_id=WAREHOUSE, now=lambda: NOW
    )


def updates(*pairs: tuple[str, int]) -> list[StockUpdate]:
    return [StockUpdate(sku=f"SKU-{item}", item_id=item, quantity=q) for item, q in pairs]


def no_content(_: httpx.Request) -> httpx.Response:
    return httpx.Response(204)


# -- push_stock --------------------------------------------------------------------------------


def test_push_stock_sends_exact_field_names_and_raw_token() -> None:
    sent: list[httpx.Request] = []
    client = make_client(no_content, sent)

    result = client.push_stock(updates(("12345678", 10), ("87654321", 0)))

    (request,) = sent
    assert request.method == "PUT"
    assert request.url.path == f"/api/v3/stocks/{WAREHOUSE}"
    assert request.headers["Authorization"] == TOKEN  # no "Bearer": WB's scheme is a bare key
    body = json.loads(request.content)
    # WB ignores unknown names with a 204, so the exact keys are the only guard against a no-op.
    assert list(body) == ["stocks"]
    assert [list(item) for item in body["stocks"]] == [["chrtId", "amount"]] * 2
    assert body == {
        "stocks": [{"chrtId": 12345678, "amount": 10}, {"chrtId": 87654321, "amount": 0}]
    }
    assert [r.outcome for r in result.items] == [ItemOutcome.ACCEPTED] * 2


def test_push_stock_more_than_max_batch_raises_before_sending() -> None:
    sent: list[httpx.Request] = []
    client = make_client(no_content, sent)

    with pytest.raises(ValueError, match="at most 1000"):
        client.push_stock(updates(*[(str(i), 1) for i in range(1, 1002)]))
    assert sent == []


def test_push_stock_full_batch_is_one_request() -> None:
    sent: list[httpx.Request] = []
    client = make_client(no_content, sent)

    result = client.push_stock(updates(*[(str(i), 1) for i in range(1, 1001)]))

    assert len(sent) == 1
    assert len(result.by_outcome(ItemOutcome.ACCEPTED)) == 1000


def test_push_stock_empty_sends_nothing() -> None:
    sent: list[httpx.Request] = []
    assert make_client(no_content, sent).push_stock([]).items == ()
    assert sent == []


def test_push_stock_rejects_what_wb_would_refuse_without_sending_it() -> None:
    sent: list[httpx.Request] = []
    client = make_client(no_content, sent)

    result = client.push_stock(updates(("1", 100_001), ("abc", 1), ("2", 100_000), ("3", -1)))

    assert [(r.outcome, r.code) for r in result.items] == [
        (ItemOutcome.REJECTED, "UploadDataLimit"),
        (ItemOutcome.REJECTED, "InvalidChrtId"),
        (ItemOutcome.ACCEPTED, ""),
        (ItemOutcome.REJECTED, "InvalidAmount"),
    ]
    assert json.loads(sent[0].content) == {"stocks": [{"chrtId": 2, "amount": 100_000}]}


def test_push_stock_409_maps_listed_items_and_retries_the_rest() -> None:
    client = make_client(lambda _: httpx.Response(409, json=fixture("stocks_409_mixed.json")))

    result = client.push_stock(updates(("111", 10), ("222", 4), ("333", 1), ("444", 7)))

    assert [(r.update.item_id, r.outcome, r.code) for r in result.items] == [
        ("111", ItemOutcome.REJECTED, "NotFound"),
        ("222", ItemOutcome.RETRY, "StoreIsProcessing"),
        ("333", ItemOutcome.REJECTED, "CargoWarehouseRestrictionMGT"),
        # Not listed: WB does not say whether it was applied, so it is sent again.
        ("444", ItemOutcome.RETRY, "NotListed"),
    ]
    assert result.items[0].message == "Not found"


def test_push_stock_409_without_items_retries_the_whole_batch() -> None:
    body = [{"code": "StoreIsProcessing", "message": "The store is processing"}]
    client = make_client(lambda _: httpx.Response(409, json=body))

    result = client.push_stock(updates(("1", 1), ("2", 2)))

    assert {(r.outcome, r.code) for r in result.items} == {(ItemOutcome.RETRY, "StoreIsProcessing")}


def test_push_stock_409_with_unreadable_body_raises_rejected() -> None:
    client = make_client(lambda _: httpx.Response(409, text="<html>conflict</html>"))

    with pytest.raises(ChannelRejectedError) as caught:
        client.push_stock(updates(("1", 1)))
    assert caught.value.status_code == 409


def test_push_stock_406_warehouse_block_is_retry_but_a_ban_is_rejected() -> None:
    block = {"code": "WarehouseStocksUpdateBlock", "message": "The warehouse is processing"}
    ban = {"code": "StatusNotAcceptable", "message": "banned"}

    retry = make_client(lambda _: httpx.Response(406, json=block)).push_stock(updates(("1", 1)))
    assert retry.items[0].outcome is ItemOutcome.RETRY
    with pytest.raises(ChannelRejectedError) as caught:
        make_client(lambda _: httpx.Response(406, json=ban)).push_stock(updates(("1", 1)))
    assert caught.value.status_code == 406


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Ratelimit-Retry": "7", "Retry-After": "3"}, 7.0),
        ({"Retry-After": "3"}, 3.0),
        ({"X-Ratelimit-Retry": "soon"}, 1.0),
        ({"X-Ratelimit-Retry": "soon", "Retry-After": "3"}, 3.0),
        ({"Retry-After": "Sun, 01 Mar 2026 12:00:05 GMT"}, 5.0),
        ({}, 1.0),
    ],
)
def test_push_stock_429_reads_wb_retry_header_with_fallbacks(
    headers: dict[str, str], expected: float
) -> None:
    body = {"title": "too many requests", "status": 429}
    client = make_client(lambda _: httpx.Response(429, json=body, headers=headers))

    with pytest.raises(ChannelRateLimitedError) as caught:
        client.push_stock(updates(("1", 1)))
    assert caught.value.retry_after_s == expected


@pytest.mark.parametrize("status", [500, 502, 503])
def test_push_stock_5xx_is_unavailable(status: int) -> None:
    client = make_client(lambda _: httpx.Response(status, text="oops"))
    with pytest.raises(ChannelUnavailableError):
        client.push_stock(updates(("1", 1)))


@pytest.mark.parametrize("exc", [httpx.ReadTimeout("slow"), httpx.ConnectError("refused")])
def test_push_stock_transport_failures_are_unavailable(exc: Exception) -> None:
    def fail(_: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(ChannelUnavailableError):
        make_client(fail).push_stock(updates(("1", 1)))


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"title": "unauthorized", "detail": "token problem", "status": 401}),
        (400, {"code": "IncorrectRequestBody", "message": "Incorrect required body"}),
        (404, {"code": "NotFound", "message": ""}),
    ],
)
def test_push_stock_other_4xx_is_rejected_without_leaking_the_token(
    status: int, body: dict[str, Any]
) -> None:
    client = make_client(lambda _: httpx.Response(status, json=body))

    with pytest.raises(ChannelRejectedError) as caught:
        client.push_stock(updates(("1", 1)))

    assert caught.value.status_code == status
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(caught.value)
    assert TOKEN not in repr(client)


def test_push_stock_409_log_line_has_no_token() -> None:
    client = make_client(lambda _: httpx.Response(409, json=fixture("stocks_409_mixed.json")))

    with capture_logs() as logs:
        client.push_stock(updates(("111", 10)))

    assert logs
    assert logs[0]["event"] == "stock_push_items_failed"
    assert TOKEN not in repr(logs)


# -- read_stock --------------------------------------------------------------------------------


def test_read_stock_posts_chrt_ids_and_maps_amount_to_sellable() -> None:
    sent: list[httpx.Request] = []
    answer = {"stocks": [{"chrtId": 1, "amount": 5}, {"chrtId": 2, "amount": 0}]}
    client = make_client(lambda _: httpx.Response(200, json=answer), sent)

    stock = client.read_stock(["1", "2", "not-a-chrt-id", "3"])

    assert sent[0].method == "POST"
    assert sent[0].url.path == f"/api/v3/stocks/{WAREHOUSE}"
    assert json.loads(sent[0].content) == {"chrtIds": [1, 2, 3]}
    assert {k: v.sellable for k, v in stock.items()} == {"1": 5, "2": 0}


def test_read_stock_chunks_by_max_batch() -> None:
    sent: list[httpx.Request] = []
    client = make_client(lambda _: httpx.Response(200, json={"stocks": []}), sent)

    client.read_stock([str(i) for i in range(1, 1502)])

    assert [len(json.loads(r.content)["chrtIds"]) for r in sent] == [1000, 501]


def test_read_stock_malformed_answer_is_payload_error() -> None:
    client = make_client(lambda _: httpx.Response(200, json={"stocks": [{"amount": "x"}]}))
    with pytest.raises(PayloadError):
        client.read_stock(["1"])


# -- orders ------------------------------------------------------------------------------------


def test_list_orders_maps_new_tasks_to_one_unit_reserves() -> None:
    sent: list[httpx.Request] = []
    client = make_client(lambda _: httpx.Response(200, json=fixture("orders_new.json")), sent)

    page = client.list_orders(None)

    assert sent[0].method == "GET"
    assert sent[0].url.path == "/api/v3/orders/new"
    assert page.cursor == NOW.isoformat()
    assert page.more is False
    first, second = page.orders
    assert first.order_id == "13833711"
    assert first.action is OrderAction.RESERVE
    assert [(line.item_id, line.quantity) for line in first.lines] == [("987654321", 1)]
    assert first.changed_at == "2022-05-04T07:56:29Z"
    assert first.event_key == "13833711:new"
    assert second.lines[0].item_id == "987654322"


def test_list_orders_ignores_the_cursor_it_is_given() -> None:
    client = make_client(lambda _: httpx.Response(200, json={"orders": []}))
    assert client.list_orders("2020-01-01T00:00:00+00:00").orders == ()


def test_order_statuses_maps_both_status_fields() -> None:
    sent: list[httpx.Request] = []
    client = make_client(lambda _: httpx.Response(200, json=fixture("orders_status.json")), sent)

    orders = client.order_statuses([1, "2", 3, 4, 5, 6, 7])

    assert json.loads(sent[0].content) == {"orders": [1, 2, 3, 4, 5, 6, 7]}
    assert [(o.order_id, o.action, o.needs_lines) for o in orders] == [
        ("1", OrderAction.RESERVE, False),
        ("2", OrderAction.RESERVE, False),
        ("3", OrderAction.COMMIT, True),
        ("4", OrderAction.FINAL, True),
        ("5", OrderAction.RELEASE, False),
        ("6", OrderAction.CANCEL_AFTER_SHIP, True),
        ("7", OrderAction.RELEASE, False),
    ]
    assert orders[2].status == "complete/sorted"
    assert orders[2].event_key == "3:complete/sorted"
    assert all(o.lines == () for o in orders)


def test_order_statuses_chunks_by_1000_ids() -> None:
    sent: list[httpx.Request] = []
    client = make_client(lambda _: httpx.Response(200, json={"orders": []}), sent)

    client.order_statuses(list(range(1, 1002)))

    assert [len(json.loads(r.content)["orders"]) for r in sent] == [1000, 1]


def test_order_statuses_rejects_a_non_numeric_id() -> None:
    with pytest.raises(ValueError, match="integers"):
        make_client(no_content).order_statuses(["posting-1"])


def _orders_api(tasks: list[dict[str, Any]], statuses: dict[int, tuple[str, str]]) -> Handler:
    """A fake WB answering status and the paged, date-filtered task list."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v3/orders/status":
            ids = json.loads(request.content)["orders"]
            rows = [
                {"id": i, "supplierStatus": statuses[i][0], "wbStatus": statuses[i][1]}
                for i in ids
                if i in statuses
            ]
            return httpx.Response(200, json={"orders": rows})
        params = request.url.params
        start, end = int(params["dateFrom"]), int(params["dateTo"])
        after, limit = int(params["next"]), int(params["limit"])
        page = [t for t in tasks if start <= t["ts"] <= end and t["id"] > after][:limit]
        next_value = page[-1]["id"] if page else after
        return httpx.Response(200, json={"next": next_value, "orders": page})

    return handle


def test_get_order_pages_back_through_windows_until_it_finds_the_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wildberries, "ORDERS_PAGE_LIMIT", 2)
    old = int((NOW - timedelta(days=40)).timestamp())
    recent = int((NOW - timedelta(days=1)).timestamp())
    tasks: list[dict[str, Any]] = [
        {"id": 10, "chrtId": 100, "ts": recent},
        {"id": 11, "chrtId": 101, "ts": recent},
        {"id": 12, "chrtId": 102, "ts": recent},
        {"id": 20, "chrtId": 555, "ts": old, "createdAt": "2026-01-20T12:00:00Z"},
    ]
    sent: list[httpx.Request] = []
    client = make_client(_orders_api(tasks, {20: ("complete", "sorted")}), sent)

    order = client.get_order("20")

    assert order is not None
    assert order.action is OrderAction.COMMIT
    assert order.needs_lines is False
    assert [(line.item_id, line.quantity) for line in order.lines] == [("555", 1)]
    assert order.changed_at == "2026-01-20T12:00:00Z"
    listing = [r for r in sent if r.url.path == "/api/v3/orders"]
    # Newest window in two pages (2 + 1 tasks), then the previous window.
    assert [r.url.params["next"] for r in listing] == ["0", "11", "0"]
    first = listing[0].url.params
    assert first["limit"] == "2"
    assert int(first["dateTo"]) == int(NOW.timestamp()) + 1
    assert int(first["dateTo"]) - int(first["dateFrom"]) == 30 * 86_400


def test_get_order_unknown_to_wb_costs_one_status_call() -> None:
    sent: list[httpx.Request] = []
    client = make_client(_orders_api([], {}), sent)

    assert client.get_order("999") is None
    assert [r.url.path for r in sent] == ["/api/v3/orders/status"]


def test_get_order_older_than_the_horizon_is_none() -> None:
    sent: list[httpx.Request] = []
    client = make_client(_orders_api([], {5: ("complete", "sold")}), sent)

    assert client.get_order("5") is None
    assert len([r for r in sent if r.url.path == "/api/v3/orders"]) == 3  # 3 x 30 days
    assert client.get_order("not-a-task") is None


# -- wiring ------------------------------------------------------------------------------------


def test_client_from_settings_satisfies_the_channel_protocol() -> None:
    settings = WildberriesSettings(
        kind="wildberries",
        name="wb",
        base_url="https://marketplace-api.wildberries.ru",
        token=SecretStr(TOKEN),
        warehouse_id=WAREHOUSE,
    )
    with httpx.Client() as http:
        client = WildberriesClient.from_settings(settings, http)

    assert isinstance(client, ChannelClient)
    assert (client.kind, client.max_batch) == ("wildberries", 1000)
    assert client.catalog_field == client.order_item_field == "wb_chrt_id"
    assert client.warehouse_id == WAREHOUSE
    assert TOKEN not in repr(client)
