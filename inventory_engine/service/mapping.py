"""Marketplace item ids in orders → the seller's SKUs, through the catalog.

Ozon orders name items by Ozon's ``sku``, Wildberries by ``chrtId``, Yandex Market by the
seller's ``offerId``: each channel says which catalog column matches (``order_item_field``).
An id the catalog does not know becomes the SKU ``"<field>:<id>"``, which the ledger does not
know either, so it parks that line in its visible unknown-SKU list instead of dropping it.
"""

from __future__ import annotations

from collections.abc import Sequence

from inventory_engine.channels.base import ChannelLine
from inventory_engine.domain.models import OrderLine
from inventory_engine.ledger.catalog import CatalogStore


def unmapped_sku(field: str, item_id: str) -> str:
    """The stand-in SKU of a marketplace id missing from the catalog (names where it came from)."""
    return f"{field}:{item_id}"


def to_order_lines(
    lines: Sequence[ChannelLine], catalog: CatalogStore, field: str
) -> tuple[OrderLine, ...]:
    """Map order lines to seller SKUs; ``field`` is the channel's ``order_item_field``.

    The storefront's own channel (``field == "sku"``) already speaks seller SKUs.
    """
    mapped = []
    for line in lines:
        if field == "sku":
            sku = line.item_id
        else:
            sku = catalog.sku_for(field, line.item_id) or unmapped_sku(field, line.item_id)
        mapped.append(OrderLine(sku=sku, quantity=line.quantity))
    return tuple(mapped)
