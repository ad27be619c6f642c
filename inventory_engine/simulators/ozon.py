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
Products, postings and the reservation rules are in
:mod:`inventory_engine.simulators.ozon_postings`.
"""

from __future__ import annotations

import functools
import json
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from inventory_engine import sandbox_channels
from inventory_engine.simulators.base import (
    BackgroundTasks,
    ClockIds,
    FaultInjector,
    SimulatorState,
    TokenBucket,
    admin_routes,
    injected_failure,
    is_int,
)
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
    push_time,
)
from inventory_engine.simulators.ozon_products import OzonCatalog, SimProduct

__all__ = [  # the posting names are re-exported: they lived here before ozon_postings
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

# Credentials and ids the simulator accepts by default (the engine's sandbox mode uses them).
SANDBOX_CLIENT_ID = sandbox_channels.OZON_CLIENT_ID
SANDBOX_API_KEY = sandbox_channels.OZON_API_KEY
SANDBOX_WAREHOUSE_ID = sandbox_channels.OZON_WAREHOUSE_ID
SANDBOX_SELLER_ID = sandbox_channels.OZON_SELLER_ID

RATE_LIMIT_MESSAGE = "You have reached request rate limit per second"
INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, RESOURCE_EXHAUSTED, INTERNAL = 3, 5, 7, 8, 13
"""gRPC status codes, which Ozon's error body carries in ``code``."""
STOCK_CEILING = 1_000_000
"""``stock`` must be below this, else item error ``STOCK_TOO_BIG``."""
MAX_PAGE_LIMIT = 1_000
"""``limit`` of the list methods (1..1000)."""
MAX_PERIOD = timedelta(days=365)
"""Longest date window of the posting lists ("no more than one year")."""
NOTIFY_TIMEOUT_S = 5.0
"""Ozon gives a notification URL 5 s to answer."""


@dataclass
class OzonSimConfig:
    """Credentials, catalog and limits of the simulated seller account (reference defaults)."""

    client_id: str = SANDBOX_CLIENT_ID
    api_key: str = SANDBOX_API_KEY
    seller_id: int = SANDBOX_SELLER_ID
    warehouses: Mapping[int, str] = field(
        default_factory=lambda: {SANDBOX_WAREHOUSE_ID: "Sandbox FBS"}
    )
    products: Sequence[SimProduct] = ()
    auto_products: bool = False
    """Register an unknown ``offer_id`` on first push (demo convenience; Ozon refuses it)."""
    catalog: OzonCatalog | None = None
    """Where products registered without their ids get them (the sandbox: the engine's catalog,
    so that a posting's ``sku`` is the ``ozon_sku`` the engine maps back to the seller's SKU).
    A new posting takes its products' ids from it too, so a catalog imported or changed after
    the product was registered still counts. None: missing ids are made up."""
    max_batch: int = 100
    stock_requests_per_minute: float = 80
    requests_per_second: float = 50
    item_window_s: float = 30.0
    notify_url: str | None = None
    unique_ids: bool = False
    """Posting numbers and order ids from :class:`ClockIds`, never repeated by a simulator
    started again or reset (the sandbox: the engine's ledger outlives it). False: numbered from
    1 again at every start and reset."""


class _OzonSimulator:
    """The routes' shared state: catalog, pushed stock, windows, buckets and postings."""

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
        self.notifications: list[dict[str, Any]] = []
        self._background = BackgroundTasks()
        self.reset()

    def reset(self) -> None:
        self.state.reset()
        self.book.reset(self.config.products)
        self.last_update: dict[tuple[str, int], float] = {}
        self.notifications.clear()
        rpm = self.config.stock_requests_per_minute
        self.stock_bucket = TokenBucket(rpm, rpm / 60, clock=self.clock)
        rps = self.config.requests_per_second
        self.global_bucket = TokenBucket(rps, rps, clock=self.clock)

    # -- plumbing --------------------------------------------------------------------------------

    def api(
        self, handler: Callable[[dict[str, Any]], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
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
            except _BadRequestError as exc:
                return error(400, INVALID_ARGUMENT, str(exc))

        return endpoint

    # -- stock -----------------------------------------------------------------------------------

    async def push_stocks(self, body: dict[str, Any]) -> Response:
        if self.stock_bucket.take():
            self.state.violation("rate_limit")
            return error(429, RESOURCE_EXHAUSTED, RATE_LIMIT_MESSAGE)
        stocks = body.get("stocks")
        if not isinstance(stocks, list) or not stocks:
            raise _BadRequestError("stocks: value is required")
        if len(stocks) > self.config.max_batch:
            self.state.violation("batch_size")
            raise _BadRequestError(
                f"stocks: value must contain at most {self.config.max_batch} item(s)"
            )
        for item in stocks:
            if not isinstance(item, dict) or not is_int(item.get("warehouse_id")):
                raise _BadRequestError("stocks: warehouse_id is required")
            if not is_int(item.get("stock")):
                raise _BadRequestError("stocks: stock must be an integer")
            if not isinstance(item.get("offer_id"), str) and not is_int(item.get("product_id")):
                raise _BadRequestError("stocks: offer_id or product_id is required")
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
        limit = _limit(body)
        flt = body.get("filter")
        if not isinstance(flt, dict):
            raise _BadRequestError("filter: value is required")
        offers = _str_list(flt, "offer_id")
        ids = {int(v) for v in _str_list(flt, "product_id") if v.isdigit()}
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
        skus = body.get("sku")
        if not isinstance(skus, list) or not all(str(s).isdigit() for s in skus):
            raise _BadRequestError("sku: list of SKUs is required")
        return JSONResponse({"result": self.book.warehouse_rows({int(s) for s in skus})})

    # -- postings --------------------------------------------------------------------------------

    async def list_postings(self, body: dict[str, Any]) -> Response:
        limit, offset, flt = _limit(body), _offset(body), _filter(body)
        since, to = _time(flt, "since"), _time(flt, "to")
        if to - since > MAX_PERIOD:
            raise _BadRequestError("filter: the period must not exceed one year")
        changed = flt.get("last_changed_status_date")
        window = (_time(changed, "from"), _time(changed, "to")) if changed else None
        warehouses = {int(w) for w in flt.get("warehouse_id") or [] if str(w).isdigit()}
        found = self.book.select(
            created=(since, to),
            changed=window,
            status=flt.get("status") or None,
            warehouses=warehouses,
            descending=str(body.get("dir", "ASC")).upper() == "DESC",
        )
        page = found[offset : offset + limit]
        result = {"postings": [p.as_json() for p in page], "has_next": offset + limit < len(found)}
        return JSONResponse({"result": result})

    async def list_unfulfilled(self, body: dict[str, Any]) -> Response:
        limit, offset, flt = _limit(body), _offset(body), _filter(body)
        if flt.get("delivering_date_from") or flt.get("delivering_date_to"):
            raise _BadRequestError("filter: use either cutoff or delivering_date, not both")
        cutoff = (_time(flt, "cutoff_from"), _time(flt, "cutoff_to"))
        if cutoff[1] - cutoff[0] > MAX_PERIOD:
            raise _BadRequestError("filter: the period must not exceed one year")
        warehouses = {int(w) for w in flt.get("warehouse_id") or [] if str(w).isdigit()}
        found = self.book.select(
            cutoff=cutoff,
            status=flt.get("status") or None,
            warehouses=warehouses,
            unfulfilled=True,
            descending=str(body.get("dir", "ASC")).upper() == "DESC",
        )
        page = found[offset : offset + limit]
        result = {"postings": [p.as_json() for p in page], "count": len(found)}
        return JSONResponse({"result": result})

    async def get_posting(self, body: dict[str, Any]) -> Response:
        number = body.get("posting_number")
        if not isinstance(number, str) or not number:
            raise _BadRequestError("posting_number: value is required")
        posting = self.book.postings.get(number)
        if posting is None:
            return error(404, NOT_FOUND, f"posting {number} not found")
        return JSONResponse({"result": posting.as_json()})

    # -- admin -----------------------------------------------------------------------------------

    async def admin_products(self, body: dict[str, Any], _: Request) -> Response:
        for row in body.get("products") or []:
            self.book.products.add(row)
        return JSONResponse({"products": [p.as_json() for p in self.book.products.all()]})

    async def admin_create_posting(self, body: dict[str, Any], _: Request) -> Response:
        posting = self.book.create(body)
        self.notify(posting.new_posting_push(self.config.seller_id))
        return JSONResponse(posting.as_json())

    async def admin_move_posting(self, body: dict[str, Any], request: Request) -> Response:
        posting, push = self.book.move(request.path_params["number"], body, self.config.seller_id)
        self.notify(push)
        return JSONResponse(posting.as_json())

    async def admin_view(self, _: dict[str, Any], request: Request) -> Response:
        what = request.url.path.rsplit("/", 1)[-1]
        if what == "stocks":
            return JSONResponse({"stocks": self.book.stock_rows()})
        if what == "notifications":
            return JSONResponse({"notifications": list(self.notifications)})
        if what == "products":
            return JSONResponse({"products": [p.as_json() for p in self.book.products.all()]})
        return JSONResponse({"postings": [p.as_json() for p in self.book.postings.values()]})

    async def admin_ping(self, _: dict[str, Any], __: Request) -> Response:
        if not self.config.notify_url:
            return JSONResponse({"error": "no notify_url configured"}, status_code=409)
        payload = {"message_type": "TYPE_PING", "time": push_time(self.book.now())}
        return JSONResponse(await self._deliver(payload))

    # -- notifications ---------------------------------------------------------------------------

    def notify(self, payload: dict[str, Any] | None) -> None:
        """Push ``payload`` to ``notify_url`` in the background, if one is configured."""
        if payload is None or not self.config.notify_url:
            return
        self._background.start(self._deliver(payload))

    async def _deliver(self, payload: dict[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = {"payload": payload, "status_code": None, "answer": None}
        assert self.config.notify_url is not None  # noqa: S101 - checked by the callers
        # When it left (epoch ns), for the benchmarks: propagation is timed from this send.
        record["sent_ns"] = time.time_ns()
        try:
            async with httpx.AsyncClient(timeout=NOTIFY_TIMEOUT_S, verify=_ssl_context()) as client:
                response = await client.post(self.config.notify_url, json=payload)
            record["status_code"] = response.status_code
            record["answered_ns"] = time.time_ns()
            try:
                record["answer"] = response.json()
            except ValueError:
                record["answer"] = response.text
        except httpx.HTTPError as exc:
            record["error"] = type(exc).__name__
        ok = record["status_code"] == 200  # Ozon counts any other status as a failure
        self.state.count("notifications_sent" if ok else "notifications_failed")
        self.notifications.append(record)
        return record


class _BadRequestError(ValueError):
    """A request Ozon would refuse with HTTP 400 (INVALID_ARGUMENT)."""


def error(status: int, code: int, message: str) -> JSONResponse:
    """Ozon's generic error body ``{"code", "message", "details"}`` with an HTTP status."""
    return JSONResponse({"code": code, "message": message, "details": []}, status_code=status)


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
    api = sim.api
    routes = [
        Route("/v2/products/stocks", api(sim.push_stocks), methods=["POST"]),
        Route("/v4/product/info/stocks", api(sim.stocks_info), methods=["POST"]),
        Route(
            "/v1/product/info/stocks-by-warehouse/fbs",
            api(sim.stocks_by_warehouse),
            methods=["POST"],
        ),
        Route("/v3/posting/fbs/list", api(sim.list_postings), methods=["POST"]),
        Route("/v3/posting/fbs/unfulfilled/list", api(sim.list_unfulfilled), methods=["POST"]),
        Route("/v3/posting/fbs/get", api(sim.get_posting), methods=["POST"]),
        Route("/_sim/products", _admin(sim.admin_products), methods=["POST"]),
        Route("/_sim/postings", _admin(sim.admin_create_posting), methods=["POST"]),
        Route("/_sim/postings/{number}/status", _admin(sim.admin_move_posting), methods=["POST"]),
        Route("/_sim/notify-ping", _admin(sim.admin_ping), methods=["POST"]),
        *(
            Route(f"/_sim/{what}", _admin(sim.admin_view), methods=["GET"])
            for what in ("products", "postings", "stocks", "notifications")
        ),
        *admin_routes(sim.state, faults, on_reset=sim.reset),
    ]
    app = Starlette(routes=routes)
    app.state.simulator = sim
    return app


def _limit(body: Mapping[str, Any]) -> int:
    limit = body.get("limit")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE_LIMIT:
        raise _BadRequestError(f"limit: value must be between 1 and {MAX_PAGE_LIMIT}")
    return limit


def _offset(body: Mapping[str, Any]) -> int:
    offset = body.get("offset", 0)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise _BadRequestError("offset: value must be 0 or more")
    return offset


def _filter(body: Mapping[str, Any]) -> dict[str, Any]:
    flt = body.get("filter")
    if not isinstance(flt, dict):
        raise _BadRequestError("filter: value is required")
    return flt


def _time(flt: Mapping[str, Any], key: str) -> datetime:
    value = flt.get(key)
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise _BadRequestError(f"filter.{key}: a date-time is required") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _str_list(flt: Mapping[str, Any], key: str) -> set[str]:
    values = flt.get(key) or []
    if not isinstance(values, list):
        raise _BadRequestError(f"filter.{key}: must be a list")
    return {str(v) for v in values}


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Built once: httpx would build one per client, ~50 ms each, on every notification.
    return ssl.create_default_context()


def _admin(
    handler: Callable[[dict[str, Any], Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap an admin route: a JSON object body (or none), errors as JSON 400/404."""

    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
            if not isinstance(body, dict):
                raise TypeError("the body must be a JSON object")
            return await handler(body, request)
        except KeyError as exc:
            return JSONResponse({"error": f"not found: {exc.args[0]}"}, status_code=404)
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return endpoint
