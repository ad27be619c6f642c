"""What the demo shows: per-channel figures, the summary, and a line explaining each figure."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rich.console import Group
from rich.table import Table
from rich.text import Text

from inventory_engine.demo.sample import MARKETPLACES


@dataclass
class ChannelStats:
    """One channel's share of the run: orders placed on it, values it accepted, latency to it."""

    orders: int = 0
    refused: int = 0
    """Storefront reservations the ledger refused (409 insufficient stock)."""
    pushes: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile (``q`` in 0..1) of the latencies, None without any."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class DemoSummary:
    """What the run did and how the engine kept up."""

    seconds: float
    channels: dict[str, ChannelStats]
    orders_recorded: int
    """Placed orders the ledger knows at the end (all of them, unless it fell behind)."""
    oversold_units: int
    oversold_orders: int
    violations: dict[str, dict[str, int]]
    """Limit violations per simulator, by kind (the engine must cause none)."""
    negative: list[str]
    """SKUs with a negative on-hand or reserved counter (must be empty)."""
    behind: int
    """(SKU, marketplace) pairs not showing the engine's current value at the end."""
    unmatched: int
    """(order, marketplace) pairs for which no value arrived after the order."""
    unmatched_unchanged: int = 0
    """Of ``unmatched``: the marketplace shows the engine's value, so that order did not change
    its number (it already showed 0, or a buffer or share kept it): nothing had to be sent."""

    @property
    def orders(self) -> int:
        return sum(stats.orders for stats in self.channels.values())

    @property
    def ok(self) -> bool:
        return not any(v for kinds in self.violations.values() for v in kinds.values()) and (
            not self.negative
        )


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def channel_table(stats: dict[str, ChannelStats], title: str | None = None) -> Table:
    """Per channel: orders placed on it, values it accepted, propagation latency to it."""
    caption = "pushes: values accepted; n, p50…: latency from an order elsewhere to this channel"
    table = Table(title=title, caption=caption)
    table.add_column("channel", no_wrap=True)
    for column in ("orders", "refused", "pushes", "n", "p50 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="right")
    for name, s in stats.items():
        marketplace = name in MARKETPLACES
        table.add_row(
            name,
            str(s.orders),
            str(s.refused),
            str(s.pushes) if marketplace else "—",
            str(len(s.latencies_ms)) if marketplace else "—",
            _ms(s.percentile(0.5)),
            _ms(s.percentile(0.99)),
            _ms(max(s.latencies_ms, default=None)),
        )
    return table


def render_summary(summary: DemoSummary) -> Group:
    """The end-of-run report: the channel table, then each figure with one line on what it
    means (a bare "oversold: 1" only worries)."""
    violations = sum(v for kinds in summary.violations.values() for v in kinds.values())
    style = "green" if summary.ok else "red"
    return Group(
        channel_table(summary.channels, title="inventory-engine demo: summary"),
        *(
            Text(figure, style=style if checked else "").append(f"\n    {why}", style="dim")
            for figure, why, checked in summary_lines(summary, violations)
        ),
    )


def summary_lines(summary: DemoSummary, violations: int) -> list[tuple[str, str, bool]]:
    """``(figure, what it means, is it one of the pass/fail checks)`` for each summary line."""
    pending = summary.unmatched - summary.unmatched_unchanged
    return [
        (
            f"{summary.orders} orders in {summary.seconds:.0f} s; "
            f"the ledger recorded {summary.orders_recorded} of them",
            "orders placed on the simulators and the storefront, and how many the ledger holds"
            + (
                ""
                if summary.orders_recorded == summary.orders
                else " (the rest were still in the inbox when the demo ended)"
            ),
            False,
        ),
        (
            f"oversold: {summary.oversold_units} units in {summary.oversold_orders} orders",
            "a marketplace sold a unit it still showed while another channel's sale of the "
            "same unit was on its way to it: the race every multi-channel seller has, made "
            "likely here by selling a few units fast (Ozon takes a new number for an item "
            "once per 30 s); `inventory-engine oversold` lists such orders"
            if summary.oversold_units
            else "no marketplace sold a unit that was already gone",
            False,
        ),
        (
            f"simulator limit violations: {violations}"
            + ("" if not violations else f" {summary.violations}"),
            "requests the simulators refused or counted as breaking the marketplace's limits "
            "(rate, batch size, Ozon's per-item window): the engine must cause none",
            True,
        ),
        (
            "ledger counters: "
            + ("consistent" if not summary.negative else f"NEGATIVE for {summary.negative}"),
            "no SKU's on hand or reserved went below zero",
            True,
        ),
        (
            f"marketplace values not yet at the engine's target: {summary.behind}",
            "(SKU, marketplace) pairs whose shown number differs from the engine's at the end: "
            "changes still on their way (Ozon takes one update per item every 30 s)",
            False,
        ),
        (
            f"(order, marketplace) pairs with no value after the order: {summary.unmatched}",
            f"{summary.unmatched_unchanged} because the order did not change that marketplace's "
            "number (it already showed 0, or its buffer or share kept it): nothing to send; "
            f"{pending} still on their way when the demo ended",
            False,
        ),
    ]
