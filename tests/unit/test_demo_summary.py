"""The demo's summary explains each figure in one line (issue 12 §15): "oversold: 1" or "pairs
with no value after the order: 2" alone only worry a first-time user."""

from __future__ import annotations

import io

from rich.console import Console

from inventory_engine.demo import ChannelStats, DemoSummary, render_summary


def summary(**changes: object) -> DemoSummary:
    base: dict[str, object] = {
        "seconds": 30.0,
        "channels": {"ozon": ChannelStats(orders=4, pushes=9, latencies_ms=[120.0, 300.0])},
        "orders_recorded": 4,
        "oversold_units": 0,
        "oversold_orders": 0,
        "violations": {"ozon": {}},
        "negative": [],
        "behind": 0,
        "unmatched": 0,
        "unmatched_unchanged": 0,
    }
    base.update(changes)
    return DemoSummary(**base)  # type: ignore[arg-type]


def rendered(value: DemoSummary) -> str:
    out = io.StringIO()
    Console(file=out, width=200).print(render_summary(value))
    return " ".join(out.getvalue().split())


def test_an_oversell_is_explained_and_points_at_the_command_that_lists_it() -> None:
    text = rendered(summary(oversold_units=1, oversold_orders=1))
    assert "oversold: 1 units in 1 orders" in text
    assert "while another channel's sale of the same unit was on its way" in text
    assert "`inventory-engine oversold` lists such orders" in text


def test_no_oversell_says_so_in_words() -> None:
    assert "no marketplace sold a unit that was already gone" in rendered(summary())


def test_pairs_with_no_value_are_split_into_nothing_to_send_and_still_on_their_way() -> None:
    text = rendered(summary(unmatched=5, unmatched_unchanged=3))
    assert "(order, marketplace) pairs with no value after the order: 5" in text
    assert "3 because the order did not change that marketplace's number" in text
    assert "2 still on their way when the demo ended" in text


def test_every_figure_is_followed_by_its_explanation() -> None:
    out = io.StringIO()
    Console(file=out, width=200).print(render_summary(summary(unmatched=1)))
    lines = out.getvalue().splitlines()
    figures = [
        n
        for n, line in enumerate(lines)
        if line.split(":")[0].strip()
        in (
            "oversold",
            "simulator limit violations",
            "ledger counters",
            "marketplace values not yet at the engine's target",
            "(order, marketplace) pairs with no value after the order",
        )
    ]
    assert len(figures) == 5
    for n in figures:
        assert lines[n + 1].startswith("    "), lines[n : n + 2]
        assert lines[n + 1].strip(), lines[n : n + 2]
