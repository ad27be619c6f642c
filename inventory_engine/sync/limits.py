"""Each marketplace's limits as the push path applies them (reference §0), in one table.

Where a marketplace counts requests per minute (Ozon, YM), its bucket is sized so that no 60-second
window can exceed the limit even if it counts a sliding window: capacity + rate × 60 s ≤ the
limit. WB's own limiter is a token bucket (burst 20, one per 200 ms): ours is the same, a little
slower. Asserted in ``tests/unit/test_timing.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from inventory_engine.timing import ITEM_WINDOW_MARGIN_S


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """How the push path paces one channel kind.

    Attributes:
        max_batch: items per stock request.
        bucket_capacity: burst of the request (or item) bucket.
        bucket_rate_per_s: sustained refill.
        cost_per_item: the bucket counts items (YM: SKUs per minute), not requests.
        item_window_s: an item may be sent once per this many seconds (Ozon: 30).
        ceiling: the largest value the marketplace accepts.
        concurrency: stock requests in flight at once, from every sender on every host.
    """

    max_batch: int
    bucket_capacity: float
    bucket_rate_per_s: float
    cost_per_item: bool = False
    item_window_s: float | None = None
    ceiling: int | None = None
    concurrency: int = 1


__all__ = ["ITEM_WINDOW_MARGIN_S", "LIMITS", "ChannelLimits"]

LIMITS: dict[str, ChannelLimits] = {
    # 80 stock requests/min per seller account; each (item, warehouse) once per 30 s;
    # stock must be < 1,000,000.
    "ozon": ChannelLimits(
        max_batch=100,
        bucket_capacity=10,
        bucket_rate_per_s=70 / 60,
        item_window_s=30,
        ceiling=999_999,
        # Two requests may be in flight (each on its own items): the answer time does not
        # space the requests out, the bucket does.
        concurrency=2,
    ),
    # 300 requests/min, burst 20, one every 200 ms: WB's own bucket, a little slower and with
    # a smaller burst, so a request that left a little late (several in flight at once) still
    # finds a token at WB (a full burst of 20 let one through too soon in a benchmark).
    "wildberries": ChannelLimits(
        max_batch=1_000, bucket_capacity=16, bucket_rate_per_s=4.8, ceiling=100_000, concurrency=4
    ),
    # 100,000 SKUs/min counted on the request's SKUs.
    "yandex_market": ChannelLimits(
        max_batch=2_000,
        bucket_capacity=20_000,
        bucket_rate_per_s=80_000 / 60,
        cost_per_item=True,
        ceiling=2_000_000_000,
        # "A maximum of four simultaneous requests" per campaign, every method counted (HTTP 420
        # beyond; YM's limits page, 2026; a 2025 copy said 2): three for stock pushes leave
        # one for the order poller and reads.
        concurrency=3,
    ),
    # The seller's own shop: no published limit; stay polite.
    "webhook": ChannelLimits(
        max_batch=1_000, bucket_capacity=20, bucket_rate_per_s=20, concurrency=2
    ),
}
