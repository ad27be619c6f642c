"""Assembly tasks of the Wildberries simulator: one task is one unit of one size (``chrtId``).

The task's JSON follows ``OrderNew`` (``GET /api/v3/orders/new``), the shared order fields of
``GET /api/v3/orders`` and the status object of ``POST /api/v3/orders/status``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SUPPLIER_STATUSES = frozenset({"new", "confirm", "complete", "cancel", "cancel_carrier"})
WB_STATUSES = frozenset(
    {
        "waiting", "sorted", "sold", "canceled", "canceled_by_client", "declined_by_client",
        "defect", "ready_for_pickup", "postponed_delivery", "accepted_by_carrier",
        "sent_to_carrier", "canceled_by_carrier",
    }
)  # fmt: skip
"""As listed in the status method's description (its enums omit the two carrier cancels)."""


@dataclass
class SimTask:
    """One assembly task as the simulator keeps it."""

    id: int
    chrt_id: int
    warehouse_id: int
    created_at: int
    """Epoch seconds: WB's dates are whole seconds."""
    article: str = ""
    nm_id: int = 0
    price: int = 0
    skus: list[str] = field(default_factory=list)
    supplier_status: str = "new"
    wb_status: str = "waiting"

    def common(self) -> dict[str, Any]:
        created = datetime.fromtimestamp(self.created_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "address": None, "scanPrice": None, "deliveryType": "fbs",
            "orderUid": f"{self.id}_{uuid.uuid5(uuid.NAMESPACE_OID, str(self.id)).hex}",
            "article": self.article, "colorCode": "",
            "rid": uuid.uuid5(uuid.NAMESPACE_URL, str(self.id)).hex,
            "createdAt": created, "offices": ["Подольск"], "skus": self.skus, "id": self.id,
            "warehouseId": self.warehouse_id, "officeId": 15, "nmId": self.nm_id,
            "chrtId": self.chrt_id, "price": self.price, "convertedPrice": self.price,
            "currencyCode": 643, "convertedCurrencyCode": 643, "cargoType": 1,
            "crossBorderType": 0, "comment": "", "isZeroOrder": False, "options": {"isB2B": False},
        }  # fmt: skip

    def as_new(self) -> dict[str, Any]:
        """``OrderNew`` of ``GET /api/v3/orders/new``."""
        return self.common() | {
            "salePrice": self.price, "finalPrice": self.price, "convertedFinalPrice": self.price,
            "requiredMeta": [], "optionalMeta": [], "isPickupPointShipmentAllowed": True,
        }  # fmt: skip

    def status(self) -> dict[str, Any]:
        cancellable = self.supplier_status in {"new", "confirm"} and self.wb_status == "waiting"
        return {
            "id": self.id,
            "supplierStatus": self.supplier_status,
            "wbStatus": self.wb_status,
            "isCancellable": cancellable,
        }
