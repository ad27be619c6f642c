"""What the accounts benchmark measures and names: the data set's size, the durabilities and
setups it compares, and the result types (:class:`Run`, :class:`Result`, :class:`Report`) that
the runs fill in and :mod:`benchmarks.accounts_report` renders."""

from __future__ import annotations

import collections
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from benchmarks.ledger_figures import NO_REWRITE

ACCOUNTS = 100
SKUS = 1_000
STOCK = 1_000_000
"""On hand per SKU: far more than the runs reserve, so nothing is ever oversold."""
CLIENTS = 2
SHARDS = 3
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
"""Durability name -> (server options added to ``deploy/redis.conf``, text for the report)."""
ONE, CLUSTER = "one Redis", "3-shard cluster"


def account_name(i: int) -> str:
    return f"acct-{i:03d}"


def sku_name(i: int) -> str:
    return f"SKU-{i:05d}"


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

    @property
    def all_ok(self) -> bool:
        """Every account checked out and every run's events matched the nodes' FCALL calls."""
        return self.check_ok and all(
            run.fcall_matches for runs in self.runs.values() for run in runs
        )


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
