"""``orders check``: the marketplace's own orders of a period against the ledger."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from inventory_engine.cli_operate.common import (
    AccountOption,
    AllOption,
    ChannelOption,
    ConfigOption,
    JsonOption,
    command_operation,
    err,
    local_time,
    out,
    print_json,
    titled_table,
)
from inventory_engine.operate.common import parse_duration
from inventory_engine.operate.orders_check import OrdersCheckReport, check_orders

orders_app = typer.Typer(
    help="Marketplace orders against the ledger.", no_args_is_help=True, rich_markup_mode="markdown"
)


@orders_app.command("check")
def orders_check(
    channel: ChannelOption = None,
    since: Annotated[str, typer.Option("--since", help="Period: 15m, 2h, 1d...")] = "24h",
    show_all: AllOption = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    account: AccountOption = None,
) -> None:
    """The marketplace's own orders of the period against the ledger: states and lines (SKU,
    quantity). Each order missing, in another state or with other lines is named with the
    likely reason and each line that differs. Exit 1 when something is missing or differs, 2
    on errors."""
    with command_operation(config, account) as op:
        period = parse_duration(since)
        names = op.channels(channel, readable=True)
        report = check_orders(op, names, since=period, keep_all=show_all)
    if as_json:
        print_json({"ok": not report.problems and not report.errors, **asdict(report)})
    else:
        _print_report(report)
    if report.errors:
        raise typer.Exit(2)
    if report.problems:
        raise typer.Exit(1)


def _print_report(report: OrdersCheckReport) -> None:
    """Each channel's counts (or its error), then one row per order listed."""
    for ch in report.channels:
        counts = ", ".join(f"{n} {v}" for v, n in sorted(ch.counts.items())) or "no orders"
        since_text = local_time(report.since_ms)
        out.print(f"{ch.channel}: {ch.listed} order(s) listed since {since_text}: {counts}")
        if ch.error:
            err.print(f"[red]{ch.channel}: {ch.error}[/red]")
    rows = [c for ch in report.channels for c in ch.checks]
    if rows:
        table = titled_table(
            "orders", "channel", "order", "marketplace", "ledger", "verdict", "reason"
        )
        for c in rows:
            table.add_row(
                c.channel, c.order_id, f"{c.status} ({c.action})", c.ledger_state or "—",
                c.verdict.value, c.reason,
            )  # fmt: skip
        out.print(table)
