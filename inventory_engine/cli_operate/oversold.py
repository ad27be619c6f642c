"""``oversold``: marketplace orders that took available below zero, and what to do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import typer

from inventory_engine.cli_operate.common import (
    AccountOption,
    ConfigOption,
    JsonOption,
    command_operation,
    local_time,
    out,
    print_json,
    titled_table,
)
from inventory_engine.operate.oversold import OversoldLine, oversold_lines
from inventory_engine.operate.oversold import as_json as oversold_json


def oversold(
    open_only: Annotated[
        bool, typer.Option("--open", help="Only orders that still need action.")
    ] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    account: AccountOption = None,
) -> None:
    """Marketplace orders that took available below zero: channel, order, SKU, shortfall and
    what to do. Exit 1 while one still needs action (cancel before it is prepared)."""
    with command_operation(config, account) as op:
        kinds = {name: c.kind for name, c in op.engine.channel_settings.items()}
        lines = oversold_lines(op.engine.reader, kinds=kinds, open_only=open_only)
    if as_json:
        print_json(oversold_json(lines))
    elif not lines:
        out.print("no oversold orders")
    else:
        _print_oversold(lines, kinds)
    if any(x.needs_action for x in lines):
        raise typer.Exit(1)


def _print_oversold(lines: list[OversoldLine], kinds: Mapping[str, str]) -> None:
    """The oversold lines, then per order that needs action: cancel it, or find the goods."""
    table = titled_table("oversold", "time", "channel", "order", "sku", "shortfall", "state")
    for x in lines:
        table.add_row(
            local_time(x.ms), x.channel, x.order_id, x.sku, str(x.shortfall), x.state or "—"
        )
    out.print(table)
    short: dict[tuple[str, str], list[str]] = {}
    for x in (x for x in lines if x.needs_action):
        short.setdefault((x.channel, x.order_id), []).append(f"{x.shortfall}×{x.sku}")
    for (name, order_id), missing in short.items():
        hint = " (Ozon: reason 352)" if kinds.get(name) == "ozon" else ""
        advice = f"cancel it before it is prepared{hint}, or find {', '.join(missing)}"
        out.print(f"{name} order {order_id}: {advice}")
