"""OzonClient on httpx.MockTransport: exact requests, per-item results inside HTTP 200, the
read-back through two methods, posting polls, and every whole-request failure mapped once.

Every request the client sends here is also checked against Ozon's official spec."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from inventory_engine.channels.base import (
    ChannelClient,
    ChannelEndpointRetiredError,
    ChannelLine,
    ChannelRateLimitedError,
    ChannelRejectedError,
    ChannelUnavailableError,
    ItemOutcome,
    PayloadError,
    StockUpdate,
)
from inventory_engine.channels.ozon import (
    FIRST_POLL_WINDOW,
    ITEM_WINDOW_S,
    MAX_BATCH,
    POLL_OVERLAP,
    OzonClient,
)
from inventory_engine.channels.ozon_read import StockReadApi
from inventory_engine.config import OzonSettings
from inventory_engine.domain.models import OrderAction
from tests.contract import validate_request

API_KEY = "ozon-secret-key-123"
CLIENT_ID = "836"
WAREHOUSE = 22142605386000
NOW = datetime(2025, 8, 25, 12, 0, 0, tzinfo=UTC)

Handler = Callable[[httpx.Request], httpx.Response]


def make_client(
    handler: Handler, *, now: datetime = NOW, read_api: StockReadApi = "v2"
) -> tuple[OzonClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def recording(request: httpx.Request) -> httpx.Response:
        validate_request("ozon", request)
        seen.append(request)
        return handler(request)

    http = httpx.Client(
        base_url="https://api-seller.ozon.ru", transport=httpx.MockTransport(recording)
    )
    client = OzonClient(
        http,
        name="ozon-main",
        client_id=CLIENT_ID,
        api_key=SecretStr(API_KEY),
        warehouse_id=WAREHOUSE,
        stock_read_api=read_api,
        now=lambda: now,
    )
    return client, seen


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)


def ozon_error(status: int, code: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "message": message, "details": []})


def stock_row(offer_id: str, *, updated: bool = True, errors: list[dict[str, str]] | None = None):
    return {
        "warehouse_id": WAREHOUSE,
        "product_id": 1,
        "offer_id": offer_id,
        "updated": updated,
        "errors": errors or [],
    }


def answering(rows: list[dict[str, Any]]) -> Handler:
    return lambda request: httpx.Response(200, json={"result": rows})


UPDATES = [StockUpdate("SKU-1", "PH11042", 100), StockUpdate("SKU-2", "X-1", 0)]


# -- identity ----------------------------------------------------------------------------------


def test_ozon_client_implements_the_channel_interface():
    client, _ = make_client(answering([]))
    assert isinstance(client, ChannelClient)
    assert (client.kind, client.max_batch) == ("ozon", 100)
    assert (client.catalog_field, client.order_item_field) == ("ozon_offer_id", "ozon_sku")
    assert API_KEY not in repr(client)


def test_ozon_client_from_settings():
    settings = OzonSettings(
        kind="ozon",
        name="ozon",
        base_url="https://api-seller.ozon.ru",
        client_id=CLIENT_ID,
        api_key=SecretStr(API_KEY),
        warehouse_id=WAREHOUSE,
    )
    client = OzonClient.from_settings(settings, httpx.Client())
    assert (client.name, client.warehouse_id) == ("ozon", WAREHOUSE)
    # v1 by-warehouse was switched off on 7 Apr 2026: the v2 method is the default.
    assert client.stock_read_api == "v2"
    v1 = OzonClient.from_settings(
        settings.model_copy(update={"stock_read_api": "v1"}), httpx.Client()
    )
    assert v1.stock_read_api == "v1"


# -- push --------------------------------------------------------------------------------------


def test_ozon_push_sends_offer_stock_warehouse_with_credentials():
    client, seen = make_client(answering([stock_row("PH11042"), stock_row("X-1")]))
    result = client.push_stock(UPDATES)
    assert [item.outcome for item in result.items] == [ItemOutcome.ACCEPTED] * 2
    (request,) = seen
    assert (request.method, request.url.path) == ("POST", "/v2/products/stocks")
    assert request.headers["Client-Id"] == CLIENT_ID
    assert request.headers["Api-Key"] == API_KEY
    assert body(request) == {
        "stocks": [
            {"offer_id": "PH11042", "stock": 100, "warehouse_id": WAREHOUSE},
            {"offer_id": "X-1", "stock": 0, "warehouse_id": WAREHOUSE},
        ]
    }


@pytest.mark.parametrize(
    "error",
    [
        {"code": "TOO_MANY_REQUESTS", "message": "too often"},
        {"code": "Stock is updated too frequently", "message": ""},
        {"code": "SOMETHING", "message": "Stock is updated too frequently"},
    ],
)
def test_ozon_push_too_frequent_item_is_throttled_for_the_window(error):
    client, _ = make_client(
        answering([stock_row("PH11042"), stock_row("X-1", updated=False, errors=[error])])
    )
    first, second = client.push_stock(UPDATES).items
    assert first.outcome is ItemOutcome.ACCEPTED
    assert second.outcome is ItemOutcome.THROTTLED
    assert second.retry_after_s == ITEM_WINDOW_S == 30
    assert second.update == UPDATES[1]


@pytest.mark.parametrize(
    "code", ["STOCK_TOO_BIG", "offer_id_not_found", "WAREHOUSE_NOT_FOUND", "PRICE_IS_NOT_SENT"]
)
def test_ozon_push_item_error_is_rejected_with_its_code(code):
    rows = [stock_row("PH11042", updated=False, errors=[{"code": code, "message": "m"}])]
    client, _ = make_client(answering([*rows, stock_row("X-1")]))
    first, second = client.push_stock(UPDATES).items
    assert (first.outcome, first.code, first.message) == (ItemOutcome.REJECTED, code, "m")
    assert first.retry_after_s is None
    assert second.outcome is ItemOutcome.ACCEPTED


def test_ozon_push_item_missing_from_answer_is_retried():
    client, _ = make_client(answering([stock_row("X-1")]))
    first, second = client.push_stock(UPDATES).items
    assert first.outcome is ItemOutcome.RETRY
    assert second.outcome is ItemOutcome.ACCEPTED


def test_ozon_push_not_updated_without_reason_or_internal_error_is_retried():
    rows = [
        stock_row("PH11042", updated=False),
        stock_row("X-1", updated=False, errors=[{"code": "INTERNAL_ERROR", "message": "x"}]),
    ]
    client, _ = make_client(answering(rows))
    assert [i.outcome for i in client.push_stock(UPDATES).items] == [ItemOutcome.RETRY] * 2


def test_ozon_push_same_offer_twice_matches_answers_in_order():
    updates = [StockUpdate("A", "O", 1), StockUpdate("A", "O", 2)]
    too_often = [{"code": "TOO_MANY_REQUESTS", "message": ""}]
    client, _ = make_client(
        answering([stock_row("O"), stock_row("O", updated=False, errors=too_often)])
    )
    outcomes = [i.outcome for i in client.push_stock(updates).items]
    assert outcomes == [ItemOutcome.ACCEPTED, ItemOutcome.THROTTLED]


def test_ozon_push_rejects_values_ozon_refuses_without_sending_them():
    updates = [
        StockUpdate("BIG", "O-big", 1_000_000),
        StockUpdate("OK", "O-ok", 999_999),
        StockUpdate("NEG", "O-neg", -1),
    ]
    client, seen = make_client(answering([stock_row("O-ok")]))
    big, ok, neg = client.push_stock(updates).items
    assert (big.outcome, big.code) == (ItemOutcome.REJECTED, "STOCK_TOO_BIG")
    assert ok.outcome is ItemOutcome.ACCEPTED
    assert neg.outcome is ItemOutcome.REJECTED
    assert [s["offer_id"] for s in body(seen[0])["stocks"]] == ["O-ok"]


def test_ozon_push_sends_nothing_when_every_item_is_refused_locally():
    client, seen = make_client(answering([]))
    (item,) = client.push_stock([StockUpdate("BIG", "O", 5_000_000)]).items
    assert item.outcome is ItemOutcome.REJECTED
    assert seen == []


def test_ozon_push_batch_limit():
    client, seen = make_client(answering([stock_row(f"O{i}") for i in range(MAX_BATCH)]))
    with pytest.raises(ValueError, match="at most 100"):
        client.push_stock([StockUpdate(f"S{i}", f"O{i}", 1) for i in range(MAX_BATCH + 1)])
    assert seen == []
    result = client.push_stock([StockUpdate(f"S{i}", f"O{i}", 1) for i in range(MAX_BATCH)])
    assert len(result.by_outcome(ItemOutcome.ACCEPTED)) == MAX_BATCH


def test_ozon_push_failed_items_logged_without_secrets():
    error = [{"code": "TOO_MANY_REQUESTS", "message": ""}]
    client, _ = make_client(answering([stock_row("PH11042", updated=False, errors=error)]))
    with capture_logs() as logs:
        client.push_stock(UPDATES)
    (event,) = logs
    assert event["event"] == "stock_push_items_failed"
    assert (event["throttled"], event["retry"]) == (1, 1)
    assert API_KEY not in repr(logs)


# -- whole-request failures --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "retry_after"),
    [
        (ozon_error(429, 8, "You have reached request rate limit per second"), 1.0),
        (httpx.Response(429, text="slow down"), 1.0),
        (ozon_error(400, 8, "You have reached request rate limit per second"), 1.0),
        (ozon_error(403, 7, "You have reached request rate limit per second"), 1.0),
        (ozon_error(400, 14, "Circle is open"), 180.0),
    ],
)
def test_ozon_push_rate_limit_answers_raise_rate_limited(response, retry_after):
    client, _ = make_client(lambda request: response)
    with pytest.raises(ChannelRateLimitedError) as caught:
        client.push_stock(UPDATES)
    assert caught.value.retry_after_s == retry_after
    assert API_KEY not in str(caught.value)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_ozon_5xx_is_unavailable(status):
    client, _ = make_client(lambda request: ozon_error(status, 13, "Internal error"))
    with pytest.raises(ChannelUnavailableError) as caught:
        client.push_stock(UPDATES)
    assert API_KEY not in str(caught.value)


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow"), httpx.ConnectError("down")]
)
def test_ozon_transport_failures_are_unavailable(exc):
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    client, _ = make_client(handler)
    with pytest.raises(ChannelUnavailableError) as caught:
        client.list_orders(None)
    assert API_KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [(403, 7, "Invalid Api-Key, please contact support"), (400, 3, "stocks: bad"), (404, 5, "x")],
)
def test_ozon_4xx_is_rejected_with_status_and_no_secret(status, code, message):
    client, _ = make_client(lambda request: ozon_error(status, code, message))
    with pytest.raises(ChannelRejectedError) as caught:
        client.push_stock(UPDATES)
    assert caught.value.status_code == status
    assert caught.value.response is not None
    assert API_KEY not in str(caught.value)
    assert API_KEY not in repr(caught.value.args)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>oops</html>"),
        httpx.Response(200, json={"result": "yes"}),
        httpx.Response(200, json={"result": [{"updated": "maybe"}]}),
    ],
)
def test_ozon_push_nonsense_answer_is_payload_error(response):
    client, _ = make_client(lambda request: response)
    with pytest.raises(PayloadError):
        client.push_stock(UPDATES)


# -- read-back ---------------------------------------------------------------------------------


def read_handler(info_pages: list[dict[str, Any]], rows: list[dict[str, Any]]) -> Handler:
    pages = iter(info_pages)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v4/product/info/stocks":
            return httpx.Response(200, json=next(pages))
        assert request.url.path == "/v1/product/info/stocks-by-warehouse/fbs"
        return httpx.Response(200, json={"result": rows})

    return handler


def info_item(offer_id: str, sku: int, kind: str = "fbs") -> dict[str, Any]:
    stock = {"type": kind, "sku": sku, "present": 99, "reserved": 9, "warehouse_ids": []}
    return {"offer_id": offer_id, "product_id": sku + 1, "stocks": [stock]}


def wh_row(sku: int, present: int, reserved: int, warehouse: int = WAREHOUSE) -> dict[str, Any]:
    return {"sku": sku, "warehouse_id": warehouse, "present": present, "reserved": reserved}


def test_ozon_read_stock_resolves_skus_then_reads_the_warehouse():
    info = {"cursor": "", "total": 2, "items": [info_item("A", 11), info_item("B", 22)]}
    rows = [wh_row(11, 12, 2), wh_row(11, 500, 0, warehouse=999), wh_row(22, 3, 0)]
    client, seen = make_client(read_handler([info], rows), read_api="v1")
    stock = client.read_stock(["A", "B", "UNKNOWN"])
    assert set(stock) == {"A", "B"}
    assert (stock["A"].sellable, stock["A"].present, stock["A"].reserved) == (10, 12, 2)
    assert stock["B"].sellable == 3
    info_request, warehouse_request = seen
    assert body(info_request) == {
        "cursor": "",
        "filter": {"offer_id": ["A", "B", "UNKNOWN"], "visibility": "ALL"},
        "limit": 1000,
    }
    assert body(warehouse_request) == {"sku": ["11", "22"]}


def test_ozon_read_stock_known_sku_without_warehouse_row_reads_zero():
    info = {"cursor": "", "items": [info_item("A", 11)]}
    client, _ = make_client(read_handler([info], [wh_row(11, 5, 0, warehouse=1)]), read_api="v1")
    stock = client.read_stock(["A"])
    assert (stock["A"].sellable, stock["A"].present, stock["A"].reserved) == (0, 0, 0)


def test_ozon_read_stock_follows_the_v4_cursor_and_prefers_the_fbs_sku():
    pages = [
        {"cursor": "c1", "items": [info_item("A", 11)]},
        {
            "cursor": "c2",
            "items": [
                {
                    "offer_id": "B",
                    "stocks": [{"type": "fbo", "sku": 77}, {"type": "fbs", "sku": 22}],
                }
            ],
        },
        {"cursor": "c2", "items": []},
    ]
    client, seen = make_client(
        read_handler(pages, [wh_row(11, 1, 0), wh_row(22, 2, 0)]), read_api="v1"
    )
    stock = client.read_stock(["A", "B"])
    assert {k: v.sellable for k, v in stock.items()} == {"A": 1, "B": 2}
    assert [body(r).get("cursor") for r in seen[:3]] == ["", "c1", "c2"]
    assert body(seen[3]) == {"sku": ["11", "22"]}


def test_ozon_read_stock_of_unknown_offers_skips_the_second_call():
    client, seen = make_client(read_handler([{"cursor": "", "items": []}], []), read_api="v1")
    assert client.read_stock(["NOPE"]) == {}
    assert [r.url.path for r in seen] == ["/v4/product/info/stocks"]


def v2_row(offer: str, present: int, reserved: int, **extra: Any) -> dict[str, Any]:
    row = {"offer_id": offer, "sku": 1, "warehouse_id": WAREHOUSE, "present": present}
    return row | {"reserved": reserved, "warehouse_name": "Main"} | extra


def v2_handler(pages: list[dict[str, Any]]) -> Handler:
    answers = iter(pages)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v4/product/info/stocks":  # offers without any row
            return httpx.Response(200, json={"cursor": "", "items": [info_item("C", 33)]})
        assert request.url.path == "/v2/product/info/stocks-by-warehouse/fbs"
        return httpx.Response(200, json=next(answers))

    return handler


def test_ozon_read_stock_v2_asks_by_offer_id_and_follows_the_cursor():
    pages = [
        {"cursor": "c1", "has_next": True, "products": [v2_row("A", 12, 2, free_stock=10)]},
        {
            "cursor": "",
            "has_next": False,
            "products": [v2_row("B", 3, 0), v2_row("A", 500, 0, warehouse_id=999)],
        },
    ]
    client, seen = make_client(v2_handler(pages))
    stock = client.read_stock(["A", "B", "UNKNOWN", "A"])
    assert {k: (v.sellable, v.present, v.reserved) for k, v in stock.items()} == {
        "A": (10, 12, 2),
        "B": (3, 3, 0),
    }
    assert [body(r) for r in seen] == [
        {"cursor": "", "limit": 100, "offer_id": ["A", "B", "UNKNOWN"]},
        {"cursor": "c1", "limit": 100, "offer_id": ["A", "B", "UNKNOWN"]},
        # Only the offer without any row is looked up (known: 0; unknown: left out).
        {"cursor": "", "filter": {"offer_id": ["UNKNOWN"], "visibility": "ALL"}, "limit": 1000},
    ]


def test_ozon_read_stock_v2_sellable_is_free_stock_else_present_minus_reserved():
    rows = [v2_row("A", 12, 2, free_stock=9), v2_row("B", 12, 2), v2_row("D", 4, 0, warehouse_id=7)]
    client, _ = make_client(v2_handler([{"products": rows}]))
    stock = client.read_stock(["A", "B", "C", "D", "E"])
    # D: rows only elsewhere; C: no row at all but an SKU in v4 -> both 0 here. E: unknown.
    assert {k: v.sellable for k, v in stock.items()} == {"A": 9, "B": 10, "C": 0, "D": 0}
    assert (stock["D"].present, stock["D"].reserved) == (0, 0)


def test_ozon_read_stock_v2_chunks_offer_ids_by_100():
    client, seen = make_client(lambda request: httpx.Response(200, json={"products": []}))
    assert client.read_stock([f"O{i}" for i in range(250)]) == {}
    v2 = [r for r in seen if r.url.path == "/v2/product/info/stocks-by-warehouse/fbs"]
    assert [len(body(r)["offer_id"]) for r in v2] == [100, 100, 50]


# -- postings ----------------------------------------------------------------------------------


def posting(number: str, status: str, *, after_ship: bool = False, products=None):
    return {
        "posting_number": number,
        "order_id": 1,
        "status": status,
        "substatus": "",
        "in_process_at": "2025-08-25T10:48:38Z",
        "products": products or [{"sku": 140048123, "offer_id": "A", "quantity": 1}],
        "cancellation": {"cancelled_after_ship": after_ship},
    }


def listing(postings: list[dict[str, Any]], *, has_next: bool = False) -> Handler:
    return lambda request: httpx.Response(
        200, json={"result": {"postings": postings, "has_next": has_next}}
    )


def test_ozon_list_orders_first_poll_reads_the_last_day_of_status_changes():
    client, seen = make_client(listing([posting("1-1-1", "awaiting_packaging")]))
    page = client.list_orders(None)
    end = NOW + timedelta(seconds=1)
    assert body(seen[0]) == {
        "dir": "ASC",
        "filter": {
            "since": "2024-08-30T12:00:01Z",
            "to": "2025-08-25T12:00:01Z",
            "last_changed_status_date": {
                "from": "2025-08-24T12:00:01Z",
                "to": "2025-08-25T12:00:01Z",
            },
            "warehouse_id": [str(WAREHOUSE)],
        },
        "limit": 1000,
        "offset": 0,
    }
    assert end - FIRST_POLL_WINDOW == datetime(2025, 8, 24, 12, 0, 1, tzinfo=UTC)
    assert not page.more
    assert page.cursor == "2025-08-25T11:58:01Z"  # window end minus the overlap
    assert end - POLL_OVERLAP == datetime(2025, 8, 25, 11, 58, 1, tzinfo=UTC)
    (order,) = page.orders
    assert (order.order_id, order.action, order.status) == (
        "1-1-1",
        OrderAction.RESERVE,
        "awaiting_packaging",
    )
    assert order.lines == (ChannelLine("140048123", 1),)
    assert not order.needs_lines


def test_ozon_list_orders_pages_with_a_resume_cursor():
    client, seen = make_client(listing([posting("1-1-1", "delivering")], has_next=True))
    page = client.list_orders("2025-08-25T11:00:00Z")
    assert page.more
    assert page.cursor == "2025-08-25T11:00:00Z|2025-08-25T12:00:01Z|1"
    assert body(seen[0])["filter"]["last_changed_status_date"]["from"] == "2025-08-25T11:00:00Z"
    client2, seen2 = make_client(listing([posting("2-2-2", "delivered")]))
    last = client2.list_orders(page.cursor)
    assert body(seen2[0])["offset"] == 1
    assert body(seen2[0])["filter"]["to"] == "2025-08-25T12:00:01Z"
    assert not last.more
    assert last.cursor == "2025-08-25T11:58:01Z"


def test_ozon_list_orders_recent_cursor_is_kept_when_polling_fast():
    client, _ = make_client(listing([]))
    assert client.list_orders("2025-08-25T11:59:30Z").cursor == "2025-08-25T11:59:30Z"


@pytest.mark.parametrize("cursor", ["yesterday", "2025-08-25T11:00:00", "a|b|c", "x|y"])
def test_ozon_list_orders_refuses_foreign_cursors(cursor):
    client, _ = make_client(listing([]))
    with pytest.raises(ValueError, match="cursor"):
        client.list_orders(cursor)


@pytest.mark.parametrize(
    ("status", "after_ship", "action"),
    [
        ("awaiting_deliver", False, OrderAction.COMMIT),
        ("delivered", False, OrderAction.FINAL),
        ("cancelled", False, OrderAction.RELEASE),
        ("cancelled", True, OrderAction.CANCEL_AFTER_SHIP),
        ("arbitration", False, OrderAction.HOLD),
        ("some_new_status", False, OrderAction.IGNORE),
    ],
)
def test_ozon_list_orders_maps_statuses(status, after_ship, action):
    client, _ = make_client(listing([posting("9-9-9", status, after_ship=after_ship)]))
    (order,) = client.list_orders(None).orders
    assert order.action is action
    assert order.event_key == f"9-9-9|{status}|{int(after_ship)}"


def test_ozon_posting_lines_merge_repeated_skus():
    products = [
        {"sku": 1, "offer_id": "A", "quantity": 2},
        {"sku": 2, "offer_id": "B", "quantity": 1},
        {"sku": 1, "offer_id": "A", "quantity": 1},
    ]
    client, _ = make_client(listing([posting("9-9-9", "awaiting_packaging", products=products)]))
    (order,) = client.list_orders(None).orders
    assert order.lines == (ChannelLine("1", 3), ChannelLine("2", 1))


def test_ozon_list_unfulfilled_uses_the_cutoff_window_and_pages_by_length(monkeypatch):
    monkeypatch.setattr("inventory_engine.channels.ozon.ORDERS_PAGE_LIMIT", 2)
    pages = iter(
        [
            [posting("1", "awaiting_packaging"), posting("2", "awaiting_deliver")],
            [posting("3", "awaiting_approve")],
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"result": {"postings": next(pages), "count": 3}})

    client, seen = make_client(handler)
    orders = client.list_unfulfilled()
    assert [o.order_id for o in orders] == ["1", "2", "3"]
    assert [o.action for o in orders] == [
        OrderAction.RESERVE,
        OrderAction.COMMIT,
        OrderAction.RESERVE,
    ]
    assert [r.url.path for r in seen] == ["/v3/posting/fbs/unfulfilled/list"] * 2
    first = body(seen[0])
    assert first["filter"] == {
        "cutoff_from": "2025-07-26T12:00:00Z",
        "cutoff_to": "2025-10-24T12:00:00Z",
        "warehouse_id": [WAREHOUSE],
    }
    assert (first["limit"], first["offset"], body(seen[1])["offset"]) == (2, 0, 2)


def test_ozon_get_order_reads_one_posting():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"result": posting("5-5-5", "cancelled", after_ship=True)})

    client, seen = make_client(handler)
    order = client.get_order("5-5-5")
    assert order is not None
    assert order.action is OrderAction.CANCEL_AFTER_SHIP
    assert order.lines == (ChannelLine("140048123", 1),)
    assert seen[0].url.path == "/v3/posting/fbs/get"
    assert body(seen[0]) == {"posting_number": "5-5-5"}


def test_ozon_get_order_unknown_posting_is_none():
    client, _ = make_client(lambda request: ozon_error(404, 5, "posting not found"))
    assert client.get_order("nope") is None


def test_ozon_get_order_on_a_retired_path_raises_instead_of_answering_not_known():
    """A router's bare 404 (no JSON error body) means the method is gone, not the posting."""
    client, _ = make_client(lambda request: httpx.Response(404, text="404 page not found"))
    with pytest.raises(ChannelEndpointRetiredError):
        client.get_order("5-5-5")


def test_ozon_get_order_other_errors_raise():
    client, _ = make_client(lambda request: ozon_error(400, 3, "bad"))
    with pytest.raises(ChannelRejectedError):
        client.get_order("x")
