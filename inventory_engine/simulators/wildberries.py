"""A Wildberries marketplace API simulator: FBS stock on seller warehouses and assembly tasks.

Behaves as reference §2 and the official specs say WB does:

* ``PUT /api/v3/stocks/{warehouseId}``: 1..1000 items, ``amount`` <= 100000, 204 on success,
  409 with a list of per-item errors (``UploadDataLimit``, ``NotFound`` for a chrtId outside the
  catalog, ``StoreIsProcessing``). Field names are **not** validated, exactly like WB: an item
  without ``chrtId``/``amount`` (say ``quantity``) is skipped, the answer is still 204, and
  ``state.counters["ignored_items"]`` counts it so tests can see the silent no-op. The one
  exception is ``sku``, the barcode field WB dropped in 2026: after that cut-off WB answers 400
  to a body still sending it (reference §9), and so does the simulator (billed as 10).
* ``POST /api/v3/stocks/{warehouseId}``: read back.
* ``GET /api/v3/orders/new``, ``GET /api/v3/orders``, ``POST /api/v3/orders/status`` (the engine
  never cancels a WB task, so the cancel method is left out).
* One token bucket per method group (stock methods; FBS order methods), where a 4xx answer
  costs 10 requests; over the limit: 429 with WB's problem body and ``X-Ratelimit-Retry``.
* ``Authorization: <token>`` (no Bearer) or 401.

Admin routes (not WB's): ``POST /_sim/products`` ``{"chrtIds": [...]}`` extends the catalog;
``PUT /_sim/warehouses/{id}`` ``{"isProcessing": true}``; ``POST /_sim/orders`` creates a task
(``chrtId`` required; ``article``, ``nmId``, ``price``, ``warehouseId``, ``skus``, ``createdAt``
epoch seconds optional); ``POST /_sim/orders/{id}/status`` sets ``supplierStatus``/``wbStatus``;
the shared ``POST /_sim/reset`` also clears tasks, catalog and buckets. Plus the shared
state/received/faults routes. The tasks themselves are in
:mod:`inventory_engine.simulators.wildberries_orders`.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from inventory_engine import sandbox_channels
from inventory_engine.simulators.base import (
    ClockIds,
    FaultInjector,
    SimulatorState,
    TokenBucket,
    admin_routes,
    injected_failure,
    is_int,
)
from inventory_engine.simulators.wildberries_orders import (
    SUPPLIER_STATUSES,
    WB_STATUSES,
    SimTask,
)

# The token and warehouse the simulator accepts by default (the engine's sandbox mode uses them).
SANDBOX_TOKEN = sandbox_channels.WB_TOKEN
SANDBOX_WAREHOUSE_ID = sandbox_channels.WB_WAREHOUSE_ID

ITEM_MESSAGES = {
    "UploadDataLimit": "Upload limit exceeded.",
    "NotFound": "Not found",
    "StoreIsProcessing": "The store is processing",
}
"""Messages of WB's 409 examples."""
SKU_UPLOAD_DISABLED = "Uploading stock is not allowed by 'sku'. Please use the 'chrtId' key"
"""WB's 400 example ``SKUUploadDisabled`` (the stocks spec, Aug 2026)."""
DAY_S = 86_400


@dataclass
class WildberriesSimConfig:
    """Credentials, catalog and limits; defaults are WB's (reference §0, §2)."""

    token: str = SANDBOX_TOKEN
    warehouse_ids: tuple[int, ...] = (SANDBOX_WAREHOUSE_ID,)
    chrt_ids: tuple[int, ...] | None = ()
    """The catalog of size ids; a push for any other id gets 409 NotFound. None: every id exists
    (an open catalog, handy for a demo that has no WB size ids to seed)."""
    max_batch: int = 1_000
    max_amount: int = 100_000
    max_status_ids: int = 1_000
    max_orders_limit: int = 1_000
    orders_window_s: int = 30 * DAY_S
    rate_per_min: float = 300
    """Stock methods and FBS order methods each: 300 req/min (one per 200 ms), burst 20."""
    burst: float = 20
    error_cost: int = 10
    """A 4xx answer is billed as this many requests."""
    apply_valid_items_on_409: bool = False
    """WB does not document whether the rest of a 409 batch is applied; default: nothing is."""
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    """Epoch seconds for task ``createdAt`` and the ``dateFrom``/``dateTo`` defaults."""
    unique_ids: bool = False
    """Task ids from :class:`ClockIds`, never repeated by a simulator started again or reset
    (the sandbox: the engine's ledger outlives it). False: from 5632423 at every start and
    reset."""


def _error(status: int, code: str, message: str = "") -> JSONResponse:
    """WB's ``Error`` body."""
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _problem(status: int, title: str, detail: str, text: str) -> JSONResponse:
    """WB's gateway problem body (429, 401), as in ``components/responses``."""
    body = {
        "title": title,
        "detail": detail,
        "code": "07e4668e-ac2242c5c8c5-[UK-4dx7JUdskGZ]",
        "requestId": uuid.uuid4().hex,
        "origin": "s2s-api-auth-catalog",
        "status": status,
        "statusText": text,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


async def _body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


async def _int_list(request: Request, key: str) -> list[int] | None:
    """``body[key]`` if the body is an object holding a list of integers there, else None."""
    body = await _body(request)
    values = body.get(key) if isinstance(body, dict) else None
    ok = isinstance(values, list) and all(is_int(v) for v in values)
    return values if ok else None


Handler = Callable[[Request], Awaitable[Response]]


class WildberriesSimulator:
    """The simulator's state and route handlers; ``create_app`` wires them to Starlette."""

    def __init__(
        self,
        config: WildberriesSimConfig,
        state: SimulatorState,
        faults: FaultInjector,
    ) -> None:
        self.config, self.state, self.faults = config, state, faults
        self.task_ids = ClockIds(config.wall_clock) if config.unique_ids else None
        self.reset()

    def reset(self) -> None:
        c = self.config
        self.catalog: set[int] | None = None if c.chrt_ids is None else set(c.chrt_ids)
        self.warehouses: set[int] = set(c.warehouse_ids)
        self.processing: set[int] = set()
        self.tasks: dict[int, SimTask] = {}
        self.next_task_id = 5_632_423
        self.buckets = {
            "stocks": TokenBucket(c.burst, c.rate_per_min / 60, clock=c.clock),
            "orders": TokenBucket(c.burst, c.rate_per_min / 60, clock=c.clock),
        }

    # -- the gate every WB route passes ------------------------------------------------------------

    def api(self, group: str, handler: Handler) -> Handler:
        """Wrap a WB route: faults, auth, rate limit, and the 10x bill for a 4xx answer."""

        async def endpoint(request: Request) -> Response:
            injected = await injected_failure(
                self.faults, rate_limited=lambda: self._too_many(1.0), error=_error_for_status
            )
            if injected is not None:
                return injected
            if request.headers.get("Authorization") != self.config.token:
                self.state.violation("auth")
                return _problem(
                    401, "unauthorized", "token problem; token is invalid", "Unauthorized"
                )
            wait_s = self.buckets[group].take()
            if wait_s > 0:
                self.state.violation("rate_limit")
                return self._too_many(wait_s)
            response = await handler(request)
            if 400 <= response.status_code < 500:
                self.buckets[group].charge(self.config.error_cost - 1)
            return response

        return endpoint

    def _too_many(self, wait_s: float) -> Response:
        response = _problem(
            429, "too many requests", "limited by c122a060-a7fb-4bb4-abb0-32fd4e18d489",
            "Too Many Requests",
        )  # fmt: skip
        # WB sends whole seconds; rounding up never invites a request that would fail again.
        response.headers["X-Ratelimit-Retry"] = str(max(1, math.ceil(wait_s)))
        return response

    def _batch_too_big(self, what: str, limit: int) -> Response:
        self.state.violation("batch_size")
        return _error(400, "IncorrectRequestBody", f"{what}: at most {limit} items")

    # -- stocks ---------------------------------------------------------------------------------

    def _known(self, chrt_id: int) -> bool:
        return self.catalog is None or chrt_id in self.catalog

    def _warehouse(self, request: Request) -> int | None:
        raw = request.path_params["warehouse_id"]
        return int(raw) if raw.isascii() and raw.isdigit() and int(raw) in self.warehouses else None

    async def put_stocks(self, request: Request) -> Response:
        warehouse = self._warehouse(request)
        if warehouse is None:
            return _error(404, "NotFound")
        body = await _body(request)
        stocks = body.get("stocks") if isinstance(body, dict) else None
        if (
            not isinstance(stocks, list)
            or not stocks
            or not all(isinstance(i, dict) for i in stocks)
        ):
            return _error(400, "IncorrectRequestBody", "Incorrect required body")
        if len(stocks) > self.config.max_batch:
            return self._batch_too_big("stocks", self.config.max_batch)
        if warehouse in self.processing:
            return JSONResponse(
                [{"code": "StoreIsProcessing", "message": ITEM_MESSAGES["StoreIsProcessing"]}], 409
            )
        if any("sku" in i for i in stocks):
            # WB 2026: chrtId is the only item id the stock methods take.
            self.state.violation("sku_field")
            return _error(400, "SKUUploadDisabled", SKU_UPLOAD_DISABLED)
        named = [i for i in stocks if "chrtId" in i and "amount" in i]
        if any(
            not is_int(i["chrtId"]) or not is_int(i["amount"]) or i["amount"] < 0 for i in named
        ):
            return _error(400, "IncorrectRequestBody", "Incorrect required body")
        if len(named) < len(stocks):
            # WB does not validate parameter names: unknown keys get 204 and change nothing.
            self.state.count("ignored_items", len(stocks) - len(named))
        failed: dict[str, list[dict[str, int]]] = defaultdict(list)
        valid: list[tuple[int, int]] = []
        for item in named:
            chrt, amount = item["chrtId"], item["amount"]
            if amount > self.config.max_amount:
                code = "UploadDataLimit"
            elif not self._known(chrt):
                code = "NotFound"
            elif self.faults.roll(self.faults.faults.item_error_rate):
                code = "StoreIsProcessing"
            else:
                valid.append((chrt, amount))
                continue
            failed[code].append({"chrtId": chrt, "amount": amount})
        if not failed or self.config.apply_valid_items_on_409:
            for chrt, amount in valid:
                self.state.accept(str(warehouse), str(chrt), amount)
        if failed:
            errors = [
                {"code": c, "message": ITEM_MESSAGES[c], "data": d} for c, d in failed.items()
            ]
            return JSONResponse(errors, status_code=409)
        return Response(status_code=204)

    async def read_stocks(self, request: Request) -> Response:
        warehouse = self._warehouse(request)
        if warehouse is None:
            return _error(404, "NotFound")
        ids = await _int_list(request, "chrtIds")
        if ids is None:
            return _error(400, "IncorrectRequestBody", "Incorrect required body")
        if len(ids) > self.config.max_batch:
            return self._batch_too_big("chrtIds", self.config.max_batch)
        with self.state.lock:
            stored = {i: self.state.stock.get((str(warehouse), str(i))) for i in ids}
        stocks = [
            {"chrtId": i, "amount": amount or 0}
            for i, amount in stored.items()
            if amount is not None or self._known(i)
        ]
        return JSONResponse({"stocks": stocks})

    # -- orders ---------------------------------------------------------------------------------

    async def new_orders(self, _: Request) -> Response:
        new = [
            t.as_new()
            for t in self.tasks.values()
            if t.supplier_status == "new" and t.wb_status == "waiting"
        ]
        return JSONResponse({"orders": new})

    async def list_orders(self, request: Request) -> Response:
        query = request.query_params
        raw = {k: query.get(k) for k in ("limit", "next", "dateFrom", "dateTo")}
        if raw["limit"] is None or raw["next"] is None:
            return _error(400, "IncorrectParameter", "Передан некорректный параметр")
        try:
            values = {k: int(v) for k, v in raw.items() if v is not None}
        except ValueError:
            return _error(400, "IncorrectParameter", "Передан некорректный параметр")
        limit = values["limit"]
        if limit > self.config.max_orders_limit:
            return self._batch_too_big("limit", self.config.max_orders_limit)
        date_to = values.get("dateTo", int(self.config.wall_clock()))
        date_from = values.get("dateFrom", date_to - self.config.orders_window_s)
        if limit < 1 or date_from > date_to or date_to - date_from > self.config.orders_window_s:
            return _error(400, "IncorrectParameter", "Передан некорректный параметр")
        page = sorted(
            (
                t
                for t in self.tasks.values()
                if t.id > values["next"] and date_from <= t.created_at <= date_to
            ),
            key=lambda t: t.id,
        )[:limit]
        next_value = page[-1].id if page else values["next"]
        return JSONResponse({"next": next_value, "orders": [t.common() for t in page]})

    async def order_statuses(self, request: Request) -> Response:
        ids = await _int_list(request, "orders")
        if not ids:
            return _error(400, "IncorrectRequestBody", "Некорректное тело запроса")
        if len(ids) > self.config.max_status_ids:
            return self._batch_too_big("orders", self.config.max_status_ids)
        return JSONResponse({"orders": [self.tasks[i].status() for i in ids if i in self.tasks]})

    # -- admin ----------------------------------------------------------------------------------

    async def add_products(self, request: Request) -> Response:
        ids = await _int_list(request, "chrtIds")
        if ids is None:
            return JSONResponse({"error": 'expected {"chrtIds": [int, ...]}'}, status_code=400)
        if self.catalog is not None:
            self.catalog.update(ids)
        return JSONResponse({"chrtIds": None if self.catalog is None else sorted(self.catalog)})

    async def set_warehouse(self, request: Request) -> Response:
        warehouse = int(request.path_params["warehouse_id"])
        body = await _body(request) or {}
        self.warehouses.add(warehouse)
        if body.get("isProcessing"):
            self.processing.add(warehouse)
        else:
            self.processing.discard(warehouse)
        return JSONResponse({"id": warehouse, "isProcessing": warehouse in self.processing})

    async def create_order(self, request: Request) -> Response:
        body = await _body(request)
        if not isinstance(body, dict) or not is_int(body.get("chrtId")):
            return JSONResponse({"error": "chrtId (int) is required"}, status_code=400)
        if self.task_ids is None:
            task_id = body.get("id") or self.next_task_id
            self.next_task_id = max(self.next_task_id, task_id) + 1
        else:
            task_id = body.get("id") or self.task_ids()
            self.task_ids.taken(task_id)
        task = SimTask(
            id=task_id,
            chrt_id=body["chrtId"],
            warehouse_id=body.get("warehouseId", self.config.warehouse_ids[0]),
            created_at=int(body.get("createdAt", self.config.wall_clock())),
            article=str(body.get("article", f"article-{body['chrtId']}")),
            nm_id=int(body.get("nmId", body["chrtId"] // 10 or 1)),
            price=int(body.get("price", 100_000)),
            skus=[str(s) for s in body.get("skus", [f"20{body['chrtId']:011d}"])],
        )
        self.tasks[task.id] = task
        self.state.count("orders_created")
        return JSONResponse(task.as_new() | task.status(), status_code=201)

    async def set_order_status(self, request: Request) -> Response:
        raw = request.path_params["order_id"]
        task = self.tasks.get(int(raw)) if raw.isascii() and raw.isdigit() else None
        if task is None:
            return JSONResponse({"error": f"no task {raw}"}, status_code=404)
        body = await _body(request) or {}
        supplier = body.get("supplierStatus", task.supplier_status)
        wb = body.get("wbStatus", task.wb_status)
        if supplier not in SUPPLIER_STATUSES or wb not in WB_STATUSES:
            return JSONResponse({"error": "unknown supplierStatus or wbStatus"}, status_code=400)
        task.supplier_status, task.wb_status = supplier, wb
        return JSONResponse(task.status())


def _error_for_status(status: int, message: str) -> Response:
    return _error(status, "InternalServerError" if status < 504 else "GatewayTimeout", message)


def create_app(
    config: WildberriesSimConfig | None = None,
    *,
    state: SimulatorState | None = None,
    faults: FaultInjector | None = None,
) -> Starlette:
    """Build the WB simulator; ``app.state.simulator`` is the :class:`WildberriesSimulator`.

    Args:
        config: credentials, catalog and limits (WB's defaults when omitted).
        state: shared stock/received/violations store (a new one when omitted).
        faults: fault injector (none injected when omitted).
    """
    sim = WildberriesSimulator(
        config or WildberriesSimConfig(), state or SimulatorState(), faults or FaultInjector()
    )
    stocks = "/api/v3/stocks/{warehouse_id}"
    routes = [
        Route(stocks, sim.api("stocks", sim.put_stocks), methods=["PUT"]),
        Route(stocks, sim.api("stocks", sim.read_stocks), methods=["POST"]),
        Route("/api/v3/orders/new", sim.api("orders", sim.new_orders), methods=["GET"]),
        Route("/api/v3/orders/status", sim.api("orders", sim.order_statuses), methods=["POST"]),
        Route("/api/v3/orders", sim.api("orders", sim.list_orders), methods=["GET"]),
        Route("/_sim/products", sim.add_products, methods=["POST"]),
        Route("/_sim/warehouses/{warehouse_id:int}", sim.set_warehouse, methods=["PUT"]),
        Route("/_sim/orders", sim.create_order, methods=["POST"]),
        Route("/_sim/orders/{order_id}/status", sim.set_order_status, methods=["POST"]),
        *admin_routes(sim.state, sim.faults, on_reset=sim.reset),
    ]
    app = Starlette(routes=routes)
    app.state.simulator = sim
    return app
