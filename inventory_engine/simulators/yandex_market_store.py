"""What one simulated Yandex Market store holds: rate-limit buckets, catalog, pushed stock and
orders, and YM's answers when a limit or an injected fault stops a request.

As on YM, an order lowers AVAILABLE and a cancel before packing restores it: AVAILABLE is the
pushed count minus the units of orders created since that push that still hold stock (a cancel
from READY_TO_SHIP does not give units back until the seller pushes again). Every limit hit is
HTTP 420 with ``X-RateLimit-Resource-*`` headers.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from starlette.responses import Response

from inventory_engine.simulators.base import (
    ClockIds,
    FaultInjector,
    Faults,
    SimulatorState,
    TokenBucket,
)
from inventory_engine.simulators.yandex_market_config import YandexMarketSimConfig
from inventory_engine.simulators.yandex_market_orders import OrderBook
from inventory_engine.simulators.yandex_market_requests import error_response

ERROR_CODES = {500: "INTERNAL_ERROR", 502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE"}
"""YM's error ``code`` for an (injected) server error status."""


class Market:
    """Everything one simulated store holds; the route functions only translate HTTP."""

    def __init__(
        self,
        config: YandexMarketSimConfig,
        clock: Callable[[], float],
        wall_clock: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.clock = clock
        self.now = wall_clock
        self.state = SimulatorState()
        self.faults = FaultInjector(Faults())
        self.book = OrderBook(
            self.state,
            settings=lambda: self.config,
            now=wall_clock,
            next_seq=lambda: next(self.seq),
            order_ids=ClockIds(lambda: wall_clock().timestamp()) if config.unique_ids else None,
        )
        self.reset()

    def reset(self) -> None:
        c = self.config
        self.stock_bucket = TokenBucket(
            c.skus_per_window, c.skus_per_window / c.window_s, clock=self.clock
        )
        self.read_bucket = TokenBucket(
            c.read_offers_per_window, c.read_offers_per_window / c.window_s, clock=self.clock
        )
        self.orders_bucket = TokenBucket(
            c.orders_requests_per_window,
            c.orders_requests_per_window / c.orders_window_s,
            clock=self.clock,
        )
        self.v3_bucket = TokenBucket(
            c.v3_requests_per_window, c.v3_requests_per_window / c.window_s, clock=self.clock
        )
        self.in_flight: Counter[str] = Counter()
        """Requests under way per entity the parallel limit counts on ("campaignId 1")."""
        self.catalog: set[str] | None = set(c.offers) if c.offers is not None else None
        self.pushes: dict[str, tuple[int, int, str]] = {}
        """offer -> (count, sequence number of the push, updatedAt)."""
        self.seq = itertools.count(1)
        """One sequence for pushes and orders: an order counts against the push before it."""
        self.book.reset()
        self.state.reset()

    # -- answers -----------------------------------------------------------------------------

    def limited(self, message: str, limit: int, wait_s: float, remaining: int = 0) -> Response:
        """HTTP 420 ``LIMIT_EXCEEDED``, with when the limit lets requests through again."""
        until = self.now() + timedelta(seconds=max(1, math.ceil(wait_s)))
        headers = {
            "X-RateLimit-Resource-Limit": str(limit),
            "X-RateLimit-Resource-Remaining": str(remaining),
            "X-RateLimit-Resource-Until": format_datetime(until.astimezone(UTC), usegmt=True),
        }
        return error_response(420, "LIMIT_EXCEEDED", message, headers)

    def failure(self, status: int, message: str) -> Response:
        return error_response(status, ERROR_CODES.get(status, "INTERNAL_ERROR"), message)

    # -- stock ---------------------------------------------------------------------------------

    def available(self, offer: str) -> tuple[int, int, int]:
        """(AVAILABLE, FREEZE, FIT) for a pushed offer."""
        count, pushed_seq, _ = self.pushes[offer]
        held, frozen = self.book.held_since(offer, pushed_seq)
        available = max(0, count - held)
        return available, frozen, available + frozen

    def offer_json(self, offer: str) -> dict[str, Any]:
        if offer not in self.pushes:
            return {"offerId": offer, "stocks": []}
        available, frozen, fit = self.available(offer)
        stocks = [
            {"type": "FIT", "count": fit},
            {"type": "FREEZE", "count": frozen},
            {"type": "AVAILABLE", "count": available},
        ]
        return {"offerId": offer, "stocks": stocks, "updatedAt": self.pushes[offer][2]}

    def known(self, offer: str) -> bool:
        return offer in self.pushes or (self.catalog is not None and offer in self.catalog)
