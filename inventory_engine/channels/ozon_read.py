"""Ozon stock read-back: what Ozon shows for some offers on one FBS warehouse.

Two forms, picked by ``OzonSettings.stock_read_api``:

* ``v2`` (default): ``POST /v2/product/info/stocks-by-warehouse/fbs`` takes the offer ids
  themselves (``offer_id``, with ``limit`` and a ``cursor``; answer ``products[]`` with
  ``present``, ``reserved`` and ``free_stock`` per warehouse, ``has_next``/``cursor``). One call
  per page. Ozon's news 648 (March 2026) put it in place of the v1 method, which Ozon's method
  list says was switched off on 7 Apr 2026.
* ``v1``: the v1 method takes Ozon SKUs, so ``/v4/product/info/stocks`` first resolves
  offer_id -> sku (it sums a warehouse *type* over all warehouses, so it cannot serve alone),
  then ``POST /v1/product/info/stocks-by-warehouse/fbs`` gives ``present``/``reserved``.

Ozon reserves for its own postings and the pushed ``stock`` excludes them, so the figure to
compare with a push is ``sellable``: ``free_stock`` when Ozon sends it ("available for sale"),
else ``present - reserved``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel

from inventory_engine.channels.base import ChannelStock, chunks
from inventory_engine.channels.ozon_models import (
    InfoAnswer,
    InfoItem,
    WarehouseAnswer,
    WarehouseProduct,
    WarehouseV2Answer,
)

StockReadApi = Literal["v1", "v2"]
STOCKS_INFO_PATH = "/v4/product/info/stocks"
STOCKS_BY_WAREHOUSE_PATH = "/v1/product/info/stocks-by-warehouse/fbs"
STOCKS_BY_WAREHOUSE_V2_PATH = "/v2/product/info/stocks-by-warehouse/fbs"
INFO_PAGE_LIMIT = 1_000
"""``limit`` of ``/v4/product/info/stocks`` (1..1000), also the offer ids per filter."""
READ_SKU_CHUNK = 100
"""SKUs per v1 by-warehouse call; Ozon documents no maximum (UNCONFIRMED)."""
V2_PAGE_LIMIT = 100
"""``limit`` and offer ids per v2 call. The spec marks ``limit`` required without a maximum in
the copies seen; 100 stays inside any maximum seen in clients (100 and 1000) (UNCONFIRMED)."""
MAX_PAGES = 50
"""Guard against a cursor that never ends."""

_M = TypeVar("_M", bound=BaseModel)
Request = Callable[[str, dict[str, Any]], httpx.Response]
Parse = Callable[[type[_M], httpx.Response], _M]


def read_stock(
    api: StockReadApi,
    request: Request,
    parse: Parse[Any],
    warehouse_id: int,
    item_ids: Sequence[str],
) -> dict[str, ChannelStock]:
    """What Ozon shows for ``item_ids`` (offer ids) on ``warehouse_id``, by ``api``."""
    wanted = list(dict.fromkeys(i for i in item_ids if i))
    if api == "v2":
        return _read_v2(request, parse, warehouse_id, wanted)
    return _read_v1(request, parse, warehouse_id, wanted)


def sellable_of(row: WarehouseProduct) -> int:
    """``free_stock`` when Ozon sends it, else ``present - reserved``."""
    if row.free_stock is not None:
        return row.free_stock
    return row.present - row.reserved


def _read_v2(
    request: Request, parse: Parse[Any], warehouse_id: int, wanted: list[str]
) -> dict[str, ChannelStock]:
    """An offer with no row for this warehouse reads as 0 if Ozon knows it (rows elsewhere, or
    an SKU in ``/v4/product/info/stocks``, asked only for offers without any row), as in v1;
    an offer Ozon does not know is left out."""
    rows: dict[str, list[WarehouseProduct]] = {}
    for chunk in chunks(wanted, V2_PAGE_LIMIT):
        asked = set(chunk)
        for row in _v2_rows(request, parse, chunk):
            if row.offer_id in asked:
                rows.setdefault(row.offer_id, []).append(row)
    found: dict[str, ChannelStock] = {}
    for offer, offer_rows in rows.items():
        here = [r for r in offer_rows if r.warehouse_id == warehouse_id]
        present = sum(r.present for r in here)
        reserved = sum(r.reserved for r in here)
        sellable = sum(sellable_of(r) for r in here)
        found[offer] = ChannelStock(offer, sellable, present, reserved)
    missing = [offer for offer in wanted if offer not in found]
    for chunk in chunks(missing, INFO_PAGE_LIMIT):
        asked = set(chunk)
        for item in _info_items(request, parse, chunk):
            if fbs_sku(item) and item.offer_id in asked:
                found[item.offer_id] = ChannelStock(item.offer_id, 0, 0, 0)
    return found


def _v2_rows(
    request: Request, parse: Parse[Any], offer_ids: list[str]
) -> Iterator[WarehouseProduct]:
    cursor = ""
    for _ in range(MAX_PAGES):
        body = {"cursor": cursor, "limit": V2_PAGE_LIMIT, "offer_id": offer_ids}
        page: WarehouseV2Answer = parse(
            WarehouseV2Answer, request(STOCKS_BY_WAREHOUSE_V2_PATH, body)
        )
        yield from page.products
        if not page.has_next or not page.cursor or page.cursor == cursor:
            return
        cursor = page.cursor


def _read_v1(
    request: Request, parse: Parse[Any], warehouse_id: int, wanted: list[str]
) -> dict[str, ChannelStock]:
    """An offer Ozon does not know, or has no SKU for yet, is left out; a known SKU with no
    row for this warehouse reads as 0 (Ozon lists only warehouses that hold stock)."""
    offer_by_sku: dict[int, str] = {}
    for chunk in chunks(wanted, INFO_PAGE_LIMIT):
        asked = set(chunk)
        for item in _info_items(request, parse, chunk):
            sku = fbs_sku(item)
            if sku and item.offer_id in asked:
                offer_by_sku[sku] = item.offer_id
    found = {
        offer: ChannelStock(offer, sellable=0, present=0, reserved=0)
        for offer in offer_by_sku.values()
    }
    for skus in chunks(list(offer_by_sku), READ_SKU_CHUNK):
        body = {"sku": [str(sku) for sku in skus]}
        answer: WarehouseAnswer = parse(WarehouseAnswer, request(STOCKS_BY_WAREHOUSE_PATH, body))
        for row in answer.result:
            offer = offer_by_sku.get(row.sku)
            if offer is None or row.warehouse_id != warehouse_id:
                continue
            present = (found[offer].present or 0) + row.present
            reserved = (found[offer].reserved or 0) + row.reserved
            found[offer] = ChannelStock(offer, present - reserved, present, reserved)
    return found


def _info_items(request: Request, parse: Parse[Any], offer_ids: list[str]) -> Iterator[InfoItem]:
    cursor = ""
    for _ in range(MAX_PAGES):
        body = {
            "cursor": cursor,
            "filter": {"offer_id": offer_ids, "visibility": "ALL"},
            "limit": INFO_PAGE_LIMIT,
        }
        page: InfoAnswer = parse(InfoAnswer, request(STOCKS_INFO_PATH, body))
        yield from page.items
        if not page.items or not page.cursor or page.cursor == cursor:
            return
        cursor = page.cursor


def fbs_sku(item: InfoItem) -> int:
    """The item's FBS SKU, else any SKU it has, else 0."""
    skus = [s.sku for s in item.stocks if s.sku > 0]
    fbs = [s.sku for s in item.stocks if s.sku > 0 and s.type.lower() == "fbs"]
    return (fbs or skus or [0])[0]
