"""Orders check and oversold without HTTP: each marketplace order against the ledger with the
likely reason, how each channel kind is listed and paced (fake channel clients, fakeredis)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import pytest

from inventory_engine.channels.base import (
    ChannelLine,
    ChannelOrder,
    ChannelRejectedError,
    OrdersPage,
)
from inventory_engine.config import Settings
from inventory_engine.domain.models import OrderAction, OrderLine
from inventory_engine.intake.pollers import POLL_LIMITS
from inventory_engine.ledger.activity import OrderLogEntry
from inventory_engine.ledger.catalog import CatalogEntry
from inventory_engine.operate import orders_check
from inventory_engine.operate.common import Operation
from inventory_engine.operate.orders_check import Verdict, check_orders
from inventory_engine.operate.oversold import oversold_lines
from inventory_engine.service import Engine
from tests.unit.test_pollers import oz, wb

A = OrderAction


def order(order_id: str, action: OrderAction, status: str = "s") -> ChannelOrder:
    return ChannelOrder(order_id, action, status, lines=(ChannelLine("1", 1),))


class Feed:
    """Ozon-like: pages by cursor (the first asked with any cursor), plus unfulfilled."""

    order_item_field = "ozon_sku"

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

    order_item_field = "wb_chrt_id"

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
        channels=[oz(), wb()],
    )
    # Marketplace item "1" (Ozon sku, WB chrtId) is the seller's A.
    app.catalog.import_entries([CatalogEntry(sku="A", ozon_sku=1, wb_chrt_id=1)])
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
    engine.client.zadd(engine.ledger.keys.poll("wb").open, {"2": 1})
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


def lined(order_id: str, *lines: tuple[str, int]) -> ChannelOrder:
    return ChannelOrder(
        order_id, A.RESERVE, "awaiting_packaging", lines=tuple(ChannelLine(*x) for x in lines)
    )


def test_lines_are_compared_too_and_each_difference_is_named(monkeypatch, engine):
    """Issue 12 item 7: a posting whose lines were all unknown was ``ok`` (states only)."""
    engine.catalog.import_entries(
        [CatalogEntry(sku="B", ozon_sku=2), CatalogEntry(sku="C", ozon_sku=124)]
    )
    engine.ledger.set_on_hand("B", 10)
    put = engine.ledger.record_order
    put("ozon", "all-unknown", [OrderLine(sku="ozon_sku:123", quantity=2)], A.RESERVE)
    put("ozon", "fewer", [OrderLine(sku="A", quantity=1)], A.RESERVE)
    put("ozon", "no-b", [OrderLine(sku="A", quantity=1)], A.RESERVE)
    put("ozon", "extra-b", [OrderLine(sku="A", quantity=1), OrderLine(sku="B", quantity=1)],
        A.RESERVE)  # fmt: skip
    # Unknown when it arrived (C was catalogued later, retry not run yet).
    put("ozon", "catalogued", [OrderLine(sku="ozon_sku:124", quantity=1)], A.RESERVE)
    put("ozon", "same", [OrderLine(sku="A", quantity=2)], A.RESERVE)
    put("ozon", "cancelled", [OrderLine(sku="A", quantity=1)], A.RESERVE)
    put("ozon", "cancelled", [], A.RELEASE)
    feed = Feed(
        [
            [
                lined("all-unknown", ("123", 2)),
                lined("fewer", ("1", 2)),
                lined("no-b", ("1", 1), ("2", 1)),
                lined("extra-b", ("1", 1)),
                lined("catalogued", ("124", 1)),
                lined("same", ("1", 1), ("1", 1)),  # one SKU on two lines: 2 in all
                ChannelOrder("cancelled", A.RELEASE, "cancelled", lines=(ChannelLine("9", 5),)),
            ]
        ],
        [],
    )
    report, _ = run(monkeypatch, engine, {"ozon": feed})

    checks = {c.order_id: c for c in report.channels[0].checks}
    # A cancelled order holds no stock: its lines do not matter.
    assert set(checks) == {"all-unknown", "fewer", "no-b", "extra-b", "catalogued"}
    assert {c.verdict for c in checks.values()} == {Verdict.DIFFERS}
    assert checks["all-unknown"].lines == ("line unknown to the catalog: ozon sku 123 ×2",)
    assert checks["fewer"].lines == ("quantity differs for A: ledger 1, marketplace 2",)
    assert checks["no-b"].lines == ("ledger has no line for ozon sku 2 (B) ×1",)
    assert checks["extra-b"].lines == ("marketplace has no line for B (ledger ×1)",)
    assert checks["catalogued"].lines == (
        "line unknown to the catalog when the order arrived: ozon sku 124 ×1, C since "
        "(inventory-engine retry applies it)",
    )
    assert checks["fewer"].reason == "lines differ: quantity differs for A: ledger 1, marketplace 2"
    assert checks["fewer"].ledger_state == "reserved"
    assert report.channels[0].counts == {"ok": 2, "differs": 5}
    assert len(report.problems) == 5


def test_a_state_difference_also_names_the_lines(monkeypatch, engine):
    engine.ledger.record_order("ozon", "P", [OrderLine(sku="A", quantity=1)], A.RESERVE)
    feed = Feed([[ChannelOrder("P", A.COMMIT, "delivering", lines=(ChannelLine("1", 3),))]], [])
    report, _ = run(monkeypatch, engine, {"ozon": feed})
    [check] = report.channels[0].checks
    assert check.verdict is Verdict.DIFFERS
    assert check.lines == ("quantity differs for A: ledger 1, marketplace 3",)
    assert check.reason.startswith("marketplace delivering (commit), ledger reserved")
    assert check.reason.endswith("; lines differ: quantity differs for A: ledger 1, marketplace 3")


def test_wildberries_tasks_keep_the_line_of_the_new_task_snapshot(monkeypatch, engine):
    engine.ledger.record_order("wb", "1", [OrderLine(sku="A", quantity=1)], A.RESERVE)
    status = ChannelOrder("1", A.RESERVE, "confirm/waiting")  # status answers carry no lines
    tasks = Tasks([lined("1", ("5", 1))], {"1": status})
    report, _ = run(monkeypatch, engine, {"wb": tasks})
    [check] = report.channels[0].checks
    assert check.status == "confirm/waiting"
    assert check.lines == (
        "ledger has no line for wb chrt id 5 ×1",
        "marketplace has no line for A (ledger ×1)",
    )


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
