"""What the ledger says a channel should show, and where each SKU stands on its way there.

The value is computed as the channel's publisher computes it when sending — available units at
the channel's location, its share (percent, buffer, max, the marketplace's ceiling) and, when
opted in, the dynamic buffer — but without side effects: the sales rates the publisher updates
are only read here. Beside it, per SKU: the last value the channel accepted, an unpublished
change waiting to go (pending, "in flight"), the channel's item window and a parked refusal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from inventory_engine.ledger.redis_io import redis_errors, wall_clock_ms
from inventory_engine.operate.common import text
from inventory_engine.service import Engine

SCAN_COUNT = 1_000
"""Catalog index entries read per HSCAN round trip."""


@dataclass(frozen=True, slots=True)
class Parked:
    """A channel's refusal of one item, kept until someone fixes the cause and retries."""

    code: str
    message: str
    quantity: int | None
    item_id: str
    ms: int

    @classmethod
    def decode(cls, raw: Any) -> Parked:
        data = json.loads(text(raw))
        quantity = data.get("quantity")
        return cls(
            code=str(data.get("code", "")),
            message=str(data.get("message", "")),
            quantity=int(quantity) if quantity is not None else None,
            item_id=str(data.get("item_id", "")),
            ms=int(data.get("ms", 0)),
        )


@dataclass(frozen=True, slots=True)
class SkuMarks:
    """Where one SKU stands for one channel."""

    expected: int
    """What the channel should show now."""
    accepted: int | None
    """The last value the channel accepted from the engine (None: never, or cleared)."""
    pending_since_ms: int | None
    """An unpublished change since then: in flight, not a difference."""
    not_before_ms: int | None
    """The channel's item window (Ozon: 30 s) holds the next push until then."""
    parked: Parked | None


class ChannelTargets:
    """Expected values and marks of one configured channel."""

    def __init__(
        self, engine: Engine, channel: str, *, clock: Callable[[], int] = wall_clock_ms
    ) -> None:
        publisher = engine.publisher(channel)
        self.publisher = publisher
        self.name = channel
        self.client = engine.client
        self.keys = engine.ledger.keys
        self.catalog = engine.catalog
        self.settings = publisher.settings
        self.limits = publisher.limits
        self.share = publisher.share
        self.reader = publisher.targets.reader
        self.catalog_field = publisher.channel.catalog_field
        self.clock = clock

    def listed(self) -> list[tuple[str, str]]:
        """``(sku, item_id)`` of every SKU the catalog lists on this channel, by SKU."""
        if self.catalog_field == "sku":
            return []  # a storefront takes every SKU and cannot be read back
        pairs: list[tuple[str, str]] = []
        with redis_errors():
            index = self.keys.catalog_index(self.catalog_field)
            for item_id, sku in self.client.hscan_iter(index, count=SCAN_COUNT):
                pairs.append((text(sku), text(item_id)))
        return sorted(pairs)

    def item_id(self, sku: str) -> str | None:
        """The channel's id of ``sku`` (None: not listed there)."""
        if self.catalog_field == "sku":
            return sku
        entry = self.catalog.get(sku)
        value = getattr(entry, self.catalog_field, None) if entry is not None else None
        return None if value in (None, "") else str(value)

    def expected(self, skus: Sequence[str]) -> dict[str, int]:
        """What the channel should show for each SKU now (the publisher's own computation,
        without storing sales rates)."""
        return self.publisher.target_values(skus)

    def marks(self, skus: Sequence[str]) -> dict[str, SkuMarks]:
        """Expected value, accepted value, pending change, item window and parked refusal."""
        skus = list(dict.fromkeys(skus))
        if not skus:
            return {}
        with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.hmget(self.keys.accepted(self.name), skus)
            pipe.zmscore(self.keys.dirty(self.name), skus)
            pipe.hmget(self.keys.not_before(self.name), skus)
            pipe.hmget(self.keys.parked(self.name), skus)
            pipe.hmget(self.keys.dirty_since(self.name), skus)
            pipe.hmget(self.keys.claims(self.name), skus)
            accepted, due, not_before, parked, held, claims = pipe.execute()
        # A pending change: marked (its first change is the due time, or kept beside a mark
        # the item window holds), or claimed and in flight.
        dirty = [
            _first_change(score, since, claim)
            for score, since, claim in zip(due, held, claims, strict=True)
        ]
        # Read the counters after the marks: a change landing in between shows as pending.
        expected = self.expected(skus)
        return {
            sku: SkuMarks(
                expected=expected[sku],
                accepted=int(acc) if acc is not None else None,
                pending_since_ms=since,
                not_before_ms=int(nb) if nb is not None and int(nb) > self.clock() else None,
                parked=Parked.decode(park) if park is not None else None,
            )
            for sku, acc, since, nb, park in zip(
                skus, accepted, dirty, not_before, parked, strict=True
            )
        }

    def paused_until_ms(self) -> int | None:
        """Until when failed requests paused pushes to this channel (None: not paused)."""
        with redis_errors():
            raw = self.client.get(self.keys.paused(self.name))
        until = int(raw) if raw is not None else None
        return until if until is not None and until > self.clock() else None


def _first_change(due: float | None, held: bytes | None, claim: bytes | None) -> int | None:
    """The oldest unpublished change of a SKU from its push marks (None: nothing pending)."""
    if claim is not None:  # "token first_ms allowed_ms prev_nb tainted"
        return int(claim.split()[1])
    if held is not None:  # "first_ms allowed_ms"
        return int(held.split()[0])
    return int(due) if due is not None else None
