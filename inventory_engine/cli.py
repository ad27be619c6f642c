"""The ``inventory-engine`` command line: ``serve`` and the stock and catalog commands.

Commands talk to Redis directly, so they work with or without ``serve`` running (with the
embedded server they find the one ``serve`` started, or start their own for the command).

Exit codes, the same for every command: **0** done, nothing to report; **1** done, and there is
something to report (an unknown SKU, a difference, something stuck, a failed demo check);
**2** an error (bad input or settings, Redis or a marketplace failing).
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import redis
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from inventory_engine import __version__
from inventory_engine.cli_operate import register as register_operate_commands
from inventory_engine.config import Settings, load_settings
from inventory_engine.constants import DEFAULT_LOCATION
from inventory_engine.csv_files import read_catalog_csv, read_stock_csv
from inventory_engine.errors import CatalogError, InventoryError
from inventory_engine.ledger import LedgerReader
from inventory_engine.logs import configure_logging
from inventory_engine.runtime import queue_connection, redis_connection
from inventory_engine.sandbox_channels import SANDBOX_NAMES, channels_for_urls
from inventory_engine.service import Engine

SANDBOX_URL = "http://127.0.0.1:9"
"""Placeholder address of sandbox channels in CLI commands: they only mark and queue, the
running ``serve`` pushes (to its simulators, at their real addresses)."""

app = typer.Typer(
    help=__doc__, no_args_is_help=True, add_completion=False, rich_markup_mode="markdown"
)
stock_app = typer.Typer(
    help="Show and change stock counts.", no_args_is_help=True, rich_markup_mode="markdown"
)
catalog_app = typer.Typer(
    help="Marketplace ids and bundles of your SKUs.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(stock_app, name="stock")
app.add_typer(catalog_app, name="catalog")

out = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML settings file (default: $INVENTORY_CONFIG)."),
]
LocationOption = Annotated[str, typer.Option("--location", help="Warehouse.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
AccountOption = Annotated[
    str | None,
    typer.Option(
        "--account",
        help="Seller account (with [[accounts]]; default: the account named 'default').",
    ),
]


@contextmanager
def _session(
    config: Path | None, account: str | None = None
) -> Iterator[tuple[Settings, redis.Redis]]:
    """The settings of ``account`` and a Redis client for one command; errors become a message
    and exit 2."""
    try:
        settings = load_settings(config).pick_account(account)
        configure_logging(level="WARNING")
        with redis_connection(settings) as client:
            yield settings, client
    except (InventoryError, ValueError) as exc:
        fail(exc)


EXIT_REPORT = 1
"""Done, and there is something to report (see the module's docstring)."""
EXIT_ERROR = 2
"""Bad input or settings, or Redis or a marketplace failing."""


def fail(exc: Exception) -> NoReturn:
    """Print ``exc`` as the command's error and exit :data:`EXIT_ERROR`."""
    err.print(f"[red]error:[/red] {escape(str(exc))}")
    raise typer.Exit(EXIT_ERROR) from None


@app.command()
def serve(config: ConfigOption = None) -> None:
    """Run the engine (embedded Redis when no [redis] url is set) until stopped."""
    from inventory_engine.daemon import serve as run

    try:
        settings = load_settings(config)
    except InventoryError as exc:
        fail(exc)
    configure_logging()
    run(settings, config=str(config) if config else None)


@app.command()
def worker(
    queues: Annotated[
        str, typer.Option(help="Comma-separated queues: events, push (default both).")
    ] = "events,push",
    config: ConfigOption = None,
) -> None:
    """Run one RQ worker (SimpleWorker: no fork per job). ``serve`` starts these itself; run
    more on other hosts against the same Redis."""
    from inventory_engine.service import EVENTS_QUEUE, PUSH_QUEUE
    from workers.runtime import build_engines, use_engines
    from workers.settings import MAINTENANCE_INTERVAL_S, WITH_SCHEDULER
    from workers.worker import EngineWorker

    try:
        settings = load_settings(config)
        engines = build_engines(settings)
        use_engines(engines)  # the jobs run in this process and use these engines
    except InventoryError as exc:
        fail(exc)
    configure_logging()
    names = {"events": EVENTS_QUEUE, "push": PUSH_QUEUE}
    wanted = [names[q.strip()] for q in queues.split(",") if q.strip() in names]
    if not wanted:
        fail(ValueError("--queues takes events and/or push"))

    def request_stop() -> None:
        for engine in engines:
            engine.senders.request_stop()

    EngineWorker(
        wanted,
        connection=engines.queue_client,
        maintenance_interval=MAINTENANCE_INTERVAL_S,
        on_stop=request_stop,
    ).work(with_scheduler=WITH_SCHEDULER, logging_level="WARNING")
    for engine in engines:
        engine.senders.stop()


@app.command()
def simulate(
    ozon_port: Annotated[int, typer.Option(help="Ozon simulator port (0 = any free).")] = 8101,
    wb_port: Annotated[int, typer.Option(help="Wildberries simulator port.")] = 8102,
    ym_port: Annotated[int, typer.Option(help="Yandex Market simulator port.")] = 8103,
    engine_url: Annotated[
        str | None,
        typer.Option(help="Deliver Ozon and YM push notifications to this engine base URL."),
    ] = None,
) -> None:
    """Run the Ozon, Wildberries and Yandex Market simulators on 127.0.0.1 until Ctrl-C."""
    import threading

    from inventory_engine.simulators.sandbox import (
        sandbox_channels,
        start_sandbox,
    )

    configure_logging(level="WARNING")
    sandbox = start_sandbox(
        ports={"ozon": ozon_port, "wb": wb_port, "ym": ym_port}, engine_url=engine_url
    )
    table = Table(title="marketplace simulators (Ctrl-C stops them)")
    for column in ("channel", "kind", "url", "credentials"):
        table.add_column(column)
    for channel in sandbox_channels(sandbox):
        secret = getattr(channel, "api_key", None) or getattr(channel, "token", None)
        credentials = f"client_id={channel.client_id} " if hasattr(channel, "client_id") else ""
        credentials += f"key={secret.get_secret_value()}" if secret else ""
        table.add_row(channel.name, channel.kind, sandbox.url(channel.name), credentials)
    out.print(table)
    out.print("Admin routes: /_sim/state, /_sim/received, /_sim/faults, /_sim/reset")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        sandbox.stop()


@app.command()
def demo(
    seconds: Annotated[float, typer.Option(min=1, help="How long orders are placed.")] = 30.0,
    rate: Annotated[
        float, typer.Option(min=0.1, max=20, help="Orders per second, all channels together.")
    ] = 2.0,
    settle: Annotated[
        float, typer.Option(min=0, help="Seconds to wait at most for the channels to catch up.")
    ] = 35.0,
) -> None:
    """See the engine at work: embedded Redis, the marketplace simulators, a sample catalog and
    orders on every channel, a live stock table, then a summary (exit 1 if a check failed).

    Runs in a fresh temporary directory: your state, Redis and INVENTORY_* settings are not used.
    """
    from inventory_engine.demo import render_summary, run_demo

    configure_logging(level="WARNING")
    try:
        summary = run_demo(seconds=seconds, rate=rate, settle_s=settle, console=out)
    except InventoryError as exc:
        fail(exc)
    out.print(render_summary(summary))
    if not summary.ok:
        raise typer.Exit(EXIT_REPORT)


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


@stock_app.command("set")
def stock_set(
    sku: str,
    quantity: Annotated[int, typer.Argument(help="Units physically on hand.")],
    location: LocationOption = DEFAULT_LOCATION,
    reason: Annotated[str, typer.Option(help="Recorded in the journal.")] = "stock count",
    config: ConfigOption = None,
    account: AccountOption = None,
) -> None:
    """Set the units on hand of SKU (a stock count)."""
    with _session(config, account) as (settings, client):
        engine = _engine(settings, client)
        engine.ledger.set_on_hand(sku, quantity, location=location, reason=reason, source="cli")
        engine.schedule_pushes()
        _print_stock(LedgerReader(client, account=settings.account), sku, as_json=False)


@stock_app.command("adjust")
def stock_adjust(
    sku: str,
    by: Annotated[int, typer.Option("--by", help="Units to add (negative to remove).")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the journal.")],
    location: LocationOption = DEFAULT_LOCATION,
    config: ConfigOption = None,
    account: AccountOption = None,
) -> None:
    """Add or remove units (goods received, damaged, lost)."""
    with _session(config, account) as (settings, client):
        engine = _engine(settings, client)
        engine.ledger.adjust_on_hand(sku, by, reason=reason, location=location, source="cli")
        engine.schedule_pushes()
        _print_stock(LedgerReader(client, account=settings.account), sku, as_json=False)


@stock_app.command("show")
def stock_show(
    sku: str,
    location: Annotated[str | None, typer.Option("--location", help="Only this one.")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    account: AccountOption = None,
) -> None:
    """On hand, reserved and available per location."""
    with _session(config, account) as (settings, client):
        found = _print_stock(
            LedgerReader(client, account=settings.account),
            sku,
            location=location,
            as_json=as_json,
        )
    if not found:
        raise typer.Exit(EXIT_REPORT)


@stock_app.command("import")
def stock_import(
    file: Annotated[Path, typer.Argument(help="CSV with columns sku,on_hand[,location].")],
    config: ConfigOption = None,
    account: AccountOption = None,
) -> None:
    """Set many counts from a CSV. Every row is checked first: a bad row changes nothing."""
    with _session(config, account) as (settings, client):
        rows = read_stock_csv(file)
        engine = _engine(settings, client)
        ledger = engine.ledger
        # Bundles have no count of their own: refuse the file before any location is written.
        recipes = client.hmget(ledger.keys.bundles, [row.sku for row in rows])
        CatalogError.raise_for(
            [
                (number, f"{row.sku} is a bundle: set its components' counts")
                for number, (row, recipe) in enumerate(zip(rows, recipes, strict=True), start=1)
                if recipe is not None
            ]
        )
        by_location: dict[str, list[tuple[str, int]]] = {}
        for row in rows:
            by_location.setdefault(row.location, []).append((row.sku, row.on_hand))
        changed = 0
        with _progress() as progress:
            task = progress.add_task("importing stock", total=len(rows))
            for location, pairs in by_location.items():
                changed += ledger.import_on_hand(
                    pairs,
                    location=location,
                    source="cli",
                    progress=lambda n: progress.advance(task, n),
                )
        engine.schedule_pushes()
        out.print(f"{len(rows)} rows read, {changed} counts changed")


@catalog_app.command("import")
def catalog_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV: sku,ozon_offer_id,ozon_sku,ozon_product_id,wb_chrt_id,ym_offer_id,bundle"
        ),
    ],
    config: ConfigOption = None,
    account: AccountOption = None,
) -> None:
    """Add or replace catalog entries; the whole file lands or nothing does."""
    with _session(config, account) as (settings, client):
        entries = read_catalog_csv(file)
        engine = _engine(settings, client)
        written = engine.catalog.import_entries(entries)
        engine.schedule_pushes()
        bundles = sum(1 for e in entries if e.bundle)
        out.print(f"{written} catalog entries written ({bundles} bundles)")
        locations = sorted({c.location for c in engine.channel_settings.values()})
        uncounted: set[str] = set()
        for location in locations:
            skus = [e.sku for e in entries]
            uncounted |= engine.reader.available_and_uncounted(skus, location)[1]
        if uncounted:
            sample = ", ".join(sorted(uncounted)[:5]) + ("…" if len(uncounted) > 5 else "")
            out.print(
                f"{len(uncounted)} SKU(s) have no stock count yet ({sample}): they are not "
                "published (a 0 would stop live listings) until a count arrives "
                "(`inventory-engine stock set` / `stock import`)."
            )


def _engine(settings: Settings, client: redis.Redis) -> Engine:
    """An Engine for a CLI change: it marks the change for every channel ``serve`` publishes to
    (the configured ones, or the sandbox's) and queues their pushes, like any other change."""
    channels = settings.channels or channels_for_urls(dict.fromkeys(SANDBOX_NAMES, SANDBOX_URL))
    return Engine(
        settings, client, queue_client=queue_connection(settings, client), channels=channels
    )


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
    )


def _print_stock(
    reader: LedgerReader, sku: str, *, location: str | None = None, as_json: bool
) -> bool:
    stock = reader.stock(sku, location=location)
    if not stock.known:
        err.print(f"[yellow]unknown SKU {sku}[/yellow]: no stock record and not in the catalog")
        return False
    if as_json:
        payload = {
            "sku": stock.sku,
            "on_hand": stock.on_hand,
            "reserved": stock.reserved,
            "available": stock.available,
            "locations": {
                loc: {"on_hand": lv.on_hand, "reserved": lv.reserved, "available": lv.available}
                for loc, lv in stock.levels.items()
            },
            "bundle": [{"sku": s, "quantity": q} for s, q in stock.recipe or ()] or None,
        }
        out.print_json(json.dumps(payload))
        return True
    title = f"{sku}" + (
        " (bundle: " + ", ".join(f"{q}×{s}" for s, q in stock.recipe) + ")" if stock.recipe else ""
    )
    table = Table(title=title)
    for column in ("location", "on hand", "reserved", "available"):
        table.add_column(column, justify="left" if column == "location" else "right")
    for loc, level in stock.levels.items():
        if stock.recipe:
            table.add_row(loc, "—", "—", str(level.available))
        else:
            table.add_row(loc, str(level.on_hand), str(level.reserved), str(level.available))
    out.print(table)
    return True


register_operate_commands(app)  # reconcile, retry, explain, order, orders, oversold
