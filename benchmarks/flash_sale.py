"""Flash-sale benchmark: oversold units and sales lost to holdbacks under the real limits.

Run from the repository root::

    python -m benchmarks.flash_sale                 # 20 seeds, writes benchmarks/RESULTS.md
    python -m benchmarks.flash_sale --quick         # 5 seeds, prints only unless --write
    python -m benchmarks.flash_sale --seed 7        # seeds 7..26

Every strategy runs on the same demand for a seed (the model is in
:mod:`benchmarks.flash_sale_model`). The figures are printed and, unless told otherwise, written
between the ``<!-- flash_sale:start -->`` and ``<!-- flash_sale:end -->`` markers of
``benchmarks/RESULTS.md`` with the ledger benchmark's section writer.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks.flash_sale_model import (
    FAST_MS,
    IDLE_MS,
    FlashSale,
    Outcome,
    Scenario,
    Strategy,
    engine_window_s,
    make_orders,
)
from benchmarks.results import RESULTS_PATH, code_version, write_section
from inventory_engine.sync.limits import ITEM_WINDOW_MARGIN_S, LIMITS

GOAL_TEXT = (
    "0 oversold units with the dynamic buffer, losing < 2 % of the sales the stock could make"
)

STRATEGIES = (
    Strategy("periodic sync every 5 min", period_s=300),
    Strategy("periodic sync every 15 min", period_s=900),
    Strategy("engine, no buffer"),
    Strategy("engine, fixed buffer 1", buffer=1),
    Strategy("engine, fixed buffer 2", buffer=2),
    Strategy("engine, dynamic buffer (defaults)", dynamic=True),
    Strategy(
        "engine, dynamic buffer, YM dynamic_window_s = 180",
        dynamic=True,
        windows_s=(("ym", 180.0),),
        shipped=False,
    ),
    Strategy(
        "engine, dynamic buffer, TAU_S = 10 s, windows 60/60/240 s",
        dynamic=True,
        tau_s=10.0,
        windows_s=(("ozon", 60.0), ("wb", 60.0), ("ym", 240.0)),
        shipped=False,
    ),
    Strategy("allotments, changed only when safe", allot=True, shipped=False),
)


# -- the runs and the report -----------------------------------------------------------------


@dataclass
class Row:
    strategy: Strategy
    outcomes: list[Outcome]

    def oversold(self) -> list[int]:
        return [o.oversold for o in self.outcomes]

    def lost_pct(self) -> list[float]:
        return [100 * o.lost / o.could for o in self.outcomes]

    def in_stock_pct(self) -> list[float]:
        return [100 * (o.sold - o.oversold) / o.could for o in self.outcomes]

    def meets_goal(self) -> bool:
        return max(self.oversold()) == 0 and max(self.lost_pct()) < 2.0


def run_all(sc: Scenario, strategies: Sequence[Strategy], seeds: Sequence[int]) -> list[Row]:
    rows = [Row(s, []) for s in strategies]
    for seed in seeds:
        orders = make_orders(sc, seed)
        for row in rows:
            row.outcomes.append(FlashSale(sc, row.strategy, orders, seed).run())
    return rows


BASE = Scenario()
SENSITIVITY: tuple[tuple[str, Scenario], ...] = (
    ("as above", BASE),
    (
        "YM shows a push after 15 min",
        replace(BASE, apply_ms=(("ozon", 5_000), ("wb", 5_000), ("ym", 900_000))),
    ),
    (
        "every marketplace shows a push after 1 s",
        replace(BASE, apply_ms=(("ozon", 1_000), ("wb", 1_000), ("ym", 1_000))),
    ),
    ("cold SKUs: 25 × 4 units", replace(BASE, cold_skus=25, cold_units=4)),
    ("a milder sale: 400 orders", replace(BASE, orders=400)),
)
"""One assumption changed at a time, for the strategies named in SENSITIVITY_ROWS."""
SENSITIVITY_ROWS = ("engine, no buffer", "engine, dynamic buffer (defaults)", "allotments")


def assumptions(sc: Scenario) -> list[tuple[str, str]]:
    ozon = LIMITS["ozon"]
    apply_s = ", ".join(f"{c} {ms / 1000:g} s" for c, ms in sc.apply_ms)
    return [
        (
            "catalog",
            f"{sc.hot_skus} hot SKUs × {sc.hot_units} units + {sc.cold_skus} cold SKUs × "
            f"{sc.cold_units} units = {sum(sc.stock().values())} units, one location",
        ),
        (
            "demand",
            f"{sc.orders:,} one-unit orders at uniform random times over {sc.sale_ms // 1000} s"
            f" (Poisson given the count); {sc.hot_demand_share * 100:.0f} % on a random hot"
            " SKU, the rest on a random cold one; channel by share: "
            + ", ".join(f"{c} {p} %" for c, p in sc.channel_share),
        ),
        ("buyer", "buys 1 if the marketplace shows ≥ 1 (which then shows 1 less), else leaves"),
        (
            "sale → engine",
            f"Ozon, YM: notification {sc.notify_ms[0]}–{sc.notify_ms[1]} ms after the"
            f" sale (assumed); WB: the next poll (every {sc.wb_poll_ms / 1000:g} s, POLL_LIMITS"
            f" default) + a {sc.request_ms[0]}–{sc.request_ms[1]} ms request",
        ),
        (
            "engine → push",
            f"a publish round {sc.wake_ms} ms after a change (assumed); HTTP "
            f"{sc.request_ms[0]}–{sc.request_ms[1]} ms, the marketplace takes it half way; one "
            "request in flight per channel; LIMITS batch sizes and token buckets",
        ),
        (
            "Ozon window",
            f"Ozon refuses an item it took < {ozon.item_window_s:g} s ago; the engine sends an"
            f" item again {ozon.item_window_s:g} + {ITEM_WINDOW_MARGIN_S:g} s after a reply",
        ),
        (
            "push → buyers see it",
            f"{apply_s}. Ozon/WB assumed (not documented); YM: reference 'several minutes',"
            " seller help 'up to 15 min'. Shown: the number pushed less the marketplace's own"
            " sales since the push arrived (earlier sales the engine had not heard of show again)",
        ),
        (
            "before the sale",
            "each channel shows what the strategy gives it; Ozon's window open; "
            "sales rates 0 (a quiet SKU); periodic sync: ticks at 0, period, …",
        ),
        (
            "dynamic buffer",
            "the publisher's: rate (SalesRate, TAU_S 300 s) × window "
            "(dynamic_window_s, else the item window, else 60 s): "
            + ", ".join(f"{c} {engine_window_s(c):g} s" for c in ("ozon", "wb", "ym")),
        ),
        (
            "allotments (variant)",
            "each SKU split 45/35/20 % before the sale; a number is only set to 0 (take back)"
            " or from 0 (refill), so no sale the engine has not heard of is shown again; Σ what"
            " channels may still sell ≤ the ledger, a lowered number counting until push + show"
            f" + hear times have passed; YM (slower than {FAST_MS // 1000} s) keeps its split;"
            f" units go back from a channel idle {IDLE_MS // 1000} s to a sold-out one that sold"
            " the SKU",
        ),
    ]


def _mean_max(values: Sequence[float], spec: str, unit: str = "") -> list[str]:
    return [format(statistics.fmean(values), spec) + unit, format(max(values), spec) + unit]


def render_markdown(
    sc: Scenario,
    rows: Sequence[Row],
    sensitivity: Sequence[tuple[str, Row]],
    seeds: Sequence[int],
    command: str,
) -> str:
    dynamic = next(r for r in rows if r.strategy.dynamic and r.strategy.shipped)
    allot = next(r for r in rows if r.strategy.allot)
    lines = [
        "## Flash sale: oversold units and sales lost to holdbacks",
        "",
        f"Command (from the repository root): `{command}`",
        "",
        f"- Seeds {seeds[0]}–{seeds[-1]}: {len(seeds)} runs per strategy; every strategy of a seed"
        " gets the same demand; a deterministic discrete-event simulation on a virtual clock"
        " (`benchmarks/flash_sale_model.py`) that calls the engine's `published_quantity`,"
        " `ChannelShare`, `SalesRate`, `dynamic_buffer`, `LIMITS` and `POLL_LIMITS`",
        f"- Code: {code_version().split(';')[0]}",
        "- **Oversold**: units sold while the SKU's physical stock was already ≤ 0",
        "- **Could sell**: Σ over SKUs of min(demand, stock), what an omniscient seller sells",
        "- **Lost**: Σ over SKUs of min(buyers turned away while physical stock existed, units left"
        " unsold at the end), as % of could sell: sales lost to buffers, holdbacks and splits",
        "- **Sold in stock**: units sold that existed, as % of could sell",
        "",
        "### Assumptions",
        "",
        "| what | value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in assumptions(sc)),
        "",
        "### Results",
        "",
        f"Goal: **{GOAL_TEXT}** (every seed). Shipped dynamic buffer: "
        f"**{'MET' if dynamic.meets_goal() else 'NOT MET'}**: oversold mean "
        f"{statistics.fmean(dynamic.oversold()):.1f}, max {max(dynamic.oversold())} units; lost "
        f"mean {statistics.fmean(dynamic.lost_pct()):.1f} %. Best variant (not shipped), "
        f"allotments: {'met' if allot.meets_goal() else 'not met'}: oversold max "
        f"{max(allot.oversold())}, lost mean {statistics.fmean(allot.lost_pct()):.1f} %, max "
        f"{max(allot.lost_pct()):.1f} %.",
        "",
        "| strategy | shipped | oversold mean | oversold max | lost mean | lost max "
        "| sold in stock | stock pushes | goal |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        cells = [
            row.strategy.name,
            "yes" if row.strategy.shipped else "**no: variant**",
            *_mean_max(row.oversold(), ".1f"),
            *_mean_max(row.lost_pct(), ".1f", " %"),
            format(statistics.fmean(row.in_stock_pct()), ".1f") + " %",
            format(statistics.fmean(sum(o.requests.values()) for o in row.outcomes), ".0f"),
            "met" if row.meets_goal() else "not met",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Sensitivity (same seeds; one assumption changed at a time):",
        "",
        "| scenario | strategy | oversold mean | oversold max | lost mean | lost max |",
        "|---|---|---:|---:|---:|---:|",
        *(
            f"| {label} | {row.strategy.name} | "
            + " | ".join(
                [*_mean_max(row.oversold(), ".1f"), *_mean_max(row.lost_pct(), ".1f", " %")]
            )
            + " |"
            for label, row in sensitivity
        ),
        "",
        "### Reading",
        "",
        *NOTES,
    ]
    return "\n".join(lines)


NOTES = (
    "- Periodic sync: no tick falls inside a 60 s sale after the one at 0 s, so 5 and 15 min are"
    " the same run: every channel sells what it showed at the start, each up to the whole stock.",
    "- The dynamic buffer is the no-buffer figure: a flash sale starts from a quiet SKU, so the"
    " rate is 0 when it starts, and with TAU_S = 300 s the rate after t seconds of a steady rate r"
    " reads r × (1 − e^(−t/300)), about 3 % of r after 10 s, when a hot SKU is already sold out."
    " YM shows nothing pushed during the sale (minutes), so only its pre-sale number counts; a"
    " longer YM window cannot help. The row with TAU_S patched to 10 s shows that tuning the rate"
    " does not reach 0 either: it trades some oversold units for sales lost to holdbacks.",
    "- A stock push sets a number: sales the marketplace made before the push arrived that the"
    " engine had not heard of yet (WB: up to a poll interval) are offered again. This is in the"
    " engine's push path too and no rate × window buffer removes it.",
    "- The allotment variant reaches 0 oversold by construction (within the delays it assumes);"
    " what it loses is units left on a channel whose buyers did not come (2-unit cold SKUs split"
    " 1 + 1; moving a unit takes a push, the time to show it and the time to hear of sales) and"
    " YM's demand for SKUs it was given none of; it loses more when demand is close to stock. It"
    " meets the oversell half of the goal, not the lost-sales half: no design tried here does both"
    " with a YM that shows nothing new for minutes. Fixed buffers lose whole small SKUs.",
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.flash_sale", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5 seeds instead of 20")
    parser.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    writes = parser.add_mutually_exclusive_group()
    writes.add_argument("--write", action="store_true", help="write RESULTS.md in quick mode too")
    writes.add_argument("--no-write", action="store_true", help="only print, never write")
    parser.add_argument("--results", type=Path, default=RESULTS_PATH, help="RESULTS.md to update")
    args = parser.parse_args(argv)
    seeds = list(range(args.seed, args.seed + (5 if args.quick else 20)))
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python", "-m", "benchmarks.flash_sale", *given])
    rows = run_all(BASE, STRATEGIES, seeds)
    picked = [s for s in STRATEGIES if s.name.startswith(SENSITIVITY_ROWS)]
    sensitivity = [
        (label, row)
        for label, sc in SENSITIVITY
        for row in (
            [r for r in rows if r.strategy in picked] if sc == BASE else run_all(sc, picked, seeds)
        )
    ]
    section = render_markdown(BASE, rows, sensitivity, seeds, command)
    print(section)
    if not args.no_write and (args.write or not args.quick):
        write_section("flash_sale", section, args.results)
        print(f"\nwrote the flash_sale section of {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
