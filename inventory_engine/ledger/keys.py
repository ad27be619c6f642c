"""The only module that spells a Redis key.

Every key of one seller account carries the ``{account}`` hash tag, so one Lua script may touch
every SKU of an order atomically and a Redis Cluster can shard by account later::

    inv:{<account>}:on_hand                hash  "<location>|<sku>" -> units physically there
    inv:{<account>}:reserved               hash  "<location>|<sku>" -> units held by open orders
    inv:{<account>}:locations              set   every location that has stock
    inv:{<account>}:bundles                hash  bundle sku -> "A:2;B:1" (components per unit)
    inv:{<account>}:bundle_parents         hash  component sku -> "B1;B2" (bundles that use it)
    inv:{<account>}:catalog                hash  sku -> JSON catalog record (marketplace ids)
    inv:{<account>}:catalog_index:<field>  hash  marketplace id -> sku (ozon_sku, wb_chrt_id, ...)
    inv:{<account>}:order:<channel>:<id>   hash  one order's state machine (see lua/_lib.lua)
    inv:{<account>}:expiry                 zset  order key -> expiry ms (storefront holds)
    inv:{<account>}:journal                stream  audit journal, capped
    inv:{<account>}:oversold               hash  "<channel>|<order>|<sku>" -> JSON shortfall
    inv:{<account>}:unknown_skus           hash  "<channel>|<order>" -> JSON parked lines
    inv:{<account>}:counters               hash  oversold_orders, oversold_units, unknown_sku_orders
    inv:{<account>}:dirty:<channel>        zset  sku -> ms from which it may be sent (the push
                                                 path's delay queue; a fresh mark: its change ms)
    inv:{<account>}:dirty_since:<channel>  hash  sku -> "first_ms allowed_ms" of a held mark
    inv:{<account>}:not_before:<channel>   hash  sku -> ms before which it may not be sent
    inv:{<account>}:inflight:<channel>     zset  sku -> lease end of a claimed, unsettled push
    inv:{<account>}:claims:<channel>       hash  sku -> owner token and times of that claim
    inv:{<account>}:senders:<channel>      zset  owner token -> lease end: requests in flight
    inv:{<account>}:clock_offset           string  ms the push scripts add to the server's TIME
                                                   (absent in production; tests jump ahead)
    inv:{<account>}:accepted:<channel>     hash  sku -> last value the channel accepted
    inv:{<account>}:accepted_item:<channel>  hash  sku -> the marketplace id it was accepted for
    inv:{<account>}:parked:<channel>       hash  sku -> JSON of the channel's refusal
    inv:{<account>}:bucket:<channel>       hash  token bucket of the channel account
    inv:{<account>}:paused:<channel>       string  ms until which the channel is not called
    inv:{<account>}:sales_rate:<channel>   hash  sku -> recent sales rate (dynamic buffer)
    inv:{<account>}:push_queued:<channel>      string  a push job is queued (guard)
    inv:{<account>}:push_wakeups           zset  channel -> ms when its held items may go
    inv:{<account>}:push_failures:<channel>    string  consecutive failed push requests
    inv:{<account>}:readback:<channel>     hash  the continuous read-back's offset and pass start
    inv:{<account>}:readback_lease:<channel>  string  owner token of the process reading it back
    inv:{<account>}:drift:<channel>        hash  sku -> passes in a row it differed (2+: persistent)
    inv:{<account>}:poll:<channel>:state   hash  cursor, polled_ms, status_offset (WB rotation)
    inv:{<account>}:poll:<channel>:open    zset  WB: tracked task id -> ms first seen
    inv:{<account>}:poll:<channel>:status  hash  WB: tracked task id -> last status text queued
    inv:{<account>}:poll:<channel>:seen    hash  Ozon/YM: order id -> last event key queued
    inv:{<account>}:poll:<channel>:seen_at zset  Ozon/YM: order id -> ms last listed
    inv:{<account>}:pushes                 stream  what each channel was sent and answered, capped
    inv:{<account>}:order_log:<channel>:<id>   list  events received for an order and their outcome
    inv:{<account>}:metrics                hash  counters and histogram buckets (metrics/)
    inv:{<account>}:sandbox                string  JSON URLs of a sandbox serve's simulators
    inv:{<account>}:inbox                  stream  marketplace events waiting to be applied
    inv:{<account>}:inbox:dead             stream  events that kept failing (inbox.py)
    inv:{<account>}:inbox:claim_cursor:<group>  string  where XAUTOCLAIM goes on next
    inv:{<account>}:inbox_queued           string  a drain job is queued (guard)
"""

from __future__ import annotations

from dataclasses import dataclass

from inventory_engine.constants import DEFAULT_ACCOUNT, KEY_PREFIX


@dataclass(frozen=True, slots=True)
class AccountKeys:
    """Key names of one seller account."""

    account: str = DEFAULT_ACCOUNT

    @property
    def base(self) -> str:
        return f"{KEY_PREFIX}:{{{self.account}}}"

    @property
    def on_hand(self) -> str:
        return f"{self.base}:on_hand"

    @property
    def reserved(self) -> str:
        return f"{self.base}:reserved"

    @staticmethod
    def stock_field(location: str, sku: str) -> str:
        """Field of a SKU at a location in the on_hand and reserved hashes.

        One hash per account (not per location) keeps the scripts' KEYS fixed, so an event
        for a known order can work at the order's own location without a second round trip.
        """
        return f"{location}|{sku}"

    @property
    def locations(self) -> str:
        return f"{self.base}:locations"

    @property
    def bundles(self) -> str:
        return f"{self.base}:bundles"

    @property
    def bundle_parents(self) -> str:
        return f"{self.base}:bundle_parents"

    @property
    def catalog(self) -> str:
        return f"{self.base}:catalog"

    def catalog_index(self, field: str) -> str:
        return f"{self.base}:catalog_index:{field}"

    def order(self, channel: str, order_id: str) -> str:
        return f"{self.base}:order:{channel}:{order_id}"

    @property
    def order_prefix(self) -> str:
        return f"{self.base}:order:"

    @property
    def expiry(self) -> str:
        return f"{self.base}:expiry"

    @property
    def journal(self) -> str:
        return f"{self.base}:journal"

    @property
    def oversold(self) -> str:
        return f"{self.base}:oversold"

    @property
    def unknown_skus(self) -> str:
        return f"{self.base}:unknown_skus"

    @property
    def counters(self) -> str:
        return f"{self.base}:counters"

    def readback(self, channel: str) -> str:
        """The continuous read-back's pass over a channel: offset, pass start."""
        return f"{self.base}:readback:{channel}"

    def readback_lease(self, channel: str) -> str:
        """Which process reads a channel back (one at a time, whatever the number of serves)."""
        return f"{self.base}:readback_lease:{channel}"

    def drift(self, channel: str) -> str:
        """SKUs found drifted on a channel: passes in a row they differed (2+: persistent)."""
        return f"{self.base}:drift:{channel}"

    def poll(self, channel: str) -> PollKeys:
        """The keys of a channel's order polling state."""
        return PollKeys(self.base, channel)

    def dirty(self, channel: str) -> str:
        return f"{self.base}:dirty:{channel}"

    def not_before(self, channel: str) -> str:
        return f"{self.base}:not_before:{channel}"

    def inflight(self, channel: str) -> str:
        return f"{self.base}:inflight:{channel}"

    def dirty_since(self, channel: str) -> str:
        return f"{self.base}:dirty_since:{channel}"

    def claims(self, channel: str) -> str:
        return f"{self.base}:claims:{channel}"

    def senders(self, channel: str) -> str:
        return f"{self.base}:senders:{channel}"

    @property
    def clock_offset(self) -> str:
        return f"{self.base}:clock_offset"

    def accepted(self, channel: str) -> str:
        return f"{self.base}:accepted:{channel}"

    def accepted_item(self, channel: str) -> str:
        return f"{self.base}:accepted_item:{channel}"

    def parked(self, channel: str) -> str:
        return f"{self.base}:parked:{channel}"

    def bucket(self, channel: str) -> str:
        return f"{self.base}:bucket:{channel}"

    def paused(self, channel: str) -> str:
        return f"{self.base}:paused:{channel}"

    def sales_rate(self, channel: str) -> str:
        return f"{self.base}:sales_rate:{channel}"

    def push_queued(self, channel: str) -> str:
        return f"{self.base}:push_queued:{channel}"

    @property
    def push_wakeups(self) -> str:
        return f"{self.base}:push_wakeups"

    def push_failures(self, channel: str) -> str:
        return f"{self.base}:push_failures:{channel}"

    @property
    def pushes(self) -> str:
        return f"{self.base}:pushes"

    def order_log(self, channel: str, order_id: str) -> str:
        return f"{self.base}:order_log:{channel}:{order_id}"

    @property
    def metrics(self) -> str:
        return f"{self.base}:metrics"

    @property
    def sandbox(self) -> str:
        return f"{self.base}:sandbox"

    @property
    def inbox(self) -> str:
        return f"{self.base}:inbox"

    @property
    def inbox_queued(self) -> str:
        return f"{self.base}:inbox_queued"


@dataclass(frozen=True, slots=True)
class PollKeys:
    """Key names of one channel's polling state (``inv:{<account>}:poll:<channel>:<thing>``)."""

    base: str
    """The account's :attr:`AccountKeys.base`: ``inv:{<account>}``."""
    channel: str

    def _key(self, thing: str) -> str:
        return f"{self.base}:poll:{self.channel}:{thing}"

    @property
    def state(self) -> str:
        return self._key("state")

    @property
    def open(self) -> str:
        return self._key("open")

    @property
    def status(self) -> str:
        return self._key("status")

    @property
    def seen(self) -> str:
        return self._key("seen")

    @property
    def seen_at(self) -> str:
        return self._key("seen_at")

    @property
    def all(self) -> tuple[str, ...]:
        return (self.state, self.open, self.status, self.seen, self.seen_at)
