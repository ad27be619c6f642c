"""Operator commands: ``reconcile``, ``retry``, ``explain``, ``order show``, ``order dismiss``,
``orders check``, ``oversold``, ``channels show`` and ``accounts list`` (the work is in
:mod:`inventory_engine.operate`; this package prints it).

Exit codes, for cron and scripts: 0 nothing to report, 1 something differs, is missing or is
stuck, 2 an error (bad settings, Redis or a marketplace failing).

One module per command group: :mod:`.reconcile`, :mod:`.stuck` (the stuck list reconcile
prints, and ``retry``), :mod:`.explain`, :mod:`.order` (``order show`` and ``order dismiss``),
:mod:`.orders` (``orders check``), :mod:`.oversold`, :mod:`.channels` (``channels show``) and
:mod:`.accounts` (``accounts list``);
:mod:`.common` holds what they share (options, consoles, the Operation of one command, time and
table formatting).
"""

from __future__ import annotations

import typer

# Relative: mypy does not resolve a package's own submodules imported by absolute name here.
from . import accounts, channels, explain, order, orders, oversold, reconcile, stuck


def register(app: typer.Typer) -> None:
    """Add the operator commands to the ``inventory-engine`` app."""
    app.command("reconcile")(reconcile.reconcile)
    app.command("retry")(stuck.retry)
    app.command("explain")(explain.explain)
    app.command("oversold")(oversold.oversold)
    app.add_typer(order.order_app, name="order")
    app.add_typer(orders.orders_app, name="orders")
    app.add_typer(channels.channels_app, name="channels")
    app.add_typer(accounts.accounts_app, name="accounts")
