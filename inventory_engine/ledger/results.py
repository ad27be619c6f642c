"""The one place where the Lua scripts' status codes become typed results or domain errors.

Codes (mirrored in ``lua/_lib.lua``): 1 applied, 2 no-op (duplicate or too late), 3 not found,
4 insufficient stock, 5 conflict, 6 out of range, 7 is a bundle, 8 an expired hold whose stock is
gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from inventory_engine.domain.models import OrderState
from inventory_engine.errors import (
    InsufficientStockError,
    ReservationConflictError,
    ReservationExpiredError,
    ShortLine,
    StockLevelError,
)


class Status(IntEnum):
    APPLIED = 1
    NOOP = 2
    NOT_FOUND = 3
    INSUFFICIENT = 4
    CONFLICT = 5
    OUT_OF_RANGE = 6
    IS_BUNDLE = 7
    EXPIRED = 8


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """What one order event did.

    Attributes:
        applied: the event changed the order (False for a duplicate or a step backwards).
        state: the order's state afterwards; None if the ledger does not know the order.
        oversold_units: units this event took below zero available (marketplace orders only).
        unknown_lines: lines parked because their SKU is not in the catalog or stock.
    """

    applied: bool
    state: OrderState | None
    oversold_units: int = 0
    unknown_lines: int = 0


@dataclass(frozen=True, slots=True)
class ReservationOutcome:
    """A storefront hold: ``created`` is False when the same request was answered before."""

    reservation_id: str
    created: bool
    state: OrderState
    expires_at_ms: int | None


def text(value: Any) -> str:
    """A Redis reply value as text (clients here do not decode responses)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def optional_text(value: Any) -> str | None:
    """:func:`text`, keeping a missing value (``None``) missing."""
    return None if value is None else text(value)


def _status(reply: list[Any]) -> Status:
    return Status(int(reply[0]))


def decode_order_reply(reply: list[Any]) -> OrderOutcome:
    """Decode apply_order_event.lua."""
    status = _status(reply)
    if status is Status.APPLIED:
        return OrderOutcome(True, OrderState(text(reply[1])), int(reply[2]), int(reply[3]))
    if status is Status.NOOP:
        return OrderOutcome(False, OrderState(text(reply[1])))
    if status is Status.NOT_FOUND:
        return OrderOutcome(False, None)
    raise AssertionError(f"unexpected reply from apply_order_event: {reply!r}")


def decode_commit_reply(channel: str, order_id: str, reply: list[Any]) -> OrderOutcome:
    """Decode apply_order_event.lua called by ``RedisLedger.commit``.

    Raises:
        ReservationExpiredError: the hold expired and some of its stock is gone; nothing moved.
    """
    if _status(reply) is Status.EXPIRED:
        raise ReservationExpiredError(channel, order_id, _short_lines(reply[1:]))
    return decode_order_reply(reply)


def _short_lines(flat: list[Any]) -> list[ShortLine]:
    """``[sku, requested, available, ...]`` as ShortLines."""
    return [
        ShortLine(text(flat[i]), int(flat[i + 1]), int(flat[i + 2])) for i in range(0, len(flat), 3)
    ]


def decode_reserve_reply(reservation_id: str, reply: list[Any]) -> ReservationOutcome:
    """Decode try_reserve.lua.

    Raises:
        InsufficientStockError: some line is short; nothing was held.
        ReservationConflictError: the id exists with other lines.
    """
    status = _status(reply)
    if status in (Status.APPLIED, Status.NOOP):
        expiry = int(reply[2]) or None
        return ReservationOutcome(
            reservation_id, status is Status.APPLIED, OrderState(text(reply[1])), expiry
        )
    if status is Status.INSUFFICIENT:
        raise InsufficientStockError(_short_lines(reply[1:]))
    if status is Status.CONFLICT:
        raise ReservationConflictError(reservation_id, text(reply[1]))
    raise AssertionError(f"unexpected reply from try_reserve: {reply!r}")


def decode_change_reply(reply: list[Any]) -> int:
    """Decode change_on_hand.lua into the number of SKUs whose count changed.

    Raises:
        StockLevelError: a level would leave 0..max, or the SKU is a bundle.
    """
    status = _status(reply)
    if status is Status.APPLIED:
        return int(reply[1])
    if status is Status.OUT_OF_RANGE:
        raise StockLevelError(
            text(reply[1]),
            f"on hand is {int(reply[2])}; the change would make it {int(reply[3])}",
        )
    if status is Status.IS_BUNDLE:
        raise StockLevelError(text(reply[1]), "is a bundle: its stock comes from its components")
    raise AssertionError(f"unexpected reply from change_on_hand: {reply!r}")


def decode_expire_reply(reply: list[Any]) -> int:
    """Decode expire_due.lua into the number of reservations released."""
    if _status(reply) is not Status.APPLIED:
        raise AssertionError(f"unexpected reply from expire_due: {reply!r}")
    return int(reply[1])


def decode_dismiss_reply(reply: list[Any]) -> list[tuple[str, int]] | None:
    """Decode dismiss_unknown.lua into the lines dismissed; None when nothing was parked."""
    status = _status(reply)
    if status is Status.NOT_FOUND:
        return None
    if status is not Status.APPLIED:
        raise AssertionError(f"unexpected reply from dismiss_unknown: {reply!r}")
    flat = reply[1:]
    return [(text(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]
