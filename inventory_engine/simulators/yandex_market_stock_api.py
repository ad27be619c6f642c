"""The Yandex Market simulator's stock methods: the push and its read-back.

* ``PUT /v2/campaigns/{campaignId}/offers/stocks``: 1..``max_skus`` unique ``skus``, exactly
  one item each, ``count`` 0..``max_count``, ``skus_per_window`` SKUs per ``window_s``
  (counted on ``req.skus``). An offer outside the seeded catalog is refused with a 400 for the
  whole batch (YM documents nothing here, nor names the item); with no catalog seeded every
  offer is accepted.
* ``POST /v3/businesses/{businessId}/offers/stocks/update``: 1..``max_skus`` ``skuItems``
  ``{sku, partnerWarehouseId, count, updatedAt}`` with unique (sku, warehouse) pairs,
  ``v3_requests_per_window`` requests per ``window_s`` (420 beyond). The warehouse must be the
  store's (else 400; YM's wording is UNCONFIRMED); it answers ``{"status": "OK"}`` as v2 does
  (UNCONFIRMED). Entries are checked as the v2 ones are.
* ``POST /v2/campaigns/{campaignId}/offers/stocks``: the read-back (``offerIds`` ≤
  ``max_read_offer_ids``, or pages of ``limit``: default ``default_read_limit``, larger than
  ``max_read_limit`` cut down to it as YM does since 4 Aug 2026, no error).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from inventory_engine.simulators.yandex_market_orders import ym_time
from inventory_engine.simulators.yandex_market_requests import (
    BadRequestError,
    bounded_list,
    error_response,
    json_body,
    page_start,
    page_token_at,
    parse_time,
    query_limit,
    query_page_token,
)
from inventory_engine.simulators.yandex_market_store import Market

SKU_PATTERN = re.compile(r"^(?=.*\S.*)[^\x00-\x08\x0A-\x1f\x7f]{1,255}$")


def campaign_missing(request: Request, market: Market) -> Response | None:
    """YM's 404 when the path names another campaign than the store's; None when it is ours."""
    campaign = request.path_params["campaignId"]
    if campaign != str(market.config.campaign_id):
        return error_response(404, "NOT_FOUND", f"Campaign not found: '{campaign}'")
    return None


async def put_stocks(request: Request, market: Market) -> Response:
    """``PUT .../offers/stocks``: every entry is checked before any is taken."""
    if (missing := campaign_missing(request, market)) is not None:
        return missing
    entries = stock_entries(await json_body(request), market)
    c = market.config
    wait = market.stock_bucket.take(len(entries))
    remaining = int(market.stock_bucket.tokens)
    if wait > 0:
        market.state.violation("rate_limit")
        message = f"Hit rate limit of {c.skus_per_window} skus per {c.window_s:g} s"
        return market.limited(message, c.skus_per_window, wait, remaining)
    default_time = ym_time(market.now())
    for sku, count, updated in entries:
        market.state.accept(str(c.campaign_id), sku, count)
        market.pushes[sku] = (count, next(market.seq), updated or default_time)
    market.state.count("stock_requests")
    headers = {
        "X-RateLimit-Resource-Limit": str(c.skus_per_window),
        "X-RateLimit-Resource-Remaining": str(remaining),
    }
    return JSONResponse({"status": "OK"}, headers=headers)


def stock_entries(body: dict[str, Any], market: Market) -> list[tuple[str, int, str | None]]:
    """(sku, count, updatedAt or None) of each entry of a push, or :class:`BadRequestError`
    for the first entry YM would refuse."""
    c = market.config
    skus = body.get("skus")
    if not isinstance(skus, list) or not skus:
        raise BadRequestError("Collection of field must not be empty: skus")
    if len(skus) > c.max_skus:
        raise BadRequestError(
            f"Value / length of field (skus) must be between 1 and {c.max_skus}", "batch_size"
        )
    entries: list[tuple[str, int, str | None]] = []
    seen: set[str] = set()
    for entry in skus:
        sku = entry.get("sku") if isinstance(entry, dict) else None
        if not isinstance(sku, str) or not SKU_PATTERN.match(sku):
            raise BadRequestError("Value of field (sku) must match the pattern")
        if sku in seen:
            raise BadRequestError(f"Duplicate sku in request: '{sku}'", "duplicate_sku")
        seen.add(sku)
        items = entry.get("items")
        if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
            raise BadRequestError("Value / length of field (items) must be between 1 and 1")
        count = items[0].get("count")
        if isinstance(count, bool) or not isinstance(count, int):
            raise BadRequestError("Missing field: count")
        if not 0 <= count <= c.max_count:
            raise BadRequestError(
                f"Value of field (count) must be between 0 and {c.max_count}", "count_range"
            )
        updated = items[0].get("updatedAt")
        if updated is not None:
            parse_time(updated, "updatedAt")
        if market.catalog is not None and sku not in market.catalog:
            raise BadRequestError(f"Offer not found in the catalog: '{sku}'", "unknown_sku")
        entries.append((sku, count, updated))
    return entries


async def get_stocks(request: Request, market: Market) -> Response:
    """``POST .../offers/stocks``: the named offers (all at once), or every offer in pages."""
    if (missing := campaign_missing(request, market)) is not None:
        return missing
    body = await json_body(request, required=False)
    c = market.config
    offer_ids = bounded_list(body, "offerIds", c.max_read_offer_ids)
    next_token = None
    if offer_ids is not None:
        if len(set(map(str, offer_ids))) != len(offer_ids):
            raise BadRequestError("Value of field (offerIds) must contain unique items")
        offers = [str(o) for o in offer_ids if market.known(str(o))]  # the whole list, no pages
    else:
        everything = sorted(set(market.pushes) | (market.catalog or set()))
        start = page_start(query_page_token(request))
        limit = query_limit(request, c.max_read_limit, c.default_read_limit, truncate=True)
        offers = everything[start : start + limit]
        if start + limit < len(everything):
            next_token = page_token_at(start + limit)
    wait = market.read_bucket.take(len(offers))
    if wait > 0:
        market.state.violation("rate_limit")
        return market.limited("Hit rate limit of offers per minute", c.read_offers_per_window, wait)
    warehouse = {"warehouseId": c.warehouse_id, "offers": [market.offer_json(o) for o in offers]}
    result: dict[str, Any] = {"warehouses": [warehouse] if offers else []}
    if next_token:
        result["paging"] = {"nextPageToken": next_token}
    return JSONResponse({"status": "OK", "result": result})


async def update_stocks_v3(request: Request, market: Market) -> Response:
    """``POST /v3/businesses/{businessId}/offers/stocks/update``: its own 50 requests/min."""
    c = market.config
    business = request.path_params["businessId"]
    if business != str(c.business_id):
        return error_response(404, "NOT_FOUND", f"Business not found: '{business}'")
    wait = market.v3_bucket.take(1)
    if wait > 0:
        market.state.violation("rate_limit")
        message = f"Hit rate limit of {c.v3_requests_per_window} requests per {c.window_s:g} s"
        return market.limited(message, c.v3_requests_per_window, wait)
    entries = v3_entries(await json_body(request), market)
    default_time = ym_time(market.now())
    for sku, count, updated in entries:
        market.state.accept(str(c.campaign_id), sku, count)
        market.pushes[sku] = (count, next(market.seq), updated or default_time)
    market.state.count("stock_requests")
    headers = {
        "X-RateLimit-Resource-Limit": str(c.v3_requests_per_window),
        "X-RateLimit-Resource-Remaining": str(int(market.v3_bucket.tokens)),
    }
    return JSONResponse({"status": "OK"}, headers=headers)


def v3_entries(body: dict[str, Any], market: Market) -> list[tuple[str, int, str | None]]:
    """(sku, count, updatedAt or None) of each ``skuItems`` entry, or :class:`BadRequestError`
    for the first one YM would refuse; rewritten in the v2 shape and checked as v2 entries."""
    c = market.config
    items = body.get("skuItems")
    if not isinstance(items, list) or not items:
        raise BadRequestError("Collection of field must not be empty: skuItems")
    if len(items) > c.max_skus:
        raise BadRequestError(
            f"Value / length of field (skuItems) must be between 1 and {c.max_skus}", "batch_size"
        )
    pairs: set[tuple[Any, Any]] = set()
    as_v2: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            raise BadRequestError("Value of field (skuItems) must be objects")
        warehouse = item.get("partnerWarehouseId")
        if isinstance(warehouse, bool) or not isinstance(warehouse, int):
            raise BadRequestError("Missing field: partnerWarehouseId")
        if warehouse != c.warehouse_id:
            raise BadRequestError(f"Warehouse not found: {warehouse}", "unknown_warehouse")
        pair = (item.get("sku"), warehouse)
        if pair in pairs:
            raise BadRequestError(f"Duplicate sku and partnerWarehouseId: {pair}", "duplicate_sku")
        pairs.add(pair)
        fields = {k: item[k] for k in ("count", "updatedAt") if k in item}
        as_v2.append({"sku": item.get("sku"), "items": [fields]})
    return stock_entries({"skus": as_v2}, market)
