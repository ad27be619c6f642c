"""The ``webhook`` channel: the seller's own storefront follows the ledger.

Stock changes are POSTed to the configured URL as a JSON object ``{sku: quantity}`` (absolute
quantities the shop should offer), signed with HMAC-SHA256 of the exact body bytes::

    X-Inventory-Signature: sha256=<hex digest of the body with the channel's secret>

A shop verifies it with :func:`verify_signature` (or the same three lines in its own language)
and answers any 2xx. The storefront reports its own sales through the REST API (reservations,
``POST /v1/orders``), so this channel has no order feed and no stock read-back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from typing import ClassVar

import httpx
from pydantic import SecretStr

from inventory_engine.channels.base import (
    ChannelOrder,
    ChannelStock,
    ItemOutcome,
    ItemResult,
    OrdersPage,
    PushResult,
    StockUpdate,
)
from inventory_engine.channels.http import send
from inventory_engine.config import WebhookSettings

SIGNATURE_HEADER = "X-Inventory-Signature"
DELIVERY_HEADER = "X-Inventory-Delivery"
"""A fresh id per POST, so a shop can drop a delivery it has already applied."""
MAX_BATCH = 1_000


def sign(secret: str, body: bytes) -> str:
    """The signature header value for a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """True if ``header`` is the signature of ``body`` (constant-time comparison)."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


class WebhookClient:
    """POSTs signed ``{sku: quantity}`` changes to the seller's storefront."""

    kind: ClassVar[str] = "webhook"
    max_batch: ClassVar[int] = MAX_BATCH
    catalog_field: ClassVar[str] = "sku"
    order_item_field: ClassVar[str] = "sku"

    def __init__(self, http: httpx.Client, *, name: str, url: str, secret: SecretStr) -> None:
        self.http = http
        self.name = name
        # Posted to exactly as configured: httpx's base_url would append a "/" to the path.
        self.url = url
        self._secret = secret

    @classmethod
    def from_settings(cls, settings: WebhookSettings, http: httpx.Client) -> WebhookClient:
        return cls(http, name=settings.name, url=settings.base_url, secret=settings.secret)

    def push_stock(self, updates: Sequence[StockUpdate]) -> PushResult:
        if len(updates) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} items per webhook call")
        body = json.dumps(
            {u.item_id: u.quantity for u in updates}, separators=(",", ":"), ensure_ascii=False
        ).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret.get_secret_value(), body),
            DELIVERY_HEADER: uuid.uuid4().hex,
        }
        send(self.http, self.name, "POST", self.url, content=body, headers=headers)
        return PushResult(tuple(ItemResult(u, ItemOutcome.ACCEPTED) for u in updates))

    def read_stock(self, item_ids: Sequence[str]) -> dict[str, ChannelStock]:
        """A storefront exposes no read-back API: nothing to compare, so nothing is returned."""
        return {}

    def list_orders(self, cursor: str | None) -> OrdersPage:
        """Storefront sales arrive through the REST API, not a feed: always empty."""
        return OrdersPage(orders=(), cursor=cursor or "")

    def get_order(self, order_id: str) -> ChannelOrder | None:
        return None
