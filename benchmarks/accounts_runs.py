"""The accounts benchmark's timed runs: the throughput run of the 2 client processes
(multiprocessing, spawn; :func:`throughput_run`) with the per-node view of exactly that run,
and the apply latency of ``record_order`` one by one from this process (:func:`latency_phase`).
"""

from __future__ import annotations

import collections
import multiprocessing as mp
import random
import time
from collections.abc import Callable
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any, NamedTuple

from benchmarks.accounts_figures import (
    ACCOUNTS,
    CLIENTS,
    SKUS,
    Latency,
    NodeRun,
    Result,
    Run,
    account_name,
    sku_name,
)
from benchmarks.accounts_servers import NodeClients, Setup
from benchmarks.ledger import _delta, machine_busy_s
from benchmarks.ledger_figures import CHANNELS
from inventory_engine.domain.models import OrderAction, OrderLine
from inventory_engine.ledger import OrderEvent, RedisLedger
from inventory_engine.runtime import connect

Step = Callable[[], tuple[int, dict[str, int], list[float]]]
"""One step of a client process: (events, events per account, wall time of each call)."""

LATENCY_WARMUP_CALLS = 200
"""``record_order`` calls the latency phase makes before it starts timing."""


class ClientTotals(NamedTuple):
    """What one client process sends back after its run."""

    warm: dict[str, int]
    """Warm-up events per account (recorded before the run)."""
    counts: dict[str, int]
    """Events per account during the run."""
    events: int
    start: float
    end: float
    cpu_s: float
    call_latencies_s: list[float]


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


def _warm_up(
    ledgers: dict[str, RedisLedger], tag: str, rng: random.Random
) -> collections.Counter[str]:
    """One order per account: the connections and the library check of each ledger."""
    warm: collections.Counter[str] = collections.Counter()
    for account, ledger in ledgers.items():
        line = OrderLine(sku=sku_name(rng.randrange(SKUS)), quantity=1)
        ledger.record_orders([OrderEvent("ozon", f"{tag}-warm", OrderAction.RESERVE, (line,))])
        warm[account] += 1
    return warm


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
        warm = _warm_up(ledgers, tag, rng)
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
    out.put(ClientTotals(dict(warm), dict(counts), events, t0, t1, cpu, latencies))


def _client_processes(
    ctx: SpawnContext, setup: Setup, batch: int, run: int, duration_s: float, sync: tuple[Any, ...]
) -> list[SpawnProcess]:
    """The :data:`CLIENTS` worker processes of one run, not started; ``sync`` is
    (ready barrier, go barrier, result queue)."""
    tag = f"{setup.kind[:3]}-b{batch}-r{run}"
    return [
        ctx.Process(
            target=_worker,
            args=(setup.url, f"{tag}-p{p}", 1000 * run + 10 * p + batch, batch, duration_s, *sync),
        )
        for p in range(CLIENTS)
    ]


def _join(procs: list[SpawnProcess]) -> None:
    for proc in procs:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=10)


def _events_per_node(setup: Setup, result: Result, got: list[ClientTotals]) -> list[int]:
    """Adds the workers' counts to ``result.recorded``; the run's events per node."""
    counts: collections.Counter[str] = collections.Counter()
    for totals in got:
        result.recorded.update(totals.warm)
        result.recorded.update(totals.counts)
        counts.update(totals.counts)
    per_node = [0] * len(setup.nodes)
    for account, n in counts.items():
        per_node[setup.node_of_account(account)] += n
    return per_node


def throughput_run(
    setup: Setup, nodes: NodeClients, result: Result, batch: int, run: int, duration_s: float
) -> Run:
    """The 2 client processes for ``duration_s``; the per-node view of exactly that run."""
    ctx = mp.get_context("spawn")
    ready, go = ctx.Barrier(CLIENTS + 1), ctx.Barrier(CLIENTS + 1)
    out = ctx.Queue()
    procs = _client_processes(ctx, setup, batch, run, duration_s, (ready, go, out))
    try:
        for proc in procs:
            proc.start()
        ready.wait(timeout=120)  # every worker warmed up: nothing is running now
        nodes.reset_stats()
        cpu0, busy0 = nodes.cpu_s(), machine_busy_s()
        go.wait(timeout=30)
        got: list[ClientTotals] = [out.get(timeout=duration_s + 120) for _ in procs]
        cpu1, busy1 = nodes.cpu_s(), machine_busy_s()
        fcalls = nodes.fcall()
    finally:
        _join(procs)
    per_node = _events_per_node(setup, result, got)
    return Run(
        batch=batch,
        events=sum(g.events for g in got),
        seconds=max(g.end for g in got) - min(g.start for g in got),
        client_cpu_s=sum(g.cpu_s for g in got),
        machine_cpu_s=_delta(busy0, busy1),
        nodes=[
            NodeRun(per_node[i], fcalls[i][0], fcalls[i][1], cpu1[i] - cpu0[i])
            for i in range(len(setup.nodes))
        ],
        call_latencies_s=[t for g in got for t in g.call_latencies_s],
    )


def latency_phase(ledgers: dict[str, RedisLedger], result: Result, calls: int) -> Latency:
    """``record_order`` one by one from this process, nothing else running."""
    rng = random.Random(99)
    names = sorted(ledgers)
    times: list[float] = []
    for n in range(calls + LATENCY_WARMUP_CALLS):  # the warm-up calls are not timed
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
        if n >= LATENCY_WARMUP_CALLS:
            times.append(elapsed)
    return Latency(calls, times)
