"""Reading stock back from a channel within its limits.

Items are read in pages of the channel's read size; each page is paid for from a token bucket
kept in Redis by the push path's own script (``sync/lua/take_tokens.lua``), so two operators
reconciling at once, or a reconcile beside the workers, still stay inside the marketplace's
limit. Wildberries counts stock reads and stock pushes against one limit (reference §0): there
an operator's read takes from the push bucket itself, and the continuous read-back from a small
bucket of its own inside the margin the pushes leave (:data:`SHARED_BUDGETS`). A rate-limited
or unavailable answer is waited out a few times before the read gives up.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import redis

from inventory_engine.channels.base import (
    ChannelClient,
    ChannelRateLimitedError,
    ChannelRejectedError,
    ChannelStock,
    ChannelUnavailableError,
    chunks,
)
from inventory_engine.config import ChannelSettings
from inventory_engine.constants import DEFAULT_ACCOUNT
from inventory_engine.errors import ConfigError
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.redis_io import redis_errors, wall_clock_ms
from inventory_engine.ledger.scripts import lua_source
from inventory_engine.limit_settings import SHARED_BUDGETS, documented_key, limit_variant
from inventory_engine.sync.limits import LIMITS, effective_limits

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """How one channel kind is read back.

    Attributes:
        page_size: item ids per ``read_stock`` call.
        requests_per_page: marketplace requests one page costs (Ozon: two).
        capacity: burst of the read bucket.
        rate_per_s: its sustained refill.
        cost_per_item: the bucket counts items (YM: offers per minute), not requests.
        shared_with_push: take from the push bucket (the marketplace counts both together).
        own_rate_per_s: shared channels: the read-back's own refill, beside the push bucket,
            out of the margin the push defaults leave (one page at most at once).
    """

    page_size: int
    requests_per_page: int
    capacity: float
    rate_per_s: float
    cost_per_item: bool = False
    shared_with_push: bool = False
    own_rate_per_s: float = 0.0


READ_LIMITS: dict[str, ReadLimits] = {
    # 50 requests/s per Client-Id for every method, pushes and polls included: reads take a
    # fifth. A page of 100 offers is v4 info (offer -> sku) + stocks-by-warehouse.
    "ozon": ReadLimits(page_size=100, requests_per_page=2, capacity=10, rate_per_s=10),
    # Stock reads and pushes share 300 requests/min, burst 20: the push bucket, as it is.
    "wildberries": ReadLimits(
        page_size=1_000,
        requests_per_page=1,
        capacity=LIMITS["wildberries"].bucket_capacity,
        rate_per_s=LIMITS["wildberries"].bucket_rate_per_s,
        shared_with_push=True,
        own_rate_per_s=SHARED_BUDGETS["wildberries:personal"].read_per_minute / 60,
    ),
    # 100,000 offers/min read, 500 offer ids per request; kept at 80 %.
    "yandex_market": ReadLimits(
        page_size=500,
        requests_per_page=1,
        capacity=20_000,
        rate_per_s=80_000 / 60,
        cost_per_item=True,
    ),
}
"""Read-back pacing per channel kind (reference §0)."""

MAX_ATTEMPTS = 4
"""Tries of one page when the channel says "slow down" or is unavailable."""
MAX_WAIT_S = 60.0
"""Longest single wait for a rate-limited channel; a longer ask ends the read with its error."""


def read_limits(kind: str, settings: ChannelSettings | None = None) -> ReadLimits:
    """The kind's read-back pacing; with the channel's ``settings``, its ``limits`` table
    applied (``read_per_minute``; WB: the effective push bucket, which an operator's reads
    share, and the read-back's own budget).

    Raises:
        ConfigError: a kind that cannot be read back.
    """
    if kind not in READ_LIMITS:
        raise ConfigError(f"channels of kind {kind!r} cannot be read back")
    limits = READ_LIMITS[kind]
    if settings is None:
        return limits
    if limits.shared_with_push:
        push = effective_limits(settings)
        own = settings.limits.read_per_minute
        if own is None:
            own = SHARED_BUDGETS[documented_key(kind, limit_variant(settings))].read_per_minute
        return replace(
            limits,
            capacity=push.bucket_capacity,
            rate_per_s=push.bucket_rate_per_s,
            own_rate_per_s=own / 60,
        )
    if settings.limits.read_per_minute is not None:
        return replace(limits, rate_per_s=settings.limits.read_per_minute / 60)
    return limits


class ReadPacer:
    """Pays for reads from a Redis token bucket per channel and retries passing failures."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        account: str = DEFAULT_ACCOUNT,
        clock: Callable[[], int] = wall_clock_ms,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.keys = AccountKeys(account)
        self.clock = clock
        self.sleep = sleep
        self._take = client.register_script(lua_source("inventory_engine.sync", "take_tokens"))
        self.requests = 0
        """Requests paid for so far (for reports and tests)."""

    def bucket_key(self, channel: str, limits: ReadLimits) -> str:
        # Channel names cannot contain ":" (config pattern), so "<name>:read" is no channel's.
        return self.keys.bucket(channel if limits.shared_with_push else f"{channel}:read")

    def take(self, channel: str, limits: ReadLimits, items: int) -> None:
        """Wait until the bucket holds the page's cost, then take it."""
        cost = max(1, items) if limits.cost_per_item else limits.requests_per_page
        cost = min(cost, int(limits.capacity))
        key = self.bucket_key(channel, limits)
        while True:
            with redis_errors():
                wait_ms = int(
                    self._take(
                        keys=[key, self.keys.clock_offset],
                        args=[limits.capacity, limits.rate_per_s / 1000, cost],
                    )
                )
            if wait_ms <= 0:
                self.requests += limits.requests_per_page
                return
            self.sleep(wait_ms / 1000)

    def take_spare(self, channel: str, limits: ReadLimits, items: int, *, keep: float) -> int:
        """Take the page's cost only if ``keep`` tokens are left after it (the continuous
        read-back, which must never take what a push could use). Returns 0 when taken, else
        the ms until the bucket would allow it; nothing waits here."""
        cost = max(1, items) if limits.cost_per_item else limits.requests_per_page
        cost = min(cost, int(limits.capacity))
        with redis_errors():
            wait_ms = int(
                self._take(
                    keys=[self.bucket_key(channel, limits), self.keys.clock_offset],
                    args=[limits.capacity, limits.rate_per_s / 1000, cost, "spare", keep],
                )
            )
        if wait_ms <= 0:
            self.requests += limits.requests_per_page
        return wait_ms

    def take_own(self, channel: str, limits: ReadLimits) -> int:
        """Take one page from the read-back's own budget (channels whose reads share the push
        limit: a page is one request). Returns 0 when taken, else the ms until it would be."""
        with redis_errors():
            wait_ms = int(
                self._take(
                    keys=[self.keys.bucket(f"{channel}:read"), self.keys.clock_offset],
                    args=[limits.requests_per_page, limits.own_rate_per_s / 1000, 1, "spare", 0],
                )
            )
        if wait_ms <= 0:
            self.requests += limits.requests_per_page
        return wait_ms

    def charge(self, channel: str, limits: ReadLimits, cost: int) -> None:
        """Take ``cost`` more, into debt if need be: the marketplace billed a read more than
        was taken for it (WB bills a refused one as 10 requests)."""
        with redis_errors():
            self._take(
                keys=[self.bucket_key(channel, limits), self.keys.clock_offset],
                args=[limits.capacity, limits.rate_per_s / 1000, cost, "charge"],
            )

    def call(self, channel: str, limits: ReadLimits, items: int, request: Callable[[], _T]) -> _T:
        """``request()`` once paid for; "slow down" and outages are waited out a few times.

        Raises:
            ChannelError: the last failure, when every attempt failed (or a refusal at once).
        """

        def paid() -> _T:
            self.take(channel, limits, items)
            try:
                return request()
            except ChannelRejectedError as exc:
                if exc.billed_extra:  # WB bills a refused read as 10 requests
                    self.charge(channel, limits, exc.billed_extra)
                raise

        return with_retries(paid, sleep=self.sleep)

    def read_stock(
        self,
        channel: str,
        kind: str,
        client: ChannelClient,
        item_ids: Sequence[str],
        settings: ChannelSettings | None = None,
    ) -> Iterator[tuple[list[str], dict[str, ChannelStock]]]:
        """Each page of ids with what the channel shows for them (missing ids left out);
        paced by the channel's own limits when its ``settings`` are given."""
        limits = read_limits(kind, settings)
        for page in chunks(list(item_ids), limits.page_size):
            yield (
                page,
                self.call(channel, limits, len(page), functools.partial(client.read_stock, page)),
            )


def with_retries(request: Callable[[], _T], *, sleep: Callable[[float], None] = time.sleep) -> _T:
    """``request()``, waiting out a rate limit (as long as the channel asks, up to
    ``MAX_WAIT_S``) or an outage (1, 2, 4 s) up to ``MAX_ATTEMPTS`` tries in all.

    Raises:
        ChannelError: the last failure, or a refusal at once.
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return request()
        except ChannelRateLimitedError as exc:
            if attempt == MAX_ATTEMPTS or exc.retry_after_s > MAX_WAIT_S:
                raise
            sleep(max(exc.retry_after_s, 0.1))
        except ChannelUnavailableError:
            if attempt == MAX_ATTEMPTS:
                raise
            sleep(float(2 ** (attempt - 1)))
    raise AssertionError("unreachable")  # pragma: no cover
