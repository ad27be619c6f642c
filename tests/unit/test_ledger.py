"""Row-by-row tests of RedisLedger: every order transition, storefront holds, stock counts.

Each test runs twice through the ``redis_client`` fixture: on fakeredis and on a real Valkey
server (the latter marked ``integration``).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import redis
from redis.cluster import RedisCluster

import inventory_engine.ledger.ledger as ledger_module
from inventory_engine.constants import FINISHED_ORDER_RETENTION_MS, MAX_STOCK_LEVEL
from inventory_engine.domain.models import OrderAction, OrderLine, OrderState
from inventory_engine.errors import (
    InsufficientStockError,
    LedgerScriptError,
    LedgerUnavailableError,
    ReservationConflictError,
    ReservationExpiredError,
    ReservationNotFoundError,
    ShortLine,
    StockLevelError,
)
from inventory_engine.ledger import LedgerReader, OrderEvent, OrderOutcome, RedisLedger
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.reads import Oversell
from tests.conftest import START_MS, FakeClock, LedgerFactory, all_keys, write_bundles

KEYS = AccountKeys()

RESERVE = OrderAction.RESERVE
HOLD = OrderAction.HOLD
COMMIT = OrderAction.COMMIT
RELEASE = OrderAction.RELEASE
FINAL = OrderAction.FINAL
CAS = OrderAction.CANCEL_AFTER_SHIP
IGNORE = OrderAction.IGNORE

RESERVED = OrderState.RESERVED
COMMITTED = OrderState.COMMITTED
FINAL_STATE = OrderState.FINAL
RELEASED = OrderState.RELEASED
EXPIRED = OrderState.EXPIRED
CANCELLED_AFTER_SHIP = OrderState.CANCELLED_AFTER_SHIP

DefineBundles = Callable[..., None]


def line(sku: str, quantity: int) -> OrderLine:
    return OrderLine(sku=sku, quantity=quantity)


def text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def counts(client: redis.Redis, sku: str, location: str = "main") -> tuple[int, int]:
    """(on_hand, reserved) of one SKU as stored (missing fields count 0)."""
    on_hand = client.hget(KEYS.on_hand, KEYS.stock_field(location, sku))
    reserved = client.hget(KEYS.reserved, KEYS.stock_field(location, sku))
    return int(on_hand or 0), int(reserved or 0)


def journal_len(client: redis.Redis) -> int:
    return int(client.xlen(KEYS.journal))


def order_state(client: redis.Redis, channel: str, order_id: str) -> str | None:
    return text(client.hget(KEYS.order(channel, order_id), "state"))


def snapshot(client: redis.Redis) -> dict[str, object]:
    """Every key of the default account with its value, for "nothing changed" checks."""
    out: dict[str, object] = {}
    for raw_key in all_keys(client, "inv:*"):
        key = text(raw_key)
        assert key is not None
        kind = text(client.type(key))
        if kind == "hash":
            out[key] = {text(k): text(v) for k, v in client.hgetall(key).items()}
        elif kind == "zset":
            out[key] = [(text(m), s) for m, s in client.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            out[key] = client.xlen(key)
        elif kind == "set":
            out[key] = sorted(text(m) or "" for m in client.smembers(key))
        else:
            out[key] = kind
    return out


# -- marketplace order transitions -------------------------------------------------------------

Q = 2
"""Units of SKU A on the order in the transition table (stock is 10, so never oversold)."""

START_EVENTS: dict[str, list[OrderAction]] = {
    "absent": [],
    "reserved": [RESERVE],
    "committed": [RESERVE, COMMIT],
    "final": [RESERVE, FINAL],
    "released": [RESERVE, RELEASE],
    "cancelled_after_ship": [RESERVE, CAS],
}

# (start state, action, applied, state afterwards, delta on_hand, delta reserved)
TRANSITIONS: list[tuple[str, OrderAction, bool, OrderState, int, int]] = [
    ("absent", RESERVE, True, RESERVED, 0, +Q),
    ("absent", HOLD, True, RESERVED, 0, +Q),
    ("absent", COMMIT, True, COMMITTED, -Q, 0),
    ("absent", FINAL, True, FINAL_STATE, -Q, 0),
    ("absent", CAS, True, CANCELLED_AFTER_SHIP, -Q, 0),
    ("absent", RELEASE, True, RELEASED, 0, 0),
    ("reserved", RESERVE, False, RESERVED, 0, 0),
    ("reserved", HOLD, False, RESERVED, 0, 0),
    ("reserved", COMMIT, True, COMMITTED, -Q, -Q),
    ("reserved", FINAL, True, FINAL_STATE, -Q, -Q),
    ("reserved", CAS, True, CANCELLED_AFTER_SHIP, -Q, -Q),
    ("reserved", RELEASE, True, RELEASED, 0, -Q),
    ("committed", RESERVE, False, COMMITTED, 0, 0),
    ("committed", HOLD, False, COMMITTED, 0, 0),
    ("committed", COMMIT, False, COMMITTED, 0, 0),
    ("committed", FINAL, True, FINAL_STATE, 0, 0),
    ("committed", CAS, True, CANCELLED_AFTER_SHIP, 0, 0),
    ("committed", RELEASE, False, COMMITTED, 0, 0),
    *[
        (start, action, False, OrderState(start), 0, 0)
        for start in ("final", "released", "cancelled_after_ship")
        for action in (RESERVE, HOLD, COMMIT, FINAL, CAS, RELEASE)
    ],
]


@pytest.mark.parametrize(
    ("start", "action", "applied", "state", "d_on_hand", "d_reserved"),
    TRANSITIONS,
    ids=[f"{row[0]}-{row[1].value}" for row in TRANSITIONS],
)
def test_record_order_transition_table(
    ledger: RedisLedger,
    redis_client: redis.Redis,
    start: str,
    action: OrderAction,
    applied: bool,
    state: OrderState,
    d_on_hand: int,
    d_reserved: int,
) -> None:
    ledger.set_on_hand("A", 10)
    for earlier in START_EVENTS[start]:
        assert ledger.record_order("ozon", "o1", [line("A", Q)], earlier).applied
    on_hand, reserved = counts(redis_client, "A")
    entries = journal_len(redis_client)

    outcome = ledger.record_order("ozon", "o1", [line("A", Q)], action)

    assert outcome == OrderOutcome(applied, state, 0, 0)
    assert order_state(redis_client, "ozon", "o1") == state.value
    assert counts(redis_client, "A") == (on_hand + d_on_hand, reserved + d_reserved)
    if not applied:
        assert journal_len(redis_client) == entries


@pytest.mark.parametrize("action", [RESERVE, HOLD, COMMIT, FINAL, CAS, RELEASE])
def test_record_order_expired_hold_never_moves(
    ledger: RedisLedger, redis_client: redis.Redis, clock: FakeClock, action: OrderAction
) -> None:
    ledger.set_on_hand("A", 10)
    ledger.try_reserve("r1", [line("A", Q)], ttl_s=1)
    clock.advance(seconds=1)
    assert ledger.expire_due() == 1
    before = snapshot(redis_client)

    outcome = ledger.record_order("storefront", "r1", [line("A", Q)], action)

    assert outcome == OrderOutcome(False, EXPIRED)
    assert snapshot(redis_client) == before


def test_record_order_reserve_holds_units(
    ledger: RedisLedger, redis_client: redis.Redis, reader: LedgerReader
) -> None:
    ledger.set_on_hand("A", 10)

    outcome = ledger.record_order("ozon", "o1", [line("A", 3)], RESERVE, status="awaiting")

    assert outcome == OrderOutcome(True, RESERVED, 0, 0)
    assert counts(redis_client, "A") == (10, 3)
    assert reader.stock("A").available == 7
    record = reader.order("ozon", "o1")
    assert record is not None
    assert record.state is RESERVED
    assert record.lines == (line("A", 3),)
    assert record.location == "main"
    assert record.status == "awaiting"
    assert record.created_ms == START_MS
    assert record.updated_ms == START_MS
    assert record.expires_at_ms is None


def test_record_order_duplicate_reserve_is_noop(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 10)
    ledger.record_order("ozon", "o1", [line("A", 3)], RESERVE)
    entries = journal_len(redis_client)

    outcome = ledger.record_order("ozon", "o1", [line("A", 3)], RESERVE)

    assert outcome == OrderOutcome(False, RESERVED)
    assert counts(redis_client, "A") == (10, 3)
    assert journal_len(redis_client) == entries


def test_record_order_duplicate_with_other_lines_keeps_first_lines(
    ledger: RedisLedger, redis_client: redis.Redis, reader: LedgerReader
) -> None:
    ledger.set_on_hand("A", 10)
    ledger.record_order("ozon", "o1", [line("A", 3)], RESERVE)

    assert ledger.record_order("ozon", "o1", [line("A", 5)], RESERVE).applied is False
    assert ledger.commit("ozon", "o1", lines=[line("A", 5)]).state is COMMITTED

    assert counts(redis_client, "A") == (7, 0)
    record = reader.order("ozon", "o1")
    assert record is not None
    assert record.lines == (line("A", 3),)


def test_record_order_hold_of_unseen_order_reserves(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 10)

    outcome = ledger.record_order("ozon", "o1", [line("A", 2)], HOLD)

    assert outcome == OrderOutcome(True, RESERVED, 0, 0)
    assert counts(redis_client, "A") == (10, 2)


def test_record_order_status_is_kept_even_on_noop(
    ledger: RedisLedger, reader: LedgerReader
) -> None:
    ledger.set_on_hand("A", 10)
    ledger.record_order("ozon", "o1", [line("A", 1)], RESERVE, status="awaiting_packaging")

    ledger.record_order("ozon", "o1", [line("A", 1)], HOLD, status="arbitration")

    record = reader.order("ozon", "o1")
    assert record is not None
    assert record.status == "arbitration"
    assert record.state is RESERVED


def test_record_order_ignore_changes_nothing(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 10)
    ledger.record_order("ozon", "o1", [line("A", 1)], RESERVE)
    before = snapshot(redis_client)

    assert ledger.record_order("ozon", "o1", [line("A", 1)], IGNORE).applied is False
    assert ledger.record_order("ozon", "o2", [line("A", 1)], IGNORE) == OrderOutcome(False, None)

    assert snapshot(redis_client) == before


def test_record_orders_ignore_changes_nothing(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 10)
    before = snapshot(redis_client)

    outcomes = ledger.record_orders([OrderEvent("ozon", "o2", IGNORE, (line("A", 1),))])

    assert outcomes == [OrderOutcome(False, None)]
    assert snapshot(redis_client) == before


# -- commit ----------------------------------------------------------------------------------


def test_commit_from_reserved_drops_on_hand_and_reserved(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 10)
    ledger.record_order("ozon", "o1", [line("A", 3)], RESERVE)

    outcome = ledger.commit("ozon", "o1")

    assert outcome == OrderOutcome(True, COMMITTED, 0, 0)
    assert counts(redis_client, "A") == (7, 0)


def test_commit_duplicate_is_noop(ledger: RedisLedger, redis_client: redis.Redis) -> None:
    ledger.set_on_hand("A", 10)
    ledger.record_order("ozon", "o1", [line("A", 3)], RESERVE)
    ledger.commit("ozon", "o1")
    entries = journal_len(redis_client)

    assert ledger.commit("ozon", "o1") == OrderOutcome(False, COMMITTED)

    assert counts(redis_client, "A") == (7, 0)
    assert journal_len(redis_client) == entries


def test_commit_unseen_order_with_lines_drops_on_hand_directly(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 10)

    outcome = ledger.commit("ozon", "o1", lines=[line("A", 4)])

    assert outcome == OrderOutcome(True, COMMITTED, 0, 0)
    assert counts(redis_client, "A") == (6, 0)
    # The late reserve of the same order is then a no-op.
    assert ledger.record_order("ozon", "o1", [line("A", 4)], RESERVE).applied is False
    assert counts(redis_client, "A") == (6, 0)


def test_commit_unseen_order_below_stock_counts_oversold(
    ledger: RedisLedger, redis_client: redis.Redis, reader: LedgerReader
) -> None:
    ledger.set_on_hand("A", 1)

    outcome = ledger.commit("ozon", "o1", lines=[line("A", 3)])

    assert outcome == OrderOutcome(True, COMMITTED, 2, 0)
    assert counts(redis_client, "A") == (-2, 0)
    assert reader.counters().oversold_units == 2


def test_commit_unseen_order_without_lines_raises_not_found(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 10)
    before = snapshot(redis_client)

    with pytest.raises(ReservationNotFoundError) as caught:
        ledger.commit("ozon", "o1")

    assert (caught.value.channel, caught.value.order_id) == ("ozon", "o1")
    assert snapshot(redis_client) == before


def test_commit_at_default_location_retries_at_the_orders_location(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 10)
    ledger.set_on_hand("A", 10, location="b")
    ledger.record_order("ozon", "o1", [line("A", 2)], RESERVE, location="b")
    assert counts(redis_client, "A", "b") == (10, 2)

    outcome = ledger.commit("ozon", "o1")

    assert outcome == OrderOutcome(True, COMMITTED, 0, 0)
    assert counts(redis_client, "A", "b") == (8, 0)
    assert counts(redis_client, "A", "main") == (10, 0)


def test_release_at_default_location_retries_at_the_orders_location(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 10, location="b")
    ledger.record_order("ozon", "o1", [line("A", 2)], RESERVE, location="b")

    assert ledger.release("ozon", "o1").state is RELEASED

    assert counts(redis_client, "A", "b") == (10, 0)
    assert counts(redis_client, "A", "main") == (0, 0)


# -- final / cancel after ship ---------------------------------------------------------------


def test_record_order_final_after_commit_moves_no_stock(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 10)
    ledger.record_order("ozon", "o1", [line("A", 3)], RESERVE)
    ledger.commit("ozon", "o1")

    assert ledger.record_order("ozon", "o1", [], FINAL) == OrderOutcome(True, FINAL_STATE, 0, 0)

    assert counts(redis_client, "A") == (7, 0)


def test_record_order_cancel_after_ship_does_not_return_stock(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 10)
    ledger.record_order("ozon", "o1", [line("A", 3)], RESERVE)
    ledger.commit("ozon", "o1")

    outcome = ledger.record_order("ozon", "o1", [line("A", 3)], CAS)

    assert outcome == OrderOutcome(True, CANCELLED_AFTER_SHIP, 0, 0)
    assert counts(redis_client, "A") == (7, 0)
    # A release after that changes nothing either.
    assert ledger.release("ozon", "o1") == OrderOutcome(False, CANCELLED_AFTER_SHIP)
    assert counts(redis_client, "A") == (7, 0)


def test_record_order_cancel_after_ship_of_unseen_order_drops_on_hand(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 10)

    outcome = ledger.record_order("ozon", "o1", [line("A", 3)], CAS)

    assert outcome == OrderOutcome(True, CANCELLED_AFTER_SHIP, 0, 0)
    assert counts(redis_client, "A") == (7, 0)


def test_record_order_final_of_unseen_order_without_lines_is_not_found(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    before = snapshot(redis_client)

    assert ledger.record_order("ozon", "o1", [], FINAL) == OrderOutcome(False, None)

    assert snapshot(redis_client) == before


# -- release ---------------------------------------------------------------------------------


def test_release_returns_reserved_units(ledger: RedisLedger, redis_client: redis.Redis) -> None:
    ledger.set_on_hand("A", 10)
    ledger.record_order("ozon", "o1", [line("A", 3)], RESERVE)

    assert ledger.release("ozon", "o1") == OrderOutcome(True, RELEASED, 0, 0)

    assert counts(redis_client, "A") == (10, 0)
    assert ledger.release("ozon", "o1") == OrderOutcome(False, RELEASED)


def test_release_before_order_leaves_tombstone_and_late_reserve_is_noop(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 10)
    entries = journal_len(redis_client)

    assert ledger.release("ozon", "o1") == OrderOutcome(True, RELEASED, 0, 0)
    assert journal_len(redis_client) == entries
    assert order_state(redis_client, "ozon", "o1") == "released"

    late = ledger.record_order("ozon", "o1", [line("A", 3)], RESERVE)

    assert late == OrderOutcome(False, RELEASED)
    assert counts(redis_client, "A") == (10, 0)
    assert journal_len(redis_client) == entries


def test_release_after_commit_is_noop(ledger: RedisLedger, redis_client: redis.Redis) -> None:
    ledger.set_on_hand("A", 10)
    ledger.record_order("ozon", "o1", [line("A", 3)], RESERVE)
    ledger.commit("ozon", "o1")
    entries = journal_len(redis_client)

    assert ledger.release("ozon", "o1") == OrderOutcome(False, COMMITTED)

    assert counts(redis_client, "A") == (7, 0)
    assert journal_len(redis_client) == entries


def test_release_partial_is_idempotent_per_event_and_completes_to_released(
    ledger: RedisLedger, redis_client: redis.Redis, reader: LedgerReader
) -> None:
    ledger.set_on_hand("A", 10)
    ledger.set_on_hand("B", 10)
    ledger.record_order("ozon", "o1", [line("A", 3), line("B", 2)], RESERVE)

    first = ledger.release("ozon", "o1", lines=[line("A", 1)], event_id="e1")
    assert first == OrderOutcome(True, RESERVED, 0, 0)
    assert counts(redis_client, "A") == (10, 2)
    assert counts(redis_client, "B") == (10, 2)

    entries = journal_len(redis_client)
    assert ledger.release("ozon", "o1", lines=[line("A", 1)], event_id="e1") == OrderOutcome(
        False, RESERVED
    )
    assert counts(redis_client, "A") == (10, 2)
    assert journal_len(redis_client) == entries

    record = reader.order("ozon", "o1")
    assert record is not None
    assert record.lines == (line("A", 2), line("B", 2))

    # Asking for more than is left releases what is left.
    last = ledger.release("ozon", "o1", lines=[line("A", 5), line("B", 2)], event_id="e2")
    assert last == OrderOutcome(True, RELEASED, 0, 0)
    assert counts(redis_client, "A") == (10, 0)
    assert counts(redis_client, "B") == (10, 0)
    assert redis_client.pttl(KEYS.order("ozon", "o1")) > 0
    # A partial release after the end is a no-op too.
    assert ledger.release("ozon", "o1", lines=[line("A", 1)], event_id="e3") == OrderOutcome(
        False, RELEASED
    )


def test_release_partial_then_commit_commits_the_rest(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 10)
    ledger.record_order("ozon", "o1", [line("A", 3)], RESERVE)
    ledger.release("ozon", "o1", lines=[line("A", 1)], event_id="e1")

    ledger.commit("ozon", "o1")

    assert counts(redis_client, "A") == (8, 0)


def test_commit_after_a_line_was_fully_cancelled_journals_only_real_changes(
    ledger: RedisLedger, redis_client: redis.Redis, reader: LedgerReader
) -> None:
    ledger.set_on_hand("A", 5)
    ledger.set_on_hand("B", 5)
    ledger.record_order("ozon", "o1", [line("A", 1), line("B", 1)], RESERVE)
    ledger.release("ozon", "o1", lines=[line("A", 1)], event_id="e1")
    redis_client.delete(KEYS.dirty("ozon"))

    ledger.commit("ozon", "o1")

    assert [(e.op, e.sku) for e in reader.journal(limit=2)] == [
        ("commit", "B"),
        ("release", "A"),
    ]
    assert {text(m) for m in redis_client.zrange(KEYS.dirty("ozon"), 0, -1)} == {"B"}


def test_release_partial_of_unseen_order_is_not_found_and_leaves_no_tombstone(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 10)
    before = snapshot(redis_client)

    outcome = ledger.release("ozon", "o1", lines=[line("A", 1)], event_id="e1")

    assert outcome == OrderOutcome(False, None)
    assert snapshot(redis_client) == before
    assert ledger.record_order("ozon", "o1", [line("A", 3)], RESERVE).state is RESERVED
    assert counts(redis_client, "A") == (10, 3)


def test_release_partial_without_lines_is_rejected(ledger: RedisLedger) -> None:
    with pytest.raises(ValueError, match="lines"):
        ledger.release("ozon", "o1", event_id="e1")


# -- oversold and unknown SKUs -----------------------------------------------------------------


def test_record_order_short_stock_is_recorded_as_oversold(
    ledger: RedisLedger, redis_client: redis.Redis, reader: LedgerReader
) -> None:
    ledger.set_on_hand("A", 2)

    outcome = ledger.record_order("ozon", "o1", [line("A", 5)], RESERVE)

    assert outcome == OrderOutcome(True, RESERVED, 3, 0)
    assert counts(redis_client, "A") == (2, 5)
    counters = reader.counters()
    assert (counters.oversold_orders, counters.oversold_units) == (1, 3)
    assert reader.oversells() == [Oversell("ozon", "o1", "A", 3, "main", START_MS)]
    newest = reader.journal(limit=1)[0]
    assert (newest.op, newest.channel, newest.order_id, newest.sku) == (
        "oversold",
        "ozon",
        "o1",
        "A",
    )
    assert (newest.on_hand_before, newest.on_hand_after) == (2, 2)
    assert (newest.reserved_before, newest.reserved_after) == (5, 5)
    assert newest.reason == "available -3"

    # Already below zero: the whole next order is short.
    assert ledger.record_order("wb", "o2", [line("A", 1)], RESERVE).oversold_units == 1
    counters = reader.counters()
    assert (counters.oversold_orders, counters.oversold_units) == (2, 4)
    # Its replay does not count again.
    assert ledger.record_order("wb", "o2", [line("A", 1)], RESERVE).oversold_units == 0
    assert reader.counters().oversold_orders == 2


def test_record_order_oversold_bundle_names_the_short_component(
    ledger: RedisLedger, reader: LedgerReader, define_bundles: DefineBundles
) -> None:
    define_bundles({"K": "A:2;B:1"})
    ledger.set_on_hand("A", 3)
    ledger.set_on_hand("B", 5)

    outcome = ledger.record_order("ozon", "o1", [line("K", 2)], RESERVE)

    assert outcome.oversold_units == 1
    assert [(o.sku, o.shortfall) for o in reader.oversells()] == [("A", 1)]


def test_record_order_unknown_sku_is_parked_and_known_lines_apply(
    ledger: RedisLedger, redis_client: redis.Redis, reader: LedgerReader
) -> None:
    ledger.set_on_hand("A", 10)

    outcome = ledger.record_order("ozon", "o1", [line("A", 2), line("X", 3)], RESERVE)

    assert outcome == OrderOutcome(True, RESERVED, 0, 1)
    assert counts(redis_client, "A") == (10, 2)
    assert redis_client.hget(KEYS.reserved, KEYS.stock_field("main", "X")) is None
    assert reader.counters().unknown_sku_orders == 1
    parked = json.loads(redis_client.hget(KEYS.unknown_skus, "ozon|o1") or "null")
    assert parked == {"lines": [["X", 3]], "location": "main", "ms": START_MS}
    record = reader.order("ozon", "o1")
    assert record is not None
    assert record.lines == (line("A", 2),)
    assert record.unknown_lines == (("X", 3),)
    # The replay parks nothing again.
    ledger.record_order("ozon", "o1", [line("A", 2), line("X", 3)], RESERVE)
    assert reader.counters().unknown_sku_orders == 1
    # Committing moves only the known line.
    ledger.commit("ozon", "o1")
    assert counts(redis_client, "A") == (8, 0)


def test_record_order_catalog_sku_without_stock_is_known_and_oversold(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    redis_client.hset(KEYS.catalog, "C", json.dumps({"sku": "C"}))

    outcome = ledger.record_order("ozon", "o1", [line("C", 1)], RESERVE)

    assert outcome == OrderOutcome(True, RESERVED, 1, 0)
    assert counts(redis_client, "C") == (0, 1)


# -- storefront holds ------------------------------------------------------------------------


def test_try_reserve_holds_all_lines(
    ledger: RedisLedger, redis_client: redis.Redis, reader: LedgerReader
) -> None:
    ledger.set_on_hand("A", 5)
    ledger.set_on_hand("B", 5)

    outcome = ledger.try_reserve("r1", [line("A", 2), line("B", 5)])

    assert (outcome.reservation_id, outcome.created, outcome.state) == ("r1", True, RESERVED)
    assert outcome.expires_at_ms is None
    assert counts(redis_client, "A") == (5, 2)
    assert counts(redis_client, "B") == (5, 5)
    record = reader.order("storefront", "r1")
    assert record is not None
    assert record.state is RESERVED
    assert redis_client.zcard(KEYS.expiry) == 0


def test_try_reserve_short_lists_every_short_line_and_holds_nothing(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 5)
    ledger.set_on_hand("B", 1)
    before = snapshot(redis_client)

    with pytest.raises(InsufficientStockError) as caught:
        ledger.try_reserve("r1", [line("A", 3), line("B", 2), line("X", 1)], ttl_s=60)

    assert caught.value.items == [ShortLine("X", 1, 0), ShortLine("B", 2, 1)]
    assert snapshot(redis_client) == before

    # Once stock arrives the same id can be tried again.
    ledger.adjust_on_hand("B", 1, reason="received")
    with pytest.raises(InsufficientStockError):
        ledger.try_reserve("r1", [line("A", 3), line("B", 2), line("X", 1)])
    assert ledger.try_reserve("r1", [line("A", 3), line("B", 2)]).created is True


def test_try_reserve_same_id_and_lines_returns_first_answer(
    ledger: RedisLedger, redis_client: redis.Redis, clock: FakeClock
) -> None:
    ledger.set_on_hand("A", 5)
    first = ledger.try_reserve("r1", [line("A", 2)], ttl_s=60)
    entries = journal_len(redis_client)
    clock.advance(seconds=10)

    again = ledger.try_reserve("r1", [line("A", 2)], ttl_s=60)

    assert first.created is True
    assert again.created is False
    assert (again.state, again.expires_at_ms) == (RESERVED, START_MS + 60_000)
    assert first.expires_at_ms == START_MS + 60_000
    assert counts(redis_client, "A") == (5, 2)
    assert journal_len(redis_client) == entries


def test_try_reserve_same_id_other_lines_is_a_conflict(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 5)
    ledger.try_reserve("r1", [line("A", 2)])

    with pytest.raises(ReservationConflictError) as caught:
        ledger.try_reserve("r1", [line("A", 3)])

    assert (caught.value.reservation_id, caught.value.state) == ("r1", "reserved")
    assert counts(redis_client, "A") == (5, 2)


def test_try_reserve_same_lines_in_other_order_is_the_same_request(ledger: RedisLedger) -> None:
    ledger.set_on_hand("A", 5)
    ledger.set_on_hand("B", 5)
    ledger.try_reserve("r1", [line("A", 1), line("B", 1)])

    assert ledger.try_reserve("r1", [line("B", 1), line("A", 1)]).created is False


def test_try_reserve_merges_repeated_skus(ledger: RedisLedger, redis_client: redis.Redis) -> None:
    ledger.set_on_hand("A", 5)

    ledger.try_reserve("r1", [line("A", 1), line("A", 2)])

    assert counts(redis_client, "A") == (5, 3)
    assert ledger.try_reserve("r1", [line("A", 3)]).created is False


def test_try_reserve_bundle_line_reserves_components(
    ledger: RedisLedger,
    redis_client: redis.Redis,
    reader: LedgerReader,
    define_bundles: DefineBundles,
) -> None:
    define_bundles({"K": "A:2;B:1"})
    ledger.set_on_hand("A", 10)
    ledger.set_on_hand("B", 10)

    ledger.try_reserve("r1", [line("K", 3)])

    assert counts(redis_client, "A") == (10, 6)
    assert counts(redis_client, "B") == (10, 3)
    assert redis_client.hget(KEYS.reserved, KEYS.stock_field("main", "K")) is None
    assert reader.stock("K").available == 2
    record = reader.order("storefront", "r1")
    assert record is not None
    assert record.lines == (line("K", 3),)


def test_try_reserve_two_lines_sharing_a_component_are_checked_together(
    ledger: RedisLedger, redis_client: redis.Redis, define_bundles: DefineBundles
) -> None:
    define_bundles({"K": "A:2;B:1"})
    ledger.set_on_hand("A", 3)
    ledger.set_on_hand("B", 5)

    # Each line alone fits (A:2 needs 2, K:1 needs 2 A), together they need 4 A.
    with pytest.raises(InsufficientStockError) as caught:
        ledger.try_reserve("r1", [line("A", 2), line("K", 1)])

    assert caught.value.items == [ShortLine("A", 2, 3), ShortLine("K", 1, 1)]
    assert counts(redis_client, "A") == (3, 0)

    ledger.adjust_on_hand("A", 1, reason="received")
    assert ledger.try_reserve("r1", [line("A", 2), line("K", 1)]).created is True
    assert counts(redis_client, "A") == (4, 4)
    assert counts(redis_client, "B") == (5, 1)


def test_try_reserve_short_bundle_reports_bundles_available(
    ledger: RedisLedger, define_bundles: DefineBundles
) -> None:
    define_bundles({"K": "A:2;B:1"})
    ledger.set_on_hand("A", 5)
    ledger.set_on_hand("B", 1)

    with pytest.raises(InsufficientStockError) as caught:
        ledger.try_reserve("r1", [line("K", 2)])

    assert caught.value.items == [ShortLine("K", 2, 1)]


def test_try_reserve_rejects_non_positive_ttl(ledger: RedisLedger) -> None:
    ledger.set_on_hand("A", 5)
    with pytest.raises(ValueError, match="ttl_s"):
        ledger.try_reserve("r1", [line("A", 1)], ttl_s=0)


def test_try_reserve_hold_at_other_location_answers_from_there(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 5, location="b")
    ledger.try_reserve("r1", [line("A", 2)], location="b")

    again = ledger.try_reserve("r1", [line("A", 2)])

    assert (again.created, again.state) == (False, RESERVED)
    assert counts(redis_client, "A", "b") == (5, 2)


def test_try_reserve_then_commit_and_release(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 5)
    ledger.try_reserve("r1", [line("A", 2)])
    ledger.try_reserve("r2", [line("A", 1)])

    assert ledger.commit("storefront", "r1").state is COMMITTED
    assert ledger.release("storefront", "r2").state is RELEASED

    assert counts(redis_client, "A") == (3, 0)


# -- expiry ----------------------------------------------------------------------------------


def test_expire_due_releases_holds_whose_time_is_up(
    ledger: RedisLedger, redis_client: redis.Redis, clock: FakeClock, reader: LedgerReader
) -> None:
    ledger.set_on_hand("A", 5)
    ledger.try_reserve("r1", [line("A", 2)], ttl_s=60)
    ledger.try_reserve("r2", [line("A", 1)])
    record = reader.order("storefront", "r1")
    assert record is not None
    assert record.expires_at_ms == START_MS + 60_000

    assert ledger.expire_due() == 0
    clock.advance(ms=59_999)
    assert ledger.expire_due() == 0
    assert counts(redis_client, "A") == (5, 3)

    clock.advance(ms=1)
    assert ledger.expire_due() == 1

    assert counts(redis_client, "A") == (5, 1)
    assert order_state(redis_client, "storefront", "r1") == "expired"
    assert order_state(redis_client, "storefront", "r2") == "reserved"
    assert redis_client.zcard(KEYS.expiry) == 0
    assert redis_client.pttl(KEYS.order("storefront", "r1")) > 0
    newest = reader.journal(limit=1)[0]
    assert (newest.op, newest.reason, newest.order_id) == ("release", "reservation expired", "r1")
    assert ledger.expire_due() == 0
    # A retry of the expired hold reports its state, holds nothing.
    again = ledger.try_reserve("r1", [line("A", 2)], ttl_s=60)
    assert (again.created, again.state) == (False, EXPIRED)
    assert counts(redis_client, "A") == (5, 1)


def test_expire_due_forgets_holds_committed_in_time(
    ledger: RedisLedger, redis_client: redis.Redis, clock: FakeClock
) -> None:
    ledger.set_on_hand("A", 5)
    ledger.try_reserve("r1", [line("A", 2)], ttl_s=60)
    ledger.commit("storefront", "r1")
    clock.advance(seconds=61)

    assert ledger.expire_due() == 0

    assert counts(redis_client, "A") == (3, 0)
    assert order_state(redis_client, "storefront", "r1") == "committed"
    assert redis_client.zcard(KEYS.expiry) == 0


def test_commit_of_an_expired_hold_takes_its_stock_again_once(
    ledger: RedisLedger, redis_client: redis.Redis, clock: FakeClock, reader: LedgerReader
) -> None:
    ledger.set_on_hand("A", 5)
    ledger.try_reserve("r1", [line("A", 2)], ttl_s=60)
    clock.advance(seconds=60)
    assert ledger.expire_due() == 1
    assert counts(redis_client, "A") == (5, 0)

    outcome = ledger.commit("storefront", "r1")

    assert outcome == OrderOutcome(True, COMMITTED, 0, 0)
    assert counts(redis_client, "A") == (3, 0)  # taken exactly once
    assert order_state(redis_client, "storefront", "r1") == "committed"
    assert redis_client.pttl(KEYS.order("storefront", "r1")) == -1  # open again: no TTL
    # In one atomic call: held again, then committed (the journal tells both).
    newest, before = reader.journal(limit=2)
    assert (before.op, before.reason) == ("reserve", "expired hold taken again at commit")
    assert (newest.op, newest.on_hand_before, newest.on_hand_after) == ("commit", 5, 3)
    assert redis_client.zscore(KEYS.dirty("ozon"), "A") is not None
    # A duplicate commit changes nothing.
    entries = journal_len(redis_client)
    assert ledger.commit("storefront", "r1") == OrderOutcome(False, COMMITTED)
    assert counts(redis_client, "A") == (3, 0)
    assert journal_len(redis_client) == entries


def test_commit_of_an_expired_hold_whose_stock_is_gone_changes_nothing(
    ledger: RedisLedger, redis_client: redis.Redis, clock: FakeClock
) -> None:
    ledger.set_on_hand("A", 5)
    ledger.set_on_hand("B", 5)
    ledger.try_reserve("r1", [line("A", 2), line("B", 1)], ttl_s=60)
    clock.advance(seconds=60)
    assert ledger.expire_due() == 1
    ledger.try_reserve("r2", [line("A", 4)])  # someone else took the units meanwhile
    before = snapshot(redis_client)

    with pytest.raises(ReservationExpiredError) as refused:
        ledger.commit("storefront", "r1")

    assert refused.value.items == [ShortLine("A", 2, 1)]
    assert (refused.value.channel, refused.value.order_id) == ("storefront", "r1")
    assert snapshot(redis_client) == before
    assert order_state(redis_client, "storefront", "r1") == "expired"


def test_expire_due_sweeps_in_batches_and_every_location(
    ledger: RedisLedger, redis_client: redis.Redis, clock: FakeClock
) -> None:
    ledger.set_on_hand("A", 10)
    ledger.set_on_hand("A", 10, location="b")
    for i in range(5):
        ledger.try_reserve(f"r{i}", [line("A", 1)], ttl_s=10)
    ledger.try_reserve("rb", [line("A", 2)], ttl_s=10, location="b")
    clock.advance(seconds=10)

    assert ledger.expire_due(limit=2) == 6

    assert counts(redis_client, "A") == (10, 0)
    assert counts(redis_client, "A", "b") == (10, 0)


# -- reads -----------------------------------------------------------------------------------


def test_reader_stock_of_bundle_follows_its_scarcest_component(
    ledger: RedisLedger, reader: LedgerReader, define_bundles: DefineBundles
) -> None:
    define_bundles({"K": "A:2;B:1"})
    ledger.set_on_hand("A", 7)
    ledger.set_on_hand("B", 5)

    stock = reader.stock("K")
    assert stock.recipe == (("A", 2), ("B", 1))
    assert stock.available == 3

    ledger.record_order("ozon", "o1", [line("A", 3)], RESERVE)
    assert reader.stock("K").available == 2
    ledger.record_order("ozon", "o2", [line("B", 5)], RESERVE)
    assert reader.stock("K").available == 0
    ledger.record_order("ozon", "o3", [line("B", 2)], RESERVE)  # oversold B
    assert reader.stock("K").available == 0
    assert reader.stock("B").available == -2


def test_reader_stock_of_unknown_sku(reader: LedgerReader, ledger: RedisLedger) -> None:
    assert reader.stock("X").known is False
    ledger.set_on_hand("Z", 0)
    assert reader.stock("Z").known is True


# -- dirty markers and journal ---------------------------------------------------------------


def test_changes_mark_sku_and_parent_bundles_dirty_with_first_change_time(
    ledger: RedisLedger,
    redis_client: redis.Redis,
    clock: FakeClock,
    define_bundles: DefineBundles,
) -> None:
    define_bundles({"K": "A:2;B:1", "K2": "A:1"})
    ledger.set_on_hand("A", 10)
    t0 = START_MS
    for channel in ("ozon", "wb"):
        dirty = KEYS.dirty(channel)
        assert redis_client.zscore(dirty, "A") == t0
        assert redis_client.zscore(dirty, "K") == t0
        assert redis_client.zscore(dirty, "K2") == t0
        assert redis_client.zscore(dirty, "B") is None

    t1 = clock.advance(seconds=5)
    ledger.record_order("ozon", "o1", [line("A", 1)], RESERVE)
    ledger.set_on_hand("B", 3)

    for channel in ("ozon", "wb"):
        dirty = KEYS.dirty(channel)
        assert redis_client.zscore(dirty, "A") == t0  # NX: the first change counts
        assert redis_client.zscore(dirty, "B") == t1
        assert redis_client.zscore(dirty, "K") == t0
    assert redis_client.exists(KEYS.dirty("storefront")) == 0


def test_an_event_marks_dirty_from_when_it_was_received_not_when_applied(
    ledger: RedisLedger, redis_client: redis.Redis, clock: FakeClock
) -> None:
    ledger.set_on_hand("A", 10)
    redis_client.delete(KEYS.dirty("ozon"), KEYS.dirty("wb"))
    received = START_MS + 1_000
    clock.advance(seconds=3)  # the worker applies it 2 s after the webhook received it
    ledger.record_order("ozon", "o1", [line("A", 1)], RESERVE, received_ms=received)
    assert redis_client.zscore(KEYS.dirty("wb"), "A") == received
    # A receipt time "in the future" (clock skew between hosts) is not trusted: now is used.
    redis_client.delete(KEYS.dirty("wb"))
    ledger.record_order("ozon", "o2", [line("A", 1)], RESERVE, received_ms=clock() + 60_000)
    assert redis_client.zscore(KEYS.dirty("wb"), "A") == clock()


def test_marketplace_bundle_order_marks_components_and_bundle_dirty(
    make_ledger: LedgerFactory, redis_client: redis.Redis, define_bundles: DefineBundles
) -> None:
    define_bundles({"K": "A:2;B:1"})
    quiet = make_ledger()
    quiet.set_on_hand("A", 10)
    quiet.set_on_hand("B", 10)
    published = make_ledger(channels=["ym"])

    published.record_order("ym", "o1", [line("K", 1), line("X", 1)], RESERVE)

    members = {text(m) for m in redis_client.zrange(KEYS.dirty("ym"), 0, -1)}
    assert members == {"A", "B", "K"}


def test_ledger_without_channels_marks_nothing_dirty(
    make_ledger: LedgerFactory, redis_client: redis.Redis
) -> None:
    quiet = make_ledger()
    quiet.set_on_hand("A", 10)
    quiet.record_order("ozon", "o1", [line("A", 1)], RESERVE)

    assert all_keys(redis_client, "*dirty*") == []


def test_journal_records_each_change_before_and_after(
    ledger: RedisLedger, reader: LedgerReader, clock: FakeClock
) -> None:
    ledger.set_on_hand("A", 10)
    clock.advance(seconds=1)
    ledger.record_order("ozon", "o1", [line("A", 3)], RESERVE)
    clock.advance(seconds=1)
    ledger.commit("ozon", "o1")
    clock.advance(seconds=1)
    ledger.adjust_on_hand("A", -2, reason="damaged", source="cli")

    rows = [
        (
            e.op,
            e.channel,
            e.order_id,
            e.sku,
            e.location,
            e.on_hand_before,
            e.on_hand_after,
            e.reserved_before,
            e.reserved_after,
            e.reason,
            e.ms,
        )
        for e in reversed(reader.journal())
    ]
    assert rows == [
        ("set_on_hand", "api", "", "A", "main", 0, 10, 0, 0, "stock count", START_MS),
        ("reserve", "ozon", "o1", "A", "main", 10, 10, 0, 3, "reserve", START_MS + 1000),
        ("commit", "ozon", "o1", "A", "main", 10, 7, 3, 0, "commit", START_MS + 2000),
        ("adjust_on_hand", "cli", "", "A", "main", 7, 5, 0, 0, "damaged", START_MS + 3000),
    ]
    assert [e.sku for e in reader.journal(sku="A", limit=2)] == ["A", "A"]


def test_journal_of_release_and_unseen_commit(ledger: RedisLedger, reader: LedgerReader) -> None:
    ledger.set_on_hand("A", 10)
    ledger.record_order("ozon", "o1", [line("A", 3)], RESERVE)
    ledger.release("ozon", "o1")
    ledger.record_order("wb", "o2", [line("A", 4)], FINAL)

    release, commit = reader.journal(limit=2)[::-1]
    assert (release.op, release.reason) == ("release", "cancel")
    assert (release.reserved_before, release.reserved_after) == (3, 0)
    assert (commit.op, commit.reason) == ("commit", "final of an unseen order")
    assert (commit.on_hand_before, commit.on_hand_after) == (10, 6)
    assert (commit.reserved_before, commit.reserved_after) == (0, 0)


# -- stock counts ----------------------------------------------------------------------------


def test_set_on_hand_sets_and_reports_change(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    assert ledger.set_on_hand("A", 10) == 1
    entries = journal_len(redis_client)

    assert ledger.set_on_hand("A", 10) == 0
    assert journal_len(redis_client) == entries
    assert ledger.set_on_hand("A", 4, location="b") == 1
    assert counts(redis_client, "A", "b") == (4, 0)
    assert {text(m) for m in redis_client.smembers(KEYS.locations)} == {"main", "b"}


def test_set_on_hand_zero_makes_sku_known(ledger: RedisLedger, redis_client: redis.Redis) -> None:
    assert ledger.set_on_hand("A", 0) == 1
    assert redis_client.hget(KEYS.on_hand, KEYS.stock_field("main", "A")) in (b"0", "0")
    assert ledger.set_on_hand("A", 0) == 0

    assert ledger.record_order("ozon", "o1", [line("A", 1)], RESERVE).unknown_lines == 0


def test_set_on_hand_of_bundle_is_rejected(
    ledger: RedisLedger, redis_client: redis.Redis, define_bundles: DefineBundles
) -> None:
    define_bundles({"K": "A:2;B:1"})
    ledger.set_on_hand("A", 1)
    before = snapshot(redis_client)

    with pytest.raises(StockLevelError) as caught:
        ledger.set_on_hand("K", 5)

    assert caught.value.sku == "K"
    assert snapshot(redis_client) == before


def test_set_on_hand_out_of_range_is_rejected(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 1)
    before = snapshot(redis_client)

    # Checked in Python before any call: ValueError today (StockLevelError would do as well).
    for bad in (-1, MAX_STOCK_LEVEL + 1):
        with pytest.raises((ValueError, StockLevelError)):
            ledger.set_on_hand("A", bad)

    assert snapshot(redis_client) == before


@pytest.mark.parametrize(
    ("delta", "wanted"), [(-6, -1), (MAX_STOCK_LEVEL - 4, MAX_STOCK_LEVEL + 1)]
)
def test_adjust_on_hand_out_of_range_changes_nothing(
    ledger: RedisLedger, redis_client: redis.Redis, delta: int, wanted: int
) -> None:
    ledger.set_on_hand("A", 5)
    before = snapshot(redis_client)

    with pytest.raises(StockLevelError, match=f"would make it {wanted}") as caught:
        ledger.adjust_on_hand("A", delta, reason="count")

    assert caught.value.sku == "A"
    assert snapshot(redis_client) == before


def test_adjust_on_hand_to_the_limits_is_allowed(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 5)
    assert ledger.adjust_on_hand("A", -5, reason="lost") == 1
    assert counts(redis_client, "A") == (0, 0)
    assert ledger.adjust_on_hand("A", MAX_STOCK_LEVEL, reason="received") == 1
    assert counts(redis_client, "A") == (MAX_STOCK_LEVEL, 0)


def test_adjust_on_hand_of_bundle_is_rejected(
    ledger: RedisLedger, redis_client: redis.Redis, define_bundles: DefineBundles
) -> None:
    define_bundles({"K": "A:2;B:1"})
    before = snapshot(redis_client)

    with pytest.raises(StockLevelError):
        ledger.adjust_on_hand("K", 1, reason="received")

    assert snapshot(redis_client) == before


@pytest.mark.parametrize(
    ("delta", "reason"), [(0, "x"), (True, "x"), (MAX_STOCK_LEVEL + 1, "x"), (1, "  ")]
)
def test_adjust_on_hand_rejects_bad_arguments(
    ledger: RedisLedger, redis_client: redis.Redis, delta: int, reason: str
) -> None:
    with pytest.raises(ValueError, match=r"delta|reason"):
        ledger.adjust_on_hand("A", delta, reason=reason)
    assert journal_len(redis_client) == 0


def test_adjust_on_hand_keeps_reserved(ledger: RedisLedger, redis_client: redis.Redis) -> None:
    ledger.set_on_hand("A", 5)
    ledger.record_order("ozon", "o1", [line("A", 4)], RESERVE)

    ledger.adjust_on_hand("A", 3, reason="received")

    assert counts(redis_client, "A") == (8, 4)


def test_import_on_hand_sets_many_counts(ledger: RedisLedger, redis_client: redis.Redis) -> None:
    ledger.set_on_hand("A", 1)
    progress: list[int] = []

    changed = ledger.import_on_hand([("A", 1), ("B", 2), ("C", 0)], progress=progress.append)

    assert changed == 2
    assert progress == [3]
    assert [counts(redis_client, s) for s in "ABC"] == [(1, 0), (2, 0), (0, 0)]


def test_import_on_hand_duplicate_sku_is_rejected_and_nothing_changes(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 1)
    before = snapshot(redis_client)

    with pytest.raises(ValueError, match="twice"):
        ledger.import_on_hand([("A", 5), ("B", 2), ("A", 3)])

    assert snapshot(redis_client) == before


def test_import_on_hand_bad_row_changes_nothing(
    ledger: RedisLedger, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_module, "STOCK_IMPORT_CHUNK", 2)
    before = snapshot(redis_client)

    with pytest.raises(ValueError, match="between"):
        ledger.import_on_hand([("A", 5), ("B", 2), ("C", -1)])

    assert snapshot(redis_client) == before


def test_import_on_hand_chunks_each_apply(
    ledger: RedisLedger, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_module, "STOCK_IMPORT_CHUNK", 2)
    progress: list[int] = []

    assert ledger.import_on_hand([(s, 1) for s in "ABCDE"], progress=progress.append) == 5

    assert progress == [2, 2, 1]
    assert [counts(redis_client, s) for s in "ABCDE"] == [(1, 0)] * 5


def test_import_on_hand_bundle_row_in_later_chunk_changes_nothing(
    ledger: RedisLedger,
    redis_client: redis.Redis,
    define_bundles: DefineBundles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    define_bundles({"K": "A:2;B:1"})
    monkeypatch.setattr(ledger_module, "STOCK_IMPORT_CHUNK", 2)
    before = snapshot(redis_client)

    with pytest.raises(StockLevelError):
        ledger.import_on_hand([("A", 5), ("B", 2), ("K", 3)])

    assert snapshot(redis_client) == before


# -- pipelined batches -----------------------------------------------------------------------


def _batch_events() -> list[OrderEvent]:
    return [
        OrderEvent("ozon", "o1", RESERVE, (line("A", 2),), status="new"),
        OrderEvent("ozon", "o1", RESERVE, (line("A", 2),)),
        OrderEvent("ozon", "o1", COMMIT, ()),
        OrderEvent("wb", "o2", COMMIT, (line("A", 1), line("K", 1))),
        OrderEvent("wb", "o3", RELEASE, ()),
        OrderEvent("wb", "o3", RESERVE, (line("A", 1),)),
        OrderEvent("ym", "o4", RESERVE, (line("B", 9), line("X", 2))),
        OrderEvent("ym", "o5", RESERVE, (line("A", 1),), location="b"),
        OrderEvent("ym", "o5", COMMIT, ()),
        OrderEvent("ym", "o6", FINAL, ()),
        OrderEvent("ym", "o4", RELEASE, ()),
        OrderEvent("ozon", "o1", FINAL, (), status="delivered"),
    ]


def _account_state(client: redis.Redis, account: str) -> dict[str, object]:
    keys = AccountKeys(account)
    out: dict[str, object] = {}
    for raw_key in all_keys(client, f"{keys.base}:*"):
        key = text(raw_key)
        assert key is not None
        name = key.removeprefix(keys.base)
        kind = text(client.type(key))
        if kind == "hash":
            out[name] = {text(k): text(v) for k, v in client.hgetall(key).items()}
        elif kind == "stream":
            # As a multiset: a batch retries wrong-location events after the rest of the batch.
            out[name] = sorted(
                sorted((text(k) or "", text(v) or "") for k, v in fields.items())
                for _, fields in client.xrange(key)
            )
        elif kind == "zset":
            out[name] = client.zrange(key, 0, -1, withscores=True)
        else:
            out[name] = sorted(client.smembers(key))
    return out


def test_record_orders_pipelined_equals_one_by_one(
    make_ledger: LedgerFactory, redis_client: redis.Redis
) -> None:
    outcomes = {}
    for account, batched in (("single", False), ("batch", True)):
        write_bundles(redis_client, {"K": "A:2;B:1"}, account=account)
        led = make_ledger(channels=("ozon",), account=account)
        led.set_on_hand("A", 5)
        led.set_on_hand("B", 5)
        led.set_on_hand("A", 5, location="b")
        if batched:
            outcomes[account] = led.record_orders(_batch_events())
        else:
            outcomes[account] = [
                led.record_order(
                    e.channel, e.order_id, e.lines, e.action, status=e.status, location=e.location
                )
                for e in _batch_events()
            ]

    assert outcomes["batch"] == outcomes["single"]
    assert [o.state for o in outcomes["batch"]] == [
        RESERVED,
        RESERVED,
        COMMITTED,
        COMMITTED,
        RELEASED,
        RELEASED,
        RESERVED,
        RESERVED,
        COMMITTED,
        None,
        RELEASED,
        FINAL_STATE,
    ]
    assert _account_state(redis_client, "batch") == _account_state(redis_client, "single")


def test_record_orders_keeps_event_order_of_a_moved_order(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 5, location="b")
    ledger.record_order("ym", "o5", [line("A", 1)], RESERVE, location="b")

    outcomes = ledger.record_orders(
        [OrderEvent("ym", "o5", COMMIT), OrderEvent("ym", "o5", RELEASE, location="b")]
    )

    # One by one: the commit applies, the late release is a no-op.
    assert outcomes == [OrderOutcome(True, COMMITTED, 0, 0), OrderOutcome(False, COMMITTED)]
    assert counts(redis_client, "A", "b") == (4, 0)


def test_record_orders_each_fails_one_event_alone(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    ledger.set_on_hand("A", 5)
    redis_client.set(KEYS.order("ozon", "bad"), "not a hash")  # WRONGTYPE for its script

    results = ledger.record_orders_each(
        [
            OrderEvent("ozon", "o1", RESERVE, (line("A", 2),)),
            OrderEvent("ozon", "bad", RESERVE, (line("A", 1),)),
            OrderEvent("ozon", "o2", RESERVE, (line("A", 4),)),
            OrderEvent("ozon", "two\nlines", RESERVE, (line("A", 1),)),  # refused unsent
            OrderEvent("ozon", "o3", IGNORE),
        ]
    )

    good, refused, oversold, invalid, ignored = results
    assert good == OrderOutcome(True, RESERVED, 0, 0)
    assert isinstance(refused, LedgerScriptError)
    assert "WRONGTYPE" in str(refused)
    assert isinstance(refused.__cause__, redis.ResponseError)
    assert oversold == OrderOutcome(True, RESERVED, 1, 0)
    assert isinstance(invalid, ValueError)
    assert ignored == OrderOutcome(False, None)
    assert counts(redis_client, "A") == (5, 6)


def test_a_refused_script_is_a_script_error_and_no_server_is_unavailable(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    redis_client.set(KEYS.order("ozon", "bad"), "not a hash")
    with pytest.raises(LedgerScriptError, match="WRONGTYPE"):
        ledger.record_order("ozon", "bad", [line("A", 1)], RESERVE)
    with pytest.raises(LedgerScriptError, match="WRONGTYPE"):
        ledger.record_orders([OrderEvent("ozon", "bad", RESERVE, (line("A", 1),))])
    nowhere = redis.Redis(port=1, socket_connect_timeout=0.2, retry=None)
    with pytest.raises(LedgerUnavailableError) as unavailable:
        RedisLedger(nowhere).record_orders_each([OrderEvent("ozon", "o", RESERVE, (line("A", 1),))])
    assert not isinstance(unavailable.value, LedgerScriptError)


# -- retention -------------------------------------------------------------------------------


def test_finished_orders_expire_and_open_ones_do_not(
    ledger: RedisLedger, redis_client: redis.Redis, clock: FakeClock
) -> None:
    ledger.set_on_hand("A", 100)
    ledger.record_order("ozon", "open", [line("A", 1)], RESERVE)
    ledger.record_order("ozon", "shipped", [line("A", 1)], RESERVE)
    ledger.commit("ozon", "shipped")
    ledger.record_order("ozon", "done", [line("A", 1)], RESERVE)
    ledger.record_order("ozon", "done", [], FINAL)
    ledger.record_order("ozon", "cancelled", [line("A", 1)], RESERVE)
    ledger.release("ozon", "cancelled")
    ledger.release("ozon", "tombstone")
    ledger.record_order("ozon", "returned", [line("A", 1)], CAS)
    ledger.try_reserve("hold", [line("A", 1)], ttl_s=1)
    clock.advance(seconds=1)
    ledger.expire_due()

    for order_id in ("open", "shipped"):
        assert redis_client.pttl(KEYS.order("ozon", order_id)) == -1
    for channel, order_id in [
        ("ozon", "done"),
        ("ozon", "cancelled"),
        ("ozon", "tombstone"),
        ("ozon", "returned"),
        ("storefront", "hold"),
    ]:
        assert 0 < redis_client.pttl(KEYS.order(channel, order_id)) <= FINISHED_ORDER_RETENTION_MS


def test_retention_is_configurable(make_ledger: LedgerFactory, redis_client: redis.Redis) -> None:
    led = make_ledger(retention_ms=5_000)

    led.release("ozon", "o1")

    assert 0 < redis_client.pttl(KEYS.order("ozon", "o1")) <= 5_000


# -- clients ---------------------------------------------------------------------------------


def test_ledger_and_reader_work_with_decoded_responses(
    redis_client: redis.Redis, clock: FakeClock, define_bundles: DefineBundles
) -> None:
    define_bundles({"K": "A:2;B:1"})
    if isinstance(redis_client, RedisCluster):
        client = RedisCluster(startup_nodes=redis_client.startup_nodes, decode_responses=True)
    elif "server" in (
        pool_kwargs := redis_client.connection_pool.connection_kwargs
    ):  # fakeredis: share the same fake server
        import fakeredis

        client = fakeredis.FakeRedis(server=pool_kwargs["server"], decode_responses=True)
    else:
        client = redis.Redis(
            host=pool_kwargs["host"], port=pool_kwargs["port"], decode_responses=True
        )
    try:
        led = RedisLedger(client, channels=["ozon"], clock=clock)
        reader = LedgerReader(client)
        led.set_on_hand("A", 4)
        led.set_on_hand("B", 4)
        led.try_reserve("r1", [line("K", 1)], ttl_s=5)
        clock.advance(seconds=5)
        assert led.expire_due() == 1
        assert reader.stock("K").available == 2
        assert reader.locations() == ["main"]
        assert [e.op for e in reader.journal(limit=1)] == ["release"]
    finally:
        client.close()


@pytest.mark.parametrize(
    ("events", "on_hand", "reserved"),
    [
        ([RESERVE], 0, 2),  # still held: the resolved line is reserved too
        ([RESERVE, COMMIT], -2, 0),  # shipped: the goods left, on hand drops
        ([RESERVE, RELEASE], 0, 0),  # cancelled: nothing to move
    ],
    ids=["reserved", "committed", "released"],
)
def test_resolving_unknown_lines_moves_stock_as_the_order_state_requires(
    ledger: RedisLedger, redis_client: redis.Redis, events, on_hand, reserved
) -> None:
    for action in events:
        ledger.record_order("ozon", "o1", [line("ozon_sku:77", 2)], action)
    # A cancelled order's parked lines leave the list that waits for a person (issue 12, item 8).
    assert redis_client.hexists(KEYS.unknown_skus, "ozon|o1") == (RELEASE not in events)
    redis_client.hset(KEYS.catalog, "X", "{}")  # X is known now (the catalog maps 77 to it)
    assert ledger.resolve_unknown("ozon", "o1", {"ozon_sku:77": "NOPE"}).applied is False
    outcome = ledger.resolve_unknown("ozon", "o1", {"ozon_sku:77": "X"})
    assert outcome.applied
    assert outcome.unknown_lines == 0
    levels = (
        int(redis_client.hget(KEYS.on_hand, "main|X") or 0),
        int(redis_client.hget(KEYS.reserved, "main|X") or 0),
    )
    assert levels == (on_hand, reserved)
    assert redis_client.hexists(KEYS.unknown_skus, "ozon|o1") == 0
    assert ledger.resolve_unknown("ozon", "o1", {"ozon_sku:77": "X"}).applied is False


def test_an_oversell_found_when_resolving_unknown_lines_is_recorded_like_any_other(
    ledger: RedisLedger, redis_client: redis.Redis
) -> None:
    """The same record as an order's own oversell: the oversold line, the counters, and the
    audit journal's ``oversold`` entry (the resolve path left the journal out)."""
    ledger.record_order("ozon", "o1", [line("ozon_sku:77", 2)], OrderAction.RESERVE)
    redis_client.hset(KEYS.catalog, "X", "{}")  # known, nothing on hand
    outcome = ledger.resolve_unknown("ozon", "o1", {"ozon_sku:77": "X"})
    assert outcome.oversold_units == 2
    assert redis_client.hexists(KEYS.oversold, "ozon|o1|X")
    assert redis_client.hget(KEYS.counters, "oversold_units") in ("2", b"2")
    entries = LedgerReader(redis_client).journal(sku="X")
    assert [e.op for e in entries if e.order_id == "o1"][:2] == ["oversold", "reserve"]
