"""Yandex Market notifications: the §3.4 payloads mapped to ledger events, answers, bad bodies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from inventory_engine import __version__
from inventory_engine.channels.base import ChannelLine, PayloadError
from inventory_engine.channels.yandex_market_notifications import (
    WRONG_EVENT_FORMAT,
    answer_body,
    error_body,
    parse_notification,
)
from inventory_engine.domain.models import OrderAction

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "yandex_market"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def test_parse_notification_ping_has_no_orders():
    parsed = parse_notification(fixture("ping"))
    assert parsed.is_ping
    assert parsed.orders == ()
    assert parsed.time == "2025-01-16T10:09:49.759084017Z"


def test_parse_notification_order_created_reserves_its_lines():
    parsed = parse_notification(fixture("order_created"))
    (order,) = parsed.orders
    assert (order.order_id, order.action, order.needs_lines) == (
        "51000000",
        OrderAction.RESERVE,
        False,
    )
    assert order.lines == (ChannelLine("A-100", 2),)
    assert parsed.campaign_id == 21000000
    assert order.changed_at == "2025-01-16T10:09:49+00:00"
    assert order.event_key == "ORDER_CREATED|51000000|||2025-01-16T10:09:49+00:00"


def test_parse_notification_status_updated_has_no_lines_and_asks_for_them():
    (order,) = parse_notification(fixture("order_status_updated")).orders
    assert order.action is OrderAction.RESERVE  # READY_TO_SHIP: still YM's to release
    assert order.lines == ()
    assert order.needs_lines is True
    assert order.status == "PROCESSING/READY_TO_SHIP"
    assert order.event_key == (
        "ORDER_STATUS_UPDATED|51000000|PROCESSING|READY_TO_SHIP|2025-01-16T11:00:00+00:00"
    )


@pytest.mark.parametrize(
    ("status", "substatus", "action", "needs_lines"),
    [
        ("DELIVERY", "DELIVERY_SERVICE_RECEIVED", OrderAction.COMMIT, True),
        ("DELIVERED", "DELIVERY_SERVICE_DELIVERED", OrderAction.FINAL, True),
        ("CANCELLED", "USER_CHANGED_MIND", OrderAction.RELEASE, False),
        ("CANCELLED", "PICKUP_EXPIRED", OrderAction.CANCEL_AFTER_SHIP, True),
        ("RETURNED", "UNKNOWN", OrderAction.IGNORE, False),
        ("SOMETHING_NEW", "UNKNOWN", OrderAction.IGNORE, False),
    ],
)
def test_parse_notification_status_updated_uses_the_status_table(
    status, substatus, action, needs_lines
):
    payload = {**fixture("order_status_updated"), "status": status, "substatus": substatus}
    (order,) = parse_notification(payload).orders
    assert (order.action, order.needs_lines) == (action, needs_lines)


def test_parse_notification_order_cancelled_releases_with_lines():
    (order,) = parse_notification(fixture("order_cancelled")).orders
    assert (order.action, order.lines) == (OrderAction.RELEASE, (ChannelLine("A-100", 2),))
    assert order.status == "CANCELLED"
    assert order.needs_lines is False
    assert order.event_key == "ORDER_CANCELLED|51000000|||2025-01-16T12:00:00+00:00"


@pytest.mark.parametrize("name", ["order_cancellation_request", "order_return_created"])
def test_parse_notification_other_order_types_are_ignored(name):
    parsed = parse_notification(fixture(name))
    (order,) = parsed.orders
    assert (order.order_id, order.action, order.lines) == ("51000000", OrderAction.IGNORE, ())
    assert order.needs_lines is False


@pytest.mark.parametrize(
    "payload",
    [
        {"notificationType": "CHAT_CREATED", "businessId": 1, "chatId": 5, "createdAt": "x"},
        {"notificationType": "GOODS_FEEDBACK_CREATED", "feedbackId": 1},
        {"notificationType": "A_TYPE_FROM_THE_FUTURE"},
    ],
)
def test_parse_notification_unrelated_types_carry_no_order(payload):
    parsed = parse_notification(payload)
    assert parsed.orders == ()
    assert not parsed.is_ping


def test_parse_notification_other_campaign_is_ignored():
    (order,) = parse_notification(fixture("order_created"), campaign_id=99).orders
    assert order.action is OrderAction.IGNORE
    assert order.needs_lines is False
    (same,) = parse_notification(fixture("order_created"), campaign_id=21000000).orders
    assert same.action is OrderAction.RESERVE


def test_parse_notification_sums_repeated_offers():
    payload = fixture("order_created")
    payload["items"] = [{"offerId": "A", "count": 1}, {"offerId": "A", "count": 2}]
    (order,) = parse_notification(payload).orders
    assert order.lines == (ChannelLine("A", 3),)


def test_parse_notification_same_instant_written_two_ways_is_one_key():
    utc = parse_notification(fixture("order_status_updated")).orders[0].event_key
    moscow = {**fixture("order_status_updated"), "updatedAt": "2025-01-16T14:00:00+03:00"}
    assert parse_notification(moscow).orders[0].event_key == utc


def _without(name: str, key: str) -> dict[str, Any]:
    payload = fixture(name)
    del payload[key]
    return payload


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param([1, 2], id="not-an-object"),
        pytest.param({"orderId": 1}, id="no-type"),
        pytest.param({"notificationType": 5}, id="type-not-text"),
        pytest.param(_without("order_created", "orderId"), id="no-order-id"),
        pytest.param({**fixture("order_created"), "orderId": "51"}, id="order-id-text"),
        pytest.param(_without("order_created", "items"), id="no-items"),
        pytest.param({**fixture("order_created"), "items": []}, id="empty-items"),
        pytest.param({**fixture("order_created"), "items": [{"count": 1}]}, id="no-offer"),
        pytest.param(
            {**fixture("order_created"), "items": [{"offerId": "A", "count": 0}]}, id="zero"
        ),
        pytest.param(_without("order_created", "createdAt"), id="no-time"),
        pytest.param({**fixture("order_cancelled"), "cancelledAt": "soon"}, id="bad-time"),
        pytest.param(_without("order_status_updated", "status"), id="no-status"),
        pytest.param({**fixture("order_created"), "campaignId": "x"}, id="campaign-text"),
    ],
)
def test_parse_notification_malformed_is_wrong_event_format(payload):
    with pytest.raises(PayloadError) as caught:
        parse_notification(payload, channel="ym")
    assert caught.value.code == WRONG_EVENT_FORMAT
    assert caught.value.channel == "ym"


def test_answer_body_has_version_name_and_utc_time():
    started = datetime(2025, 1, 16, 10, 9, 49, 759000, tzinfo=UTC)
    body = answer_body(started_at=started)
    assert body == {
        "version": __version__,
        "name": "inventory-engine",
        "time": "2025-01-16T10:09:49.759Z",
    }
    assert all(1 <= len(v) <= 100 for v in body.values())


def test_answer_body_defaults_to_now():
    moment = datetime.fromisoformat(answer_body()["time"])
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 5


def test_error_body_is_yms_shape():
    assert error_body(WRONG_EVENT_FORMAT, "no orderId") == {
        "error": {"type": "WRONG_EVENT_FORMAT", "message": "no orderId"}
    }
