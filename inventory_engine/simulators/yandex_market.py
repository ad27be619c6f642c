"""Yandex Market simulator: the Partner API's stock and order operations, true to reference §3.

Marketplace routes (shapes per ``shared/specs/yandex-market-subset.json``):

* ``PUT /v2/campaigns/{campaignId}/offers/stocks``: 1..2000 unique ``skus``, exactly one item
  each, ``count`` 0..2 000 000 000, 100 000 SKUs per minute (counted on ``req.skus``).
* ``POST /v3/businesses/{businessId}/offers/stocks/update``: 1..2000 ``skuItems`` with unique
  (``sku``, ``partnerWarehouseId``) pairs, 50 requests per minute (its own limit, 420 beyond).
* ``POST /v2/campaigns/{campaignId}/offers/stocks``: the read-back (``offerIds`` ≤ 500, or
  pages of ``limit``: default 50, a larger ``limit`` than 100 is cut to 100, as YM does since
  4 Aug 2026).
* ``POST /v1/businesses/{businessId}/orders``: orders by id, status and date (≤ 30 days).

Every error is YM's wrapper ``{"status": "ERROR", "errors": [{"code", "message"}]}``; every
limit hit is HTTP 420 with ``X-RateLimit-Resource-*`` headers. The global "N parallel requests"
limit counts requests in flight per campaign or cabinet (by the path), 4 as YM's limits page
says in 2026 ("Hit rate limit of 4 parallel requests for campaignId 12345").

Choices where YM documents nothing: an offer outside the seeded catalog is refused with a 400
for the whole batch (YM names no item either); with no catalog seeded every offer is accepted.
As on YM, an order lowers AVAILABLE and a cancel before packing restores it: AVAILABLE is the
pushed count minus the units of orders created since that push that still hold stock (a
cancel from READY_TO_SHIP does not give units back until the seller pushes again). A cancel
sends ORDER_STATUS_UPDATED (with the substatus) and then ORDER_CANCELLED (whether YM sends
both is UNCONFIRMED).

Admin routes: ``POST /_sim/offers``, the order and notification routes of
:mod:`inventory_engine.simulators.yandex_market_orders` (``/_sim/orders``,
``/_sim/orders/{id}/status``, ``/_sim/notify-ping``, ``/_sim/notifications``), and the shared
``/_sim/state|received|faults|reset``.

This module builds the app and guards every marketplace route; the parts are beside it:
settings in :mod:`.yandex_market_config`, what the store holds (limits, stock, 420 answers) in
:mod:`.yandex_market_store`, error answers and request checks in
:mod:`.yandex_market_requests`, the stock methods in :mod:`.yandex_market_stock_api`, the
order list in :mod:`.yandex_market_order_api`, orders and notifications in
:mod:`.yandex_market_orders`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from inventory_engine.simulators.base import admin_routes, injected_failure
from inventory_engine.simulators.yandex_market_config import (
    SANDBOX_API_KEY,
    SANDBOX_BUSINESS_ID,
    SANDBOX_CAMPAIGN_ID,
    SANDBOX_WAREHOUSE_ID,
    YandexMarketSimConfig,
)
from inventory_engine.simulators.yandex_market_order_api import list_orders
from inventory_engine.simulators.yandex_market_orders import (
    DEFAULT_SUBSTATUS,
    MSK,
    SHIPPED,
    order_routes,
)
from inventory_engine.simulators.yandex_market_requests import BadRequestError, error_response
from inventory_engine.simulators.yandex_market_stock_api import (
    SKU_PATTERN,
    get_stocks,
    put_stocks,
    update_stocks_v3,
)
from inventory_engine.simulators.yandex_market_store import ERROR_CODES, Market

__all__ = [  # re-exported: these names lived here before the simulator was split by job
    "DEFAULT_SUBSTATUS",
    "ERROR_CODES",
    "MSK",
    "SANDBOX_API_KEY",
    "SANDBOX_BUSINESS_ID",
    "SANDBOX_CAMPAIGN_ID",
    "SANDBOX_WAREHOUSE_ID",
    "SHIPPED",
    "SKU_PATTERN",
    "YandexMarketSimConfig",
    "create_app",
]

Handler = Callable[[Request, Market], Awaitable[Response]]
"""A marketplace route's handler: the request and the store it acts on."""


def _api(market: Market, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a marketplace route: parallel limit, injected faults, auth, YM's 400 shape."""

    async def endpoint(request: Request) -> Response:
        limit = market.config.max_parallel
        entity = _limited_entity(request)
        if market.in_flight[entity] >= limit:
            market.state.violation("rate_limit")
            market.state.count("parallel_limited")
            message = f"Hit rate limit of {limit} parallel requests for {entity}"
            return market.limited(message, limit, 1)
        market.in_flight[entity] += 1
        try:
            failure = await injected_failure(
                market.faults,
                rate_limited=lambda: market.limited("Hit rate limit (injected)", 1, 1),
                error=market.failure,
            )
            if failure is not None:
                return failure
            key = request.headers.get("Api-Key")
            if key != market.config.api_key:
                market.state.violation("auth")
                message = "Api-Key token is invalid" if key else "Credentials are not specified"
                return error_response(401, "UNAUTHORIZED", message)
            try:
                return await handler(request, market)
            except BadRequestError as exc:
                market.state.violation(exc.violation)
                return error_response(400, "BAD_REQUEST", exc.message)
        finally:
            market.in_flight[entity] -= 1

    return endpoint


def _limited_entity(request: Request) -> str:
    """What YM's parallel limit counts on: the campaign or the cabinet named in the path."""
    for name in ("campaignId", "businessId"):
        if name in request.path_params:
            return f"{name} {request.path_params[name]}"
    return "login"


def _offer_routes(market: Market) -> list[Route]:
    """``POST /_sim/offers``: add offers to the campaign's catalog (seeding one if none)."""

    async def seed_offers(request: Request) -> Response:
        body = await request.json()
        market.catalog = (market.catalog or set()) | {str(o) for o in body.get("offerIds", [])}
        return JSONResponse({"offers": sorted(market.catalog)})

    return [Route("/_sim/offers", seed_offers, methods=["POST"])]


def create_app(
    config: YandexMarketSimConfig | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Starlette:
    """The simulator as an ASGI app.

    Args:
        config: credentials, ids and limits; defaults to the sandbox values.
        clock: monotonic seconds for the rate limits (tests advance it instead of sleeping).
        wall_clock: "now" for order dates and the ``X-RateLimit-Resource-Until`` header.

    Returns:
        The app; ``app.state.market`` holds the simulated store.
    """
    market = Market(config or YandexMarketSimConfig(), clock, wall_clock)
    stocks = "/v2/campaigns/{campaignId}/offers/stocks"
    routes = [
        Route(stocks, _api(market, put_stocks), methods=["PUT"]),
        Route(stocks, _api(market, get_stocks), methods=["POST"]),
        Route(
            "/v3/businesses/{businessId}/offers/stocks/update",
            _api(market, update_stocks_v3),
            methods=["POST"],
        ),
        Route("/v1/businesses/{businessId}/orders", _api(market, list_orders), methods=["POST"]),
        *_offer_routes(market),
        *order_routes(market.book),
        *admin_routes(market.state, market.faults, on_reset=market.reset),
    ]
    app = Starlette(routes=routes)
    app.state.market = market
    return app
