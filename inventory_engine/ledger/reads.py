"""Read-only views of the ledger: stock per SKU and location, orders, the journal, oversells.

Nothing here writes; reads of one SKU go out in one pipelined round trip.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import redis

from inventory_engine.constants import DEFAULT_ACCOUNT, DEFAULT_LOCATION
from inventory_engine.domain.bundles import Recipe, bundle_available, parse_recipe
from inventory_engine.domain.models import OrderLine, OrderState, StockLevel
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.redis_io import redis_errors
from inventory_engine.ledger.results import text


def _int(value: Any) -> int:
    return 0 if value is None else int(value)


@dataclass(frozen=True, slots=True)
class SkuStock:
    """One SKU across locations. For a bundle, levels are derived from its components."""

    sku: str
    levels: dict[str, StockLevel]
    recipe: Recipe | None = None
    known: bool = True

    @property
    def on_hand(self) -> int:
        return sum(level.on_hand for level in self.levels.values())

    @property
    def reserved(self) -> int:
        return sum(level.reserved for level in self.levels.values())

    @property
    def available(self) -> int:
        return sum(level.available for level in self.levels.values())


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One order as the ledger holds it."""

    channel: str
    order_id: str
    state: OrderState
    location: str
    lines: tuple[OrderLine, ...]
    unknown_lines: tuple[tuple[str, int], ...]
    status: str
    created_ms: int
    updated_ms: int
    expires_at_ms: int | None


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One audit journal row: who changed which counter, from what to what, and why."""

    entry_id: str
    ms: int
    op: str
    channel: str
    order_id: str
    sku: str
    location: str
    on_hand_before: int
    on_hand_after: int
    reserved_before: int
    reserved_after: int
    reason: str


@dataclass(frozen=True, slots=True)
class Oversell:
    channel: str
    order_id: str
    sku: str
    shortfall: int
    location: str
    ms: int


@dataclass(slots=True)
class Counters:
    oversold_orders: int = 0
    oversold_units: int = 0
    unknown_sku_orders: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class LedgerReader:
    """Queries over one account's ledger."""

    def __init__(self, client: redis.Redis, *, account: str = DEFAULT_ACCOUNT) -> None:
        self.client = client
        self.keys = AccountKeys(account)

    def locations(self) -> list[str]:
        with redis_errors():
            found = {text(loc) for loc in self.client.smembers(self.keys.locations)}
        return sorted(found | {DEFAULT_LOCATION})

    def stock(self, sku: str, *, location: str | None = None) -> SkuStock:
        """Counters of a SKU at every location (or one). A bundle's come from its parts."""
        locations = [location] if location else self.locations()
        with redis_errors():
            raw_recipe = self.client.hget(self.keys.bundles, sku)
            in_catalog = bool(self.client.hexists(self.keys.catalog, sku))
        if raw_recipe is not None:
            recipe = parse_recipe(text(raw_recipe))
            parts = {part: self._levels(part, locations) for part, _ in recipe}
            # available of a bundle = min over parts of floor(part available / per unit);
            # expressed as on_hand with reserved 0 so StockLevel.available gives it.
            levels = {
                loc: StockLevel(
                    sku=sku,
                    location=loc,
                    on_hand=bundle_available(
                        recipe, {p: parts[p][loc].available for p, _ in recipe}
                    ),
                    reserved=0,
                )
                for loc in locations
            }
            return SkuStock(sku, levels, recipe=recipe)
        levels = self._levels(sku, locations)
        known = in_catalog or any(level.on_hand or level.reserved for level in levels.values())
        return SkuStock(sku, levels, known=known or self._has_record(sku, locations))

    def available_many(self, skus: Sequence[str], location: str) -> dict[str, int]:
        """Available units of many SKUs at one location, bundles derived from their parts, in
        two round trips (the push path computes every value it sends this way)."""
        return self.available_and_uncounted(skus, location)[0]

    def available_and_uncounted(
        self, skus: Sequence[str], location: str
    ) -> tuple[dict[str, int], set[str]]:
        """:meth:`available_many`, and the SKUs nobody has counted at the location yet: no
        stock count and no order ever touched them (a bundle: one of its parts). Their 0 is
        "unknown", not "sold out": the push path does not publish it."""
        if not skus:
            return {}, set()
        with redis_errors():
            raw_recipes = self.client.hmget(self.keys.bundles, list(skus))
        recipes = {
            sku: parse_recipe(text(raw))
            for sku, raw in zip(skus, raw_recipes, strict=True)
            if raw is not None
        }
        plain = {sku for sku in skus if sku not in recipes}
        plain.update(part for recipe in recipes.values() for part, _ in recipe)
        parts = sorted(plain)
        fields = [self.keys.stock_field(location, part) for part in parts]
        with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.hmget(self.keys.on_hand, fields)
            pipe.hmget(self.keys.reserved, fields)
            on_hand, reserved = pipe.execute()
        available = {
            part: _int(oh) - _int(rs) for part, oh, rs in zip(parts, on_hand, reserved, strict=True)
        }
        never = {
            part
            for part, oh, rs in zip(parts, on_hand, reserved, strict=True)
            if oh is None and rs is None
        }
        values = {
            sku: bundle_available(recipes[sku], available) if sku in recipes else available[sku]
            for sku in skus
        }
        uncounted = {
            sku
            for sku in skus
            if (any(part in never for part, _ in recipes[sku]) if sku in recipes else sku in never)
        }
        return values, uncounted

    def _levels(self, sku: str, locations: list[str]) -> dict[str, StockLevel]:
        fields = [self.keys.stock_field(loc, sku) for loc in locations]
        with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.hmget(self.keys.on_hand, fields)
            pipe.hmget(self.keys.reserved, fields)
            on_hand, reserved = pipe.execute()
        return {
            loc: StockLevel(sku=sku, location=loc, on_hand=_int(oh), reserved=_int(rs))
            for loc, oh, rs in zip(locations, on_hand, reserved, strict=True)
        }

    def _has_record(self, sku: str, locations: list[str]) -> bool:
        fields = [self.keys.stock_field(loc, sku) for loc in locations]
        with redis_errors():
            return any(v is not None for v in self.client.hmget(self.keys.on_hand, fields))

    def order(self, channel: str, order_id: str) -> OrderRecord | None:
        with redis_errors():
            raw = self.client.hgetall(self.keys.order(channel, order_id))
        if not raw:
            return None
        data = {text(k): text(v) for k, v in raw.items()}
        stored = json.loads(data.get("lines", "[]")) or []
        unknown = json.loads(data.get("unknown", "[]")) or []
        return OrderRecord(
            channel=channel,
            order_id=order_id,
            state=OrderState(data["state"]),
            location=data["loc"],
            lines=tuple(OrderLine(sku=s, quantity=int(q)) for s, q, _ in stored if int(q) > 0),
            unknown_lines=tuple((s, int(q)) for s, q in unknown),
            status=data.get("status", ""),
            created_ms=int(data.get("created_ms", 0)),
            updated_ms=int(data.get("updated_ms", 0)),
            expires_at_ms=int(data["exp"]) if data.get("exp") else None,
        )

    def journal(self, *, sku: str | None = None, limit: int = 50) -> list[JournalEntry]:
        """Newest first. With ``sku``, scans back (in pages) until ``limit`` matches are found."""
        found: list[JournalEntry] = []
        upper = "+"
        page = max(limit * 4, 200)
        while len(found) < limit:
            with redis_errors():
                rows = cast(
                    list[tuple[bytes, dict[bytes, bytes]]],
                    self.client.xrevrange(self.keys.journal, max=upper, count=page),
                )
            for entry_id, fields in rows:
                entry = _journal_entry(text(entry_id), fields)
                if sku is None or entry.sku == sku:
                    found.append(entry)
                    if len(found) == limit:
                        break
            if len(rows) < page:
                break
            upper = "(" + text(rows[-1][0])
        return found

    def oversells(self) -> list[Oversell]:
        with redis_errors():
            raw = self.client.hgetall(self.keys.oversold)
        out = []
        for key, value in raw.items():
            channel, order_id, sku = text(key).split("|", 2)
            data = json.loads(text(value))
            out.append(
                Oversell(
                    channel,
                    order_id,
                    sku,
                    int(data["shortfall"]),
                    data["location"],
                    int(data["ms"]),
                )
            )
        return sorted(out, key=lambda o: o.ms)

    def counters(self) -> Counters:
        with redis_errors():
            raw = {text(k): int(v) for k, v in self.client.hgetall(self.keys.counters).items()}
        return Counters(
            oversold_orders=raw.pop("oversold_orders", 0),
            oversold_units=raw.pop("oversold_units", 0),
            unknown_sku_orders=raw.pop("unknown_sku_orders", 0),
            extra=raw,
        )


def _journal_entry(entry_id: str, fields: dict[Any, Any]) -> JournalEntry:
    data = {text(k): text(v) for k, v in fields.items()}
    return JournalEntry(
        entry_id=entry_id,
        ms=int(data["ms"]),
        op=data["op"],
        channel=data["channel"],
        order_id=data["order"],
        sku=data["sku"],
        location=data["location"],
        on_hand_before=int(data["on_hand_before"]),
        on_hand_after=int(data["on_hand_after"]),
        reserved_before=int(data["reserved_before"]),
        reserved_after=int(data["reserved_after"]),
        reason=data["reason"],
    )
