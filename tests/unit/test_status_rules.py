"""Row-by-row tests of the marketplace status rules.

Every table is checked twice: each of its rows goes through the public function (the function
really consults the table), and an expected list written out here, independently of the module,
must match the table exactly (a wrong, missing or extra row fails).
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from inventory_engine.domain.models import OrderAction
from inventory_engine.domain.status_rules import (
    OZON_PUSH_MESSAGE_ACTIONS,
    OZON_PUSH_STATE_ACTIONS,
    OZON_SHIPPED_PUSH_STATES,
    OZON_STATUS_ACTIONS,
    STOREFRONT_STATUS_ACTIONS,
    WB_STATUS_ACTIONS,
    WB_SUPPLIER_STATUS_ACTIONS,
    YM_CANCELLED_AFTER_SHIP_SUBSTATUSES,
    YM_NOTIFICATION_ACTIONS,
    YM_STATUS_ACTIONS,
    ozon_action,
    ozon_push_action,
    ozon_push_unrecognised,
    ozon_unrecognised,
    storefront_order_action,
    wildberries_action,
    wildberries_unrecognised,
    yandex_market_action,
    yandex_market_notification_action,
    yandex_market_unrecognised,
)

RESERVE = OrderAction.RESERVE
COMMIT = OrderAction.COMMIT
RELEASE = OrderAction.RELEASE
FINAL = OrderAction.FINAL
CAS = OrderAction.CANCEL_AFTER_SHIP
HOLD = OrderAction.HOLD
IGNORE = OrderAction.IGNORE

# --- Expected rows, written out independently of the module --------------------------------------

OZON_STATUS_EXPECTED = [
    ("awaiting_registration", RESERVE),
    ("acceptance_in_progress", RESERVE),
    ("awaiting_approve", RESERVE),
    ("awaiting_verification", RESERVE),
    ("awaiting_packaging", RESERVE),
    ("awaiting_deliver", COMMIT),
    ("delivering", COMMIT),
    ("driver_pickup", COMMIT),
    ("sent_by_seller", COMMIT),
    ("delivered", FINAL),
    ("cancelled", RELEASE),
    ("cancelled_from_split_pending", RELEASE),
    ("arbitration", HOLD),
    ("client_arbitration", HOLD),
    ("not_accepted", HOLD),
]

OZON_PUSH_STATE_EXPECTED = [
    ("posting_awaiting_registration", RESERVE),
    ("posting_acceptance_in_progress", RESERVE),
    ("posting_created", RESERVE),
    ("posting_awaiting_passport_data", RESERVE),
    ("posting_registration_error", HOLD),
    ("posting_transferring_to_delivery", COMMIT),
    ("posting_in_carriage", COMMIT),
    ("posting_not_in_carriage", COMMIT),
    ("posting_on_way_to_city", COMMIT),
    ("posting_transferred_to_courier_service", COMMIT),
    ("posting_in_courier_service", COMMIT),
    ("posting_on_way_to_pickup_point", COMMIT),
    ("posting_in_pickup_point", COMMIT),
    ("posting_conditionally_delivered", COMMIT),
    ("posting_driver_pick_up", COMMIT),
    ("posting_delivered", FINAL),
    ("posting_received", FINAL),
    ("posting_canceled", RELEASE),
    ("posting_in_arbitration", HOLD),
    ("posting_in_client_arbitration", HOLD),
    ("posting_not_in_sort_center", HOLD),
    ("posting_split_pending", IGNORE),
    ("posting_returned_to_warehouse", IGNORE),
]

OZON_PUSH_MESSAGE_EXPECTED = [
    ("TYPE_NEW_POSTING", RESERVE),
    ("TYPE_POSTING_CANCELLED", RELEASE),
]

OZON_SHIPPED_EXPECTED = {
    "posting_transferring_to_delivery",
    "posting_in_carriage",
    "posting_not_in_carriage",
    "posting_on_way_to_city",
    "posting_transferred_to_courier_service",
    "posting_in_courier_service",
    "posting_on_way_to_pickup_point",
    "posting_in_pickup_point",
    "posting_conditionally_delivered",
    "posting_driver_pick_up",
    "posting_delivered",
    "posting_received",
    "posting_in_arbitration",
    "posting_in_client_arbitration",
    "posting_not_in_sort_center",
}

OZON_IGNORED_MESSAGES = [
    "TYPE_PING",
    "TYPE_CUTOFF_DATE_CHANGED",
    "TYPE_DELIVERY_DATE_CHANGED",
    "TYPE_CREATE_OR_UPDATE_ITEM",
    "TYPE_CREATE_ITEM",
    "TYPE_UPDATE_ITEM",
    "TYPE_PRICE_INDEX_CHANGED",
    "TYPE_STOCKS_CHANGED",
    "TYPE_NEW_MESSAGE",
    "TYPE_UPDATE_MESSAGE",
    "TYPE_MESSAGE_READ",
    "TYPE_CHAT_CLOSED",
    "TYPE_SOMETHING_NEW",
]

WB_SUPPLIER_EXPECTED = [
    ("new", RESERVE),
    ("confirm", RESERVE),
    ("complete", COMMIT),
    ("cancel", RELEASE),
    ("cancel_carrier", RELEASE),
]

WB_STATUS_EXPECTED = [
    ("waiting", IGNORE),
    ("sorted", COMMIT),
    ("ready_for_pickup", COMMIT),
    ("postponed_delivery", COMMIT),
    ("sold", FINAL),
    ("canceled", RELEASE),
    ("declined_by_client", RELEASE),
    ("canceled_by_client", CAS),
    ("defect", CAS),
    ("accepted_by_carrier", COMMIT),
    ("sent_to_carrier", COMMIT),
    ("canceled_by_carrier", RELEASE),
]

# (supplierStatus, wbStatus, expected): the combinations that matter, including disagreements.
WB_COMBINED_EXPECTED = [
    ("new", "waiting", RESERVE),
    ("confirm", "waiting", RESERVE),
    ("complete", "waiting", COMMIT),
    ("complete", "sorted", COMMIT),
    ("complete", "ready_for_pickup", COMMIT),
    ("complete", "postponed_delivery", COMMIT),
    ("complete", "sold", FINAL),
    ("new", "sold", FINAL),
    ("cancel", "sold", FINAL),  # delivered wins: nothing can happen to the stock any more
    ("cancel", "waiting", RELEASE),
    ("cancel_carrier", "waiting", RELEASE),
    ("new", "canceled", RELEASE),
    ("confirm", "declined_by_client", RELEASE),
    ("cancel", "canceled", RELEASE),
    ("complete", "canceled", CAS),  # cancel after the supply left
    ("cancel", "sorted", CAS),
    ("cancel_carrier", "accepted_by_carrier", CAS),
    ("complete", "canceled_by_carrier", CAS),
    ("complete", "canceled_by_client", CAS),
    ("new", "canceled_by_client", CAS),
    ("cancel", "canceled_by_client", CAS),
    ("complete", "defect", CAS),
    ("confirm", "sorted", COMMIT),
    ("new", None, RESERVE),
    (None, "sorted", COMMIT),
    (None, "canceled", RELEASE),
    (None, None, IGNORE),
    (None, "waiting", IGNORE),
    ("brand_new_status", "waiting", IGNORE),
    ("brand_new_status", "also_new", IGNORE),
    ("complete", "also_new", COMMIT),
]

YM_STATUS_EXPECTED = [
    ("PLACING", RESERVE),
    ("RESERVED", RESERVE),
    ("UNPAID", RESERVE),
    ("PENDING", RESERVE),
    ("PROCESSING", RESERVE),
    ("DELIVERY", COMMIT),
    ("PICKUP", COMMIT),
    ("DELIVERED", FINAL),
    ("CANCELLED", RELEASE),
    ("PARTIALLY_RETURNED", IGNORE),
    ("RETURNED", IGNORE),
    ("UNKNOWN", IGNORE),
]

YM_WITH_SUBSTATUS_EXPECTED = [
    ("PROCESSING", "STARTED", RESERVE),
    ("PROCESSING", "READY_TO_SHIP", RESERVE),
    ("CANCELLED", "RESERVATION_EXPIRED", RELEASE),
    ("CANCELLED", "USER_NOT_PAID", RELEASE),
    ("CANCELLED", "USER_UNREACHABLE", RELEASE),
    ("CANCELLED", "USER_CHANGED_MIND", RELEASE),
    ("CANCELLED", "SHOP_FAILED", RELEASE),
    ("CANCELLED", "TECHNICAL_ERROR", RELEASE),
    ("CANCELLED", "USER_REFUSED_DELIVERY", RELEASE),
    ("CANCELLED", "PICKUP_EXPIRED", CAS),
    ("CANCELLED", "USER_REFUSED_PRODUCT", CAS),
    ("CANCELLED", "USER_REFUSED_QUALITY", CAS),
    ("CANCELLED", None, RELEASE),
    ("DELIVERY", "DELIVERY_SERVICE_RECEIVED", COMMIT),
    ("DELIVERED", "DELIVERY_SERVICE_DELIVERED", FINAL),
    ("PICKUP_EXPIRED", None, IGNORE),  # a substatus is not a status
]

YM_CANCELLED_AFTER_SHIP_EXPECTED = {
    "PICKUP_EXPIRED",
    "USER_REFUSED_PRODUCT",
    "USER_REFUSED_QUALITY",
}

YM_NOTIFICATION_EXPECTED = [
    ("ORDER_CREATED", RESERVE),
    ("ORDER_CANCELLED", RELEASE),
]

YM_IGNORED_NOTIFICATIONS = [
    "PING",
    "ORDER_UPDATED",
    "ORDER_CANCELLATION_REQUEST",
    "ORDER_RETURN_CREATED",
    "ORDER_RETURN_STATUS_UPDATED",
    "GOODS_FEEDBACK_CREATED",
    "GOODS_FEEDBACK_COMMENT_CREATED",
    "CHAT_CREATED",
    "CHAT_MESSAGE_SENT",
    "CHAT_ARBITRAGE_STARTED",
    "CHAT_ARBITRAGE_FINISHED",
    "QUESTION_CREATED",
    "QUESTION_ANSWER_CREATED",
    "QUESTION_COMMENT_CREATED",
    "SOMETHING_NEW",
]

STOREFRONT_EXPECTED = [
    ("new", RESERVE),
    ("shipped", COMMIT),
    ("cancelled", RELEASE),
    ("cancelled_after_ship", CAS),
    ("delivered", FINAL),
]


def _rows(table: Mapping[str, OrderAction]) -> list[tuple[str, OrderAction]]:
    return sorted(table.items())


# --- Tables match the independent expectations ---------------------------------------------------


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        pytest.param(OZON_STATUS_ACTIONS, OZON_STATUS_EXPECTED, id="ozon-status"),
        pytest.param(OZON_PUSH_STATE_ACTIONS, OZON_PUSH_STATE_EXPECTED, id="ozon-push-state"),
        pytest.param(OZON_PUSH_MESSAGE_ACTIONS, OZON_PUSH_MESSAGE_EXPECTED, id="ozon-push-type"),
        pytest.param(WB_SUPPLIER_STATUS_ACTIONS, WB_SUPPLIER_EXPECTED, id="wb-supplier"),
        pytest.param(WB_STATUS_ACTIONS, WB_STATUS_EXPECTED, id="wb-status"),
        pytest.param(YM_STATUS_ACTIONS, YM_STATUS_EXPECTED, id="ym-status"),
        pytest.param(YM_NOTIFICATION_ACTIONS, YM_NOTIFICATION_EXPECTED, id="ym-notification"),
        pytest.param(STOREFRONT_STATUS_ACTIONS, STOREFRONT_EXPECTED, id="storefront"),
    ],
)
def test_table_has_exactly_the_expected_rows(
    table: Mapping[str, OrderAction], expected: list[tuple[str, OrderAction]]
) -> None:
    assert len({status for status, _ in expected}) == len(expected), "duplicate expected row"
    assert _rows(table) == sorted(expected)


def test_ozon_shipped_states_are_the_expected_ones() -> None:
    assert set(OZON_SHIPPED_PUSH_STATES) == OZON_SHIPPED_EXPECTED


def test_ym_after_ship_substatuses_are_the_expected_ones() -> None:
    assert set(YM_CANCELLED_AFTER_SHIP_SUBSTATUSES) == YM_CANCELLED_AFTER_SHIP_EXPECTED


# --- Ozon -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "action"), _rows(OZON_STATUS_ACTIONS))
def test_ozon_action_follows_its_table(status: str, action: OrderAction) -> None:
    assert ozon_action(status) is action


@pytest.mark.parametrize(("status", "action"), OZON_STATUS_EXPECTED)
def test_ozon_action_expected(status: str, action: OrderAction) -> None:
    assert ozon_action(status) is action


def test_ozon_cancelled_after_ship_flag() -> None:
    assert ozon_action("cancelled", cancelled_after_ship=True) is CAS
    assert ozon_action("cancelled", cancelled_after_ship=False) is RELEASE


@pytest.mark.parametrize("status", [s for s, _ in OZON_STATUS_EXPECTED if s != "cancelled"])
def test_ozon_flag_only_affects_a_plain_cancel(status: str) -> None:
    assert ozon_action(status, cancelled_after_ship=True) is ozon_action(status)


@pytest.mark.parametrize(
    "status", ["", "CANCELLED", "Awaiting_Packaging", "awaiting_packaging ", "brand_new_status"]
)
def test_ozon_unknown_or_misspelt_status_is_ignored(status: str) -> None:
    assert ozon_action(status) is IGNORE
    assert ozon_action(status, cancelled_after_ship=True) is IGNORE


@pytest.mark.parametrize(("state", "action"), _rows(OZON_PUSH_STATE_ACTIONS))
def test_ozon_state_changed_follows_its_table(state: str, action: OrderAction) -> None:
    assert ozon_push_action("TYPE_STATE_CHANGED", state) is action


@pytest.mark.parametrize(("state", "action"), OZON_PUSH_STATE_EXPECTED)
def test_ozon_state_changed_expected(state: str, action: OrderAction) -> None:
    assert ozon_push_action("TYPE_STATE_CHANGED", state) is action


@pytest.mark.parametrize(("message_type", "action"), _rows(OZON_PUSH_MESSAGE_ACTIONS))
def test_ozon_push_types_follow_their_table(message_type: str, action: OrderAction) -> None:
    assert ozon_push_action(message_type, None) is action


def test_ozon_push_documented_payloads() -> None:
    assert ozon_push_action("TYPE_NEW_POSTING", None) is RESERVE
    assert ozon_push_action("TYPE_POSTING_CANCELLED", "posting_canceled") is RELEASE
    assert ozon_push_action("TYPE_STATE_CHANGED", "posting_delivered") is FINAL
    # The documented cancel example: old_state is a delivering state, so the goods had left.
    documented_cancel = ozon_push_action(
        "TYPE_POSTING_CANCELLED",
        "posting_canceled",
        old_state="posting_transferred_to_courier_service",
    )
    assert documented_cancel is CAS


def test_ozon_new_posting_ignores_its_state() -> None:
    assert ozon_push_action("TYPE_NEW_POSTING", "posting_delivered") is RESERVE


@pytest.mark.parametrize("message_type", OZON_IGNORED_MESSAGES)
def test_ozon_other_push_types_are_ignored(message_type: str) -> None:
    assert ozon_push_action(message_type, None) is IGNORE
    assert ozon_push_action(message_type, "posting_canceled") is IGNORE
    assert ozon_push_action(message_type, None, cancelled_after_ship=True) is IGNORE


@pytest.mark.parametrize("old_state", sorted(OZON_SHIPPED_EXPECTED))
def test_ozon_cancel_from_a_post_prepare_state_is_after_ship(old_state: str) -> None:
    assert (
        ozon_push_action("TYPE_POSTING_CANCELLED", "posting_canceled", old_state=old_state) is CAS
    )
    assert ozon_push_action("TYPE_STATE_CHANGED", "posting_canceled", old_state=old_state) is CAS


@pytest.mark.parametrize(
    "old_state",
    [
        None,
        "posting_created",
        "posting_awaiting_registration",
        "posting_acceptance_in_progress",
        "posting_awaiting_passport_data",
        "posting_registration_error",
        "posting_split_pending",
        "something_new",
    ],
)
def test_ozon_cancel_before_prepare_releases(old_state: str | None) -> None:
    assert ozon_push_action("TYPE_POSTING_CANCELLED", "posting_canceled", old_state=old_state) is (
        RELEASE
    )


def test_ozon_push_cancel_flag() -> None:
    assert ozon_push_action("TYPE_POSTING_CANCELLED", None, cancelled_after_ship=True) is CAS
    assert ozon_push_action(
        "TYPE_STATE_CHANGED", "posting_canceled", cancelled_after_ship=True
    ) is (CAS)


@pytest.mark.parametrize(("state", "action"), OZON_PUSH_STATE_EXPECTED)
def test_ozon_flag_and_old_state_only_affect_cancels(state: str, action: OrderAction) -> None:
    if action is RELEASE:
        return
    got = ozon_push_action(
        "TYPE_STATE_CHANGED", state, cancelled_after_ship=True, old_state="posting_delivered"
    )
    assert got is action


@pytest.mark.parametrize("state", [None, "", "POSTING_CREATED", "posting_brand_new"])
def test_ozon_unknown_push_state_is_ignored(state: str | None) -> None:
    assert ozon_push_action("TYPE_STATE_CHANGED", state) is IGNORE


# --- Wildberries ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "action"), _rows(WB_SUPPLIER_STATUS_ACTIONS))
def test_wb_supplier_status_alone_follows_its_table(status: str, action: OrderAction) -> None:
    assert wildberries_action(status, None) is action
    assert wildberries_action(status, "waiting") is action


@pytest.mark.parametrize(("status", "action"), _rows(WB_STATUS_ACTIONS))
def test_wb_status_alone_follows_its_table(status: str, action: OrderAction) -> None:
    assert wildberries_action(None, status) is action


@pytest.mark.parametrize(("status", "action"), WB_SUPPLIER_EXPECTED)
def test_wb_supplier_status_expected(status: str, action: OrderAction) -> None:
    assert wildberries_action(status, None) is action


@pytest.mark.parametrize(("status", "action"), WB_STATUS_EXPECTED)
def test_wb_status_expected(status: str, action: OrderAction) -> None:
    assert wildberries_action(None, status) is action


@pytest.mark.parametrize(("supplier_status", "wb_status", "action"), WB_COMBINED_EXPECTED)
def test_wb_combined(
    supplier_status: str | None, wb_status: str | None, action: OrderAction
) -> None:
    assert wildberries_action(supplier_status, wb_status) is action


@pytest.mark.parametrize(("supplier_status", "_s"), WB_SUPPLIER_EXPECTED)
@pytest.mark.parametrize(("wb_status", "_w"), [*WB_STATUS_EXPECTED, ("unknown", IGNORE)])
def test_wb_every_combination_is_an_action(
    supplier_status: str, _s: OrderAction, wb_status: str, _w: OrderAction
) -> None:
    assert isinstance(wildberries_action(supplier_status, wb_status), OrderAction)


@pytest.mark.parametrize("supplier_status", ["NEW", "Complete", "", "brand_new"])
def test_wb_unknown_values_are_ignored(supplier_status: str) -> None:
    assert wildberries_action(supplier_status, supplier_status) is IGNORE


# --- Yandex Market -------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "action"), _rows(YM_STATUS_ACTIONS))
def test_ym_action_follows_its_table(status: str, action: OrderAction) -> None:
    assert yandex_market_action(status) is action


@pytest.mark.parametrize(("status", "action"), YM_STATUS_EXPECTED)
def test_ym_action_expected(status: str, action: OrderAction) -> None:
    assert yandex_market_action(status) is action


@pytest.mark.parametrize(("status", "substatus", "action"), YM_WITH_SUBSTATUS_EXPECTED)
def test_ym_action_with_substatus(status: str, substatus: str | None, action: OrderAction) -> None:
    assert yandex_market_action(status, substatus) is action


@pytest.mark.parametrize("substatus", sorted(YM_CANCELLED_AFTER_SHIP_EXPECTED))
def test_ym_after_ship_substatus_only_matters_when_cancelled(substatus: str) -> None:
    assert yandex_market_action("CANCELLED", substatus) is CAS
    assert yandex_market_action("PROCESSING", substatus) is RESERVE
    assert yandex_market_action("DELIVERY", substatus) is COMMIT


@pytest.mark.parametrize("status", ["", "processing", "Delivered", "LOST", "BRAND_NEW"])
def test_ym_unknown_or_misspelt_status_is_ignored(status: str) -> None:
    assert yandex_market_action(status) is IGNORE
    assert yandex_market_action(status, "STARTED") is IGNORE


@pytest.mark.parametrize(("notification_type", "action"), _rows(YM_NOTIFICATION_ACTIONS))
def test_ym_notification_follows_its_table(notification_type: str, action: OrderAction) -> None:
    assert yandex_market_notification_action(notification_type) is action


@pytest.mark.parametrize(("notification_type", "action"), YM_NOTIFICATION_EXPECTED)
def test_ym_notification_expected(notification_type: str, action: OrderAction) -> None:
    assert yandex_market_notification_action(notification_type) is action


@pytest.mark.parametrize(("status", "substatus", "action"), YM_WITH_SUBSTATUS_EXPECTED)
def test_ym_status_updated_uses_the_status_rules(
    status: str, substatus: str | None, action: OrderAction
) -> None:
    assert yandex_market_notification_action("ORDER_STATUS_UPDATED", status, substatus) is action


@pytest.mark.parametrize(("status", "action"), YM_STATUS_EXPECTED)
def test_ym_status_updated_expected(status: str, action: OrderAction) -> None:
    assert yandex_market_notification_action("ORDER_STATUS_UPDATED", status) is action


def test_ym_status_updated_without_status_is_ignored() -> None:
    assert yandex_market_notification_action("ORDER_STATUS_UPDATED") is IGNORE
    assert yandex_market_notification_action("ORDER_STATUS_UPDATED", None, "STARTED") is IGNORE


def test_ym_order_cancelled_with_after_ship_substatus() -> None:
    assert yandex_market_notification_action("ORDER_CANCELLED", None, "PICKUP_EXPIRED") is CAS
    assert yandex_market_notification_action("ORDER_CANCELLED", "CANCELLED", "SHOP_FAILED") is (
        RELEASE
    )


def test_ym_order_created_ignores_status_fields() -> None:
    assert yandex_market_notification_action("ORDER_CREATED", "DELIVERED", "X") is RESERVE


@pytest.mark.parametrize("notification_type", YM_IGNORED_NOTIFICATIONS)
def test_ym_other_notifications_are_ignored(notification_type: str) -> None:
    assert yandex_market_notification_action(notification_type) is IGNORE
    assert yandex_market_notification_action(notification_type, "CANCELLED", "SHOP_FAILED") is (
        IGNORE
    )


# --- Storefront ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "action"), _rows(STOREFRONT_STATUS_ACTIONS))
def test_storefront_follows_its_table(status: str, action: OrderAction) -> None:
    assert storefront_order_action(status) is action


@pytest.mark.parametrize(("status", "action"), STOREFRONT_EXPECTED)
def test_storefront_expected(status: str, action: OrderAction) -> None:
    assert storefront_order_action(status) is action


@pytest.mark.parametrize("status", ["", "NEW", "canceled", "returned", "ignore"])
def test_storefront_unknown_status_raises_naming_the_allowed_values(status: str) -> None:
    with pytest.raises(ValueError, match="unknown order status") as excinfo:
        storefront_order_action(status)
    message = str(excinfo.value)
    assert repr(status) in message
    for allowed, _ in STOREFRONT_EXPECTED:
        assert allowed in message


# --- states no table lists (issue 12, item 9) ----------------------------------------------------


def test_a_state_no_table_lists_is_unrecognised_and_every_listed_one_is_not():
    assert ozon_unrecognised("awaiting_teleport") == ("awaiting_teleport",)
    assert ozon_push_unrecognised("posting_teleported") == ("posting_teleported",)
    assert wildberries_unrecognised("confirm", "teleported") == ("teleported",)
    assert wildberries_unrecognised("weird", "weirder") == ("weird", "weirder")
    assert yandex_market_unrecognised("TELEPORTED") == ("TELEPORTED",)
    # Case matters, as in the lookups: a status spelt otherwise is not the listed one.
    assert ozon_unrecognised("DELIVERED") == ("DELIVERED",)
    # Nothing sent is nothing unrecognised.
    assert ozon_unrecognised("") == ()
    assert wildberries_unrecognised(None, None) == ()
    # Listed rows are recognised, IGNORE ones included: those are ignored on purpose.
    for status in OZON_STATUS_ACTIONS:
        assert ozon_unrecognised(status) == ()
    for state in OZON_PUSH_STATE_ACTIONS:
        assert ozon_push_unrecognised(state) == ()
    for supplier in WB_SUPPLIER_STATUS_ACTIONS:
        for wb in WB_STATUS_ACTIONS:
            assert wildberries_unrecognised(supplier, wb) == ()
    for status in YM_STATUS_ACTIONS:
        assert yandex_market_unrecognised(status) == ()
