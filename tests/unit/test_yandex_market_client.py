"""Yandex Market client on MockTransport: exact requests, 420 mapping, read-back, orders."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from inventory_engine.channels.base import (
    ChannelClient,
    ChannelRateLimitedError,
    ChannelRejectedError,
    ChannelUnavailableError,
    ItemOutcome,
    PayloadError,
    StockUpdate,
)
from inventory_engine.channels.yandex_market import (
    DEFAULT_RETRY_S,
    MAX_BATCH,
    MAX_COUNT,
    YandexMarketClient,
    parse_ym_datetime,
)
from inventory_engine.config import YandexMarketSettings
from inventory_engine.domain.models import OrderAction

API_KEY = "ACMA:secret-key-value:1234"
CAMPAIGN = 21000000
BUSINESS = 11000000
NOW = datetime(2025, 1, 16, 12, 0, 0, tzinfo=UTC)
STOCKS_URL = f"https://api.partner.market.yandex.ru/v2/campaigns/{CAMPAIGN}/offers/stocks"
ORDERS_PATH = f"/v1/businesses/{BUSINESS}/orders"


def make_client(handler, seen: list[httpx.Request] | None = None) -> YandexMarketClient:
    def record(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return handler(request)

    http = httpx.Client(
        base_url="https://api.partner.market.yandex.ru", transport=httpx.MockTransport(record)
    )
    return YandexMarketClient(
        http,
        name="ym",
        api_key=SecretStr(API_KEY),
        campaign_id=CAMPAIGN,
        business_id=BUSINESS,
        clock=lambda: NOW,
    )


def ok(_: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"status": "OK"})


def ym_error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    body = {"status": "ERROR", "errors": [{"code": code, "message": message}]}
    return httpx.Response(status, json=body, headers=headers)


def order(order_id: int, status: str, substatus: str, update: str, items=(("A-1", 2),)) -> dict:
    return {
        "orderId": order_id,
        "campaignId": CAMPAIGN,
        "status": status,
        "substatus": substatus,
        "creationDate": "2025-01-16T10:00:00+03:00",
        "updateDate": update,
        "items": [
            {"id": n, "offerId": o, "offerName": o, "count": c} for n, (o, c) in enumerate(items)
        ],
    }


# -- push ----------------------------------------------------------------------------------------


def test_push_stock_sends_one_item_per_sku_with_api_key_and_offset_time():
    seen: list[httpx.Request] = []
    result = make_client(ok, seen).push_stock(
        [StockUpdate("A", "A-1", 7), StockUpdate("B", "B-1", 0)]
    )
    assert [r.outcome for r in result.items] == [ItemOutcome.ACCEPTED] * 2
    (request,) = seen
    assert request.method == "PUT"
    assert str(request.url) == STOCKS_URL
    assert request.headers["Api-Key"] == API_KEY
    assert json.loads(request.content) == {
        "skus": [
            {"sku": "A-1", "items": [{"count": 7, "updatedAt": "2025-01-16T12:00:00+00:00"}]},
            {"sku": "B-1", "items": [{"count": 0, "updatedAt": "2025-01-16T12:00:00+00:00"}]},
        ]
    }


def test_push_stock_empty_sends_nothing():
    seen: list[httpx.Request] = []
    assert make_client(ok, seen).push_stock([]).items == ()
    assert seen == []


def test_push_stock_more_than_max_batch_raises():
    updates = [StockUpdate(f"S{i}", f"S{i}", 1) for i in range(MAX_BATCH + 1)]
    with pytest.raises(ValueError, match="2000"):
        make_client(ok).push_stock(updates)


def test_push_stock_max_batch_is_one_request():
    seen: list[httpx.Request] = []
    updates = [StockUpdate(f"S{i}", f"S{i}", 1) for i in range(MAX_BATCH)]
    make_client(ok, seen).push_stock(updates)
    assert len(json.loads(seen[0].content)["skus"]) == MAX_BATCH


def test_push_stock_duplicate_offer_raises():
    with pytest.raises(ValueError, match="twice"):
        make_client(ok).push_stock([StockUpdate("A", "A-1", 1), StockUpdate("A", "A-1", 2)])


def test_push_stock_rejects_locally_what_ym_would_refuse_and_sends_the_rest():
    seen: list[httpx.Request] = []
    updates = [
        StockUpdate("big", "BIG", MAX_COUNT + 1),
        StockUpdate("neg", "NEG", -1),
        StockUpdate("bad", "bad\nsku", 1),
        StockUpdate("max", "MAX", MAX_COUNT),
    ]
    result = make_client(ok, seen).push_stock(updates)
    assert [(r.outcome, r.code) for r in result.items] == [
        (ItemOutcome.REJECTED, "COUNT_OUT_OF_RANGE"),
        (ItemOutcome.REJECTED, "COUNT_OUT_OF_RANGE"),
        (ItemOutcome.REJECTED, "INVALID_SKU"),
        (ItemOutcome.ACCEPTED, ""),
    ]
    assert [s["sku"] for s in json.loads(seen[0].content)["skus"]] == ["MAX"]


def test_push_stock_all_rejected_locally_sends_nothing():
    seen: list[httpx.Request] = []
    result = make_client(ok, seen).push_stock([StockUpdate("big", "BIG", MAX_COUNT + 1)])
    assert result.items[0].outcome is ItemOutcome.REJECTED
    assert seen == []


def test_push_stock_420_uses_ratelimit_until_header():
    until = "Thu, 16 Jan 2025 12:00:42 GMT"

    def handler(_: httpx.Request) -> httpx.Response:
        return ym_error(
            420, "LIMIT_EXCEEDED", "Hit rate limit", **{"X-RateLimit-Resource-Until": until}
        )

    with pytest.raises(ChannelRateLimitedError) as caught:
        make_client(handler).push_stock([StockUpdate("A", "A-1", 1)])
    assert caught.value.retry_after_s == pytest.approx(42)
    assert "LIMIT_EXCEEDED" in str(caught.value)


@pytest.mark.parametrize(
    "headers", [{}, {"X-RateLimit-Resource-Until": "not a date"}], ids=["none", "garbage"]
)
def test_push_stock_420_without_usable_until_waits_default(headers):
    def handler(_: httpx.Request) -> httpx.Response:
        return ym_error(420, "LIMIT_EXCEEDED", "Hit rate limit of 2 parallel requests", **headers)

    with pytest.raises(ChannelRateLimitedError) as caught:
        make_client(handler).push_stock([StockUpdate("A", "A-1", 1)])
    assert caught.value.retry_after_s == DEFAULT_RETRY_S


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "5"}, 5.0),
        ({"X-RateLimit-Resource-Until": "not a date", "Retry-After": "5"}, 5.0),
        ({"Retry-After": "Thu, 16 Jan 2025 12:00:07 GMT"}, 7.0),
        (
            {
                "X-RateLimit-Resource-Until": "Thu, 16 Jan 2025 12:00:42 GMT",
                "Retry-After": "5",
            },
            42.0,
        ),
    ],
    ids=["seconds", "garbage-until", "date", "until-first"],
)
def test_push_stock_420_falls_back_to_retry_after(headers, expected):
    def handler(_: httpx.Request) -> httpx.Response:
        return ym_error(420, "LIMIT_EXCEEDED", "Hit rate limit", **headers)

    with pytest.raises(ChannelRateLimitedError) as caught:
        make_client(handler).push_stock([StockUpdate("A", "A-1", 1)])
    assert caught.value.retry_after_s == pytest.approx(expected)


def test_push_stock_420_until_in_the_past_waits_at_least_a_second():
    def handler(_: httpx.Request) -> httpx.Response:
        return ym_error(
            420,
            "LIMIT_EXCEEDED",
            "x",
            **{"X-RateLimit-Resource-Until": "Thu, 16 Jan 2025 11:00:00 GMT"},
        )

    with pytest.raises(ChannelRateLimitedError) as caught:
        make_client(handler).push_stock([StockUpdate("A", "A-1", 1)])
    assert caught.value.retry_after_s == 1.0


def test_push_stock_400_rejects_whole_batch_with_ym_codes():
    def handler(_: httpx.Request) -> httpx.Response:
        return ym_error(400, "BAD_REQUEST", "Duplicate sku in request: 'A-1'")

    with pytest.raises(ChannelRejectedError) as caught:
        make_client(handler).push_stock([StockUpdate("A", "A-1", 1)])
    assert caught.value.status_code == 400
    assert "BAD_REQUEST: Duplicate sku" in str(caught.value)
    assert caught.value.response is not None


@pytest.mark.parametrize("status", [401, 403, 404])
def test_push_stock_auth_errors_never_show_the_api_key(status):
    def handler(request: httpx.Request) -> httpx.Response:
        return ym_error(status, "UNAUTHORIZED", f"token {request.headers['Api-Key'][:4]} invalid")

    client = make_client(handler)
    with pytest.raises(ChannelRejectedError) as caught:
        client.push_stock([StockUpdate("A", "A-1", 1)])
    assert caught.value.status_code == status
    assert API_KEY not in str(caught.value)
    assert API_KEY not in repr(client)
    assert "secret-key-value" not in repr(client.__dict__)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_push_stock_5xx_is_unavailable(status):
    def handler(_: httpx.Request) -> httpx.Response:
        return ym_error(status, "INTERNAL_ERROR", "boom")

    with pytest.raises(ChannelUnavailableError):
        make_client(handler).push_stock([StockUpdate("A", "A-1", 1)])


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout("slow"), httpx.ConnectError("refused")], ids=["timeout", "connect"]
)
def test_push_stock_transport_failures_are_unavailable(exc):
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(ChannelUnavailableError) as caught:
        make_client(handler).push_stock([StockUpdate("A", "A-1", 1)])
    assert API_KEY not in str(caught.value)


def test_push_stock_200_with_status_error_is_retry_per_item():
    def handler(_: httpx.Request) -> httpx.Response:
        return ym_error(200, "SOME_CODE", "not now")

    result = make_client(handler).push_stock([StockUpdate("A", "A-1", 1)])
    assert (result.items[0].outcome, result.items[0].code) == (ItemOutcome.RETRY, "SOME_CODE")


def test_push_stock_200_not_json_is_payload_error():
    with pytest.raises(PayloadError):
        make_client(lambda _: httpx.Response(200, text="<html>")).push_stock(
            [StockUpdate("A", "A-1", 1)]
        )


# -- read-back -----------------------------------------------------------------------------------


def stocks_answer(offers: list[dict], warehouse: int = 1, token: str | None = None) -> dict:
    result: dict = {"warehouses": [{"warehouseId": warehouse, "offers": offers}]}
    if token:
        result["paging"] = {"nextPageToken": token}
    return {"status": "OK", "result": result}


def test_read_stock_posts_offer_ids_without_paging_and_takes_available():
    seen: list[httpx.Request] = []

    def handler(_: httpx.Request) -> httpx.Response:
        offers = [
            {
                "offerId": "A-1",
                "stocks": [
                    {"type": "FIT", "count": 9},
                    {"type": "FREEZE", "count": 2},
                    {"type": "AVAILABLE", "count": 7},
                ],
            },
            {
                "offerId": "B-1",
                "stocks": [{"type": "FIT", "count": 5}, {"type": "FREEZE", "count": 1}],
            },
            {"offerId": "C-1", "stocks": []},
        ]
        return httpx.Response(200, json=stocks_answer(offers))

    found = make_client(handler, seen).read_stock(["A-1", "B-1", "C-1", "D-1"])
    assert (found["A-1"].sellable, found["A-1"].present, found["A-1"].reserved) == (7, 9, 2)
    assert found["B-1"].sellable == 4  # FIT - FREEZE without AVAILABLE
    assert found["C-1"].sellable == 0
    assert "D-1" not in found
    (request,) = seen
    assert (request.method, str(request.url)) == ("POST", STOCKS_URL)
    assert json.loads(request.content) == {"offerIds": ["A-1", "B-1", "C-1", "D-1"]}


def test_read_stock_chunks_100_offer_ids_per_request():
    # Read pages are at most 100 since 4 Aug 2026: 100 ids keep each answer within one page.
    seen: list[httpx.Request] = []
    ids = [f"S{i}" for i in range(250)]
    make_client(lambda _: httpx.Response(200, json=stocks_answer([])), seen).read_stock(ids)
    assert [len(json.loads(r.content)["offerIds"]) for r in seen] == [100, 100, 50]
    assert all("limit" not in r.url.params for r in seen)


def test_read_stock_skips_ids_ym_could_not_hold():
    seen: list[httpx.Request] = []
    make_client(lambda _: httpx.Response(200, json=stocks_answer([])), seen).read_stock(
        ["A-1", "bad\nid", "A-1"]
    )
    assert json.loads(seen[0].content) == {"offerIds": ["A-1"]}


def test_read_stock_takes_largest_warehouse_figure_not_a_sum():
    def handler(_: httpx.Request) -> httpx.Response:
        body = {
            "status": "OK",
            "result": {
                "warehouses": [
                    {
                        "warehouseId": 1,
                        "offers": [
                            {"offerId": "A-1", "stocks": [{"type": "AVAILABLE", "count": 4}]}
                        ],
                    },
                    {
                        "warehouseId": 2,
                        "offers": [
                            {"offerId": "A-1", "stocks": [{"type": "AVAILABLE", "count": 4}]}
                        ],
                    },
                ]
            },
        }
        return httpx.Response(200, json=body)

    assert make_client(handler).read_stock(["A-1"])["A-1"].sellable == 4


def test_read_stock_follows_a_next_page_token():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if "pageToken" not in request.url.params:
            offer = {"offerId": "A-1", "stocks": [{"type": "AVAILABLE", "count": 1}]}
            return httpx.Response(200, json=stocks_answer([offer], token="t2"))
        offer = {"offerId": "B-1", "stocks": [{"type": "AVAILABLE", "count": 2}]}
        return httpx.Response(200, json=stocks_answer([offer]))

    found = make_client(handler, seen).read_stock(["A-1", "B-1"])
    assert set(found) == {"A-1", "B-1"}
    assert seen[1].url.params["pageToken"] == "t2"


def test_read_stock_bad_shape_is_payload_error():
    with pytest.raises(PayloadError):
        make_client(
            lambda _: httpx.Response(200, json={"result": {"warehouses": [{"offers": 3}]}})
        ).read_stock(["A-1"])


# -- orders --------------------------------------------------------------------------------------


def test_list_orders_first_poll_asks_last_24h_for_this_campaign():
    seen: list[httpx.Request] = []
    orders = [
        order(1, "PROCESSING", "STARTED", "2025-01-16T13:00:00+03:00"),
        order(2, "CANCELLED", "PICKUP_EXPIRED", "2025-01-16T14:30:00+03:00"),
        order(3, "DELIVERY", "DELIVERY_SERVICE_RECEIVED", "16-01-2025 14:00:00"),
    ]
    page = make_client(lambda _: httpx.Response(200, json={"orders": orders}), seen).list_orders(
        None
    )
    (request,) = seen
    assert request.url.path == ORDERS_PATH
    assert request.url.params["limit"] == "50"
    assert json.loads(request.content) == {
        "campaignIds": [CAMPAIGN],
        "dates": {"updateDateFrom": "2025-01-15T12:00:00+00:00"},
    }
    assert [(o.order_id, o.action) for o in page.orders] == [
        ("1", OrderAction.RESERVE),
        ("2", OrderAction.CANCEL_AFTER_SHIP),
        ("3", OrderAction.COMMIT),
    ]
    assert page.orders[0].lines[0].item_id == "A-1"
    assert page.orders[0].status == "PROCESSING/STARTED"
    assert page.orders[2].changed_at == "2025-01-16T11:00:00+00:00"  # legacy format, Moscow
    assert page.cursor == "2025-01-16T11:30:00+00:00"
    assert page.more is False


def test_list_orders_sums_lines_of_the_same_offer():
    orders = [
        order(
            1,
            "PROCESSING",
            "STARTED",
            "2025-01-16T13:00:00+03:00",
            items=(("A-1", 2), ("A-1", 1), ("B-1", 1)),
        )
    ]
    page = make_client(lambda _: httpx.Response(200, json={"orders": orders})).list_orders(None)
    assert [(line.item_id, line.quantity) for line in page.orders[0].lines] == [
        ("A-1", 3),
        ("B-1", 1),
    ]


def test_list_orders_follows_pages_and_skips_other_campaigns():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("pageToken") == "p2":
            other = order(9, "PROCESSING", "STARTED", "2025-01-16T14:00:00+03:00")
            other["campaignId"] = 99
            return httpx.Response(200, json={"orders": [other]})
        first = order(1, "PROCESSING", "STARTED", "2025-01-16T13:00:00+03:00")
        return httpx.Response(200, json={"orders": [first], "paging": {"nextPageToken": "p2"}})

    page = make_client(handler, seen).list_orders("2025-01-16T09:00:00+00:00")
    assert [o.order_id for o in page.orders] == ["1"]
    assert len(seen) == 2
    assert page.cursor == "2025-01-16T10:00:00+00:00"


def test_list_orders_keeps_cursor_when_nothing_changed():
    page = make_client(lambda _: httpx.Response(200, json={"orders": []})).list_orders(
        "2025-01-16T09:00:00+00:00"
    )
    assert (page.orders, page.cursor, page.more) == ((), "2025-01-16T09:00:00+00:00", False)


def test_list_orders_old_cursor_walks_30_day_windows():
    seen: list[httpx.Request] = []
    since = NOW - timedelta(days=45)
    page = make_client(lambda _: httpx.Response(200, json={"orders": []}), seen).list_orders(
        since.isoformat()
    )
    dates = json.loads(seen[0].content)["dates"]
    assert dates == {
        "updateDateFrom": since.isoformat(),
        "updateDateTo": (since + timedelta(days=30)).isoformat(),
    }
    assert page.more is True
    assert page.cursor == (since + timedelta(days=30)).isoformat()


def test_list_orders_bad_cursor_raises_value_error():
    with pytest.raises(ValueError, match="yesterday"):
        make_client(ok).list_orders("yesterday")


def test_get_order_filters_by_order_id_and_campaign():
    seen: list[httpx.Request] = []
    answer = {"orders": [order(51, "PROCESSING", "READY_TO_SHIP", "2025-01-16T13:00:00+03:00")]}
    found = make_client(lambda _: httpx.Response(200, json=answer), seen).get_order("51")
    assert found is not None
    assert (found.order_id, found.action, found.lines[0].quantity) == ("51", OrderAction.RESERVE, 2)
    assert json.loads(seen[0].content) == {"orderIds": [51], "campaignIds": [CAMPAIGN]}


def test_get_order_unknown_or_non_numeric_is_none():
    seen: list[httpx.Request] = []
    client = make_client(lambda _: httpx.Response(200, json={"orders": []}), seen)
    assert client.get_order("51") is None
    assert client.get_order("not-a-number") is None
    assert len(seen) == 1


def test_orders_420_maps_to_rate_limited():
    def handler(_: httpx.Request) -> httpx.Response:
        return ym_error(420, "LIMIT_EXCEEDED", "Hit rate limit of 10000 requests per hour")

    with pytest.raises(ChannelRateLimitedError):
        make_client(handler).list_orders(None)


# -- misc ----------------------------------------------------------------------------------------


def test_parse_ym_datetime_reads_iso_nanoseconds_and_legacy_format():
    assert parse_ym_datetime("2025-01-16T10:09:49.759084017Z") == datetime(
        2025, 1, 16, 10, 9, 49, 759084, tzinfo=UTC
    )
    assert parse_ym_datetime("23-09-2022 09:12:41") == datetime(2022, 9, 23, 6, 12, 41, tzinfo=UTC)
    with pytest.raises(ValueError, match="offset"):
        parse_ym_datetime("2025-01-16T10:09:49")


def test_from_settings_builds_a_channel_client():
    settings = YandexMarketSettings(
        kind="yandex_market",
        name="ym",
        base_url="https://api.partner.market.yandex.ru",
        api_key=SecretStr(API_KEY),
        campaign_id=CAMPAIGN,
        business_id=BUSINESS,
    )
    client = YandexMarketClient.from_settings(settings, httpx.Client())
    assert isinstance(client, ChannelClient)
    assert (client.kind, client.max_batch, client.catalog_field) == (
        "yandex_market",
        2000,
        "ym_offer_id",
    )
    assert (client.name, client.campaign_id, client.business_id) == ("ym", CAMPAIGN, BUSINESS)


def test_list_orders_odd_date_keeps_the_order_without_a_time():
    orders = [order(1, "PROCESSING", "STARTED", "sometime")]
    page = make_client(lambda _: httpx.Response(200, json={"orders": orders})).list_orders(
        "2025-01-16T09:00:00+00:00"
    )
    assert [(o.order_id, o.changed_at) for o in page.orders] == [("1", None)]
    assert page.cursor == "2025-01-16T09:00:00+00:00"
