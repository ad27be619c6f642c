"""Ozon Seller API simulator: FBS stock, stock read-back, FBS postings and push notifications.

Behaves as reference §1 says Ozon does, with every limit counted when broken:

* ``POST /v2/products/stocks``: at most 100 pairs (else HTTP 400, violation ``batch_size``), 80
  requests/min per Client-Id (else HTTP 429 ``code: 8``, violation ``rate_limit``), one update
  per (offer, warehouse) per 30 s (else item error ``TOO_MANY_REQUESTS`` inside HTTP 200,
  violation ``item_frequency``), ``stock`` < 1 000 000 (else ``STOCK_TOO_BIG``), a known
  ``offer_id`` (else ``offer_id_not_found``) and warehouse (else ``WAREHOUSE_NOT_FOUND``).
* every method: ``Client-Id``/``Api-Key`` (else 403, violation ``auth``) and 50 requests/s.
* Ozon reserves for its own postings: while a posting is unfulfilled its units count as
  ``reserved`` and ``present = pushed stock + reserved``; when it is handed over, ``present``
  and ``reserved`` both drop; a cancel before that frees the reservation.

Products (``offer_id`` <-> ``product_id`` <-> ``sku``) come from the config or
``POST /_sim/products`` (ids left out there come from ``catalog`` if one is given, as the
sandbox gives the engine's, else are made up); postings from ``POST /_sim/postings`` and move with
``POST /_sim/postings/{n}/status``. With ``notify_url`` set, each posting change is also pushed
there as Ozon's notification (fire-and-forget, counted in ``notifications_sent|failed``).
Error bodies have Ozon's generic shape ``{"code", "message", "details"}`` (gRPC codes).

This module builds the app and guards every marketplace route; the parts are beside it:
settings in :mod:`.ozon_config`, error answers and body checks in :mod:`.ozon_requests`, the
stock methods in :mod:`.ozon_stock_api`, the posting methods in :mod:`.ozon_posting_api`, the
``/_sim`` routes in :mod:`.ozon_admin`, notifications in :mod:`.ozon_notifier`, products in
:mod:`.ozon_products`, and postings with the reservation rules in :mod:`.ozon_postings`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inventory_engine.simulators.base import (
    ClockIds,
    FaultInjector,
    SimulatorState,
    TokenBucket,
    admin_routes,
    injected_failure,
)
from inventory_engine.simulators.ozon_admin import ozon_admin_routes
from inventory_engine.simulators.ozon_config import (
    SANDBOX_API_KEY,
    SANDBOX_CLIENT_ID,
    SANDBOX_SELLER_ID,
    SANDBOX_WAREHOUSE_ID,
    OzonSimConfig,
)
from inventory_engine.simulators.ozon_notifier import NOTIFY_TIMEOUT_S, OzonNotifier
from inventory_engine.simulators.ozon_posting_api import MAX_PERIOD, OzonPostingApi
from inventory_engine.simulators.ozon_postings import (
    CANCELLED,
    CUTOFF_AFTER,
    PRE_PACK,
    PUSH_STATES,
    RESERVING,
    STATUSES,
    UNFULFILLED,
    PostingBook,
    SimPosting,
)
from inventory_engine.simulators.ozon_products import OzonCatalog, SimProduct
from inventory_engine.simulators.ozon_requests import (
    INTERNAL,
    INVALID_ARGUMENT,
    MAX_PAGE_LIMIT,
    NOT_FOUND,
    PERMISSION_DENIED,
    RATE_LIMIT_MESSAGE,
    RESOURCE_EXHAUSTED,
    BadRequestError,
    error,
)
from inventory_engine.simulators.ozon_stock_api import STOCK_CEILING, OzonStockApi

__all__ = [  # re-exported: these names lived here before the simulator was split by job
    "CANCELLED",
    "CUTOFF_AFTER",
    "INTERNAL",
    "INVALID_ARGUMENT",
    "MAX_PAGE_LIMIT",
    "MAX_PERIOD",
    "NOTIFY_TIMEOUT_S",
    "NOT_FOUND",
    "PERMISSION_DENIED",
    "PRE_PACK",
    "PUSH_STATES",
    "RATE_LIMIT_MESSAGE",
    "RESERVING",
    "RESOURCE_EXHAUSTED",
    "SANDBOX_API_KEY",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_SELLER_ID",
    "SANDBOX_WAREHOUSE_ID",
    "STATUSES",
    "STOCK_CEILING",
    "UNFULFILLED",
    "OzonCatalog",
    "OzonSimConfig",
    "PostingBook",
    "SimPosting",
    "SimProduct",
    "create_app",
    "error",
]

MarketplaceHandler = Callable[[dict[str, Any]], Awaitable[Response]]
"""A marketplace route's handler: the request's JSON object body in, the answer out."""


class _OzonSimulator:
    """The simulated account: its book, the route handlers, the notifier and the global limit."""

    def __init__(
        self,
        config: OzonSimConfig,
        state: SimulatorState,
        faults: FaultInjector,
        clock: Callable[[], float],
        now: Callable[[], datetime],
    ) -> None:
        self.config, self.state, self.faults, self.clock = config, state, faults, clock
        self.book = PostingBook(
            config.warehouses,
            now=now,
            auto_products=config.auto_products,
            catalog=config.catalog,
            numbers=ClockIds(lambda: now().timestamp()) if config.unique_ids else None,
        )
        self.notifier = OzonNotifier(config, state)
        self.stock = OzonStockApi(config, state, faults, clock, self.book)
        self.postings = OzonPostingApi(self.book)
        self.reset()

    def reset(self) -> None:
        self.state.reset()
        self.book.reset(self.config.products)
        self.stock.reset()
        self.notifier.reset()
        rps = self.config.requests_per_second
        self.global_bucket = TokenBucket(rps, rps, clock=self.clock)

    def api(self, handler: MarketplaceHandler) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a marketplace route: faults, auth, the global rate limit and a JSON object body."""

        async def endpoint(request: Request) -> Response:
            failure = await injected_failure(
                self.faults,
                rate_limited=lambda: error(429, RESOURCE_EXHAUSTED, RATE_LIMIT_MESSAGE),
                error=lambda status, message: error(status, INTERNAL, message),
            )
            if failure is not None:
                return failure
            self.state.count("requests")
            headers = request.headers
            if (
                headers.get("Client-Id") != self.config.client_id
                or headers.get("Api-Key") != self.config.api_key
            ):
                self.state.violation("auth")
                return error(403, PERMISSION_DENIED, "Invalid Api-Key, please contact support")
            if self.global_bucket.take():
                self.state.violation("rate_limit")
                return error(429, RESOURCE_EXHAUSTED, RATE_LIMIT_MESSAGE)
            try:
                body = await request.json()
            except ValueError:
                return error(400, INVALID_ARGUMENT, "invalid JSON body")
            if not isinstance(body, dict):
                return error(400, INVALID_ARGUMENT, "body must be a JSON object")
            try:
                return await handler(body)
            except BadRequestError as exc:
                return error(400, INVALID_ARGUMENT, str(exc))

        return endpoint


def create_app(
    config: OzonSimConfig | None = None,
    *,
    state: SimulatorState | None = None,
    faults: FaultInjector | None = None,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Starlette:
    """Build the simulator app.

    Args:
        config: credentials, catalog and limits; reference defaults when omitted.
        state: where stock, received values and counters go (a fresh one when omitted).
        faults: fault injection (none by default; ``PUT /_sim/faults`` changes it).
        clock: monotonic seconds, for the per-item 30 s window and the rate limits.
        now: aware UTC wall clock, for posting times and date filters.

    Returns:
        The Starlette app; ``app.state.simulator`` is the live simulator object.
    """
    faults = faults or FaultInjector()
    sim = _OzonSimulator(config or OzonSimConfig(), state or SimulatorState(), faults, clock, now)
    api, stock, postings = sim.api, sim.stock, sim.postings
    routes = [
        Route("/v2/products/stocks", api(stock.push_stocks), methods=["POST"]),
        Route("/v4/product/info/stocks", api(stock.stocks_info), methods=["POST"]),
        Route(
            "/v1/product/info/stocks-by-warehouse/fbs",
            api(stock.stocks_by_warehouse),
            methods=["POST"],
        ),
        Route(
            "/v2/product/info/stocks-by-warehouse/fbs",
            api(stock.stocks_by_warehouse_v2),
            methods=["POST"],
        ),
        Route("/v3/posting/fbs/list", api(postings.list_postings), methods=["POST"]),
        Route("/v3/posting/fbs/unfulfilled/list", api(postings.list_unfulfilled), methods=["POST"]),
        Route("/v3/posting/fbs/get", api(postings.get_posting), methods=["POST"]),
        *ozon_admin_routes(sim.book, sim.notifier, sim.config.seller_id),
        *admin_routes(sim.state, faults, on_reset=sim.reset),
    ]
    app = Starlette(routes=routes)
    app.state.simulator = sim
    return app
