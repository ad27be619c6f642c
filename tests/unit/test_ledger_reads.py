"""Bulk reads used by the push path."""

from __future__ import annotations

from inventory_engine.domain.models import OrderAction, OrderLine


def test_available_many_reads_plain_skus_and_bundles(ledger, reader, define_bundles):
    define_bundles({"K": "A:2;B:1"})
    ledger.set_on_hand("A", 9)
    ledger.set_on_hand("B", 3)
    ledger.set_on_hand("A", 4, location="east")
    ledger.record_order("ozon", "o1", [OrderLine(sku="B", quantity=1)], OrderAction.RESERVE)
    assert reader.available_many(["A", "B", "K", "NEW"], "main") == {
        "A": 9,
        "B": 2,
        "K": 2,
        "NEW": 0,
    }
    assert reader.available_many(["A", "K"], "east") == {"A": 4, "K": 0}
    assert reader.available_many([], "main") == {}


def test_available_many_counts_an_oversell_as_negative_but_bundles_as_zero(
    ledger, reader, define_bundles
):
    define_bundles({"K": "A:1"})
    ledger.set_on_hand("A", 1)
    ledger.record_order("wb", "o1", [OrderLine(sku="A", quantity=3)], OrderAction.RESERVE)
    assert reader.available_many(["A", "K"], "main") == {"A": -2, "K": 0}
