"""Running the demo: a scratch state directory, the simulators, ``serve`` in a thread, orders for
a while, then the summary."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from rich.console import Console
from rich.live import Live

from inventory_engine.config import load_settings
from inventory_engine.config_toml import channel_toml
from inventory_engine.demo.report import DemoSummary
from inventory_engine.demo.sample import (
    MARKETPLACES,
    OZON_SKU,
    PUBLISH_TIMEOUT_S,
    READY_TIMEOUT_S,
    REFRESH_S,
    SAMPLE_STOCK,
    SKUS,
    WB_POLL_S,
    catalog,
)
from inventory_engine.demo.tracker import OrderDesk
from inventory_engine.errors import InventoryError
from inventory_engine.ledger import LedgerReader, RedisLedger
from inventory_engine.ledger.catalog import CatalogStore
from inventory_engine.runtime import redis_connection
from inventory_engine.simulators.sandbox import Sandbox, sandbox_channels, start_sandbox


class DemoError(InventoryError):
    """The demo could not run (the engine did not start)."""


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
                demo = OrderDesk(http, api, token, sims, reader)
                live = Live(console=console, redirect_stderr=False) if console.is_terminal else None
                with live or contextlib.nullcontext():
                    _drive(demo, seconds, rate, settle_s, live)
                return demo.summary(seconds)
            finally:
                stop.set()
                thread.join(timeout=90)
    finally:
        sandbox.stop()


def _drive(
    demo: OrderDesk, seconds: float, rate: float, settle_s: float, live: Live | None
) -> None:
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
        lines += channel_toml(channel)
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
