"""The line comparison of ``orders check``: the marketplace's lines against the ledger's.

A right state says nothing about what is held, so lines are compared too: the marketplace's
lines (its item ids mapped through the catalog, summed per SKU) against the ledger's lines and
its lines parked for an unknown SKU. Each difference is named — a line the ledger lacks, one
only the ledger has, a quantity, a line unknown to the catalog. Lines are compared only where
the ledger holds or took stock for the order (reserved, committed, final, cancelled after ship):
a released order moved nothing whatever its lines. A listing without lines (a WB status answer
for a task not in the new-task snapshot) cannot be compared.
"""

from __future__ import annotations

from inventory_engine.channels.base import ChannelOrder
from inventory_engine.domain.models import OrderState
from inventory_engine.ledger.reads import OrderRecord
from inventory_engine.service import Engine
from inventory_engine.service.mapping import unmapped_sku

_S = OrderState
HOLDS_STOCK = frozenset({_S.RESERVED, _S.COMMITTED, _S.FINAL, _S.CANCELLED_AFTER_SHIP})
"""Ledger states in which the order's lines moved stock: only there do its lines matter."""


class ItemSkus:
    """A channel's item ids as seller SKUs, through the catalog, each id looked up once per
    check (orders share items)."""

    def __init__(self, engine: Engine, field: str) -> None:
        self.field = field
        self.named = field.replace("_", " ")
        self._catalog = engine.catalog
        self._skus: dict[str, str | None] = {}

    def sku(self, item_id: str) -> str | None:
        if self.field == "sku":  # the storefront's own ids are SKUs already
            return item_id
        if item_id not in self._skus:
            self._skus[item_id] = self._catalog.sku_for(self.field, item_id)
        return self._skus[item_id]


def line_differences(
    items: ItemSkus, order: ChannelOrder, record: OrderRecord | None
) -> tuple[str, ...]:
    """What differs between the marketplace's lines and the ledger's, in the marketplace's
    line order then the ledger's; empty when they agree or cannot be compared."""
    if record is None or record.state not in HOLDS_STOCK or not order.lines:
        return ()
    held: dict[str, int] = {}
    for line in record.lines:
        held[line.sku] = held.get(line.sku, 0) + line.quantity
    parked = dict(record.unknown_lines)
    # Per marketplace item (one SKU may come on several lines): quantity and the SKU it is now.
    asked: dict[str, int] = {}
    for channel_line in order.lines:
        asked[channel_line.item_id] = asked.get(channel_line.item_id, 0) + channel_line.quantity
    named = items.named
    found: list[str] = []
    wanted: dict[str, int] = {}
    for item_id, quantity in asked.items():
        stand_in = unmapped_sku(items.field, item_id)
        sku = items.sku(item_id)
        if stand_in in parked and sku not in held:
            # Set aside when the order arrived: the known lines applied, this one did not.
            if sku is None:
                found.append(f"line unknown to the catalog: {named} {item_id} ×{quantity}")
            else:
                found.append(
                    f"line unknown to the catalog when the order arrived: {named} {item_id} "
                    f"×{quantity}, {sku} since (inventory-engine retry applies it)"
                )
            parked.pop(stand_in)
        elif sku is None or sku not in held:
            what = f"{named} {item_id}" + (f" ({sku})" if sku is not None else "")
            found.append(f"ledger has no line for {what} ×{quantity}")
        else:
            wanted[sku] = wanted.get(sku, 0) + quantity
    for sku, quantity in wanted.items():
        if held[sku] != quantity:
            found.append(f"quantity differs for {sku}: ledger {held[sku]}, marketplace {quantity}")
    for sku, quantity in held.items():
        if sku not in wanted:
            found.append(f"marketplace has no line for {sku} (ledger ×{quantity})")
    for stand_in, quantity in parked.items():
        found.append(f"marketplace has no line for {stand_in} (parked in the ledger ×{quantity})")
    return tuple(found)


def lines_reason(lines: tuple[str, ...]) -> str:
    """The line differences as one reason."""
    return "lines differ: " + "; ".join(lines)
