"""The Ozon simulator's stock methods: the FBS stock push and its two read-backs.

``POST /v2/products/stocks`` keeps Ozon's own limits besides the global ones: at most
``max_batch`` pairs (else HTTP 400, violation ``batch_size``), ``stock_requests_per_minute``
per Client-Id (else HTTP 429, violation ``rate_limit``), and one update per (offer, warehouse)
per ``item_window_s`` (else item error ``TOO_MANY_REQUESTS`` inside HTTP 200, violation
``item_frequency``). ``/v4/product/info/stocks`` and
``/v1/product/info/stocks-by-warehouse/fbs`` read back ``present`` and ``reserved``;
``/v2/product/info/stocks-by-warehouse/fbs`` (its successor, March 2026) takes ``offer_id``
and/or ``sku`` lists, a required ``limit`` (1..1000 here: Ozon's maximum is UNCONFIRMED) and a
``cursor``, and answers ``products[]`` with ``free_stock`` besides, plus ``has_next``/``cursor``.
Both versions are served (an account may still be on either in a test).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse, Response

from inventory_engine.simulators.base import FaultInjector, SimulatorState, TokenBucket, is_int
from inventory_engine.simulators.ozon_config import OzonSimConfig
from inventory_engine.simulators.ozon_postings import PostingBook
from inventory_engine.simulators.ozon_products import SimProduct
from inventory_engine.simulators.ozon_requests import (
    RATE_LIMIT_MESSAGE,
    RESOURCE_EXHAUSTED,
    BadRequestError,
    error,
    filter_strings,
    page_limit,
    required_filter,
)

STOCK_CEILING = 1_000_000
"""``stock`` must be below this, else item error ``STOCK_TOO_BIG``."""


class OzonStockApi:
    """The stock routes' handlers, with the stock push's own rate limit and per-item window."""

    def __init__(
        self,
        config: OzonSimConfig,
        state: SimulatorState,
        faults: FaultInjector,
        clock: Callable[[], float],
        book: PostingBook,
    ) -> None:
        self.config, self.state, self.faults, self.clock = config, state, faults, clock
        self.book = book
        self.reset()

    def reset(self) -> None:
        self.last_update: dict[tuple[str, int], float] = {}
        """When each (offer, warehouse) was last updated, on ``clock``."""
        rpm = self.config.stock_requests_per_minute
        self.bucket = TokenBucket(rpm, rpm / 60, clock=self.clock)

    async def push_stocks(self, body: dict[str, Any]) -> Response:
        """``POST /v2/products/stocks``: one result per pair, in the order sent."""
        if self.bucket.take():
            self.state.violation("rate_limit")
            return error(429, RESOURCE_EXHAUSTED, RATE_LIMIT_MESSAGE)
        stocks = body.get("stocks")
        if not isinstance(stocks, list) or not stocks:
            raise BadRequestError("stocks: value is required")
        if len(stocks) > self.config.max_batch:
            self.state.violation("batch_size")
            raise BadRequestError(
                f"stocks: value must contain at most {self.config.max_batch} item(s)"
            )
        for item in stocks:
            if not isinstance(item, dict) or not is_int(item.get("warehouse_id")):
                raise BadRequestError("stocks: warehouse_id is required")
            if not is_int(item.get("stock")):
                raise BadRequestError("stocks: stock must be an integer")
            if not isinstance(item.get("offer_id"), str) and not is_int(item.get("product_id")):
                raise BadRequestError("stocks: offer_id or product_id is required")
        return JSONResponse({"result": [self._push_one(item) for item in stocks]})

    def _push_one(self, item: dict[str, Any]) -> dict[str, Any]:
        warehouse, stock = item["warehouse_id"], item["stock"]
        offer_id = item.get("offer_id")
        # Ozon: when both ids are sent, offer_id wins.
        product = (
            self.book.products.by_offer_id(offer_id, create=True)
            if isinstance(offer_id, str)
            else self.book.products.by_id.get(item["product_id"])
        )
        row: dict[str, Any] = {
            "warehouse_id": warehouse,
            "product_id": product.product_id if product else item.get("product_id", 0),
            "offer_id": product.offer_id if product else (offer_id or ""),
            "updated": False,
            "errors": [],
        }
        code, message = self._item_error(product, offer_id, warehouse, stock)
        if code:
            row["errors"] = [{"code": code, "message": message}]
            return row
        assert product is not None  # noqa: S101 - _item_error found it
        key = (product.offer_id, warehouse)
        self.last_update[key] = self.clock()
        self.book.set_stock(product.offer_id, warehouse, stock)
        self.state.accept(str(warehouse), product.offer_id, stock)
        row["updated"] = True
        return row

    def _item_error(
        self, product: SimProduct | None, offer_id: Any, warehouse: int, stock: int
    ) -> tuple[str, str]:
        """Ozon's item error code and message for one pair; ``("", "")`` when it is fine."""
        if product is None:
            if isinstance(offer_id, str):
                return "offer_id_not_found", f"offer_id {offer_id!r} not found"
            return "NOT_FOUND_ERROR", "product not found"
        if warehouse not in self.config.warehouses:
            return "WAREHOUSE_NOT_FOUND", f"warehouse {warehouse} not found"
        if stock >= STOCK_CEILING:
            return "STOCK_TOO_BIG", f"stock must be less than {STOCK_CEILING}"
        if stock < 0:
            return "INVALID_STOCK", "stock must not be negative"
        last = self.last_update.get((product.offer_id, warehouse))
        if last is not None and self.clock() - last < self.config.item_window_s:
            self.state.violation("item_frequency")
            window = f"{self.config.item_window_s:g}"
            return "TOO_MANY_REQUESTS", f"Stock is updated too frequently: once per {window} s"
        if self.faults.roll(self.faults.faults.item_error_rate):
            return "INTERNAL_ERROR", "Internal error (injected)"
        return "", ""

    async def stocks_info(self, body: dict[str, Any]) -> Response:
        """``POST /v4/product/info/stocks``: the chosen products' FBS stock, in cursor pages."""
        limit = page_limit(body)
        flt = required_filter(body)
        offers = filter_strings(flt, "offer_id")
        ids = {int(v) for v in filter_strings(flt, "product_id") if v.isdigit()}
        chosen = [
            p
            for p in self.book.products.all()
            if (not offers and not ids) or p.offer_id in offers or p.product_id in ids
        ]
        cursor = body.get("cursor") or "0"
        start = int(cursor) if isinstance(cursor, str) and cursor.isdigit() else 0
        page = chosen[start : start + limit]
        following = start + len(page)
        return JSONResponse(
            {
                "cursor": str(following) if following < len(chosen) else "",
                "total": len(chosen),
                "items": [self.book.info_item(p) for p in page],
            }
        )

    async def stocks_by_warehouse(self, body: dict[str, Any]) -> Response:
        """``POST /v1/product/info/stocks-by-warehouse/fbs``: rows per SKU and warehouse."""
        skus = body.get("sku")
        if not isinstance(skus, list) or not all(str(s).isdigit() for s in skus):
            raise BadRequestError("sku: list of SKUs is required")
        return JSONResponse({"result": self.book.warehouse_rows({int(s) for s in skus})})

    async def stocks_by_warehouse_v2(self, body: dict[str, Any]) -> Response:
        """``POST /v2/product/info/stocks-by-warehouse/fbs``: rows of the named products, one
        per product and warehouse, in cursor pages of ``limit`` rows."""
        limit = page_limit(body)
        offers = _string_list(body, "offer_id")
        skus = _string_list(body, "sku")
        if not offers and not skus:
            raise BadRequestError("offer_id or sku: at least one value is required")
        if not all(s.isdigit() for s in skus):
            raise BadRequestError("sku: list of SKUs is required")
        chosen = [p for p in self.book.products.all() if p.offer_id in offers or str(p.sku) in skus]
        rows = self.book.warehouse_products(chosen)
        cursor = body.get("cursor") or "0"
        start = int(cursor) if isinstance(cursor, str) and cursor.isdigit() else 0
        page = rows[start : start + limit]
        following = start + len(page)
        has_next = following < len(rows)
        return JSONResponse(
            {"cursor": str(following) if has_next else "", "has_next": has_next, "products": page}
        )


def _string_list(body: dict[str, Any], key: str) -> set[str]:
    values = body.get(key) or []
    if not isinstance(values, list):
        raise BadRequestError(f"{key}: must be a list")
    return {str(v) for v in values}
