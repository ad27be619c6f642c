"""FBS postings and pushed stock of the Ozon simulator, with Ozon's reservation rules.

A posting's units count as ``reserved`` while it is unfulfilled in the warehouse, and
``present = pushed stock + reserved``; when it is handed over, ``present`` and ``reserved`` both
drop; a cancel before that frees the reservation. Each move returns the push notification Ozon
would send for it (reference §1.6). The products the postings name are kept by
:class:`~inventory_engine.simulators.ozon_products.OzonProducts`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from inventory_engine.simulators.base import is_int
from inventory_engine.simulators.ozon_products import OzonCatalog, OzonProducts, SimProduct

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
            "in_process_at": push_time(self.in_process_at),
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
            "in_process_at": push_time(self.in_process_at),
            "shipment_date": push_time(self.shipment_date),
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
    """Pushed stock and postings of the simulated account (and its products); Ozon's
    reservation rules."""

    def __init__(
        self,
        warehouses: Mapping[int, str],
        *,
        now: Callable[[], datetime],
        auto_products: bool,
        catalog: OzonCatalog | None = None,
        numbers: Callable[[], int] | None = None,
    ) -> None:
        """Keep one simulated account.

        Args:
            warehouses: the account's FBS warehouses, id -> name.
            now: aware UTC wall clock for posting times.
            auto_products: register an unknown ``offer_id`` when it is first used.
            catalog: where products get ids the caller leaves out (else they are made up).
            numbers: where new postings' numbers come from (the sandbox's never repeat);
                None: 1, 2, ... again after every reset.
        """
        self.warehouses = warehouses
        self.now = now
        self.products = OzonProducts(auto_products=auto_products, catalog=catalog)
        self.numbers = numbers
        self.reset(())

    def reset(self, products: Sequence[SimProduct]) -> None:
        self.present: dict[tuple[str, int], int] = {}
        self.postings: dict[str, SimPosting] = {}
        self._next_number = self.numbers or itertools.count(1).__next__
        self.products.reset(products)

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
            if (product := self.products.by_sku.get(sku)) is not None
            for warehouse, present, reserved in self._pairs(product)
        ]

    def warehouse_products(self, products: list[SimProduct]) -> list[dict[str, Any]]:
        """``/v2/product/info/stocks-by-warehouse/fbs`` rows: per product and warehouse, with
        ``free_stock`` = ``present - reserved`` (what a push set)."""
        return [
            {
                "offer_id": product.offer_id,
                "product_id": product.product_id,
                "sku": product.sku,
                "warehouse_id": warehouse,
                "warehouse_name": self.warehouses.get(warehouse, ""),
                "present": present,
                "reserved": reserved,
                "free_stock": present - reserved,
            }
            for product in products
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
            for product in self.products.all()
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
        n = self._next_number()
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
        if not isinstance(row, dict) or not is_int(row.get("quantity")) or row["quantity"] < 1:
            raise ValueError("each product needs a positive integer quantity")
        if "sku" in row:
            sku = row["sku"]
            product = (
                self.products.listed(sku=sku) if is_int(sku) else None
            ) or self.products.by_sku.get(sku)
        else:
            offer_id = str(row.get("offer_id", ""))
            product = self.products.listed(offer_id=offer_id) or self.products.by_offer_id(
                offer_id, create=True
            )
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
            "changed_state_date": push_time(posting.changed_at),
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


def push_time(moment: datetime) -> str:
    """Ozon's push-notification time: UTC with milliseconds and ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _admin_time(value: Any) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
