"""Self-healing: ``serve`` reads every listed item back from each channel, continuously, and
repairs what drifted without an operator.

A value can be wrong for good with no change pending: edited in the marketplace's own cabinet,
an update the marketplace silently dropped (WB answers 204 to a body it ignored), a push that
landed out of order. ``reconcile`` finds those when someone runs it; this watch finds them on
its own, one page at a time, spread so that a pass over a channel's catalog takes about
``[reconcile] interval_s``.

* **Never in a push's way.** Where the marketplace counts reads against the push limit (WB), a
  page is paid from a small budget of the read-back's own, inside the margin the push defaults
  leave below the limit (6 requests a minute: a pass over 10,000 items in under two minutes,
  whatever the traffic), or else from tokens the pushes leave: at least half the push bucket
  stays. Other channels read from their own bucket (:mod:`.pacing`), sized inside the
  marketplace's limit beside the pushes.
* **Never backwards.** An item is drift only when nothing of its own is under way: no change
  pending or in flight before or after the read, the same accepted value before and after (a
  push that landed during the read is not drift), and not parked. A repair does not send a
  remembered value: it marks the SKU changed and forgets the accepted value (see
  :func:`~inventory_engine.operate.corrections.apply_corrections`), so the push path computes
  the ledger's number at sending time, like for any change.
* **One reader per channel**, whatever the number of ``serve`` processes and hosts: a lease in
  Redis (on the server's clock), renewed at every page; the offset of the pass is kept in Redis
  too, so a process that takes over goes on where the last one stopped.

Each drifted item is logged (``stock_drift``) and counted (``inventory_drift_total``: found,
repaired); one that differs again on the next pass is ``still_different`` and is listed as
persistent by ``reconcile`` (:func:`~inventory_engine.operate.stuck.drifting`).
"""

from __future__ import annotations

import math
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from inventory_engine.channels.base import ChannelEndpointRetiredError, ChannelError
from inventory_engine.errors import ConfigError
from inventory_engine.ledger.redis_io import redis_errors, wall_clock_ms
from inventory_engine.metrics import definitions as m
from inventory_engine.metrics.recorder import MetricsBatch
from inventory_engine.operate.common import text
from inventory_engine.operate.corrections import Correction, apply_corrections
from inventory_engine.operate.expected import ChannelTargets, SkuMarks
from inventory_engine.operate.pacing import ReadPacer, read_limits
from inventory_engine.operate.reconcile import ItemStatus, classify
from inventory_engine.operate.stuck import PERSISTENT_AFTER
from inventory_engine.service import Engine
from inventory_engine.sync.retired import RetiredEndpoints

log = structlog.get_logger()

SPARE_SHARE = 0.5
"""Share of a push bucket a read-back leaves untouched (channels whose reads cost push budget)."""
PASS_SHARE = 0.8
"""A pass takes this share of the interval: an item that drifted just after its page was read
is found within the interval with room left for its repair to land."""
MIN_PAGE_GAP_S = 1.0
"""Least time between two pages of one channel, whatever the interval and catalog size."""
RETRY_S = 5.0
"""Wait after a failed read, or while another process holds the channel."""
BUDGET_RETRY_S = 1.0
"""Longest wait before asking a busy push bucket again."""

LEASE_SCRIPT = """
-- Take or renew the read-back lease of one channel (KEYS[1]) for ARGV[1], ARGV[2] ms on the
-- server's clock; another owner's live lease is left alone. Returns 1 when held.
local owner = redis.call('GET', KEYS[1])
if owner == false or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


@dataclass
class PageReport:
    """What one step did (for logs and tests)."""

    read: int = 0
    drifted: list[str] | None = None
    skipped: str = ""
    """Why nothing was read: "lease", "budget", "empty", "error"."""


class DriftWatch:
    """The continuous read-back of one channel.

    Args:
        engine: the engine (channels, ledger, push scheduling).
        channel: a channel that can be read back.
        interval_s: about how long one pass over the channel's listed items takes.
        pacer: the read budget (default: a new one on the engine's Redis).
        owner: this process's lease token.
    """

    def __init__(
        self,
        engine: Engine,
        channel: str,
        *,
        interval_s: float,
        pacer: ReadPacer | None = None,
        owner: str | None = None,
    ) -> None:
        self.engine = engine
        self.channel = channel
        self.interval_s = interval_s
        self.targets = ChannelTargets(engine, channel)
        self.limits = read_limits(self.targets.settings.kind, self.targets.settings)
        self.pacer = pacer or ReadPacer(engine.client, account=engine.settings.account)
        self.owner = owner or f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"
        self.keys = engine.ledger.keys
        self._lease = engine.client.register_script(LEASE_SCRIPT)
        self._listed: list[tuple[str, str]] = []

    # -- one page ----------------------------------------------------------------------------

    def step(self) -> tuple[float, PageReport]:
        """Read and check the next page; returns the seconds to wait before the next one."""
        gap = self.page_gap_s()
        if not self._hold_lease(gap):
            return RETRY_S, PageReport(skipped="lease")
        offset = self._offset()
        if offset == 0 or not self._listed:
            self._listed = self.targets.listed()  # a new pass sees the catalog as it is now
        page = self._listed[offset : offset + self.limits.page_size]
        if not page:
            self._set_offset(0)
            return (gap if self._listed else self.interval_s), PageReport(skipped="empty")
        wait_ms = self._pay(len(page))
        if wait_ms > 0:
            return min(BUDGET_RETRY_S, wait_ms / 1000), PageReport(skipped="budget")
        try:
            drifted = self._check(page)
        except ChannelEndpointRetiredError as exc:
            # The read method is gone: logged at error level and counted like the push path's,
            # and the watch waits the same growing pause before it asks again.
            retired = RetiredEndpoints(self.engine.client, self.channel, keys=self.keys)
            return retired.note(exc, where="read-back") / 1000, PageReport(skipped="retired")
        except ChannelError as exc:
            if exc.billed_extra:  # WB bills a refused read as 10 requests of the shared limit
                self.pacer.charge(self.channel, self.limits, exc.billed_extra)
            log.warning("drift_read_failed", channel=self.channel, error=str(exc))
            return RETRY_S, PageReport(skipped="error")
        self._set_offset(offset + len(page) if offset + len(page) < len(self._listed) else 0)
        return gap, PageReport(read=len(page), drifted=drifted)

    def _pay(self, items: int) -> int:
        """Pay for one page: 0 when paid, else the ms until it could be."""
        if not self.limits.shared_with_push:
            return self.pacer.take_spare(self.channel, self.limits, items, keep=0.0)
        # The read-back's own share first; only then what the pushes leave spare.
        own_wait_ms = self.pacer.take_own(self.channel, self.limits)
        if own_wait_ms <= 0:
            return 0
        keep = self.limits.capacity * SPARE_SHARE
        spare_wait_ms = self.pacer.take_spare(self.channel, self.limits, items, keep=keep)
        return 0 if spare_wait_ms <= 0 else min(own_wait_ms, spare_wait_ms)

    def page_gap_s(self) -> float:
        """Seconds between pages so that a pass takes :data:`PASS_SHARE` of the interval."""
        pages = max(1, math.ceil(len(self._listed) / self.limits.page_size))
        return max(MIN_PAGE_GAP_S, self.interval_s * PASS_SHARE / pages)

    def _check(self, page: list[tuple[str, str]]) -> list[str]:
        """Read one page back; repair and record every item that drifted."""
        skus = [sku for sku, _ in page]
        before = self.targets.marks(skus)
        shown = self.engine.channel(self.channel).read_stock([item for _, item in page])
        after = self.targets.marks(skus)  # a change during the read shows here
        drifted: list[tuple[str, str, int, int | None]] = []
        for sku, item_id in page:
            actual = shown.get(item_id)
            mark = after[sku]
            if classify(actual, mark) is ItemStatus.DIFFERS and _quiet(before[sku], mark):
                drifted.append((sku, item_id, mark.expected, actual.sellable if actual else None))
        self._record(skus, drifted)
        return [sku for sku, *_ in drifted]

    def _record(self, skus: list[str], drifted: list[tuple[str, str, int, int | None]]) -> None:
        """Count, log and repair the drifted items; forget the ones that are fine now."""
        found = {sku for sku, *_ in drifted}
        key = self.keys.drift(self.channel)
        with redis_errors():
            pipe = self.engine.client.pipeline(transaction=False)
            fine = [sku for sku in skus if sku not in found]
            if fine:
                pipe.hdel(key, *fine)
            for sku, *_ in drifted:
                pipe.hincrby(key, sku, 1)
            passes = pipe.execute()[1 if fine else 0 :]
        batch = MetricsBatch()
        for (sku, _, expected, actual), count in zip(drifted, passes, strict=True):
            persistent = int(count) >= PERSISTENT_AFTER
            log.warning(
                "stock_drift",
                channel=self.channel,
                sku=sku,
                expected=expected,
                actual=actual,
                persistent=persistent,
            )
            batch.inc(m.DRIFT, self.channel, "found")
            batch.inc(m.DRIFT, self.channel, "repaired")
            if persistent:
                batch.inc(m.DRIFT, self.channel, "still_different")
        if drifted:
            self.engine.metrics.write(batch)
            apply_corrections(
                self.engine,
                [
                    Correction(self.channel, sku, item_id, expected, actual)
                    for sku, item_id, expected, actual in drifted
                ],
            )

    # -- the pass and the lease, in Redis ----------------------------------------------------

    def _hold_lease(self, gap_s: float) -> bool:
        ttl_ms = int((gap_s + RETRY_S) * 2_000) + 10_000  # outlives a slow page, not a crash
        with redis_errors():
            key = self.keys.readback_lease(self.channel)
            return bool(self._lease(keys=[key], args=[self.owner, ttl_ms]))

    def _offset(self) -> int:
        with redis_errors():
            raw = self.engine.client.hget(self.keys.readback(self.channel), "offset")
        return int(text(raw)) if raw is not None else 0

    def _set_offset(self, offset: int) -> None:
        mapping: dict[Any, Any] = {"offset": offset}  # redis-py stubs want invariant keys
        if offset == 0:
            mapping["pass_started_ms"] = wall_clock_ms()
        with redis_errors():
            self.engine.client.hset(self.keys.readback(self.channel), mapping=mapping)

    def release(self) -> None:
        """Give the lease up (at shutdown), so another process goes on at once."""
        with redis_errors():
            key = self.keys.readback_lease(self.channel)
            if self.engine.client.get(key) == self.owner.encode():
                self.engine.client.delete(key)


def _quiet(before: SkuMarks, after: SkuMarks) -> bool:
    """Nothing of the SKU's own under way around the read: no change pending before or after,
    no push accepted meanwhile, no new target, no refusal waiting for an operator."""
    return (
        before.pending_since_ms is None
        and after.pending_since_ms is None
        and before.accepted == after.accepted
        and before.expected == after.expected
        and after.parked is None
    )


class DriftWatchLoop:
    """One thread per channel that can be read back, each stepping its :class:`DriftWatch`
    until ``stop`` is set; a failure (Redis, a bug) is logged and waited out, never fatal.

    Args:
        engine: the engine.
        interval_s: ``[reconcile] interval_s``.
        stop: set it to stop the threads.
        watch: builds a channel's watch (tests shorten things here).
    """

    def __init__(
        self,
        engine: Engine,
        interval_s: float,
        stop: threading.Event,
        *,
        watch: Callable[[Engine, str, float], DriftWatch] | None = None,
    ) -> None:
        self.engine = engine
        self.stop = stop
        build = watch or (lambda e, name, s: DriftWatch(e, name, interval_s=s))
        self.watches = [
            build(engine, name, interval_s)
            for name, settings in engine.channel_settings.items()
            if _readable(settings.kind)
        ]
        self.threads: list[threading.Thread] = []

    def start(self) -> list[threading.Thread]:
        for watch in self.watches:
            thread = threading.Thread(
                target=self._run,
                args=(watch,),
                name=f"drift-{self.engine.settings.account}-{watch.channel}",
                daemon=True,
            )
            thread.start()
            self.threads.append(thread)
        if self.watches:
            log.info("drift_watch_started", channels=[w.channel for w in self.watches])
        return self.threads

    def _run(self, watch: DriftWatch) -> None:
        while not self.stop.is_set():
            try:
                delay, _ = watch.step()
            except Exception:
                log.exception("drift_watch_crashed", channel=watch.channel, retry_in_s=RETRY_S)
                delay = RETRY_S
            if self.stop.wait(delay):
                break
        try:
            watch.release()
        except Exception:  # shutting down: the lease runs out by itself
            log.debug("drift_lease_not_released", channel=watch.channel)


def _readable(kind: str) -> bool:
    try:
        read_limits(kind)
    except ConfigError:
        return False
    return True
