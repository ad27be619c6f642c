"""Wildberries (WB) marketplace API: FBS stock on a seller warehouse, and assembly-task polling.

Stock is pushed per size id (``chrtId``) to one seller warehouse with
``PUT /api/v3/stocks/{warehouseId}`` and read back with ``POST`` on the same path. WB answers
204 for a good batch and 409 with a list of per-item errors otherwise; it does **not** validate
field names, so a misspelled key (``sku``, ``quantity``) also gets 204 and updates nothing. The
body built here therefore uses exactly ``chrtId``/``amount`` and a unit test pins those keys.

WB offers no webhooks to self-built integrations (reference §2.4), so orders are polled:

* :meth:`WildberriesClient.list_orders` reads ``GET /api/v3/orders/new`` (every new assembly task
  at call time, no paging) and maps each task to a RESERVE with its one line;
* :meth:`WildberriesClient.order_statuses` asks ``POST /api/v3/orders/status`` for the ids the
  poller tracks and maps ``supplierStatus``/``wbStatus`` to a ledger action;
* :meth:`WildberriesClient.get_order` finds one task by id: WB has no "get one task" method, so it
  asks the status first (cheap; an unknown id ends there) and then pages
  ``GET /api/v3/orders`` over 30-day windows back to WB's 3-month horizon.

One assembly task is one unit of one size: the task schema has ``chrtId`` but no quantity, and a
basket of several units becomes several tasks sharing ``orderUid``. The task ``id`` is the order
id here, because statuses, cancels and supplies are all per task. The answer models live in
:mod:`inventory_engine.channels.wildberries_models`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import httpx
import structlog
from pydantic import BaseModel, SecretStr, ValidationError

from inventory_engine.channels.base import (
    ChannelLine,
    ChannelOrder,
    ChannelRejectedError,
    ChannelStock,
    ItemOutcome,
    ItemResult,
    OrdersPage,
    PushResult,
    StockUpdate,
    chunks,
    push_with_local_checks,
)
from inventory_engine.channels.http import parse_answer, send, utcnow
from inventory_engine.channels.wildberries_models import (
    ItemsError,
    StatusesAnswer,
    StocksAnswer,
    Task,
    TasksAnswer,
    TaskStatus,
)
from inventory_engine.config import WildberriesSettings
from inventory_engine.domain.models import OrderAction
from inventory_engine.domain.status_rules import wildberries_action, wildberries_unrecognised

log = structlog.get_logger()

KIND = "wildberries"
MAX_BATCH = 1_000
"""Items per ``PUT /api/v3/stocks/{warehouseId}`` (``stocks`` maxItems) and per stock read."""
ERROR_BILLED_AS = 10
"""WB counts every 4xx answer as this many requests against the limit (Aug 2026 spec; the Dec
2025 spec said so of a 409 only). A 429 is left out: WB's limiter refused it and its
``X-Ratelimit-Retry`` already says when to come back."""
CONFLICT_BILLED_AS = ERROR_BILLED_AS
"""The 409 (item errors) case of :data:`ERROR_BILLED_AS`."""
MAX_AMOUNT = 100_000
"""Largest ``amount`` WB takes; above it the item fails with 409 ``UploadDataLimit``."""
MAX_STATUS_IDS = 1_000
"""Task ids per ``POST /api/v3/orders/status``."""
ORDERS_PAGE_LIMIT = 1_000
"""``limit`` of ``GET /api/v3/orders`` (1..1000)."""
ORDERS_WINDOW_S = 30 * 86_400
"""``GET /api/v3/orders`` covers at most 30 days per call (``dateFrom``/``dateTo``, Unix s)."""
ORDERS_HORIZON_S = 90 * 86_400
"""That method only knows tasks created in the last 3 months (older ones are in the archive)."""

STOCKS_PATH = "/api/v3/stocks/{warehouse_id}"
ORDERS_NEW_PATH = "/api/v3/orders/new"
ORDERS_PATH = "/api/v3/orders"
ORDERS_STATUS_PATH = "/api/v3/orders/status"

RETRY_HEADER = "X-Ratelimit-Retry"
"""Seconds to wait after a 429 (WB's limiter); ``Retry-After`` and then 1 s are the fallbacks."""
RETRY_HEADERS = (RETRY_HEADER, "Retry-After")
DEFAULT_RETRY_S = 1.0

RETRY_CODES = frozenset({"StoreIsProcessing"})
"""409 item codes that pass by themselves: the warehouse is being updated, retry in seconds."""
UPDATE_BLOCKED_RETRY_CODES = frozenset({"WarehouseStocksUpdateBlock"})
"""406 codes that are temporary (works on the warehouse); other 406 codes (a ban) are final."""
NEEDS_LINES_ACTIONS = frozenset(
    {OrderAction.COMMIT, OrderAction.FINAL, OrderAction.CANCEL_AFTER_SHIP}
)
"""Status-only events whose action needs the task's line if the ledger has never seen the task."""


_M = TypeVar("_M", bound=BaseModel)


class WildberriesClient:
    """Pushes FBS stock to one WB seller warehouse and polls its assembly tasks."""

    kind: ClassVar[str] = KIND
    max_batch: ClassVar[int] = MAX_BATCH
    catalog_field: ClassVar[str] = "wb_chrt_id"
    order_item_field: ClassVar[str] = "wb_chrt_id"

    def __init__(
        self,
        http: httpx.Client,
        *,
        name: str,
        token: SecretStr,
        warehouse_id: int,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        """Build a client on an ``httpx.Client`` whose ``base_url`` is the WB marketplace host.

        Args:
            http: the injected client (base URL and timeouts already set).
            name: the configured channel name.
            token: the API token, sent as is in ``Authorization`` (WB's scheme has no Bearer).
            warehouse_id: the seller warehouse stock is pushed to.
            now: aware UTC clock, for order cursors and date windows.
        """
        self.http = http
        self.name = name
        self.warehouse_id = warehouse_id
        self._token = token
        self._now = now

    @classmethod
    def from_settings(cls, settings: WildberriesSettings, http: httpx.Client) -> WildberriesClient:
        """Build the client from a ``[[channels]]`` entry of kind ``wildberries``."""
        return cls(
            http, name=settings.name, token=settings.token, warehouse_id=settings.warehouse_id
        )

    def __repr__(self) -> str:
        return f"WildberriesClient(name={self.name!r}, warehouse_id={self.warehouse_id})"

    # -- stock -----------------------------------------------------------------------------------

    def push_stock(self, updates: Sequence[StockUpdate]) -> PushResult:
        """Set absolute stock for up to ``MAX_BATCH`` sizes on the warehouse.

        Items WB would refuse anyway (a non-numeric chrtId, an amount out of range) are rejected
        here without sending them: a 409 is billed as 10 requests against the stock limit.

        Returns:
            One result per update, in the order given.

        Raises:
            ValueError: more than ``MAX_BATCH`` updates.
            ChannelRateLimitedError, ChannelUnavailableError, ChannelRejectedError, PayloadError.
        """
        if len(updates) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} items per WB stock update, got {len(updates)}")
        # The bill of this call alone: one client serves several sender lanes at once, so it
        # must not be kept on the client between the request and the result.
        billed: list[int] = []
        result = push_with_local_checks(
            updates, _local_problem, lambda sent: self._put_stocks(sent, billed)
        )
        return PushResult(result.items, billed_extra=sum(billed)) if billed else result

    def _put_stocks(
        self, sent: list[tuple[int, StockUpdate]], billed: list[int]
    ) -> dict[int, ItemResult]:
        # chrtId is the only item field the stock methods take (``sku`` was dropped in 2026).
        body = {"stocks": [{"chrtId": int(u.item_id), "amount": u.quantity} for _, u in sent]}
        try:
            self._request("PUT", self._stocks_path(), json_body=body, endpoint=STOCKS_PATH)
        except ChannelRejectedError as exc:
            # Every 4xx costs ERROR_BILLED_AS requests (set by _request on the error).
            billed.append(exc.billed_extra)
            if exc.status_code == httpx.codes.CONFLICT and exc.response is not None:
                return self._items_from_409(exc, sent)
            code = _error_code(exc.response)
            if exc.status_code == httpx.codes.NOT_ACCEPTABLE and code in UPDATE_BLOCKED_RETRY_CODES:
                return {i: ItemResult(u, ItemOutcome.RETRY, code=code) for i, u in sent}
            raise
        return {index: ItemResult(update, ItemOutcome.ACCEPTED) for index, update in sent}

    def _items_from_409(
        self, exc: ChannelRejectedError, sent: list[tuple[int, StockUpdate]]
    ) -> dict[int, ItemResult]:
        assert exc.response is not None  # noqa: S101 - checked by the caller
        try:
            errors = [ItemsError.model_validate(e) for e in exc.response.json()]
        except (ValueError, TypeError, ValidationError):
            raise exc from None
        listed: dict[int, ItemsError] = {}
        unlisted_code = ""
        for error in errors:
            items = error.data or []
            for item in items:
                if item.chrt_id is not None:
                    listed.setdefault(item.chrt_id, error)
            if not items and not unlisted_code:
                unlisted_code = error.code  # e.g. StoreIsProcessing for the whole warehouse
        results: dict[int, ItemResult] = {}
        for index, update in sent:
            error_for_item = listed.get(int(update.item_id))
            if error_for_item is None:
                # WB's docs do not say whether the rest of a 409 batch was applied. Stock
                # values are absolute, so sending them again is harmless; assuming they were
                # applied could leave a stale (oversellable) number on WB.
                outcome, code, message = ItemOutcome.RETRY, unlisted_code or "NotListed", ""
            else:
                code, message = error_for_item.code, error_for_item.message
                retry = code in RETRY_CODES
                outcome = ItemOutcome.RETRY if retry else ItemOutcome.REJECTED
            results[index] = ItemResult(update, outcome, code=code, message=message)
        log.warning(
            "stock_push_items_failed",
            channel=self.name,
            rejected=sum(r.outcome is ItemOutcome.REJECTED for r in results.values()),
            retry=sum(r.outcome is ItemOutcome.RETRY for r in results.values()),
            status_code=409,
        )
        return results

    def read_stock(self, item_ids: Sequence[str]) -> dict[str, ChannelStock]:
        """What WB shows for these chrtIds on the warehouse; unknown or bad ids are left out.

        Raises:
            ChannelRateLimitedError, ChannelUnavailableError, ChannelRejectedError, PayloadError.
        """
        ids = [int(item_id) for item_id in item_ids if _is_id(item_id)]
        found: dict[str, ChannelStock] = {}
        for chunk in chunks(ids, MAX_BATCH):
            response = self._request(
                "POST", self._stocks_path(), json_body={"chrtIds": chunk}, endpoint=STOCKS_PATH
            )
            for stock in self._parse(StocksAnswer, response).stocks:
                found[str(stock.chrt_id)] = ChannelStock(str(stock.chrt_id), sellable=stock.amount)
        return found

    # -- orders ----------------------------------------------------------------------------------

    def list_orders(self, cursor: str | None) -> OrdersPage:
        """Every new assembly task WB has now, each as a RESERVE with its one line.

        WB's new-task list is a snapshot, not a change feed, so ``cursor`` is not used; the
        returned cursor is the time of the call (ISO 8601) for the poller's bookkeeping. Status
        changes of known tasks come from :meth:`order_statuses`.

        Raises:
            ChannelRateLimitedError, ChannelUnavailableError, ChannelRejectedError, PayloadError.
        """
        called_at = self._now().isoformat()
        response = self._request("GET", ORDERS_NEW_PATH)
        tasks = self._parse(TasksAnswer, response).orders
        orders = tuple(
            _order_from_task(task, wildberries_action("new", None), "new") for task in tasks
        )
        return OrdersPage(orders=orders, cursor=called_at)

    def order_statuses(self, order_ids: Sequence[int | str]) -> list[ChannelOrder]:
        """Current statuses of assembly tasks, mapped to ledger actions (no lines).

        ``needs_lines`` is set for COMMIT, FINAL and CANCEL_AFTER_SHIP: if the ledger has never
        seen the task it must fetch the line with :meth:`get_order` first; a task it already
        holds keeps the lines recorded at its first sight. Ids WB does not know are left out.

        Raises:
            ValueError: an id that is not a WB task id (an integer).
            ChannelRateLimitedError, ChannelUnavailableError, ChannelRejectedError, PayloadError.
        """
        ids = [_task_id(order_id) for order_id in order_ids]
        orders: list[ChannelOrder] = []
        for chunk in chunks(ids, MAX_STATUS_IDS):
            response = self._request("POST", ORDERS_STATUS_PATH, json_body={"orders": chunk})
            orders.extend(
                _order_from_status(s) for s in self._parse(StatusesAnswer, response).orders
            )
        return orders

    def get_order(self, order_id: str) -> ChannelOrder | None:
        """One assembly task with its line and its current status, or None if WB does not know it.

        Costs one status call, then ``GET /api/v3/orders`` pages (newest 30-day window first,
        back 90 days) until the task turns up: use it for tasks the ledger has never seen.

        Raises:
            ChannelRateLimitedError, ChannelUnavailableError, ChannelRejectedError, PayloadError.
        """
        if not _is_id(order_id):
            return None
        status = next((s for s in self.order_statuses([order_id]) if s.order_id == order_id), None)
        if status is None:
            return None
        task = self._find_task(int(order_id))
        if task is None:
            return None
        line = ChannelLine(item_id=str(task.chrt_id), quantity=1)
        return ChannelOrder(
            order_id=status.order_id,
            action=status.action,
            status=status.status,
            lines=(line,),
            event_key=status.event_key,
            changed_at=task.created_at,
            unrecognised=status.unrecognised,
        )

    def _find_task(self, task_id: int) -> Task | None:
        # WB's dates are whole seconds: +1 keeps a task created this very second in the window.
        date_to = int(self._now().timestamp()) + 1
        oldest = date_to - ORDERS_HORIZON_S
        while date_to > oldest:
            date_from = date_to - ORDERS_WINDOW_S
            for task in self._tasks_between(date_from, date_to):
                if task.id == task_id:
                    return task
            date_to = date_from
        return None

    def _tasks_between(self, date_from: int, date_to: int) -> Iterator[Task]:
        next_value = 0
        while True:
            params = {
                "limit": ORDERS_PAGE_LIMIT,
                "next": next_value,
                "dateFrom": date_from,
                "dateTo": date_to,
            }
            page = self._parse(TasksAnswer, self._request("GET", ORDERS_PATH, params=params))
            yield from page.orders
            if len(page.orders) < ORDERS_PAGE_LIMIT or not page.next or page.next == next_value:
                return
            next_value = page.next

    # -- plumbing --------------------------------------------------------------------------------

    def _stocks_path(self) -> str:
        return STOCKS_PATH.format(warehouse_id=self.warehouse_id)

    def _request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        endpoint: str | None = None,
    ) -> httpx.Response:
        """One request; a 4xx other than 429 carries WB's bill (``billed_extra``)."""
        try:
            return send(
                self.http,
                self.name,
                method,
                url,
                json_body=json_body,
                params=params,
                headers={"Authorization": self._token.get_secret_value()},
                retry_header=RETRY_HEADERS,
                default_retry_s=DEFAULT_RETRY_S,
                now=self._now,
                endpoint=f"{method} {endpoint or url}",
            )
        except ChannelRejectedError as exc:
            if 400 <= exc.status_code < 500:
                exc.billed_extra = ERROR_BILLED_AS - 1
            raise

    def _parse(self, model: type[_M], response: httpx.Response) -> _M:
        return parse_answer(self.name, model, response, what="WB answer")


def _local_problem(update: StockUpdate) -> tuple[str, str] | None:
    """(code, message) of a value WB would refuse (and bill a 409 for), None if it may go."""
    if not _is_id(update.item_id):
        return "InvalidChrtId", "chrtId must be an integer"
    if update.quantity > MAX_AMOUNT:
        return "UploadDataLimit", f"amount above {MAX_AMOUNT}"
    if update.quantity < 0:
        return "InvalidAmount", "amount below 0"
    return None


def _is_id(value: str) -> bool:
    """A WB id: ASCII digits only (``str.isdigit`` alone also takes "²", which int() refuses)."""
    return value.isascii() and value.isdigit()


def _error_code(response: httpx.Response | None) -> str:
    if response is None:
        return ""
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""


def _task_id(order_id: int | str) -> int:
    if isinstance(order_id, int):
        return order_id
    if not _is_id(order_id):
        raise ValueError(f"WB assembly task ids are integers, got {order_id!r}")
    return int(order_id)


def _order_from_task(task: Task, action: OrderAction, status: str) -> ChannelOrder:
    return ChannelOrder(
        order_id=str(task.id),
        action=action,
        status=status,
        lines=(ChannelLine(item_id=str(task.chrt_id), quantity=1),),
        event_key=f"{task.id}:{status}",
        changed_at=task.created_at,
    )


def _order_from_status(status: TaskStatus) -> ChannelOrder:
    action = wildberries_action(status.supplier_status, status.wb_status)
    text = f"{status.supplier_status or ''}/{status.wb_status or ''}"
    return ChannelOrder(
        order_id=str(status.id),
        action=action,
        status=text,
        needs_lines=action in NEEDS_LINES_ACTIONS,
        event_key=f"{status.id}:{text}",
        unrecognised=wildberries_unrecognised(status.supplier_status, status.wb_status),
    )
