"""Ozon push notifications: the documented payloads (reference §1.6, in tests/fixtures/ozon) map
to ledger events, the answers have Ozon's exact shape, and bad payloads are refused."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from inventory_engine.channels.base import ChannelLine, PayloadError
from inventory_engine.channels.ozon_notifications import (
    ERROR_CODE,
    error_answer,
    parse_notification,
    ping_answer,
)
from inventory_engine.domain.models import OrderAction

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ozon"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def test_parse_notification_ping_answers_version_name_time():
    notification = parse_notification(fixture("ping"))
    assert notification.is_ping
    assert notification.orders == ()
    now = datetime(2025, 8, 25, 10, 48, 38, 123456, tzinfo=UTC)
    assert notification.answer(now=now) == {
        "version": "1.0.0",
        "name": "inventory-engine",
        "time": "2025-08-25T10:48:38Z",
    }


def test_ping_answer_reports_utc_time_and_custom_name():
    answer = ping_answer(name="shop-x")
    assert set(answer) == {"version", "name", "time"}
    assert answer["name"] == "shop-x"
    parsed = datetime.fromisoformat(answer["time"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - parsed).total_seconds()) < 5


def test_parse_notification_new_posting_reserves_sku_lines():
    notification = parse_notification(fixture("new_posting"))
    assert notification.answer() == {"result": True}
    assert notification.warehouse_id == 18850503335000
    (order,) = notification.orders
    assert order.order_id == "24219509-0020-1"
    assert order.action is OrderAction.RESERVE
    assert order.status == "posting_created"
    assert order.lines == (ChannelLine("147451959", 2),)
    assert not order.needs_lines
    assert order.event_key == "24219509-0020-1|TYPE_NEW_POSTING||"
    assert order.changed_at == "2021-01-26T06:56:36.294Z"


def test_parse_notification_new_posting_merges_repeated_skus():
    payload = fixture("new_posting")
    payload["products"] = [
        {"sku": 1, "quantity": 2},
        {"sku": 2, "quantity": 1},
        {"sku": 1, "quantity": 3},
    ]
    (order,) = parse_notification(payload).orders
    assert order.lines == (ChannelLine("1", 5), ChannelLine("2", 1))


def test_parse_notification_new_posting_with_empty_in_process_at():
    payload = fixture("new_posting")
    payload["in_process_at"] = ""  # Ozon: empty when the payment is late
    (order,) = parse_notification(payload).orders
    assert order.changed_at is None


def test_parse_notification_cancel_after_courier_is_cancel_after_ship():
    (order,) = parse_notification(fixture("posting_cancelled")).orders
    assert order.action is OrderAction.CANCEL_AFTER_SHIP
    assert order.status == "posting_canceled"
    assert order.lines == (ChannelLine("147451959", 1),)
    assert order.event_key == (
        "24219509-0020-1|TYPE_POSTING_CANCELLED|posting_canceled|2021-01-26T06:56:36.294Z"
    )


def test_parse_notification_cancel_before_packing_releases():
    payload = fixture("posting_cancelled")
    payload["old_state"] = "posting_created"
    (order,) = parse_notification(payload).orders
    assert order.action is OrderAction.RELEASE
    assert not order.needs_lines


def test_parse_notification_cancel_without_products_needs_lines():
    payload = fixture("posting_cancelled")
    del payload["products"]
    (order,) = parse_notification(payload).orders
    assert order.lines == ()
    assert order.needs_lines


def test_parse_notification_state_changed_needs_lines():
    notification = parse_notification(fixture("state_changed"))
    assert notification.warehouse_id is None  # Ozon's example sends 0
    (order,) = notification.orders
    assert order.order_id == "24219509-0020-2"
    assert order.action is OrderAction.FINAL
    assert order.needs_lines
    assert order.lines == ()
    assert order.event_key == (
        "24219509-0020-2|TYPE_STATE_CHANGED|posting_delivered|2021-02-02T15:07:46.765Z"
    )
    assert order.changed_at == "2021-02-02T15:07:46.765Z"


@pytest.mark.parametrize(
    ("new_state", "action"),
    [
        ("posting_transferring_to_delivery", OrderAction.COMMIT),
        ("posting_in_arbitration", OrderAction.HOLD),
        ("posting_canceled", OrderAction.RELEASE),
    ],
)
def test_parse_notification_state_changed_maps_new_state(new_state, action):
    payload = fixture("state_changed") | {"new_state": new_state}
    (order,) = parse_notification(payload).orders
    assert order.action is action
    assert order.needs_lines


def test_parse_notification_state_changed_to_unknown_state_is_ignored_without_fetch():
    payload = fixture("state_changed") | {"new_state": "posting_teleported"}
    (order,) = parse_notification(payload).orders
    assert order.action is OrderAction.IGNORE
    assert not order.needs_lines


@pytest.mark.parametrize("name", ["stocks_changed", "cutoff_date_changed"])
def test_parse_notification_other_documented_types_are_ignored(name):
    notification = parse_notification(fixture(name))
    assert not notification.is_ping
    assert notification.orders == ()
    assert notification.answer() == {"result": True}


def test_parse_notification_unknown_type_is_ignored():
    notification = parse_notification({"message_type": "TYPE_SOMETHING_NEW", "x": 1})
    assert notification.message_type == "TYPE_SOMETHING_NEW"
    assert notification.orders == ()


def _broken(name: str, path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    payload = copy.deepcopy(fixture(name))
    target: Any = payload
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return payload


_DELETE = object()


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "TYPE_PING",
        None,
        42,
        {},
        {"message_type": 7},
        {"message_type": ""},
        _broken("new_posting", ("posting_number",), _DELETE),
        _broken("new_posting", ("posting_number",), 24219509),
        _broken("new_posting", ("products",), _DELETE),
        _broken("new_posting", ("products",), []),
        _broken("new_posting", ("products",), {"sku": 1, "quantity": 1}),
        _broken("new_posting", ("products", 0), "147451959"),
        _broken("new_posting", ("products", 0, "sku"), "147451959"),
        _broken("new_posting", ("products", 0, "sku"), 0),
        _broken("new_posting", ("products", 0, "sku"), -5),
        _broken("new_posting", ("products", 0, "sku"), 2**63),
        _broken("new_posting", ("products", 0, "sku"), 1.5),
        _broken("new_posting", ("products", 0, "quantity"), 0),
        _broken("new_posting", ("products", 0, "quantity"), -1),
        _broken("new_posting", ("products", 0, "quantity"), 10**30),
        _broken("new_posting", ("products", 0, "quantity"), 2.0),
        _broken("new_posting", ("products", 0, "quantity"), True),
        _broken("new_posting", ("products", 0, "quantity"), _DELETE),
        _broken("new_posting", ("warehouse_id",), "18850503335000"),
        _broken("new_posting", ("in_process_at",), 1611643000),
        _broken("posting_cancelled", ("old_state",), 3),
        _broken("posting_cancelled", ("products",), "none"),
        _broken("state_changed", ("new_state",), _DELETE),
        _broken("state_changed", ("new_state",), None),
        _broken("state_changed", ("changed_state_date",), {"at": 1}),
        _broken("ping", ("time",), 1566656122),
    ],
)
def test_parse_notification_refuses_bad_payloads(payload):
    with pytest.raises(PayloadError) as caught:
        parse_notification(payload)
    assert caught.value.code == ERROR_CODE == "ERROR_PARAMETER_VALUE_MISSED"
    assert caught.value.channel == "ozon"


def test_parse_notification_refuses_a_huge_summed_quantity():
    payload = fixture("new_posting")
    payload["products"] = [{"sku": 1, "quantity": 999_999}, {"sku": 1, "quantity": 1}]
    with pytest.raises(PayloadError):
        parse_notification(payload)


def test_error_answer_has_ozon_shape():
    assert error_answer(ERROR_CODE, "products missing") == {
        "error": {"code": ERROR_CODE, "message": "products missing", "details": None}
    }
