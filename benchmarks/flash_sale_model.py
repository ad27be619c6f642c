"""The flash-sale model: marketplaces, buyers and the engine's push path on a virtual clock.

A deterministic discrete-event simulation (integer ms, no sleeping). Buyers on each marketplace
buy only what that marketplace shows at that moment, so a stale number is what oversells. The
engine's decisions come from its own code: ``published_quantity``/``ChannelShare`` (what a
channel is shown), ``SalesRate``/``dynamic_buffer`` (the opt-in dynamic buffer, with the window
the publisher picks), ``LIMITS``/``ITEM_WINDOW_MARGIN_S`` (Ozon's 30 s per-item window, batch
sizes and rate buckets) and ``POLL_LIMITS`` (WB's poll interval). The publisher's loop (claim
the due dirty SKUs oldest first, latest value wins, unchanged values coalesced, decreases first,
one request in flight per channel, a not-before after an accepted Ozon item) is modelled here,
since the real one needs Redis. Used by :mod:`benchmarks.flash_sale`.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple
from unittest import mock

from inventory_engine.domain import sales_rate
from inventory_engine.domain.allocation import ChannelShare, published_quantity
from inventory_engine.domain.sales_rate import SalesRate, dynamic_buffer
from inventory_engine.intake.pollers import POLL_LIMITS
from inventory_engine.sync.limits import ITEM_WINDOW_MARGIN_S, LIMITS

CHANNELS = ("ozon", "wb", "ym")
KIND = {"ozon": "ozon", "wb": "wildberries", "ym": "yandex_market"}
"""Simulated channel -> the engine's channel kind (its LIMITS and POLL_LIMITS entry)."""
FAST_MS = 30_000
"""Allotment variant: a channel that shows a change within this is refilled and taken from
during the sale; a slower one (YM) keeps the allotment it had before the sale."""
IDLE_MS = 10_000
"""Allotment variant: units are taken back from a channel that sold none of the SKU this long."""


@dataclass(frozen=True)
class Scenario:
    """The sale. Delays in ms; (low, high) pairs are drawn uniformly."""

    hot_skus: int = 5
    hot_units: int = 20
    cold_skus: int = 50
    cold_units: int = 2
    hot_demand_share: float = 0.7
    orders: int = 1_000
    sale_ms: int = 60_000
    channel_share: tuple[tuple[str, int], ...] = (("ozon", 45), ("wb", 35), ("ym", 20))
    notify_ms: tuple[int, int] = (300, 2_000)
    """Ozon and YM push a sale notification after this (sub-second to a few seconds)."""
    wb_poll_ms: int = int(POLL_LIMITS[KIND["wb"]].default_interval_s * 1000)
    request_ms: tuple[int, int] = (200, 1_000)
    """An HTTP request (a stock push, a WB poll); a push reaches the marketplace half way."""
    apply_ms: tuple[tuple[str, int], ...] = (("ozon", 5_000), ("wb", 5_000), ("ym", 180_000))
    """From a stock update's arrival to buyers seeing it."""
    wake_ms: int = 100
    """From a ledger change to the channel's publish round."""

    def apply(self, channel: str) -> int:
        return dict(self.apply_ms)[channel]

    def heard_within(self, channel: str) -> int:
        """The longest time from a sale to the engine hearing of it."""
        return self.wb_poll_ms + self.request_ms[1] if channel == "wb" else self.notify_ms[1]

    def stock(self) -> dict[str, int]:
        hot = {f"hot{i:02d}": self.hot_units for i in range(self.hot_skus)}
        return hot | {f"cold{i:02d}": self.cold_units for i in range(self.cold_skus)}


@dataclass(frozen=True)
class Strategy:
    name: str
    period_s: int | None = None
    """Periodic sync: every channel set to the ledger's available each period, nothing between."""
    buffer: int = 0
    dynamic: bool = False
    windows_s: tuple[tuple[str, float], ...] = ()
    """``dynamic_window_s`` per channel; unset ones get the publisher's default."""
    tau_s: float | None = None
    """Variant: the rate's time constant (``sales_rate.TAU_S``, patched for the run)."""
    allot: bool = False
    """Design variant (not in the engine): allotments changed only when that is safe."""
    shipped: bool = True


class Order(NamedTuple):
    t_ms: int
    channel: str
    sku: str
    notify_ms: int
    """When the engine learns of the sale (if it is one)."""


def make_orders(sc: Scenario, seed: int) -> list[Order]:
    """``sc.orders`` one-unit orders at uniform times over the sale (a Poisson process given its
    count), channel by demand share, SKU a random hot one with ``hot_demand_share``."""
    rng = random.Random(seed)
    skus = list(sc.stock())
    hot = [s for s in skus if s.startswith("hot")]
    cold = [s for s in skus if s.startswith("cold")]
    names, weights = zip(*sc.channel_share, strict=True)
    poll_phase = rng.randrange(sc.wb_poll_ms)
    orders = []
    for _ in range(sc.orders):
        t = rng.randrange(sc.sale_ms)
        channel = rng.choices(names, weights)[0]
        sku = rng.choice(hot if rng.random() < sc.hot_demand_share else cold)
        if channel == "wb":  # read by the next poll, which takes a request's time
            polls = math.ceil((t - poll_phase + 1) / sc.wb_poll_ms)
            seen = poll_phase + polls * sc.wb_poll_ms + rng.randint(*sc.request_ms)
        else:
            seen = t + rng.randint(*sc.notify_ms)
        orders.append(Order(t, channel, sku, seen))
    return sorted(orders)


def engine_window_s(channel: str, dynamic_window_s: float | None = None) -> float:
    """The window the publisher's dynamic buffer covers (``ChannelPublisher._dynamic_buffers``)."""
    return dynamic_window_s or LIMITS[KIND[channel]].item_window_s or 60.0


def split(available: int, percents: dict[str, int]) -> dict[str, int]:
    """Each channel's ``published_quantity`` of its percent; what rounding leaves over goes to the
    largest fractions, so every unit is somewhere."""
    values = {
        c: published_quantity(available, ChannelShare(percent=p)) for c, p in percents.items()
    }
    left = max(0, available) - sum(values.values())
    by_fraction = sorted(percents, key=lambda c: -((max(0, available) * percents[c]) % 100))
    for c in by_fraction[: max(0, left)]:
        values[c] += 1
    return values


@dataclass
class Outcome:
    could: int = 0
    """Σ over SKUs of min(demand, stock): what an omniscient seller sells."""
    sold: int = 0
    oversold: int = 0
    lost: int = 0
    """Σ over SKUs of min(buyers turned away while stock existed, units left unsold)."""
    requests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANNELS, 0))


class FlashSale:
    """One run of one strategy on one demand."""

    def __init__(self, sc: Scenario, strategy: Strategy, orders: Sequence[Order], seed: int):
        self.sc, self.st, self.orders = sc, strategy, orders
        self.rng = random.Random(seed * 7_919 + 1)
        self.stock = sc.stock()
        self.physical = dict(self.stock)
        self.ledger = dict(self.stock)
        self.percents = dict(sc.channel_share)
        self.share = {
            c: ChannelShare(buffer=strategy.buffer, ceiling=LIMITS[KIND[c]].ceiling)
            for c in CHANNELS
        }
        windows = dict(strategy.windows_s)
        self.window_s = {c: engine_window_s(c, windows.get(c)) for c in CHANNELS}
        self.fast = {c: sc.request_ms[1] + sc.apply(c) <= FAST_MS for c in CHANNELS}
        # Before the sale every channel shows what it is given: a quiet steady state.
        initial = {s: split(n, self.percents) for s, n in self.stock.items()}
        self.shown = {
            c: {s: initial[s][c] if strategy.allot else self.value(c, s) or 0 for s in self.stock}
            for c in CHANNELS
        }
        self.accepted = {c: dict(self.shown[c]) for c in CHANNELS}
        self.grant = {c: dict(self.shown[c]) for c in CHANNELS}
        """Allotment variant: what the engine last set minus the channel's sales it heard of."""
        self.stale: dict[str, dict[str, tuple[int, int]]] = {c: {} for c in CHANNELS}
        """(units, until ms): a channel told less may still show this many before then."""
        self.last_sale = {c: dict.fromkeys(self.stock, -1) for c in CHANNELS}
        self.rates = {c: {s: SalesRate(0.0, 0, n) for s, n in self.stock.items()} for c in CHANNELS}
        self.dirty: dict[str, dict[str, int]] = {c: {} for c in CHANNELS}
        self.not_before: dict[str, dict[str, int]] = {c: {} for c in CHANNELS}
        self.busy = dict.fromkeys(CHANNELS, False)
        self.round_at: dict[str, int | None] = dict.fromkeys(CHANNELS, None)
        self.bucket = {c: (LIMITS[KIND[c]].bucket_capacity, 0) for c in CHANNELS}
        self.ozon_updated: dict[str, int] = {}
        self.sold_on = {c: dict.fromkeys(self.stock, 0) for c in CHANNELS}
        self.turned_away = dict.fromkeys(self.stock, 0)
        self.demand = dict.fromkeys(self.stock, 0)
        self.out = Outcome()
        self.events: list[tuple[int, int, str, tuple[object, ...]]] = []
        self.seq = 0
        self.now = 0

    def at(self, t_ms: int, kind: str, *args: object) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t_ms, self.seq, kind, args))

    def run(self) -> Outcome:
        tau = self.st.tau_s or sales_rate.TAU_S
        with mock.patch.object(sales_rate, "TAU_S", tau):
            return self._run()

    def _run(self) -> Outcome:
        for order in self.orders:
            self.at(order.t_ms, "order", order)
        if self.st.period_s:
            for t in range(0, self.sc.sale_ms, self.st.period_s * 1000):
                self.at(t, "sync")
        while self.events:
            self.now, _, kind, args = heapq.heappop(self.events)
            getattr(self, f"on_{kind}")(*args)
        for sku, stock in self.stock.items():
            self.out.could += min(self.demand[sku], stock)
            self.out.lost += min(self.turned_away[sku], max(0, self.physical[sku]))
        return self.out

    # -- the marketplaces ------------------------------------------------------------------------

    def on_order(self, order: Order) -> None:
        c, sku = order.channel, order.sku
        self.demand[sku] += 1
        if self.shown[c][sku] < 1:
            if self.physical[sku] > 0:
                self.turned_away[sku] += 1
            return
        self.shown[c][sku] -= 1  # the marketplace lowers its own number for its own sale
        self.sold_on[c][sku] += 1
        self.out.sold += 1
        if self.physical[sku] <= 0:
            self.out.oversold += 1
        self.physical[sku] -= 1
        self.at(order.notify_ms, "notify", c, sku)

    def receive(self, c: str, updates: list[tuple[str, int]]) -> list[tuple[str, int, bool]]:
        """A stock request arrives; Ozon refuses an item it took less than 30 s ago."""
        window = LIMITS[KIND[c]].item_window_s
        results = []
        for sku, value in updates:
            last = self.ozon_updated.get(sku) if window else None
            ok = last is None or self.now - last >= (window or 0) * 1000
            if ok:
                if window:
                    self.ozon_updated[sku] = self.now
                sold = self.sold_on[c][sku]
                self.at(self.now + self.sc.apply(c), "apply", c, sku, value, sold)
            results.append((sku, value, ok))
        return results

    def on_apply(self, c: str, sku: str, value: int, sold_before: int) -> None:
        """The update goes live: its number less the marketplace's own sales since it arrived
        (sales made before it arrived that the engine had not heard of are shown again)."""
        self.shown[c][sku] = max(0, value - (self.sold_on[c][sku] - sold_before))

    # -- the engine ------------------------------------------------------------------------------

    def on_notify(self, c: str, sku: str) -> None:
        self.ledger[sku] -= 1
        self.last_sale[c][sku] = self.now
        self.grant[c][sku] = max(0, self.grant[c][sku] - 1)
        if sku in self.stale[c]:
            units, until = self.stale[c][sku]
            self.stale[c][sku] = (max(0, units - 1), until)
        if not self.st.period_s:
            self.mark_all(sku)

    def mark_all(self, sku: str) -> None:
        for c in CHANNELS:
            self.dirty[c].setdefault(sku, self.now)
            self.wake(c, self.now + self.sc.wake_ms)

    def wake(self, c: str, t_ms: int) -> None:
        scheduled = self.round_at[c]
        if not self.busy[c] and (scheduled is None or t_ms < scheduled):
            self.round_at[c] = t_ms
            self.at(t_ms, "round", c, t_ms)

    def next_due(self, c: str) -> None:
        """Come back when the earliest marked SKU may be sent (Ozon: its window opens)."""
        if self.dirty[c]:
            self.wake(c, max(self.now, min(self.not_before[c].get(s, 0) for s in self.dirty[c])))

    def on_sync(self) -> None:
        for c in CHANNELS:
            self.send(c, [(s, self.value(c, s) or 0) for s in self.stock], claimed={})

    def value(self, c: str, sku: str, held: int = 0) -> int | None:
        """What ``c`` should be told now; None: leave it as it is."""
        if self.st.allot:
            return self.allotment(c, sku)
        share = (
            replace(self.share[c], buffer=self.share[c].buffer + held) if held else self.share[c]
        )
        return published_quantity(self.ledger[sku], share)

    def on_round(self, c: str, t_ms: int) -> None:
        """One ``publish_once``: claim the due SKUs (oldest change first), compute, send."""
        if self.round_at[c] != t_ms:
            return  # superseded by an earlier wake
        self.round_at[c] = None
        if self.busy[c]:
            return  # the reply comes back here
        limits = LIMITS[KIND[c]]
        due = [s for s in self.dirty[c] if self.not_before[c].get(s, 0) <= self.now]
        due = sorted(due, key=self.dirty[c].__getitem__)[: limits.max_batch]
        claimed = {s: self.dirty[c].pop(s) for s in due}
        held = {s: self.observe(c, s) for s in claimed} if self.st.dynamic else {}
        # The engine compares with the value last accepted (not lowered by the channel's own
        # sales); the allotment variant with what it believes the channel shows.
        told = self.grant[c] if self.st.allot else self.accepted[c]
        updates = []
        for sku in claimed:
            value = self.value(c, sku, held.get(sku, 0))
            if value is not None and value != told[sku]:
                updates.append((0 if value < told[sku] else 1, sku, value))
        if updates:
            tokens, since = self.bucket[c]
            refill = (self.now - since) * limits.bucket_rate_per_s / 1000
            tokens = min(limits.bucket_capacity, tokens + refill)
            cost = len(updates) if limits.cost_per_item else 1
            if tokens < cost:
                self.bucket[c] = (tokens, self.now)
                for sku in claimed:
                    self.dirty[c].setdefault(sku, claimed[sku])
                wait = math.ceil((cost - tokens) * 1000 / limits.bucket_rate_per_s)
                self.wake(c, self.now + wait)
                return
            self.bucket[c] = (tokens - cost, self.now)
            self.send(c, [(sku, value) for _, sku, value in sorted(updates)], claimed)
        self.next_due(c)

    def observe(self, c: str, sku: str) -> int:
        """The publisher's dynamic buffer: observe the available count, hold rate × window."""
        rate = self.rates[c][sku].observe(self.ledger[sku], self.now)
        self.rates[c][sku] = rate
        return dynamic_buffer(rate, self.window_s[c], self.now)

    def send(self, c: str, updates: list[tuple[str, int]], claimed: dict[str, int]) -> None:
        latency = self.rng.randint(*self.sc.request_ms)
        # Until then the old number may be on show, or a sale of it not yet heard of.
        live_by = self.now + self.sc.request_ms[1] + self.sc.apply(c) + self.sc.heard_within(c)
        for sku, value in updates:
            if value < self.grant[c][sku]:
                self.stale[c][sku] = (self.exposure(c, sku), live_by)
                self.at(live_by, "stale_over", sku)
            self.grant[c][sku] = value
        self.out.requests[c] += 1
        self.busy[c] = self.busy[c] or bool(claimed)
        self.at(self.now + latency // 2, "arrive", c, updates, claimed, latency - latency // 2)

    def on_arrive(
        self, c: str, updates: list[tuple[str, int]], claimed: dict[str, int], rest_ms: int
    ) -> None:
        self.at(self.now + rest_ms, "reply", c, self.receive(c, updates), claimed)

    def on_reply(
        self, c: str, results: list[tuple[str, int, bool]], claimed: dict[str, int]
    ) -> None:
        window = LIMITS[KIND[c]].item_window_s
        for sku, value, ok in results:
            if ok:
                self.accepted[c][sku] = value
                if window is not None:
                    self.not_before[c][sku] = self.now + int((window + ITEM_WINDOW_MARGIN_S) * 1000)
            else:  # throttled: marked again, not before the channel's retry time
                self.dirty[c].setdefault(sku, claimed.get(sku, self.now))
                self.not_before[c][sku] = self.now + int((window or 1) * 1000)
        if claimed:
            self.busy[c] = False
            self.next_due(c)

    # -- the allotment variant (a design the engine does not have) -------------------------------

    def exposure(self, c: str, sku: str) -> int:
        """Units ``c`` may still sell: its allotment, or more while an older, higher number may
        still be on show."""
        units, until = self.stale[c].get(sku, (0, 0))
        return max(self.grant[c][sku], units if self.now < until else 0)

    def sold_out(self, c: str, sku: str) -> bool:
        return self.exposure(c, sku) == 0

    def allotment(self, c: str, sku: str) -> int | None:
        """Σ exposures ≤ ledger always, and a channel's number is only ever set to 0 (take back)
        or from 0 (refill: all its sales are known, so no sale is shown again). A slow channel
        keeps its pre-sale allotment; a fast sold-out one that sold the SKU gets the free units;
        units go back from a fast channel idle for IDLE_MS while another is sold out."""
        if not self.fast[c]:
            return None
        free = self.ledger[sku] - sum(self.exposure(d, sku) for d in CHANNELS)
        if self.grant[c][sku] > 0:
            return 0 if free <= 0 and self.should_take_back(c, sku) else None
        takers = {d: self.percents[d] for d in CHANNELS if self.wants(d, sku)}
        give = split(free, takers).get(c, 0) if free > 0 else 0
        return give or None

    def wants(self, c: str, sku: str) -> bool:
        return self.fast[c] and self.sold_out(c, sku) and self.last_sale[c][sku] >= 0

    def should_take_back(self, c: str, sku: str) -> bool:
        if not any(self.wants(d, sku) for d in CHANNELS if d != c):
            return False
        idle_from = max(self.last_sale[c][sku], 0) + IDLE_MS
        if self.now < idle_from:
            self.at(idle_from, "stale_over", sku)  # look again then
            return False
        return True

    def on_stale_over(self, sku: str) -> None:
        if self.st.allot:
            self.mark_all(sku)
