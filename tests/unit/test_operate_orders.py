"""Orders check and oversold without HTTP: each marketplace order against the ledger with the
likely reason, how each channel kind is listed and paced (fake channel clients, fakeredis)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import pytest
from pydantic import SecretStr

from inventory_engine.channels.base import (
    ChannelLine,
    ChannelOrder,
    ChannelRejectedError,
    OrdersPage,
)
from inventory_engine.config import OzonSettings, Settings, WildberriesSettings
from inventory_engine.domain.models import OrderAction, OrderLine
from inventory_engine.intake.pollers import POLL_LIMITS, PollKeys
from inventory_engine.ledger.activity import OrderLogEntry
from inventory_engine.operate import orders_check
from inventory_engine.operate.common import Operation
from inventory_engine.operate.orders_check import Verdict, check_orders
from inventory_engine.operate.oversold import oversold_lines
from inventory_engine.service import Engine

URL = "http://127.0.0.1:9"
A = OrderAction


def order(order_id: str, action: OrderAction, status: str = "s") -> ChannelOrder:
    return ChannelOrder(order_id, action, status, lines=(ChannelLine("1", 1),))


class Feed:
    """Ozon-like: pages by cursor (the first asked with any cursor), plus unfulfilled."""

    def __init__(self, pages: list[list[ChannelOrder]], unfulfilled: list[ChannelOrder]) -> None:
        self.pages = pages
        self.unfulfilled = unfulfilled
        self.cursors: list[str | None] = []

    def list_orders(self, cursor: str | None) -> OrdersPage:
        self.cursors.append(cursor)
        index = len(self.cursors) - 1
        more = index + 1 < len(self.pages)
        return OrdersPage(tuple(self.pages[index]), cursor=f"c{index + 1}", more=more)

    def list_unfulfilled(self) -> list[ChannelOrder]:
        return list(self.unfulfilled)


class Tasks:
    """WB-like: a new-task snapshot and statuses by id."""

    def __init__(self, new: list[ChannelOrder], statuses: dict[str, ChannelOrder]) -> None:
        self.new = new
        self.statuses = statuses
        self.asked: list[list[str]] = []

    def list_orders(self, cursor: str | None) -> OrdersPage:
        return OrdersPage(tuple(self.new), cursor="now")

    def order_statuses(self, ids: Sequence[str]) -> list[ChannelOrder]:
        self.asked.append(list(ids))
        return [self.statuses[i] for i in ids if i in self.statuses]


@pytest.fixture
def engine() -> Iterator[Engine]:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    app = Engine(
        Settings(),
        client,
        channels=[
            OzonSettings(
                kind="ozon",
                name="ozon",
                base_url=URL,
                client_id="c",
                api_key=SecretStr("k"),
                warehouse_id=1,
            ),
            WildberriesSettings(
                kind="wildberries", name="wb", base_url=URL, token=SecretStr("t"), warehouse_id=1
            ),
        ],
    )
    app.ledger.set_on_hand("A", 10)
    yield app
    client.close()


def record(engine: Engine, channel: str, order_id: str, *actions: OrderAction) -> None:
    for action in actions:
        engine.ledger.record_order(channel, order_id, [OrderLine(sku="A", quantity=1)], action)


def received(engine: Engine, channel: str, order_id: str, action: OrderAction, **kw: Any) -> None:
    engine.activity.write(
        channel,
        order_id,
        OrderLogEntry(ms=1, stage="received", source="poll", action=action, status="s", **kw),
    )


def run(monkeypatch, engine: Engine, clients: dict[str, Any], **kwargs: Any) -> Any:
    monkeypatch.setattr(engine, "channel", lambda name: clients[name])
    slept: list[float] = []
    report = check_orders(
        Operation(engine, True),
        list(clients),
        since=timedelta(hours=2),
        sleep=slept.append,
        **kwargs,
    )
    return report, slept


def test_each_order_is_named_with_its_likely_reason(monkeypatch, engine):
    record(engine, "ozon", "ok", A.RESERVE)
    record(engine, "ozon", "ahead", A.RESERVE, A.COMMIT)  # the list lags: fine
    record(engine, "ozon", "cancel-lost", A.RESERVE)
    record(engine, "ozon", "dup", A.RESERVE, A.COMMIT)
    engine.activity.write(
        "ozon",
        "dup",
        OrderLogEntry(ms=2, stage="applied", source="worker", action="release", status="s",
                      outcome="duplicate"),
    )  # fmt: skip
    received(engine, "ozon", "not-applied", A.RESERVE)
    engine.queue_order_events("ozon", [order("queued", A.RESERVE)])
    feed = Feed(
        [
            [order("ok", A.RESERVE), order("ahead", A.RESERVE), order("never", A.RESERVE)],
            [
                order("cancel-lost", A.RELEASE, "cancelled"),
                order("dup", A.RELEASE, "cancelled"),
                order("not-applied", A.RESERVE),
                order("queued", A.RESERVE),
                order("noise", A.IGNORE),
            ],
        ],
        [order("open", A.RESERVE)],
    )
    report, slept = run(monkeypatch, engine, {"ozon": feed})

    [ozon] = report.channels
    assert ozon.listed == 9
    verdicts = {c.order_id: (c.verdict, c.reason) for c in ozon.checks}
    assert set(verdicts) == {"never", "open", "cancel-lost", "dup", "not-applied", "queued"}
    assert verdicts["never"] == (Verdict.MISSING, verdicts["never"][1])
    assert verdicts["never"][1].startswith("never received (webhook not configured?")
    assert verdicts["open"][0] is Verdict.MISSING
    assert verdicts["cancel-lost"][0] is Verdict.DIFFERS
    assert "status change never received" in verdicts["cancel-lost"][1]
    assert "marketplace cancelled (release), ledger reserved" in verdicts["cancel-lost"][1]
    assert verdicts["dup"][0] is Verdict.DIFFERS
    assert "ignored it, the order was already committed" in verdicts["dup"][1]
    assert verdicts["not-applied"] == (
        Verdict.MISSING,
        "received but not applied (worker down? failed job expired?)",
    )
    assert verdicts["queued"] == (Verdict.IN_FLIGHT, "received, queued")
    assert ozon.counts == {"ok": 2, "missing": 3, "differs": 2, "in_flight": 1}
    assert len(report.problems) == 5

    # Listed from the start of the period, following "more", then the unfulfilled list;
    # requests paced like the poller's.
    start = datetime.fromisoformat(feed.cursors[0] or "")
    assert abs(start - (datetime.now(UTC) - timedelta(hours=2))) < timedelta(seconds=5)
    assert feed.cursors[1:] == ["c1"]
    assert slept == [POLL_LIMITS["ozon"].request_spacing_s] * 2


def test_an_event_queued_too_long_is_not_in_flight_any_more(monkeypatch, engine):
    engine.queue_order_events("ozon", [order("stuck", A.RESERVE)])
    monkeypatch.setattr(orders_check, "STALE_QUEUED_S", -1)
    report, _ = run(monkeypatch, engine, {"ozon": Feed([[order("stuck", A.RESERVE)]], [])})
    [check] = report.channels[0].checks
    assert check.verdict is Verdict.MISSING
    assert "still queued: is a worker running?" in check.reason


def test_wildberries_is_checked_from_new_tasks_and_the_tracked_tasks_statuses(monkeypatch, engine):
    record(engine, "wb", "2", A.RESERVE)
    engine.client.zadd(PollKeys.of(engine, "wb").open, {"2": 1})
    tasks = Tasks(
        [order("1", A.RESERVE, "new")],
        {"1": order("1", A.RESERVE, "new/waiting"), "2": order("2", A.FINAL, "receive/sold")},
    )
    report, _ = run(monkeypatch, engine, {"wb": tasks})
    assert tasks.asked == [["1", "2"]]
    checks = {c.order_id: c for c in report.channels[0].checks}
    assert checks["1"].verdict is Verdict.MISSING
    assert "poller" in checks["1"].reason
    assert (checks["2"].verdict, checks["2"].ledger_state) == (Verdict.DIFFERS, "reserved")


def test_a_channel_that_fails_is_an_error_not_a_verdict(monkeypatch, engine):
    class Refusing(Feed):
        def list_orders(self, cursor: str | None) -> OrdersPage:
            raise ChannelRejectedError("ozon", 403, "bad key")

    report, _ = run(monkeypatch, engine, {"ozon": Refusing([], [])})
    assert report.errors[0].error == "ozon: HTTP 403: bad key"
    assert report.problems == []


def test_oversold_lines_say_which_still_need_a_person(engine):
    engine.ledger.record_order(
        "ozon", "P-1", [OrderLine(sku="A", quantity=12)], A.RESERVE, status="awaiting_packaging"
    )
    engine.ledger.record_order("wb", "9", [OrderLine(sku="A", quantity=1)], A.RESERVE)
    lines = oversold_lines(engine.reader, kinds={"ozon": "ozon"})
    assert [(x.channel, x.order_id, x.sku, x.shortfall) for x in lines] == [
        ("ozon", "P-1", "A", 2),
        ("wb", "9", "A", 1),
    ]
    assert lines[0].needs_action
    assert "reason 352" in lines[0].advice
    assert "reason 352" not in lines[1].advice
    engine.ledger.record_order("ozon", "P-1", [], A.RELEASE, status="cancelled")
    assert [x.order_id for x in oversold_lines(engine.reader, open_only=True)] == ["9"]
    assert oversold_lines(engine.reader)[0].advice == "cancelled: resolved"
