"""What the ledger's scripts take: an order event, checked, and its lines in the scripts' shape."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace

from inventory_engine.constants import DEFAULT_LOCATION, MAX_LINE_QUANTITY, MAX_ORDER_LINES
from inventory_engine.domain.models import OrderAction, OrderLine, check_identifier


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One marketplace order event, already mapped to a ledger action by the domain rules."""

    channel: str
    order_id: str
    action: OrderAction
    lines: tuple[OrderLine, ...] = ()
    status: str = ""
    location: str = DEFAULT_LOCATION
    received_ms: int | None = None
    """When the engine received the event (webhook, poll); propagation is measured from it."""


def checked_event(event: OrderEvent) -> OrderEvent:
    """The event with its identifiers validated and stripped (the key uses these values)."""
    channel = check_identifier(event.channel, "channel")
    order_id = check_identifier(event.order_id, "order_id")
    location = check_location(event.location)
    if (channel, order_id, location) == (event.channel, event.order_id, event.location):
        return event  # the common case: nothing to strip, no copy
    return replace(event, channel=channel, order_id=order_id, location=location)


def check_location(location: str) -> str:
    """A location name: an identifier without ``|`` (it separates location and SKU in fields)."""
    location = check_identifier(location, "location")
    if "|" in location:
        raise ValueError("location may not contain '|'")
    return location


def lines_args(lines: Iterable[OrderLine]) -> tuple[str, list[str | int]]:
    """Lines as the scripts take them, one per SKU, sorted by SKU (the same cart in another
    line order is the same request): the canonical JSON ``[[sku, qty], ...]`` that is stored
    with the order and compared by ``try_reserve`` (never decoded by the scripts), and the same
    lines flat, ``sku, qty, sku, qty, ...``, which the scripts read."""
    totals: dict[str, int] = {}
    for line in lines:
        totals[line.sku] = totals.get(line.sku, 0) + line.quantity
    if not totals:
        raise ValueError("an order needs at least one line")
    if len(totals) > MAX_ORDER_LINES:
        raise ValueError(f"an order may have at most {MAX_ORDER_LINES} distinct lines")
    if any(qty > MAX_LINE_QUANTITY for qty in totals.values()):
        raise ValueError(f"a SKU's total quantity may not exceed {MAX_LINE_QUANTITY}")
    items = sorted(totals.items())
    return json.dumps(items, separators=(",", ":")), [value for item in items for value in item]
