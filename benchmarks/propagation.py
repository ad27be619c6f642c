"""Propagation latency: from an order event sent to the engine to the new stock value arriving
at every other marketplace, with the engine running as in production.

Real Valkey (AOF, ``appendfsync always`` as the engine's default), the three marketplace
simulators on loopback (``inventory-engine simulate``, one process per marketplace), and
``inventory-engine serve`` with its RQ worker processes and configured channels pointing at the
simulators. A driver sends Ozon postings and Yandex Market orders (the simulators notify the
engine), Wildberries tasks (the engine polls them) and storefront reservations at fixed rates
over a skewed catalog; the ledger's journal and the simulators' logs of accepted values are
matched afterwards (see :mod:`benchmarks.propagation_analysis`).

Run from the repository root::

    python -m benchmarks.propagation --quick            # ~2.5 min, prints only
    python -m benchmarks.propagation                    # 10-15 min, writes RESULTS.md + PNG

The section of ``benchmarks/RESULTS.md`` between ``<!-- propagation:start -->`` and
``<!-- propagation:end -->`` is rewritten; ``benchmarks/propagation.png`` shows the latency
distributions (needs matplotlib: the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx
import redis

from benchmarks.propagation_analysis import PhaseFigures, analyse, behind, collect
from benchmarks.propagation_driver import Driver, Event, run_phase
from benchmarks.propagation_env import (
    MARKETPLACES,
    Catalog,
    Environment,
    cpu_delta,
    process_cpu,
    running_environment,
    sim_json,
)
from benchmarks.results import code_version, machine_info, write_section
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.service import EVENTS_QUEUE, PUSH_QUEUE

RESULTS_PATH = Path(__file__).with_name("RESULTS.md")
PLOT_PATH = Path(__file__).with_name("propagation.png")
FULL_PHASES = "10x30,100x30,100x30@50-300,1000x60"
QUICK_PHASES = "10x10,100x10,1000x15"
OZON_WINDOW_S = 30.0
PHASE_SETTLE_S = {True: 20.0, False: 120.0}
"""After a phase (quick, full): at most this long for every event to be applied and WB and YM
to catch up."""
DRAIN_S = {True: 40.0, False: 300.0}
"""After the last phase (quick, full): at most this long for everything, Ozon included."""


@dataclass(frozen=True)
class Phase:
    rate: float
    seconds: float
    latency_ms: tuple[int, int] | None = None

    @property
    def label(self) -> str:
        extra = ""
        if self.latency_ms:
            extra = f", API latency {self.latency_ms[0]}–{self.latency_ms[1]} ms"
        return f"{self.rate:g}/s × {self.seconds:g} s{extra}"


def parse_phases(text: str) -> list[Phase]:
    """``RATExSECONDS[@MIN-MAX]`` separated by commas, e.g. ``100x30@50-300``."""
    phases = []
    for part in text.split(","):
        spec, _, latency = part.strip().partition("@")
        rate, _, seconds = spec.partition("x")
        bounds: tuple[int, int] | None = None
        if latency:
            low, _, high = latency.partition("-")
            bounds = (int(low), int(high))
        phases.append(Phase(float(rate), float(seconds), bounds))
    return phases


@dataclass
class PhaseRun:
    """One phase as it ran: its events and what was observed around them."""

    phase: Phase
    events: list[Event]
    started: float
    seconds: float
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float]
    cpu_s: dict[str, float]
    queue_max: dict[str, int]
    commands: int
    """Valkey commands run during the phase and its settling (INFO commandstats)."""
    settle_s: float
    settled: bool
    violations: dict[str, dict[str, int]]
    figures: PhaseFigures | None = None


@dataclass
class Run:
    """The whole benchmark, for the report."""

    command: str
    quick: bool
    catalog: Catalog
    workers: int
    appendfsync: str
    wb_poll_s: float | None
    started: dt.datetime
    machine: dict[str, str]
    versions: dict[str, str] = field(default_factory=dict)
    phases: list[PhaseRun] = field(default_factory=list)
    load_start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    finished: dt.datetime | None = None
    initial_wait_s: float = 0.0
    final_behind: dict[str, int] = field(default_factory=dict)
    final_settle_s: float = 0.0
    still_queued: int = 0
    """Events still waiting in the RQ events queue when the run stopped waiting."""
    parked: dict[str, int] = field(default_factory=dict)
    oversold: dict[str, int] = field(default_factory=dict)
    violations: dict[str, dict[str, int]] = field(default_factory=dict)
    counters: dict[str, dict[str, int]] = field(default_factory=dict)
    driver_errors: list[str] = field(default_factory=list)


# -- around the phases -------------------------------------------------------------------------


class QueueSampler(threading.Thread):
    """Samples the RQ queues' lengths twice a second; keeps the largest."""

    def __init__(self, url: str) -> None:
        super().__init__(name="queue-sampler", daemon=True)
        self.client = redis.Redis.from_url(url)
        self.stop = threading.Event()
        self.max = {"events": 0, "push": 0}

    def run(self) -> None:
        keys = {"events": f"rq:queue:{EVENTS_QUEUE}", "push": f"rq:queue:{PUSH_QUEUE}"}
        while not self.stop.wait(0.5):
            for name, key in keys.items():
                self.max[name] = max(self.max[name], int(self.client.llen(key)))

    def finish(self) -> dict[str, int]:
        self.stop.set()
        self.join(timeout=5)
        self.client.close()
        return self.max


def violations(env: Environment) -> dict[str, dict[str, int]]:
    return {name: sim_json(url, "/_sim/state")["violations"] for name, url in env.sims.items()}


def _delta(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    return {
        name: {k: v - before.get(name, {}).get(k, 0) for k, v in kinds.items()}
        for name, kinds in after.items()
    }


def set_latency(env: Environment, latency: tuple[int, int] | None) -> None:
    body = {"latency_ms": list(latency)} if latency else {}
    for url in env.sims.values():
        httpx.put(f"{url}/_sim/faults", json=body, timeout=10).raise_for_status()


def not_applied(env: Environment, events: Sequence[Event]) -> list[Event]:
    """The events the ledger has no order for yet."""
    keys = AccountKeys()
    pipe = env.client.pipeline(transaction=False)
    for e in events:
        pipe.exists(keys.order(e.source, e.order_id))
    return [e for e, found in zip(events, pipe.execute(), strict=True) if not found]


def commands_run(env: Environment) -> int:
    stats: dict[str, dict[str, float]] = env.client.info("commandstats")
    return int(sum(value["calls"] for value in stats.values()))


def settle(
    env: Environment,
    catalog: Catalog,
    events: Sequence[Event],
    channels: Sequence[str],
    limit_s: float,
) -> tuple[float, bool]:
    """Wait until every sent event is applied and ``channels`` show the ledger's values."""
    started = time.monotonic()
    pending = [e for e in events if e.ok]
    skus = {e.sku for e in events}
    while time.monotonic() - started < limit_s:
        pending = not_applied(env, pending)
        if not pending:
            late = behind(env.client, env.sims, catalog, skus)
            if not any(late[c] for c in channels):
                return time.monotonic() - started, True
        time.sleep(1.0)
    return time.monotonic() - started, False


def wait_initial_publish(env: Environment, catalog: Catalog) -> float:
    """Every simulator shows the whole catalog, then Ozon's 30 s item windows open again."""
    started = time.monotonic()
    deadline = started + 120
    while time.monotonic() < deadline:
        late = behind(env.client, env.sims, catalog, set(catalog.skus))
        if not any(late.values()):
            break
        time.sleep(0.5)
    else:
        raise RuntimeError(f"the catalog was not published in 120 s: {late}")
    last = max(row["at_ns"] for row in sim_json(env.sims["ozon"], "/_sim/received")["received"])
    wait = last / 1e9 + OZON_WINDOW_S + 1.0 - time.time()
    print(f"catalog published; waiting {max(wait, 0):.0f} s for Ozon's item windows", flush=True)
    time.sleep(max(0.0, wait))
    return time.monotonic() - started


def run_phases(
    env: Environment, catalog: Catalog, phases: list[Phase], run: Run, seed: int
) -> None:
    driver = Driver(catalog, env.sims, env.api, env.token, seed)
    for n, phase in enumerate(phases):
        print(f"phase {n + 1}/{len(phases)}: {phase.label}", flush=True)
        set_latency(env, phase.latency_ms)
        cpu_before, v_before, load_start = process_cpu(env), violations(env), _loadavg()
        commands_before = commands_run(env)
        sampler = QueueSampler(env.server.url)
        sampler.start()
        started = time.time()
        events = run_phase(driver, n, phase.rate, phase.seconds)
        seconds = time.time() - started
        settle_s, settled = settle(env, catalog, events, ("wb", "ym"), PHASE_SETTLE_S[run.quick])
        queue_max = sampler.finish()
        set_latency(env, None)
        run.phases.append(
            PhaseRun(
                phase=phase,
                events=events,
                started=started,
                seconds=seconds,
                load_start=load_start,
                load_end=_loadavg(),
                cpu_s=cpu_delta(cpu_before, process_cpu(env)),
                queue_max=queue_max,
                commands=commands_run(env) - commands_before,
                settle_s=settle_s,
                settled=settled,
                violations=_delta(v_before, violations(env)),
            )
        )
        print(
            f"  sent {len(events)} in {seconds:.1f} s; applied and WB/YM caught up "
            f"{'after' if settled else 'NOT within'} {settle_s:.1f} s",
            flush=True,
        )
    run.driver_errors = driver.errors


def finish(env: Environment, catalog: Catalog, run: Run, drain_s: float) -> None:
    """Let the backlog drain and Ozon's throttled items go out, then read everything."""
    events = [e for p in run.phases for e in p.events]
    run.final_settle_s, _ = settle(env, catalog, events, MARKETPLACES, drain_s)
    run.still_queued = int(env.client.llen(f"rq:queue:{EVENTS_QUEUE}"))
    run.final_behind = behind(env.client, env.sims, catalog, set(catalog.skus))
    data = collect(env.client, env.sims, catalog, events)
    for p in run.phases:
        p.figures = analyse(p.events, data)
    keys = AccountKeys()
    run.parked = {c: int(env.client.hlen(keys.parked(c))) for c in MARKETPLACES}
    raw: dict[bytes, bytes] = env.client.hgetall(keys.counters)  # type: ignore[assignment]
    counters = {k.decode(): int(v) for k, v in raw.items()}
    run.oversold = {k: v for k, v in counters.items() if k.startswith(("oversold", "unknown"))}
    run.violations = violations(env)
    run.counters = {
        name: sim_json(url, "/_sim/state")["counters"] for name, url in env.sims.items()
    }


def versions(env: Environment) -> dict[str, str]:
    import rq
    import uvicorn

    info = env.client.info("server")
    return {
        "python": platform.python_version(),
        "server": f"Valkey {info.get('valkey_version', info.get('redis_version'))}",
        "redis_py": redis.__version__,
        "rq": rq.__version__,
        "uvicorn": uvicorn.__version__,
        "code": code_version().split(";")[0],
    }


def _loadavg() -> tuple[float, float, float]:
    import os

    return os.getloadavg()


# -- results -----------------------------------------------------------------------------------


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks.propagation_report import plot, render_markdown

    parser = argparse.ArgumentParser(prog="python -m benchmarks.propagation", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"phases {QUICK_PHASES}")
    parser.add_argument("--phases", help=f"RATExSECONDS[@MIN-MAX ms],... (full: {FULL_PHASES})")
    parser.add_argument("--skus", type=int, default=1_000, help="catalog size")
    parser.add_argument("--skew", type=float, default=1.0, help="Zipf exponent of SKU demand")
    parser.add_argument("--stock", type=int, default=50_000, help="units per SKU at start")
    parser.add_argument("--workers", type=int, default=4, help="[workers] count of serve")
    parser.add_argument("--wb-poll", type=float, help="WB poll interval, s (default: engine's)")
    parser.add_argument("--appendfsync", default="always", choices=("always", "everysec", "no"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--drain", type=float, help="s to wait for the backlog at the end")
    parser.add_argument("--logs", type=Path, help="copy serve.log and simulators.log here")
    writes = parser.add_mutually_exclusive_group()
    writes.add_argument("--write", action="store_true", help="write RESULTS.md in quick mode too")
    writes.add_argument("--no-write", action="store_true", help="only print, never write")
    parser.add_argument("--results", type=Path, default=RESULTS_PATH)
    parser.add_argument(
        "--section",
        default="propagation",
        help="the RESULTS.md section to (re)write (several runs side by side)",
    )
    parser.add_argument("--plot", type=Path, default=PLOT_PATH)
    args = parser.parse_args(argv)
    phases = parse_phases(args.phases or (QUICK_PHASES if args.quick else FULL_PHASES))
    write = not args.no_write and (args.write or not args.quick)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    given = sys.argv[1:] if argv is None else list(argv)
    catalog = Catalog(size=args.skus, skew=args.skew, stock=args.stock)
    run = Run(
        command=" ".join([sys.executable, "-m", "benchmarks.propagation", *given]),
        quick=args.quick,
        catalog=catalog,
        workers=args.workers,
        appendfsync=args.appendfsync,
        wb_poll_s=args.wb_poll,
        started=dt.datetime.now(dt.UTC),
        machine=machine_info(),
        load_start=_loadavg(),
    )
    with (
        tempfile.TemporaryDirectory(prefix="propagation-bench-") as tmp,
        running_environment(
            Path(tmp),
            catalog,
            workers=args.workers,
            appendfsync=args.appendfsync,
            wb_poll_s=args.wb_poll,
        ) as env,
    ):
        run.versions = versions(env)
        print(f"engine at {env.api}, simulators {env.sims}, {run.versions}", flush=True)
        run.initial_wait_s = wait_initial_publish(env, catalog)
        run_phases(env, catalog, phases, run, args.seed)
        print("letting the backlog drain and Ozon's throttled items go out", flush=True)
        finish(env, catalog, run, args.drain or DRAIN_S[args.quick])
        if args.logs:
            args.logs.mkdir(parents=True, exist_ok=True)
            for log in Path(tmp).glob("*.log"):
                shutil.copy(log, args.logs / log.name)
    run.finished = dt.datetime.now(dt.UTC)
    run.load_end = _loadavg()
    section = render_markdown(run, plot_name=args.plot.name if write else None)
    if args.section != "propagation":
        section = section.replace("## Propagation:", f"## Propagation ({args.section}):", 1)
    print()
    print(section)
    if write:
        plot(run, args.plot)
        write_section(args.section, section, args.results)
        print(f"\nwrote the {args.section} section of {args.results} and {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
