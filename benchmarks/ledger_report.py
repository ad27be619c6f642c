"""The ledger benchmark's section of RESULTS.md: throughput, script probes, memory, durability
and the consistency check, rendered as Markdown from a :class:`Report`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from benchmarks.ledger_figures import (
    AOF_ALWAYS,
    AOF_EVERYSEC,
    CATALOG_SKUS,
    CATALOG_STOCK,
    CHANNELS,
    EVAL_ONE,
    EVAL_PIPE,
    GOAL_EVENTS_PER_S,
    GOAL_TEXT,
    INCR_ONE,
    INCR_PIPE,
    NO_PERSISTENCE,
    ONE_BY_ONE,
    PIPELINED,
    PROBE_CALLS,
    PROBE_ROUNDS,
    MemoryResult,
    Probe,
    Throughput,
)


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def fmt_opt(value: float | None, spec: str = ".0f") -> str:
    return "–" if value is None else format(value, spec)


def short_durability(durability: str) -> str:
    if durability == NO_PERSISTENCE:
        return "none"
    if durability == AOF_EVERYSEC:
        return "everysec"
    return "always"


def _mib(value: float) -> str:
    return f"{value / 2**20:,.1f} MiB"


def _ratio(a: Throughput | None, b: Throughput | None) -> str:
    if a is None or b is None:
        return "–"
    return f"{a.rate / b.rate:.2f}"


def _pct_of(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "–"


@dataclass
class Report:
    """Everything one run measured, plus the context needed to read it."""

    command: str
    quick: bool
    duration_s: float
    repeats: int
    started: dt.datetime
    finished: dt.datetime | None = None
    machine: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    load_start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    throughput: list[Throughput] = field(default_factory=list)
    memory: list[MemoryResult] = field(default_factory=list)
    consistency: str = ""
    probes: list[Probe] = field(default_factory=list)

    def find(self, name: str, durability: str, batch: int) -> Throughput | None:
        for r in self.throughput:
            if r.name == name and r.durability == durability and r.batch == batch:
                return r
        return None


INNER_COMMANDS = (
    "hget",
    "hset",
    "hexists",
    "xadd",
    "zadd",
    "persist",
    "hincrby",
    "sadd",
    "pexpire",
)


def inner_profile(r: Throughput) -> list[tuple[str, float, float, float]]:
    """Commands run inside the script, per event: (command, calls, µs, share of evalsha µs)."""
    total = r.commandstats.get("evalsha", {}).get("usec", 0.0)
    calls = r.commandstats.get("evalsha", {}).get("calls", 0.0)
    rows: list[tuple[str, float, float, float]] = []
    if not calls:
        return rows
    inner_usec = 0.0
    for name in INNER_COMMANDS:
        stats = r.commandstats.get(name)
        if stats is None:
            continue
        inner_usec += stats["usec"]
        rows.append((name, stats["calls"] / calls, stats["usec"] / calls, stats["usec"] / total))
    rest = total - inner_usec
    rows.append(
        (
            "(outside any command: Lua, redis.call conversions, cjson)",
            0.0,
            rest / calls,
            rest / total,
        )
    )
    return rows


def render_markdown(report: Report) -> str:
    """The ``ledger`` section of RESULTS.md."""
    out: list[str] = []
    add = out.append
    headline = report.find(PIPELINED, NO_PERSISTENCE, 500)
    best_pipe = max(
        (r for r in report.throughput if r.name.startswith(PIPELINED)),
        key=lambda r: r.rate,
        default=None,
    )
    add("## Ledger: order events per second and memory per SKU")
    add("")
    if report.quick:
        add("**Quick mode** (`--quick`): short measurements, no 1M-SKU memory run.")
        add("")
    add(f"Command (from the repository root): `{report.command}`")
    add("")
    finished = report.finished or report.started
    add(
        f"- Date: {report.started:%Y-%m-%d %H:%M} – {finished:%H:%M} UTC; each throughput "
        f"figure is the best of {report.repeats} run(s) of {report.duration_s:g} s each"
    )
    m, v = report.machine, report.versions
    add(f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram']} RAM, {m['kernel']}")
    add(f"- Temporary dir (the AOF runs write there): {m['tmp_fs']}")
    add(
        f"- Load average (1/5/15 min) at start: {_load(report.load_start)}; "
        f"at end: {_load(report.load_end)}"
    )
    add(
        f"- Python {v['python']}, redis-py {v['redis_py']}, hiredis {v['hiredis']} "
        f"(redis.utils.HIREDIS_AVAILABLE = {v['hiredis_available']})"
    )
    add(f"- Server: {v['server']} (allocator: {v['allocator']}), binary `{v['binary']}`")
    add(f"- Code: {v['code']}")
    add(
        f"- Ledger: `RedisLedger(client, channels={list(CHANNELS)})`, catalog of "
        f"{CATALOG_SKUS:,} SKUs with {CATALOG_STOCK:,} units each; every event is a new order "
        "(unique id) of one line of 1 unit on a random SKU, channel rotating; the timed loop "
        "includes building the `OrderLine`/`OrderEvent` objects and checking each outcome"
    )
    add("")

    add("### Goal")
    add("")
    add(f"Goal: **{GOAL_TEXT}**.")
    add("")
    if headline is not None:
        met = headline.rate >= GOAL_EVENTS_PER_S
        add(
            f"**{'MET' if met else 'NOT MET'}**: `record_orders` pipelined in batches of 500 "
            f"from one client, no persistence: **{fmt_rate(headline.rate)} events/s** "
            f"({headline.rate / GOAL_EVENTS_PER_S:.0%} of the goal)."
        )
        add("")
        server_us = headline.server_usec_per_call or 0.0
        client_us = 1e6 * (headline.client_cpu_s or 0.0) / headline.events
        wall_us = 1e6 * headline.seconds / headline.events
        add(
            f"Per event: {wall_us:.1f} µs of wall time = {client_us:.1f} µs of client CPU "
            f"(Python: building the call, redis-py packing, decoding) + {server_us:.1f} µs of "
            "server time in the script + waiting. One pipelined client alternates with the "
            "server (it builds a batch while the server idles, then waits while the server runs "
            "it), so the two costs add up. With perfect overlap each side would still cap the "
            f"rate: the server at ~{fmt_rate(1e6 / server_us if server_us else 0)} events/s on "
            f"its one core, the client at ~{fmt_rate(1e6 / client_us if client_us else 0)} "
            "events/s per core, and this machine has 2 cores for both."
        )
        add("")
    add("| configuration | events/s | goal met |")
    add("|---|---:|---|")
    for r in report.throughput:
        if r.name.startswith(PIPELINED):
            add(
                f"| {r.name}, batch {r.batch}, {short_durability(r.durability)} | "
                f"{fmt_rate(r.rate)} | "
                f"{'yes' if r.rate >= GOAL_EVENTS_PER_S else 'no'} |"
            )
    if best_pipe is not None:
        add("")
        add(
            f"Best pipelined figure: {fmt_rate(best_pipe.rate)} events/s "
            f"({best_pipe.name}, batch {best_pipe.batch}, "
            f"{short_durability(best_pipe.durability)})."
        )
    add("")

    add(
        "On a shared or virtual machine the same measurement can differ by tens of percent "
        "between runs minutes apart even when nothing else is busy, so compare figures across "
        "runs through the ratios to the raw baselines of the same run and the `return 1` probe "
        "below (a yardstick of the machine's speed at the time), not as absolute numbers."
    )
    add("")

    add("### Throughput")
    add("")
    add("Durability of each server:")
    add("")
    add(f"- `none`: {NO_PERSISTENCE}")
    add(f"- `everysec`: {AOF_EVERYSEC}")
    add(f"- `always`: {AOF_ALWAYS}")
    add("")
    add(
        "| measurement | durability | batch | clients | events | seconds | events/s | "
        "all runs, events/s | client CPU | server CPU | other CPU | server µs/call | "
        "AOF bytes/event |"
    )
    add("|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for r in report.throughput:
        aof = "–" if r.aof_bytes is None else f"{r.aof_bytes / r.events:,.0f}"
        add(
            f"| {r.name} | {short_durability(r.durability)} | {r.batch} | {r.clients} | "
            f"{r.events:,} | "
            f"{r.seconds:.2f} | **{fmt_rate(r.rate)}** | "
            f"{', '.join(fmt_rate(x) for x in r.rates)} | {fmt_opt(r.client_cpu_pct)}% | "
            f"{r.server_cpu_pct:.0f}% | {fmt_opt(r.other_cpu_pct)}% | "
            f"{fmt_opt(r.server_usec_per_call, '.1f')} | {aof} |"
        )
    add("")
    add(
        "Client CPU is the benchmark process's CPU time over wall time (for the multi-process run, "
        "the sum of both clients); server CPU is the server's user+sys CPU over wall time (one "
        "core = 100%); other CPU is what the rest of the machine used meanwhile (busy time "
        "from `/proc/stat` minus client and server; the machine has 200%): anything above a "
        "few % means the figure was disturbed. Server µs/call is `usec_per_call` of the main "
        "command (`evalsha` or `incrby`) in `INFO commandstats`, i.e. time the server spent "
        "executing one call."
    )
    add("")

    add("Ratios:")
    add("")
    add("| ratio | value |")
    add("|---|---:|")
    none = NO_PERSISTENCE
    ratios = [
        (
            f"record_orders pipelined / raw INCRBY pipelined (batch {b}), none",
            report.find(PIPELINED, none, b),
            report.find(INCR_PIPE, none, b),
        )
        for b in (100, 500)
    ]
    ratios += [
        (
            "record_orders pipelined / raw EVALSHA trivial pipelined (batch 500), none",
            headline,
            report.find(EVAL_PIPE, none, 500),
        ),
        (
            "record_order one by one / raw INCRBY one by one, none",
            report.find(ONE_BY_ONE, none, 1),
            report.find(INCR_ONE, none, 1),
        ),
        (
            "record_order one by one / raw EVALSHA trivial one by one, none",
            report.find(ONE_BY_ONE, none, 1),
            report.find(EVAL_ONE, none, 1),
        ),
        (
            "record_orders pipelined (batch 500) / record_order one by one, none",
            headline,
            report.find(ONE_BY_ONE, none, 1),
        ),
    ]
    for durability in (AOF_EVERYSEC, AOF_ALWAYS):
        short = short_durability(durability)
        ratios += [
            (
                f"record_orders pipelined (batch 500), {short} / none",
                report.find(PIPELINED, durability, 500),
                headline,
            ),
            (
                f"record_order one by one, {short} / none",
                report.find(ONE_BY_ONE, durability, 1),
                report.find(ONE_BY_ONE, none, 1),
            ),
        ]
    for text, a, b in ratios:
        add(f"| {text} | {_ratio(a, b)} |")
    add("")

    if headline is not None:
        rows = inner_profile(headline)
        if rows:
            usec = headline.server_usec_per_call or 0.0
            add(
                f"Where the server's time goes in `apply_order_event.lua` (record_orders batch "
                f"500, none): {usec:.1f} µs per event on the server, i.e. the server alone could "
                f"do at most ~{fmt_rate(1e6 / usec if usec else 0)} events/s on one core. "
                "Commands called from the script, per event (from `INFO commandstats`):"
            )
            add("")
            add("| command | calls/event | µs/event | share of script time |")
            add("|---|---:|---:|---:|")
            for name, calls, us, share in rows:
                calls_text = "–" if not calls else f"{calls:.2f}"
                add(f"| {name} | {calls_text} | {us:.2f} | {share:.0%} |")
            add("")

    if report.probes:
        add(
            "Server-side cost of pieces of `apply_order_event.lua`, each run as its own script "
            "with the ledger's real KEYS/ARGV (µs per EVALSHA from `INFO commandstats`, best of "
            f"{PROBE_ROUNDS} rounds of {PROBE_CALLS:,} pipelined calls, the pieces taking turns; a "
            "piece's own cost is its figure minus the prologue's; differences of a µs or two "
            "are within the noise):"
        )
        add("")
        add("| script | µs/call |")
        add("|---|---:|")
        for probe in report.probes:
            add(f"| {probe.name} | {fmt_opt(probe.usec, '.2f')} |")
        add("")

    if report.consistency:
        add(f"Consistency check after the runs: {report.consistency}")
        add("")

    if report.memory:
        allocator = report.memory[0].allocator
        add("### Memory per SKU")
        add("")
        add(
            "`INFO memory` used_memory after `FLUSHALL`, then after `import_on_hand` of N SKUs "
            f"(1,000 units each; chunks of 1,000 per Lua call), then after one open order per "
            f"10 SKUs (`record_orders`, one line of 1 unit). Server durability `none`, allocator "
            f"`{allocator}`, 3 channels. Key sizes from `MEMORY USAGE <key> SAMPLES 0`."
        )
        add("")
        add(
            "| SKUs | open orders | used_memory Δ | bytes/SKU | of which journal | "
            "dirty zsets (3) | bytes/SKU without journal and dirty | journal XLEN |"
        )
        add("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for mem in report.memory:
            stages = (
                (
                    0,
                    mem.skus_bytes,
                    mem.skus_journal_bytes,
                    mem.skus_dirty_bytes,
                    mem.skus_journal_len,
                ),
                (mem.orders, mem.total_bytes, mem.journal_bytes, mem.dirty_bytes, mem.journal_len),
            )
            for orders, total, journal, dirty, xlen in stages:
                add(
                    f"| {mem.skus:,} | {orders:,} | {_mib(total)} | **{total / mem.skus:,.0f}** | "
                    f"{_mib(journal)} ({_pct_of(journal, total)}) | "
                    f"{_mib(dirty)} ({_pct_of(dirty, total)}) | "
                    f"**{(total - journal - dirty) / mem.skus:,.0f}** | {xlen:,} |"
                )
        add("")
        add(
            "| SKUs | on_hand hash B/SKU | reserved hash B/open order | "
            "B/open order (hash + keyspace) | one order hash (MEMORY USAGE) | journal B/entry | "
            "import_on_hand SKUs/s | orders/s while loading |"
        )
        add("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for mem in report.memory:
            per_entry = mem.journal_bytes / mem.journal_len if mem.journal_len else 0.0
            add(
                f"| {mem.skus:,} | {mem.on_hand_bytes / mem.skus:,.0f} | "
                f"{mem.reserved_bytes / max(mem.orders, 1):,.0f} | "
                f"{mem.orders_share_bytes / max(mem.orders, 1):,.0f} | {mem.order_key_bytes:,} | "
                f"{per_entry:,.0f} | {fmt_rate(mem.skus / mem.import_s)} | "
                f"{fmt_rate(mem.orders / mem.orders_s) if mem.orders_s else '–'} |"
            )
        add("")
        entry = max(
            (mem.journal_bytes / mem.journal_len for mem in report.memory if mem.journal_len),
            default=0.0,
        )
        add(
            "The journal is capped at ~1,000,000 entries (`XADD MAXLEN ~`), so its share is "
            f"bounded: at ~{entry:,.0f} B/entry the full journal takes ~{_mib(entry * 1e6)} "
            "whatever the catalog size. The dirty zsets hold one member per SKU per channel "
            "until propagation publishes the SKU (right after a full import every SKU is "
            "dirty), so the bytes/SKU without journal and dirty is the steady-state figure. At "
            "1,000 SKUs fixed overheads dominate; the 100k and 1M rows are the ones to use."
        )
        add("")
    return "\n".join(out)


def _load(values: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


# -- the run ---------------------------------------------------------------------------------
