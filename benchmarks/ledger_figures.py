"""What the ledger benchmark measures and names: the runs' labels and settings, and the result
types (:class:`Throughput`, :class:`Probe`, :class:`MemoryResult`) that the runs fill in and
:mod:`benchmarks.ledger_report` renders."""

from __future__ import annotations

from dataclasses import dataclass, field

CHANNELS = ("ozon", "wb", "ym")
"""Channels configured on the ledger: every change writes one dirty marker per channel."""

CATALOG_SKUS = 1_000
"""SKUs the throughput runs spread their orders over."""

CATALOG_STOCK = 500_000_000
"""On hand per SKU for the throughput runs: orders never run short, nothing is oversold."""

GOAL_SERVER_USEC = 20.0
GOAL_SERVER_TEXT = (
    "≤ 20 µs server time per order event (`INFO commandstats`), `record_orders` pipelined"
)
GOAL_MULTI_EVENTS_PER_S = 20_000
GOAL_MULTI_TEXT = "≥ 20,000 order events/s pipelined (batch 500) from 2 client processes"
"""Issue 15 §3's goals on this 2-core machine (before the change: ~50–55 µs and ~13,000/s)."""

ISSUE_BEFORE_TEXT = (
    "The issue's starting figures (~50–55 µs per event, ~13,000 events/s from 2 processes) "
    "are this section's previous run (2026-11-22, code 7204221, a slightly older script: "
    "55.3 µs/evalsha and 10,494 events/s from one client, 60.4 µs and 13,015 events/s from 2 "
    'processes); the "before" rows here rerun the script as it was just before the change, '
    'on the same machine in the same run as the "after" rows, and only those are compared'
)
"""Where the issue's "before" figures came from (the ledger section of RESULTS.md before
issue 15 §3), so a reader can tell them from this run's own "before"."""

GOAL_EVENTS_PER_S = 30_000
GOAL_TEXT = "≥ 30,000 order events/s pipelined on this 2-core machine"
"""The goal this benchmark started with (commit 07ca51d, before issue 15); kept as a yardstick."""

BEFORE = "before"
AFTER = "after"
FALLBACK = "fallback"
VARIANTS = (BEFORE, AFTER, FALLBACK)
"""How the ledger's apply_order_event runs in a measurement (:attr:`Throughput.variant`)."""
VARIANT_TEXT = {
    BEFORE: "EVALSHA of the frozen pre-Functions script (83f58a0)",
    AFTER: "the Functions library (FCALL)",
    FALLBACK: "today's code as scripts, EVALSHA (functions=False)",
}
VARIANT_SHORT = {BEFORE: "before (EVALSHA)", AFTER: "after (FCALL)", FALLBACK: "fallback (EVALSHA)"}
VARIANT_COMMAND = {BEFORE: "evalsha", AFTER: "fcall", FALLBACK: "evalsha"}
"""The ``INFO commandstats`` entry each variant's calls are counted under."""
BASELINE_COMMIT = "83f58a0"
BASELINE_FILE = "benchmarks/baseline/apply_order_event_before_functions.lua"

NO_PERSISTENCE = 'no persistence (--save "" --appendonly no)'
AOF_EVERYSEC = (
    "AOF, appendfsync everysec (--appendonly yes --appendfsync everysec "
    "--auto-aof-rewrite-percentage 0)"
)
AOF_ALWAYS = (
    "AOF, appendfsync always (--appendonly yes --appendfsync always "
    "--auto-aof-rewrite-percentage 0; appendfsync always is the engine's default)"
)
NO_REWRITE = ["--auto-aof-rewrite-percentage", "0"]
"""No automatic AOF rewrite during the AOF runs: a rewrite (a fork writing the whole dataset in
the background) is an occasional cost, not a per-event one, and it would make the AOF size
per event unmeasurable."""

ONE_BY_ONE = "record_order one by one"
PIPELINED = "record_orders pipelined"
INCR_ONE = "raw INCRBY one by one"
INCR_PIPE = "raw INCRBY pipelined"
EVAL_ONE = "raw EVALSHA trivial script, one by one"
EVAL_PIPE = "raw EVALSHA trivial script, pipelined"
FCALL_PIPE = "raw FCALL trivial function, pipelined"
MULTI = "record_orders pipelined, 2 processes"
RESERVE_ONE = "try_reserve (storefront hold) one by one"


@dataclass
class Throughput:
    """One throughput measurement."""

    name: str
    durability: str
    batch: int
    clients: int
    events: int
    seconds: float
    client_cpu_s: float | None
    server_cpu_s: float
    main_command: str
    commandstats: dict[str, dict[str, float]] = field(default_factory=dict)
    aof_bytes: int | None = None
    machine_cpu_s: float | None = None
    rates: list[float] = field(default_factory=list)
    """events/s of every repetition (this record is the fastest one)."""
    total_events: int = 0
    """events recorded by all repetitions together."""
    variant: str = ""
    """:data:`BEFORE`, :data:`AFTER` or :data:`FALLBACK` for ledger runs; "" for raw baselines."""
    allocator: str = ""
    """The server's allocator (:mod:`benchmarks.allocators`) where runs compare them."""

    @property
    def other_cpu_pct(self) -> float | None:
        """CPU used meanwhile by anything but the benchmark's clients and its server."""
        if self.machine_cpu_s is None or self.client_cpu_s is None:
            return None
        other = self.machine_cpu_s - self.client_cpu_s - self.server_cpu_s
        return max(0.0, 100 * other / self.seconds)

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def server_usec_per_call(self) -> float | None:
        stats = self.commandstats.get(self.main_command)
        return None if stats is None else stats["usec_per_call"]

    @property
    def server_cpu_pct(self) -> float:
        return 100 * self.server_cpu_s / self.seconds

    @property
    def client_cpu_pct(self) -> float | None:
        if self.client_cpu_s is None:
            return None
        return 100 * self.client_cpu_s / self.seconds


@dataclass
class Probe:
    """Server time of one call of a script or function built from pieces of the ledger's Lua."""

    name: str
    usec: float | None
    command: str = "evalsha"
    """How it was called: ``fcall`` (a function of a probe library) or ``evalsha``."""
    group: str = AFTER
    """Whose code it times: :data:`AFTER` (today's, as Functions) or :data:`BEFORE`/:data:`FALLBACK`
    (a script through EVALSHA)."""


@dataclass
class Equivalence:
    """The same order events applied through each variant on its own account, compared."""

    ok: bool
    events: int
    calls: int
    keys: int
    detail: str


PROBE_CALLS = 3_000
PROBE_ROUNDS = 5


@dataclass
class MemoryResult:
    """Memory of N SKUs, then of the same with one open order per 10 SKUs."""

    skus: int
    orders: int
    import_s: float
    orders_s: float
    skus_bytes: int
    skus_on_hand_bytes: int
    skus_journal_len: int
    skus_journal_bytes: int
    skus_dirty_bytes: int
    total_bytes: int
    on_hand_bytes: int
    reserved_bytes: int
    journal_len: int
    journal_bytes: int
    dirty_bytes: int
    order_key_bytes: int
    allocator: str

    @property
    def orders_share_bytes(self) -> int:
        """Order hashes and their keyspace entries: the growth not explained by named keys."""
        named_after = self.on_hand_bytes + self.reserved_bytes + self.journal_bytes
        named_before = self.skus_on_hand_bytes + self.skus_journal_bytes
        named_after += self.dirty_bytes
        named_before += self.skus_dirty_bytes
        return self.total_bytes - self.skus_bytes - (named_after - named_before)
