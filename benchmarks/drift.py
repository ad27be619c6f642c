"""Drift repair: values changed behind the engine's back are repaired by ``serve``'s continuous
read-back, and the reads do not slow the pushes.

Two runs of the same environment (Valkey, the three simulators, ``serve`` with its workers; see
:mod:`benchmarks.propagation_env`) in one invocation, side by side:

* **read-back off** (``[reconcile] enabled = false``): order events flow at ``--rate`` for
  ``--seconds``; propagation latency is measured as in :mod:`benchmarks.propagation`.
* **read-back on** (``[reconcile] interval_s = --interval``): the same events, and right before
  them ``--drift`` of the listed items on every simulator are set to another value by pushing
  to the simulator directly (as someone editing the seller cabinet would). The time until
  every drifted value shows the ledger's number again is measured per channel (goal: one
  interval), and so is propagation latency (goal: the same p99 as with the read-back off).

Run from the repository root::

    python -m benchmarks.drift --quick     # 1,000 SKUs, 30 s interval, prints only
    python -m benchmarks.drift             # 10,000 SKUs, 120 s interval, writes RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.propagation import settle, wait_initial_publish
from benchmarks.propagation_analysis import PhaseFigures, analyse, collect, late_skus
from benchmarks.propagation_driver import Driver, Event, run_phase
from benchmarks.propagation_env import (
    MARKETPLACES,
    Catalog,
    Environment,
    load_average,
    percentile,
    running_environment,
)
from benchmarks.results import code_version, machine_info, write_section
from inventory_engine.channels import build_client, http_client_for
from inventory_engine.channels.base import StockUpdate, chunks
from inventory_engine.ledger import LedgerReader
from inventory_engine.sandbox_channels import channels_for_urls

RESULTS_PATH = Path(__file__).with_name("RESULTS.md")
POLL_S = 1.0
"""How often the simulators are read to see which drifted values came back."""


@dataclass
class Mode:
    """One run: read-back off or on, what it measured."""

    name: str
    config: str
    figures: PhaseFigures | None = None
    events: int = 0
    planted: dict[str, int] = field(default_factory=dict)
    """Drifted items per channel."""
    repaired_s: dict[str, float | None] = field(default_factory=dict)
    """Seconds from the drift to the last of a channel's items showing the ledger's value
    again (None: not all within the run)."""
    left: dict[str, int] = field(default_factory=dict)
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)


def plant_drift(env: Environment, catalog: Catalog, share: float, seed: int) -> dict[str, set[str]]:
    """Set ``share`` of the items of every simulator to another value (the ledger's minus
    one, at least 0 and never the same), pushing to the simulator as the seller's cabinet
    would. Returns the drifted SKUs per channel."""
    rng = random.Random(seed)
    count = max(1, round(catalog.size * share))
    skus = catalog.skus
    available = LedgerReader(env.client).available_many(skus, "main")
    item_of = {
        e.sku: {"ozon": e.sku, "wb": str(e.wb_chrt_id), "ym": e.sku} for e in catalog.entries()
    }
    planted: dict[str, set[str]] = {}
    for settings in channels_for_urls(env.sims):
        chosen = rng.sample(skus, count)
        updates = [
            StockUpdate(sku, item_of[sku][settings.name], _other(available[sku])) for sku in chosen
        ]
        with http_client_for(settings) as http:
            client = build_client(settings, http)
            for batch in chunks(updates, 100):
                client.push_stock(batch)
        planted[settings.name] = set(chosen)
    return planted


def _other(value: int) -> int:
    return value - 1 if value > 0 else value + 1


def watch_repairs(
    env: Environment,
    catalog: Catalog,
    planted: dict[str, set[str]],
    started: float,
    stop: threading.Event,
    out: Mode,
) -> None:
    """Until ``stop``: per channel, when the last drifted item shows the ledger's value."""
    left = {channel: set(skus) for channel, skus in planted.items()}
    while not stop.is_set() and any(left.values()):
        late = late_skus(env.client, env.sims, catalog, set().union(*left.values()))
        for channel, skus in left.items():
            if skus:
                skus &= late[channel]
                if not skus:
                    out.repaired_s[channel] = time.monotonic() - started
        stop.wait(POLL_S)
    out.left = {channel: len(skus) for channel, skus in left.items()}


def run_mode(args: argparse.Namespace, catalog: Catalog, mode: Mode) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="drift-bench-") as tmp,
        running_environment(
            Path(tmp),
            catalog,
            workers=args.workers,
            appendfsync="always",
            wb_poll_s=None,
            extra_config=mode.config,
        ) as env,
    ):
        print(f"[{mode.name}] engine at {env.api}", flush=True)
        wait_initial_publish(env, catalog)
        stop = threading.Event()
        watcher: threading.Thread | None = None
        if args.drift > 0 and mode.name == "read-back on":
            planted = plant_drift(env, catalog, args.drift, args.seed)
            mode.planted = {c: len(s) for c, s in planted.items()}
            mode.repaired_s = dict.fromkeys(planted)
            started = time.monotonic()
            watcher = threading.Thread(
                target=watch_repairs, args=(env, catalog, planted, started, stop, mode)
            )
            watcher.start()
        driver = Driver(catalog, env.sims, env.api, env.token, args.seed)
        events: list[Event] = run_phase(driver, 0, args.rate, args.seconds)
        mode.events = len(events)
        settle(env, catalog, events, ("wb", "ym"), 60.0)
        if watcher is not None:
            watcher.join(timeout=max(0.0, args.interval * 2 - args.seconds))
            stop.set()
            watcher.join()
        mode.figures = analyse(events, collect(env.client, env.sims, catalog, events))
        mode.load = load_average()


def render(args: argparse.Namespace, command: str, catalog: Catalog, modes: list[Mode]) -> str:
    info = machine_info()
    lines = [
        "## Drift repair (continuous read-back)",
        "",
        f"`{command}` · {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC · "
        f"{info.get('cpu', '')} · code {code_version()}",
        "",
        f"{catalog.size:,} SKUs listed on the three simulators; {args.rate:g} order events/s "
        f"for {args.seconds:g} s in each run; `[reconcile] interval_s = {args.interval:g}`; "
        f"{args.drift:.0%} of each simulator's items set to another value behind the engine's "
        "back right before the events (read-back on only).",
        "",
        "| run | channel | drifted | all repaired after | goal (one interval) | left | "
        "propagation p50 | p99 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode in modes:
        lines += [_row(mode, channel, args.interval) for channel in MARKETPLACES]
    lines += [
        "",
        "Propagation: from an order event to the first value a channel accepted afterwards "
        "(the same analysis as the propagation benchmark; Ozon includes its 30 s item window). "
        "Load average at the end of each run: "
        + ", ".join(f"{m.name} {m.load[0]:.2f}" for m in modes)
        + ".",
    ]
    return "\n".join(lines)


def _row(mode: Mode, channel: str, interval_s: float) -> str:
    latencies = mode.figures.first_change.get(channel, []) if mode.figures else []
    planted = mode.planted.get(channel)
    repaired = mode.repaired_s.get(channel)
    if planted is None:
        drift = "— | — | — | —"
    else:
        took = "not within the run" if repaired is None else f"{repaired:.0f} s"
        met = "met" if repaired is not None and repaired <= interval_s else "NOT met"
        drift = f"{planted} | {took} | {met} | {mode.left.get(channel, 0)}"
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    return f"| {mode.name} | {channel} | {drift} | {_ms(p50)} | {_ms(p99)} |"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.drift", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 SKUs, 30 s interval")
    parser.add_argument("--skus", type=int, help="catalog size (default 10,000)")
    parser.add_argument("--interval", type=float, help="[reconcile] interval_s (default 120)")
    parser.add_argument("--seconds", type=float, help="events per run for (default 1.2 × interval)")
    parser.add_argument("--rate", type=float, default=20.0, help="order events per second")
    parser.add_argument("--drift", type=float, default=0.01, help="share of items drifted")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    args.skus = args.skus or (1_000 if args.quick else 10_000)
    args.interval = args.interval or (30.0 if args.quick else 120.0)
    args.seconds = args.seconds or args.interval * 1.2
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python -m benchmarks.drift", *given])
    catalog = Catalog(size=args.skus, skew=1.0, stock=50_000)
    modes = [
        Mode("read-back off", "[reconcile]\nenabled = false"),
        Mode("read-back on", f"[reconcile]\ninterval_s = {args.interval}"),
    ]
    for mode in modes:
        run_mode(args, catalog, mode)
    section = render(args, command, catalog, modes)
    print()
    print(section)
    if not args.no_write and not args.quick:
        write_section("drift", section, RESULTS_PATH)
        print(f"\nwrote the drift section of {RESULTS_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
