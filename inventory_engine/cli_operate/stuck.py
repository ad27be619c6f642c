"""What is stuck (failed jobs, parked items, unknown-SKU orders, dead-lettered events), as
``reconcile`` prints it, and ``retry``, which sends it all again once the cause is fixed."""

from __future__ import annotations

import typer

from inventory_engine.cli_operate.common import (
    AccountOption,
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
from inventory_engine.operate.stuck import StuckReport, retry_stuck


def print_stuck(stuck: StuckReport) -> None:
    """One table per kind of stuck thing, then how to retry (or dismiss) them."""
    if not stuck.total:
        out.print("nothing stuck")
        return
    if stuck.failed_jobs:
        table = titled_table("failed jobs", "queue", "job", "channel", "order", "error", "ended")
        for j in stuck.failed_jobs:
            table.add_row(j.queue, j.job_id, j.channel, j.order_id, j.error, local_time(j.ended_ms))
        out.print(table)
    if stuck.parked:
        table = titled_table("parked items", "channel", "sku", "value", "code", "message", "since")
        for item in stuck.parked:
            p = item.parked
            value = "—" if p.quantity is None else str(p.quantity)
            table.add_row(item.channel, item.sku, value, p.code, p.message, local_time(p.ms))
        out.print(table)
    if stuck.unknown_orders:
        _print_unknown_orders(stuck)
    if stuck.dead_letters:
        _print_dead_letters(stuck)
    if stuck.drifting:
        table = titled_table("persistent drift (read-back)", "channel", "sku", "passes")
        for d in stuck.drifting:
            table.add_row(d.channel, d.sku, str(d.passes))
        out.print(table)
        out.print(
            "drifting items are sent again at every read-back pass; if it keeps coming back, "
            "look at the item in the marketplace's cabinet (`inventory-engine explain SKU`)"
        )
    out.print("once the cause is fixed: inventory-engine retry")
    if stuck.unknown_orders:
        out.print(
            "to give up on an unknown-SKU order: inventory-engine order dismiss <channel> "
            '<order> --reason "..."'
        )


def _print_unknown_orders(stuck: StuckReport) -> None:
    table = titled_table(
        "unknown-SKU orders", "channel", "order", "state", "lines", "maps to now", "since"
    )
    for o in stuck.unknown_orders:
        lines = ", ".join(f"{line.quantity}×{line.item}" for line in o.lines)
        now = ", ".join(line.sku_now or "still unknown" for line in o.lines)
        state = o.state or "record expired"
        table.add_row(o.channel, o.order_id, state, lines, now, local_time(o.ms))
    out.print(table)


def _print_dead_letters(stuck: StuckReport) -> None:
    table = titled_table(
        "dead-lettered events", "channel", "order", "action", "error", "deliveries", "since"
    )
    for e in stuck.dead_letters:
        error = f"{e.reason}: {e.error}" if e.error else e.reason
        table.add_row(e.channel, e.order_id, e.action, error, str(e.deliveries), local_time(e.ms))
    out.print(table)


def retry(
    channel: ChannelOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    account: AccountOption = None,
) -> None:
    """Put dead-lettered events back in the inbox, requeue failed jobs, send parked items again
    and apply unknown-SKU lines the catalog maps now (once their cause is fixed); unknown-SKU
    lines of cancelled orders are dismissed."""
    with command_operation(config, account) as op:
        names = op.channels(channel) if channel else None
        report = retry_stuck(op.engine, names)
    if as_json:
        print_json(report.as_json())
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
