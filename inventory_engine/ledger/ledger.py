"""RedisLedger: every change to stock counters, each one a single atomic, idempotent Lua call.

Python here only validates, shapes arguments and decodes replies; the rules that must hold under
concurrency live in the scripts (``lua/``), which Redis runs one at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

import redis

from inventory_engine.constants import (
    DEFAULT_ACCOUNT,
    DEFAULT_LOCATION,
    EXPIRE_SWEEP_BATCH,
    FINISHED_ORDER_RETENTION_MS,
    JOURNAL_MAX_ENTRIES,
    MAX_STOCK_LEVEL,
    STOCK_IMPORT_CHUNK,
    STOREFRONT_CHANNEL,
)
from inventory_engine.domain.models import (
    OrderAction,
    OrderLine,
    check_identifier,
    check_stock_level,
)
from inventory_engine.errors import (
    LedgerScriptError,
    ReservationNotFoundError,
    StockLevelError,
)
from inventory_engine.ledger.events import OrderEvent, check_location, checked_event, lines_args
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.redis_io import redis_errors, wall_clock_ms
from inventory_engine.ledger.results import (
    OrderOutcome,
    ReservationOutcome,
    decode_change_reply,
    decode_commit_reply,
    decode_dismiss_reply,
    decode_expire_reply,
    decode_order_reply,
    decode_reserve_reply,
    text,
)
from inventory_engine.ledger.scripts import LedgerCode

if TYPE_CHECKING:
    from redis.client import Pipeline


class RedisLedger:
    """Stock counters of one seller account in Redis.

    Args:
        client: a redis-py client (``decode_responses`` either way).
        account: seller account; all its keys share one hash tag.
        channels: names of the channels that publish stock; each change marks the SKU dirty for
            every one of them.
        clock: returns now in epoch milliseconds (passed into every script as ``now_ms``).
        functions: run the operations as Redis Functions (True) or scripts (False); None asks
            the server whether it has Functions (see :mod:`.scripts`).
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        account: str = DEFAULT_ACCOUNT,
        channels: Sequence[str] = (),
        clock: Callable[[], int] = wall_clock_ms,
        journal_max_entries: int = JOURNAL_MAX_ENTRIES,
        retention_ms: int = FINISHED_ORDER_RETENTION_MS,
        functions: bool | None = None,
    ) -> None:
        self.client = client
        self.keys = AccountKeys(check_identifier(account, "account"))
        self.channels = tuple(check_identifier(c, "channel") for c in channels)
        self.clock = clock
        self._journal_max = journal_max_entries
        self._retention_ms = retention_ms
        self._code = LedgerCode(client, functions=functions)
        k = self.keys
        self._keys_head = (
            k.on_hand,
            k.reserved,
            k.bundles,
            k.bundle_parents,
            k.catalog,
            k.journal,
            k.counters,
            k.locations,
            k.oversold,
            k.unknown_skus,
            k.expiry,
        )
        # After the order key (or a placeholder that scripts without an order never touch).
        self._keys_tail = tuple(k.dirty(c) for c in self.channels)

    # -- plumbing ------------------------------------------------------------------------------

    def _keys(self, order_key: str | None = None) -> list[str]:
        # The key list is the same for every call but the order key: built once (hot path).
        return [*self._keys_head, order_key or self.keys.base, *self._keys_tail]

    def _argv(self, location: str, *rest: Any) -> list[Any]:
        return [
            self.clock(),
            check_location(location),
            len(self.channels),
            self._journal_max,
            self._retention_ms,
            *rest,
        ]

    def _run(
        self,
        script: str,
        keys: list[str],
        args: list[Any],
        client: redis.Redis | Pipeline | None = None,
    ) -> Any:
        with redis_errors():
            return self._code.run(script, keys, args, client)

    # -- marketplace orders --------------------------------------------------------------------

    def record_order(
        self,
        channel: str,
        order_id: str,
        lines: Iterable[OrderLine],
        action: OrderAction,
        *,
        status: str = "",
        location: str = DEFAULT_LOCATION,
        received_ms: int | None = None,
    ) -> OrderOutcome:
        """Record an order event that already happened on a marketplace.

        Never refused for lack of stock: a reservation that takes available below zero is
        recorded as oversold. Replays are no-ops; an event older than the order's state is too.

        Args:
            channel: channel name (``ozon``, ``wb``, ...).
            order_id: the marketplace's order or posting id.
            lines: the order's lines (may be empty for events that carry none).
            action: what the event does, from ``domain.status_rules``.
            status: the marketplace status text, kept on the order for inspection.
            location: the warehouse the channel sells from.
            received_ms: when the engine received the event (default: now).
        """
        event = OrderEvent(channel, order_id, action, tuple(lines), status, location, received_ms)
        return self._apply(event)

    def record_orders(self, events: Sequence[OrderEvent]) -> list[OrderOutcome]:
        """Record many events in one pipelined round trip, in order; each is its own atomic
        call, exactly as if recorded one by one."""
        checked = [checked_event(event) for event in events]
        sent = [event for event in checked if event.action is not OrderAction.IGNORE]
        with redis_errors():
            replies = iter(self._pipelined(sent))
        return [
            OrderOutcome(False, None)
            if event.action is OrderAction.IGNORE
            else decode_order_reply(next(replies))
            for event in checked
        ]

    def _pipelined(self, events: Sequence[OrderEvent], *, raise_on_error: bool = True) -> list[Any]:
        """Each event's reply, in one pipelined round trip (checked events only). A call the
        server could not run because it had lost the ledger's functions (nothing ran) is sent
        again after the library is loaded again."""
        pipe = self.client.pipeline(transaction=False)
        for event in events:
            self._queue_event(event, pipe)
        replies = pipe.execute(raise_on_error=False) if events else []
        lost = [i for i, reply in enumerate(replies) if self._code.missing(reply)]
        if lost:
            self._code.load()
            pipe = self.client.pipeline(transaction=False)
            for index in lost:
                self._queue_event(events[index], pipe)
            for index, reply in zip(lost, pipe.execute(raise_on_error=False), strict=True):
                replies[index] = reply
        if raise_on_error:
            for reply in replies:
                if isinstance(reply, redis.ResponseError):
                    raise reply
        return replies

    def record_orders_each(
        self, events: Sequence[OrderEvent]
    ) -> list[OrderOutcome | ValueError | LedgerScriptError]:
        """Like :meth:`record_orders` (one pipelined round trip), but an event that fails fails
        alone: each item is the event's outcome, or what refused it — a ValueError from the
        checks before sending (that event is not sent), or a LedgerScriptError from its own
        script (WRONGTYPE, OOM, a Lua error). The other events' outcomes stand.

        Raises:
            LedgerUnavailableError: Redis could not be reached (which events were applied is
                not known: replaying them is safe).
        """
        results: list[OrderOutcome | ValueError | LedgerScriptError | None] = []
        sent: list[int] = []
        checked: list[OrderEvent] = []
        for index, event in enumerate(events):
            if event.action is OrderAction.IGNORE:
                results.append(OrderOutcome(False, None))
                continue
            try:
                checked.append(checked_event(event))
            except ValueError as exc:
                results.append(exc)
                continue
            results.append(None)
            sent.append(index)
        with redis_errors():
            replies = self._pipelined(checked, raise_on_error=False)
        for index, reply in zip(sent, replies, strict=True):
            if isinstance(reply, redis.ResponseError):
                error = LedgerScriptError(f"redis refused: {reply}")
                error.__cause__ = reply
                results[index] = error
            else:
                results[index] = decode_order_reply(reply)
        # Every sent event got its reply above: no None is left.
        return cast(list[OrderOutcome | ValueError | LedgerScriptError], results)

    def commit(
        self,
        channel: str,
        order_id: str,
        *,
        lines: Iterable[OrderLine] = (),
        location: str = DEFAULT_LOCATION,
    ) -> OrderOutcome:
        """The goods left: on_hand and reserved drop. Unseen orders need ``lines``.

        A hold whose TTL ran out (state ``expired``) is taken again and committed in the same
        atomic call when all of its stock is still available (applied, ``committed``).

        Raises:
            ReservationNotFoundError: the order is unknown and no lines were given.
            ReservationExpiredError: the hold expired and some of its stock is no longer
                available; nothing changed.
        """
        event = checked_event(
            OrderEvent(channel, order_id, OrderAction.COMMIT, tuple(lines), location=location)
        )
        reply = self._queue_event(event, self.client, commit_expired=True)
        outcome = decode_commit_reply(event.channel, event.order_id, reply)
        if outcome.state is None:
            raise ReservationNotFoundError(channel, order_id)
        return outcome

    def release(
        self,
        channel: str,
        order_id: str,
        *,
        lines: Iterable[OrderLine] = (),
        event_id: str | None = None,
        location: str = DEFAULT_LOCATION,
    ) -> OrderOutcome:
        """Cancelled before shipping: reserved units return to available.

        With ``event_id`` only the given lines are released (a partial cancel), once per id.
        An unseen order gets a tombstone so its late arrival does not reserve.
        """
        lines = tuple(lines)
        if event_id is not None and not lines:
            raise ValueError("a partial release needs the lines it cancels")
        return self._apply(
            OrderEvent(channel, order_id, OrderAction.RELEASE, lines, location=location),
            event_id=event_id or "",
        )

    def _queue_event(
        self,
        event: OrderEvent,
        client: redis.Redis | Pipeline,
        *,
        event_id: str = "",
        commit_expired: bool = False,
    ) -> Any:
        keys = self._keys(self.keys.order(event.channel, event.order_id))
        req, flat = lines_args(event.lines) if event.lines else ("", [])
        args = self._argv(
            event.location,
            event.channel,
            event.order_id,
            event.action.value,
            req,
            event.status,
            event_id,
            "" if event.received_ms is None else int(event.received_ms),
            "1" if commit_expired else "",
            *flat,
        )
        return self._run("apply_order_event", keys, args, client)

    def _apply(self, event: OrderEvent, *, event_id: str = "") -> OrderOutcome:
        """One event. IGNORE never reaches Redis: (False, None) even for a known order."""
        if event.action is OrderAction.IGNORE:
            return OrderOutcome(False, None)
        reply = self._queue_event(checked_event(event), self.client, event_id=event_id)
        return decode_order_reply(reply)

    # -- storefront holds ----------------------------------------------------------------------

    def try_reserve(
        self,
        reservation_id: str,
        lines: Iterable[OrderLine],
        *,
        ttl_s: int | None = None,
        location: str = DEFAULT_LOCATION,
        channel: str = STOREFRONT_CHANNEL,
    ) -> ReservationOutcome:
        """Hold stock for a checkout, all lines or none.

        Raises:
            InsufficientStockError: some line is short (each short line listed); nothing held.
            ReservationConflictError: the id was used before with other lines.
        """
        reservation_id = check_identifier(reservation_id, "reservation_id")
        channel = check_identifier(channel, "channel")
        if ttl_s is not None and ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        expires = "" if ttl_s is None else self.clock() + ttl_s * 1000
        order_key = self.keys.order(channel, reservation_id)
        req, flat = lines_args(lines)
        args = self._argv(location, channel, reservation_id, req, expires, *flat)
        reply = self._run("try_reserve", self._keys(order_key), args)
        return decode_reserve_reply(reservation_id, reply)

    def resolve_unknown(self, channel: str, order_id: str, mapping: dict[str, str]) -> OrderOutcome:
        """Apply an order's parked lines whose SKUs are known now (``mapping``: parked SKU ->
        SKU), as the order's state requires; the rest stay parked. ``unknown_lines`` of the
        outcome: lines still parked.
        """
        key = self.keys.order(check_identifier(channel, "channel"), order_id)
        args = self._argv(
            DEFAULT_LOCATION, channel, order_id, json.dumps(mapping, separators=(",", ":"))
        )
        return decode_order_reply(self._run("resolve_unknown", self._keys(key), args))

    def dismiss_unknown(
        self, channel: str, order_id: str, reason: str
    ) -> list[tuple[str, int]] | None:
        """Take an order off the unknown-SKU list for good, without applying its parked lines;
        each line is journaled (op ``dismiss_unknown``) with ``reason``. Returns the lines
        dismissed, or None when nothing of the order was parked.
        """
        if not reason.strip():
            raise ValueError("a dismissal needs a reason")
        key = self.keys.order(check_identifier(channel, "channel"), order_id)
        args = self._argv(DEFAULT_LOCATION, channel, order_id, reason)
        return decode_dismiss_reply(self._run("dismiss_unknown", self._keys(key), args))

    def expire_due(self, *, limit: int = EXPIRE_SWEEP_BATCH) -> int:
        """Release storefront holds whose TTL has passed. Returns how many were released."""
        released = 0
        while True:
            with redis_errors():
                due = self.client.zrangebyscore(
                    self.keys.expiry, "-inf", self.clock(), start=0, num=limit
                )
            if not due:
                return released
            keys = self._keys() + [text(key) for key in cast(list[bytes], due)]
            args = self._argv(DEFAULT_LOCATION)
            released += decode_expire_reply(self._run("expire_due", keys, args))
            if len(due) < limit:
                return released

    # -- stock counts --------------------------------------------------------------------------

    def set_on_hand(
        self,
        sku: str,
        quantity: int,
        *,
        location: str = DEFAULT_LOCATION,
        reason: str = "stock count",
        source: str = "api",
    ) -> int:
        """Set the units physically at a location (a stock count). Returns 1 if it changed."""
        return self.import_on_hand(
            [(sku, quantity)], location=location, reason=reason, source=source
        )

    def adjust_on_hand(
        self,
        sku: str,
        delta: int,
        *,
        reason: str,
        location: str = DEFAULT_LOCATION,
        source: str = "api",
    ) -> int:
        """Add (goods received) or remove (damage, loss) units.

        Raises:
            StockLevelError: the result would leave 0..1,000,000,000; nothing changed.
        """
        if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
            raise ValueError("delta must be a non-zero whole number")
        if abs(delta) > MAX_STOCK_LEVEL:
            raise ValueError(f"delta must be within ±{MAX_STOCK_LEVEL}")
        if not reason.strip():
            raise ValueError("an adjustment needs a reason")
        args = self._argv(
            location, "add", reason, source, MAX_STOCK_LEVEL, check_identifier(sku, "sku"), delta
        )
        return decode_change_reply(self._run("change_on_hand", self._keys(), args))

    def import_on_hand(
        self,
        rows: Sequence[tuple[str, int]],
        *,
        location: str = DEFAULT_LOCATION,
        reason: str = "stock import",
        source: str = "import",
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Set many absolute counts, in chunks (each chunk atomic). Returns how many changed.

        Every row is validated before the first chunk is sent, so a bad row changes nothing.
        """
        check_location(location)
        checked = [(check_identifier(sku, "sku"), check_stock_level(qty)) for sku, qty in rows]
        if len({sku for sku, _ in checked}) != len(checked):
            raise ValueError("a SKU appears twice for the same location")
        # Checked up front as well as in the script, so a bundle in a late chunk cannot leave
        # the earlier chunks written.
        with redis_errors():
            flags = (
                self.client.hmget(self.keys.bundles, [sku for sku, _ in checked]) if checked else []
            )
        for (sku, _), recipe in zip(checked, flags, strict=True):
            if recipe is not None:
                raise StockLevelError(sku, "is a bundle: its stock comes from its components")
        changed = 0
        for start in range(0, len(checked), STOCK_IMPORT_CHUNK):
            chunk = checked[start : start + STOCK_IMPORT_CHUNK]
            pairs = [value for row in chunk for value in row]
            args = self._argv(location, "set", reason, source, MAX_STOCK_LEVEL, *pairs)
            changed += decode_change_reply(self._run("change_on_hand", self._keys(), args))
            if progress is not None:
                progress(len(chunk))
        return changed
