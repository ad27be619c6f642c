"""PushRecorder: what a stock request leaves behind besides the settle: metrics, the push log
(``explain``, ``order show``, the benchmarks read it) and one log line."""

from __future__ import annotations

from typing import Any

import redis
import structlog

from inventory_engine.channels.base import (
    ChannelError,
    ChannelRateLimitedError,
    ChannelRejectedError,
    ItemOutcome,
    ItemResult,
    StockUpdate,
)
from inventory_engine.constants import PUSH_LOG_MAX_ENTRIES
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.redis_io import redis_errors
from inventory_engine.metrics import definitions as m
from inventory_engine.metrics.recorder import MetricsBatch, MetricsRecorder
from inventory_engine.sync.push_state import Claim, ClaimedSku

log = structlog.get_logger()


class PushRecorder:
    """Records the requests of one channel."""

    def __init__(self, client: redis.Redis, name: str, *, keys: AccountKeys) -> None:
        self.client = client
        self.name = name
        self.keys = keys
        self.metrics = MetricsRecorder(client, account=keys.account)

    def request(
        self,
        claim: Claim,
        updates: list[StockUpdate],
        results: list[ItemResult],
        failed: ChannelError | None,
        duration_s: float,
        now: int,
    ) -> list[int]:
        """Metrics, the push log and one log line for a request that was sent. Returns, per
        accepted item, first unpublished change → accepted (ms)."""
        times = {c.sku: c for c in claim.skus}
        latencies: list[int] = []
        metrics = MetricsBatch()
        metrics.observe(m.PUSH_DURATION, duration_s, self.name)
        with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            if failed is not None:
                status = failure_status(failed)
                metrics.inc(m.PUSH_REQUESTS, self.name, status)
                for update in updates:
                    self._row(pipe, update, f"request_{status}", "", times[update.sku], now)
                self.metrics.write(metrics, pipe)
                pipe.execute()
                log.warning(
                    "stock_push",
                    channel=self.name,
                    items=len(updates),
                    outcome=status,
                    error=str(failed),
                )
                return latencies
            pipe.delete(self.keys.push_failures(self.name))
            metrics.inc(m.PUSH_REQUESTS, self.name, "ok")
            for item in results:
                claimed = times[item.update.sku]
                held = max(0, claimed.allowed_ms - claimed.first_ms)
                metrics.observe(m.THROTTLE_WAIT, held / 1000, self.name)
                metrics.inc(m.PUSH_ITEMS, self.name, item.outcome.value)
                self._row(pipe, item.update, item.outcome.value, item.code, claimed, now)
                if item.outcome is ItemOutcome.ACCEPTED:
                    latency = max(0, now - claimed.first_ms)
                    latencies.append(latency)
                    allowed = max(0, now - max(claimed.allowed_ms, claimed.first_ms))
                    metrics.observe(m.PROPAGATION, latency / 1000, self.name)
                    metrics.observe(m.PROPAGATION_ALLOWED, allowed / 1000, self.name)
            self.metrics.write(metrics, pipe)
            pipe.execute()
        log.info(
            "stock_push",
            channel=self.name,
            items=len(results),
            accepted=sum(1 for i in results if i.outcome is ItemOutcome.ACCEPTED),
            throttled=sum(1 for i in results if i.outcome is ItemOutcome.THROTTLED),
            rejected=sum(1 for i in results if i.outcome is ItemOutcome.REJECTED),
            outcome="ok",
            duration_ms=round(duration_s * 1000, 1),
        )
        return latencies

    def _row(
        self,
        pipe: Any,
        update: StockUpdate,
        outcome: str,
        code: str,
        claimed: ClaimedSku,
        now: int,
    ) -> None:
        """One row of the push log (``explain``, ``order show``): what went where, and why;
        ``since`` the change it carries, ``allowed`` when the channel's limits let it go."""
        pipe.xadd(
            self.keys.pushes,
            {
                "ms": now,
                "channel": self.name,
                "sku": update.sku,
                "quantity": update.quantity,
                "outcome": outcome,
                "code": code,
                "since": claimed.first_ms,
                "allowed": max(claimed.allowed_ms, claimed.first_ms),
            },
            maxlen=PUSH_LOG_MAX_ENTRIES,
            approximate=True,
        )


def failure_status(exc: ChannelError) -> str:
    """The ``status`` label of a failed request."""
    if isinstance(exc, ChannelRateLimitedError):
        return "rate_limited"
    if isinstance(exc, ChannelRejectedError):
        return "rejected"
    return "unavailable"
