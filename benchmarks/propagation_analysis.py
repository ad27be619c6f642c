"""Matching sent events to the values the simulators received, and the figures of one phase.

An event's effect is found by value, not by guessing which push carried it. During a run stock
only goes down (orders and holds, no restock, no expiry), so the ledger's available count of a
SKU is strictly decreasing, and every value the engine publishes is that count at the moment it
computed the push (100 % share, no buffer). The journal gives each event's available count right
after it was applied, ``A``; any value computed before the event is then at least ``A + 1``. So
the first value a channel received for the SKU that is ``≤ A`` is the first one that reflects
the event, whether it was pushed for this event or for a later one that coalesced with it.

Latency is taken from the moment the event was sent to the engine:

* Ozon and Yandex Market: when the simulator sent its push notification (``sent_ns`` in the
  simulator's notification log); the driver's request that created the order is earlier;
* storefront: when the driver wrote ``POST /v1/reservations``;
* Wildberries: when the driver created the task in the simulator. WB has no push: this includes
  the engine's poll interval, so WB-sourced events are reported apart.

Ozon accepts one value per item every 30 s. An event applied while the item's window was closed
(its previous accepted value less than 30 s before) is a *throttled change*: what counts is how
long after the window opened (previous value + 30 s, the *allowed instant*) the value left.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import redis

from benchmarks.propagation_driver import Event
from benchmarks.propagation_env import MARKETPLACES, Catalog, sim_json
from inventory_engine.ledger.keys import AccountKeys

OZON_WINDOW_NS = 30_000_000_000
PUSH_SOURCES = ("ozon", "ym", "storefront")
"""Sources whose events reach the engine at once (a notification or an API call)."""
JOURNAL_PAGE = 10_000


@dataclass
class Collected:
    """What the ledger and the simulators recorded, read after (or during) the run."""

    applied: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    """(channel, order id) -> (ms applied, available right after) of the event's SKU."""
    received: dict[tuple[str, str], list[tuple[int, int]]] = field(default_factory=dict)
    """(channel, SKU) -> [(epoch ns, value)] in the order the simulator accepted them."""
    notified: dict[tuple[str, str], tuple[int, int | None, int | None]] = field(
        default_factory=dict
    )
    """(channel, order id) -> (epoch ns the notification left, engine's HTTP status, epoch ns
    of the engine's answer)."""
    pushes: list[tuple[str, int, int, int]] = field(default_factory=list)
    """The engine's push log, accepted items: (channel, ms first change, ms allowed, ms
    accepted), all on the Redis server's clock."""


def read_journal(client: redis.Redis, out: Collected, orders: set[tuple[str, str]]) -> None:
    """Each order's first journal row: when it was applied, the SKU's available after it."""
    key, start = AccountKeys().journal, "-"
    while True:
        rows: Any = client.xrange(key, min=start, count=JOURNAL_PAGE)
        for _entry_id, raw in rows:
            data = {k.decode(): v.decode() for k, v in raw.items()}
            pair = (data.get("channel", ""), data.get("order", ""))
            if pair in orders and pair not in out.applied:
                available = int(data["on_hand_after"]) - int(data["reserved_after"])
                out.applied[pair] = (int(data["ms"]), available)
        if len(rows) < JOURNAL_PAGE:
            return
        start = "(" + rows[-1][0].decode()


def read_simulators(sims: dict[str, str], catalog: Catalog, out: Collected) -> None:
    item_sku = catalog.item_to_sku()
    out.received = defaultdict(list)
    for channel, url in sims.items():
        for row in sim_json(url, "/_sim/received", since=0)["received"]:
            sku = item_sku.get((channel, row["item_id"]))
            if sku is not None:
                out.received[channel, sku].append((row["at_ns"], row["value"]))
    for channel, kind in (("ozon", "posting_number"), ("ym", "orderId")):
        for record in sim_json(sims[channel], "/_sim/notifications")["notifications"]:
            payload = record.get("payload") or {}
            if payload.get("message_type", payload.get("notificationType")) not in (
                "TYPE_NEW_POSTING",
                "ORDER_CREATED",
            ):
                continue
            pair = (channel, str(payload.get(kind)))
            status = record.get("status_code", record.get("status"))
            if pair not in out.notified and "sent_ns" in record:
                answered = record.get("answered_ns")
                out.notified[pair] = (int(record["sent_ns"]), status, answered)


def collect(
    client: redis.Redis, sims: dict[str, str], catalog: Catalog, events: list[Event]
) -> Collected:
    out = Collected()
    read_journal(client, out, {(e.source, e.order_id) for e in events})
    read_simulators(sims, catalog, out)
    read_push_log(client, out)
    return out


def read_push_log(client: redis.Redis, out: Collected) -> None:
    """Every item the channels accepted, as the engine logged it (``inv:{a}:pushes``)."""
    key, start = AccountKeys().pushes, "-"
    while True:
        rows: Any = client.xrange(key, min=start, count=JOURNAL_PAGE)
        for _entry_id, raw in rows:
            data = {k.decode(): v.decode() for k, v in raw.items()}
            if data.get("outcome") == "accepted" and "allowed" in data:
                out.pushes.append(
                    (data["channel"], int(data["since"]), int(data["allowed"]), int(data["ms"]))
                )
        if len(rows) < JOURNAL_PAGE:
            return
        start = "(" + rows[-1][0].decode()


@dataclass
class PhaseFigures:
    """Everything reported for one phase; latencies in milliseconds."""

    sent: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    answered_ok: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    notified: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    applied: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    delivered: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Per destination channel: events (from the other sources) whose effect it received."""
    expected: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    first_change: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    """Per destination: events from Ozon, YM and the storefront, not throttled."""
    from_wb: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    """Per destination: events from WB (poll interval included)."""
    throttled_events: int = 0
    throttled_wait: list[float] = field(default_factory=list)
    """Ozon: per value that carried a throttled change, received − allowed instant."""
    throttled_total: list[float] = field(default_factory=list)
    """Ozon: per throttled event, received − sent (up to the 30 s window)."""
    intake: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    """Per source: sent -> applied in the ledger (journal, ms resolution)."""
    notify_delay: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    webhook_answer: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    """Ozon, YM: the engine's answer time to the notification (its webhook)."""
    """Ozon, YM: the driver's create request -> the simulator's notification left."""
    send_lag: list[float] = field(default_factory=list)
    """Driver: scheduled instant -> request written (how well the rate was held)."""
    rate_sent: float = 0.0
    rate_engine: float = 0.0
    """Events per second reaching the engine (notifications, reservations, WB creations)."""
    engine_first: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    """Per channel, the engine's own view (push log): first unpublished change → accepted."""
    engine_allowed: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    """Per channel: the instant the channel's limits allowed the change → accepted (the part
    the engine controls)."""
    applied_ms: list[int] = field(default_factory=list)
    """When each event was applied (journal ms)."""
    missing: list[str] = field(default_factory=list)

    @property
    def applied_rate(self) -> float:
        """Events applied per second, first to last applied of the phase."""
        if len(self.applied_ms) < 2:
            return 0.0
        span = (max(self.applied_ms) - min(self.applied_ms)) / 1000
        return (len(self.applied_ms) - 1) / span if span > 0 else 0.0


def _first_reflecting(
    rows: list[tuple[int, int]], prefix_min_neg: list[int], available: int
) -> int | None:
    index = bisect.bisect_left(prefix_min_neg, -available)
    return index if index < len(rows) else None


def _prefix_min_neg(rows: list[tuple[int, int]]) -> list[int]:
    out, low = [], None
    for _, value in rows:
        low = value if low is None else min(low, value)
        out.append(-low)
    return out


def analyse(events: list[Event], data: Collected) -> PhaseFigures:
    """The figures of one phase's events."""
    figures = PhaseFigures()
    prefix = {key: _prefix_min_neg(rows) for key, rows in data.received.items()}
    throttled_rows: dict[tuple[str, int], float] = {}
    engine_times: list[int] = []
    for e in events:
        figures.sent[e.source] += 1
        figures.send_lag.append(max(0, e.sent_ns - e.due_ns) / 1e6)
        if not e.ok:
            figures.missing.append(f"{e.source} {e.order_id}: driver got status {e.status}")
            continue
        figures.answered_ok[e.source] += 1
        t0 = e.sent_ns
        note = data.notified.get((e.source, e.order_id))
        if e.source in ("ozon", "ym"):
            if note is None or note[1] != 200:
                figures.missing.append(f"{e.source} {e.order_id}: notification {note}")
            else:
                figures.notified[e.source] += 1
                t0 = note[0]
                figures.notify_delay[e.source].append((t0 - e.sent_ns) / 1e6)
                if note[2] is not None:
                    figures.webhook_answer[e.source].append((note[2] - t0) / 1e6)
        engine_times.append(t0)
        applied = data.applied.get((e.source, e.order_id))
        if applied is None:
            figures.missing.append(f"{e.source} {e.order_id}: not applied")
            continue
        figures.applied[e.source] += 1
        applied_ms, available = applied
        figures.applied_ms.append(applied_ms)
        figures.intake[e.source].append(applied_ms - t0 / 1e6)
        for channel in MARKETPLACES:
            if channel == e.source:
                continue
            figures.expected[channel] += 1
            rows = data.received.get((channel, e.sku), [])
            index = _first_reflecting(rows, prefix.get((channel, e.sku), []), available)
            if index is None:
                figures.missing.append(f"{e.source} {e.order_id} {e.sku}: never reached {channel}")
                continue
            figures.delivered[channel] += 1
            at_ns = rows[index][0]
            latency = (at_ns - t0) / 1e6
            if channel == "ozon" and index > 0:
                allowed = rows[index - 1][0] + OZON_WINDOW_NS
                if allowed > applied_ms * 1_000_000:
                    figures.throttled_events += 1
                    figures.throttled_total.append(latency)
                    throttled_rows[e.sku, index] = (at_ns - allowed) / 1e6
                    continue
            target = figures.from_wb if e.source == "wb" else figures.first_change
            target[channel].append(latency)
    figures.throttled_wait = list(throttled_rows.values())
    _rates(figures, events, engine_times)
    if figures.applied_ms:
        # The push log rows whose change came from this phase's events.
        first, last = min(figures.applied_ms), max(figures.applied_ms)
        for channel, since, allowed, accepted in data.pushes:
            if first <= since <= last:
                figures.engine_first[channel].append(accepted - since)
                figures.engine_allowed[channel].append(accepted - max(allowed, since))
    return figures


def _rates(figures: PhaseFigures, events: list[Event], engine_times: list[int]) -> None:
    sent = [e.sent_ns for e in events if e.sent_ns]
    if len(sent) > 1:
        figures.rate_sent = (len(sent) - 1) / ((max(sent) - min(sent)) / 1e9)
    if len(engine_times) > 1:
        span = (max(engine_times) - min(engine_times)) / 1e9
        figures.rate_engine = (len(engine_times) - 1) / span if span > 0 else 0.0


def behind(
    client: redis.Redis, sims: dict[str, str], catalog: Catalog, skus: set[str]
) -> dict[str, int]:
    """Per channel: how many SKUs of ``skus`` its simulator shows another value than the
    ledger's available now."""
    return {channel: len(late) for channel, late in late_skus(client, sims, catalog, skus).items()}


def late_skus(
    client: redis.Redis, sims: dict[str, str], catalog: Catalog, skus: set[str]
) -> dict[str, set[str]]:
    """Per channel: the SKUs of ``skus`` whose simulator value is not the ledger's available."""
    from inventory_engine.ledger import LedgerReader

    available = LedgerReader(client).available_many(sorted(skus), "main")
    sku_of = catalog.item_to_sku()
    out: dict[str, set[str]] = {}
    for channel, url in sims.items():
        shown = {
            sku_of.get((channel, row["item_id"])): row["value"]
            for row in sim_json(url, "/_sim/state")["stock"]
        }
        out[channel] = {sku for sku in skus if shown.get(sku) != available[sku]}
    return out
