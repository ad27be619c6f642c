"""``order show`` (one marketplace order as the engine saw it) and ``order dismiss`` (give up on
an unknown-SKU order)."""

from __future__ import annotations

import getpass
from dataclasses import asdict
from typing import Annotated

import typer
from rich.markup import escape

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
from inventory_engine.constants import STOREFRONT_CHANNEL
from inventory_engine.operate.order_view import OrderView, show_order
from inventory_engine.operate.stuck import NotStuckError, dismiss_unknown_order
from inventory_engine.service import Engine

order_app = typer.Typer(
    help="One marketplace order as the engine saw it.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


@order_app.command("show")
def order_show(
    channel: str,
    order_id: str,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    account: AccountOption = None,
) -> None:
    """Every event received for the order, its state and lines in the ledger, and the pushes
    it caused. Exit 1 when the engine never heard of it."""
    with command_operation(config, account) as op:
        view = show_order(op.engine, channel, order_id)
    if as_json:
        print_json(view.as_json())
    elif not view.known:
        _print_never_received(op.engine, channel, order_id)
    else:
        _print_order(view, channel, order_id)
    if not view.known:
        raise typer.Exit(1)


def _print_never_received(engine: Engine, channel: str, order_id: str) -> None:
    """Say so, and when no channel has that name, which names there are."""
    if channel in engine.channel_settings or channel == STOREFRONT_CHANNEL:
        err.print(f"[yellow]{channel} order {order_id}[/yellow]: never received")
        return
    names = ", ".join(sorted(engine.channel_settings)) or "none"
    err.print(
        f"[yellow]{channel} order {order_id}[/yellow]: never received, and no channel "
        f"named {channel!r} is configured (configured: {names}; the storefront's "
        f"reservations are under {STOREFRONT_CHANNEL!r}, orders sent to POST /v1/orders "
        "under the channel they named)"
    )


def _print_order(view: OrderView, channel: str, order_id: str) -> None:
    """The ledger's record of the order, its warnings, its events and the pushes it caused."""
    r = view.record
    if r is None:
        out.print(f"{channel} order {order_id}: not in the ledger")
    else:
        lines = ", ".join(f"{line.quantity}×{line.sku}" for line in r.lines) or "none"
        unknown = ", ".join(f"{q}×{s}" for s, q in r.unknown_lines)
        if unknown and view.dismissed is not None:
            d = view.dismissed
            unknown += f" (dismissed {local_time(d.ms)}: {escape(d.reason)})"
        out.print(
            f"{channel} order {order_id}: {r.state.value} (status {r.status or '—'}) at "
            f"{r.location}; lines {lines}" + (f"; unknown {unknown}" if unknown else "")
        )
    if view.unrecognised:
        states = ", ".join(escape(s) for s in view.unrecognised)
        out.print(
            f"[yellow]marketplace states the engine does not recognise[/yellow]: {states} "
            "(ignored; see the events below)"
        )
    for o in view.oversold:
        out.print(f"[red]oversold[/red] {o.sku} by {o.shortfall}")
    for job in view.failed_jobs:
        out.print(f"[red]failed job[/red] {job.job_id}: {job.error}")
    events = titled_table("events", "time", "stage", "source", "action", "status", "outcome")
    for e in view.events:
        events.add_row(local_time(e.ms), e.stage, e.source, e.action, e.status, e.outcome)
    out.print(events)
    pushes = titled_table("pushes it caused", "time", "channel", "sku", "sent", "outcome")
    for p in view.pushes:
        outcome = p.outcome + (f" {p.code}" if p.code else "")
        pushes.add_row(local_time(p.ms), p.channel, p.sku, str(p.quantity), outcome)
    out.print(pushes)


def _user() -> str:
    """Who runs the command, for the journal (the OS user; "unknown" if it has no name)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no LOGNAME/USER and a uid without a passwd entry
        return "unknown"


@order_app.command("dismiss")
def order_dismiss(
    channel: str,
    order_id: str,
    reason: Annotated[
        str, typer.Option("--reason", help="Why nobody will resolve it (kept in the journal).")
    ],
    by: Annotated[
        str | None, typer.Option("--by", help="Who dismisses it (default: your user name).")
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    account: AccountOption = None,
) -> None:
    """Give up on an unknown-SKU order: its parked lines leave the stuck list (reconcile, the
    gauge) without moving stock, and the journal keeps who, why and when. Exit 1 when the
    order has no unknown-SKU lines waiting."""
    who = by or _user()
    with command_operation(config, account) as op:
        try:
            dismissed = dismiss_unknown_order(op.engine, channel, order_id, reason=reason, by=who)
        except NotStuckError as exc:
            err.print(f"[yellow]{escape(str(exc))}[/yellow]")
            raise typer.Exit(1) from None
    if as_json:
        print_json({"dismissed": asdict(dismissed), "by": who, "reason": reason.strip()})
        return
    lines = ", ".join(f"{line.quantity}×{line.item}" for line in dismissed.lines)
    out.print(
        f"{channel} order {order_id}: unknown-SKU lines {lines} dismissed by {escape(who)}, "
        "journaled (inventory-engine explain <item> shows it)"
    )
