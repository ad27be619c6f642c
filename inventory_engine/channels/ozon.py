"""Ozon Seller API: FBS stock on one seller warehouse, posting polls and the read-back.

Stock is pushed per seller article (``offer_id``) with ``POST /v2/products/stocks``. Ozon
answers HTTP 200 even when items fail, so every item's ``updated``/``errors`` is read: a pair
(offer, warehouse) may change at most once per 30 s (item error ``TOO_MANY_REQUESTS`` /
``Stock is updated too frequently`` -> THROTTLED), other item errors are final (REJECTED).

Read-back (:meth:`OzonClient.read_stock`) lives in :mod:`inventory_engine.channels.ozon_read`:
``/v2/product/info/stocks-by-warehouse/fbs`` by offer id (default), or the v1 pair (v4 info
resolves offer_id -> sku, then the v1 per-warehouse method), per ``stock_read_api``. Ozon
reserves for its own postings and the pushed ``stock`` excludes them, so read-back compares
the sellable figure (``free_stock``, else ``present - reserved``).

Postings (FBS orders) are polled with ``/v3/posting/fbs/list`` filtered on
``last_changed_status_date``; ``/v3/posting/fbs/unfulfilled/list`` is the safety net for late
``TYPE_NEW_POSTING`` pushes (parsed in :mod:`inventory_engine.channels.ozon_notifications`).
The posting number is the order id; line item ids are Ozon SKUs (catalog ``ozon_sku``). The
answer models live in :mod:`inventory_engine.channels.ozon_models`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import httpx
import structlog
from pydantic import BaseModel, SecretStr

from inventory_engine.channels.base import (
    ChannelEndpointRetiredError,
    ChannelLine,
    ChannelOrder,
    ChannelRateLimitedError,
    ChannelRejectedError,
    ChannelStock,
    ItemOutcome,
    ItemResult,
    OrdersPage,
    PushResult,
    StockUpdate,
    push_with_local_checks,
)
from inventory_engine.channels.http import parse_answer, send, utcnow
from inventory_engine.channels.ozon_models import (
    GetAnswer,
    ListAnswer,
    Posting,
    StockResult,
    StocksAnswer,
)
from inventory_engine.channels.ozon_read import StockReadApi
from inventory_engine.channels.ozon_read import read_stock as read_ozon_stock
from inventory_engine.config import OzonSettings
from inventory_engine.domain.status_rules import ozon_action, ozon_unrecognised

log = structlog.get_logger()

KIND = "ozon"
MAX_BATCH = 100
"""(offer, warehouse) pairs per ``POST /v2/products/stocks``."""
STOCK_CEILING = 1_000_000
"""Ozon refuses ``stock`` >= this with item error ``STOCK_TOO_BIG`` (must be < 1 000 000)."""
ITEM_WINDOW_S = 30.0
"""One (offer, warehouse) pair may be updated once per 30 s; a THROTTLED item waits this long."""
ORDERS_PAGE_LIMIT = 1_000
"""``limit`` of the posting lists (1..1000)."""
FIRST_POLL_WINDOW = timedelta(hours=24)
"""Status changes read by the first poll, which has no cursor."""
POLL_OVERLAP = timedelta(minutes=2)
"""Each poll re-reads this much before the last window's end: Ozon's clock and index may lag
ours. Re-read postings are harmless, ledger events are idempotent."""
ORDERS_LOOKBACK = timedelta(days=360)
"""``filter.since`` of the posting list: creation period, which Ozon caps at one year."""
UNFULFILLED_BACK = timedelta(days=30)
UNFULFILLED_AHEAD = timedelta(days=60)
"""Cutoff window of the unfulfilled list: overdue postings, and new ones due within 60 days."""
MAX_PAGES = 50
"""Guard against a paging loop that never ends (50 000 postings or products)."""

STOCKS_PATH = "/v2/products/stocks"
POSTINGS_LIST_PATH = "/v3/posting/fbs/list"
POSTINGS_UNFULFILLED_PATH = "/v3/posting/fbs/unfulfilled/list"
POSTING_GET_PATH = "/v3/posting/fbs/get"

RATE_LIMIT_CODE = 8
"""``code`` of Ozon's generic error body for "You have reached request rate limit per second"."""
RATE_LIMIT_MESSAGE = "rate limit"
DEFAULT_RETRY_S = 1.0
"""Ozon sends no Retry-After; its limits are per second (all methods) and per minute (stocks)."""
CIRCUIT_OPEN_MESSAGE = "Circle is open"
CIRCUIT_OPEN_RETRY_S = 180.0
"""Ozon's circuit breaker: "wait a few minutes" (reference §1.1)."""
THROTTLED_ITEM_CODES = frozenset({"TOO_MANY_REQUESTS", "Stock is updated too frequently"})
RETRY_ITEM_CODES = frozenset({"INTERNAL_ERROR", "Internal error"})
"""Item errors that are Ozon's own passing fault, not a verdict on the item (UNCONFIRMED)."""


_M = TypeVar("_M", bound=BaseModel)


def ozon_time(moment: datetime) -> str:
    """Ozon's UTC date-time format, ``2019-08-24T14:15:22Z`` (whole seconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class OzonClient:
    """Pushes FBS stock to one Ozon warehouse, reads it back and polls its postings."""

    kind: ClassVar[str] = KIND
    max_batch: ClassVar[int] = MAX_BATCH
    catalog_field: ClassVar[str] = "ozon_offer_id"
    order_item_field: ClassVar[str] = "ozon_sku"

    def __init__(
        self,
        http: httpx.Client,
        *,
        name: str,
        client_id: str,
        api_key: SecretStr,
        warehouse_id: int,
        stock_read_api: StockReadApi = "v2",
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        """Build a client on an ``httpx.Client`` whose ``base_url`` is the Seller API host.

        Args:
            http: the injected client (base URL and timeouts already set).
            name: the configured channel name.
            client_id: the seller's ``Client-Id``.
            api_key: the ``Api-Key``; read only to build each request's headers.
            warehouse_id: the FBS warehouse stock is pushed to and read from.
            stock_read_api: read-back method version (see :mod:`.ozon_read`).
            now: aware UTC clock, for the posting windows and cursors.
        """
        self.http = http
        self.name = name
        self.warehouse_id = warehouse_id
        self.stock_read_api: StockReadApi = stock_read_api
        self._client_id = client_id
        self._api_key = api_key
        self._now = now

    @classmethod
    def from_settings(cls, settings: OzonSettings, http: httpx.Client) -> OzonClient:
        """Build the client from a ``[[channels]]`` entry of kind ``ozon``."""
        return cls(
            http,
            name=settings.name,
            client_id=settings.client_id,
            api_key=settings.api_key,
            warehouse_id=settings.warehouse_id,
            stock_read_api=settings.stock_read_api,
        )

    def __repr__(self) -> str:
        return f"OzonClient(name={self.name!r}, warehouse_id={self.warehouse_id})"

    # -- stock -----------------------------------------------------------------------------------

    def push_stock(self, updates: Sequence[StockUpdate]) -> PushResult:
        """Set absolute stock for up to ``MAX_BATCH`` offers on the warehouse.

        Values Ozon refuses anyway (>= ``STOCK_CEILING``, negative) are rejected here unsent.

        Returns:
            One result per update, in the order given.

        Raises:
            ValueError: more than ``MAX_BATCH`` updates.
            ChannelRateLimitedError, ChannelUnavailableError, ChannelRejectedError, PayloadError.
        """
        if len(updates) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} items per Ozon stock update, got {len(updates)}")
        return push_with_local_checks(updates, _local_problem, self._put_stocks)

    def _put_stocks(self, sent: list[tuple[int, StockUpdate]]) -> dict[int, ItemResult]:
        body = {
            "stocks": [
                {"offer_id": u.item_id, "stock": u.quantity, "warehouse_id": self.warehouse_id}
                for _, u in sent
            ]
        }
        answer = self._parse(StocksAnswer, self._request(STOCKS_PATH, body))
        return self._item_results(answer, sent)

    def _item_results(
        self, answer: StocksAnswer, sent: list[tuple[int, StockUpdate]]
    ) -> dict[int, ItemResult]:
        by_offer: dict[str, list[StockResult]] = {}
        for answered in answer.result:
            if answered.warehouse_id in (0, self.warehouse_id):
                by_offer.setdefault(answered.offer_id, []).append(answered)
        results: dict[int, ItemResult] = {}
        for index, update in sent:
            rows = by_offer.get(update.item_id)
            # A pair Ozon did not answer for: values are absolute, so sending it again is safe.
            row = rows.pop(0) if rows else None
            results[index] = _item_result(update, row)
        failed = [r for r in results.values() if r.outcome is not ItemOutcome.ACCEPTED]
        if failed:
            log.warning(
                "stock_push_items_failed",
                channel=self.name,
                throttled=sum(r.outcome is ItemOutcome.THROTTLED for r in failed),
                rejected=sum(r.outcome is ItemOutcome.REJECTED for r in failed),
                retry=sum(r.outcome is ItemOutcome.RETRY for r in failed),
            )
        return results

    def read_stock(self, item_ids: Sequence[str]) -> dict[str, ChannelStock]:
        """What Ozon shows for these offers on the configured warehouse.

        ``sellable`` is what a push would have set (``free_stock``, else ``present -
        reserved``). Which offers are left out or read as 0 depends on the method version
        (:mod:`inventory_engine.channels.ozon_read`).

        Raises:
            ChannelRateLimitedError, ChannelUnavailableError, ChannelRejectedError, PayloadError.
        """
        return read_ozon_stock(
            self.stock_read_api, self._request, self._parse, self.warehouse_id, item_ids
        )

    # -- orders ----------------------------------------------------------------------------------

    def list_orders(self, cursor: str | None) -> OrdersPage:
        """One page of postings whose status changed since ``cursor``.

        The posting object carries no status-change time, so the cursor is the end of the
        window read (ISO 8601, minus ``POLL_OVERLAP``); mid-window it is
        ``"<from>|<to>|<offset>"`` and ``more`` is set. No cursor: the last 24 hours.

        Raises:
            ValueError: a cursor this client did not produce.
            ChannelRateLimitedError, ChannelUnavailableError, ChannelRejectedError, PayloadError.
        """
        start, end, offset = self._window(cursor)
        body = {
            "dir": "ASC",
            "filter": {
                "since": ozon_time(end - ORDERS_LOOKBACK),
                "to": ozon_time(end),
                "last_changed_status_date": {"from": ozon_time(start), "to": ozon_time(end)},
                "warehouse_id": [str(self.warehouse_id)],
            },
            "limit": ORDERS_PAGE_LIMIT,
            "offset": offset,
        }
        page = self._parse(ListAnswer, self._request(POSTINGS_LIST_PATH, body)).result
        orders = tuple(_order_from_posting(p) for p in page.postings)
        if page.has_next and page.postings:
            resume = f"{ozon_time(start)}|{ozon_time(end)}|{offset + len(page.postings)}"
            return OrdersPage(orders=orders, cursor=resume, more=True)
        return OrdersPage(orders=orders, cursor=ozon_time(max(start, end - POLL_OVERLAP)))

    def _window(self, cursor: str | None) -> tuple[datetime, datetime, int]:
        # Ozon takes whole seconds: round the end up so that "now" is inside the window.
        end = self._now().replace(microsecond=0) + timedelta(seconds=1)
        if not cursor:
            return end - FIRST_POLL_WINDOW, end, 0
        parts = cursor.split("|")
        try:
            if len(parts) == 1:
                return min(_parse_time(parts[0]), end), end, 0
            if len(parts) == 3:
                return _parse_time(parts[0]), _parse_time(parts[1]), int(parts[2])
        except ValueError:
            pass
        raise ValueError(f"not an Ozon posting cursor: {cursor!r}")

    def list_unfulfilled(self) -> list[ChannelOrder]:
        """Every posting not yet delivered whose cutoff is in the window around now.

        The safety net for ``TYPE_NEW_POSTING`` pushes that come late or never (reference §1.6).

        Raises:
            ChannelRateLimitedError, ChannelUnavailableError, ChannelRejectedError, PayloadError.
        """
        now = self._now()
        orders: list[ChannelOrder] = []
        for page_number in range(MAX_PAGES):
            body = {
                "dir": "ASC",
                "filter": {
                    "cutoff_from": ozon_time(now - UNFULFILLED_BACK),
                    "cutoff_to": ozon_time(now + UNFULFILLED_AHEAD),
                    "warehouse_id": [self.warehouse_id],
                },
                "limit": ORDERS_PAGE_LIMIT,
                "offset": page_number * ORDERS_PAGE_LIMIT,
            }
            page = self._parse(ListAnswer, self._request(POSTINGS_UNFULFILLED_PATH, body)).result
            orders.extend(_order_from_posting(p) for p in page.postings)
            # Paged by length alone: the docs do not say whether ``count`` is a page or a total.
            if len(page.postings) < ORDERS_PAGE_LIMIT:
                break
        return orders

    def get_order(self, order_id: str) -> ChannelOrder | None:
        """One posting with its lines and current status, or None if Ozon does not know it.

        Raises:
            ChannelRateLimitedError, ChannelUnavailableError, ChannelRejectedError, PayloadError.
        """
        try:
            response = self._request(POSTING_GET_PATH, {"posting_number": order_id})
        except ChannelRejectedError as exc:
            # Ozon's own "no such posting" (a 404 in its JSON error body); a 404 of the path
            # itself (the method was retired) is ChannelEndpointRetiredError and goes up.
            if exc.status_code == httpx.codes.NOT_FOUND and not isinstance(
                exc, ChannelEndpointRetiredError
            ):
                return None
            raise
        return _order_from_posting(self._parse(GetAnswer, response).result)

    # -- plumbing --------------------------------------------------------------------------------

    def _request(self, path: str, body: dict[str, Any]) -> httpx.Response:
        headers = {"Client-Id": self._client_id, "Api-Key": self._api_key.get_secret_value()}
        try:
            return send(
                self.http,
                self.name,
                "POST",
                path,
                json_body=body,
                headers=headers,
                default_retry_s=DEFAULT_RETRY_S,
                now=self._now,
            )
        except ChannelRejectedError as exc:
            # Ozon's own quirk, which send() cannot express: "slow down" may come as any 4xx
            # whose body says so (code 8, "rate limit", or the "Circle is open" breaker).
            retry_s = _rate_limit_retry(exc.response)
            if retry_s is not None:
                raise ChannelRateLimitedError(
                    self.name, f"POST {path} answered HTTP {exc.status_code}", retry_after_s=retry_s
                ) from exc
            raise

    def _parse(self, model: type[_M], response: httpx.Response) -> _M:
        return parse_answer(self.name, model, response, what="Ozon answer")


def _local_problem(update: StockUpdate) -> tuple[str, str] | None:
    """(code, message) of a value Ozon would refuse anyway, None if it may go."""
    if update.quantity >= STOCK_CEILING:
        return "STOCK_TOO_BIG", f"stock must be less than {STOCK_CEILING}"
    if update.quantity < 0:
        return "STOCK_NEGATIVE", "stock < 0"
    if not update.item_id:
        return "offer_id_not_found", "empty"
    return None


def _item_result(update: StockUpdate, row: StockResult | None) -> ItemResult:
    if row is None:
        return ItemResult(update, ItemOutcome.RETRY, code="NOT_IN_ANSWER", message="not answered")
    if row.updated and not row.errors:
        return ItemResult(update, ItemOutcome.ACCEPTED)
    if not row.errors:
        # Neither updated nor a reason: unclear, and an absolute value is safe to send again.
        return ItemResult(update, ItemOutcome.RETRY, code="NOT_UPDATED", message="no error given")
    error = row.errors[0]
    if error.code in THROTTLED_ITEM_CODES or error.message in THROTTLED_ITEM_CODES:
        outcome, retry_after = ItemOutcome.THROTTLED, ITEM_WINDOW_S
    elif error.code in RETRY_ITEM_CODES:
        outcome, retry_after = ItemOutcome.RETRY, None
    else:
        outcome, retry_after = ItemOutcome.REJECTED, None
    return ItemResult(update, outcome, error.code, error.message, retry_after_s=retry_after)


def _rate_limit_retry(response: httpx.Response | None) -> float | None:
    """Seconds to wait if a 4xx body is one of Ozon's "slow down" errors, else None."""
    if response is None:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    message = str(body.get("message", ""))
    if CIRCUIT_OPEN_MESSAGE in message:
        return CIRCUIT_OPEN_RETRY_S
    if body.get("code") == RATE_LIMIT_CODE or RATE_LIMIT_MESSAGE in message:
        return DEFAULT_RETRY_S
    return None


def _order_from_posting(posting: Posting) -> ChannelOrder:
    after_ship = posting.cancellation.cancelled_after_ship if posting.cancellation else False
    quantities: dict[int, int] = {}
    for product in posting.products:
        quantities[product.sku] = quantities.get(product.sku, 0) + product.quantity
    return ChannelOrder(
        order_id=posting.posting_number,
        action=ozon_action(posting.status, cancelled_after_ship=after_ship),
        status=posting.status,
        lines=tuple(ChannelLine(str(sku), qty) for sku, qty in quantities.items()),
        event_key=f"{posting.posting_number}|{posting.status}|{int(after_ship)}",
        # A posting says when it was created, never when its status changed.
        changed_at=None,
        unrecognised=ozon_unrecognised(posting.status),
    )


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("a cursor time must carry its UTC offset")
    return moment.astimezone(UTC)
