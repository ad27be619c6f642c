"""``inventory-engine demo``: the whole engine at work on a laptop, in one command.

Everything ``serve`` runs (embedded Redis, HTTP API, RQ worker processes, order pollers) plus
the three marketplace simulators, in a fresh temporary state directory that is deleted at the
end: the user's own state directory, Redis and ``INVENTORY_*`` settings are never used (those
variables are set aside for the run, so worker processes cannot pick them up either).

A sample catalog (8 SKUs and a bundle, listed on every marketplace) is seeded, then orders are
placed on every channel in turn: Ozon postings and Yandex Market orders (the simulators notify
the engine's webhooks), Wildberries assembly tasks (found by the WB poller, every 2 s) and
storefront reservations (``POST /v1/reservations``). A marketplace only sells what it shows.

Propagation latency of an order to a channel: from placing the order to the first stock value
that channel accepted for the item afterwards. It includes the WB poll interval for WB orders,
and Ozon accepts one update per item every 30 s, so a busy item waits for Ozon's window.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import random
import secrets
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from inventory_engine.config import load_settings
from inventory_engine.constants import STOREFRONT_CHANNEL
from inventory_engine.domain.bundles import parse_recipe
from inventory_engine.errors import InventoryError
from inventory_engine.ledger import LedgerReader, RedisLedger
from inventory_engine.ledger.catalog import CatalogEntry, CatalogStore
from inventory_engine.runtime import redis_connection
from inventory_engine.simulators.sandbox import Sandbox, sandbox_channels, start_sandbox

SAMPLE_STOCK: dict[str, int] = {
    "MUG-WHITE": 40, "MUG-BLACK": 25, "TEA-GREEN": 60, "TEA-BLACK": 50,
    "TEAPOT": 12, "SPOON": 80, "COASTER": 30, "CANDLE": 6,
}  # fmt: skip
BUNDLES: dict[str, str] = {"TEA-SET": "TEAPOT:1;MUG-WHITE:2;TEA-GREEN:1"}
SKUS = (*SAMPLE_STOCK, *BUNDLES)
MARKETPLACES = ("ozon", "wb", "ym")
SOURCES = (*MARKETPLACES, STOREFRONT_CHANNEL)
OZON_SKU = {sku: 1_470_000 + n for n, sku in enumerate(SKUS, start=1)}
WB_CHRT_ID = {sku: 77_000_000 + n for n, sku in enumerate(SKUS, start=1)}
WB_POLL_S = 2.0
REFRESH_S = 0.5
READY_TIMEOUT_S = 90.0
PUBLISH_TIMEOUT_S = 20.0


class DemoError(InventoryError):
    """The demo could not run (the engine did not start)."""


@dataclass
class ChannelStats:
    """One channel's share of the run: orders placed on it, values it accepted, latency to it."""

    orders: int = 0
    refused: int = 0
    """Storefront reservations the ledger refused (409 insufficient stock)."""
    pushes: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile (``q`` in 0..1) of the latencies, None without any."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class DemoSummary:
    """What the run did and how the engine kept up."""

    seconds: float
    channels: dict[str, ChannelStats]
    orders_recorded: int
    """Placed orders the ledger knows at the end (all of them, unless it fell behind)."""
    oversold_units: int
    oversold_orders: int
    violations: dict[str, dict[str, int]]
    """Limit violations per simulator, by kind (the engine must cause none)."""
    negative: list[str]
    """SKUs with a negative on-hand or reserved counter (must be empty)."""
    behind: int
    """(SKU, marketplace) pairs not showing the engine's current value at the end."""
    unmatched: int
    """(order, marketplace) pairs for which no value arrived after the order."""
    unmatched_unchanged: int = 0
    """Of ``unmatched``: the marketplace shows the engine's value, so that order did not change
    its number (it already showed 0, or a buffer or share kept it): nothing had to be sent."""

    @property
    def orders(self) -> int:
        return sum(stats.orders for stats in self.channels.values())

    @property
    def ok(self) -> bool:
        return not any(v for kinds in self.violations.values() for v in kinds.values()) and (
            not self.negative
        )


@dataclass
class _Order:
    channel: str
    order_id: str
    sku: str
    quantity: int
    at_ns: int
    waiting: set[str]


def catalog() -> list[CatalogEntry]:
    """The sample catalog: every SKU listed on every marketplace, one bundle."""
    return [
        CatalogEntry(
            sku=sku,
            ozon_offer_id=sku,
            ozon_sku=OZON_SKU[sku],
            wb_chrt_id=WB_CHRT_ID[sku],
            ym_offer_id=sku,
            bundle=parse_recipe(BUNDLES[sku]) if sku in BUNDLES else None,
        )
        for sku in SKUS
    ]


class _Demo:
    """Places orders, reads what the simulators accepted and the ledger, renders the tables."""

    def __init__(
        self, http: httpx.Client, api: str, token: str, sims: dict[str, str], reader: LedgerReader
    ) -> None:
        self.http, self.api, self.sims, self.reader = http, api, sims, reader
        self.auth = {"Authorization": f"Bearer {token}"}
        self.stats = {name: ChannelStats() for name in SOURCES}
        self.orders: list[_Order] = []
        self.recorded: set[tuple[str, str]] = set()
        self.cursor = dict.fromkeys(MARKETPLACES, 0)
        self.shown: dict[tuple[str, str], tuple[int, int]] = {}
        """(channel, sku) -> (last value the simulator accepted, when in epoch ns)."""
        self.stock: dict[str, dict[str, Any]] = {}
        self.item_sku = {("ozon", s): s for s in SKUS} | {("ym", s): s for s in SKUS}
        self.item_sku |= {("wb", str(WB_CHRT_ID[s])): s for s in SKUS}
        self.turn = itertools.cycle(SOURCES)
        self.reservations = itertools.count(1)
        self.random = random.Random()  # noqa: S311 - sample orders, not security
        self.started = time.monotonic()
        self.phase = "starting"

    # -- orders ------------------------------------------------------------------------------

    def place_order(self) -> None:
        channel = next(self.turn)
        quantity = 1 if channel == "wb" else self.random.choice((1, 1, 2))
        skus = [
            s for s in SKUS if channel == STOREFRONT_CHANNEL or self._can_sell(channel, s, quantity)
        ]
        if not skus:
            return
        sku, at_ns = self.random.choice(skus), time.time_ns()
        order_id = self._send(channel, sku, quantity)
        if order_id is None:
            self.stats[channel].refused += 1
            return
        self.stats[channel].orders += 1
        waiting = set(MARKETPLACES) - {channel}
        self.orders.append(_Order(channel, order_id, sku, quantity, at_ns, waiting))

    def _can_sell(self, channel: str, sku: str, quantity: int) -> bool:
        """Whether the marketplace shows ``quantity``: its last value less what it sold since."""
        value, at_ns = self.shown.get((channel, sku), (0, 0))
        mine = (o for o in self.orders if (o.channel, o.sku) == (channel, sku))
        return value - sum(o.quantity for o in mine if o.at_ns > at_ns) >= quantity

    def _send(self, channel: str, sku: str, quantity: int) -> str | None:
        """Place one order; its id, or None when the storefront's reservation was refused."""
        bodies: dict[str, tuple[str, dict[str, Any], str]] = {
            "ozon": ("postings", {"products": [{"sku": OZON_SKU[sku], "quantity": quantity}]},
                     "posting_number"),
            "wb": ("orders", {"chrtId": WB_CHRT_ID[sku]}, "id"),
            "ym": ("orders", {"items": [{"offerId": sku, "count": quantity}]}, "orderId"),
        }  # fmt: skip
        if channel in bodies:
            route, body, key = bodies[channel]
            answer = self.http.post(f"{self.sims[channel]}/_sim/{route}", json=body)
            return str(answer.raise_for_status().json()[key])
        reservation = f"demo-{next(self.reservations)}"
        lines = [{"sku": sku, "quantity": quantity}]
        answer = self.http.post(
            f"{self.api}/v1/reservations",
            json={"reservation_id": reservation, "lines": lines},
            headers=self.auth,
        )
        if answer.status_code == 409:
            return None
        answer.raise_for_status()
        return reservation

    # -- observing ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the values the simulators accepted since last time, and the ledger's view."""
        pending = [o for o in self.orders if o.waiting]
        for channel, url in self.sims.items():
            body = self.http.get(f"{url}/_sim/received", params={"since": self.cursor[channel]})
            received = body.raise_for_status().json()
            self.cursor[channel] = received["next"]
            for row in received["received"]:
                sku = self.item_sku.get((channel, row["item_id"]))
                if sku is None:
                    continue
                self.stats[channel].pushes += 1
                self.shown[channel, sku] = (row["value"], row["at_ns"])
                for order in pending:
                    if order.sku == sku and channel in order.waiting and order.at_ns < row["at_ns"]:
                        order.waiting.discard(channel)
                        self.stats[channel].latencies_ms.append((row["at_ns"] - order.at_ns) / 1e6)
        for sku in SKUS:
            answer = self.http.get(f"{self.api}/v1/stock/{sku}", headers=self.auth)
            if answer.status_code == 200:
                self.stock[sku] = answer.json()

    def behind(self) -> int:
        """(SKU, marketplace) pairs whose shown value is not the engine's target (or unknown)."""
        count = 0
        for sku in SKUS:
            channels = self.stock.get(sku, {}).get("channels", {})
            for name in MARKETPLACES:
                view = channels.get(name)
                shown = self.shown.get((name, sku))
                if view is None or shown is None or view["pending"] or shown[0] != view["target"]:
                    count += 1
        return count

    def unrecorded(self) -> int:
        """Placed orders the ledger does not know yet."""
        for order in self.orders:
            key = (order.channel, order.order_id)
            if key not in self.recorded and self.reader.order(*key) is not None:
                self.recorded.add(key)
        return len(self.orders) - len(self.recorded)

    # -- rendering ---------------------------------------------------------------------------

    def render(self, *, channels: bool = True) -> Group:
        """The stock table (and, while running, the channel table)."""
        elapsed = time.monotonic() - self.started
        title = f"{self.phase} · {elapsed:.0f} s · {len(self.orders)} orders"
        table = Table(title=title, caption="marketplace cells: value shown → engine's target")
        for column in ("SKU", "on hand", "reserved", "available", *MARKETPLACES):
            table.add_column(column, justify="left" if column == "SKU" else "right")
        for sku in SKUS:
            body = self.stock.get(sku)
            if body is None:
                continue
            cells = []
            for name in MARKETPLACES:
                view, shown = body["channels"][name], self.shown.get((name, sku))
                value = "–" if shown is None else str(shown[0])
                if shown is not None and shown[0] == view["target"] and not view["pending"]:
                    cells.append(f"[green]{value}[/]")
                else:
                    cells.append(f"[yellow]{value} → {view['target']}[/]")
            counters = ("—", "—") if sku in BUNDLES else (body["on_hand"], body["reserved"])
            label = f"{sku} (bundle)" if sku in BUNDLES else sku
            table.add_row(label, *map(str, counters), str(body["available"]), *cells)
        return Group(table, *([channel_table(self.stats)] if channels else []))

    def summary(self, seconds: float) -> DemoSummary:
        """The summary, read while the engine still runs."""
        counters = self.reader.counters()
        violations = {
            name: self.http.get(f"{url}/_sim/state").raise_for_status().json()["violations"]
            for name, url in self.sims.items()
        }
        negative = [
            sku
            for sku in SAMPLE_STOCK
            if any(
                lv.on_hand < 0 or lv.reserved < 0 for lv in self.reader.stock(sku).levels.values()
            )
        ]
        return DemoSummary(
            seconds=seconds,
            channels=self.stats,
            orders_recorded=len(self.orders) - self.unrecorded(),
            oversold_units=counters.oversold_units,
            oversold_orders=counters.oversold_orders,
            violations=violations,
            negative=negative,
            behind=self.behind(),
            unmatched=sum(len(o.waiting) for o in self.orders),
            unmatched_unchanged=sum(
                1 for o in self.orders for name in o.waiting if self._at_target(name, o.sku)
            ),
        )

    def _at_target(self, channel: str, sku: str) -> bool:
        view = self.stock.get(sku, {}).get("channels", {}).get(channel)
        shown = self.shown.get((channel, sku))
        return (
            view is not None
            and shown is not None
            and not view["pending"]
            and (shown[0] == view["target"])
        )


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def channel_table(stats: dict[str, ChannelStats], title: str | None = None) -> Table:
    """Per channel: orders placed on it, values it accepted, propagation latency to it."""
    caption = "pushes: values accepted; n, p50…: latency from an order elsewhere to this channel"
    table = Table(title=title, caption=caption)
    table.add_column("channel", no_wrap=True)
    for column in ("orders", "refused", "pushes", "n", "p50 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="right")
    for name, s in stats.items():
        marketplace = name in MARKETPLACES
        table.add_row(
            name,
            str(s.orders),
            str(s.refused),
            str(s.pushes) if marketplace else "—",
            str(len(s.latencies_ms)) if marketplace else "—",
            _ms(s.percentile(0.5)),
            _ms(s.percentile(0.99)),
            _ms(max(s.latencies_ms, default=None)),
        )
    return table


def render_summary(summary: DemoSummary) -> Group:
    """The end-of-run report: the channel table, then each figure with one line on what it
    means (a bare "oversold: 1" only worries)."""
    violations = sum(v for kinds in summary.violations.values() for v in kinds.values())
    style = "green" if summary.ok else "red"
    return Group(
        channel_table(summary.channels, title="inventory-engine demo: summary"),
        *(
            Text(figure, style=style if checked else "").append(f"\n    {why}", style="dim")
            for figure, why, checked in summary_lines(summary, violations)
        ),
    )


def summary_lines(summary: DemoSummary, violations: int) -> list[tuple[str, str, bool]]:
    """``(figure, what it means, is it one of the pass/fail checks)`` for each summary line."""
    pending = summary.unmatched - summary.unmatched_unchanged
    return [
        (
            f"{summary.orders} orders in {summary.seconds:.0f} s; "
            f"the ledger recorded {summary.orders_recorded} of them",
            "orders placed on the simulators and the storefront, and how many the ledger holds"
            + (
                ""
                if summary.orders_recorded == summary.orders
                else " (the rest were still in the inbox when the demo ended)"
            ),
            False,
        ),
        (
            f"oversold: {summary.oversold_units} units in {summary.oversold_orders} orders",
            "a marketplace sold a unit it still showed while another channel's sale of the "
            "same unit was on its way to it: the race every multi-channel seller has, made "
            "likely here by selling a few units fast (Ozon takes a new number for an item "
            "once per 30 s); `inventory-engine oversold` lists such orders"
            if summary.oversold_units
            else "no marketplace sold a unit that was already gone",
            False,
        ),
        (
            f"simulator limit violations: {violations}"
            + ("" if not violations else f" {summary.violations}"),
            "requests the simulators refused or counted as breaking the marketplace's limits "
            "(rate, batch size, Ozon's per-item window): the engine must cause none",
            True,
        ),
        (
            "ledger counters: "
            + ("consistent" if not summary.negative else f"NEGATIVE for {summary.negative}"),
            "no SKU's on hand or reserved went below zero",
            True,
        ),
        (
            f"marketplace values not yet at the engine's target: {summary.behind}",
            "(SKU, marketplace) pairs whose shown number differs from the engine's at the end: "
            "changes still on their way (Ozon takes one update per item every 30 s)",
            False,
        ),
        (
            f"(order, marketplace) pairs with no value after the order: {summary.unmatched}",
            f"{summary.unmatched_unchanged} because the order did not change that marketplace's "
            "number (it already showed 0, or its buffer or share kept it): nothing to send; "
            f"{pending} still on their way when the demo ended",
            False,
        ),
    ]


# -- running ------------------------------------------------------------------------------------


def run_demo(
    *,
    seconds: float = 30.0,
    rate: float = 2.0,
    settle_s: float = 35.0,
    console: Console | None = None,
) -> DemoSummary:
    """Run the demo and return its summary (printing it is the caller's choice).

    Configure logging first (the CLI keeps warnings only): the in-process engine logs through
    structlog, whose default prints to stdout, over the live table.

    Args:
        seconds: how long orders are placed.
        rate: orders per second, all channels together (taking turns).
        settle_s: after the last order, how long to wait at most for the ledger to record every
            order and every marketplace to show the engine's value.
        console: where the live table goes, when it is a terminal (none otherwise).

    Raises:
        DemoError: the engine did not start.
        InventoryError: the embedded server could not start.
        ValueError: ``rate`` is not positive, or ``seconds`` or ``settle_s`` is negative.
    """
    if rate <= 0 or seconds < 0 or settle_s < 0:
        raise ValueError("rate must be positive, seconds and settle_s not negative")
    console = console or Console()
    with _isolated_environment(), tempfile.TemporaryDirectory(prefix="inventory-demo-") as tmp:
        state = Path(tmp)
        with _stderr_to(state / "engine.log"):
            return _run(state, seconds, rate, settle_s, console)


def _run(
    state: Path, seconds: float, rate: float, settle_s: float, console: Console
) -> DemoSummary:
    from inventory_engine.daemon import serve

    port = _free_port()
    api, token = f"http://127.0.0.1:{port}", secrets.token_urlsafe(16)
    sandbox = start_sandbox(ports={"ozon": 0, "wb": 0, "ym": 0}, engine_url=api)
    try:
        config = _write_config(state, port, token, sandbox)
        settings = load_settings(config)
        sims = {name: sandbox.url(name) for name in MARKETPLACES}
        with redis_connection(settings) as client, httpx.Client(timeout=10) as http:
            names = [c.name for c in settings.channels]
            CatalogStore(client, account=settings.account, channels=names).import_entries(catalog())
            RedisLedger(client, account=settings.account, channels=names).import_on_hand(
                list(SAMPLE_STOCK.items()), reason="demo sample stock", source="demo"
            )
            products = [{"offer_id": s, "sku": OZON_SKU[s]} for s in SKUS]
            http.post(
                f"{sims['ozon']}/_sim/products", json={"products": products}
            ).raise_for_status()
            stop, failure = threading.Event(), list[BaseException]()

            def engine() -> None:
                try:
                    serve(settings, stop=stop, config=str(config))
                except BaseException as exc:  # reported by the main thread
                    failure.append(exc)

            thread = threading.Thread(target=engine, name="demo-engine", daemon=True)
            thread.start()
            try:
                _wait_ready(http, api, thread, failure)
                reader = LedgerReader(client, account=settings.account)
                demo = _Demo(http, api, token, sims, reader)
                live = Live(console=console, redirect_stderr=False) if console.is_terminal else None
                with live or contextlib.nullcontext():
                    _drive(demo, seconds, rate, settle_s, live)
                return demo.summary(seconds)
            finally:
                stop.set()
                thread.join(timeout=90)
    finally:
        sandbox.stop()


def _drive(demo: _Demo, seconds: float, rate: float, settle_s: float, live: Live | None) -> None:
    """Publish the catalog, place orders for ``seconds``, then let the engine settle."""

    def tick(phase: str) -> None:
        demo.phase = phase
        demo.refresh()
        if live is not None:
            live.update(demo.render(channels=phase != "done"))

    try:
        deadline = time.monotonic() + PUBLISH_TIMEOUT_S
        while time.monotonic() < deadline and len(demo.shown) < len(SKUS) * len(MARKETPLACES):
            tick("publishing the sample catalog")
            time.sleep(REFRESH_S)
        now = time.monotonic()
        end, next_order, next_refresh = now + seconds, now, now
        while (now := time.monotonic()) < end:
            if now >= next_order:
                demo.place_order()
                next_order += 1 / rate
            if now >= next_refresh:
                tick(f"placing orders ({end - now:.0f} s left)")
                next_refresh += REFRESH_S
            time.sleep(max(0.0, min(next_order, next_refresh, end) - time.monotonic()))
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:
            tick("waiting for the channels to catch up")
            if not demo.unrecorded() and not demo.behind():
                break
            time.sleep(REFRESH_S)
    except KeyboardInterrupt:
        demo.phase = "interrupted"
    tick("done")


def _wait_ready(
    http: httpx.Client, api: str, thread: threading.Thread, failure: list[BaseException]
) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and thread.is_alive():
        with contextlib.suppress(httpx.HTTPError):
            if http.get(f"{api}/readyz").status_code == 200:
                return
        time.sleep(0.2)
    reason = f": {failure[0]!r}" if failure else ""
    raise DemoError(f"the engine did not become ready{reason}")


def _write_config(state: Path, port: int, token: str, sandbox: Sandbox) -> Path:
    """A TOML file for the engine and its worker processes (``serve --config``)."""
    lines = [
        "[embedded]",
        f"state_dir = {json.dumps(str(state / 'redis'))}",
        'appendfsync = "no"',
        "[http]",
        'host = "127.0.0.1"',
        f"port = {port}",
        f"api_token = {json.dumps(token)}",
    ]
    for channel in sandbox_channels(sandbox):
        if channel.kind == "wildberries":
            channel = channel.model_copy(update={"poll_interval_s": WB_POLL_S})
        lines.append("[[channels]]")
        for key, value in channel:
            value = value.get_secret_value() if isinstance(value, SecretStr) else value
            if value is not None:
                lines.append(f"{key} = {json.dumps(value)}")
    path = state / "demo.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _isolated_environment() -> Iterator[None]:
    """Set ``INVENTORY_*`` variables aside: the demo (and its workers) must not use the user's
    Redis, config file or channel secrets."""
    saved = {key: value for key, value in os.environ.items() if key.startswith("INVENTORY_")}
    for key in saved:
        del os.environ[key]
    try:
        yield
    finally:
        os.environ.update(saved)


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Send file descriptor 2 (the worker processes' logs) to ``path`` so the live table stays
    readable; on failure the log's tail is printed after it is restored."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with path.open("ab") as log:
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    except Exception:
        tail = path.read_text(errors="replace").splitlines()[-30:] if path.exists() else []
        sys.stderr.write("\n".join(["engine log (last lines):", *tail, ""]))
        raise
    finally:
        os.close(saved)
