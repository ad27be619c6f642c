"""The one small interface every sales channel implements, and the failures mapped once.

A channel client speaks one marketplace's HTTP API with an injected ``httpx.Client`` (base URL,
explicit timeouts and credentials set by whoever builds it). It never touches Redis; the sync
path decides what to push and what a failure means for the ledger.

Failures of a whole request (raised)::

    ChannelError
    ├── ChannelRateLimitedError   429 / 420 / Ozon "rate limit" text: retry after ``retry_after_s``
    ├── ChannelUnavailableError   5xx, timeouts, connection errors: retry with backoff
    ├── ChannelRejectedError      other 4xx (bad auth, bad request): not retried blindly
    │   └── ChannelEndpointRetiredError  404/410 from no such method (not a missing item):
    │                                    the marketplace retired this API version
    └── PayloadError              a webhook payload or API answer that makes no sense

Failures of single items inside a successful request come back in :class:`PushResult`.

The shared helpers at the end serve every marketplace client: :func:`send` (the mapping above,
with the rate-limit header(s) read as seconds or a date), :func:`push_with_local_checks` (never
send a value the marketplace refuses anyway), :func:`parse_answer` and :func:`chunks`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Protocol, TypeVar, runtime_checkable

import httpx

from inventory_engine.constants import MAX_LINE_QUANTITY, MAX_ORDER_LINES
from inventory_engine.domain.models import OrderAction, check_identifier
from inventory_engine.errors import InventoryError

# -- values ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StockUpdate:
    """Absolute stock for one item on one channel.

    Attributes:
        sku: the seller's SKU (for results and logs).
        item_id: the channel's own id of the item (Ozon offer_id, WB chrtId, YM offer sku).
        quantity: units the channel should offer, already clamped to the channel's ceiling.
    """

    sku: str
    item_id: str
    quantity: int


class ItemOutcome(StrEnum):
    ACCEPTED = "accepted"
    """The channel took the new value."""
    THROTTLED = "throttled"
    """Too soon for this item (Ozon's 30 s rule): send the latest value after ``retry_after_s``."""
    RETRY = "retry"
    """A passing per-item problem (e.g. WB StoreIsProcessing, or an unclear batch answer)."""
    REJECTED = "rejected"
    """The channel refuses this item (unknown id, value too big...): park it, do not loop."""


@dataclass(frozen=True, slots=True)
class ItemResult:
    update: StockUpdate
    outcome: ItemOutcome
    code: str = ""
    message: str = ""
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class PushResult:
    """One result per update sent, in the order sent."""

    items: tuple[ItemResult, ...]
    billed_extra: int = 0
    """Requests the marketplace billed beyond this one (WB bills a 4xx, 409 included, as 10)."""

    def by_outcome(self, outcome: ItemOutcome) -> list[ItemResult]:
        return [item for item in self.items if item.outcome is outcome]


@dataclass(frozen=True, slots=True)
class ChannelStock:
    """What a channel shows for one item when read back.

    ``sellable`` is the figure comparable with what we pushed: for Ozon ``present - reserved``
    (Ozon keeps its own reservation for its postings), for WB the amount, for YM the AVAILABLE
    (or FIT) count.
    """

    item_id: str
    sellable: int
    present: int | None = None
    reserved: int | None = None


@dataclass(frozen=True, slots=True)
class ChannelLine:
    """A line of a marketplace order, in the marketplace's item ids."""

    item_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class ChannelOrder:
    """One order event from a channel, mapped to a ledger action.

    Attributes:
        order_id: the marketplace's order/posting id.
        action: what it does to the ledger (``domain.status_rules``).
        status: the marketplace's own status text, kept for inspection.
        lines: the order's lines; empty when the event carried none.
        needs_lines: the event carried no lines and the action needs them (Ozon
            TYPE_STATE_CHANGED): fetch the order with ``get_order`` first.
        event_key: what makes this event unique, for de-duplication of deliveries.
        changed_at: when the marketplace says the change happened (ISO 8601), if it says.
        unrecognised: the marketplace's state values no status rule knows, as sent
            (``domain.status_rules``): intake logs, counts and keeps them on the order's log.
    """

    order_id: str
    action: OrderAction
    status: str
    lines: tuple[ChannelLine, ...] = ()
    needs_lines: bool = False
    event_key: str = ""
    changed_at: str | None = None
    received_ms: int | None = None
    """When the engine received the event (stamped at intake); propagation counts from it."""
    unrecognised: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OrdersPage:
    """Orders changed since a cursor, and the cursor to ask with next time."""

    orders: tuple[ChannelOrder, ...]
    cursor: str
    more: bool = False


# -- errors ------------------------------------------------------------------------------------


class ChannelError(InventoryError):
    """A channel request failed as a whole."""

    billed_extra: int = 0
    """Requests the marketplace billed beyond this one (WB bills every 4xx as 10)."""

    def __init__(self, channel: str, message: str) -> None:
        self.channel = channel
        super().__init__(f"{channel}: {message}")


class ChannelRateLimitedError(ChannelError):
    """HTTP 429/420 (or Ozon's "slow down" 4xx). ``hinted``: the answer said how long to wait
    (a header); without a hint ``retry_after_s`` is the client's default and the push path
    backs off exponentially from about a second instead."""

    def __init__(
        self, channel: str, message: str, *, retry_after_s: float, hinted: bool = True
    ) -> None:
        self.retry_after_s = retry_after_s
        self.hinted = hinted
        super().__init__(channel, f"rate limited, retry after {retry_after_s:.1f} s: {message}")


class ChannelUnavailableError(ChannelError):
    """5xx, timeout or connection failure: worth retrying with backoff."""


class ChannelRejectedError(ChannelError):
    """The request itself was refused (4xx other than rate limiting)."""

    def __init__(
        self,
        channel: str,
        status_code: int,
        message: str,
        *,
        response: httpx.Response | None = None,
    ) -> None:
        self.status_code = status_code
        self.response = response
        super().__init__(channel, f"HTTP {status_code}: {message}")


class ChannelEndpointRetiredError(ChannelRejectedError):
    """The method itself is gone: 410, or a 404 (or other 4xx) that names no missing item but
    an unknown or deprecated method. Not transient: the marketplace most likely retired this
    API version. ``endpoint`` is the path template (a bounded metric label)."""

    def __init__(
        self,
        channel: str,
        status_code: int,
        message: str,
        *,
        endpoint: str,
        response: httpx.Response | None = None,
    ) -> None:
        self.endpoint = endpoint
        super().__init__(
            channel,
            status_code,
            f"{endpoint} answers as a retired method (likely a retired API version): {message}",
            response=response,
        )


class PayloadError(ChannelError):
    """A webhook payload or API answer that is malformed; ``code`` fits the caller's error shape."""

    def __init__(self, channel: str, message: str, *, code: str = "invalid_payload") -> None:
        self.code = code
        super().__init__(channel, message)


def check_order(channel: str, order: ChannelOrder, *, code: str = "invalid_payload") -> None:
    """Refuse an event the ledger could not record (bad id, too many lines, quantity out of
    range) while the sender can still be told, instead of failing later in a worker.

    Raises:
        PayloadError: with ``code`` (the caller's own error code).
    """
    try:
        check_identifier(order.order_id, "order id")
        if len(order.lines) > MAX_ORDER_LINES:
            raise ValueError(f"an order may have at most {MAX_ORDER_LINES} lines")
        totals: dict[str, int] = {}
        for line in order.lines:
            check_identifier(line.item_id, "item id")
            totals[line.item_id] = totals.get(line.item_id, 0) + line.quantity
            if not 1 <= line.quantity:
                raise ValueError(f"quantity of {line.item_id} must be at least 1")
        for item_id, quantity in totals.items():
            if quantity > MAX_LINE_QUANTITY:
                raise ValueError(f"quantity of {item_id} may not exceed {MAX_LINE_QUANTITY}")
    except ValueError as exc:
        raise PayloadError(channel, str(exc), code=code) from None


# -- the interface -----------------------------------------------------------------------------


@runtime_checkable
class ChannelClient(Protocol):
    """What the engine needs from a sales channel."""

    kind: ClassVar[str]
    """``ozon`` | ``wildberries`` | ``yandex_market`` | ``webhook``."""
    max_batch: ClassVar[int]
    """Most items one push request may carry."""
    catalog_field: ClassVar[str]
    """Catalog column holding the id stock is pushed under (``ozon_offer_id``, ``wb_chrt_id``)."""
    order_item_field: ClassVar[str]
    """Catalog column matching the item ids in this channel's orders (Ozon: ``ozon_sku``)."""

    name: str
    """The configured channel name (metric label, CLI flag)."""

    def push_stock(self, updates: Sequence[StockUpdate]) -> PushResult:
        """Send absolute stock for up to ``max_batch`` items; one result per item."""
        ...

    def read_stock(self, item_ids: Sequence[str]) -> dict[str, ChannelStock]:
        """What the channel shows now for these items (missing ones are left out)."""
        ...

    def list_orders(self, cursor: str | None) -> OrdersPage:
        """Orders new or changed since ``cursor`` (None: the channel's recent window)."""
        ...

    def get_order(self, order_id: str) -> ChannelOrder | None:
        """One order with its lines, or None if the channel does not know it."""
        ...


# -- shared helpers ----------------------------------------------------------------------------

_T = TypeVar("_T")


def push_with_local_checks(
    updates: Sequence[StockUpdate],
    check: Callable[[StockUpdate], tuple[str, str] | None],
    push: Callable[[list[tuple[int, StockUpdate]]], Mapping[int, ItemResult]],
) -> PushResult:
    """Refuse locally what the marketplace would refuse anyway, send the rest in one call.

    A value the channel is known to refuse would cost a request (WB bills a 409 as 10) or sink
    the whole batch (YM names no item in its 400), so it never leaves.

    Args:
        check: ``(code, message)`` of an update that must not be sent (it comes back REJECTED),
            None for one to send.
        push: sends ``(index, update)`` pairs (indexes into ``updates``); returns a result per
            index. Not called when nothing is left to send.

    Returns:
        One result per update, in the order given.
    """
    results: dict[int, ItemResult] = {}
    to_send: list[tuple[int, StockUpdate]] = []
    for index, update in enumerate(updates):
        problem = check(update)
        if problem is None:
            to_send.append((index, update))
        else:
            results[index] = ItemResult(update, ItemOutcome.REJECTED, *problem)
    if to_send:
        results.update(push(to_send))
    return PushResult(tuple(results[index] for index in range(len(updates))))


def chunks(values: Sequence[_T], size: int) -> Iterator[list[_T]]:
    """``values`` in lists of at most ``size``."""
    for start in range(0, len(values), size):
        yield list(values[start : start + size])
