"""``explain``: why a channel shows what it shows — a SKU's journal, newest first, with the
pushes that followed each change."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from inventory_engine.cli_operate.common import (
    AccountOption,
    ConfigOption,
    JsonOption,
    command_operation,
    err,
    local_time,
    out,
    print_json,
    titled_table,
)
from inventory_engine.operate.explain import Explanation
from inventory_engine.operate.explain import explain as explain_sku


def explain(
    sku: str,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Journal entries.")] = 20,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    account: AccountOption = None,
) -> None:
    """Why a channel shows what it shows: the SKU's journal, newest first, with the pushes
    that followed each change and their outcome."""
    with command_operation(config, account) as op:
        found = explain_sku(op.engine, sku, limit=limit)
    if not found.known and not found.steps:
        err.print(f"[yellow]unknown SKU {sku}[/yellow]: no stock record and not in the catalog")
        raise typer.Exit(1)
    if as_json:
        print_json(asdict(found))
        return
    bundle = f" (bundle of {', '.join(found.components)})" if found.components else ""
    out.print(f"{sku}{bundle}: {found.available} available")
    _print_channels_now(found)
    _print_journal(found)


def _print_channels_now(found: Explanation) -> None:
    """What each channel should show now, what it accepted last, and why they may differ."""
    now = titled_table("channels now", "channel", "item", "should show", "accepted", "state")
    for ch in found.channels:
        m = ch.marks
        state = []
        if m.pending_since_ms:
            state.append(f"pending since {local_time(m.pending_since_ms)}")
        if m.not_before_ms:
            state.append(f"item window until {local_time(m.not_before_ms)}")
        if m.parked:
            state.append(f"parked: {m.parked.code} {m.parked.message}")
        accepted = "—" if m.accepted is None else str(m.accepted)
        shown = str(m.expected) if ch.item_id else "not listed"
        now.add_row(ch.channel, ch.item_id or "—", shown, accepted, "; ".join(state) or "in sync")
    out.print(now)


def _print_journal(found: Explanation) -> None:
    """Each journal entry's change, and under it the pushes that followed."""
    table = titled_table("journal, newest first", "time", "operation", "channel", "order", "change")
    for step in found.steps:
        e = step.entry
        change = []
        if e.on_hand_before != e.on_hand_after:
            change.append(f"on hand {e.on_hand_before} → {e.on_hand_after}")
        if e.reserved_before != e.reserved_after:
            change.append(f"reserved {e.reserved_before} → {e.reserved_after}")
        before, after = step.available_before, step.available_after
        change.append(f"available {before} → {after}" if before != after else f"available {after}")
        op_text = e.op + (f" {e.sku}" if found.components else "")
        op_text += f" ({e.reason})" if e.reason and e.reason != e.op else ""
        table.add_row(local_time(e.ms), op_text, e.channel, e.order_id or "—", ", ".join(change))
        for push in step.pushes:
            code = f" {push.code}" if push.code else ""
            table.add_row(
                "", f"  ↳ push {local_time(push.ms)}", push.channel, "",
                f"sent {push.quantity}: {push.outcome}{code}",
            )  # fmt: skip
    out.print(table)
