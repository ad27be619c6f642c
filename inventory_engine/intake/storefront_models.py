"""Request and answer bodies of the storefront REST API (``/v1``): strict, so ``"5"``, ``5.0``,
``true`` and unknown fields are refused rather than guessed at."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

from inventory_engine.constants import (
    MAX_ID_LENGTH,
    MAX_LINE_QUANTITY,
    MAX_ORDER_LINES,
    MAX_STOCK_LEVEL,
)
from inventory_engine.domain.models import check_identifier

MAX_TTL_SECONDS = 30 * 24 * 3600
"""Longest storefront hold: 30 days (a checkout hold is minutes; this only bounds the input)."""

Identifier = Annotated[
    str,
    Field(min_length=1, max_length=MAX_ID_LENGTH),
    AfterValidator(lambda value: check_identifier(value, "identifier")),
]
"""A SKU, order, reservation or channel id as the ledger accepts it (printable, one line)."""
Lines = Annotated[list["Line"], Field(min_length=1, max_length=MAX_ORDER_LINES)]
_STRICT = ConfigDict(strict=True, extra="forbid")


class Line(BaseModel):
    model_config = _STRICT

    sku: Identifier
    quantity: StrictInt = Field(ge=1, le=MAX_LINE_QUANTITY)


class ReservationIn(BaseModel):
    model_config = _STRICT

    reservation_id: Identifier
    lines: Lines
    ttl_seconds: StrictInt | None = Field(default=None, ge=1, le=MAX_TTL_SECONDS)
    """Released automatically after this long unless committed; none: held until told."""


class ReservationOut(BaseModel):
    reservation_id: str
    state: str
    expires_at: str | None = None
    """ISO 8601 UTC; null when the hold has no TTL."""


class ReservationStateOut(BaseModel):
    reservation_id: str
    state: str
    applied: bool
    """False when the call changed nothing (the reservation had already finished)."""


class OrderIn(BaseModel):
    model_config = _STRICT

    channel: Identifier
    order_id: Identifier
    status: Literal["new", "shipped", "cancelled", "cancelled_after_ship", "delivered"]
    lines: Lines


class OrderOut(BaseModel):
    channel: str
    order_id: str
    state: str | None
    applied: bool
    oversold_units: int
    unknown_lines: int


class OnHandIn(BaseModel):
    model_config = _STRICT

    on_hand: StrictInt = Field(ge=0, le=MAX_STOCK_LEVEL)


class LevelOut(BaseModel):
    on_hand: int
    reserved: int
    available: int


class ChannelOut(BaseModel):
    listed: bool
    """The catalog gives the SKU an id on this channel (false: the channel is never told)."""
    target: int | None
    """What the channel should show now: its share of the available units at its location
    (null when the SKU is not listed there)."""
    accepted: int | None
    """The last value the channel accepted; null: never pushed."""
    pending: bool
    """A change waits to be pushed."""


class StockOut(LevelOut):
    sku: str
    locations: dict[str, LevelOut]
    channels: dict[str, ChannelOut]


class ErrorOut(BaseModel):
    error: str
    message: str
