"""Operator commands: ``reconcile``, ``retry``, ``explain``, ``order show``, ``order dismiss``,
``orders check`` and ``oversold`` (the work is in :mod:`inventory_engine.operate`; this module
prints it).

Exit codes, for cron and scripts: 0 nothing to report, 1 something differs, is missing or is
stuck, 2 an error (bad settings, Redis or a marketplace failing).
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rq import Worker

from inventory_engine.config import load_settings
from inventory_engine.constants import STOREFRONT_CHANNEL
from inventory_engine.errors import InventoryError
from inventory_engine.logs import configure_logging
from inventory_engine.operate.common import Operation, operation, parse_duration
from inventory_engine.operate.explain import explain as explain_sku
from inventory_engine.operate.order_view import show_order
from inventory_engine.operate.orders_check import check_orders
from inventory_engine.operate.oversold import as_json as oversold_json
from inventory_engine.operate.oversold import oversold_lines
from inventory_engine.operate.reconcile import ItemStatus, ReconcileRun, run_reconcile
from inventory_engine.operate.stuck import (
    NotStuckError,
    StuckReport,
    dismiss_unknown_order,
    retry_stuck,
)
from inventory_engine.runtime import redis_connection

order_app = typer.Typer(
    help="One marketplace order as the engine saw it.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
orders_app = typer.Typer(
    help="Marketplace orders against the ledger.", no_args_is_help=True, rich_markup_mode="markdown"
)

out = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML settings file (default: $INVENTORY_CONFIG)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ChannelOption = Annotated[str | None, typer.Option("--channel", help="Only this channel.")]
AllOption = Annotated[bool, typer.Option("--all", help="Also list what is fine.")]


def register(app: typer.Typer) -> None:
    """Add the operator commands to the ``inventory-engine`` app."""
    app.command("reconcile")(reconcile)
    app.command("retry")(retry)
    app.command("explain")(explain)
    app.command("oversold")(oversold)
    app.add_typer(order_app, name="order")
    app.add_typer(orders_app, name="orders")


@contextmanager
def _operation(config: Path | None) -> Iterator[Operation]:
    """An Engine for one command; errors become a message and exit code 2."""
    try:
        settings = load_settings(config)
        configure_logging(level="WARNING")
        with redis_connection(settings) as client, operation(settings, client) as op:
            yield op
    except (InventoryError, ValueError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None


def _time(ms: int | None) -> str:
    """Local time of an epoch ms, to the second."""
    if not ms:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _json(payload: Any) -> None:
    out.print_json(json.dumps(payload, ensure_ascii=False, default=str))


def _table(title: str | None, *columns: str) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    return table


# -- reconcile and retry -------------------------------------------------------------------------


def reconcile(
    channel: ChannelOption = None,
    apply: Annotated[bool, typer.Option("--apply", help="Send corrections (push path).")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="With --apply: wait, read again.")] = False,
    wait_timeout: Annotated[float, typer.Option(min=1, help="Seconds --wait waits.")] = 120.0,
    show_all: AllOption = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Read every listed item back from each channel and compare it with what the ledger says
    the channel should show. Exit 0: nothing differs; 1: something differs or is stuck; 2: an
    error. A change waiting to be pushed is shown as pending, not as a difference."""
    with _operation(config) as op:
        names = op.channels(channel, readable=True)
        if apply and wait and not Worker.count(queue=op.engine.pushes):
            err.print("[yellow]no worker is running:[/yellow] the corrections wait for serve")
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        shown = not as_json and err.is_terminal  # a progress bar on a terminal only
        progress = Progress(*columns, console=err, transient=True, disable=not shown)
        tasks: dict[str, Any] = {}
        with progress:
            run = run_reconcile(
                op,
                names,
                apply=apply,
                wait_s=wait_timeout if wait else None,
                keep_all=show_all,
                stuck_channels=names if channel else None,
                on_listed=lambda n, total: tasks.__setitem__(
                    n, progress.add_task(f"reading {n}", total=total)
                ),
                progress=lambda n, done: progress.advance(tasks[n], done),
            )
    if as_json:
        _json(run.as_json())
    else:
        _print_reconcile(run, apply, wait)
    if run.report.errors:
        raise typer.Exit(2)
    if not run.ok:
        raise typer.Exit(1)


def _print_reconcile(run: ReconcileRun, apply: bool, wait: bool) -> None:
    items, corrections = run.report.items, run.corrections
    for check in run.report.channels:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(check.counts.items())) or "nothing"
        line = f"{check.channel}: {check.checked} of {check.listed} listed items read: {counts}"
        if check.paused_until_ms:
            line += f" (pushes paused until {_time(check.paused_until_ms)})"
        out.print(line)
        if check.error:
            err.print(f"[red]{check.channel}: {check.error}[/red]")
    if items:
        table = _table("items", "sku", "channel", "expected", "actual", "status", "last push")
        for i in items:
            actual = "not listed" if i.actual is None else str(i.actual)
            if i.present is not None and i.reserved:
                actual += f" ({i.present} present − {i.reserved} reserved)"
            status = i.status.value
            if i.status is ItemStatus.PARKED and i.parked is not None:
                status += f": {i.parked.code}"
            push = i.last_push
            pushed = f"{_time(push.ms)} {push.quantity} {push.outcome}" if push else "never"
            table.add_row(i.sku, i.channel, str(i.expected), actual, status, pushed)
        out.print(table)
    if corrections:
        table = _table("corrections", "sku", "channel", "expected", "was", "outcome", "now")
        for c in corrections:
            now = "—" if c.after is None else str(c.after)
            outcome = c.outcome + (f" ({c.code})" if c.code else "")
            was = "not listed" if c.before is None else str(c.before)
            table.add_row(c.sku, c.channel, str(c.expected), was, outcome, now)
        out.print(table)
        if not wait:
            out.print(f"{len(corrections)} correction(s) queued for the push workers")
    elif apply:
        out.print("nothing to correct")
    _print_stuck(run.stuck)


def _print_stuck(stuck: StuckReport) -> None:
    if not stuck.total:
        out.print("nothing stuck")
        return
    if stuck.failed_jobs:
        table = _table("failed jobs", "queue", "job", "channel", "order", "error", "ended")
        for j in stuck.failed_jobs:
            table.add_row(j.queue, j.job_id, j.channel, j.order_id, j.error, _time(j.ended_ms))
        out.print(table)
    if stuck.parked:
        table = _table("parked items", "channel", "sku", "value", "code", "message", "since")
        for item in stuck.parked:
            p = item.parked
            value = "—" if p.quantity is None else str(p.quantity)
            table.add_row(item.channel, item.sku, value, p.code, p.message, _time(p.ms))
        out.print(table)
    if stuck.unknown_orders:
        table = _table(
            "unknown-SKU orders", "channel", "order", "state", "lines", "maps to now", "since"
        )
        for o in stuck.unknown_orders:
            lines = ", ".join(f"{line.quantity}×{line.item}" for line in o.lines)
            now = ", ".join(line.sku_now or "still unknown" for line in o.lines)
            state = o.state or "record expired"
            table.add_row(o.channel, o.order_id, state, lines, now, _time(o.ms))
        out.print(table)
    if stuck.dead_letters:
        table = _table(
            "dead-lettered events", "channel", "order", "action", "error", "deliveries", "since"
        )
        for e in stuck.dead_letters:
            error = f"{e.reason}: {e.error}" if e.error else e.reason
            table.add_row(e.channel, e.order_id, e.action, error, str(e.deliveries), _time(e.ms))
        out.print(table)
    out.print("once the cause is fixed: inventory-engine retry")
    if stuck.unknown_orders:
        out.print(
            "to give up on an unknown-SKU order: inventory-engine order dismiss <channel> "
            '<order> --reason "..."'
        )


def retry(
    channel: ChannelOption = None, as_json: JsonOption = False, config: ConfigOption = None
) -> None:
    """Put dead-lettered events back in the inbox, requeue failed jobs, send parked items again
    and apply unknown-SKU lines the catalog maps now (once their cause is fixed); unknown-SKU
    lines of cancelled orders are dismissed."""
    with _operation(config) as op:
        names = op.channels(channel) if channel else None
        report = retry_stuck(op.engine, names)
    if as_json:
        _json(report.as_json())
    else:
        out.print(f"{len(report.requeued_events)} dead-lettered event(s) queued again")
        out.print(f"{len(report.requeued)} failed job(s) requeued")
        for job, error in report.not_requeued:
            err.print(f"[yellow]job {job.job_id} not requeued:[/yellow] {error}")
        out.print(f"{len(report.unparked)} parked item(s) sent again")
        for o in report.resolved:
            mapped = ", ".join(f"{line.item} → {line.sku_now}" for line in o.lines if line.sku_now)
            out.print(f"unknown-SKU lines of {o.channel} order {o.order_id} applied: {mapped}")
        for o in report.unknown_orders:
            mapped = ", ".join(f"{line.item} → {line.sku_now or '?'}" for line in o.lines)
            out.print(
                f"unknown-SKU lines of {o.channel} order {o.order_id} still unknown: {mapped}"
            )
        for o in report.dropped:
            out.print(f"unknown-SKU lines of cancelled {o.channel} order {o.order_id} dismissed")
    if report.not_requeued:
        raise typer.Exit(1)


# -- explain, order show, orders check, oversold -------------------------------------------------


def explain(
    sku: str,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Journal entries.")] = 20,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Why a channel shows what it shows: the SKU's journal, newest first, with the pushes
    that followed each change and their outcome."""
    with _operation(config) as op:
        found = explain_sku(op.engine, sku, limit=limit)
    if not found.known and not found.steps:
        err.print(f"[yellow]unknown SKU {sku}[/yellow]: no stock record and not in the catalog")
        raise typer.Exit(1)
    if as_json:
        _json(asdict(found))
        return
    bundle = f" (bundle of {', '.join(found.components)})" if found.components else ""
    out.print(f"{sku}{bundle}: {found.available} available")
    now = _table("channels now", "channel", "item", "should show", "accepted", "state")
    for ch in found.channels:
        m = ch.marks
        state = []
        if m.pending_since_ms:
            state.append(f"pending since {_time(m.pending_since_ms)}")
        if m.not_before_ms:
            state.append(f"item window until {_time(m.not_before_ms)}")
        if m.parked:
            state.append(f"parked: {m.parked.code} {m.parked.message}")
        accepted = "—" if m.accepted is None else str(m.accepted)
        shown = str(m.expected) if ch.item_id else "not listed"
        now.add_row(ch.channel, ch.item_id or "—", shown, accepted, "; ".join(state) or "in sync")
    out.print(now)
    table = _table("journal, newest first", "time", "operation", "channel", "order", "change")
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
        table.add_row(_time(e.ms), op_text, e.channel, e.order_id or "—", ", ".join(change))
        for push in step.pushes:
            code = f" {push.code}" if push.code else ""
            table.add_row(
                "", f"  ↳ push {_time(push.ms)}", push.channel, "",
                f"sent {push.quantity}: {push.outcome}{code}",
            )  # fmt: skip
    out.print(table)


@order_app.command("show")
def order_show(
    channel: str, order_id: str, as_json: JsonOption = False, config: ConfigOption = None
) -> None:
    """Every event received for the order, its state and lines in the ledger, and the pushes
    it caused. Exit 1 when the engine never heard of it."""
    with _operation(config) as op:
        view = show_order(op.engine, channel, order_id)
    if as_json:
        _json(view.as_json())
    elif (
        not view.known
        and channel not in op.engine.channel_settings
        and channel != STOREFRONT_CHANNEL
    ):
        names = ", ".join(sorted(op.engine.channel_settings)) or "none"
        err.print(
            f"[yellow]{channel} order {order_id}[/yellow]: never received, and no channel "
            f"named {channel!r} is configured (configured: {names}; the storefront's "
            f"reservations are under {STOREFRONT_CHANNEL!r}, orders sent to POST /v1/orders "
            "under the channel they named)"
        )
    elif not view.known:
        err.print(f"[yellow]{channel} order {order_id}[/yellow]: never received")
    else:
        r = view.record
        if r is None:
            out.print(f"{channel} order {order_id}: not in the ledger")
        else:
            lines = ", ".join(f"{line.quantity}×{line.sku}" for line in r.lines) or "none"
            unknown = ", ".join(f"{q}×{s}" for s, q in r.unknown_lines)
            if unknown and view.dismissed is not None:
                d = view.dismissed
                unknown += f" (dismissed {_time(d.ms)}: {escape(d.reason)})"
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
        events = _table("events", "time", "stage", "source", "action", "status", "outcome")
        for e in view.events:
            events.add_row(_time(e.ms), e.stage, e.source, e.action, e.status, e.outcome)
        out.print(events)
        pushes = _table("pushes it caused", "time", "channel", "sku", "sent", "outcome")
        for p in view.pushes:
            outcome = p.outcome + (f" {p.code}" if p.code else "")
            pushes.add_row(_time(p.ms), p.channel, p.sku, str(p.quantity), outcome)
        out.print(pushes)
    if not view.known:
        raise typer.Exit(1)


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
) -> None:
    """Give up on an unknown-SKU order: its parked lines leave the stuck list (reconcile, the
    gauge) without moving stock, and the journal keeps who, why and when. Exit 1 when the
    order has no unknown-SKU lines waiting."""
    who = by or _user()
    with _operation(config) as op:
        try:
            dismissed = dismiss_unknown_order(op.engine, channel, order_id, reason=reason, by=who)
        except NotStuckError as exc:
            err.print(f"[yellow]{escape(str(exc))}[/yellow]")
            raise typer.Exit(1) from None
    if as_json:
        _json({"dismissed": asdict(dismissed), "by": who, "reason": reason.strip()})
        return
    lines = ", ".join(f"{line.quantity}×{line.item}" for line in dismissed.lines)
    out.print(
        f"{channel} order {order_id}: unknown-SKU lines {lines} dismissed by {escape(who)}, "
        "journaled (inventory-engine explain <item> shows it)"
    )


@orders_app.command("check")
def orders_check(
    channel: ChannelOption = None,
    since: Annotated[str, typer.Option("--since", help="Period: 15m, 2h, 1d...")] = "24h",
    show_all: AllOption = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """The marketplace's own orders of the period against the ledger: states and lines (SKU,
    quantity). Each order missing, in another state or with other lines is named with the
    likely reason and each line that differs. Exit 1 when something is missing or differs, 2
    on errors."""
    with _operation(config) as op:
        period = parse_duration(since)
        names = op.channels(channel, readable=True)
        report = check_orders(op, names, since=period, keep_all=show_all)
    if as_json:
        _json({"ok": not report.problems and not report.errors, **asdict(report)})
    else:
        for ch in report.channels:
            counts = ", ".join(f"{n} {v}" for v, n in sorted(ch.counts.items())) or "no orders"
            since_text = _time(report.since_ms)
            out.print(f"{ch.channel}: {ch.listed} order(s) listed since {since_text}: {counts}")
            if ch.error:
                err.print(f"[red]{ch.channel}: {ch.error}[/red]")
        rows = [c for ch in report.channels for c in ch.checks]
        if rows:
            table = _table(
                "orders", "channel", "order", "marketplace", "ledger", "verdict", "reason"
            )
            for c in rows:
                table.add_row(
                    c.channel, c.order_id, f"{c.status} ({c.action})", c.ledger_state or "—",
                    c.verdict.value, c.reason,
                )  # fmt: skip
            out.print(table)
    if report.errors:
        raise typer.Exit(2)
    if report.problems:
        raise typer.Exit(1)


def oversold(
    open_only: Annotated[
        bool, typer.Option("--open", help="Only orders that still need action.")
    ] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Marketplace orders that took available below zero: channel, order, SKU, shortfall and
    what to do. Exit 1 while one still needs action (cancel before it is prepared)."""
    with _operation(config) as op:
        kinds = {name: c.kind for name, c in op.engine.channel_settings.items()}
        lines = oversold_lines(op.engine.reader, kinds=kinds, open_only=open_only)
    if as_json:
        _json(oversold_json(lines))
    elif not lines:
        out.print("no oversold orders")
    else:
        table = _table("oversold", "time", "channel", "order", "sku", "shortfall", "state")
        for x in lines:
            table.add_row(
                _time(x.ms), x.channel, x.order_id, x.sku, str(x.shortfall), x.state or "—"
            )
        out.print(table)
        short: dict[tuple[str, str], list[str]] = {}
        for x in (x for x in lines if x.needs_action):
            short.setdefault((x.channel, x.order_id), []).append(f"{x.shortfall}×{x.sku}")
        for (name, order_id), missing in short.items():
            hint = " (Ozon: reason 352)" if kinds.get(name) == "ozon" else ""
            advice = f"cancel it before it is prepared{hint}, or find {', '.join(missing)}"
            out.print(f"{name} order {order_id}: {advice}")
    if any(x.needs_action for x in lines):
        raise typer.Exit(1)
