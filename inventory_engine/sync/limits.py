"""Each marketplace's limits as the push path applies them (reference §0), in one table.

Where a marketplace counts requests per minute (Ozon, YM), its bucket is sized so that no 60-second
window can exceed the limit even if it counts a sliding window: capacity + rate × 60 s ≤ the
limit. WB's own limiter is a token bucket (burst 20, one per 200 ms): ours is the same, a little
slower. Asserted in ``tests/unit/test_timing.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from inventory_engine.config import ChannelSettings
from inventory_engine.limit_settings import SHARED_BUDGETS
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


__all__ = [
    "ITEM_WINDOW_MARGIN_S",
    "LIMITS",
    "WB_BASIC_LIMITS",
    "YM_V3_LIMITS",
    "ChannelLimits",
    "default_limits",
    "effective_limits",
]

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
    # finds a token at WB (a full burst of 20 let one through too soon in a benchmark). The
    # read-back's own budget comes out of that margin (SHARED_BUDGETS).
    "wildberries": ChannelLimits(
        max_batch=1_000,
        bucket_capacity=16,
        bucket_rate_per_s=SHARED_BUDGETS["wildberries:personal"].push_per_minute / 60,
        ceiling=100_000,
        concurrency=4,
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

WB_BASIC_LIMITS = ChannelLimits(
    max_batch=1_000,
    bucket_capacity=8,
    bucket_rate_per_s=SHARED_BUDGETS["wildberries:basic"].push_per_minute / 60,
    ceiling=100_000,
    concurrency=2,
)
"""WB with a basic token (since 2026-03-30: 150 requests/min, burst 10): the personal token's
defaults halved, with the same margin below WB's own bucket."""


YM_V3_LIMITS = ChannelLimits(
    max_batch=2_000,
    bucket_capacity=5,
    bucket_rate_per_s=40 / 60,
    ceiling=2_000_000_000,
    concurrency=3,
)
"""YM's v3 stock method (``stock_api = "v3"``): 50 requests per minute, counted per request,
not per SKU; 5 + 40 per minute stays under 50 in any 60-second window."""


def default_limits(settings: ChannelSettings) -> ChannelLimits:
    """The channel kind's limits before the ``limits`` table (WB: by its token type; YM: by
    its stock API version)."""
    if settings.kind == "wildberries" and settings.token_type == "basic":  # noqa: S105 - a kind
        return WB_BASIC_LIMITS
    if settings.kind == "yandex_market" and settings.stock_api == "v3":
        return YM_V3_LIMITS
    return LIMITS[settings.kind]


def effective_limits(settings: ChannelSettings) -> ChannelLimits:
    """The limits the push path applies to this channel: its defaults with the fields its
    ``limits`` table sets (validated against the documented limits when read)."""
    own = settings.limits
    limits = default_limits(settings)
    changes: dict[str, object] = {}
    if own.rate_per_minute is not None:
        changes["bucket_rate_per_s"] = own.rate_per_minute / 60
    if own.burst is not None:
        changes["bucket_capacity"] = own.burst
    if own.items_per_request is not None:
        changes["max_batch"] = own.items_per_request
    if own.item_window_s is not None:
        changes["item_window_s"] = own.item_window_s or None
    if own.concurrency is not None:
        changes["concurrency"] = own.concurrency
    return replace(limits, **changes) if changes else limits  # type: ignore[arg-type]
