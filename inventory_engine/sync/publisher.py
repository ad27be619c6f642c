"""ChannelPublisher: send one channel the latest values of the SKUs that changed.

Level-triggered: the ledger marks a SKU for each channel in the same script that changes it; a
publish round (:meth:`ChannelPublisher.publish_once`) pays the channel's token bucket, claims
the marked SKUs the channel may receive now (exclusively: at most one value per SKU is in
flight, see ``push_state.py``), computes each value at that moment (latest wins, so many
changes coalesce into one push), sends decreases before increases in one request of the
channel's maximum size, and settles what the channel said, for its own claim only:

* accepted   -> remembered as the channel's value; the item window (Ozon's 30 s) starts;
* throttled  -> marked again, due when the channel's item window opens;
* retry      -> marked again after a second (a passing per-item problem);
* rejected   -> parked with the channel's reason, visible, not retried in a loop;
* rate limited / refused request -> marked again, the channel paused (the hint, or back-off
  from a second);
* unavailable (5xx, timeout) -> the value may or may not have landed: marked again after a
  back-off from a second, the remembered value forgotten so the latest is sent whatever it is;
* retired endpoint (410, a 404 naming no missing item) -> logged at error level, counted, the
  channel paused for a growing time (``retired.py``): the marketplace retired the API version.

The limits are the channel's effective ones (``limits.effective_limits``: the kind's defaults
with the ``[[channels]] limits`` table applied).

Several rounds of one channel may run at once (threads, processes, hosts), each on its own
SKUs. Nothing claimed is lost: every claimed SKU is settled, or its lease runs out and it is
marked again.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
import structlog

from inventory_engine.channels.base import (
    ChannelClient,
    ChannelEndpointRetiredError,
    ChannelError,
    ChannelRateLimitedError,
    ChannelRejectedError,
    ItemOutcome,
    ItemResult,
    PushResult,
    StockUpdate,
)
from inventory_engine.config import ChannelSettings
from inventory_engine.constants import DEFAULT_ACCOUNT
from inventory_engine.errors import InventoryError
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.redis_io import redis_errors, wall_clock_ms
from inventory_engine.ledger.results import text
from inventory_engine.ledger.scripts import lua_source
from inventory_engine.sync.limits import ChannelLimits, effective_limits
from inventory_engine.sync.push_record import PushRecorder
from inventory_engine.sync.push_state import Claim, PushState, Settle, SettleItem
from inventory_engine.sync.retired import RetiredEndpoints
from inventory_engine.sync.targets import TargetValues
from inventory_engine.timing import (
    RETRY_ITEM_DELAY_MS,
    claim_lease_ms,
    failure_backoff_ms,
    item_window_ms,
)

log = structlog.get_logger()

REFUSED_PAUSE_MS = 60_000
"""Pause after a refused request (bad credentials, bad URL): an operator has to look."""


@dataclass
class PublishReport:
    """What one or more rounds did. ``next_due_ms`` (this process's clock): when marked SKUs
    become sendable (None: nothing is marked; now or earlier: call again at once)."""

    claimed: int = 0
    sent: int = 0
    accepted: int = 0
    unchanged: int = 0
    throttled: int = 0
    retried: int = 0
    rejected: int = 0
    not_listed: int = 0
    uncounted: int = 0
    """SKUs left unpublished because nobody has counted them yet."""
    requests: int = 0
    stale: int = 0
    busy: bool = False
    """The channel's request slots were all taken (by other senders): nothing was claimed."""
    next_due_ms: int | None = None
    latencies_ms: list[int] = field(default_factory=list)
    """For each accepted item: first unpublished change → accepted."""

    def add(self, other: PublishReport) -> None:
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.latencies_ms.extend(other.latencies_ms)
        self.next_due_ms = other.next_due_ms
        self.busy = other.busy


COUNTS = (
    "claimed",
    "sent",
    "accepted",
    "unchanged",
    "throttled",
    "retried",
    "rejected",
    "not_listed",
    "uncounted",
    "requests",
    "stale",
)

_ITEM_SETTLE = {
    ItemOutcome.ACCEPTED: Settle.ACCEPTED,
    ItemOutcome.REJECTED: Settle.REJECTED,
    ItemOutcome.THROTTLED: Settle.THROTTLED,
    ItemOutcome.RETRY: Settle.RETRY,
}


class ChannelPublisher:
    """Pushes one configured channel. Safe to run in several threads, processes and hosts at
    once: claims are exclusive and the token bucket lives in Redis, on the server's clock."""

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
        self.limits: ChannelLimits = limits or effective_limits(settings)
        # A forced batch above what the client can send is cut to the client's maximum.
        self.batch_size = max(1, min(self.limits.max_batch, channel.max_batch))
        self.targets = TargetValues(
            client,
            settings,
            self.limits,
            channel.catalog_field,
            keys=self.keys,
            clock=lambda: self.clock(),
        )
        self.share = self.targets.share
        self.window_ms = item_window_ms(self.limits.item_window_s)
        self.state = PushState(
            client,
            self.name,
            keys=self.keys,
            window_ms=self.window_ms,
            lease_ms=claim_lease_ms(settings.timeout_s),
            concurrency=self.limits.concurrency,
        )
        self.recorder = PushRecorder(client, self.name, keys=self.keys)
        self.retired = RetiredEndpoints(client, self.name, keys=self.keys)
        self._retired_endpoints: set[str] = set()
        """Endpoints this process saw retired: the next good answer resets their back-off."""
        self._take = client.register_script(lua_source("inventory_engine.sync", "take_tokens"))

    # -- one round -----------------------------------------------------------------------------

    def publish_once(self) -> PublishReport:
        """Pay for a request, claim what may be sent now, send it, settle the answers."""
        report = PublishReport()
        per_request = not self.limits.cost_per_item
        if per_request:
            wait_ms = self._take_tokens(1)
            if wait_ms:
                report.next_due_ms = self.clock() + wait_ms
                return report
        claim = self.state.claim(self.batch_size)
        report.claimed = len(claim.skus)
        report.busy = claim.slots_full
        report.next_due_ms = self._local(claim.next_due_ms, claim.now_ms)
        if not claim.skus:
            if per_request:
                self._take_tokens(1, "refund")
            return report
        settles: list[SettleItem] = []
        try:
            self._round(claim, per_request, settles, report)
        except BaseException:
            # Whatever broke (Redis, a bug): what was claimed and not answered goes back now
            # rather than when the lease runs out; what was answered keeps its answer.
            done = {item.sku for item in settles}
            settles += [
                SettleItem(c.sku, Settle.AMBIGUOUS, delay_ms=RETRY_ITEM_DELAY_MS)
                for c in claim.skus
                if c.sku not in done
            ]
            with contextlib.suppress(InventoryError):
                self.state.settle(claim.token, settles)
            raise
        return report

    def _round(
        self,
        claim: Claim,
        per_request: bool,
        settles: list[SettleItem],
        report: PublishReport,
    ) -> None:
        updates = self.values_to_send(claim, settles, report)
        if not updates and per_request:
            self._take_tokens(1, "refund")
        if updates and not per_request:
            wait_ms = self._take_tokens(len(updates))
            if wait_ms:  # not sent: marked again, due when the bucket has refilled
                settles += [SettleItem(u.sku, Settle.RETRY, delay_ms=wait_ms) for u in updates]
                updates = []
        results: list[ItemResult] = []
        failed: ChannelError | None = None
        duration_s = 0.0
        if updates:
            results, duration_s, failed = self._send(updates, settles, report)
        pause_ms = max(item.delay_ms for item in settles) if failed is not None else 0
        settled = self.state.settle(claim.token, settles, pause_ms=pause_ms)
        report.stale = settled.stale
        report.next_due_ms = self._local(settled.next_due_ms, settled.now_ms)
        if updates:
            report.latencies_ms += self.recorder.request(
                claim, updates, results, failed, duration_s, settled.now_ms
            )

    def publish_until_idle(
        self, *, max_rounds: int = 100, budget_s: float | None = None
    ) -> PublishReport:
        """Rounds until nothing is sendable now (or the time budget is spent); the totals."""
        total = PublishReport()
        deadline = time.monotonic() + budget_s if budget_s is not None else None
        for _ in range(max_rounds):
            report = self.publish_once()
            total.add(report)
            due = report.next_due_ms
            if due is None or due > self.clock():
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
        return total

    def _local(self, due_ms: int | None, server_now_ms: int) -> int | None:
        """A server due time on this process's clock (wake-ups are scheduled locally)."""
        if due_ms is None:
            return None
        return self.clock() + max(0, due_ms - server_now_ms)

    # -- steps ---------------------------------------------------------------------------------

    def values_to_send(
        self, claim: Claim, settles: list[SettleItem], report: PublishReport
    ) -> list[StockUpdate]:
        """Values to send now, decreases first; unchanged and unlisted SKUs go to ``settles``."""
        skus = [c.sku for c in claim.skus]
        targets, uncounted = self.targets.values_and_uncounted(skus, store_rates=True)
        with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.hmget(self.keys.accepted(self.name), skus)
            pipe.hmget(self.keys.accepted_item(self.name), skus)
            pipe.hmget(self.keys.catalog, skus)
            accepted_raw, accepted_ids, entries = pipe.execute()
        item_ids = {
            sku: item
            for sku, entry in zip(skus, entries, strict=True)
            if (item := self.targets.item_id(sku, entry)) is not None
        }
        # A value accepted for another marketplace id (the SKU was re-listed) says nothing
        # about what the new listing shows: it is sent.
        accepted = {
            sku: int(raw)
            for sku, raw, item in zip(skus, accepted_raw, accepted_ids, strict=True)
            if raw is not None and (item is None or text(item) == item_ids.get(sku))
        }
        updates: list[tuple[int, StockUpdate]] = []
        for sku in skus:
            item_id = item_ids.get(sku)
            if item_id is None:
                report.not_listed += 1  # not sold on this channel: nothing to tell it
                settles.append(SettleItem(sku, Settle.NOT_LISTED))
                continue
            if sku in uncounted:
                # Never counted: its 0 means "unknown", and on a live listing it would stop
                # sales. Published once a count (or an order) arrives and marks it again.
                report.uncounted += 1
                settles.append(SettleItem(sku, Settle.NOT_LISTED))
                continue
            value = targets[sku]
            if accepted.get(sku) == value:
                report.unchanged += 1  # the channel already shows it: coalesced away
                settles.append(SettleItem(sku, Settle.UNCHANGED))
                continue
            # Decreases first: a falling number is what prevents an oversell.
            rank = 0 if value < accepted.get(sku, value + 1) else 1
            updates.append((rank, StockUpdate(sku, item_id, value)))
        updates.sort(key=lambda pair: pair[0])
        return [update for _, update in updates]

    def target_values(self, skus: Sequence[str], *, store_rates: bool = False) -> dict[str, int]:
        """What the channel should show for each SKU now (see ``targets.py``)."""
        return self.targets.values(skus, store_rates=store_rates)

    def _take_tokens(self, cost: int, mode: str = "") -> int:
        """Take ``cost`` from the channel's bucket: 0, or the ms until it could be taken.
        ``mode``: "charge" (into debt) or "refund" (give back)."""
        limits = self.limits
        args: list[Any] = [limits.bucket_capacity, limits.bucket_rate_per_s / 1000, cost]
        if mode:
            args.append(mode)
        with redis_errors():
            wait = self._take(keys=[self.keys.bucket(self.name), self.keys.clock_offset], args=args)
        return int(wait)

    def _send(
        self, updates: list[StockUpdate], settles: list[SettleItem], report: PublishReport
    ) -> tuple[list[ItemResult], float, ChannelError | None]:
        """One request; appends each update's settle item. Returns the per-item results, the
        request's duration and the whole-request failure (if it failed)."""
        report.requests += 1
        report.sent += len(updates)
        started = time.perf_counter()
        try:
            result = self.channel.push_stock(updates)
        except ChannelError as exc:
            if exc.billed_extra:  # WB bills a refused request as 10
                self._take_tokens(exc.billed_extra, "charge")
            settles += self.failure_items(exc, updates)
            return [], time.perf_counter() - started, exc
        duration_s = time.perf_counter() - started
        if self._retired_endpoints:
            for endpoint in self._retired_endpoints:
                self.retired.clear(endpoint)
            self._retired_endpoints.clear()
        if result.billed_extra:
            self._take_tokens(result.billed_extra, "charge")
        items = self.answer_items(updates, result, settles, report)
        return items, duration_s, None

    def answer_items(
        self,
        updates: list[StockUpdate],
        result: PushResult,
        settles: list[SettleItem],
        report: PublishReport,
    ) -> list[ItemResult]:
        """The channel's answer for each update (appended to ``settles``); an update the answer
        skipped is unclear and sent again."""
        answered = {item.update.sku for item in result.items}
        items = list(result.items) + [  # an update the answer skipped: unclear, send again
            ItemResult(u, ItemOutcome.RETRY, code="NOT_IN_ANSWER")
            for u in updates
            if u.sku not in answered
        ]
        for item in items:
            outcome = _ITEM_SETTLE[item.outcome]
            delay = 0
            parked = ""
            if outcome is Settle.ACCEPTED:
                report.accepted += 1
            elif outcome is Settle.REJECTED:
                report.rejected += 1
                parked = _parked(item.code, item.message, item.update, self.clock())
                log.warning(
                    "stock_push_item_rejected",
                    channel=self.name,
                    sku=item.update.sku,
                    code=item.code,
                    quantity=item.update.quantity,
                )
            elif outcome is Settle.THROTTLED:
                report.throttled += 1
                delay = int((item.retry_after_s or 0) * 1000) or (self.window_ms or 1_000)
            else:
                report.retried += 1
                delay = RETRY_ITEM_DELAY_MS
            settles.append(
                SettleItem(
                    item.update.sku,
                    outcome,
                    item.update.quantity,
                    delay,
                    parked,
                    item.update.item_id,
                )
            )
        return items

    def failure_items(self, exc: ChannelError, updates: list[StockUpdate]) -> list[SettleItem]:
        """The items of a failed request, marked again after the pause the channel now takes
        (each item's ``delay_ms``; the settle sets the pause on the server's clock): the
        marketplace's hint, or a back-off from a second. A failure that may have landed (5xx,
        timeout, an unreadable answer) is ambiguous: the remembered value is forgotten."""
        outcome = Settle.RETRY
        with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.incr(self.keys.push_failures(self.name))
            pipe.pexpire(self.keys.push_failures(self.name), 600_000)
            failures = int(pipe.execute()[0])
        if isinstance(exc, ChannelRateLimitedError):
            pause = int(exc.retry_after_s * 1000) if exc.hinted else failure_backoff_ms(failures)
        elif isinstance(exc, ChannelEndpointRetiredError):
            pause = self.retired.note(exc)
            self._retired_endpoints.add(exc.endpoint)
        elif isinstance(exc, ChannelRejectedError):
            pause = REFUSED_PAUSE_MS
        else:
            outcome = Settle.AMBIGUOUS
            pause = failure_backoff_ms(failures)
        pause = max(pause, 1)
        return [SettleItem(u.sku, outcome, u.quantity, pause) for u in updates]


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
