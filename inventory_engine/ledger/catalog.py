"""The catalog: which marketplace ids each seller SKU has, and which SKUs are bundles.

Marketplace events name items by the marketplace's own ids (Ozon ``sku``, WB ``chrtId``, YM
``offerId``); index hashes map each back to the seller SKU. Catalog writes are not stock
counters, so they go through one optimistic MULTI/EXEC transaction rather than a script: the
whole file lands or nothing does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, cast

import redis
from pydantic import BaseModel, ConfigDict, Field, field_validator

from inventory_engine.constants import DEFAULT_ACCOUNT
from inventory_engine.domain.bundles import Recipe, bundle_parents, format_recipe, parse_recipe
from inventory_engine.domain.models import check_identifier
from inventory_engine.errors import CatalogError
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.redis_io import redis_errors
from inventory_engine.ledger.results import text

INDEXED_FIELDS = ("ozon_offer_id", "ozon_sku", "ozon_product_id", "wb_chrt_id", "ym_offer_id")
"""Marketplace identifiers that map back to a seller SKU (one index hash each)."""


class CatalogEntry(BaseModel):
    """One seller SKU and its listing on each marketplace (None = not listed there)."""

    model_config = ConfigDict(frozen=True)

    sku: str
    ozon_offer_id: str | None = None
    ozon_sku: int | None = Field(default=None, ge=1)
    ozon_product_id: int | None = Field(default=None, ge=1)
    wb_chrt_id: int | None = Field(default=None, ge=1)
    ym_offer_id: str | None = None
    bundle: Recipe | None = None

    @field_validator("sku", "ozon_offer_id", "ym_offer_id")
    @classmethod
    def _identifier(cls, value: str | None) -> str | None:
        return None if value is None else check_identifier(value, "identifier")

    @field_validator("bundle", mode="before")
    @classmethod
    def _recipe(cls, value: Any) -> Any:
        return parse_recipe(value) if isinstance(value, str) else value


class CatalogStore:
    """Reads and writes the catalog of one account."""

    def __init__(
        self, client: redis.Redis, *, account: str = DEFAULT_ACCOUNT, channels: Sequence[str] = ()
    ) -> None:
        self.client = client
        self.keys = AccountKeys(account)
        self.channels = tuple(channels)

    def get(self, sku: str) -> CatalogEntry | None:
        with redis_errors():
            raw = self.client.hget(self.keys.catalog, sku)
        return None if raw is None else CatalogEntry.model_validate_json(raw)

    def sku_for(self, field: str, marketplace_id: str | int) -> str | None:
        """The seller SKU listed under a marketplace id, e.g. ``sku_for("ozon_sku", 1470)``."""
        if field not in INDEXED_FIELDS:
            raise ValueError(f"unknown catalog field {field!r}")
        with redis_errors():
            raw = self.client.hget(self.keys.catalog_index(field), str(marketplace_id))
        return None if raw is None else (raw.decode() if isinstance(raw, bytes) else str(raw))

    def import_entries(self, entries: Sequence[CatalogEntry]) -> int:
        """Add or replace entries, all in one transaction. Returns how many were written.

        Raises:
            CatalogError: a rule is broken (row numbers count data rows from 1); nothing written.
        """
        with redis_errors():
            written = self.client.transaction(
                lambda pipe: self._write(pipe, entries),  # type: ignore[arg-type]
                self.keys.catalog,
                self.keys.bundles,
                value_from_callable=True,
            )
        return cast(int, written)

    def _write(self, pipe: Any, entries: Sequence[CatalogEntry]) -> int:
        existing = {
            text(sku): CatalogEntry.model_validate_json(raw)
            for sku, raw in pipe.hgetall(self.keys.catalog).items()
        }
        merged = dict(existing)
        for entry in entries:
            merged[entry.sku] = entry
        _check_rules(entries, merged)
        recipes = {sku: e.bundle for sku, e in merged.items() if e.bundle is not None}
        now_ms = time.time_ns() // 1_000_000

        pipe.multi()
        for entry in entries:
            old = existing.get(entry.sku)
            for field in INDEXED_FIELDS:
                old_id, new_id = getattr(old, field, None), getattr(entry, field)
                if old_id is not None and old_id != new_id:
                    pipe.hdel(self.keys.catalog_index(field), str(old_id))
                if new_id is not None:
                    pipe.hset(self.keys.catalog_index(field), str(new_id), entry.sku)
            pipe.hset(self.keys.catalog, entry.sku, entry.model_dump_json(exclude_none=True))
            if entry.bundle is not None:
                pipe.hset(self.keys.bundles, entry.sku, format_recipe(entry.bundle))
            elif old is not None and old.bundle is not None:
                pipe.hdel(self.keys.bundles, entry.sku)
            for channel in self.channels:
                # A new or changed listing must be published, like any stock change.
                pipe.zadd(self.keys.dirty(channel), {entry.sku: now_ms}, nx=True)
        pipe.delete(self.keys.bundle_parents)
        parents = bundle_parents(recipes)
        if parents:
            pipe.hset(
                self.keys.bundle_parents,
                mapping={component: ";".join(b) for component, b in parents.items()},
            )
        return len(entries)


def _check_rules(entries: Sequence[CatalogEntry], merged: dict[str, CatalogEntry]) -> None:
    """Raise one :class:`CatalogError` naming every file row that breaks a rule."""
    rows = {entry.sku: row for row, entry in enumerate(entries, start=1)}
    problems: list[tuple[int, str]] = []
    # Marketplace ids owned by entries the file does not touch.
    seen: dict[tuple[str, str], str] = {
        (field, str(getattr(e, field))): e.sku
        for e in merged.values()
        for field in INDEXED_FIELDS
        if getattr(e, field) is not None and e.sku not in rows
    }
    file_skus: set[str] = set()
    for row, entry in enumerate(entries, start=1):
        if entry.sku in file_skus:
            problems.append((row, f"SKU {entry.sku} appears twice"))
            continue
        file_skus.add(entry.sku)
        for field in INDEXED_FIELDS:
            value = getattr(entry, field)
            if value is None:
                continue
            owner = seen.setdefault((field, str(value)), entry.sku)
            if owner != entry.sku:
                problems.append((row, f"{field} {value} already belongs to SKU {owner}"))
    # Bundle rules over the catalog as it would be, blamed on the file row that breaks them.
    for sku, entry in merged.items():
        for component, _ in entry.bundle or ():
            part = merged.get(component)
            row = rows.get(sku) or rows.get(component, 0)
            if component == sku:
                problems.append((row, f"bundle {sku} cannot contain itself"))
            elif part is None:
                problems.append((row, f"bundle component {component} is not in the catalog"))
            elif part.bundle is not None:
                problems.append((row, f"bundle {sku} uses {component}, which is itself a bundle"))
    CatalogError.raise_for(problems)


def dumps_entry(entry: CatalogEntry) -> str:
    """JSON of an entry as stored (used by ``catalog show``)."""
    return json.dumps(entry.model_dump(exclude_none=True), ensure_ascii=False)
