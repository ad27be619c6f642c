"""The propagation benchmark's Markdown section and its PNG of latency distributions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.propagation_analysis import PUSH_SOURCES, PhaseFigures
from benchmarks.propagation_driver import SOURCES
from benchmarks.propagation_env import MARKETPLACES, percentile

if TYPE_CHECKING:
    from benchmarks.propagation import PhaseRun, Run

GOAL_P99_MS, STRETCH_P99_MS = 100.0, 50.0
GOAL_RATE, GOAL_RATE_P99_MS, GOAL_RATE_SECONDS = 1_000.0, 500.0, 60.0
GOAL_THROTTLED_S = 1.1
DISTURBED_PCT = 20.0
"""A phase during which other processes used more than this share of one core was disturbed."""
DEFAULT_WB_POLL_S = 5.0
THROTTLED_HEADER = [
    "phase", "throttled events", "values", "wait p50 ms", "wait p95 ms", "wait p99 ms",
    "wait max ms", "sent → arrival p50 ms", "sent → arrival max ms",
]  # fmt: skip
INTAKE_HEADER = [
    "phase", "source", "p50 ms", "p95 ms", "p99 ms", "max ms", "notification delay p50 ms",
    "max ms", "webhook answer p50 ms", "p99 ms",
]  # fmt: skip


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:.1f}"


def _stats(values: Sequence[float]) -> list[str]:
    return [f"{len(values):,}", *(_ms(percentile(values, q)) for q in (0.5, 0.95, 0.99, 1.0))]


def _met(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def _figs(p: PhaseRun) -> PhaseFigures:
    assert p.figures is not None
    return p.figures


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> list[str]:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def goals(run: Run) -> list[str]:
    out = ["### Goals", ""]
    plain = [p for p in run.phases if p.phase.latency_ms is None]
    at_100 = [p for p in plain if p.phase.rate == 100]
    if at_100:
        f = _figs(at_100[0])
        p99 = {c: percentile(f.first_change[c], 0.99) for c in MARKETPLACES}
        worst = max((v for v in p99.values() if v is not None), default=None)
        each = ", ".join(f"{c} {_ms(v)} ms" for c, v in p99.items())
        ok = worst is not None and worst <= GOAL_P99_MS
        stretch = worst is not None and worst <= STRETCH_P99_MS
        out.append(
            f"- p99 ≤ {GOAL_P99_MS:.0f} ms at 100 events/s on each of the three channels "
            f"(first change of an item, events from Ozon, YM and the storefront): {each} — "
            f"{_met(ok)}; stretch ≤ {STRETCH_P99_MS:.0f} ms: {_met(stretch)}."
        )
    at_1000 = [p for p in plain if p.phase.rate >= GOAL_RATE]
    if at_1000:
        p = at_1000[0]
        f = _figs(p)
        p99 = {c: percentile(f.first_change[c], 0.99) for c in MARKETPLACES}
        lost = len(f.missing) + sum(run.final_behind.values())
        rate_ok = min(f.rate_sent, f.applied_rate) >= 0.98 * GOAL_RATE
        long_enough = p.phase.seconds >= GOAL_RATE_SECONDS
        ok = (
            rate_ok
            and long_enough
            and lost == 0
            and all(v is not None and v <= GOAL_RATE_P99_MS for v in p99.values())
        )
        each = ", ".join(f"{c} {_ms(v)} ms" for c, v in p99.items())
        out.append(
            f"- ≥ {GOAL_RATE:,.0f} events/s for {GOAL_RATE_SECONDS:.0f} s with p99 ≤ "
            f"{GOAL_RATE_P99_MS:.0f} ms and nothing lost: sent {f.rate_sent:,.0f}/s, reaching the "
            f"engine {f.rate_engine:,.0f}/s, applied {f.applied_rate:,.0f}/s for "
            f"{p.phase.seconds:g} s; p99 {each}; events not applied or not delivered: "
            f"{len(f.missing)}, channel values behind the ledger at the end: "
            f"{sum(run.final_behind.values())} — {_met(ok)}"
            + ("" if long_enough else f" (this run was {p.phase.seconds:g} s, not 60)")
            + "."
        )
    out += push_path_goals(run)
    waits = [w for p in run.phases for w in _figs(p).throttled_wait]
    worst_wait = max(waits, default=None)
    out.append(
        f"- Ozon's throttled changes leave ≤ {GOAL_THROTTLED_S} s after their window opens: "
        f"{len(waits):,} values carried throttled changes; wait beyond the allowed instant "
        f"p50 {_ms(percentile(waits, 0.5))} ms, p99 {_ms(percentile(waits, 0.99))} ms, max "
        f"{_ms(worst_wait)} ms — "
        f"{_met(worst_wait is not None and worst_wait <= GOAL_THROTTLED_S * 1000)}."
    )
    frequency = run.violations.get("ozon", {}).get("item_frequency", 0)
    total = sum(v for kinds in run.violations.values() for v in kinds.values())
    out.append(
        f"- The simulators' rejections for frequency (Ozon `item_frequency`) must be 0: "
        f"{frequency} — {_met(frequency == 0)}; all limit violations of all simulators: {total}"
        + (f" {run.violations}" if total else "")
        + "."
    )
    return [*out, ""]


PUSH_FLOOR_MS = {"ozon": 800, "wb": 200, "ym": 0}
"""Issue 11: each channel's own floor at 100 events/s with answers of 50–300 ms (Ozon's 80
requests a minute space requests ~0.86 s apart, WB's one per 200 ms); the goal is floor +
0.4 s at p99 with that latency, and 0.2 s less without it."""


def push_path_goals(run: Run) -> list[str]:
    """Issue 11's rows: first change p99 within each channel's floor + 0.4 s at 100 events/s
    with API latency of 50–300 ms (0.2 s less without), next to the engine's own share."""
    out = []
    for p in run.phases:
        if p.phase.rate != 100:
            continue
        f = _figs(p)
        slack = 400 if p.phase.latency_ms else 200
        parts, ok = [], True
        for c in MARKETPLACES:
            p99, goal = percentile(f.first_change[c], 0.99), PUSH_FLOOR_MS[c] + slack
            allowed = percentile(f.engine_allowed[c], 0.99)
            ok = ok and p99 is not None and p99 <= goal
            parts.append(
                f"{c} {_ms(p99)} ms (goal ≤ {goal:,} ms; engine's share, allowed instant → "
                f"accepted p99 {_ms(allowed)} ms)"
            )
        out.append(
            f"- Issue 11, {p.phase.label}: first change p99 {'; '.join(parts)} — {_met(ok)}."
        )
    behind = sum(run.final_behind.values())
    out.append(
        f"- Issue 11: values different from the ledger at the end: {behind} — {_met(behind == 0)}."
    )
    return out


def disturbed(run: Run) -> list[str]:
    """A warning when the rest of the machine was busy during a phase."""
    busy = []
    for n, p in enumerate(run.phases, start=1):
        other = 100 * p.cpu_s.get("other processes", 0.0) / (p.seconds + p.settle_s)
        if other > DISTURBED_PCT:
            busy.append(f"phase {n} {other:.0f}%")
    if not busy:
        return []
    return [
        f"**DISTURBED RUN**: other processes on this machine used {', '.join(busy)} of one core "
        "(of 200 %) while the phases ran: the figures below measure the engine sharing 2 cores "
        "with that load, not the engine alone. Run again on a quiet machine.",
        "",
    ]


def phase_table(run: Run) -> list[str]:
    rows = []
    for n, p in enumerate(run.phases, start=1):
        f = _figs(p)
        notified = sum(f.notified.values())
        violations = sum(v for kinds in p.violations.values() for v in kinds.values())
        rows.append(
            [
                f"{n}. {p.phase.label}",
                f"{f.rate_sent:,.0f}",
                f"{f.rate_engine:,.0f}",
                f"{f.applied_rate:,.0f}",
                f"{sum(f.sent.values()):,}",
                f"{sum(f.answered_ok.values()):,}",
                f"{notified:,}",
                f"{sum(f.applied.values()):,}",
                f"{p.settle_s:.1f}" + ("" if p.settled else " (not settled)"),
                f"{p.queue_max['events']:,} / {p.queue_max['push']:,}",
                f"{p.commands / max(1, sum(f.sent.values())):,.0f}",
                _ms(percentile(f.send_lag, 0.99)),
                str(violations),
            ]
        )
    header = [
        "phase", "sent/s", "to engine/s", "applied/s", "events", "answered 2xx",
        "notified (Ozon+YM)", "applied", "settle s", "max queue events / push",
        "Valkey commands / event", "driver lag p99 ms", "violations",
    ]  # fmt: skip
    return _table(header, rows)


def latency_tables(run: Run) -> list[str]:
    head = ["phase", "channel", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"]
    first, wb, throttled, intake, delivery, engine = [], [], [], [], [], []
    for n, p in enumerate(run.phases, start=1):
        f = _figs(p)
        for c in MARKETPLACES:
            first.append([f"{n}. {p.phase.label}", c, *_stats(f.first_change[c])])
            if c != "wb":
                wb.append([f"{n}. {p.phase.label}", c, *_stats(f.from_wb[c])])
            delivery.append(
                [f"{n}. {p.phase.label}", c, f"{f.expected[c]:,}", f"{f.delivered[c]:,}"]
            )
            engine.append(
                [
                    f"{n}. {p.phase.label}",
                    c,
                    *_stats(f.engine_allowed[c]),
                    _ms(percentile(f.engine_first[c], 0.5)),
                    _ms(percentile(f.engine_first[c], 0.99)),
                ]
            )
        throttled.append(
            [
                f"{n}. {p.phase.label}",
                f"{f.throttled_events:,}",
                *_stats(f.throttled_wait),
                _ms(percentile(f.throttled_total, 0.5)),
                _ms(percentile(f.throttled_total, 1.0)),
            ]
        )
        for s in SOURCES:
            notify, answer = f.notify_delay.get(s, []), f.webhook_answer.get(s, [])
            intake.append(
                [
                    f"{n}. {p.phase.label}",
                    s,
                    *_stats(f.intake[s])[1:],
                    _ms(percentile(notify, 0.5)),
                    _ms(percentile(notify, 1.0)),
                    _ms(percentile(answer, 0.5)),
                    _ms(percentile(answer, 0.99)),
                ]
            )
    poll = run.wb_poll_s or DEFAULT_WB_POLL_S
    return [
        "### First change of an item: event sent → the value arrives at the channel",
        "",
        f"Events from {', '.join(PUSH_SOURCES)} (Ozon and YM timed from the simulator's "
        "notification, the storefront from `POST /v1/reservations`), to every channel but their "
        "own; Ozon's throttled changes are left out here (next tables).",
        "",
        *_table(head, first, right_from=2),
        "",
        f"### Events from Wildberries (poll interval {poll:g} s included)",
        "",
        "Timed from the task's creation in the WB simulator; the engine sees it at its next poll.",
        "",
        *_table(head, wb, right_from=2),
        "",
        "### The engine's share: allowed instant → accepted (push log)",
        "",
        "From the engine's push log, per accepted item whose change came from the phase: the "
        "instant the channel's own limits allowed sending it (the change itself, or the end of "
        "the item window that held it) → the channel accepted it, next to first unpublished "
        "change → accepted. Server clock (Valkey TIME), both ends.",
        "",
        *_table([*head, "change→accepted p50 ms", "change→accepted p99 ms"], engine, right_from=2),
        "",
        "### Ozon's throttled changes",
        "",
        "A change applied while the item's 30 s window was closed. Allowed instant = the item's "
        "previous accepted value + 30 s; *wait* = the value's arrival − the allowed instant, "
        "once per value that carried throttled changes.",
        "",
        *_table(THROTTLED_HEADER, throttled),
        "",
        "### Intake: event sent → applied in the ledger (journal time, 1 ms resolution)",
        "",
        "Notification delay: the driver's request creating the order → the simulator's "
        "notification leaving (the simulator's own queue, not counted in the latencies above; "
        "the YM simulator sends one notification at a time, in order, so its queue grows when "
        "the engine's webhook answer takes longer than the interval between orders). Webhook "
        "answer: the notification leaving → the engine's answer (the event is then queued).",
        "",
        *_table(INTAKE_HEADER, intake, right_from=2),
        "",
        "### Delivered: events whose effect reached each other channel",
        "",
        *_table(["phase", "channel", "expected", "delivered"], delivery, right_from=2),
        "",
    ]


def cpu_table(run: Run) -> list[str]:
    names: list[str] = []
    for p in run.phases:
        names += [n for n in p.cpu_s if n not in names]
    rows = []
    for n, p in enumerate(run.phases, start=1):
        span = p.seconds + p.settle_s
        cells = [f"{100 * p.cpu_s.get(name, 0.0) / span:.0f}%" for name in names]
        total = 100 * sum(p.cpu_s.values()) / span
        rows.append([f"{n}. {p.phase.label}", *cells, f"{total:.0f}%"])
    return [
        "### CPU: share of one core over the phase and its settling (2 cores = 200 %)",
        "",
        *_table(["phase", *names, "total"], rows),
        "",
    ]


def render_markdown(run: Run, *, plot_name: str | None) -> str:
    m, v, c = run.machine, run.versions, run.catalog
    finished = run.finished.strftime("%H:%M") if run.finished else "?"
    top = c.share_of_top(10)
    load = " / ".join(f"{x:.2f}" for x in run.load_start)
    load_end = " / ".join(f"{x:.2f}" for x in run.load_end)
    out = [
        "## Propagation: order event → new stock value at every other marketplace",
        "",
        f"Command (from the repository root): `{run.command}`",
        "",
        f"- Date: {run.started:%Y-%m-%d %H:%M} – {finished} UTC"
        + (" (quick mode: short phases)" if run.quick else ""),
        f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram']} RAM, {m['kernel']}",
        f"- Load average (1/5/15 min, `uptime`) at start: {load}; at end: {load_end}",
        f"- Python {v.get('python')}, {v.get('server')}, redis-py {v.get('redis_py')}, "
        f"RQ {v.get('rq')}, uvicorn {v.get('uvicorn')}; code: {v.get('code')}",
        f"- Engine: `inventory-engine serve` with `[workers] count = {run.workers}` "
        "(RQ worker processes: events, push), Valkey with AOF "
        f"`appendfsync {run.appendfsync}`, WB poll interval "
        f"{run.wb_poll_s or DEFAULT_WB_POLL_S:g} s"
        + ("" if run.wb_poll_s else " (the engine's default)")
        + "; one `inventory-engine simulate` process per marketplace, the driver in another; "
        "all on this machine",
        f"- Catalog: {c.size:,} SKUs listed on Ozon, WB and YM, demand ∝ 1/rank^{c.skew:g} "
        f"(the 10 hottest SKUs get {top:.0%} of the events), {c.stock:,} units each at start; "
        "events take turns: Ozon posting, YM order, WB task, storefront reservation "
        "(1 unit, or 2 in 20 % of non-WB events)",
        f"- Before the first phase the catalog was published and Ozon's item windows let open "
        f"({run.initial_wait_s:.0f} s); after the last, the run waited {run.final_settle_s:.0f} s "
        "for the backlog and Ozon's throttled items (at most 40 s quick, 300 s full)",
        "",
        *disturbed(run),
        *goals(run),
        "### Phases",
        "",
        "Rates: *sent/s* by the driver, *to engine/s* as notifications, reservations and WB "
        "tasks reached the engine, *applied/s* in the ledger (first to last applied). *Settle*: "
        "after the last event, until every event was applied and WB and YM showed the "
        "ledger's values. *Valkey commands / event*: every command the server ran during the "
        "phase and its settling (RQ's bookkeeping, the ledger, pushes, polls) per event sent.",
        "",
        *phase_table(run),
        "",
        *latency_tables(run),
        *cpu_table(run),
        "### End state",
        "",
        f"- Channel values different from the ledger's available count at the end: "
        f"{run.final_behind}",
        f"- Items parked after a refusal: {run.parked}; ledger counters: {run.oversold or 'none'}",
        f"- Simulator counters: {run.counters}",
        f"- Driver errors: {len(run.driver_errors)}"
        + (f" (first: {run.driver_errors[0]})" if run.driver_errors else ""),
    ]
    missing = [m for p in run.phases for m in _figs(p).missing]
    out.append(
        f"- Events not applied or not delivered when the run stopped waiting: {len(missing)}"
        + (f" (first: {'; '.join(missing[:5])})" if missing else "")
        + f"; events still waiting in the RQ events queue then: {run.still_queued:,}"
    )
    if plot_name:
        out += ["", f"![latency distributions]({plot_name})"]
    return "\n".join(out)


def plot(run: Run, path: Path) -> None:
    """ECDFs of the latencies per channel and phase (matplotlib, the ``bench`` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: list[tuple[str, str]] = [
        *((f"first change → {c}", c) for c in MARKETPLACES),
        *((f"WB-sourced (incl. poll) → {c}", f"wb>{c}") for c in ("ozon", "ym")),
        ("Ozon throttled: wait beyond allowed instant", "throttled"),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5), constrained_layout=True)
    for ax, (title, key) in zip(axes.flat, panels, strict=True):
        for n, p in enumerate(run.phases, start=1):
            f = _figs(p)
            if key == "throttled":
                values = f.throttled_wait
            elif key.startswith("wb>"):
                values = f.from_wb[key[3:]]
            else:
                values = f.first_change[key]
            values = sorted(max(v, 0.1) for v in values)
            if not values:
                continue
            ys = [(i + 1) / len(values) for i in range(len(values))]
            ax.step(values, ys, where="post", label=f"{n}. {p.phase.label} (n={len(values):,})")
        if key != "throttled":
            ax.set_xscale("log")
            ax.axvline(GOAL_P99_MS, color="grey", linestyle=":", linewidth=1)
        else:
            ax.axvline(GOAL_THROTTLED_S * 1000, color="grey", linestyle=":", linewidth=1)
        ax.axhline(0.99, color="grey", linestyle="--", linewidth=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("milliseconds")
        ax.set_ylabel("share of events ≤ x")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(
        "inventory-engine propagation latency (ECDF; dashed: p99; dotted: goal)", fontsize=12
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)
