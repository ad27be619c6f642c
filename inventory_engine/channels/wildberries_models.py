"""Wildberries answers as the client reads them (camelCase on the wire, unknown fields ignored).

Only the fields the client uses are declared: WB adds fields freely, and a missing optional one
must not fail a poll.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class WbModel(BaseModel):
    """Base of every WB answer model: camelCase aliases, frozen, extra fields ignored."""

    model_config = ConfigDict(alias_generator=to_camel, extra="ignore", frozen=True)


class ErrorItem(WbModel):
    chrt_id: int | None = None
    amount: int | None = None


class ItemsError(WbModel):
    """One entry of a 409 answer: a code and the items it failed."""

    code: str = ""
    message: str = ""
    data: list[ErrorItem] | None = None


class Stock(WbModel):
    chrt_id: int
    amount: int


class StocksAnswer(WbModel):
    stocks: list[Stock] = []


class Task(WbModel):
    """An assembly task (one unit of one size)."""

    id: int
    chrt_id: int
    created_at: str | None = None


class TasksAnswer(WbModel):
    orders: list[Task] = []
    next: int | None = None


class TaskStatus(WbModel):
    id: int
    supplier_status: str | None = None
    wb_status: str | None = None


class StatusesAnswer(WbModel):
    orders: list[TaskStatus] = []
