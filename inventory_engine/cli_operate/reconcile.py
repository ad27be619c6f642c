"""``reconcile``: every listed item read back from each channel and compared with what the
ledger says it should show, with the corrections sent and what is stuck."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rq import Worker

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
from inventory_engine.cli_operate.stuck import print_stuck
from inventory_engine.operate.reconcile import ItemStatus, ReconcileRun, run_reconcile


def reconcile(
    channel: ChannelOption = None,
    apply: Annotated[bool, typer.Option("--apply", help="Send corrections (push path).")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="With --apply: wait, read again.")] = False,
    wait_timeout: Annotated[float, typer.Option(min=1, help="Seconds --wait waits.")] = 120.0,
    show_all: AllOption = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    account: AccountOption = None,
) -> None:
    """Read every listed item back from each channel and compare it with what the ledger says
    the channel should show. Exit 0: nothing differs; 1: something differs or is stuck; 2: an
    error. A change waiting to be pushed is shown as pending, not as a difference."""
    with command_operation(config, account) as op:
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
        print_json(run.as_json())
    else:
        _print_reconcile(run, apply, wait)
    if run.report.errors:
        raise typer.Exit(2)
    if not run.ok:
        raise typer.Exit(1)


def _print_reconcile(run: ReconcileRun, apply: bool, wait: bool) -> None:
    """Each channel's counts, the items that differ, the corrections, then what is stuck."""
    for check in run.report.channels:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(check.counts.items())) or "nothing"
        line = f"{check.channel}: {check.checked} of {check.listed} listed items read: {counts}"
        if check.paused_until_ms:
            line += f" (pushes paused until {local_time(check.paused_until_ms)})"
        out.print(line)
        if check.error:
            err.print(f"[red]{check.channel}: {check.error}[/red]")
    if run.report.items:
        _print_items(run)
    if run.corrections:
        _print_corrections(run)
        if not wait:
            out.print(f"{len(run.corrections)} correction(s) queued for the push workers")
    elif apply:
        out.print("nothing to correct")
    print_stuck(run.stuck)


def _print_items(run: ReconcileRun) -> None:
    table = titled_table("items", "sku", "channel", "expected", "actual", "status", "last push")
    for i in run.report.items:
        actual = "not listed" if i.actual is None else str(i.actual)
        if i.present is not None and i.reserved:
            actual += f" ({i.present} present − {i.reserved} reserved)"
        status = i.status.value
        if i.status is ItemStatus.PARKED and i.parked is not None:
            status += f": {i.parked.code}"
        push = i.last_push
        pushed = f"{local_time(push.ms)} {push.quantity} {push.outcome}" if push else "never"
        table.add_row(i.sku, i.channel, str(i.expected), actual, status, pushed)
    out.print(table)


def _print_corrections(run: ReconcileRun) -> None:
    table = titled_table("corrections", "sku", "channel", "expected", "was", "outcome", "now")
    for c in run.corrections:
        now = "—" if c.after is None else str(c.after)
        outcome = c.outcome + (f" ({c.code})" if c.code else "")
        was = "not listed" if c.before is None else str(c.before)
        table.add_row(c.sku, c.channel, str(c.expected), was, outcome, now)
    out.print(table)
