"""Value types of the stock domain: order lines, the actions an order event asks for, order states.

Pure: nothing here touches Redis, HTTP, the clock or the environment. Quantities are checked
here, at the boundary, so the Lua scripts only ever see integers far below 2**53.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from inventory_engine.constants import (
    DEFAULT_LOCATION,
    MAX_ID_LENGTH,
    MAX_LINE_QUANTITY,
    MAX_STOCK_LEVEL,
)


class OrderAction(StrEnum):
    """What an order event does to the ledger, whatever marketplace status caused it."""

    RESERVE = "reserve"
    """A new order: hold its units (marketplace orders are recorded even when stock is short)."""
    COMMIT = "commit"
    """The goods leave (Ozon "prepare"/ship, WB handed over, YM shipped).

    On hand and reserved both drop.
    """
    RELEASE = "release"
    """Cancelled before shipping: the held units return to available."""
    FINAL = "final"
    """Delivered: nothing more can happen to the stock of this order."""
    CANCEL_AFTER_SHIP = "cancel_after_ship"
    """Cancelled once the goods had left: stock is NOT returned until a return is booked."""
    HOLD = "hold"
    """Arbitration and similar: keep whatever is held, change nothing (reserve if never seen)."""
    IGNORE = "ignore"
    """A status that says nothing about stock (e.g. a date change)."""


class OrderState(StrEnum):
    """Where one (channel, order) stands in the ledger. States never move backwards."""

    RESERVED = "reserved"
    COMMITTED = "committed"
    FINAL = "final"
    RELEASED = "released"
    EXPIRED = "expired"
    CANCELLED_AFTER_SHIP = "cancelled_after_ship"


TERMINAL_STATES = frozenset(
    {OrderState.FINAL, OrderState.RELEASED, OrderState.EXPIRED, OrderState.CANCELLED_AFTER_SHIP}
)


def check_identifier(value: str, what: str) -> str:
    """Validate a channel, order, reservation, location or SKU identifier and return it stripped.

    Raises:
        ValueError: empty, too long, or not printable single-line text.
    """
    value = value.strip()
    if not value:
        raise ValueError(f"{what} must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"{what} is longer than {MAX_ID_LENGTH} characters")
    if not value.isprintable():  # also refuses tabs and line breaks
        raise ValueError(f"{what} must be printable text on one line")
    return value


class OrderLine(BaseModel):
    """One line of an order or reservation: a catalog SKU and a whole number of units."""

    model_config = ConfigDict(frozen=True, strict=True)

    sku: str
    quantity: int = Field(ge=1, le=MAX_LINE_QUANTITY)

    @field_validator("sku")
    @classmethod
    def _sku_is_an_identifier(cls, value: str) -> str:
        return check_identifier(value, "sku")


class StockLevel(BaseModel):
    """Counters of one SKU at one location. ``available`` may be negative after an oversell."""

    model_config = ConfigDict(frozen=True)

    sku: str
    location: str = DEFAULT_LOCATION
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


def merge_lines(lines: Iterable[OrderLine]) -> tuple[OrderLine, ...]:
    """Sum the quantities of lines that name the same SKU, keeping first-seen order.

    Raises:
        ValueError: no lines, or a merged quantity above the per-line maximum.
    """
    totals: dict[str, int] = {}
    for line in lines:
        totals[line.sku] = totals.get(line.sku, 0) + line.quantity
    if not totals:
        raise ValueError("an order needs at least one line")
    return tuple(OrderLine(sku=sku, quantity=qty) for sku, qty in totals.items())


def check_stock_level(value: int, what: str = "on_hand") -> int:
    """Validate an absolute stock level (0..1,000,000,000).

    Raises:
        ValueError: not an int, or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be a whole number")
    if not 0 <= value <= MAX_STOCK_LEVEL:
        raise ValueError(f"{what} must be between 0 and {MAX_STOCK_LEVEL}")
    return value
