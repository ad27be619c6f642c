"""Marketplace events as plain data (the inbox stream and RQ job arguments), and the
``outcome`` label of what applying one did."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from inventory_engine.channels.base import ChannelLine, ChannelOrder
from inventory_engine.domain.models import OrderAction
from inventory_engine.ledger.results import OrderOutcome


def event_outcome(outcome: OrderOutcome) -> str:
    """The ``outcome`` label of ``inventory_events_total`` for what an event did."""
    if outcome.state is None:
        return "not_found" if not outcome.applied else "applied"
    if not outcome.applied:
        return "duplicate"
    if outcome.oversold_units:
        return "oversold"
    if outcome.unknown_lines:
        return "unknown_sku"
    return "applied"


def order_to_dict(order: ChannelOrder) -> dict[str, Any]:
    """A ChannelOrder as RQ job arguments (plain JSON-able data)."""
    data = asdict(order)
    data["action"] = order.action.value
    return data


def order_from_dict(data: dict[str, Any]) -> ChannelOrder:
    return ChannelOrder(
        order_id=data["order_id"],
        action=OrderAction(data["action"]),
        status=data.get("status", ""),
        lines=tuple(ChannelLine(line["item_id"], int(line["quantity"])) for line in data["lines"]),
        needs_lines=bool(data.get("needs_lines")),
        event_key=data.get("event_key", ""),
        changed_at=data.get("changed_at"),
        received_ms=data.get("received_ms"),
    )
