"""Orders of the Yandex Market simulator and the notifications their changes send.

An order holds its units against AVAILABLE from its creation; a cancel before packing lets
them go (YM gives them back itself), a cancel from READY_TO_SHIP or later does not (the seller
pushes again). A new order sends ORDER_CREATED; a move sends ORDER_STATUS_UPDATED and, for a
cancel, ORDER_CANCELLED after it. Notifications leave in the order they were made, fire and
forget, each recorded with the status the receiver answered.

Admin routes (not YM's): ``POST /_sim/orders``, ``GET /_sim/orders``,
``POST /_sim/orders/{id}/status``, ``POST /_sim/notify-ping``, ``GET /_sim/notifications``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Protocol

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from inventory_engine.simulators.base import BackgroundTasks, SimulatorState, notify_ssl_context

MSK = timezone(timedelta(hours=3))
"""YM writes order dates with the Moscow offset."""
SHIPPED = frozenset({"DELIVERY", "PICKUP", "DELIVERED", "PARTIALLY_RETURNED", "RETURNED"})
"""Statuses in which the goods have left the seller."""
DEFAULT_SUBSTATUS = {
    "PROCESSING": "STARTED",
    "CANCELLED": "USER_CHANGED_MIND",
    "DELIVERY": "DELIVERY_SERVICE_RECEIVED",
    "PICKUP": "PICKUP_SERVICE_RECEIVED",
    "DELIVERED": "DELIVERY_SERVICE_DELIVERED",
}
"""``substatus`` is required in an order answer; these fill it when the admin gives none."""


def ym_time(moment: datetime) -> str:
    """YM's order date format: ISO 8601 in Moscow time, whole seconds."""
    return moment.astimezone(MSK).isoformat(timespec="seconds")


def utc_z(moment: datetime) -> str:
    """A notification time: ISO 8601 in UTC with ``Z``, whole seconds."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class SimOrder:
    order_id: int
    campaign_id: int
    items: list[tuple[str, int]]
    status: str
    substatus: str
    created_at: datetime
    updated_at: datetime
    seq: int
    holds: bool = True
    """Still counted against AVAILABLE (false after a cancel before packing)."""

    def as_json(self) -> dict[str, Any]:
        """The order as ``POST /v1/businesses/{businessId}/orders`` returns it."""
        return {
            "orderId": self.order_id,
            "campaignId": self.campaign_id,
            "programType": "FBS",
            "status": self.status,
            "substatus": self.substatus,
            "creationDate": ym_time(self.created_at),
            "updateDate": ym_time(self.updated_at),
            "paymentType": "PREPAID",
            "paymentMethod": "YANDEX",
            "fake": False,
            "items": [
                {"id": n, "offerId": offer, "offerName": offer, "count": qty}
                for n, (offer, qty) in enumerate(self.items, start=1)
            ],
            "delivery": {
                "type": "DELIVERY",
                "serviceName": "Market delivery",
                "deliveryServiceId": 1006360,
                "deliveryPartnerType": "YANDEX_MARKET",
                "dates": {"fromDate": (self.created_at + timedelta(days=2)).date().isoformat()},
            },
        }


class OrderSettings(Protocol):
    """What the order book reads from the simulator's config, at the time it needs it."""

    campaign_id: int
    notify_url: str | None


class OrderBook:
    """The store's orders, and the notifications their changes send to ``notify_url``."""

    def __init__(
        self,
        state: SimulatorState,
        *,
        settings: Callable[[], OrderSettings],
        now: Callable[[], datetime],
        next_seq: Callable[[], int],
        order_ids: Callable[[], int] | None = None,
    ) -> None:
        """Keep orders for one simulated store.

        Args:
            state: where the ``orders_created`` and ``notifications_*`` counters go.
            settings: the current config (the simulator may swap it between resets).
            now: aware wall clock for order and notification times.
            next_seq: the store's sequence, shared with stock pushes (which came first).
            order_ids: where new orders' ids come from (the sandbox's never repeat); None:
                51000001, 51000002, ... again after every reset.
        """
        self.state = state
        self.settings = settings
        self.now = now
        self.next_seq = next_seq
        self.unique_order_ids = order_ids
        self.notify_lock = asyncio.Lock()
        self.background = BackgroundTasks()
        self.reset()

    def reset(self) -> None:
        self.orders: dict[int, SimOrder] = {}
        self.next_order_id = self.unique_order_ids or itertools.count(51_000_001).__next__
        self.notifications: list[dict[str, Any]] = []

    # -- orders --------------------------------------------------------------------------------

    def held_since(self, offer: str, pushed_seq: int) -> tuple[int, int]:
        """(held, frozen) units of ``offer`` in orders created after the push ``pushed_seq``:
        held still count against AVAILABLE, frozen are those not shipped nor cancelled."""
        held = frozen = 0
        for order in self.orders.values():
            if order.seq <= pushed_seq or not order.holds:
                continue
            units = sum(qty for item, qty in order.items if item == offer)
            held += units
            if order.status not in SHIPPED and order.status != "CANCELLED":
                frozen += units
        return held, frozen

    def select(
        self,
        *,
        order_ids: list[Any] | None,
        campaign_ids: list[Any] | None,
        statuses: Any,
        low: datetime | None,
        high: datetime | None,
    ) -> list[SimOrder]:
        """Orders matching every given filter, by update time (then id)."""
        return [
            o
            for o in sorted(self.orders.values(), key=lambda o: (o.updated_at, o.order_id))
            if (order_ids is None or o.order_id in order_ids)
            and (campaign_ids is None or o.campaign_id in campaign_ids)
            and (not statuses or o.status in statuses)
            and (low is None or o.updated_at >= low)
            and (high is None or o.updated_at < high)
        ]

    def create(self, body: dict[str, Any]) -> SimOrder | None:
        """A new order from ``{"items": [{"offerId", "count"}], "orderId"?, "campaignId"?,
        "status"?, "substatus"?}``; None if it has no items or a count below 1."""
        items = [(str(i["offerId"]), int(i["count"])) for i in body.get("items", [])]
        if not items or any(qty < 1 for _, qty in items):
            return None
        now = self.now()
        status = str(body.get("status", "PROCESSING"))
        order = SimOrder(
            order_id=int(body.get("orderId") or self.next_order_id()),
            campaign_id=int(body.get("campaignId", self.settings().campaign_id)),
            items=items,
            status=status,
            substatus=str(body.get("substatus") or DEFAULT_SUBSTATUS.get(status, "UNKNOWN")),
            created_at=now,
            updated_at=now,
            seq=self.next_seq(),
        )
        self.orders[order.order_id] = order
        self.state.count("orders_created")
        self.notify(
            {
                "notificationType": "ORDER_CREATED",
                "campaignId": order.campaign_id,
                "orderId": order.order_id,
                "createdAt": utc_z(now),
                "items": [{"offerId": o, "count": q} for o, q in items],
            }
        )
        return order

    def move(self, order: SimOrder, body: dict[str, Any]) -> None:
        """Set ``body["status"]`` (and ``substatus``) and send the notifications YM would."""
        status = str(body["status"])
        before = (order.status, order.substatus)
        if status == "CANCELLED" and before[0] not in SHIPPED and before[1] != "READY_TO_SHIP":
            order.holds = False  # YM gives the units back itself; a packed order waits a push
        order.status = status
        order.substatus = str(body.get("substatus") or DEFAULT_SUBSTATUS.get(status, "UNKNOWN"))
        order.updated_at = self.now()
        when = utc_z(order.updated_at)
        common = {"campaignId": order.campaign_id, "orderId": order.order_id}
        self.notify(
            {
                "notificationType": "ORDER_STATUS_UPDATED",
                **common,
                "status": order.status,
                "substatus": order.substatus,
                "updatedAt": when,
            }
        )
        if status == "CANCELLED":
            items = [{"offerId": o, "count": q} for o, q in order.items]
            self.notify(
                {
                    "notificationType": "ORDER_CANCELLED",
                    **common,
                    "cancelledAt": when,
                    "items": items,
                }
            )

    # -- notifications -------------------------------------------------------------------------

    def notify(self, payload: dict[str, Any]) -> None:
        """Send a notification in the background (fire and forget), in creation order."""
        if not self.settings().notify_url:
            return
        self.background.start(self._post(payload))

    async def _post(self, payload: dict[str, Any]) -> None:
        url = self.settings().notify_url or ""
        async with self.notify_lock:  # FIFO: deliveries leave in the order they were made
            # sent_ns: when it left (epoch ns), for the benchmarks: propagation is timed from it.
            record: dict[str, Any] = {"payload": payload, "status": None, "sent_ns": time.time_ns()}
            self.notifications.append(record)
            try:
                async with httpx.AsyncClient(timeout=10.0, verify=notify_ssl_context()) as client:
                    response = await client.post(url, json=payload)
                record["status"] = response.status_code
                record["answered_ns"] = time.time_ns()
                self.state.count("notifications_sent")
            except httpx.HTTPError:
                self.state.count("notifications_failed")


def order_routes(book: OrderBook) -> list[Route]:
    """The ``/_sim`` routes that create, move and list orders and send a PING."""

    async def create_order(request: Request) -> Response:
        order = book.create(await request.json())
        if order is None:
            return JSONResponse({"error": "items[] with offerId and count >= 1"}, 400)
        return JSONResponse(order.as_json(), 201)

    async def move_order(request: Request) -> Response:
        order = book.orders.get(int(request.path_params["orderId"]))
        if order is None:
            return JSONResponse({"error": "no such order"}, 404)
        book.move(order, await request.json())
        return JSONResponse(order.as_json())

    async def list_all(_: Request) -> Response:
        return JSONResponse({"orders": [o.as_json() for o in book.orders.values()]})

    async def ping(_: Request) -> Response:
        book.notify({"notificationType": "PING", "time": utc_z(book.now())})
        return JSONResponse({"sent": bool(book.settings().notify_url)})

    async def notifications(_: Request) -> Response:
        return JSONResponse({"notifications": book.notifications})

    return [
        Route("/_sim/orders", create_order, methods=["POST"]),
        Route("/_sim/orders", list_all, methods=["GET"]),
        Route("/_sim/orders/{orderId:int}/status", move_order, methods=["POST"]),
        Route("/_sim/notify-ping", ping, methods=["POST"]),
        Route("/_sim/notifications", notifications, methods=["GET"]),
    ]
