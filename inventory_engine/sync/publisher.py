"""ChannelPublisher: send one channel the latest values of the SKUs that changed.

Level-triggered: the ledger marks a SKU dirty for each channel in the same script that changes
it; a publish round claims the marked SKUs the channel may receive now, computes each value at
that moment (latest wins, so many changes coalesce into one push), sends decreases before
increases in batches of the channel's maximum, and records what the channel said:

* accepted   -> remembered as the channel's value; Ozon's item window starts;
* throttled  -> marked again, not before the channel's retry time;
* retry      -> marked again (a passing per-item problem);
* rejected   -> parked with the channel's reason, visible, not retried in a loop;
* rate limited / unavailable / refused request -> everything marked again, the channel paused.

Nothing claimed is lost: every claimed SKU is either delivered, parked or marked again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from importlib.resources import files
from typing import Any

import redis
import structlog
from redis.typing import EncodableT, FieldT

from inventory_engine.channels.base import (
    ChannelClient,
    ChannelError,
    ChannelRateLimitedError,
    ChannelRejectedError,
    ItemOutcome,
    StockUpdate,
)
from inventory_engine.config import ChannelSettings
from inventory_engine.constants import DEFAULT_ACCOUNT, PUSH_LOG_MAX_ENTRIES
from inventory_engine.domain.allocation import ChannelShare, published_quantity
from inventory_engine.domain.sales_rate import SalesRate, dynamic_buffer
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.ledger import redis_errors, wall_clock_ms
from inventory_engine.ledger.reads import LedgerReader
from inventory_engine.metrics import definitions as m
from inventory_engine.metrics.recorder import MetricsBatch, MetricsRecorder
from inventory_engine.sync.limits import ITEM_WINDOW_MARGIN_S, LIMITS, ChannelLimits

log = structlog.get_logger()

SCAN_FACTOR = 4
"""A round looks at up to this many times a batch of marked SKUs to find ones it may send."""
RETRY_ITEM_DELAY_MS = 1_000
"""A per-item RETRY waits this long, so a stuck item cannot spin the worker."""
UNAVAILABLE_PAUSE_MS = (1_000, 2_000, 5_000, 10_000, 30_000, 60_000)
"""Back-off after consecutive 5xx/timeouts of a channel."""
CLAIM_LEASE_MS = 120_000
"""A claimed SKU not settled within this time (its push worker died) is marked again. Longer
than any round: a request times out after seconds."""
REFUSED_PAUSE_MS = 60_000
"""Pause after a refused request (bad credentials, bad URL): an operator has to look."""


def _lua(name: str) -> str:
    return files("inventory_engine.sync").joinpath("lua", f"{name}.lua").read_text("utf-8")


@dataclass
class PublishReport:
    """What one round did. ``next_due_ms``: when marked SKUs become sendable (None: nothing
    waits; now or earlier: call again at once)."""

    claimed: int = 0
    sent: int = 0
    accepted: int = 0
    unchanged: int = 0
    throttled: int = 0
    retried: int = 0
    rejected: int = 0
    not_listed: int = 0
    requests: int = 0
    next_due_ms: int | None = None
    latencies_ms: list[int] = field(default_factory=list)
    """For each accepted item: first unpublished change → accepted."""


COUNTS = (
    "claimed",
    "sent",
    "accepted",
    "unchanged",
    "throttled",
    "retried",
    "rejected",
    "not_listed",
    "requests",
)


class ChannelPublisher:
    """Pushes one configured channel. Safe to run in several processes at once: claiming is
    atomic and the token bucket lives in Redis."""

    def __init__(
        self,
        client: redis.Redis,
        settings: ChannelSettings,
        channel: ChannelClient,
        *,
        account: str = DEFAULT_ACCOUNT,
        clock: Callable[[], int] = wall_clock_ms,
        limits: ChannelLimits | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.channel = channel
        self.name = settings.name
        self.keys = AccountKeys(account)
        self.clock = clock
        self.limits: ChannelLimits = limits or LIMITS[settings.kind]
        self.share = ChannelShare(
            percent=settings.percent,
            buffer=settings.buffer,
            max=settings.max,
            ceiling=self.limits.ceiling,
        )
        self.reader = LedgerReader(client, account=account)
        self.metrics = MetricsRecorder(client, account=account)
        self._claim = client.register_script(_lua("claim_dirty"))
        self._take = client.register_script(_lua("take_tokens"))

    # -- one round -----------------------------------------------------------------------------

    def publish_once(self) -> PublishReport:
        """Claim what may be sent now, send it, record the answers."""
        report = PublishReport()
        now = self.clock()
        with redis_errors():
            paused = self.client.get(self.keys.paused(self.name))
        if paused is not None and int(paused) > now:
            report.next_due_ms = int(paused)
            return report
        claimed, held, next_due = self._claim_due(now)
        report.claimed = len(claimed)
        report.next_due_ms = next_due
        if not claimed:
            return report
        updates = self._updates(claimed, report)
        if updates:
            wait_ms = self._take_tokens(len(updates), now)
            if wait_ms:
                self._mark_again(claimed)
                self._release(claimed)
                report.next_due_ms = now + wait_ms
                return report
            self._send(updates, claimed, held, report)
        self._release(claimed)
        if report.next_due_ms is None and self._has_marks():
            report.next_due_ms = self.clock()
        return report

    def publish_until_idle(self, *, max_rounds: int = 100) -> PublishReport:
        """Rounds until nothing is sendable now; the totals of all rounds."""
        total = PublishReport()
        for _ in range(max_rounds):
            report = self.publish_once()
            for name in COUNTS:
                setattr(total, name, getattr(total, name) + getattr(report, name))
            total.latencies_ms.extend(report.latencies_ms)
            total.next_due_ms = report.next_due_ms
            if report.claimed == 0 or (
                report.next_due_ms is not None and report.next_due_ms > self.clock()
            ):
                break
        return total

    # -- steps ---------------------------------------------------------------------------------

    def _claim_due(self, now: int) -> tuple[dict[str, int], set[str], int | None]:
        """Claimed SKUs with the time of their first unpublished change, the SKUs among them
        that the channel's per-item window held back, and when the next held one is due."""
        batch = self.limits.max_batch
        with redis_errors():
            next_due, flat = self._claim(
                keys=[
                    self.keys.dirty(self.name),
                    self.keys.not_before(self.name),
                    self.keys.inflight(self.name),
                    self.keys.inflight_since(self.name),
                ],
                args=[now, batch, batch * SCAN_FACTOR, CLAIM_LEASE_MS],
            )
        claimed: dict[str, int] = {}
        held: set[str] = set()
        for i in range(0, len(flat), 3):
            sku, since = _text(flat[i]), int(float(flat[i + 1]))
            claimed[sku] = since
            if int(flat[i + 2]) > since:
                held.add(sku)
        return claimed, held, (int(next_due) if int(next_due) >= 0 else None)

    def _updates(self, claimed: dict[str, int], report: PublishReport) -> list[StockUpdate]:
        """Values to send now, decreases first; unchanged and unlisted SKUs are settled here."""
        skus = list(claimed)
        targets = self.target_values(skus, store_rates=True)
        item_ids = self._item_ids(skus)
        with redis_errors():
            accepted_raw = self.client.hmget(self.keys.accepted(self.name), skus)
        accepted = {
            sku: int(raw) for sku, raw in zip(skus, accepted_raw, strict=True) if raw is not None
        }
        updates: list[tuple[int, StockUpdate]] = []
        for sku in skus:
            item_id = item_ids.get(sku)
            if item_id is None:
                report.not_listed += 1  # not sold on this channel: nothing to tell it
                continue
            value = targets[sku]
            if accepted.get(sku) == value:
                report.unchanged += 1  # the channel already shows it: coalesced away
                continue
            # Decreases first: a falling number is what prevents an oversell.
            rank = 0 if value < accepted.get(sku, value + 1) else 1
            updates.append((rank, StockUpdate(sku, item_id, value)))
        updates.sort(key=lambda pair: pair[0])
        return [update for _, update in updates]

    def target_values(self, skus: Sequence[str], *, store_rates: bool = False) -> dict[str, int]:
        """What the channel should show for each SKU now: available units at its location,
        its share (percent, buffer, max, the marketplace's ceiling) and the dynamic buffer.

        The push path stores the sales rates it observes (``store_rates``); a reader
        (``reconcile``, ``explain``) computes the same values without side effects.
        """
        skus = list(dict.fromkeys(skus))
        if not skus:
            return {}
        available = self.reader.available_many(skus, self.settings.location)
        held = (
            self._dynamic_buffers(available, store=store_rates)
            if self.settings.dynamic_buffer
            else {}
        )
        values: dict[str, int] = {}
        for sku in skus:
            share = self.share
            if held.get(sku):
                share = replace(share, buffer=share.buffer + held[sku])
            values[sku] = published_quantity(available[sku], share)
        return values

    def _dynamic_buffers(self, available: dict[str, int], *, store: bool) -> dict[str, int]:
        """Per SKU, the sales expected while this channel cannot be told (rate × window);
        with ``store``, the rates are updated from the available counts seen now."""
        window_s = self.settings.dynamic_window_s or self.limits.item_window_s or 60.0
        now = self.clock()
        skus = list(available)
        with redis_errors():
            raw = self.client.hmget(self.keys.sales_rate(self.name), skus)
        held: dict[str, int] = {}
        rates: dict[FieldT, EncodableT] = {}
        for sku, text in zip(skus, raw, strict=True):
            previous = (
                SalesRate.decode(_text(text)) if text else SalesRate(0.0, now, available[sku])
            )
            rate = previous.observe(available[sku], now)
            rates[sku] = rate.encode()
            held[sku] = dynamic_buffer(rate, window_s, now)
        if store:
            with redis_errors():
                self.client.hset(self.keys.sales_rate(self.name), mapping=rates)
        return held

    def _item_ids(self, skus: Sequence[str]) -> dict[str, str]:
        field_name = self.channel.catalog_field
        if field_name == "sku":
            return {sku: sku for sku in skus}
        with redis_errors():
            raw = self.client.hmget(self.keys.catalog, list(skus))
        ids: dict[str, str] = {}
        for sku, entry in zip(skus, raw, strict=True):
            if entry is None:
                continue
            value = json.loads(entry).get(field_name)
            if value not in (None, ""):
                ids[sku] = str(value)
        return ids

    def _take_tokens(self, items: int, now: int) -> int:
        limits = self.limits
        cost = items if limits.cost_per_item else 1
        with redis_errors():
            wait = self._take(
                keys=[self.keys.bucket(self.name)],
                args=[now, limits.bucket_capacity, limits.bucket_rate_per_s / 1000, cost],
            )
        return int(wait)

    def _send(
        self,
        updates: list[StockUpdate],
        claimed: dict[str, int],
        held: set[str],
        report: PublishReport,
    ) -> None:
        report.requests += 1
        report.sent += len(updates)
        sent_ms = self.clock()
        started = time.perf_counter()
        metrics = MetricsBatch()
        for update in updates:
            # Held by Ozon's window: the whole time since the change was spent waiting for it.
            waited = sent_ms - claimed[update.sku] if update.sku in held else 0
            metrics.observe(m.THROTTLE_WAIT, max(0, waited) / 1000, self.name)
        try:
            result = self.channel.push_stock(updates)
        except ChannelError as exc:
            metrics.observe(m.PUSH_DURATION, time.perf_counter() - started, self.name)
            self._request_failed(exc, claimed, updates, metrics, report)
            return
        duration_s = time.perf_counter() - started
        if result.billed_extra:
            self._charge(result.billed_extra)
        metrics.observe(m.PUSH_DURATION, duration_s, self.name)
        metrics.inc(m.PUSH_REQUESTS, self.name, "ok")
        now = self.clock()
        window_ms = self._window_ms()
        with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.delete(self.keys.push_failures(self.name))
            for item in result.items:
                sku, since = item.update.sku, claimed[item.update.sku]
                metrics.inc(m.PUSH_ITEMS, self.name, item.outcome.value)
                self._log_push(pipe, item.update, item.outcome.value, item.code, since, now)
                if item.outcome is ItemOutcome.ACCEPTED:
                    report.accepted += 1
                    report.latencies_ms.append(max(0, now - since))
                    metrics.observe(m.PROPAGATION, max(0, now - since) / 1000, self.name)
                    pipe.hset(self.keys.accepted(self.name), sku, item.update.quantity)
                    pipe.hdel(self.keys.parked(self.name), sku)
                    if window_ms is not None:
                        pipe.hset(self.keys.not_before(self.name), sku, now + window_ms)
                elif item.outcome is ItemOutcome.REJECTED:
                    report.rejected += 1
                    pipe.hset(
                        self.keys.parked(self.name),
                        sku,
                        _parked(item.code, item.message, item.update, now),
                    )
                    log.warning(
                        "stock_push_item_rejected",
                        channel=self.name,
                        sku=sku,
                        code=item.code,
                        quantity=item.update.quantity,
                    )
                else:
                    delay = (
                        int((item.retry_after_s or 0) * 1000)
                        if item.outcome is ItemOutcome.THROTTLED
                        else RETRY_ITEM_DELAY_MS
                    )
                    if item.outcome is ItemOutcome.THROTTLED:
                        report.throttled += 1
                    else:
                        report.retried += 1
                    pipe.zadd(self.keys.dirty(self.name), {sku: since}, lt=True)
                    pipe.hset(self.keys.not_before(self.name), sku, now + max(delay, 1))
            self.metrics.write(metrics, pipe)
            pipe.execute()
        log.info(
            "stock_push",
            channel=self.name,
            items=len(updates),
            accepted=sum(1 for i in result.items if i.outcome is ItemOutcome.ACCEPTED),
            throttled=sum(1 for i in result.items if i.outcome is ItemOutcome.THROTTLED),
            rejected=sum(1 for i in result.items if i.outcome is ItemOutcome.REJECTED),
            outcome="ok",
            duration_ms=round(duration_s * 1000, 1),
        )

    def _log_push(
        self, pipe: Any, update: StockUpdate, outcome: str, code: str, since: int, now: int
    ) -> None:
        """One row of the push log (``explain``, ``order show``): what went where, and why."""
        pipe.xadd(
            self.keys.pushes,
            {
                "ms": now,
                "channel": self.name,
                "sku": update.sku,
                "quantity": update.quantity,
                "outcome": outcome,
                "code": code,
                "since": since,
            },
            maxlen=PUSH_LOG_MAX_ENTRIES,
            approximate=True,
        )

    def _request_failed(
        self,
        exc: ChannelError,
        claimed: dict[str, int],
        updates: list[StockUpdate],
        metrics: MetricsBatch,
        report: PublishReport,
    ) -> None:
        now = self.clock()
        if isinstance(exc, ChannelRateLimitedError):
            pause = int(exc.retry_after_s * 1000)
            status = "rate_limited"
        elif isinstance(exc, ChannelRejectedError):
            pause = REFUSED_PAUSE_MS
            status = "rejected"
        else:
            status = "unavailable"
            with redis_errors():
                failures = int(self.client.incr(self.keys.push_failures(self.name)))
            pause = UNAVAILABLE_PAUSE_MS[min(failures, len(UNAVAILABLE_PAUSE_MS)) - 1]
        metrics.inc(m.PUSH_REQUESTS, self.name, status)
        window_ms = self._window_ms()
        with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            # LT: a change marked meanwhile keeps the earlier (true) first-change time.
            pipe.zadd(self.keys.dirty(self.name), claimed, lt=True)
            if status == "unavailable" and window_ms is not None:
                # A timeout does not say the values were not taken: if they were, sending them
                # again inside the item window is what Ozon refuses. Wait for the window.
                sent: dict[FieldT, EncodableT] = dict.fromkeys(
                    (u.sku for u in updates), now + window_ms
                )
                pipe.hset(self.keys.not_before(self.name), mapping=sent)
            pipe.set(self.keys.paused(self.name), now + pause, px=pause + 1_000)
            for update in updates:
                self._log_push(pipe, update, f"request_{status}", "", claimed[update.sku], now)
            self.metrics.write(metrics, pipe)
            pipe.execute()
        report.next_due_ms = now + pause
        log.warning(
            "stock_push",
            channel=self.name,
            items=len(updates),
            outcome=status,
            error=str(exc),
            pause_ms=pause,
        )

    def _window_ms(self) -> int | None:
        """The channel's per-item window with the safety margin (None: the channel has none)."""
        if not self.limits.item_window_s:
            return None
        return int((self.limits.item_window_s + ITEM_WINDOW_MARGIN_S) * 1000)

    def _mark_again(self, claimed: dict[str, int]) -> None:
        with redis_errors():
            # LT: a change marked meanwhile keeps the earlier (true) first-change time.
            self.client.zadd(self.keys.dirty(self.name), claimed, lt=True)

    def _charge(self, requests: int) -> None:
        """Take what the marketplace billed beyond the request from the shared bucket, into
        debt if need be: the following sends wait until it has refilled."""
        limits = self.limits
        with redis_errors():
            self._take(
                keys=[self.keys.bucket(self.name)],
                args=[
                    self.clock(),
                    limits.bucket_capacity,
                    limits.bucket_rate_per_s / 1000,
                    requests,
                    "charge",
                ],
            )

    def _release(self, claimed: dict[str, int]) -> None:
        """The claimed SKUs are settled (delivered, parked or marked again): end their lease."""
        skus = list(claimed)
        with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.zrem(self.keys.inflight(self.name), *skus)
            pipe.hdel(self.keys.inflight_since(self.name), *skus)
            pipe.execute()

    def _has_marks(self) -> bool:
        with redis_errors():
            return bool(self.client.zcard(self.keys.dirty(self.name)))


def _parked(code: str, message: str, update: StockUpdate, now_ms: int) -> str:
    return json.dumps(
        {
            "code": code,
            "message": message,
            "quantity": update.quantity,
            "item_id": update.item_id,
            "ms": now_ms,
        },
        ensure_ascii=False,
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
