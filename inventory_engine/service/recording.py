"""What applying an order event leaves behind besides the ledger's own journal: a log line,
the events counter, the order's log entry, and for an oversell an error and an announcement."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import redis
import structlog
from rq import Queue, Retry

from inventory_engine.config import AlertSettings
from inventory_engine.domain.models import OrderAction, OrderLine
from inventory_engine.ledger.activity import ActivityLog, OrderLogEntry
from inventory_engine.ledger.redis_io import wall_clock_ms
from inventory_engine.ledger.results import OrderOutcome
from inventory_engine.metrics import definitions as m
from inventory_engine.metrics.recorder import MetricsBatch, MetricsRecorder
from inventory_engine.service.serialization import event_outcome

log = structlog.get_logger()

ANNOUNCE_RETRY = Retry(max=5, interval=[5, 15, 60, 300, 900])
"""An oversold announcement whose receiver is down is sent again, for about 20 minutes."""


class EventRecorder:
    """Logs, counts and journals applied events; announces oversells.

    Args:
        client: the ledger's Redis (metrics and order logs live there).
        metrics: the metrics recorder.
        activity: the orders' logs.
        announcements: the queue of oversold announcements.
        alerts: the ``[alerts]`` settings, read at each oversell (the engine's settings may be
            replaced): with no ``oversold_url`` the error log line is the announcement.
    """

    def __init__(
        self,
        client: redis.Redis,
        metrics: MetricsRecorder,
        activity: ActivityLog,
        announcements: Queue,
        alerts: Callable[[], AlertSettings],
    ) -> None:
        self.client = client
        self.metrics = metrics
        self.activity = activity
        self.announcements = announcements
        self.alerts = alerts

    def recorded(
        self,
        channel: str,
        order_id: str,
        action: OrderAction,
        status: str,
        outcome: OrderOutcome,
        source: str,
        started: float | None = None,
        lines: Sequence[OrderLine] = (),
        *,
        pipe: Any | None = None,
    ) -> None:
        """Log line, metrics and the order's log entry for one applied event (written with
        ``pipe`` when given, else at once)."""
        result = event_outcome(outcome)
        log.info(
            "order_event",
            channel=channel,
            order_id=order_id,
            action=action.value,
            outcome=result,
            skus=len(lines),
            state=outcome.state.value if outcome.state else None,
            oversold_units=outcome.oversold_units,
            duration_ms=round((time.perf_counter() - started) * 1000, 1) if started else None,
        )
        batch = MetricsBatch()
        batch.inc(m.EVENTS, channel, action.value, result)
        own = pipe is None
        pipe = self.client.pipeline(transaction=False) if pipe is None else pipe
        self.metrics.write(batch, pipe)
        entry = OrderLogEntry(
            ms=wall_clock_ms(),
            stage="applied",
            source=source,
            action=action.value,
            status=status,
            outcome=result,
            detail=f"{outcome.oversold_units} unit(s) oversold" if outcome.oversold_units else "",
        )
        self.activity.add(pipe, channel, order_id, [entry])
        if own:
            pipe.execute()

    def count(self, channel: str, action: str, outcome: str) -> None:
        """Count an event that leaves no order log (storefront holds)."""
        batch = MetricsBatch()
        batch.inc(m.EVENTS, channel, action, outcome)
        self.metrics.write(batch)

    def announce_oversold(self, channel: str, order_id: str, units: int) -> None:
        """An oversold marketplace order needs a person now (Ozon: cancel with reason 352
        before "prepare"): an error log line at once, and the notification URL if set."""
        log.error(
            "order_oversold",
            channel=channel,
            order_id=order_id,
            units=units,
            hint="cancel it on the marketplace before it is prepared, or find the units",
        )
        if self.alerts().oversold_url:
            self.announcements.enqueue(
                "workers.jobs.announce_oversold",
                channel,
                order_id,
                account=self.activity.keys.account,
                retry=ANNOUNCE_RETRY,
                job_timeout=60,
            )
