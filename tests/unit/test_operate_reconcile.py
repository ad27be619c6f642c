"""Reconcile without HTTP: expected values as the publisher computes them, the status of each
item, corrections and their outcome, explain's chain (fake channel clients, fakeredis)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import fakeredis
import pytest
from pydantic import SecretStr

from inventory_engine.channels.base import ChannelStock, ChannelUnavailableError
from inventory_engine.config import OzonSettings, Settings, WildberriesSettings
from inventory_engine.ledger.catalog import CatalogEntry
from inventory_engine.operate.common import Operation
from inventory_engine.operate.corrections import Correction, wait_for_corrections
from inventory_engine.operate.expected import ChannelTargets, Parked, SkuMarks
from inventory_engine.operate.explain import explain
from inventory_engine.operate.pacing import ReadPacer
from inventory_engine.operate.reconcile import ItemStatus, classify, run_reconcile
from inventory_engine.service import Engine

URL = "http://127.0.0.1:9"


def oz(**kwargs: Any) -> OzonSettings:
    return OzonSettings(
        kind="ozon",
        name="ozon",
        base_url=URL,
        client_id="c",
        api_key=SecretStr("k"),
        warehouse_id=1,
        **kwargs,
    )


def wb(**kwargs: Any) -> WildberriesSettings:
    return WildberriesSettings(
        kind="wildberries", name="wb", base_url=URL, token=SecretStr("t"), warehouse_id=1, **kwargs
    )


class Shelf:
    """A channel's read-back: item id -> (present, reserved) or a plain sellable value."""

    def __init__(self, shown: dict[str, Any], *, fail: bool = False) -> None:
        self.shown = shown
        self.fail = fail

    def read_stock(self, item_ids: Sequence[str]) -> dict[str, ChannelStock]:
        if self.fail:
            raise ChannelUnavailableError("x", "502")
        found = {}
        for item_id in item_ids:
            value = self.shown.get(item_id)
            if isinstance(value, tuple):
                found[item_id] = ChannelStock(item_id, value[0] - value[1], *value)
            elif value is not None:
                found[item_id] = ChannelStock(item_id, value)
        return found


@pytest.fixture
def engine() -> Iterator[Engine]:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    app = Engine(Settings(), client, channels=[oz(), wb(percent=50, buffer=1)])
    app.catalog.import_entries(
        [
            CatalogEntry(sku=sku, ozon_offer_id=sku, wb_chrt_id=n)
            for n, sku in enumerate(["A", "B", "C", "D"], start=101)
        ]
    )
    for sku, units in {"A": 10, "B": 4, "C": 7, "D": 0}.items():
        app.ledger.set_on_hand(sku, units)
    yield app
    client.close()


def use(monkeypatch, engine: Engine, shelves: dict[str, Shelf]) -> None:
    monkeypatch.setattr(engine, "channel", lambda name: shelves[name])


def settle(engine: Engine, channel: str, values: dict[str, int]) -> None:
    """As if the publisher had pushed these values and the channel accepted them."""
    keys = engine.ledger.keys
    engine.client.delete(keys.dirty(channel))
    engine.client.hset(keys.accepted(channel), mapping=values)


def test_expected_is_the_channels_share_as_the_publisher_computes_it(engine):
    assert ChannelTargets(engine, "ozon").expected(["A", "B", "D"]) == {"A": 10, "B": 4, "D": 0}
    # WB: floor(available × 50 %) − 1
    assert ChannelTargets(engine, "wb").expected(["A", "B", "C"]) == {"A": 4, "B": 1, "C": 2}


def test_the_dynamic_buffer_is_read_not_updated(engine):
    app = Engine(engine.settings, engine.client, channels=[oz(dynamic_buffer=True)])
    rates = app.ledger.keys.sales_rate("ozon")
    app.client.hset(rates, "A", f"0.5|{10**13}|12")  # 0.5 units/s, seen just now
    assert ChannelTargets(app, "ozon", clock=lambda: 10**13).expected(["A"]) == {"A": 0}
    assert app.client.hget(rates, "A") == f"0.5|{10**13}|12".encode()


@pytest.mark.parametrize(
    ("shown", "pending", "parked", "status"),
    [
        (5, False, False, ItemStatus.OK),
        (5, True, True, ItemStatus.OK),
        (3, True, False, ItemStatus.PENDING),
        (None, True, False, ItemStatus.PENDING),
        (3, False, True, ItemStatus.PARKED),
        (3, False, False, ItemStatus.DIFFERS),
        (None, False, False, ItemStatus.MISSING),
    ],
)
def test_classify(shown, pending, parked, status):
    marks = SkuMarks(
        expected=5,
        accepted=5,
        pending_since_ms=1 if pending else None,
        not_before_ms=None,
        parked=Parked("X", "no", 5, "i", 1) if parked else None,
    )
    actual = None if shown is None else ChannelStock("i", shown)
    assert classify(actual, marks) is status


def test_reconcile_compares_each_item_and_corrects_differences(monkeypatch, engine):
    settle(engine, "ozon", {"A": 10, "B": 4, "C": 7, "D": 0})
    settle(engine, "wb", {"A": 4, "B": 1, "C": 2, "D": 0})
    engine.client.hset(engine.ledger.keys.parked("wb"), "D", '{"code": "NotFound", "ms": 5}')
    engine.ledger.adjust_on_hand("C", -3, reason="lost")  # marked for both: in flight
    shelves = {
        # Ozon: present − reserved is what was pushed (B: 6 present, 2 held by a posting).
        "ozon": Shelf({"A": 10, "B": (6, 2), "C": 7}),
        "wb": Shelf({"101": 4, "102": 3, "103": 2, "104": 1}),
    }
    use(monkeypatch, engine, shelves)

    run = run_reconcile(Operation(engine, True), ["ozon", "wb"], apply=True, keep_all=True)
    status = {(i.channel, i.sku): i.status for i in run.report.items}
    assert status == {
        ("ozon", "A"): ItemStatus.OK,
        ("ozon", "B"): ItemStatus.OK,
        ("ozon", "C"): ItemStatus.PENDING,
        ("ozon", "D"): ItemStatus.MISSING,
        ("wb", "A"): ItemStatus.OK,
        ("wb", "B"): ItemStatus.DIFFERS,
        ("wb", "C"): ItemStatus.PENDING,
        ("wb", "D"): ItemStatus.PARKED,
    }
    assert not run.ok
    assert [(c.channel, c.sku, c.before) for c in run.corrections] == [
        ("ozon", "D", None),
        ("wb", "B", 3),
    ]
    keys = engine.ledger.keys
    assert engine.client.zscore(keys.dirty("wb"), "B") is not None
    assert engine.client.hget(keys.accepted("wb"), "B") is None
    assert engine.client.hget(keys.accepted("wb"), "A") == b"4"  # untouched
    assert engine.pushes.count == 2  # one push job per channel
    assert [p.sku for p in run.stuck.parked] == ["D"]


def test_a_channel_that_fails_is_reported_and_the_others_still_run(monkeypatch, engine):
    settle(engine, "ozon", {"A": 10, "B": 4, "C": 7, "D": 0})
    use(monkeypatch, engine, {"ozon": Shelf({}, fail=True), "wb": Shelf({})})
    pacer = ReadPacer(engine.client, sleep=lambda _: None)
    run = run_reconcile(Operation(engine, True), ["ozon", "wb"], pacer=pacer)
    assert [c.error is not None for c in run.report.channels] == [True, False]
    assert run.report.channels[1].checked == 4


def test_waiting_for_corrections_reads_the_marks(engine):
    keys = engine.ledger.keys
    corrections = [Correction("wb", sku, "1", 4, 3) for sku in ("A", "B", "C")]
    engine.client.delete(keys.dirty("wb"))
    engine.client.hset(keys.accepted("wb"), "A", 4)
    engine.client.hset(keys.parked("wb"), "B", '{"code": "NotFound", "quantity": 4, "ms": 1}')
    engine.client.zadd(keys.dirty("wb"), {"C": 1})
    wait_for_corrections(engine, corrections, timeout_s=0, sleep=lambda _: None)
    assert [(c.outcome, c.sent, c.code) for c in corrections] == [
        ("accepted", 4, ""),
        ("parked", 4, "NotFound"),
        ("pending", None, ""),
    ]


def test_explain_puts_each_push_under_the_change_before_it(engine):
    keys = engine.ledger.keys
    engine.ledger.adjust_on_hand("A", -2, reason="damaged")
    [latest, first] = engine.reader.journal(sku="A", limit=2)
    for ms, quantity in ((first.ms + 1, 10), (latest.ms, 8), (latest.ms + 5, 8)):
        engine.client.xadd(
            keys.pushes,
            {"ms": ms, "channel": "ozon", "sku": "A", "quantity": quantity, "outcome": "accepted"},
        )
    found = explain(engine, "A")
    assert [s.entry.op for s in found.steps] == ["adjust_on_hand", "set_on_hand"]
    assert [p.quantity for p in found.steps[0].pushes] == [8, 8]
    assert [p.quantity for p in found.steps[1].pushes] == [10]
    assert (found.steps[0].available_before, found.steps[0].available_after) == (10, 8)
    now = {c.channel: c for c in found.channels}
    assert (now["ozon"].item_id, now["ozon"].marks.expected) == ("A", 8)
    assert (now["wb"].item_id, now["wb"].marks.expected) == ("101", 3)
