"""Yandex Market Partner API channel: push stock, read it back, poll the business's orders.

Endpoints (``shared/specs/yandex-market-subset.json``, reference §3):

* ``PUT /v2/campaigns/{campaignId}/offers/stocks``: absolute stock, one item per SKU, at most
  2000 SKUs per call and 100 000 SKUs per minute. ``200 {"status": "OK"}`` accepts the whole
  batch. A ``400`` refuses the whole batch: YM answers ``{"status": "ERROR", "errors": [...]}``
  without saying which SKU was wrong, so the client checks locally what YM would refuse (count
  range, SKU pattern) and returns those as REJECTED items instead of sending them.
* ``POST /v3/businesses/{businessId}/offers/stocks/update`` (``stock_api = "v3"``, added by
  YM on 29 Jul 2026, only for cabinets without warehouse groups): ``skuItems`` of
  ``{sku, partnerWarehouseId, count, updatedAt}``, 1..2000 unique (sku, warehouse) pairs, 50
  requests per minute. Its answer is taken as the v2 one (``{"status": "OK"}``; UNCONFIRMED).
* ``POST /v2/campaigns/{campaignId}/offers/stocks``: the read-back, ``offerIds`` 100 at a time
  (read methods' page ``limit`` was cut from 200 to 100 on 4 Aug 2026; this keeps every
  answer within one page either way, and the page token is followed if one comes).
* ``POST /v1/businesses/{businessId}/orders``: the order feed, polled by update time.

Yandex Market signals every limit with HTTP 420 "Enhance Your Calm"; the time the limit lifts is
in ``X-RateLimit-Resource-Until`` as an RFC 822 date, which the shared ``send`` reads (at least
one second away, on the client's clock). Error bodies are worded from YM's error wrapper. The
answer models live in ``yandex_market_models``, notifications (webhooks) in
``yandex_market_notifications``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar, Literal, TypeVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from inventory_engine.channels.base import (
    ChannelLine,
    ChannelOrder,
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
from inventory_engine.channels.yandex_market_models import (
    ApiAnswer,
    Offer,
    Order,
    OrdersAnswer,
    Page,
    StocksAnswer,
)
from inventory_engine.config import YandexMarketSettings
from inventory_engine.domain.status_rules import yandex_market_action, yandex_market_unrecognised

BASE_URL = "https://api.partner.market.yandex.ru"
STOCKS_PATH = "/v2/campaigns/{campaign_id}/offers/stocks"
"""PUT pushes stock, POST reads it back (same path, two operations)."""
STOCKS_V3_PATH = "/v3/businesses/{business_id}/offers/stocks/update"
"""POST pushes stock per (sku, partner warehouse), for cabinets without warehouse groups."""
StockApi = Literal["v2", "v3"]
ORDERS_PATH = "/v1/businesses/{business_id}/orders"
API_KEY_HEADER = "Api-Key"

MAX_BATCH = 2_000
"""``skus`` per PUT (spec ``maxItems: 2000``)."""
MAX_COUNT = 2_000_000_000
"""Largest ``count`` YM accepts (spec ``maximum``); above it the whole batch would get a 400."""
SKU_PATTERN = re.compile(r"^(?=.*\S.*)[^\x00-\x08\x0A-\x1f\x7f]{1,255}$")
"""``ShopSku`` pattern from the spec: one bad SKU would make YM refuse the whole batch."""
READ_MAX_OFFER_IDS = 100
"""``offerIds`` per read-back (spec: 500, sent without ``limit``): 100 keeps each answer within
the page maximum YM set on 4 Aug 2026, should YM page it anyway."""
ORDERS_PAGE_LIMIT = 50
"""``limit`` of the orders list (spec maximum 50; read pages are ≤ 100 since 4 Aug 2026)."""
ORDERS_MAX_WINDOW = timedelta(days=30)
"""Widest date range one orders query may ask for."""
ORDERS_FIRST_LOOKBACK = timedelta(hours=24)
"""How far back the very first poll looks (no cursor yet)."""
MAX_PAGES = 200
"""Safety stop for one paged read (10 000 orders): a server that keeps sending new tokens
cannot loop us."""
RATE_LIMIT_STATUSES = (420, 429)
"""420 is YM's limit answer; 429 is mapped too in case a proxy in between speaks standard HTTP."""
RETRY_HEADERS = ("X-RateLimit-Resource-Until", "Retry-After")
"""Where a 420 says how long to wait: YM's Until (an RFC 822 date), then a standard header."""
DEFAULT_RETRY_S = 60.0
"""Wait after a 420 without ``X-RateLimit-Resource-Until``: the stock limit is per minute, so
one minute always lets the window move on."""
MIN_RETRY_S = 1.0
"""The Until date has one-second resolution: never ask to retry sooner than this (a plain
``Retry-After`` number is taken as given)."""
MOSCOW = timezone(timedelta(hours=3), "MSK")
"""Zone of the legacy ``dd-MM-yyyy HH:mm:ss`` dates; the spec gives no zone, YM works in
Moscow time (UTC+03:00, no DST) — an assumption."""
LEGACY_DATE_FORMAT = "%d-%m-%Y %H:%M:%S"
LEGACY_DATE = re.compile(r"^\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2}$")


def parse_ym_datetime(value: str) -> datetime:
    """Parse a YM timestamp: ISO 8601 (``2025-01-16T10:09:49Z``, ``...+03:00``, nanoseconds
    allowed) or the legacy ``dd-MM-yyyy HH:mm:ss`` (Moscow time).

    Returns:
        An aware datetime.

    Raises:
        ValueError: neither format.
    """
    text = value.strip()
    if LEGACY_DATE.match(text):
        return datetime.strptime(text, LEGACY_DATE_FORMAT).replace(tzinfo=MOSCOW)
    # Python parses at most 6 fraction digits; PING times carry 9.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without an offset: {value!r}")
    return parsed


def utc_iso(moment: datetime) -> str:
    """``moment`` as ISO 8601 in UTC with an explicit offset (cursor and key format)."""
    return moment.astimezone(UTC).isoformat()


_M = TypeVar("_M", bound=BaseModel)
_P = TypeVar("_P", bound=Page)


# -- the client ----------------------------------------------------------------------------------


class YandexMarketClient:
    """One Yandex Market store (campaign) of one business (cabinet)."""

    kind: ClassVar[str] = "yandex_market"
    max_batch: ClassVar[int] = MAX_BATCH
    catalog_field: ClassVar[str] = "ym_offer_id"
    order_item_field: ClassVar[str] = "ym_offer_id"

    def __init__(
        self,
        http: httpx.Client,
        *,
        name: str,
        api_key: SecretStr,
        campaign_id: int,
        business_id: int,
        stock_api: StockApi = "v2",
        warehouse_id: int | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """``stock_api`` picks the push method; v3 needs ``warehouse_id`` (partner warehouse).

        Raises:
            ValueError: ``stock_api = "v3"`` without a ``warehouse_id``.
        """
        if stock_api == "v3" and warehouse_id is None:
            raise ValueError("Yandex Market stock_api v3 needs the partner warehouse_id")
        self.http = http
        self.name = name
        self.campaign_id = campaign_id
        self.business_id = business_id
        self.stock_api: StockApi = stock_api
        self.warehouse_id = warehouse_id
        self._api_key = api_key
        self._clock = clock

    @classmethod
    def from_settings(
        cls, settings: YandexMarketSettings, http: httpx.Client
    ) -> YandexMarketClient:
        """Build the client for one ``[[channels]]`` entry of kind ``yandex_market``."""
        return cls(
            http,
            name=settings.name,
            api_key=settings.api_key,
            campaign_id=settings.campaign_id,
            business_id=settings.business_id,
            stock_api=settings.stock_api,
            warehouse_id=settings.warehouse_id,
        )

    def __repr__(self) -> str:
        return f"YandexMarketClient(name={self.name!r}, campaign_id={self.campaign_id})"

    # -- stock ---------------------------------------------------------------------------------

    def push_stock(self, updates: Sequence[StockUpdate]) -> PushResult:
        """Send absolute stock for up to 2000 offers in one request (v2 PUT or v3 POST).

        Items YM would refuse (count outside 0..2 000 000 000, a SKU breaking the ``ShopSku``
        pattern) come back REJECTED without being sent, so they cannot sink the batch.

        Raises:
            ValueError: more than ``MAX_BATCH`` updates, or the same offer twice (YM refuses
                duplicate ``sku`` in one request; the sync path coalesces per item).
            ChannelRateLimitedError: HTTP 420.
            ChannelRejectedError: any other 4xx; YM refuses the whole batch and names no item.
            ChannelUnavailableError: 5xx, timeout, connection failure.
            PayloadError: a 200 whose body is not JSON.
        """
        if len(updates) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} offers per Yandex Market stock push")
        ids = [u.item_id for u in updates]
        if len(set(ids)) != len(ids):
            raise ValueError("the same offer appears twice in one Yandex Market stock push")
        return push_with_local_checks(updates, _local_problem, self._put_stocks)

    def _put_stocks(self, sent: list[tuple[int, StockUpdate]]) -> dict[int, ItemResult]:
        # updatedAt is the push time: a later push always carries a later time, whatever YM
        # does with stale ones (UNCONFIRMED).
        updated_at = self._clock().isoformat(timespec="seconds")
        if self.stock_api == "v3":
            method, path = "POST", STOCKS_V3_PATH.format(business_id=self.business_id)
            body: dict[str, Any] = {
                "skuItems": [
                    {
                        "sku": u.item_id,
                        "partnerWarehouseId": self.warehouse_id,
                        "count": u.quantity,
                        "updatedAt": updated_at,
                    }
                    for _, u in sent
                ]
            }
        else:
            method, path = "PUT", STOCKS_PATH.format(campaign_id=self.campaign_id)
            body = {
                "skus": [
                    {"sku": u.item_id, "items": [{"count": u.quantity, "updatedAt": updated_at}]}
                    for _, u in sent
                ]
            }
        answer = self._parse(self._send(method, path, json_body=body), ApiAnswer)
        if answer.status == "ERROR":
            # A 200 that says ERROR is not documented; retrying is the safe reading.
            code, message = _first_error(answer)
            return {i: ItemResult(u, ItemOutcome.RETRY, code, message) for i, u in sent}
        return {i: ItemResult(u, ItemOutcome.ACCEPTED) for i, u in sent}

    def read_stock(self, item_ids: Sequence[str]) -> dict[str, ChannelStock]:
        """What YM shows for these offers, 100 per request.

        ``sellable`` is the AVAILABLE count ("available for sale", already net of YM's own
        holds for its orders). Without AVAILABLE it is FIT − FREEZE (FIT is "available or
        reserved", FREEZE "reserved for orders"). ``present``/``reserved`` carry FIT/FREEZE.
        A warehouse group mirrors one value to each warehouse, so the largest per-warehouse
        figure is taken rather than a sum. Offers YM does not return (and ids YM could not
        hold) are left out.

        Raises:
            ChannelRateLimitedError, ChannelRejectedError, ChannelUnavailableError,
            PayloadError.
        """
        # An id breaking YM's pattern cannot exist there and would make YM refuse the chunk.
        unique = [i for i in dict.fromkeys(item_ids) if SKU_PATTERN.match(i)]
        found: dict[str, ChannelStock] = {}
        path = STOCKS_PATH.format(campaign_id=self.campaign_id)
        for chunk in chunks(unique, READ_MAX_OFFER_IDS):
            body = {"offerIds": chunk}
            for result in self._pages(path, body, limit=None, model=StocksAnswer):
                if result.result is None:
                    continue
                for warehouse in result.result.warehouses:
                    for offer in warehouse.offers:
                        stock = _channel_stock(offer)
                        known = found.get(offer.offer_id)
                        if known is None or stock.sellable > known.sellable:
                            found[offer.offer_id] = stock
        return found

    # -- orders --------------------------------------------------------------------------------

    def list_orders(self, cursor: str | None) -> OrdersPage:
        """Orders of this campaign updated since ``cursor`` (an ISO 8601 UTC time).

        The first poll looks back 24 h. One query spans at most 30 days: a cursor older than
        that is walked forward 30 days per call with ``more=True``. The next cursor is the
        latest ``updateDate`` seen; the bound is inclusive, so the newest orders come again
        next time (the ledger ignores replays) rather than risk missing a same-second change.

        Raises:
            ValueError: a cursor that is not an ISO 8601 time.
            ChannelRateLimitedError, ChannelRejectedError, ChannelUnavailableError,
            PayloadError.
        """
        now = self._clock()
        since = parse_ym_datetime(cursor) if cursor else now - ORDERS_FIRST_LOOKBACK
        dates: dict[str, str] = {"updateDateFrom": since.isoformat(timespec="seconds")}
        window_end = since + ORDERS_MAX_WINDOW
        more = window_end < now
        if more:
            dates["updateDateTo"] = window_end.isoformat(timespec="seconds")
        body: dict[str, Any] = {"campaignIds": [self.campaign_id], "dates": dates}
        latest = since
        orders: list[ChannelOrder] = []
        pages = 0
        for answer in self._pages(self._orders_path(), body, ORDERS_PAGE_LIMIT, OrdersAnswer):
            pages += 1
            for order in answer.orders:
                if order.campaign_id not in (None, self.campaign_id):
                    continue  # another store of the same business
                mapped = self._order(order)
                orders.append(mapped)
                if mapped.changed_at is not None:
                    latest = max(latest, parse_ym_datetime(mapped.changed_at))
        if more and latest == since:
            latest = window_end  # an empty old window: move past it
        more = more or pages >= MAX_PAGES
        return OrdersPage(orders=tuple(orders), cursor=utc_iso(latest), more=more)

    def get_order(self, order_id: str) -> ChannelOrder | None:
        """One order of this campaign with its lines, or None if YM does not return it.

        Raises:
            ChannelRateLimitedError, ChannelRejectedError, ChannelUnavailableError,
            PayloadError.
        """
        if not order_id.isdigit():
            return None  # YM order ids are int64: anything else cannot exist there
        body = {"orderIds": [int(order_id)], "campaignIds": [self.campaign_id]}
        response = self._send("POST", self._orders_path(), json_body=body)
        answer = self._parse(response, OrdersAnswer)
        for order in answer.orders:
            if str(order.order_id) == order_id:
                return self._order(order)
        return None

    def _orders_path(self) -> str:
        return ORDERS_PATH.format(business_id=self.business_id)

    def _order(self, order: Order) -> ChannelOrder:
        quantities: dict[str, int] = {}
        for item in order.items:
            quantities[item.offer_id] = quantities.get(item.offer_id, 0) + item.count
        changed_at = _utc_or_none(order.update_date or order.creation_date)
        substatus = order.substatus or ""
        return ChannelOrder(
            order_id=str(order.order_id),
            action=yandex_market_action(order.status, order.substatus),
            status=f"{order.status}/{substatus}" if substatus else order.status,
            lines=tuple(ChannelLine(offer, qty) for offer, qty in quantities.items()),
            event_key="|".join(
                ("ORDER", str(order.order_id), order.status, substatus, changed_at or "")
            ),
            changed_at=changed_at,
            unrecognised=yandex_market_unrecognised(order.status),
        )

    # -- transport -----------------------------------------------------------------------------

    def _pages(
        self, path: str, body: dict[str, Any], limit: int | None, model: type[_P]
    ) -> Iterator[_P]:
        token: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {}
            if limit is not None:
                params["limit"] = limit
            if token:
                params["pageToken"] = token
            answer = self._parse(self._send("POST", path, json_body=body, params=params), model)
            yield answer
            token = answer.next_token()
            if not token or token in seen:
                return
            seen.add(token)

    def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        return send(
            self.http,
            self.name,
            method,
            path,
            json_body=json_body,
            headers={API_KEY_HEADER: self._api_key.get_secret_value()},
            params=params or None,
            rate_limit_statuses=RATE_LIMIT_STATUSES,
            retry_header=RETRY_HEADERS,
            default_retry_s=DEFAULT_RETRY_S,
            min_date_wait_s=MIN_RETRY_S,
            now=self._clock,
            describe=_describe,
        )

    def _parse(self, response: httpx.Response, model: type[_M]) -> _M:
        return parse_answer(self.name, model, response, what="answer shape")


def _channel_stock(offer: Offer) -> ChannelStock:
    counts: dict[str, int] = {}
    for stock in offer.stocks:
        counts[stock.type] = counts.get(stock.type, 0) + stock.count
    fit, freeze = counts.get("FIT"), counts.get("FREEZE")
    if "AVAILABLE" in counts:
        sellable = counts["AVAILABLE"]
    else:
        sellable = max(0, (fit or 0) - (freeze or 0))
    return ChannelStock(offer.offer_id, sellable=sellable, present=fit, reserved=freeze)


def _utc_or_none(value: str | None) -> str | None:
    # One odd date must not sink the whole poll: the order still counts, only without a time.
    if not value:
        return None
    try:
        return utc_iso(parse_ym_datetime(value))
    except ValueError:
        return None


def _local_problem(update: StockUpdate) -> tuple[str, str] | None:
    """(code, message) of an item YM would refuse, with the whole batch; None if it may go."""
    if not SKU_PATTERN.match(update.item_id):
        return "INVALID_SKU", "offer id breaks YM's pattern"
    if not 0 <= update.quantity <= MAX_COUNT:
        return "COUNT_OUT_OF_RANGE", f"count 0..{MAX_COUNT}"
    return None


def _first_error(answer: ApiAnswer) -> tuple[str, str]:
    if answer.errors:
        return answer.errors[0].code, answer.errors[0].message
    return "ERROR", "status ERROR without errors"


def _describe(response: httpx.Response) -> str:
    """``CODE: message; ...`` from YM's error wrapper, else the start of the body."""
    try:
        answer = ApiAnswer.model_validate(response.json())
    except (ValueError, ValidationError):
        text = response.text
        return text[:300] if text else response.reason_phrase
    if not answer.errors:
        return response.text[:300]
    return "; ".join(f"{e.code}: {e.message}" if e.message else e.code for e in answer.errors)
