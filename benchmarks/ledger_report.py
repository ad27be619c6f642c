"""The ledger benchmark's section of RESULTS.md: the goals, the ledger before and after the
Functions library, throughput, where the server's time goes, probes, memory, durability and the
consistency checks, rendered as Markdown from a :class:`Report`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks.allocators import ENGINE, GLIBC, Allocator
from benchmarks.ledger_figures import (
    AFTER,
    AOF_ALWAYS,
    AOF_EVERYSEC,
    BASELINE_COMMIT,
    BASELINE_FILE,
    BEFORE,
    CATALOG_SKUS,
    CATALOG_STOCK,
    CHANNELS,
    EVAL_ONE,
    EVAL_PIPE,
    FALLBACK,
    FCALL_PIPE,
    GOAL_EVENTS_PER_S,
    GOAL_MULTI_EVENTS_PER_S,
    GOAL_MULTI_TEXT,
    GOAL_SERVER_TEXT,
    GOAL_SERVER_USEC,
    GOAL_TEXT,
    INCR_ONE,
    INCR_PIPE,
    ISSUE_BEFORE_TEXT,
    MULTI,
    NO_PERSISTENCE,
    ONE_BY_ONE,
    PIPELINED,
    PROBE_CALLS,
    PROBE_ROUNDS,
    VARIANT_SHORT,
    VARIANT_TEXT,
    VARIANTS,
    Equivalence,
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


def _met(ok: bool) -> str:
    return "**MET**" if ok else "**NOT MET**"


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
    equivalence: Equivalence | None = None
    probes: list[Probe] = field(default_factory=list)
    allocators: list[tuple[Allocator, list[Throughput]]] = field(default_factory=list)
    """A fresh server per allocator, before and after: (the allocator, its runs)."""

    def find(self, name: str, durability: str, batch: int, variant: str = "") -> Throughput | None:
        """A measurement by name, durability, batch and variant ("" for the raw baselines)."""
        for r in self.throughput:
            if (r.name, r.durability, r.batch, r.variant) == (name, durability, batch, variant):
                return r
        return None


INNER_COMMANDS = (
    "hget",
    "hset",
    "hincrby",
    "hexists",
    "xadd",
    "zadd",
    "persist",
    "sadd",
    "pexpire",
)
"""Commands the ledger's Lua calls, in the order the breakdown lists them (others follow)."""
CALLERS = ("evalsha", "evalsha_ro", "eval", "eval_ro", "fcall", "fcall_ro")


def inner_profile(r: Throughput) -> list[tuple[str, float, float, float]]:
    """Commands run inside the script or function, per event: (command, calls, µs, share of
    the main command's µs); the last row is the time outside any command."""
    main = r.commandstats.get(r.main_command, {})
    total, calls = main.get("usec", 0.0), main.get("calls", 0.0)
    rows: list[tuple[str, float, float, float]] = []
    if not calls:
        return rows
    inner = [n for n in r.commandstats if n not in CALLERS and "|" not in n]
    inner.sort(key=lambda n: (INNER_COMMANDS.index(n) if n in INNER_COMMANDS else 99, n))
    inner_usec = 0.0
    for name in inner:
        stats = r.commandstats[name]
        inner_usec += stats["usec"]
        rows.append((name, stats["calls"] / calls, stats["usec"] / calls, stats["usec"] / total))
    rest = total - inner_usec
    rows.append((OUTSIDE, 0.0, rest / calls, rest / total))
    return rows


OUTSIDE = "(outside any command: Lua, redis.call conversions, cjson)"


def _variant_cell(r: Throughput) -> str:
    return VARIANT_SHORT.get(r.variant, "–")


def render_markdown(report: Report) -> str:
    """The ``ledger`` section of RESULTS.md."""
    out: list[str] = []
    add = out.append
    none = NO_PERSISTENCE
    pipe = {v: report.find(PIPELINED, none, 500, v) for v in VARIANTS}
    multi = {v: report.find(MULTI, none, 500, v) for v in VARIANTS}
    single = {v: report.find(ONE_BY_ONE, none, 1, v) for v in VARIANTS}
    headline = pipe[AFTER]
    best_pipe = max(
        (r for r in report.throughput if r.name.startswith(PIPELINED) and r.variant == AFTER),
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
    add(f"- Code: {v['code']}; Functions library `{v.get('library', '?')}`")
    add(
        f"- Ledger: `RedisLedger(client, channels={list(CHANNELS)})`, catalog of "
        f"{CATALOG_SKUS:,} SKUs with {CATALOG_STOCK:,} units each; every event is a new order "
        "(unique id) of one line of 1 unit on a random SKU, channel rotating; the timed loop "
        "includes building the `OrderLine`/`OrderEvent` objects and checking each outcome"
    )
    add(
        "- Before and after, measured in this run, on the same server and the same account, "
        "through the same Python client code (today's `RedisLedger`: same KEYS and ARGV); "
        "the three ways `apply_order_event` runs take turns within every repetition:"
    )
    add(
        f"  - **{VARIANT_SHORT[BEFORE]}**, {VARIANT_TEXT[BEFORE]}: the script "
        f"`script_source('apply_order_event')` returned at {BASELINE_COMMIT} (`_lib.lua` "
        f"prepended, its helper closures created at every call, lines decoded from JSON), "
        f"frozen in `{BASELINE_FILE}` (SHA1 checked: {v.get('before', '?')}), run by a "
        "`RedisLedger` subclass whose `_run` EVALSHAs it through redis-py's `Script` as the "
        "ledger did then; it reads ARGV[9] (the same canonical JSON) and ignores the flat "
        "lines at ARGV[14..]"
    )
    add(
        f"  - **{VARIANT_SHORT[AFTER]}**, {VARIANT_TEXT[AFTER]}: today's ledger, "
        "`RedisLedger(..., functions=True)`, one `FCALL` per event"
    )
    add(
        f"  - **{VARIANT_SHORT[FALLBACK]}**, {VARIANT_TEXT[FALLBACK]}: one script per "
        "operation, what runs where the server has no Functions"
    )
    add("")

    _goals(report, add, pipe, multi, best_pipe)
    _before_after(report, add, pipe, multi, single)
    _allocators(report, add)

    add(
        "On a shared or virtual machine the same measurement can differ by tens of percent "
        "between runs minutes apart even when nothing else is busy, so compare figures across "
        "runs through the ratios to the raw baselines of the same run and the `return 1` probes "
        "below (a yardstick of the machine's speed at the time), not as absolute numbers; "
        "before and after are compared within this run."
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
        "| measurement | code | durability | batch | clients | events | seconds | events/s | "
        "all runs, events/s | client CPU | server CPU | other CPU | main command | "
        "server µs/call | AOF bytes/event |"
    )
    add("|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---:|---:|")
    for r in report.throughput:
        aof = "–" if r.aof_bytes is None else f"{r.aof_bytes / r.events:,.0f}"
        add(
            f"| {r.name} | {_variant_cell(r)} | {short_durability(r.durability)} | {r.batch} | "
            f"{r.clients} | {r.events:,} | "
            f"{r.seconds:.2f} | **{fmt_rate(r.rate)}** | "
            f"{', '.join(fmt_rate(x) for x in r.rates)} | {fmt_opt(r.client_cpu_pct)}% | "
            f"{r.server_cpu_pct:.0f}% | {fmt_opt(r.other_cpu_pct)}% | `{r.main_command}` | "
            f"{fmt_opt(r.server_usec_per_call, '.1f')} | {aof} |"
        )
    add("")
    add(
        "Client CPU is the benchmark process's CPU time over wall time (for the multi-process run, "
        "the sum of both clients); server CPU is the server's user+sys CPU over wall time (one "
        "core = 100%); other CPU is what the rest of the machine used meanwhile (busy time "
        "from `/proc/stat` minus client and server; the machine has 200%): anything above a "
        "few % means the figure was disturbed. Server µs/call is `usec_per_call` of the main "
        "command in `INFO commandstats` (`cmdstat_fcall` for the Functions library, "
        "`cmdstat_evalsha` for the scripts, `cmdstat_incrby` for INCRBY), i.e. time the server "
        "spent executing one call, the commands the Lua called included. The AOF runs use the "
        "ledger as it is now (Functions)."
    )
    add("")

    add("Ratios:")
    add("")
    add("| ratio | value |")
    add("|---|---:|")
    ratios = [
        (
            f"{what}: after (FCALL) / before (EVALSHA, frozen script), events/s",
            table[AFTER],
            table[BEFORE],
        )
        for what, table in (
            ("record_order one by one", single),
            ("record_orders pipelined, batch 500", pipe),
            ("record_orders pipelined, batch 500, 2 processes", multi),
        )
    ]
    ratios += [
        (
            "record_orders pipelined, batch 500: scripts fallback / before, events/s",
            pipe[FALLBACK],
            pipe[BEFORE],
        ),
    ]
    ratios += [
        (
            f"record_orders pipelined (after) / raw INCRBY pipelined (batch {b}), none",
            report.find(PIPELINED, none, b, AFTER),
            report.find(INCR_PIPE, none, b),
        )
        for b in (100, 500)
    ]
    ratios += [
        (
            "record_orders pipelined (after) / raw FCALL trivial pipelined (batch 500), none",
            headline,
            report.find(FCALL_PIPE, none, 500),
        ),
        (
            "record_orders pipelined (before) / raw EVALSHA trivial pipelined (batch 500), none",
            pipe[BEFORE],
            report.find(EVAL_PIPE, none, 500),
        ),
        (
            "record_order one by one (after) / raw INCRBY one by one, none",
            single[AFTER],
            report.find(INCR_ONE, none, 1),
        ),
        (
            "record_order one by one (after) / raw EVALSHA trivial one by one, none",
            single[AFTER],
            report.find(EVAL_ONE, none, 1),
        ),
        (
            "record_orders pipelined (batch 500) / record_order one by one (after), none",
            headline,
            single[AFTER],
        ),
    ]
    for durability in (AOF_EVERYSEC, AOF_ALWAYS):
        short = short_durability(durability)
        ratios += [
            (
                f"record_orders pipelined (batch 500, after), {short} / none",
                report.find(PIPELINED, durability, 500, AFTER),
                headline,
            ),
            (
                f"record_order one by one (after), {short} / none",
                report.find(ONE_BY_ONE, durability, 1, AFTER),
                single[AFTER],
            ),
        ]
    for text, a, b in ratios:
        add(f"| {text} | {_ratio(a, b)} |")
    add("")

    _breakdown(add, pipe)
    _probes(report, add)

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


Add = Callable[[str], None]
ByVariant = dict[str, Throughput | None]


def _usec(r: Throughput | None) -> str:
    return "–" if r is None else f"{fmt_opt(r.server_usec_per_call, '.1f')} µs"


def _goals(
    report: Report, add: Add, pipe: ByVariant, multi: ByVariant, best: Throughput | None
) -> None:
    """Issue 15 §3's goals, met or not, and the benchmark's earlier goal."""
    add("### Goals")
    add("")
    add("Issue 15 §3, on this 2-core machine, without persistence, measured in this run:")
    add("")
    after, before, fallback = pipe[AFTER], pipe[BEFORE], pipe[FALLBACK]
    if after is not None and after.server_usec_per_call is not None:
        usec = after.server_usec_per_call
        add(
            f"1. **{GOAL_SERVER_TEXT}**: {_met(usec <= GOAL_SERVER_USEC)}: "
            f"**{usec:.1f} µs** per event (`cmdstat_fcall` usec_per_call, `record_orders` "
            f"pipelined in batches of 500 from one client), before: {_usec(before)} "
            f"(`cmdstat_evalsha`, the frozen script), scripts fallback: {_usec(fallback)}. "
            f"From 2 processes: after {_usec(multi[AFTER])}, before {_usec(multi[BEFORE])}."
            + _per_allocator(report)
        )
    m_after, m_before, m_fallback = multi[AFTER], multi[BEFORE], multi[FALLBACK]
    if m_after is not None:
        text = (
            f"2. **{GOAL_MULTI_TEXT}**: {_met(m_after.rate >= GOAL_MULTI_EVENTS_PER_S)}: "
            f"**{fmt_rate(m_after.rate)} events/s** "
            f"({m_after.rate / GOAL_MULTI_EVENTS_PER_S:.1%} of the goal)"
        )
        if m_before is not None:
            text += (
                f", before: {fmt_rate(m_before.rate)} events/s "
                f"(after / before {m_after.rate / m_before.rate:.2f})"
            )
        if m_fallback is not None:
            text += f", scripts fallback: {fmt_rate(m_fallback.rate)} events/s"
        add(text + ".")
    eq = report.equivalence
    if eq is not None:
        add(
            f"3. **Results identical**: {'**MET**' if eq.ok else '**NOT MET**'}: the same "
            f"{eq.events:,} order events ({eq.calls:,} ledger calls, one by one and pipelined) "
            "applied through each of the three ways on an account of its own, with the same "
            "hand-moved clock: every call's answer and every key of the account afterwards "
            f"({eq.keys:,} keys: counters, orders, journal entries, dirty marks, oversold and "
            f"parked lines, TTLs) {'are identical' if eq.ok else 'differ'}; {eq.detail}."
        )
    add("")
    add(f"{ISSUE_BEFORE_TEXT}.")
    add("")
    if best is not None:
        add(
            f"Earlier goal, set when this benchmark was first written (commit 07ca51d, before "
            f"issue 15), kept as a yardstick: {GOAL_TEXT}: "
            f"{_met(best.rate >= GOAL_EVENTS_PER_S)}: best pipelined figure after the change "
            f"{fmt_rate(best.rate)} events/s ({best.rate / GOAL_EVENTS_PER_S:.0%} of it; "
            f"{best.name}, batch {best.batch})."
        )
        add("")
    if after is not None:
        server_us = after.server_usec_per_call or 0.0
        client_us = 1e6 * (after.client_cpu_s or 0.0) / after.events
        wall_us = 1e6 * after.seconds / after.events
        add(
            f"Per event after the change (`record_orders` batch 500, one client, "
            f"{fmt_rate(after.rate)} events/s): {wall_us:.1f} µs of wall time = "
            f"{client_us:.1f} µs of client CPU (Python: building the call, redis-py packing, "
            f"decoding) + {server_us:.1f} µs of server time in the function + waiting. One "
            "pipelined client alternates with the server (it builds a batch while the server "
            "idles, then waits while the server runs it), so the two costs add up. With perfect "
            "overlap each side would still cap the rate: the server at "
            f"~{fmt_rate(1e6 / server_us if server_us else 0)} events/s on its one core, the "
            f"client at ~{fmt_rate(1e6 / client_us if client_us else 0)} events/s per core, and "
            "this machine has 2 cores for both."
        )
        add("")


def _before_after(
    report: Report, add: Add, pipe: ByVariant, multi: ByVariant, single: ByVariant
) -> None:
    add("### Before and after (issue 15 §3)")
    add("")
    add(
        "| workload | code | events/s | all runs, events/s | vs before | server µs/call | "
        "server CPU | client CPU | other CPU |"
    )
    add("|---|---|---:|---|---:|---:|---:|---:|---:|")
    for what, table in (
        ("record_order one by one", single),
        ("record_orders pipelined, batch 500, 1 client", pipe),
        ("record_orders pipelined, batch 500, 2 processes", multi),
    ):
        base = table[BEFORE]
        for variant in VARIANTS:
            r = table[variant]
            if r is None:
                continue
            versus = "–" if base is None or variant == BEFORE else f"{r.rate / base.rate:.2f}×"
            add(
                f"| {what} | {VARIANT_SHORT[variant]} | **{fmt_rate(r.rate)}** | "
                f"{', '.join(fmt_rate(x) for x in r.rates)} | {versus} | "
                f"{fmt_opt(r.server_usec_per_call, '.1f')} (`{r.main_command}`) | "
                f"{r.server_cpu_pct:.0f}% | {fmt_opt(r.client_cpu_pct)}% | "
                f"{fmt_opt(r.other_cpu_pct)}% |"
            )
    add("")


def _per_allocator(report: Report) -> str:
    """Goal 1 on each allocator's fresh server (after, then before), as one sentence."""
    parts = []
    for allocator, runs in report.allocators:
        after, before = _allocator_result(runs, AFTER), _allocator_result(runs, BEFORE)
        if after is None or after.server_usec_per_call is None:
            continue
        verdict = "met" if after.server_usec_per_call <= GOAL_SERVER_USEC else "not met"
        parts.append(f"{allocator.name}: after {_usec(after)} ({verdict}), before {_usec(before)}")
    if not parts:
        return ""
    return (
        " The same workload on a fresh server for each allocator (below, \"The server's memory "
        f'allocator"): {"; ".join(parts)}.'
    )


def _allocator_result(runs: list[Throughput], variant: str) -> Throughput | None:
    return next((r for r in runs if r.variant == variant), None)


def _allocators(report: Report, add: Add) -> None:
    """Before and after on a fresh server per allocator."""
    if not report.allocators:
        return
    add("### The server's memory allocator")
    add("")
    add(
        "`record_orders` pipelined, batch 500, one client, no persistence: a fresh server for "
        "each allocator (catalog stocked, one warm-up batch per variant), before and after "
        "taking turns within every repetition, the same number of runs each. The other "
        "figures of this section ran on the first one:"
    )
    add("")
    for allocator, _runs in report.allocators:
        add(f"- **{allocator.name}**: {allocator.text}")
    add("")
    add(
        "| allocator | code | events/s | all runs, events/s | server µs/call | "
        f"goal ≤ {GOAL_SERVER_USEC:g} µs | server CPU | client CPU | other CPU |"
    )
    add("|---|---|---:|---|---:|---|---:|---:|---:|")
    for allocator, runs in report.allocators:
        for variant in (BEFORE, AFTER):
            r = _allocator_result(runs, variant)
            if r is None:
                continue
            usec = r.server_usec_per_call
            goal = "–" if variant != AFTER or usec is None else _met(usec <= GOAL_SERVER_USEC)
            add(
                f"| {allocator.name} | {VARIANT_SHORT[variant]} | **{fmt_rate(r.rate)}** | "
                f"{', '.join(fmt_rate(x) for x in r.rates)} | "
                f"{fmt_opt(usec, '.1f')} (`{r.main_command}`) | {goal} | "
                f"{r.server_cpu_pct:.0f}% | {fmt_opt(r.client_cpu_pct)}% | "
                f"{fmt_opt(r.other_cpu_pct)}% |"
            )
    add("")
    _allocator_reading(report, add)


def _usec_of(runs: list[Throughput], variant: str) -> float | None:
    r = _allocator_result(runs, variant)
    return None if r is None else r.server_usec_per_call


def _goal_by_allocator(report: Report) -> str:
    """Which allocators' fresh servers meet goal 1 with today's code, from the figures."""
    met: list[str] = []
    missed: list[str] = []
    for allocator, runs in report.allocators:
        usec = _usec_of(runs, AFTER)
        if usec is not None:
            (met if usec <= GOAL_SERVER_USEC else missed).append(allocator.name)
    text = f"Goal 1 (≤ {GOAL_SERVER_USEC:g} µs) after the change is met on: "
    text += ", ".join(met) if met else "none"
    text += "; not met on: " + (", ".join(missed) if missed else "none")
    return text + "."


def _allocator_reading(report: Report, add: Add) -> None:
    """How much of the way from glibc's "before" to the engine's "after" is the script's change
    and how much the allocator's (only when both servers ran)."""
    by_name = {allocator.name: runs for allocator, runs in report.allocators}
    engine, glibc = by_name.get(ENGINE), by_name.get(GLIBC)
    if engine is None or glibc is None:
        return
    g_before, g_after = _usec_of(glibc, BEFORE), _usec_of(glibc, AFTER)
    m_before, m_after = _usec_of(engine, BEFORE), _usec_of(engine, AFTER)
    if g_before is None or g_after is None or m_before is None or m_after is None:
        return
    add(
        f"Reading: the script's change takes the server's time per event from {g_before:.1f} "
        f"to {g_after:.1f} µs on glibc's malloc ({g_before - g_after:.1f} µs less) and from "
        f"{m_before:.1f} to {m_after:.1f} µs on mimalloc ({m_before - m_after:.1f} µs less); "
        f"mimalloc instead of glibc's malloc takes {g_before - m_before:.1f} µs off the old "
        f"script and {g_after - m_after:.1f} µs off the new one. The allocator's part is time "
        "the server spends in `malloc` and `free` (the call's arguments, replies and Lua "
        "tables of every call: `perf record` of the server put glibc's allocator at ~20 % of "
        "its time in this workload), which no change to the Lua removes. "
        + _goal_by_allocator(report)
    )
    add("")


def _breakdown(add: Add, pipe: ByVariant) -> None:
    """Commands the Lua called, per event, before and after (record_orders batch 500)."""
    profiles = {v: inner_profile(r) for v, r in pipe.items() if r is not None}
    profiles = {v: rows for v, rows in profiles.items() if rows}
    after = pipe[AFTER]
    if AFTER not in profiles or after is None:
        return
    usec = after.server_usec_per_call or 0.0
    add(
        "Where the server's time goes in `apply_order_event` (`record_orders` batch 500, one "
        f"client, none): after the change {usec:.1f} µs per event on the server, i.e. the "
        f"server alone could do at most ~{fmt_rate(1e6 / usec if usec else 0)} events/s on one "
        "core. Commands called from the Lua, per event (from `INFO commandstats`; share: of "
        "that variant's `fcall`/`evalsha` time):"
    )
    add("")
    variants = [v for v in VARIANTS if v in profiles]
    names: list[str] = []
    for variant in variants:
        for name, *_ in profiles[variant]:
            if name not in names and name != OUTSIDE:
                names.append(name)
    names.sort(key=lambda n: (INNER_COMMANDS.index(n) if n in INNER_COMMANDS else 99, n))
    names.append(OUTSIDE)
    header = " | ".join(f"{VARIANT_SHORT[v]}: calls, µs/event (share)" for v in variants)
    add(f"| command | {header} |")
    add("|---|" + "---:|" * len(variants))
    for name in names:
        cells = []
        for variant in variants:
            row = next((r for r in profiles[variant] if r[0] == name), None)
            if row is None:
                cells.append("–")
            else:
                calls = "–" if name == OUTSIDE else f"{row[1]:.2f}"
                cells.append(f"{calls}, {row[2]:.2f} ({row[3]:.0%})")
        add(f"| {name} | {' | '.join(cells)} |")
    totals = []
    for variant in variants:
        r = pipe[variant]
        totals.append("–" if r is None else f"**{fmt_opt(r.server_usec_per_call, '.2f')}**")
    add(f"| **total**: server µs per call (`fcall` / `evalsha`) | {' | '.join(totals)} |")
    add("")


def _probes(report: Report, add: Add) -> None:
    if not report.probes:
        return
    add(
        "Server-side cost of pieces of `apply_order_event` (µs per call of `fcall` or "
        "`evalsha` from `INFO commandstats`, best of "
        f"{PROBE_ROUNDS} rounds of {PROBE_CALLS:,} pipelined calls, the pieces taking turns, "
        "each with the ledger's real KEYS/ARGV). After: today's `_lib.lua` loaded once as a "
        "probe library with one function per piece (a piece's own cost is its figure minus "
        "the `begin` one), and the ledger's own function. Before: the frozen script and its "
        f"`_lib.lua` prologue of {BASELINE_COMMIT} through EVALSHA. Fallback: today's code as a "
        "script. Differences of a µs or two are within the noise:"
    )
    add("")
    add("| code | piece | call | µs/call |")
    add("|---|---|---|---:|")
    for probe in report.probes:
        add(
            f"| {VARIANT_SHORT.get(probe.group, probe.group)} | {probe.name} | "
            f"`{probe.command}` | {fmt_opt(probe.usec, '.2f')} |"
        )
    add("")


def _load(values: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


# -- the run ---------------------------------------------------------------------------------
