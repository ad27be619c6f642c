"""Yandex Market Partner API answers as the client reads them (unknown fields ignored).

Shapes per ``shared/specs/yandex-market-subset.json``; only the fields the client uses are
declared. Answers that continue on a next page say so through :meth:`Page.next_token`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    """Base of every YM answer model: frozen, extra fields ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class ApiError(Model):
    code: str = ""
    message: str = ""


class ApiAnswer(Model):
    status: str | None = None
    errors: list[ApiError] | None = None


class Stock(Model):
    type: str
    count: int


class Offer(Model):
    offer_id: str = Field(alias="offerId")
    stocks: list[Stock] = Field(default_factory=list)


class Warehouse(Model):
    warehouse_id: int = Field(alias="warehouseId")
    offers: list[Offer] = Field(default_factory=list)


class Paging(Model):
    next_page_token: str | None = Field(default=None, alias="nextPageToken")


class Page(Model):
    """An answer that may continue on a next page."""

    def next_token(self) -> str | None:
        raise NotImplementedError


class StocksResult(Model):
    warehouses: list[Warehouse] = Field(default_factory=list)
    paging: Paging | None = None


class StocksAnswer(Page):
    result: StocksResult | None = None

    def next_token(self) -> str | None:
        paging = self.result.paging if self.result else None
        return paging.next_page_token if paging else None


class OrderItem(Model):
    offer_id: str = Field(alias="offerId")
    count: int


class Order(Model):
    order_id: int = Field(alias="orderId")
    campaign_id: int | None = Field(default=None, alias="campaignId")
    status: str
    substatus: str | None = None
    creation_date: str | None = Field(default=None, alias="creationDate")
    update_date: str | None = Field(default=None, alias="updateDate")
    items: list[OrderItem] = Field(default_factory=list)


class OrdersAnswer(Page):
    orders: list[Order] = Field(default_factory=list)
    paging: Paging | None = None

    def next_token(self) -> str | None:
        return self.paging.next_page_token if self.paging else None
