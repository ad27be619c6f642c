"""Yandex Market simulator: the Partner API's stock and order operations, true to reference §3.

Marketplace routes (shapes per ``shared/specs/yandex-market-subset.json``):

* ``PUT /v2/campaigns/{campaignId}/offers/stocks``: 1..2000 unique ``skus``, exactly one item
  each, ``count`` 0..2 000 000 000, 100 000 SKUs per minute (counted on ``req.skus``).
* ``POST /v2/campaigns/{campaignId}/offers/stocks``: the read-back (``offerIds`` ≤ 500, or
  pages of ``limit`` ≤ 200).
* ``POST /v1/businesses/{businessId}/orders``: orders by id, status and date (≤ 30 days).

Every error is YM's wrapper ``{"status": "ERROR", "errors": [{"code", "message"}]}``; every
limit hit is HTTP 420 with ``X-RateLimit-Resource-*`` headers. The global "N parallel requests"
limit counts requests in flight; the reference is UNCONFIRMED between 2 per login (docs crawl)
and ``parallel-limit-value: 6`` (spec), so ``max_parallel`` defaults to the spec's 6.

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
"""

from __future__ import annotations

import base64
import itertools
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from inventory_engine import sandbox_channels
from inventory_engine.simulators.base import (
    ClockIds,
    FaultInjector,
    Faults,
    SimulatorState,
    TokenBucket,
    admin_routes,
    injected_failure,
)
from inventory_engine.simulators.yandex_market_orders import (
    DEFAULT_SUBSTATUS,
    MSK,
    SHIPPED,
    OrderBook,
    order_routes,
    ym_time,
)

__all__ = [  # the order names are re-exported: they lived here before yandex_market_orders
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

# Credentials and ids the simulator accepts by default (the engine's sandbox mode uses them).
SANDBOX_API_KEY = sandbox_channels.YM_API_KEY
SANDBOX_CAMPAIGN_ID = sandbox_channels.YM_CAMPAIGN_ID
SANDBOX_BUSINESS_ID = sandbox_channels.YM_BUSINESS_ID
SANDBOX_WAREHOUSE_ID = sandbox_channels.YM_WAREHOUSE_ID

SKU_PATTERN = re.compile(r"^(?=.*\S.*)[^\x00-\x08\x0A-\x1f\x7f]{1,255}$")
ERROR_CODES = {500: "INTERNAL_ERROR", 502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE"}


@dataclass
class YandexMarketSimConfig:
    """Credentials, ids and limits (defaults as the reference gives them)."""

    api_key: str = SANDBOX_API_KEY
    campaign_id: int = SANDBOX_CAMPAIGN_ID
    business_id: int = SANDBOX_BUSINESS_ID
    warehouse_id: int = SANDBOX_WAREHOUSE_ID
    max_skus: int = 2_000
    max_count: int = 2_000_000_000
    skus_per_window: int = 100_000
    window_s: float = 60.0
    read_offers_per_window: int = 100_000
    orders_requests_per_window: int = 10_000
    orders_window_s: float = 3_600.0
    max_parallel: int = 6
    max_read_offer_ids: int = 500
    max_order_ids: int = 50
    max_period_days: int = 30
    offers: frozenset[str] | None = None
    """The campaign's catalog; None accepts any offer (sandbox convenience)."""
    notify_url: str | None = None
    """Where notifications are POSTed (the full URL, e.g. ``.../notification``)."""
    unique_ids: bool = False
    """Order ids from :class:`ClockIds`, never repeated by a simulator started again or reset
    (the sandbox: the engine's ledger outlives it). False: from 51000001 at every start and
    reset."""


class _BadRequest(Exception):
    def __init__(self, message: str, violation: str = "bad_request") -> None:
        self.message = message
        self.violation = violation
        super().__init__(message)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"status": "ERROR", "errors": [{"code": code, "message": message}]}
    return JSONResponse(body, status_code=status, headers=headers)


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        return int(text.removeprefix("offset:"))
    except ValueError:
        raise _BadRequest(f"Invalid page token: '{token}'") from None


class _Market:
    """Everything one simulated store holds; the route functions below only translate HTTP."""

    def __init__(
        self,
        config: YandexMarketSimConfig,
        clock: Callable[[], float],
        wall_clock: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.clock = clock
        self.now = wall_clock
        self.state = SimulatorState()
        self.faults = FaultInjector(Faults())
        self.book = OrderBook(
            self.state,
            settings=lambda: self.config,
            now=wall_clock,
            next_seq=lambda: next(self.seq),
            order_ids=ClockIds(lambda: wall_clock().timestamp()) if config.unique_ids else None,
        )
        self.reset()

    def reset(self) -> None:
        c = self.config
        self.stock_bucket = TokenBucket(
            c.skus_per_window, c.skus_per_window / c.window_s, clock=self.clock
        )
        self.read_bucket = TokenBucket(
            c.read_offers_per_window, c.read_offers_per_window / c.window_s, clock=self.clock
        )
        self.orders_bucket = TokenBucket(
            c.orders_requests_per_window,
            c.orders_requests_per_window / c.orders_window_s,
            clock=self.clock,
        )
        self.in_flight = 0
        self.catalog: set[str] | None = set(c.offers) if c.offers is not None else None
        self.pushes: dict[str, tuple[int, int, str]] = {}
        """offer -> (count, sequence number of the push, updatedAt)."""
        self.seq = itertools.count(1)
        """One sequence for pushes and orders: an order counts against the push before it."""
        self.book.reset()
        self.state.reset()

    # -- answers -----------------------------------------------------------------------------

    def limited(self, message: str, limit: int, wait_s: float, remaining: int = 0) -> Response:
        until = self.now() + timedelta(seconds=max(1, math.ceil(wait_s)))
        headers = {
            "X-RateLimit-Resource-Limit": str(limit),
            "X-RateLimit-Resource-Remaining": str(remaining),
            "X-RateLimit-Resource-Until": format_datetime(until.astimezone(UTC), usegmt=True),
        }
        return _error(420, "LIMIT_EXCEEDED", message, headers)

    def failure(self, status: int, message: str) -> Response:
        return _error(status, ERROR_CODES.get(status, "INTERNAL_ERROR"), message)

    # -- stock ---------------------------------------------------------------------------------

    def available(self, offer: str) -> tuple[int, int, int]:
        """(AVAILABLE, FREEZE, FIT) for a pushed offer."""
        count, pushed_seq, _ = self.pushes[offer]
        held, frozen = self.book.held_since(offer, pushed_seq)
        available = max(0, count - held)
        return available, frozen, available + frozen

    def offer_json(self, offer: str) -> dict[str, Any]:
        if offer not in self.pushes:
            return {"offerId": offer, "stocks": []}
        available, frozen, fit = self.available(offer)
        stocks = [
            {"type": "FIT", "count": fit},
            {"type": "FREEZE", "count": frozen},
            {"type": "AVAILABLE", "count": available},
        ]
        return {"offerId": offer, "stocks": stocks, "updatedAt": self.pushes[offer][2]}

    def known(self, offer: str) -> bool:
        return offer in self.pushes or (self.catalog is not None and offer in self.catalog)


# -- request parsing -----------------------------------------------------------------------------


async def _json_body(request: Request, *, required: bool = True) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        if required:
            raise _BadRequest("Missing field: request body")
        return {}
    try:
        body = await request.json()
    except ValueError as exc:
        raise _BadRequest(f"JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _BadRequest("JSON: the body must be an object")
    return body


def _bounded_list(body: dict[str, Any], name: str, maximum: int) -> list[Any] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= maximum:
        raise _BadRequest(f"Value / length of field ({name}) must be between 1 and {maximum}")
    return value


def _limit(request: Request, maximum: int, default: int, *, truncate: bool) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1 or (int(raw) > maximum and not truncate):
        raise _BadRequest(f"Value of field (limit) must be between 1 and {maximum}")
    return min(int(raw), maximum)


def _page_token(request: Request) -> str | None:
    params = request.query_params
    return params.get("pageToken") or params.get("page_token")


def _parse_time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise _BadRequest(f"Value of field ({name}) must be a date-time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _BadRequest(f"Value of field ({name}) must be a date-time") from None
    if moment.tzinfo is None:
        raise _BadRequest(f"Value of field ({name}) must have an offset")
    return moment


def _stock_entries(body: dict[str, Any], market: _Market) -> list[tuple[str, int, str | None]]:
    c = market.config
    skus = body.get("skus")
    if not isinstance(skus, list) or not skus:
        raise _BadRequest("Collection of field must not be empty: skus")
    if len(skus) > c.max_skus:
        raise _BadRequest(
            f"Value / length of field (skus) must be between 1 and {c.max_skus}", "batch_size"
        )
    entries: list[tuple[str, int, str | None]] = []
    seen: set[str] = set()
    for entry in skus:
        sku = entry.get("sku") if isinstance(entry, dict) else None
        if not isinstance(sku, str) or not SKU_PATTERN.match(sku):
            raise _BadRequest("Value of field (sku) must match the pattern")
        if sku in seen:
            raise _BadRequest(f"Duplicate sku in request: '{sku}'", "duplicate_sku")
        seen.add(sku)
        items = entry.get("items")
        if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
            raise _BadRequest("Value / length of field (items) must be between 1 and 1")
        count = items[0].get("count")
        if isinstance(count, bool) or not isinstance(count, int):
            raise _BadRequest("Missing field: count")
        if not 0 <= count <= c.max_count:
            raise _BadRequest(
                f"Value of field (count) must be between 0 and {c.max_count}", "count_range"
            )
        updated = items[0].get("updatedAt")
        if updated is not None:
            _parse_time(updated, "updatedAt")
        if market.catalog is not None and sku not in market.catalog:
            raise _BadRequest(f"Offer not found in the catalog: '{sku}'", "unknown_sku")
        entries.append((sku, count, updated))
    return entries


# -- the app -------------------------------------------------------------------------------------

Handler = Callable[[Request, _Market], Awaitable[Response]]


def _api(market: _Market, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a marketplace route: parallel limit, injected faults, auth, YM's 400 shape."""

    async def endpoint(request: Request) -> Response:
        limit = market.config.max_parallel
        if market.in_flight >= limit:
            market.state.violation("rate_limit")
            market.state.count("parallel_limited")
            return market.limited(f"Hit rate limit of {limit} parallel requests", limit, 1)
        market.in_flight += 1
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
                return _error(401, "UNAUTHORIZED", message)
            try:
                return await handler(request, market)
            except _BadRequest as exc:
                market.state.violation(exc.violation)
                return _error(400, "BAD_REQUEST", exc.message)
        finally:
            market.in_flight -= 1

    return endpoint


def _campaign_missing(request: Request, market: _Market) -> Response | None:
    campaign = request.path_params["campaignId"]
    if campaign != str(market.config.campaign_id):
        return _error(404, "NOT_FOUND", f"Campaign not found: '{campaign}'")
    return None


async def _put_stocks(request: Request, market: _Market) -> Response:
    if (missing := _campaign_missing(request, market)) is not None:
        return missing
    entries = _stock_entries(await _json_body(request), market)
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


async def _get_stocks(request: Request, market: _Market) -> Response:
    if (missing := _campaign_missing(request, market)) is not None:
        return missing
    body = await _json_body(request, required=False)
    c = market.config
    offer_ids = _bounded_list(body, "offerIds", c.max_read_offer_ids)
    next_token = None
    if offer_ids is not None:
        if len(set(map(str, offer_ids))) != len(offer_ids):
            raise _BadRequest("Value of field (offerIds) must contain unique items")
        offers = [str(o) for o in offer_ids if market.known(str(o))]  # the whole list, no pages
    else:
        everything = sorted(set(market.pushes) | (market.catalog or set()))
        start, limit = _offset(_page_token(request)), _limit(request, 200, 100, truncate=False)
        offers = everything[start : start + limit]
        if start + limit < len(everything):
            next_token = _token(start + limit)
    wait = market.read_bucket.take(len(offers))
    if wait > 0:
        market.state.violation("rate_limit")
        return market.limited("Hit rate limit of offers per minute", c.read_offers_per_window, wait)
    warehouse = {"warehouseId": c.warehouse_id, "offers": [market.offer_json(o) for o in offers]}
    result: dict[str, Any] = {"warehouses": [warehouse] if offers else []}
    if next_token:
        result["paging"] = {"nextPageToken": next_token}
    return JSONResponse({"status": "OK", "result": result})


def _date_window(dates: Any, market: _Market) -> tuple[datetime | None, datetime | None]:
    if dates is None:
        return None, None
    if not isinstance(dates, dict):
        raise _BadRequest("Value of field (dates) must be an object")
    start = dates.get("updateDateFrom")
    end = dates.get("updateDateTo")
    low = _parse_time(start, "updateDateFrom") if start is not None else None
    high = _parse_time(end, "updateDateTo") if end is not None else None
    days = market.config.max_period_days
    if low is not None and (high or market.now()) - low > timedelta(days=days):
        raise _BadRequest(f"Too long time period. Maximum is '{days}' days", "period")
    return low, high


async def _list_orders(request: Request, market: _Market) -> Response:
    c = market.config
    business = request.path_params["businessId"]
    if business != str(c.business_id):
        return _error(404, "NOT_FOUND", f"Business not found: '{business}'")
    body = await _json_body(request)
    limit = _limit(request, 50, 50, truncate=True)  # spec: a larger limit is truncated to 50
    order_ids = _bounded_list(body, "orderIds", c.max_order_ids)
    campaign_ids = _bounded_list(body, "campaignIds", 50)
    statuses = body.get("statuses")
    low, high = _date_window(body.get("dates"), market)
    wait = market.orders_bucket.take()
    if wait > 0:
        market.state.violation("rate_limit")
        return market.limited(
            f"Hit rate limit of {c.orders_requests_per_window} requests per hour for resource "
            "/v1/businesses/{businessId}/orders",
            c.orders_requests_per_window,
            wait,
        )
    chosen = market.book.select(
        order_ids=order_ids, campaign_ids=campaign_ids, statuses=statuses, low=low, high=high
    )
    start = _offset(_page_token(request))
    answer: dict[str, Any] = {"orders": [o.as_json() for o in chosen[start : start + limit]]}
    if start + limit < len(chosen):
        answer["paging"] = {"nextPageToken": _token(start + limit)}
    return JSONResponse(answer)


# -- admin ---------------------------------------------------------------------------------------


def _offer_routes(market: _Market) -> list[Route]:
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
    market = _Market(config or YandexMarketSimConfig(), clock, wall_clock)
    stocks = "/v2/campaigns/{campaignId}/offers/stocks"
    routes = [
        Route(stocks, _api(market, _put_stocks), methods=["PUT"]),
        Route(stocks, _api(market, _get_stocks), methods=["POST"]),
        Route("/v1/businesses/{businessId}/orders", _api(market, _list_orders), methods=["POST"]),
        *_offer_routes(market),
        *order_routes(market.book),
        *admin_routes(market.state, market.faults, on_reset=market.reset),
    ]
    app = Starlette(routes=routes)
    app.state.market = market
    return app
