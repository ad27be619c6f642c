"""Shared helpers of channels/base.py: retry times, send(), local checks, answers."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from pydantic import BaseModel

from inventory_engine.channels.base import (
    ChannelRateLimitedError,
    ChannelRejectedError,
    ChannelUnavailableError,
    ItemOutcome,
    ItemResult,
    PayloadError,
    StockUpdate,
    chunks,
    push_with_local_checks,
)
from inventory_engine.channels.http import (
    parse_answer,
    parse_retry_after,
    retry_after_from,
    retry_delay_s,
    send,
)

SECRET = "shop-secret-123"
UPDATES = [StockUpdate("A", "A", 3), StockUpdate("Б-2", "Б-2", 0)]


# -- shared helpers of channels/base.py --------------------------------------------------------

NOW = datetime(2025, 1, 16, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("2.5", 2.5),
        ("Thu, 16 Jan 2025 12:00:42 GMT", 42.0),
        ("Thu, 16 Jan 2025 15:00:42 +0300", 42.0),
        ("Thu, 16 Jan 2025 11:00:00 GMT", 0.0),
        ("-3", None),
        ("soon", None),
        ("", None),
        ("Thu, 16 Jan 2025 12:00:42 -0000", None),
        ("Thu, 99 Jan 2025 12:00:42 GMT", None),
        (None, None),
    ],
)
def test_retry_delay_reads_seconds_or_an_http_date(value, expected):
    assert retry_delay_s(value, now=lambda: NOW) == expected


def test_retry_delay_of_a_date_has_a_floor_when_asked():
    past = "Thu, 16 Jan 2025 11:00:00 GMT"
    assert retry_delay_s(past, now=lambda: NOW, min_date_s=1.0) == 1.0
    assert retry_delay_s("0", now=lambda: NOW, min_date_s=1.0) == 0.0  # seconds: as given


def test_parse_retry_after_falls_back_to_the_default():
    assert parse_retry_after("soon", 60.0) == 60.0
    assert parse_retry_after(None, 60.0) == 60.0
    assert parse_retry_after("Thu, 16 Jan 2025 12:00:10 GMT", 60.0, now=lambda: NOW) == 10.0


def test_retry_after_from_tries_the_headers_in_order():
    headers = httpx.Headers({"X-Wait": "later", "Retry-After": "3", "X-Other": "9"})
    assert retry_after_from(headers, ("X-Wait", "Retry-After", "X-Other"), 1.0) == 3.0
    assert retry_after_from(headers, ("X-Other", "Retry-After"), 1.0) == 9.0
    assert retry_after_from(headers, "Retry-After", 1.0) == 3.0
    assert retry_after_from(headers, ("X-Missing",), 1.0) == 1.0


def send_once(response: httpx.Response, **options) -> httpx.Response:
    with httpx.Client(transport=httpx.MockTransport(lambda request: response)) as http:
        return send(http, "shop", "POST", "https://shop.example/x", **options)


def test_send_reads_a_tuple_of_retry_headers_and_a_date_on_the_given_clock():
    response = httpx.Response(
        420, headers={"X-Until": "Thu, 16 Jan 2025 12:00:30 GMT", "Retry-After": "5"}
    )
    with pytest.raises(ChannelRateLimitedError) as caught:
        send_once(
            response,
            rate_limit_statuses=(420,),
            retry_header=("X-Until", "Retry-After"),
            now=lambda: NOW,
        )
    assert caught.value.retry_after_s == 30.0


def test_send_words_4xx_with_describe_but_5xx_with_the_body():
    def describe(response: httpx.Response) -> str:
        return f"described {response.status_code}"

    with pytest.raises(ChannelRejectedError) as rejected:
        send_once(httpx.Response(400, text="raw body"), describe=describe)
    with pytest.raises(ChannelRateLimitedError) as limited:
        send_once(httpx.Response(429, text="raw body"), describe=describe)
    with pytest.raises(ChannelUnavailableError) as unavailable:
        send_once(httpx.Response(503, text="raw body"), describe=describe)
    assert "described 400" in str(rejected.value)
    assert "described 429" in str(limited.value)
    assert "raw body" in str(unavailable.value)
    assert "described" not in str(unavailable.value)


def test_push_with_local_checks_sends_only_what_passes_and_keeps_the_order():
    updates = [StockUpdate(s, s, q) for s, q in (("A", 1), ("B", -1), ("C", 2), ("D", -5))]
    sent: list[list[tuple[int, StockUpdate]]] = []

    def check(update: StockUpdate) -> tuple[str, str] | None:
        return ("NEGATIVE", f"{update.quantity} < 0") if update.quantity < 0 else None

    def push(batch: list[tuple[int, StockUpdate]]) -> dict[int, ItemResult]:
        sent.append(batch)
        return {i: ItemResult(u, ItemOutcome.ACCEPTED) for i, u in batch}

    result = push_with_local_checks(updates, check, push)
    assert sent == [[(0, updates[0]), (2, updates[2])]]
    assert [(r.update.item_id, r.outcome, r.code) for r in result.items] == [
        ("A", ItemOutcome.ACCEPTED, ""),
        ("B", ItemOutcome.REJECTED, "NEGATIVE"),
        ("C", ItemOutcome.ACCEPTED, ""),
        ("D", ItemOutcome.REJECTED, "NEGATIVE"),
    ]
    assert result.items[1].message == "-1 < 0"


def test_push_with_local_checks_does_not_call_push_when_nothing_is_left():
    def push(batch: list[tuple[int, StockUpdate]]) -> dict[int, ItemResult]:
        raise AssertionError("nothing should be sent")

    result = push_with_local_checks([StockUpdate("A", "A", 1)], lambda u: ("NO", "no"), push)
    assert [r.outcome for r in result.items] == [ItemOutcome.REJECTED]


class _Answer(BaseModel):
    count: int


def test_parse_answer_validates_and_maps_bad_shapes_to_payload_errors():
    assert parse_answer("shop", _Answer, httpx.Response(200, json={"count": 3})).count == 3
    with pytest.raises(PayloadError, match="unexpected shop answer: 1 errors"):
        parse_answer("shop", _Answer, httpx.Response(200, json={}), what="shop answer")
    with pytest.raises(PayloadError, match="not JSON"):
        parse_answer("shop", _Answer, httpx.Response(200, text="<html>"))


def test_chunks_splits_in_order():
    assert list(chunks([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]
    assert list(chunks([], 2)) == []
