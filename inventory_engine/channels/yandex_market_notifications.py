"""Yandex Market API notifications (``POST {url}/notification``): parse them, build the answers.

Payload shapes are in reference §3.4 (YM's ``sendNotification`` page); no OpenAPI file has them.
What each type does to the ledger:

* ``PING``: nothing; answer it like any other.
* ``ORDER_CREATED`` (``items[]{offerId, count}``): RESERVE with the lines.
* ``ORDER_CANCELLED`` (``items[]``, ``cancelledAt``, no substatus): RELEASE with the lines.
* ``ORDER_STATUS_UPDATED`` (``status``, ``substatus``, no items): the status table; when the
  action needs lines the order comes back with ``needs_lines`` (fetch it with ``get_order``).
* every other type (returns, date changes, chats, feedback, unknown): IGNORE.

Every type is answered HTTP 200 with ``{"version", "name", "time"}``; a payload that cannot be
read is answered 400 ``{"error": {"type": "WRONG_EVENT_FORMAT", ...}}`` (YM does not retry a
400). YM signs nothing: the intake checks the source address against YM's networks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from inventory_engine import __version__
from inventory_engine.channels.base import ChannelLine, ChannelOrder, PayloadError
from inventory_engine.channels.yandex_market import parse_ym_datetime, utc_iso
from inventory_engine.domain.models import OrderAction
from inventory_engine.domain.status_rules import (
    yandex_market_notification_action,
    yandex_market_unrecognised,
)

CHANNEL = "yandex_market"
"""Channel label used in errors when the caller gives no configured name."""
PING = "PING"
ANSWER_NAME = "inventory-engine"
"""``name`` of every answer (YM allows 1..100 characters)."""
WRONG_EVENT_FORMAT = "WRONG_EVENT_FORMAT"
"""Error ``type`` for a payload we cannot read: YM does not retry a 400."""
UNKNOWN_ERROR = "UNKNOWN"
"""Error ``type`` for our own failure (answered 500, so YM retries)."""
SOURCE_NETWORKS = ("5.45.207.0/25", "141.8.142.0/25", "5.255.253.0/25")
"""Where YM sends notifications from: the only check possible, as nothing is signed."""

_TIME_FIELDS: Mapping[str, str] = {
    "ORDER_CREATED": "createdAt",
    "ORDER_CANCELLED": "cancelledAt",
    "ORDER_STATUS_UPDATED": "updatedAt",
}
"""The notification types that move stock, and the field holding when the event happened."""
_NO_LINES_NEEDED = frozenset({OrderAction.RELEASE, OrderAction.IGNORE})
"""Actions the ledger applies without lines (a release of an unseen order leaves a tombstone)."""


@dataclass(frozen=True, slots=True)
class YandexMarketNotification:
    """One parsed notification.

    Attributes:
        notification_type: ``notificationType`` as sent.
        orders: the order event (at most one); empty for PING and types without an order.
        campaign_id: the store the notification is about, if it names one.
        time: the event time as sent (``createdAt``/``updatedAt``/``cancelledAt``/``time``).
    """

    notification_type: str
    orders: tuple[ChannelOrder, ...] = ()
    campaign_id: int | None = None
    time: str | None = None

    @property
    def is_ping(self) -> bool:
        return self.notification_type == PING


def parse_notification(
    payload: Any, *, channel: str = CHANNEL, campaign_id: int | None = None
) -> YandexMarketNotification:
    """Turn a notification body (decoded JSON) into ledger events.

    Args:
        payload: the decoded JSON body.
        channel: the configured channel name, for errors.
        campaign_id: this channel's store; a notification about another store of the same
            business (cabinet-level subscriptions include every store, FBY too) is IGNOREd.

    Returns:
        The notification; its order, if any, carries the ledger action.

    Raises:
        PayloadError: ``code="WRONG_EVENT_FORMAT"`` when the body is not a notification or a
            stock-moving type lacks what it needs.
    """
    if not isinstance(payload, Mapping):
        raise _wrong(channel, "the body is not a JSON object")
    kind = payload.get("notificationType")
    if not isinstance(kind, str) or not kind:
        raise _wrong(channel, "notificationType is missing")
    if kind == PING:
        return YandexMarketNotification(PING, time=_optional_str(payload, "time", channel))
    store = _optional_int(payload, "campaignId", channel)
    if kind not in _TIME_FIELDS:
        return _ignored(payload, kind, store)
    order_id = _order_id(payload, channel)
    time_field = _TIME_FIELDS[kind]
    when = _event_time(payload, time_field, channel)
    status = _optional_str(payload, "status", channel)
    substatus = _optional_str(payload, "substatus", channel)
    if kind == "ORDER_STATUS_UPDATED" and not status:
        raise _wrong(channel, "ORDER_STATUS_UPDATED without status")
    lines = _lines(payload, channel) if kind != "ORDER_STATUS_UPDATED" else ()
    action = yandex_market_notification_action(kind, status, substatus)
    foreign = campaign_id is not None and store is not None and store != campaign_id
    if foreign:
        action = OrderAction.IGNORE
    order = ChannelOrder(
        order_id=order_id,
        action=action,
        status=_status_text(kind, status, substatus),
        lines=lines,
        needs_lines=not lines and action not in _NO_LINES_NEEDED,
        event_key=event_key(kind, order_id, status, substatus, when),
        changed_at=when,
        # ORDER_CREATED and ORDER_CANCELLED decide by their type: their status decides nothing.
        # Another store's order is not this channel's concern.
        unrecognised=(
            yandex_market_unrecognised(status)
            if kind == "ORDER_STATUS_UPDATED" and not foreign
            else ()
        ),
    )
    return YandexMarketNotification(kind, (order,), store, payload[time_field])


def event_key(
    notification_type: str,
    order_id: str,
    status: str | None,
    substatus: str | None,
    changed_at: str | None,
) -> str:
    """The de-duplication key of reference §7.6.

    ``(notificationType, orderId, status, substatus, updatedAt|cancelledAt)``; the time is
    normalised to UTC so the same instant written two ways is one key.
    """
    return "|".join((notification_type, order_id, status or "", substatus or "", changed_at or ""))


def answer_body(*, started_at: datetime | None = None, name: str = ANSWER_NAME) -> dict[str, str]:
    """The HTTP 200 body YM expects for every notification type.

    Args:
        started_at: when processing started (default: now); sent in UTC.
        name: the receiver's name, 1..100 characters.
    """
    moment = (started_at or datetime.now(UTC)).astimezone(UTC)
    return {
        "version": __version__,
        "name": name,
        "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


def error_body(error_type: str, message: str) -> dict[str, dict[str, str]]:
    """The 400/500 body: ``type`` is WRONG_EVENT_FORMAT, DUPLICATED_EVENT or UNKNOWN."""
    return {"error": {"type": error_type, "message": message}}


# -- field readers -------------------------------------------------------------------------------


def _wrong(channel: str, message: str) -> PayloadError:
    return PayloadError(channel, message, code=WRONG_EVENT_FORMAT)


def _ignored(payload: Mapping[str, Any], kind: str, store: int | None) -> YandexMarketNotification:
    raw_id = payload.get("orderId")
    orders: tuple[ChannelOrder, ...] = ()
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        # Kept visible (IGNORE) so the intake can log which order a date change or return
        # concerned; the return flow books returned stock, not the order feed.
        orders = (
            ChannelOrder(
                order_id=str(raw_id),
                action=OrderAction.IGNORE,
                status=kind,
                event_key=event_key(kind, str(raw_id), None, None, None),
            ),
        )
    time = next((v for k, v in payload.items() if k.endswith("At") and isinstance(v, str)), None)
    return YandexMarketNotification(kind, orders, store, time)


def _order_id(payload: Mapping[str, Any], channel: str) -> str:
    value = payload.get("orderId")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _wrong(channel, "orderId must be a positive integer")
    return str(value)


def _event_time(payload: Mapping[str, Any], field: str, channel: str) -> str:
    value = payload.get(field)
    if not isinstance(value, str):
        raise _wrong(channel, f"{field} is missing")
    try:
        return utc_iso(parse_ym_datetime(value))
    except ValueError:
        raise _wrong(channel, f"{field} is not an ISO 8601 time") from None


def _lines(payload: Mapping[str, Any], channel: str) -> tuple[ChannelLine, ...]:
    items = payload.get("items")
    if not isinstance(items, list) or not items:
        raise _wrong(channel, "items must be a non-empty list")
    quantities: dict[str, int] = {}
    for item in items:
        offer = item.get("offerId") if isinstance(item, Mapping) else None
        count = item.get("count") if isinstance(item, Mapping) else None
        if not isinstance(offer, str) or not offer.strip():
            raise _wrong(channel, "an item has no offerId")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise _wrong(channel, f"item {offer!r} has no positive count")
        quantities[offer] = quantities.get(offer, 0) + count
    return tuple(ChannelLine(offer, qty) for offer, qty in quantities.items())


def _optional_str(payload: Mapping[str, Any], field: str, channel: str) -> str | None:
    value = payload.get(field)
    if value is not None and not isinstance(value, str):
        raise _wrong(channel, f"{field} must be a string")
    return value


def _optional_int(payload: Mapping[str, Any], field: str, channel: str) -> int | None:
    value = payload.get(field)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise _wrong(channel, f"{field} must be an integer")
    return value


def _status_text(kind: str, status: str | None, substatus: str | None) -> str:
    if status is None:
        status = "CANCELLED" if kind == "ORDER_CANCELLED" else kind
    return f"{status}/{substatus}" if substatus else status
