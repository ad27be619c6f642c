"""Marketplace order statuses mapped to ledger actions: the rules are data, the functions look up.

Each channel spells its statuses its own way (Ozon lowercase, Yandex Market uppercase). The
tables below say what each status means for stock; the small functions only handle the cases a
single lookup cannot (Ozon cancel-after-ship, Wildberries' two status fields). Values are matched
case-sensitively, exactly as the marketplaces send them. An unknown marketplace status never
raises: it returns ``IGNORE`` so a new status added by a marketplace cannot break intake (the
periodic reconciliation reads the order again). Only our own storefront API rejects unknown values.

Unknown is not silent, though: the ``*_unrecognised`` functions name the values no table lists
(a status listed with ``IGNORE`` is recognised: ignored on purpose), so the channel parsers can
carry them on the event and intake can log, count and keep them.

Source: ``shared/reference/marketplaces.md`` §1.5, §1.6 (Ozon), §2.3 (Wildberries), §3.3, §3.4 (YM).
"""

from __future__ import annotations

from collections.abc import Mapping

from inventory_engine.domain.models import OrderAction

_A = OrderAction


def _unlisted(table: Mapping[str, OrderAction], *values: str | None) -> tuple[str, ...]:
    """The values sent (not None or empty) that ``table`` does not list, as sent."""
    return tuple(v for v in values if v and v not in table)


# --- Ozon ---------------------------------------------------------------------------------------

OZON_STATUS_ACTIONS: Mapping[str, OrderAction] = {
    # New postings: the buyer may still cancel, so hold units without taking them off the shelf.
    "awaiting_registration": _A.RESERVE,
    "acceptance_in_progress": _A.RESERVE,
    "awaiting_approve": _A.RESERVE,
    "awaiting_verification": _A.RESERVE,
    "awaiting_packaging": _A.RESERVE,
    # awaiting_deliver is the seller's "prepare" (after /v4/posting/fbs/ship): packed, the buyer
    # can no longer cancel, so the units leave on-hand here rather than at hand-over.
    "awaiting_deliver": _A.COMMIT,
    "delivering": _A.COMMIT,
    "driver_pickup": _A.COMMIT,
    "sent_by_seller": _A.COMMIT,
    "delivered": _A.FINAL,
    # Plain cancel; ozon_action() turns it into CANCEL_AFTER_SHIP when Ozon flags it.
    "cancelled": _A.RELEASE,
    # The parent of a split: its units are re-ordered by the child postings, which arrive as new
    # postings and reserve their own lines. Keeping the parent's hold would double-reserve them.
    "cancelled_from_split_pending": _A.RELEASE,
    # Disputes and sort-centre refusals: the goods' fate is open, change nothing until settled.
    "arbitration": _A.HOLD,
    "client_arbitration": _A.HOLD,
    "not_accepted": _A.HOLD,
}
"""Seller API posting ``status`` (``/v3/posting/fbs/list`` etc.) to action."""

OZON_PUSH_STATE_ACTIONS: Mapping[str, OrderAction] = {
    "posting_awaiting_registration": _A.RESERVE,
    "posting_acceptance_in_progress": _A.RESERVE,
    "posting_created": _A.RESERVE,
    "posting_awaiting_passport_data": _A.RESERVE,  # still before packing, waiting for buyer data
    "posting_registration_error": _A.HOLD,  # an error, not a decision: keep what is held
    # awaiting_deliver sub-states (packed, handed over or being handed over): committed.
    "posting_transferring_to_delivery": _A.COMMIT,
    "posting_in_carriage": _A.COMMIT,
    "posting_not_in_carriage": _A.COMMIT,  # packed, missed the truck: the units stay taken
    # delivering sub-states.
    "posting_on_way_to_city": _A.COMMIT,
    "posting_transferred_to_courier_service": _A.COMMIT,
    "posting_in_courier_service": _A.COMMIT,
    "posting_on_way_to_pickup_point": _A.COMMIT,
    "posting_in_pickup_point": _A.COMMIT,
    "posting_conditionally_delivered": _A.COMMIT,  # receipt not confirmed yet: not final
    "posting_driver_pick_up": _A.COMMIT,
    "posting_delivered": _A.FINAL,
    "posting_received": _A.FINAL,
    "posting_canceled": _A.RELEASE,
    "posting_in_arbitration": _A.HOLD,
    "posting_in_client_arbitration": _A.HOLD,
    "posting_not_in_sort_center": _A.HOLD,
    # Split in progress: the outcome comes as cancelled_from_split_pending plus new children.
    "posting_split_pending": _A.IGNORE,
    # Physical return: the return flow books the stock, not the order flow.
    "posting_returned_to_warehouse": _A.IGNORE,
}
"""Push ``new_state`` (``TYPE_STATE_CHANGED``) to action."""

OZON_SHIPPED_PUSH_STATES: frozenset[str] = frozenset(
    state for state, action in OZON_PUSH_STATE_ACTIONS.items() if action in (_A.COMMIT, _A.FINAL)
) | {
    # Disputes and sort-centre refusals concern goods that left the seller. If wrong, this only
    # under-states stock until a return is booked; the opposite error would oversell.
    "posting_in_arbitration",
    "posting_in_client_arbitration",
    "posting_not_in_sort_center",
}
"""Push states after "prepare": a cancel coming from one of them is a cancel after ship."""

OZON_PUSH_MESSAGE_ACTIONS: Mapping[str, OrderAction] = {
    "TYPE_NEW_POSTING": _A.RESERVE,
    "TYPE_POSTING_CANCELLED": _A.RELEASE,
}
"""Push ``message_type`` with a fixed action; ``TYPE_STATE_CHANGED`` uses the state table."""


def _ozon_cancel(action: OrderAction, after_ship: bool, old_state: str | None) -> OrderAction:
    # Releasing goods that already left would put phantom units back on sale: an oversell.
    if action is _A.RELEASE and (after_ship or old_state in OZON_SHIPPED_PUSH_STATES):
        return _A.CANCEL_AFTER_SHIP
    return action


def ozon_action(status: str, *, cancelled_after_ship: bool = False) -> OrderAction:
    """Map an Ozon Seller API posting status to a ledger action.

    Args:
        status: The posting's ``status``, e.g. ``"awaiting_packaging"``.
        cancelled_after_ship: ``cancellation.cancelled_after_ship`` of the posting.

    Returns:
        The action; ``IGNORE`` for an unknown status.
    """
    # Only a plain cancel can be after ship: a split parent's units live on in its children.
    after_ship = cancelled_after_ship and status == "cancelled"
    return _ozon_cancel(OZON_STATUS_ACTIONS.get(status, _A.IGNORE), after_ship, None)


def ozon_unrecognised(status: str) -> tuple[str, ...]:
    """The Ozon posting status, if no rule knows it (``ozon_action`` ignores it)."""
    return _unlisted(OZON_STATUS_ACTIONS, status)


def ozon_push_unrecognised(new_state: str | None) -> tuple[str, ...]:
    """The ``new_state`` of a ``TYPE_STATE_CHANGED`` push, if no rule knows it."""
    return _unlisted(OZON_PUSH_STATE_ACTIONS, new_state)


def ozon_push_action(
    message_type: str,
    new_state: str | None,
    *,
    cancelled_after_ship: bool = False,
    old_state: str | None = None,
) -> OrderAction:
    """Map an Ozon push notification to a ledger action.

    Args:
        message_type: ``message_type`` of the push, e.g. ``"TYPE_STATE_CHANGED"``.
        new_state: ``new_state`` of the push, if any.
        cancelled_after_ship: Set when a read of the posting says it was cancelled after ship.
        old_state: ``old_state`` of a ``TYPE_POSTING_CANCELLED`` push; a post-prepare state there
            means the goods had left.

    Returns:
        The action; ``IGNORE`` for date changes, stock, chat, item and ping messages, and for
        unknown types or states.
    """
    if message_type == "TYPE_STATE_CHANGED":
        action = OZON_PUSH_STATE_ACTIONS.get(new_state or "", _A.IGNORE)
    else:
        action = OZON_PUSH_MESSAGE_ACTIONS.get(message_type, _A.IGNORE)
    return _ozon_cancel(action, cancelled_after_ship, old_state)


# --- Wildberries ---------------------------------------------------------------------------------

WB_SUPPLIER_STATUS_ACTIONS: Mapping[str, OrderAction] = {
    "new": _A.RESERVE,
    "confirm": _A.RESERVE,  # added to a supply, being assembled: still only reserved
    "complete": _A.COMMIT,  # supply handed to delivery: the goods left
    "cancel": _A.RELEASE,
    "cancel_carrier": _A.RELEASE,
}
"""``supplierStatus`` (the seller's side of the task) to action."""

WB_STATUS_ACTIONS: Mapping[str, OrderAction] = {
    "waiting": _A.IGNORE,  # "in work": says nothing beyond supplierStatus
    "sorted": _A.COMMIT,
    "ready_for_pickup": _A.COMMIT,
    "postponed_delivery": _A.COMMIT,
    "sold": _A.FINAL,
    "canceled": _A.RELEASE,
    "declined_by_client": _A.RELEASE,  # buyer cancelled in the first hour, before assembly
    # Refused at the pickup point: the goods come back only as a return.
    "canceled_by_client": _A.CANCEL_AFTER_SHIP,
    # WB finds defects in goods it holds, and a defective unit must not go back on sale by
    # itself: the return flow decides whether it is sellable.
    "defect": _A.CANCEL_AFTER_SHIP,
    # Cross-border carrier states: with the carrier means the goods left the seller.
    "accepted_by_carrier": _A.COMMIT,
    "sent_to_carrier": _A.COMMIT,
    "canceled_by_carrier": _A.RELEASE,
}
"""``wbStatus`` (WB's side of the task) to action."""

WB_PRECEDENCE: tuple[OrderAction, ...] = (
    _A.FINAL,
    _A.CANCEL_AFTER_SHIP,
    _A.RELEASE,
    _A.COMMIT,
    _A.RESERVE,
    _A.HOLD,
    _A.IGNORE,
)
"""When the two fields disagree the more advanced, more terminal signal wins, in this order.

One combination is not a plain ranking: a cancel (RELEASE) from one field with goods gone
(COMMIT) from the other is a cancel after ship, because a release would put gone units on sale.
"""


def wildberries_action(supplier_status: str | None, wb_status: str | None) -> OrderAction:
    """Map a Wildberries assembly task's two status fields to one ledger action.

    Args:
        supplier_status: ``supplierStatus`` from ``/api/v3/orders/status``, if known.
        wb_status: ``wbStatus`` from the same call, if known.

    Returns:
        The action of the stronger signal (see ``WB_PRECEDENCE``); ``IGNORE`` if neither is known.
    """
    signals = {
        WB_SUPPLIER_STATUS_ACTIONS.get(supplier_status or "", _A.IGNORE),
        WB_STATUS_ACTIONS.get(wb_status or "", _A.IGNORE),
    }
    if signals == {_A.RELEASE, _A.COMMIT}:
        return _A.CANCEL_AFTER_SHIP
    return next(action for action in WB_PRECEDENCE if action in signals)


def wildberries_unrecognised(supplier_status: str | None, wb_status: str | None) -> tuple[str, ...]:
    """Each of the task's two status fields no rule knows (the other one may still decide)."""
    return _unlisted(WB_SUPPLIER_STATUS_ACTIONS, supplier_status) + _unlisted(
        WB_STATUS_ACTIONS, wb_status
    )


# --- Yandex Market -------------------------------------------------------------------------------

YM_STATUS_ACTIONS: Mapping[str, OrderAction] = {
    # Soft reserve: an unpaid or unconfirmed order may still lapse, but until then its units must
    # not be sold elsewhere; a lapsed one arrives as CANCELLED (RESERVATION_EXPIRED, USER_NOT_PAID).
    "PLACING": _A.RESERVE,
    "RESERVED": _A.RESERVE,
    "UNPAID": _A.RESERVE,
    "PENDING": _A.RESERVE,
    # Both STARTED and READY_TO_SHIP: YM releases the stock of a cancel before shipment itself,
    # so the ledger commits only when the goods leave (DELIVERY/PICKUP).
    "PROCESSING": _A.RESERVE,
    "DELIVERY": _A.COMMIT,
    "PICKUP": _A.COMMIT,
    "DELIVERED": _A.FINAL,
    # Also a cancel from READY_TO_SHIP (YM's packed-cancel exception): nothing was committed,
    # the seller unpacks and the units are available again.
    "CANCELLED": _A.RELEASE,
    # Returns are booked by the return flow (ORDER_RETURN_*), not by the order status.
    "PARTIALLY_RETURNED": _A.IGNORE,
    "RETURNED": _A.IGNORE,
    "UNKNOWN": _A.IGNORE,
}
"""Order ``status`` to action; the substatus matters only for CANCELLED."""

YM_CANCELLED_AFTER_SHIP_SUBSTATUSES: frozenset[str] = frozenset(
    {
        "PICKUP_EXPIRED",  # never collected from the pickup point
        "USER_REFUSED_PRODUCT",  # refused on receipt: the buyer had the goods in hand
        "USER_REFUSED_QUALITY",
    }
)
"""CANCELLED substatuses that can only happen once the goods left: cancel after ship."""

YM_NOTIFICATION_ACTIONS: Mapping[str, OrderAction] = {
    "ORDER_CREATED": _A.RESERVE,
    "ORDER_CANCELLED": _A.RELEASE,
}
"""Notification types with a fixed action; ``ORDER_STATUS_UPDATED`` uses the status table."""


def yandex_market_action(status: str, substatus: str | None = None) -> OrderAction:
    """Map a Yandex Market order status and substatus to a ledger action.

    Args:
        status: ``status`` of the order, e.g. ``"PROCESSING"``.
        substatus: ``substatus`` of the order, e.g. ``"READY_TO_SHIP"``.

    Returns:
        The action; ``IGNORE`` for ``UNKNOWN`` and any unlisted status.
    """
    if status == "CANCELLED" and substatus in YM_CANCELLED_AFTER_SHIP_SUBSTATUSES:
        return _A.CANCEL_AFTER_SHIP
    return YM_STATUS_ACTIONS.get(status, _A.IGNORE)


def yandex_market_unrecognised(status: str | None) -> tuple[str, ...]:
    """The order status, if no rule knows it. Substatuses are not checked: only the few of
    ``YM_CANCELLED_AFTER_SHIP_SUBSTATUSES`` change an action, any other is a plain cancel."""
    return _unlisted(YM_STATUS_ACTIONS, status)


def yandex_market_notification_action(
    notification_type: str, status: str | None = None, substatus: str | None = None
) -> OrderAction:
    """Map a Yandex Market API notification to a ledger action.

    Args:
        notification_type: ``notificationType``, e.g. ``"ORDER_STATUS_UPDATED"``.
        status: ``status`` of an ``ORDER_STATUS_UPDATED`` notification.
        substatus: ``substatus`` of the notification, if any.

    Returns:
        The action; ``IGNORE`` for pings, date updates, returns, chats, feedback and unknown types.
    """
    if notification_type == "ORDER_STATUS_UPDATED":
        return yandex_market_action(status, substatus) if status else _A.IGNORE
    action = YM_NOTIFICATION_ACTIONS.get(notification_type, _A.IGNORE)
    if action is _A.RELEASE:
        return yandex_market_action("CANCELLED", substatus)
    return action


# --- Own storefront (POST /v1/orders) ------------------------------------------------------------

STOREFRONT_STATUS_ACTIONS: Mapping[str, OrderAction] = {
    "new": _A.RESERVE,
    "shipped": _A.COMMIT,
    "cancelled": _A.RELEASE,
    "cancelled_after_ship": _A.CANCEL_AFTER_SHIP,
    "delivered": _A.FINAL,
}
"""Status values of our own REST API to action."""


def storefront_order_action(status: str) -> OrderAction:
    """Map a storefront order status to a ledger action.

    Args:
        status: ``status`` of a ``POST /v1/orders`` request.

    Returns:
        The action.

    Raises:
        ValueError: an unknown status; unlike a marketplace, our own client can be told so.
    """
    try:
        return STOREFRONT_STATUS_ACTIONS[status]
    except KeyError:
        allowed = ", ".join(STOREFRONT_STATUS_ACTIONS)
        raise ValueError(f"unknown order status {status!r}; allowed: {allowed}") from None
