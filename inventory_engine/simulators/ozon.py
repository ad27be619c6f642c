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
``POST /_sim/products``; postings from ``POST /_sim/postings`` and move with
``POST /_sim/postings/{n}/status``. With ``notify_url`` set, each posting change is also pushed
there as Ozon's notification (fire-and-forget, counted in ``notifications_sent|failed``).
Error bodies have Ozon's generic shape ``{"code", "message", "details"}`` (gRPC codes).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
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

from inventory_engine.simulators.base import (
    FaultInjector,
    Faults,
    SimulatorState,
    TokenBucket,
    admin_routes,
    injected_failure,
)

SANDBOX_CLIENT_ID = "sandbox-client-id"
SANDBOX_API_KEY = "sandbox-api-key"
"""Credentials the simulator accepts by default (the engine's sandbox mode uses them)."""
SANDBOX_WAREHOUSE_ID = 22142605386000
"""The FBS warehouse of the sandbox account (the id in Ozon's own examples)."""
SANDBOX_SELLER_ID = 15

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


@dataclass(frozen=True, slots=True)
class SimProduct:
    """One product of the seller: the three ids Ozon keeps for it."""

    offer_id: str
    product_id: int
    sku: int

    def as_json(self) -> dict[str, Any]:
        return {"offer_id": self.offer_id, "product_id": self.product_id, "sku": self.sku}


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
    max_batch: int = 100
    stock_requests_per_minute: float = 80
    requests_per_second: float = 50
    item_window_s: float = 30.0
    notify_url: str | None = None


PRE_PACK = frozenset(
    {
        "awaiting_registration",
        "acceptance_in_progress",
        "awaiting_approve",
        "awaiting_verification",
        "awaiting_packaging",
    }
)
"""A new posting's statuses: nothing packed yet, a cancel here is not "after ship"."""
RESERVING = PRE_PACK | {"awaiting_deliver"}
"""The posting's units are still in the warehouse and counted as ``reserved``."""
UNFULFILLED = RESERVING | {
    "arbitration",
    "client_arbitration",
    "delivering",
    "driver_pickup",
    "not_accepted",
}
"""What ``/v3/posting/fbs/unfulfilled/list`` returns (its ``filter.status`` values)."""
CANCELLED = frozenset({"cancelled", "cancelled_from_split_pending"})
STATUSES = UNFULFILLED | CANCELLED | {"sent_by_seller", "delivered"}
PUSH_STATES: Mapping[str, str] = {
    "awaiting_registration": "posting_awaiting_registration",
    "acceptance_in_progress": "posting_acceptance_in_progress",
    "awaiting_approve": "posting_created",
    "awaiting_packaging": "posting_created",
    "awaiting_deliver": "posting_transferring_to_delivery",
    "arbitration": "posting_in_arbitration",
    "client_arbitration": "posting_in_client_arbitration",
    "delivering": "posting_on_way_to_city",
    "driver_pickup": "posting_driver_pick_up",
    "delivered": "posting_delivered",
    "cancelled": "posting_canceled",
    "not_accepted": "posting_not_in_sort_center",
}
"""Default push ``new_state`` (and substatus) per status; statuses without one push nothing."""
CUTOFF_AFTER = timedelta(days=1)
"""A new posting's ``shipment_date`` (its packing cutoff): a day after ``in_process_at``."""


@dataclass
class SimPosting:
    """One FBS posting; units per product, times as aware UTC datetimes."""

    posting_number: str
    order_id: int
    status: str
    substatus: str
    warehouse_id: int
    warehouse_name: str
    lines: list[tuple[SimProduct, int]]
    in_process_at: datetime
    shipment_date: datetime
    changed_at: datetime
    cancelled_after_ship: bool = False
    cancel_reason_id: int = 0

    def push_products(self) -> list[dict[str, int]]:
        return [{"sku": p.sku, "quantity": q} for p, q in self.lines]

    def new_posting_push(self, seller_id: int) -> dict[str, Any]:
        """The ``TYPE_NEW_POSTING`` notification (reference §1.6)."""
        return {
            "message_type": "TYPE_NEW_POSTING",
            "posting_number": self.posting_number,
            "products": self.push_products(),
            "in_process_at": _push_time(self.in_process_at),
            "warehouse_id": self.warehouse_id,
            "seller_id": seller_id,
        }

    def as_json(self) -> dict[str, Any]:
        """The posting as the v3 list and get methods return it."""
        order_number = self.posting_number.rsplit("-", 1)[0]
        return {
            "posting_number": self.posting_number,
            "order_id": self.order_id,
            "order_number": order_number,
            "status": self.status,
            "substatus": self.substatus,
            "in_process_at": _push_time(self.in_process_at),
            "shipment_date": _push_time(self.shipment_date),
            "delivery_method": {
                "id": self.warehouse_id,
                "name": "Ozon Логистика, sandbox",
                "warehouse_id": self.warehouse_id,
                "warehouse": self.warehouse_name,
                "tpl_provider_id": 24,
                "tpl_provider": "Ozon Логистика",
            },
            "tpl_integration_type": "ozon",
            "tracking_number": "",
            "is_express": False,
            "is_multibox": False,
            "multi_box_qty": 1,
            "parent_posting_number": "",
            "quantum_id": 0,
            "products": [
                {
                    "sku": p.sku,
                    "offer_id": p.offer_id,
                    "name": p.offer_id,
                    "quantity": q,
                    "price": "1000.0000",
                    "currency_code": "RUB",
                }
                for p, q in self.lines
            ],
            "cancellation": {
                "cancel_reason_id": self.cancel_reason_id,
                "cancel_reason": "",
                "cancellation_type": "",
                "cancellation_initiator": "",
                "cancelled_after_ship": self.cancelled_after_ship,
                "affect_cancellation_rating": False,
            },
            "available_actions": ["ship", "cancel"] if self.status in PRE_PACK else [],
            "requirements": {
                "products_requiring_gtd": [],
                "products_requiring_country": [],
                "products_requiring_mandatory_mark": [],
            },
        }


class PostingBook:
    """Products, pushed stock and postings of the simulated account; Ozon's reservation rules."""

    def __init__(
        self,
        warehouses: Mapping[int, str],
        *,
        now: Callable[[], datetime],
        auto_products: bool,
    ) -> None:
        self.warehouses = warehouses
        self.now = now
        self.auto_products = auto_products
        self.reset(())

    def reset(self, products: Sequence[SimProduct]) -> None:
        self.products: dict[str, SimProduct] = {}
        self.products_by_id: dict[int, SimProduct] = {}
        self.products_by_sku: dict[int, SimProduct] = {}
        self.present: dict[tuple[str, int], int] = {}
        self.postings: dict[str, SimPosting] = {}
        self._numbers = itertools.count(1)
        for product in products:
            self._register(product)

    # -- products --------------------------------------------------------------------------------

    def _register(self, product: SimProduct) -> SimProduct:
        self.products[product.offer_id] = product
        self.products_by_id[product.product_id] = product
        self.products_by_sku[product.sku] = product
        return product

    def add_product(self, row: Any) -> SimProduct:
        """Register ``{"offer_id", "product_id"?, "sku"?}``; missing ids are made up."""
        if not isinstance(row, dict) or not isinstance(row.get("offer_id"), str):
            raise ValueError("each product needs an offer_id string")
        n = len(self.products) + 1
        product_id = row.get("product_id") or 300_000_000 + n
        sku = row.get("sku") or 140_000_000 + n
        if not _is_int(product_id) or not _is_int(sku):
            raise ValueError("product_id and sku must be integers")
        return self._register(SimProduct(row["offer_id"], product_id, sku))

    def product_by_offer(self, offer_id: str, *, create: bool = False) -> SimProduct | None:
        product = self.products.get(offer_id)
        if product is None and create and self.auto_products and offer_id:
            product = self.add_product({"offer_id": offer_id})
        return product

    # -- stock -----------------------------------------------------------------------------------

    def reserved(self, offer_id: str, warehouse: int) -> int:
        return sum(
            quantity
            for posting in self.postings.values()
            if posting.status in RESERVING and posting.warehouse_id == warehouse
            for product, quantity in posting.lines
            if product.offer_id == offer_id
        )

    def set_stock(self, offer_id: str, warehouse: int, stock: int) -> None:
        # Ozon: the pushed stock excludes reserved units, so present = stock + reserved.
        self.present[offer_id, warehouse] = stock + self.reserved(offer_id, warehouse)

    def _pairs(self, product: SimProduct) -> list[tuple[int, int, int]]:
        """(warehouse, present, reserved) for each warehouse holding or reserving the product."""
        warehouses = {w for (o, w) in self.present if o == product.offer_id} | {
            p.warehouse_id
            for p in self.postings.values()
            if p.status in RESERVING and any(x.offer_id == product.offer_id for x, _ in p.lines)
        }
        return [
            (w, self.present.get((product.offer_id, w), 0), self.reserved(product.offer_id, w))
            for w in sorted(warehouses)
        ]

    def info_item(self, product: SimProduct) -> dict[str, Any]:
        """A ``/v4/product/info/stocks`` item: FBS stock summed over the warehouses."""
        pairs = self._pairs(product)
        stock = {
            "type": "fbs",
            "sku": product.sku,
            "present": sum(present for _, present, _ in pairs),
            "reserved": sum(reserved for _, _, reserved in pairs),
            "shipment_type": "SHIPMENT_TYPE_GENERAL",
            "warehouse_ids": [str(w) for w, _, _ in pairs],
        }
        return {"offer_id": product.offer_id, "product_id": product.product_id, "stocks": [stock]}

    def warehouse_rows(self, skus: set[int]) -> list[dict[str, Any]]:
        """``/v1/product/info/stocks-by-warehouse/fbs`` rows for known SKUs."""
        return [
            {
                "sku": product.sku,
                "product_id": product.product_id,
                "warehouse_id": warehouse,
                "warehouse_name": self.warehouses.get(warehouse, ""),
                "present": present,
                "reserved": reserved,
            }
            for sku in sorted(skus)
            if (product := self.products_by_sku.get(sku)) is not None
            for warehouse, present, reserved in self._pairs(product)
        ]

    def stock_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "offer_id": product.offer_id,
                "warehouse_id": warehouse,
                "present": present,
                "reserved": reserved,
                "sellable": present - reserved,
            }
            for product in self.products.values()
            for warehouse, present, reserved in self._pairs(product)
        ]

    # -- postings --------------------------------------------------------------------------------

    def create(self, body: Mapping[str, Any]) -> SimPosting:
        """A new posting from ``{"products": [{"offer_id"|"sku", "quantity"}], "status"?,
        "posting_number"?, "warehouse_id"?, "in_process_at"?}``.

        Raises:
            ValueError: unknown product, bad quantity, status or warehouse.
        """
        status = body.get("status", "awaiting_packaging")
        if status not in PRE_PACK:
            raise ValueError(f"a new posting's status is one of {sorted(PRE_PACK)}")
        warehouse = body.get("warehouse_id", next(iter(self.warehouses)))
        if warehouse not in self.warehouses:
            raise ValueError(f"unknown warehouse {warehouse}")
        lines = [self._line(row) for row in body.get("products") or []]
        if not lines:
            raise ValueError("a posting needs products")
        n = next(self._numbers)
        number = body.get("posting_number") or f"{10_000_000 + n:08d}-{n % 10_000:04d}-1"
        if not isinstance(number, str) or number in self.postings:
            raise ValueError(f"posting number {number!r} is taken or not a string")
        created = _admin_time(body.get("in_process_at")) or self.now()
        posting = SimPosting(
            posting_number=number,
            order_id=500_000_000 + n,
            status=status,
            substatus=PUSH_STATES.get(status, ""),
            warehouse_id=warehouse,
            warehouse_name=self.warehouses[warehouse],
            lines=lines,
            in_process_at=created,
            shipment_date=created + CUTOFF_AFTER,
            changed_at=created,
        )
        self.postings[number] = posting
        return posting

    def _line(self, row: Any) -> tuple[SimProduct, int]:
        if not isinstance(row, dict) or not _is_int(row.get("quantity")) or row["quantity"] < 1:
            raise ValueError("each product needs a positive integer quantity")
        if "sku" in row:
            product = self.products_by_sku.get(row["sku"])
        else:
            product = self.product_by_offer(str(row.get("offer_id", "")), create=True)
        if product is None:
            raise ValueError(f"unknown product {row}")
        return product, row["quantity"]

    def move(
        self, number: str, body: Mapping[str, Any], seller_id: int
    ) -> tuple[SimPosting, dict[str, Any] | None]:
        """Move a posting to ``body["status"]``; returns it and the push Ozon would send.

        ``substatus``/``new_state`` override the defaults; ``cancelled_after_ship`` defaults
        to "the posting was packed". Leaving the warehouse takes the units off ``present``.

        Raises:
            KeyError: no such posting.
            ValueError: unknown status, or a move back to a new posting's status.
        """
        posting = self.postings[number]
        status = body.get("status")
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        old_status, old_state = posting.status, posting.substatus
        if status in RESERVING and old_status not in RESERVING:
            raise ValueError(f"cannot move a posting back from {old_status} to {status}")
        if old_status in RESERVING and status not in RESERVING and status not in CANCELLED:
            for product, quantity in posting.lines:  # handed over: the goods leave
                key = (product.offer_id, posting.warehouse_id)
                self.present[key] = self.present.get(key, 0) - quantity
        new_state = str(body.get("new_state") or PUSH_STATES.get(status, ""))
        posting.status = status
        posting.substatus = str(body.get("substatus") or new_state)
        posting.changed_at = self.now()
        if status in CANCELLED:
            posting.cancelled_after_ship = bool(
                body.get("cancelled_after_ship", old_status not in PRE_PACK)
            )
            posting.cancel_reason_id = int(body.get("cancel_reason_id", 352))
        if not new_state or status == old_status:
            return posting, None
        common = {
            "posting_number": number,
            "new_state": new_state,
            "changed_state_date": _push_time(posting.changed_at),
            "warehouse_id": posting.warehouse_id,
            "seller_id": seller_id,
        }
        if status == "cancelled":
            reason = {"id": posting.cancel_reason_id, "message": "cancelled (sandbox)"}
            push = {
                "message_type": "TYPE_POSTING_CANCELLED",
                **common,
                "products": posting.push_products(),
                "old_state": old_state,
                "reason": reason,
            }
        else:
            push = {"message_type": "TYPE_STATE_CHANGED", **common}
        return posting, push

    def select(
        self,
        *,
        created: tuple[datetime, datetime] | None = None,
        changed: tuple[datetime, datetime] | None = None,
        cutoff: tuple[datetime, datetime] | None = None,
        status: str | None = None,
        warehouses: set[int] | None = None,
        unfulfilled: bool = False,
        descending: bool = False,
    ) -> list[SimPosting]:
        """Postings matching every given filter, by ``in_process_at``."""

        def within(moment: datetime, window: tuple[datetime, datetime] | None) -> bool:
            return window is None or window[0] <= moment <= window[1]

        found = [
            p
            for p in self.postings.values()
            if within(p.in_process_at, created)
            and within(p.changed_at, changed)
            and within(p.shipment_date, cutoff)
            and (status is None or p.status == status)
            and (not warehouses or p.warehouse_id in warehouses)
            and (not unfulfilled or p.status in UNFULFILLED)
        ]
        return sorted(found, key=lambda p: (p.in_process_at, p.posting_number), reverse=descending)


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
        self.book = PostingBook(config.warehouses, now=now, auto_products=config.auto_products)
        self.notifications: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.reset()

    def reset(self) -> None:
        self.state.reset()
        self.book.reset(self.config.products)
        self.last_update: dict[tuple[str, int], float] = {}
        self.notifications.clear()
        rpm = self.config.stock_requests_per_minute
        self.stock_bucket = TokenBucket(rpm, rpm / 60)
        rps = self.config.requests_per_second
        self.global_bucket = TokenBucket(rps, rps)

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
            if not isinstance(item, dict) or not _is_int(item.get("warehouse_id")):
                raise _BadRequestError("stocks: warehouse_id is required")
            if not _is_int(item.get("stock")):
                raise _BadRequestError("stocks: stock must be an integer")
            if not isinstance(item.get("offer_id"), str) and not _is_int(item.get("product_id")):
                raise _BadRequestError("stocks: offer_id or product_id is required")
        return JSONResponse({"result": [self._push_one(item) for item in stocks]})

    def _push_one(self, item: dict[str, Any]) -> dict[str, Any]:
        warehouse, stock = item["warehouse_id"], item["stock"]
        offer_id = item.get("offer_id")
        # Ozon: when both ids are sent, offer_id wins.
        product = (
            self.book.product_by_offer(offer_id, create=True)
            if isinstance(offer_id, str)
            else self.book.products_by_id.get(item["product_id"])
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
            for p in self.book.products.values()
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

    async def admin_reset(self, _: Request) -> Response:
        self.faults.configure(Faults())
        self.reset()
        return JSONResponse({"reset": True})

    async def admin_products(self, body: dict[str, Any], _: Request) -> Response:
        for row in body.get("products") or []:
            self.book.add_product(row)
        return JSONResponse({"products": [p.as_json() for p in self.book.products.values()]})

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
            return JSONResponse({"products": [p.as_json() for p in self.book.products.values()]})
        return JSONResponse({"postings": [p.as_json() for p in self.book.postings.values()]})

    async def admin_ping(self, _: dict[str, Any], __: Request) -> Response:
        if not self.config.notify_url:
            return JSONResponse({"error": "no notify_url configured"}, status_code=409)
        payload = {"message_type": "TYPE_PING", "time": _push_time(self.book.now())}
        return JSONResponse(await self._deliver(payload))

    # -- notifications ---------------------------------------------------------------------------

    def notify(self, payload: dict[str, Any] | None) -> None:
        """Push ``payload`` to ``notify_url`` in the background, if one is configured."""
        if payload is None or not self.config.notify_url:
            return
        task = asyncio.get_running_loop().create_task(self._deliver_quietly(payload))
        self._tasks.add(task)  # keep a reference: the loop holds tasks only weakly
        task.add_done_callback(self._tasks.discard)

    async def _deliver_quietly(self, payload: dict[str, Any]) -> None:
        await self._deliver(payload)

    async def _deliver(self, payload: dict[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = {"payload": payload, "status_code": None, "answer": None}
        assert self.config.notify_url is not None  # noqa: S101 - checked by the callers
        try:
            async with httpx.AsyncClient(timeout=NOTIFY_TIMEOUT_S, verify=_ssl_context()) as client:
                response = await client.post(self.config.notify_url, json=payload)
            record["status_code"] = response.status_code
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
        clock: monotonic seconds, for the per-item 30 s window.
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
        # Before the shared admin routes: this reset also clears postings and windows.
        Route("/_sim/reset", sim.admin_reset, methods=["POST"]),
        Route("/_sim/products", _admin(sim.admin_products), methods=["POST"]),
        Route("/_sim/postings", _admin(sim.admin_create_posting), methods=["POST"]),
        Route("/_sim/postings/{number}/status", _admin(sim.admin_move_posting), methods=["POST"]),
        Route("/_sim/notify-ping", _admin(sim.admin_ping), methods=["POST"]),
        *(
            Route(f"/_sim/{what}", _admin(sim.admin_view), methods=["GET"])
            for what in ("products", "postings", "stocks", "notifications")
        ),
        *admin_routes(sim.state, faults),
    ]
    app = Starlette(routes=routes)
    app.state.simulator = sim
    return app


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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


def _push_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _admin_time(value: Any) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
