"""Stateful property test: RedisLedger against a pure in-memory model of the ledger rules.

Hypothesis drives random marketplace events (every action, random lines, duplicates, events of
one order in any order), storefront holds with and without TTL, their commits and releases,
clock moves with ``expire_due``, and stock counts. After every step the ledger must equal the
model, and the audit journal must explain every counter:

* reserved is never negative;
* on_hand, reserved, order states and the oversold / unknown-SKU counters equal the model;
* replaying any past event that the ledger answered is a no-op;
* on_hand moves only through commit-type events and stock counts (journal ops);
* the journal chains (each entry starts where the previous one of its SKU ended) and the sum
  of its deltas is the counters; every changed SKU and its bundles are marked dirty.

The machine runs on fakeredis and on the real server through the ``redis_client`` fixture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import hypothesis.strategies as st
import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from inventory_engine.constants import MAX_STOCK_LEVEL
from inventory_engine.domain.models import OrderAction, OrderLine, merge_lines
from inventory_engine.errors import (
    InsufficientStockError,
    ReservationConflictError,
    ReservationExpiredError,
    ReservationNotFoundError,
    ShortLine,
    StockLevelError,
)
from inventory_engine.ledger import OrderEvent, RedisLedger
from inventory_engine.ledger.keys import AccountKeys
from tests.conftest import FakeClock, all_keys, write_bundles

KEYS = AccountKeys()
BUNDLES: dict[str, tuple[tuple[str, int], ...]] = {"K": (("A", 2), ("B", 1))}
PARENTS = {"A": {"K"}, "B": {"K"}}
STOCK_SKUS = ("A", "B", "C")  # C is unknown until a stock count names it
LINE_SKUS = ("A", "B", "K", "C", "X")  # X is never known
MARKETPLACES = ("ozon", "wb", "ym")
PUBLISHED = ("ozon", "wb")
ORDER_IDS = tuple(f"o{i}" for i in range(6))
HOLD_IDS = tuple(f"r{i}" for i in range(4))
EVENT_IDS = ("e0", "e1", "e2")
STOREFRONT = "storefront"

MARKETPLACE_ACTIONS = (
    OrderAction.RESERVE,
    OrderAction.HOLD,
    OrderAction.COMMIT,
    OrderAction.RELEASE,
    OrderAction.FINAL,
    OrderAction.CANCEL_AFTER_SHIP,
)
FIRST_SIGHT_STATE = {
    "reserve": "reserved",
    "hold": "reserved",
    "commit": "committed",
    "final": "final",
    "cancel_after_ship": "cancelled_after_ship",
}
ON_HAND_OPS = {"commit", "set_on_hand", "adjust_on_hand"}
LIFECYCLES = (
    (OrderAction.RESERVE, OrderAction.COMMIT, OrderAction.FINAL),
    (OrderAction.RESERVE, OrderAction.COMMIT, OrderAction.CANCEL_AFTER_SHIP),
    (OrderAction.RESERVE, OrderAction.RELEASE),
    (OrderAction.RESERVE, OrderAction.FINAL),
    (OrderAction.HOLD, OrderAction.COMMIT),
)

Lines = tuple[tuple[str, int], ...]

lines_strategy = st.lists(
    st.tuples(st.sampled_from(LINE_SKUS), st.integers(1, 4)), min_size=1, max_size=3
)


def to_order_lines(lines: Sequence[tuple[str, int]]) -> list[OrderLine]:
    return [OrderLine(sku=sku, quantity=qty) for sku, qty in lines]


def merged(lines: Sequence[tuple[str, int]]) -> Lines:
    """The request lines as the ledger keys them: merged per SKU, first-seen order."""
    if not lines:
        return ()
    return tuple((line.sku, line.quantity) for line in merge_lines(to_order_lines(lines)))


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# -- the model -------------------------------------------------------------------------------


@dataclass
class ModelOrder:
    state: str
    lines: list[list[Any]]  # [[sku, remaining qty]] of known SKUs, request order
    req: Lines
    exp: int | None = None
    events: set[str] = field(default_factory=set)


@dataclass
class Model:
    """The ledger rules, written independently of the Lua scripts (one location)."""

    on_hand: dict[str, int] = field(default_factory=dict)
    reserved: dict[str, int] = field(default_factory=dict)
    orders: dict[tuple[str, str], ModelOrder] = field(default_factory=dict)
    oversold_orders: int = 0
    oversold_units: int = 0
    unknown_sku_orders: int = 0

    def known(self, sku: str) -> bool:
        return sku in self.on_hand or sku in BUNDLES

    @staticmethod
    def demand(lines: Sequence[Sequence[Any]]) -> dict[str, int]:
        totals: dict[str, int] = {}
        for sku, qty in lines:
            for part, per in BUNDLES.get(sku, ((sku, 1),)):
                totals[part] = totals.get(part, 0) + qty * per
        return totals

    def available(self, sku: str) -> int:
        return self.on_hand.get(sku, 0) - self.reserved.get(sku, 0)

    def move(self, lines: Sequence[Sequence[Any]], on_hand_sign: int, reserved_sign: int) -> None:
        for sku, qty in self.demand(lines).items():
            if on_hand_sign:
                self.on_hand[sku] = self.on_hand.get(sku, 0) + on_hand_sign * qty
            if reserved_sign:
                self.reserved[sku] = self.reserved.get(sku, 0) + reserved_sign * qty

    def oversold(self, lines: Sequence[Sequence[Any]]) -> int:
        units = sum(
            min(qty, -self.available(sku))
            for sku, qty in self.demand(lines).items()
            if self.available(sku) < 0
        )
        if units:
            self.oversold_orders += 1
            self.oversold_units += units
        return units

    def apply(
        self, channel: str, order_id: str, action: str, req: Lines, event_id: str = ""
    ) -> tuple[bool, str | None, int, int]:
        """One order event: (applied, state, oversold units, unknown lines)."""
        if action == "ignore":
            return (False, None, 0, 0)
        order = self.orders.get((channel, order_id))
        if order is None:
            known = [[sku, qty] for sku, qty in req if self.known(sku)]
            unknown = [sku for sku, _ in req if not self.known(sku)]
            if event_id:
                return (False, None, 0, 0)
            if action == "release":
                self.orders[(channel, order_id)] = ModelOrder("released", known, req)
                return (True, "released", 0, 0)
            if not req:
                return (False, None, 0, 0)
            state = FIRST_SIGHT_STATE[action]
            self.orders[(channel, order_id)] = ModelOrder(state, known, req)
            if unknown:
                self.unknown_sku_orders += 1
            if state == "reserved":
                self.move(known, 0, +1)
            else:
                self.move(known, -1, 0)
            return (True, state, self.oversold(known), len(unknown))
        if action == "release" and event_id:
            if order.state != "reserved" or event_id in order.events:
                return (False, order.state, 0, 0)
            order.events.add(event_id)
            asked = dict(req)
            freed = []
            for stored in order.lines:
                qty = min(asked.get(stored[0], 0), stored[1])
                if qty > 0:
                    freed.append([stored[0], qty])
                    stored[1] -= qty
            self.move(freed, 0, -1)
            if sum(qty for _, qty in order.lines) == 0:
                order.state = "released"
            return (True, order.state, 0, 0)
        if order.state == "reserved":
            if action in ("commit", "final", "cancel_after_ship"):
                self.move(order.lines, -1, -1)
                order.state = FIRST_SIGHT_STATE[action]
                return (True, order.state, 0, 0)
            if action == "release":
                self.move(order.lines, 0, -1)
                order.state = "released"
                return (True, order.state, 0, 0)
        elif order.state == "committed" and action in ("final", "cancel_after_ship"):
            order.state = FIRST_SIGHT_STATE[action]
            return (True, order.state, 0, 0)
        return (False, order.state, 0, 0)

    def try_reserve(
        self, reservation_id: str, req: Lines, expires: int | None
    ) -> tuple[bool, str, int | None]:
        """(created, state, expiry); raises the ledger's errors."""
        order = self.orders.get((STOREFRONT, reservation_id))
        if order is not None:
            if order.req != req:
                raise ReservationConflictError(reservation_id, order.state)
            return (False, order.state, order.exp)
        known = [[sku, qty] for sku, qty in req if self.known(sku)]
        short = [ShortLine(sku, qty, 0) for sku, qty in req if not self.known(sku)]
        short += self.short(known)
        if short:
            raise InsufficientStockError(short)
        self.orders[(STOREFRONT, reservation_id)] = ModelOrder("reserved", known, req, expires)
        self.move(known, 0, +1)
        return (True, "reserved", expires)

    def short(self, known: Sequence[Sequence[Any]]) -> list[ShortLine]:
        """The lines whose components cannot all be had now (demand of all lines together)."""
        totals = self.demand(known)
        short = []
        for sku, qty in known:
            parts = BUNDLES.get(sku, ((sku, 1),))
            if any(totals[part] > self.available(part) for part, _ in parts):
                can = min(max(self.available(part), 0) // per for part, per in parts)
                short.append(ShortLine(sku, qty, can))
        return short

    def commit_hold(self, reservation_id: str) -> tuple[bool, str | None, int, int]:
        """``RedisLedger.commit`` of a storefront hold: an expired one is held again and
        committed if all its stock is there, else ReservationExpiredError and nothing moves."""
        order = self.orders.get((STOREFRONT, reservation_id))
        if order is None or order.state != "expired":
            return self.apply(STOREFRONT, reservation_id, "commit", ())
        lines = [line for line in order.lines if line[1] > 0]
        short = self.short(lines)
        if short:
            raise ReservationExpiredError(STOREFRONT, reservation_id, short)
        self.move(lines, 0, +1)
        self.move(lines, -1, -1)
        order.state = "committed"
        return (True, "committed", 0, 0)

    def expire_due(self, now_ms: int) -> int:
        expired = 0
        for order in self.orders.values():
            if order.state == "reserved" and order.exp is not None and order.exp <= now_ms:
                self.move(order.lines, 0, -1)
                order.state = "expired"
                expired += 1
        return expired

    def change_on_hand(self, sku: str, value: int, *, add: bool) -> bool:
        """A stock count or adjustment; raises StockLevelError. True if a level changed."""
        if sku in BUNDLES:
            raise StockLevelError(sku, "is a bundle")
        now = self.on_hand.get(sku, 0)
        wanted = now + value if add else value
        # Receiving goods may leave a negative count (after an oversell shipped) below zero;
        # a removal or a count may not go there.
        if wanted > MAX_STOCK_LEVEL or (wanted < 0 and (not add or value < 0)):
            raise StockLevelError(sku, "out of range")
        changed = sku not in self.on_hand or wanted != now
        self.on_hand[sku] = wanted
        return changed

    def copy_counters(self) -> tuple[Any, ...]:
        return (
            dict(self.on_hand),
            {k: v for k, v in self.reserved.items() if v},
            {key: order.state for key, order in self.orders.items()},
            self.oversold_orders,
            self.oversold_units,
            self.unknown_sku_orders,
        )


# -- the machine -----------------------------------------------------------------------------


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self, client: redis.Redis) -> None:
        super().__init__()
        self.client = client
        client.flushall()
        write_bundles(
            client, {sku: f"{a}:{x};{b}:{y}" for sku, ((a, x), (b, y)) in BUNDLES.items()}
        )
        self.clock = FakeClock()
        self.ledger = RedisLedger(client, channels=PUBLISHED, clock=self.clock)
        self.model = Model()
        self.history: list[tuple[Any, ...]] = []
        self.lifecycles = 0
        # What the journal read so far adds up to.
        self.last_entry = "-"
        self.journal_on_hand: dict[str, int] = {}
        self.journal_reserved: dict[str, int] = {}
        self.journal_skus: set[str] = set()

    # -- calls through ledger and model, compared ----------------------------------------------

    def event(
        self,
        channel: str,
        order_id: str,
        action: OrderAction,
        lines: Sequence[tuple[str, int]],
        event_id: str = "",
    ) -> bool:
        """Send one order event to both; True if the ledger answered with a state."""
        req = merged(lines)
        expected = self.model.apply(channel, order_id, action.value, req, event_id)
        if action is OrderAction.RELEASE:
            outcome = self.ledger.release(
                channel, order_id, lines=to_order_lines(lines), event_id=event_id or None
            )
        else:
            outcome = self.ledger.record_order(channel, order_id, to_order_lines(lines), action)
        got = (
            outcome.applied,
            outcome.state and outcome.state.value,
            outcome.oversold_units,
            outcome.unknown_lines,
        )
        assert got == expected
        if outcome.state is not None:
            self.history.append(("event", channel, order_id, action, tuple(lines), event_id))
        return outcome.state is not None

    def hold(self, reservation_id: str, lines: Sequence[tuple[str, int]], ttl: int | None) -> None:
        req = merged(lines)
        expires = None if ttl is None else self.clock.now_ms + ttl * 1000
        try:
            expected: Any = self.model.try_reserve(reservation_id, req, expires)
        except (InsufficientStockError, ReservationConflictError) as exc:
            expected = exc
        got: Any
        try:
            got = self.ledger.try_reserve(reservation_id, to_order_lines(lines), ttl_s=ttl)
        except (InsufficientStockError, ReservationConflictError) as exc:
            got = exc
        if isinstance(expected, InsufficientStockError):
            assert isinstance(got, InsufficientStockError)
            assert sorted(got.items, key=lambda i: i.sku) == sorted(
                expected.items, key=lambda i: i.sku
            )
            return
        if isinstance(expected, ReservationConflictError):
            assert isinstance(got, ReservationConflictError)
            assert got.state == expected.state
            return
        assert (got.created, got.state.value, got.expires_at_ms) == expected
        self.history.append(("hold", reservation_id, tuple(lines), ttl))

    def storefront_commit(self, reservation_id: str) -> None:
        expected: Any
        try:
            expected = self.model.commit_hold(reservation_id)
        except ReservationExpiredError as exc:
            expected = exc
        if isinstance(expected, ReservationExpiredError):
            with pytest.raises(ReservationExpiredError) as got:
                self.ledger.commit(STOREFRONT, reservation_id)
            assert sorted(got.value.items, key=lambda i: i.sku) == sorted(
                expected.items, key=lambda i: i.sku
            )
            return
        if expected[1] is None:
            with pytest.raises(ReservationNotFoundError):
                self.ledger.commit(STOREFRONT, reservation_id)
            return
        outcome = self.ledger.commit(STOREFRONT, reservation_id)
        assert (outcome.applied, outcome.state and outcome.state.value) == expected[:2]
        self.history.append(("commit", reservation_id))

    def replay_one(self, past: tuple[Any, ...]) -> None:
        kind, *args = past
        if kind == "event":
            self.event(*args)
        elif kind == "hold":
            self.hold(*args)
        else:
            self.storefront_commit(*args)

    # -- rules ---------------------------------------------------------------------------------

    @initialize(a=st.integers(0, 12), b=st.integers(0, 12))
    def stock_up(self, a: int, b: int) -> None:
        for sku, qty in (("A", a), ("B", b)):
            self.model.change_on_hand(sku, qty, add=False)
            assert self.ledger.set_on_hand(sku, qty) == 1

    @rule(
        channel=st.sampled_from(MARKETPLACES),
        order_id=st.sampled_from(ORDER_IDS),
        action=st.sampled_from((*MARKETPLACE_ACTIONS, OrderAction.IGNORE)),
        lines=st.one_of(st.just([]), lines_strategy),
    )
    def marketplace_event(
        self, channel: str, order_id: str, action: OrderAction, lines: list[tuple[str, int]]
    ) -> None:
        self.event(channel, order_id, action, lines)

    @rule(
        channel=st.sampled_from(MARKETPLACES),
        order_id=st.sampled_from(ORDER_IDS),
        event_id=st.sampled_from(EVENT_IDS),
        lines=lines_strategy,
    )
    def marketplace_partial_release(
        self, channel: str, order_id: str, event_id: str, lines: list[tuple[str, int]]
    ) -> None:
        self.event(channel, order_id, OrderAction.RELEASE, lines, event_id)

    @precondition(lambda self: bool(self.model.orders))
    @rule(data=st.data(), action=st.sampled_from(MARKETPLACE_ACTIONS))
    def next_event_of_a_known_order(self, data: st.DataObject, action: OrderAction) -> None:
        """Any action on an order the ledger already holds (the random rules rarely hit one)."""
        channel, order_id = data.draw(st.sampled_from(sorted(self.model.orders)))
        lines = list(self.model.orders[(channel, order_id)].req)
        self.event(channel, order_id, action, lines)

    @precondition(lambda self: any(o.state == "reserved" for o in self.model.orders.values()))
    @rule(data=st.data(), event_id=st.sampled_from(EVENT_IDS))
    def cancel_part_of_an_open_order(self, data: st.DataObject, event_id: str) -> None:
        """A partial cancel of some lines of a reserved order (often all of one line)."""
        open_orders = sorted(k for k, o in self.model.orders.items() if o.state == "reserved")
        channel, order_id = data.draw(st.sampled_from(open_orders))
        req = self.model.orders[(channel, order_id)].req
        picked = data.draw(st.lists(st.sampled_from(req), min_size=1, max_size=len(req)))
        lines = [(sku, data.draw(st.integers(1, qty))) for sku, qty in picked]
        self.event(channel, order_id, OrderAction.RELEASE, lines, event_id)

    @rule(
        events=st.lists(
            st.tuples(
                st.sampled_from(MARKETPLACES),
                st.sampled_from(ORDER_IDS),
                st.sampled_from(MARKETPLACE_ACTIONS),
                st.one_of(st.just([]), lines_strategy),
            ),
            min_size=1,
            max_size=5,
        )
    )
    def marketplace_batch(self, events: list[tuple[str, str, OrderAction, list[Any]]]) -> None:
        # IGNORE is left out: record_orders does not filter it (see tests/unit/test_ledger.py).
        expected = [
            self.model.apply(channel, order_id, action.value, merged(lines))
            for channel, order_id, action, lines in events
        ]
        outcomes = self.ledger.record_orders(
            [
                OrderEvent(channel, order_id, action, tuple(to_order_lines(lines)))
                for channel, order_id, action, lines in events
            ]
        )
        got = [
            (o.applied, o.state and o.state.value, o.oversold_units, o.unknown_lines)
            for o in outcomes
        ]
        assert got == expected
        for (channel, order_id, action, lines), outcome in zip(events, outcomes, strict=True):
            if outcome.state is not None:
                self.history.append(("event", channel, order_id, action, tuple(lines), ""))

    @rule(
        channel=st.sampled_from(MARKETPLACES),
        lifecycle=st.sampled_from(LIFECYCLES).flatmap(st.permutations),
        lines=lines_strategy,
    )
    def whole_order_in_any_order(
        self, channel: str, lifecycle: list[OrderAction], lines: list[tuple[str, int]]
    ) -> None:
        """Every event of a fresh order, shuffled: the net effect is the in-order one."""
        self.lifecycles += 1
        order_id = f"life{self.lifecycles}"
        known = [[sku, qty] for sku, qty in merged(lines) if self.model.known(sku)]
        before = {sku: self.counters(sku) for sku in STOCK_SKUS}
        for action in lifecycle:
            self.event(channel, order_id, action, lines)
        if OrderAction.RELEASE in lifecycle:
            net: dict[str, int] = {}
        else:
            net = Model.demand(known)
        for sku in STOCK_SKUS:
            on_hand, reserved = before[sku]
            assert self.counters(sku) == (on_hand - net.get(sku, 0), reserved)

    @rule(
        reservation_id=st.sampled_from(HOLD_IDS),
        lines=lines_strategy,
        ttl=st.one_of(st.none(), st.integers(1, 60)),
    )
    def storefront_hold(
        self, reservation_id: str, lines: list[tuple[str, int]], ttl: int | None
    ) -> None:
        self.hold(reservation_id, lines, ttl)

    @rule(reservation_id=st.sampled_from(HOLD_IDS))
    def storefront_checkout(self, reservation_id: str) -> None:
        self.storefront_commit(reservation_id)

    @rule(
        reservation_id=st.sampled_from(HOLD_IDS),
        partial=st.one_of(st.none(), st.tuples(st.sampled_from(EVENT_IDS), lines_strategy)),
    )
    def storefront_cancel(
        self, reservation_id: str, partial: tuple[str, list[tuple[str, int]]] | None
    ) -> None:
        if partial is None:
            self.event(STOREFRONT, reservation_id, OrderAction.RELEASE, [])
        else:
            event_id, lines = partial
            self.event(STOREFRONT, reservation_id, OrderAction.RELEASE, lines, event_id)

    @rule(seconds=st.integers(0, 90))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds=seconds)
        expected = self.model.expire_due(self.clock.now_ms)
        assert self.ledger.expire_due(limit=2) == expected

    @rule(sku=st.sampled_from((*STOCK_SKUS, "K")), quantity=st.integers(0, 15))
    def stock_count(self, sku: str, quantity: int) -> None:
        try:
            expected: Any = self.model.change_on_hand(sku, quantity, add=False)
        except StockLevelError as exc:
            expected = exc
        if isinstance(expected, StockLevelError):
            with pytest.raises(StockLevelError):
                self.ledger.set_on_hand(sku, quantity)
        else:
            assert self.ledger.set_on_hand(sku, quantity) == int(expected)

    @rule(
        sku=st.sampled_from((*STOCK_SKUS, "K")),
        delta=st.integers(-8, 8).filter(bool),
    )
    def stock_adjustment(self, sku: str, delta: int) -> None:
        try:
            expected: Any = self.model.change_on_hand(sku, delta, add=True)
        except StockLevelError as exc:
            expected = exc
        if isinstance(expected, StockLevelError):
            with pytest.raises(StockLevelError):
                self.ledger.adjust_on_hand(sku, delta, reason="count")
        else:
            assert self.ledger.adjust_on_hand(sku, delta, reason="count") == 1

    @precondition(lambda self: bool(self.history))
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        """A duplicate of any event the ledger answered changes nothing."""
        past = data.draw(st.sampled_from(self.history))
        before = self.model.copy_counters()
        entries = self.client.xlen(KEYS.journal)
        counters = self.client.hgetall(KEYS.counters)
        self.replay_one(past)
        assert self.model.copy_counters() == before
        assert self.client.xlen(KEYS.journal) == entries
        assert self.client.hgetall(KEYS.counters) == counters

    # -- invariants ----------------------------------------------------------------------------

    def counters(self, sku: str) -> tuple[int, int]:
        on_hand = self.client.hget(KEYS.on_hand, KEYS.stock_field("main", sku))
        reserved = self.client.hget(KEYS.reserved, KEYS.stock_field("main", sku))
        return int(on_hand or 0), int(reserved or 0)

    @invariant()
    def counters_equal_the_model(self) -> None:
        on_hand = {
            text(k).removeprefix("main|"): int(v)
            for k, v in self.client.hgetall(KEYS.on_hand).items()
        }
        reserved = {
            text(k).removeprefix("main|"): int(v)
            for k, v in self.client.hgetall(KEYS.reserved).items()
        }
        assert all(value >= 0 for value in reserved.values()), reserved
        assert on_hand == self.model.on_hand
        assert {k: v for k, v in reserved.items() if v} == {
            k: v for k, v in self.model.reserved.items() if v
        }
        raw = {text(k): int(v) for k, v in self.client.hgetall(KEYS.counters).items()}
        assert raw.get("oversold_orders", 0) == self.model.oversold_orders
        assert raw.get("oversold_units", 0) == self.model.oversold_units
        assert raw.get("unknown_sku_orders", 0) == self.model.unknown_sku_orders

    @invariant()
    def order_states_equal_the_model(self) -> None:
        expected = {
            KEYS.order(channel, order_id): order.state
            for (channel, order_id), order in self.model.orders.items()
        }
        names = sorted(expected)
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.hget(name, "state")
        states = dict(zip(names, (text(s) for s in pipe.execute()), strict=True))
        assert states == expected
        stored = {text(k) for k in all_keys(self.client, KEYS.order_prefix + "*")}
        assert stored == set(expected)

    def read_journal(self) -> None:
        """Check the journal entries added since the last call and add them to the totals."""
        minimum = "-" if self.last_entry == "-" else "(" + self.last_entry
        for entry_id, raw in self.client.xrange(KEYS.journal, min=minimum):
            self.last_entry = text(entry_id)
            e = {text(k): text(v) for k, v in raw.items()}
            sku, op = e["sku"], e["op"]
            oh0, oh1 = int(e["on_hand_before"]), int(e["on_hand_after"])
            rs0, rs1 = int(e["reserved_before"]), int(e["reserved_after"])
            assert int(e["ms"]) <= self.clock.now_ms
            # Each entry starts where the previous one of the same SKU ended.
            assert oh0 == self.journal_on_hand.get(sku, 0), e
            assert rs0 == self.journal_reserved.get(sku, 0), e
            self.journal_on_hand[sku], self.journal_reserved[sku] = oh1, rs1
            if op not in ON_HAND_OPS:
                assert oh0 == oh1, e
            # release and commit allow a zero change: after a partial cancel took all of a
            # line, later moves of the order still journal that line with 0 units (reported).
            if op == "reserve":
                assert rs1 > rs0, e
            elif op == "release":
                assert rs1 <= rs0, e
            elif op == "commit":
                assert oh1 <= oh0, e
                assert rs1 <= rs0, e
            elif op == "oversold":
                assert (oh0, rs0) == (oh1, rs1), e
                assert oh1 - rs1 < 0, e
            else:
                assert op in ("set_on_hand", "adjust_on_hand"), e
                assert rs0 == rs1, e
            if op != "oversold":
                self.journal_skus.add(sku)

    @invariant()
    def journal_explains_the_counters(self) -> None:
        self.read_journal()
        for sku in STOCK_SKUS:
            assert self.counters(sku) == (
                self.journal_on_hand.get(sku, 0),
                self.journal_reserved.get(sku, 0),
            )

    @invariant()
    def changed_skus_and_their_bundles_are_dirty(self) -> None:
        self.read_journal()
        expected = set(self.journal_skus)
        for sku in self.journal_skus:
            expected |= PARENTS.get(sku, set())
        for channel in PUBLISHED:
            members = self.client.zrange(KEYS.dirty(channel), 0, -1, withscores=True)
            assert {text(m) for m, _ in members} == expected
            assert all(score <= self.clock.now_ms for _, score in members)


@pytest.mark.slow
def test_ledger_matches_model(redis_client: redis.Redis) -> None:
    run_state_machine_as_test(
        lambda: LedgerMachine(redis_client),
        settings=settings(
            max_examples=100,
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
