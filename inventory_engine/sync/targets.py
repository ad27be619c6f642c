"""TargetValues: what one channel should show for each SKU now, and under which id.

The push path computes a value when it sends (latest wins); ``reconcile``, ``explain`` and the
stock API compute the same value without side effects. The value is the channel's share of the
available units at its location (percent, buffer, max, the marketplace's ceiling), less the
optional dynamic buffer: the sales expected while the channel cannot be told (rate × window).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace

import redis
from redis.typing import EncodableT, FieldT

from inventory_engine.config import ChannelSettings
from inventory_engine.domain.allocation import ChannelShare, published_quantity
from inventory_engine.domain.sales_rate import SalesRate, dynamic_buffer
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.reads import LedgerReader
from inventory_engine.ledger.redis_io import redis_errors
from inventory_engine.ledger.results import text
from inventory_engine.sync.limits import ChannelLimits

DEFAULT_DYNAMIC_WINDOW_S = 60.0
"""The dynamic buffer's window on a channel with no item window and none configured."""


class TargetValues:
    """The values and marketplace ids of one configured channel.

    Args:
        client: the ledger's Redis.
        settings: the channel's settings (location, share, dynamic buffer).
        limits: the channel kind's limits (ceiling, item window).
        catalog_field: the catalog field holding the channel's item id ("sku": the SKU itself).
        keys: the account's key names.
        clock: ms now, for the sales rates of the dynamic buffer.
    """

    def __init__(
        self,
        client: redis.Redis,
        settings: ChannelSettings,
        limits: ChannelLimits,
        catalog_field: str,
        *,
        keys: AccountKeys,
        clock: Callable[[], int],
    ) -> None:
        self.client = client
        self.settings = settings
        self.limits = limits
        self.catalog_field = catalog_field
        self.keys = keys
        self.clock = clock
        self.share = ChannelShare(
            percent=settings.percent,
            buffer=settings.buffer,
            max=settings.max,
            ceiling=limits.ceiling,
        )
        self.reader = LedgerReader(client, account=keys.account)

    def values(self, skus: Sequence[str], *, store_rates: bool = False) -> dict[str, int]:
        """What the channel should show for each SKU now. The push path stores the sales
        rates it observes (``store_rates``); a reader computes the same values without."""
        return self.values_and_uncounted(skus, store_rates=store_rates)[0]

    def values_and_uncounted(
        self, skus: Sequence[str], *, store_rates: bool = False
    ) -> tuple[dict[str, int], set[str]]:
        """:meth:`values`, and the SKUs never counted at the channel's location: the push
        path leaves those unpublished (a 0 would take a live listing off sale) until a count
        arrives."""
        skus = list(dict.fromkeys(skus))
        if not skus:
            return {}, set()
        available, uncounted = self.reader.available_and_uncounted(skus, self.settings.location)
        held = (
            self._dynamic_buffers(available, store=store_rates)
            if self.settings.dynamic_buffer
            else {}
        )
        values: dict[str, int] = {}
        for sku in skus:
            share = self.share
            if held.get(sku):
                share = replace(share, buffer=share.buffer + held[sku])
            values[sku] = published_quantity(available[sku], share)
        return values, uncounted

    def _dynamic_buffers(self, available: dict[str, int], *, store: bool) -> dict[str, int]:
        """Per SKU, the sales expected while this channel cannot be told (rate × window);
        with ``store``, the rates are updated from the available counts seen now."""
        window_s = (
            self.settings.dynamic_window_s or self.limits.item_window_s or DEFAULT_DYNAMIC_WINDOW_S
        )
        now = self.clock()
        skus = list(available)
        key = self.keys.sales_rate(self.settings.name)
        with redis_errors():
            raw = self.client.hmget(key, skus)
        held: dict[str, int] = {}
        rates: dict[FieldT, EncodableT] = {}
        for sku, stored in zip(skus, raw, strict=True):
            previous = (
                SalesRate.decode(text(stored)) if stored else SalesRate(0.0, now, available[sku])
            )
            rate = previous.observe(available[sku], now)
            rates[sku] = rate.encode()
            held[sku] = dynamic_buffer(rate, window_s, now)
        if store:
            with redis_errors():
                self.client.hset(key, mapping=rates)
        return held

    def item_id(self, sku: str, entry: bytes | str | None) -> str | None:
        """The channel's id of ``sku`` in its raw catalog record (None: not listed here)."""
        if self.catalog_field == "sku":
            return sku
        if entry is None:
            return None
        value = json.loads(entry).get(self.catalog_field)
        return None if value in (None, "") else str(value)
