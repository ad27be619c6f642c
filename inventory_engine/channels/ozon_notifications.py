"""Ozon push notifications (webhooks): payload -> ledger events, and the answers Ozon expects.

Ozon POSTs one JSON object per event to the seller's URL (reference §1.6). No signature is
sent, so the payload is checked field by field here: a wrong type, a missing field or an absurd
number raises :class:`PayloadError` with ``code="ERROR_PARAMETER_VALUE_MISSED"``, which the
intake returns in Ozon's error shape (:func:`error_answer`).

What each message type becomes:

* ``TYPE_PING`` -> a ping; answer :func:`ping_answer` (``version``/``name``/``time``).
* ``TYPE_NEW_POSTING`` -> RESERVE with the posting's lines (Ozon SKUs).
* ``TYPE_POSTING_CANCELLED`` -> RELEASE, or CANCEL_AFTER_SHIP when ``old_state`` says the goods
  had left; with lines when the payload has them.
* ``TYPE_STATE_CHANGED`` -> the ``new_state`` action with ``needs_lines=True``: this message has
  no products and no old state. A ``posting_canceled`` here cannot tell a cancel after ship, so
  the intake should trust the action of the posting read with ``get_order`` for it.
* anything else (date changes, stock, chat, unknown types) -> no orders (IGNORE); the answer
  is ``{"result": true}``.

``event_key`` is ``posting_number|message_type|new_state|changed_state_date`` (reference §7.6).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from inventory_engine.channels.base import ChannelLine, ChannelOrder, PayloadError
from inventory_engine.domain.models import OrderAction
from inventory_engine.domain.status_rules import ozon_push_action, ozon_push_unrecognised

CHANNEL = "ozon"
ERROR_CODE = "ERROR_PARAMETER_VALUE_MISSED"
"""Ozon's code for "a parameter is missing or has a wrong value" in a service's error answer."""
PING = "TYPE_PING"
NEW_POSTING = "TYPE_NEW_POSTING"
POSTING_CANCELLED = "TYPE_POSTING_CANCELLED"
STATE_CHANGED = "TYPE_STATE_CHANGED"
NEW_POSTING_STATE = "posting_created"
"""Status text recorded for a new posting: Ozon's push state for a just-created posting."""
ANSWER_VERSION = "1.0.0"
ANSWER_NAME = "inventory-engine"
MAX_SKU = 2**63 - 1
"""Ozon SKUs are int64."""
MAX_QUANTITY = 999_999
"""Units of one SKU in one posting: no more than Ozon lets a warehouse hold (< 1 000 000)."""


@dataclass(frozen=True, slots=True)
class OzonNotification:
    """One parsed Ozon push.

    Attributes:
        message_type: ``message_type`` as Ozon sent it.
        orders: the ledger events it carries (none for pings and ignored types).
        warehouse_id: the posting's warehouse, when the push names one (not 0); lets the
            intake route it to the channel configured for that warehouse.
        seller_id: the seller the push is for, when it names one (not 0); lets the intake of
            a multi-account deployment refuse a push sent to another account's URL.
    """

    message_type: str
    orders: tuple[ChannelOrder, ...] = ()
    warehouse_id: int | None = None
    seller_id: int | None = None

    @property
    def is_ping(self) -> bool:
        return self.message_type == PING

    def answer(self, *, now: datetime | None = None, name: str = ANSWER_NAME) -> dict[str, Any]:
        """The HTTP 200 body Ozon expects for this notification."""
        return ping_answer(now=now, name=name) if self.is_ping else {"result": True}


def ping_answer(*, now: datetime | None = None, name: str = ANSWER_NAME) -> dict[str, str]:
    """The answer to ``TYPE_PING``: ``{"version", "name", "time"}``, time in UTC.

    Args:
        now: the time to report (default: the current time).
        name: the service name Ozon shows.
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return {
        "version": ANSWER_VERSION,
        "name": name,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def error_answer(code: str, message: str) -> dict[str, Any]:
    """Ozon's error body for a 4xx/5xx answer (codes ``ERROR_UNKNOWN``,
    ``ERROR_PARAMETER_VALUE_MISSED``, ``ERROR_REQUEST_DUPLICATED``)."""
    return {"error": {"code": code, "message": message, "details": None}}


def parse_notification(payload: Any) -> OzonNotification:
    """Turn one decoded Ozon push body into ledger events.

    Args:
        payload: the JSON body, decoded.

    Returns:
        The notification: a ping, the posting's events, or nothing to do.

    Raises:
        PayloadError: ``code="ERROR_PARAMETER_VALUE_MISSED"``: not an object, a required field
            missing, a wrong type, or a number out of range.
    """
    if not isinstance(payload, Mapping):
        raise _bad("the notification must be a JSON object")
    message_type = _text(payload, "message_type")
    if message_type == PING:
        _optional_text(payload, "time")
        return OzonNotification(PING)
    if message_type not in (NEW_POSTING, POSTING_CANCELLED, STATE_CHANGED):
        return OzonNotification(message_type)
    posting = _text(payload, "posting_number")
    warehouse_id = _optional_int(payload, "warehouse_id")
    order = _POSTING_EVENT[message_type](
        payload, posting, _optional_text(payload, "changed_state_date")
    )
    seller_id = _optional_int(payload, "seller_id")
    return OzonNotification(message_type, (order,), warehouse_id, seller_id)


def _new_posting(payload: Mapping[str, Any], posting: str, _changed_at: str) -> ChannelOrder:
    return ChannelOrder(
        order_id=posting,
        action=ozon_push_action(NEW_POSTING, None),
        status=NEW_POSTING_STATE,
        lines=_lines(payload, required=True),
        event_key=_event_key(posting, NEW_POSTING, "", ""),
        changed_at=_optional_text(payload, "in_process_at") or None,
    )


def _posting_cancelled(payload: Mapping[str, Any], posting: str, changed_at: str) -> ChannelOrder:
    new_state = _optional_text(payload, "new_state") or "posting_canceled"
    old_state = _optional_text(payload, "old_state")
    lines = _lines(payload, required=False)
    return ChannelOrder(
        order_id=posting,
        action=ozon_push_action(POSTING_CANCELLED, new_state, old_state=old_state or None),
        status=new_state,
        lines=lines,
        needs_lines=not lines,  # the posting is fetched: was it cancelled after shipping?
        event_key=_event_key(posting, POSTING_CANCELLED, new_state, changed_at),
        changed_at=changed_at or None,
    )


def _state_changed(payload: Mapping[str, Any], posting: str, changed_at: str) -> ChannelOrder:
    new_state = _text(payload, "new_state")
    action = ozon_push_action(STATE_CHANGED, new_state)
    return ChannelOrder(
        order_id=posting,
        action=action,
        status=new_state,
        needs_lines=action is not OrderAction.IGNORE,
        event_key=_event_key(posting, STATE_CHANGED, new_state, changed_at),
        changed_at=changed_at or None,
        unrecognised=ozon_push_unrecognised(new_state),
    )


_POSTING_EVENT: dict[str, Callable[[Mapping[str, Any], str, str], ChannelOrder]] = {
    NEW_POSTING: _new_posting,
    POSTING_CANCELLED: _posting_cancelled,
    STATE_CHANGED: _state_changed,
}
"""The order event of each posting notification type, from its body, posting number and
``changed_state_date``."""


def _event_key(posting: str, message_type: str, new_state: str, changed_at: str) -> str:
    return "|".join((posting, message_type, new_state, changed_at))


def _lines(payload: Mapping[str, Any], *, required: bool) -> tuple[ChannelLine, ...]:
    products = payload.get("products")
    if products is None and not required:
        return ()
    if not isinstance(products, list) or (required and not products):
        raise _bad("products must be a non-empty list")
    quantities: dict[int, int] = {}
    for product in products:
        if not isinstance(product, Mapping):
            raise _bad("each product must be an object")
        sku = _int(product, "sku", low=1, high=MAX_SKU)
        quantity = _int(product, "quantity", low=1, high=MAX_QUANTITY)
        quantities[sku] = quantities.get(sku, 0) + quantity
    if any(quantity > MAX_QUANTITY for quantity in quantities.values()):
        raise _bad(f"quantity of one sku above {MAX_QUANTITY}")
    return tuple(ChannelLine(str(sku), quantity) for sku, quantity in quantities.items())


def _text(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{key} must be a non-empty string")
    return value


def _optional_text(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(f"{key} must be a string")
    return value


def _int(payload: Mapping[str, Any], key: str, *, low: int, high: int) -> int:
    value = payload.get(key)
    # bool is an int in Python, and a float such as 2.0 or 1e400 is not a JSON integer.
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad(f"{key} must be an integer")
    if not low <= value <= high:
        raise _bad(f"{key} must be between {low} and {high}")
    return value


def _optional_int(payload: Mapping[str, Any], key: str) -> int | None:
    if payload.get(key) is None:
        return None
    # Ozon's own examples send 0 where a field does not apply: treat it as absent.
    return _int(payload, key, low=0, high=MAX_SKU) or None


def _bad(message: str) -> PayloadError:
    return PayloadError(CHANNEL, message, code=ERROR_CODE)
