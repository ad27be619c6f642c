"""Marketplace states the engine does not recognise (issue 12, item 9), on fakeredis: each
channel's parser names them; intake logs them at warning with the raw value and counts them
(``inventory_unrecognised_states_total{channel,state}``, the state label normalised and capped);
the order's log keeps the raw values and ``order show`` lists them; ``orders check`` names them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import fakeredis
import httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from inventory_engine.channels import ozon_notifications, yandex_market_notifications
from inventory_engine.channels.base import ChannelOrder, OrdersPage
from inventory_engine.channels.ozon import _order_from_posting
from inventory_engine.channels.ozon_models import Posting
from inventory_engine.channels.wildberries import _order_from_status
from inventory_engine.channels.wildberries_models import TaskStatus
from inventory_engine.channels.yandex_market import YandexMarketClient
from inventory_engine.config import Settings
from inventory_engine.domain.models import OrderAction
from inventory_engine.metrics import definitions as m
from inventory_engine.metrics.recorder import parse_field
from inventory_engine.operate.common import Operation
from inventory_engine.operate.order_view import show_order
from inventory_engine.operate.orders_check import Verdict, check_orders
from inventory_engine.service import Engine
from tests.unit.test_pollers import oz, wb

URL = "http://127.0.0.1:9"
IGNORE = OrderAction.IGNORE


@pytest.fixture
def engine() -> Iterator[Engine]:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    app = Engine(
        Settings(),
        client,
        channels=[oz(), wb()],
    )
    yield app
    client.close()


def counted(engine: Engine) -> dict[tuple[str, ...], int]:
    """inventory_unrecognised_states_total by (channel, state)."""
    found = {}
    for field, value in engine.client.hgetall(engine.metrics.key).items():
        name, labels, _ = parse_field(field.decode())
        if name == m.UNRECOGNISED_STATES.name:
            found[labels] = int(value)
    return found


def unrecognised(order_id: str, state: str) -> ChannelOrder:
    return ChannelOrder(order_id, IGNORE, state, unrecognised=(state,))


def test_each_channel_names_the_states_it_does_not_recognise():
    push = ozon_notifications.parse_notification(
        {
            "message_type": "TYPE_STATE_CHANGED",
            "posting_number": "P-1",
            "new_state": "posting_teleported",
            "changed_state_date": "2025-01-16T10:00:00Z",
            "warehouse_id": 1,
        }
    )
    [order] = push.orders
    assert (order.action, order.unrecognised) == (IGNORE, ("posting_teleported",))

    polled = _order_from_posting(Posting(posting_number="P-2", status="awaiting_teleport"))
    assert (polled.action, polled.unrecognised) == (IGNORE, ("awaiting_teleport",))
    known = _order_from_posting(Posting(posting_number="P-3", status="awaiting_packaging"))
    assert known.unrecognised == ()

    # WB: the known field still decides; the other is named all the same.
    status = {"id": 5, "supplierStatus": "confirm", "wbStatus": "teleported"}
    task = _order_from_status(TaskStatus.model_validate(status))
    assert (task.action, task.unrecognised) == (OrderAction.RESERVE, ("teleported",))

    note = yandex_market_notifications.parse_notification(
        {
            "notificationType": "ORDER_STATUS_UPDATED",
            "orderId": 7,
            "status": "TELEPORTED",
            "substatus": "BEAMED",
            "updatedAt": "2025-01-16T10:00:00Z",
        }
    )
    [order] = note.orders
    assert (order.action, order.status, order.unrecognised) == (
        IGNORE,
        "TELEPORTED/BEAMED",
        ("TELEPORTED",),
    )

    body = {
        "orders": [
            {"orderId": 8, "status": "TELEPORTED", "items": []},
            {"orderId": 9, "status": "PROCESSING", "substatus": "STARTED", "items": []},
        ]
    }
    http = httpx.Client(
        base_url=URL, transport=httpx.MockTransport(lambda _: httpx.Response(200, json=body))
    )
    ym = YandexMarketClient(http, name="ym", api_key=SecretStr("k"), campaign_id=1, business_id=2)
    page = ym.list_orders(None)
    assert [o.unrecognised for o in page.orders] == [("TELEPORTED",), ()]


def test_intake_logs_counts_and_keeps_an_unrecognised_state(engine):
    with capture_logs() as logs:
        assert engine.queue_order_events("ozon", [unrecognised("P-1", "posting_teleported")]) == 0
    [warning] = [e for e in logs if e["event"] == "order_state_unrecognised"]
    assert warning["log_level"] == "warning"
    assert (warning["channel"], warning["order_id"], warning["states"]) == (
        "ozon",
        "P-1",
        ["posting_teleported"],
    )
    assert counted(engine) == {("ozon", "posting_teleported"): 1}
    engine.queue_order_events("ozon", [unrecognised("P-1", "posting_teleported")], source="poll")
    assert counted(engine) == {("ozon", "posting_teleported"): 2}

    view = show_order(engine, "ozon", "P-1")
    assert view.unrecognised == ["posting_teleported"]  # once, though received twice
    assert view.as_json()["unrecognised_states"] == ["posting_teleported"]
    assert [e.unrecognised for e in view.events] == [("posting_teleported",)] * 2
    # A recognised event names nothing.
    engine.queue_order_events("ozon", [ChannelOrder("P-2", IGNORE, "posting_split_pending")])
    assert show_order(engine, "ozon", "P-2").unrecognised == []
    assert len(counted(engine)) == 1


def test_the_state_label_is_normalised_and_capped_the_raw_value_kept(engine):
    states = [f"state_{n}" for n in range(m.MAX_STATE_LABELS + 5)]
    odd = ["not a state!", "x" * (m.STATE_LABEL_MAX + 1)]
    for n, state in enumerate(states + odd):
        engine.queue_order_events("wb", [unrecognised(str(n), state)])
    labels = counted(engine)
    assert len(labels) == m.MAX_STATE_LABELS + 1
    assert labels[("wb", "other")] == 5 + len(odd)
    assert labels[("wb", "state_0")] == 1
    # Another channel has its own allowance.
    engine.queue_order_events("ozon", [unrecognised("P-1", "state_99")])
    assert counted(engine)[("ozon", "state_99")] == 1
    # The order keeps what was sent, whatever the label.
    assert show_order(engine, "wb", str(len(states))).unrecognised == ["not a state!"]
    assert m.state_label("posting_teleported") == "posting_teleported"
    assert m.state_label(" PROCESSING-X ") == "PROCESSING-X"


def test_orders_check_names_an_order_in_an_unrecognised_state(monkeypatch, engine):
    class Feed:
        order_item_field = "ozon_sku"

        def list_orders(self, cursor: str | None) -> OrdersPage:
            return OrdersPage((unrecognised("P-9", "awaiting_teleport"),), cursor="c")

    monkeypatch.setattr(engine, "channel", lambda name: Feed())
    report = check_orders(
        Operation(engine, True), ["ozon"], since=timedelta(hours=1), sleep=lambda _: None
    )
    [check] = report.channels[0].checks
    assert (check.order_id, check.verdict) == ("P-9", Verdict.UNRECOGNISED)
    assert "awaiting_teleport" in check.reason
    assert report.channels[0].counts == {"unrecognised": 1}
    assert report.problems == []  # the engine ignored it: nothing to compare, not a difference
    assert datetime.now(UTC) - timedelta(hours=2) < datetime.fromtimestamp(
        report.since_ms / 1000, tz=UTC
    )
