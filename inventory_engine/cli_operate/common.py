"""What the operator commands share: their options, the consoles they print to, the Operation
one command works with, and how times, JSON and tables are shown."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from inventory_engine.config import load_settings
from inventory_engine.errors import InventoryError
from inventory_engine.logs import configure_logging
from inventory_engine.operate.common import Operation, operation
from inventory_engine.runtime import redis_connection

out = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML settings file (default: $INVENTORY_CONFIG)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
AccountOption = Annotated[
    str | None,
    typer.Option(
        "--account",
        help="Seller account (with [[accounts]]; default: the account named 'default').",
    ),
]
ChannelOption = Annotated[str | None, typer.Option("--channel", help="Only this channel.")]
AllOption = Annotated[bool, typer.Option("--all", help="Also list what is fine.")]


@contextmanager
def command_operation(config: Path | None, account: str | None = None) -> Iterator[Operation]:
    """An Engine of ``account`` for one command; errors become a message and exit code 2."""
    try:
        settings = load_settings(config).pick_account(account)
        configure_logging(level="WARNING")
        with redis_connection(settings) as client, operation(settings, client) as op:
            yield op
    except (InventoryError, ValueError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None


def local_time(ms: int | None) -> str:
    """Local time of an epoch ms, to the second."""
    if not ms:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def print_json(payload: Any) -> None:
    """``payload`` as JSON on stdout (non-ASCII kept, anything else as its text)."""
    out.print_json(json.dumps(payload, ensure_ascii=False, default=str))


def titled_table(title: str | None, *columns: str) -> Table:
    """An empty table with these columns."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    return table
