"""Ozon Seller API answers as the client reads them (unknown fields ignored).

Only the fields the client uses are declared, with defaults wherever Ozon may leave one out.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class OzonModel(BaseModel):
    """Base of every Ozon answer model: frozen, extra fields ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class ItemError(OzonModel):
    code: str = ""
    message: str = ""


class StockResult(OzonModel):
    offer_id: str = ""
    product_id: int = 0
    warehouse_id: int = 0
    updated: bool = False
    errors: list[ItemError] = []


class StocksAnswer(OzonModel):
    result: list[StockResult] = []


class InfoStock(OzonModel):
    type: str = ""
    sku: int = 0


class InfoItem(OzonModel):
    offer_id: str = ""
    stocks: list[InfoStock] = []


class InfoAnswer(OzonModel):
    cursor: str = ""
    items: list[InfoItem] = []


class WarehouseStock(OzonModel):
    sku: int
    warehouse_id: int = 0
    present: int = 0
    reserved: int = 0


class WarehouseAnswer(OzonModel):
    result: list[WarehouseStock] = []


class WarehouseProduct(OzonModel):
    """A ``/v2/product/info/stocks-by-warehouse/fbs`` row (one offer on one warehouse)."""

    offer_id: str = ""
    sku: int = 0
    warehouse_id: int = 0
    present: int = 0
    reserved: int = 0
    free_stock: int | None = None


class WarehouseV2Answer(OzonModel):
    cursor: str = ""
    has_next: bool = False
    products: list[WarehouseProduct] = []


class Product(OzonModel):
    sku: int
    quantity: int


class Cancellation(OzonModel):
    cancelled_after_ship: bool = False


class Posting(OzonModel):
    posting_number: str
    status: str = ""
    products: list[Product] = []
    cancellation: Cancellation | None = None


class ListResult(OzonModel):
    postings: list[Posting] = []
    has_next: bool = False


class ListAnswer(OzonModel):
    result: ListResult = ListResult()


class GetAnswer(OzonModel):
    result: Posting
