"""Oversold orders: marketplace sales that took available below zero, and which still need a
person.

The ledger records every marketplace order, even when stock is short, and notes the shortfall
per SKU (``keys.oversold``). Such an order can still be cancelled without harm while it is only
reserved — on Ozon with reason 352 ("out of stock") before the seller clicks "prepare" — so an
oversold order whose ledger state is still ``reserved`` needs action; one that was committed
(the goods were found and left) or released (cancelled) is history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from inventory_engine.domain.models import OrderState
from inventory_engine.ledger.reads import LedgerReader, OrderRecord


@dataclass(frozen=True, slots=True)
class OversoldLine:
    channel: str
    order_id: str
    sku: str
    shortfall: int
    location: str
    ms: int
    state: str | None
    """The order's ledger state now (None: the order record expired)."""
    status: str
    """The marketplace's last status the ledger saw."""
    kind: str = ""
    """The channel's kind, when it is configured (``ozon``...)."""

    @property
    def needs_action(self) -> bool:
        return self.state == OrderState.RESERVED.value

    @property
    def advice(self) -> str:
        if self.needs_action:
            hint = " (Ozon: reason 352)" if self.kind == "ozon" else ""
            return f"cancel it before it is prepared{hint}, or find {self.shortfall} unit(s)"
        if self.state in (OrderState.RELEASED.value, OrderState.EXPIRED.value):
            return "cancelled: resolved"
        if self.state is None:
            return "order record expired"
        return "shipped: the units were found"


def oversold_lines(
    reader: LedgerReader, *, kinds: Mapping[str, str] | None = None, open_only: bool = False
) -> list[OversoldLine]:
    """Every oversold line, oldest first, with its order's state now; with ``open_only`` only
    those of orders still reserved. ``kinds``: channel name -> kind, for the advice."""
    records: dict[tuple[str, str], OrderRecord | None] = {}
    lines: list[OversoldLine] = []
    for oversell in reader.oversells():
        key = (oversell.channel, oversell.order_id)
        if key not in records:
            records[key] = reader.order(*key)
        record = records[key]
        line = OversoldLine(
            channel=oversell.channel,
            order_id=oversell.order_id,
            sku=oversell.sku,
            shortfall=oversell.shortfall,
            location=oversell.location,
            ms=oversell.ms,
            state=record.state.value if record is not None else None,
            status=record.status if record is not None else "",
            kind=(kinds or {}).get(oversell.channel, ""),
        )
        if line.needs_action or not open_only:
            lines.append(line)
    return lines


def as_json(lines: list[OversoldLine]) -> list[dict[str, Any]]:
    return [{**asdict(x), "needs_action": x.needs_action, "advice": x.advice} for x in lines]
