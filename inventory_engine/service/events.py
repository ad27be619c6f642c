"""Marketplace order events: queued durably when they arrive (webhook or poll), and turned into
ledger events when applied (lines fetched if the notification had none, ids mapped through the
catalog)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import redis
import structlog

from inventory_engine.channels.base import ChannelClient, ChannelOrder, check_order
from inventory_engine.config import ChannelSettings
from inventory_engine.domain.models import OrderAction, OrderLine
from inventory_engine.errors import ConfigError
from inventory_engine.inbox import Inbox
from inventory_engine.ledger import LedgerReader, OrderEvent, RedisLedger
from inventory_engine.ledger.activity import ActivityLog, OrderLogEntry
from inventory_engine.ledger.catalog import CatalogStore
from inventory_engine.ledger.redis_io import wall_clock_ms
from inventory_engine.ledger.results import OrderOutcome
from inventory_engine.metrics import definitions as m
from inventory_engine.metrics.recorder import MetricsBatch, MetricsRecorder
from inventory_engine.service.mapping import to_order_lines
from inventory_engine.service.recording import EventRecorder
from inventory_engine.service.serialization import order_to_dict

log = structlog.get_logger()


class MarketplaceEvents:
    """Queue and apply one marketplace's order events.

    Args:
        channels: the configured channels by name.
        channel: the client of a channel by name (late-bound: tests replace the engine's).
        ledger, reader, catalog, activity, metrics: the ledger's parts.
        inbox: the durable inbox stream the workers drain.
        recorder: logs, counts and announces applied events.
        schedule_inbox: queue a drain job (guarded: a burst queues one).
        schedule_pushes: queue the push of every channel with changes.
    """

    def __init__(
        self,
        *,
        client: redis.Redis,
        queue_client: redis.Redis,
        channels: Mapping[str, ChannelSettings],
        channel: Callable[[str], ChannelClient],
        ledger: RedisLedger,
        reader: LedgerReader,
        catalog: CatalogStore,
        activity: ActivityLog,
        metrics: MetricsRecorder,
        inbox: Inbox,
        recorder: EventRecorder,
        schedule_inbox: Callable[[], bool],
        schedule_pushes: Callable[[], int],
    ) -> None:
        self.client = client
        self.queue_client = queue_client
        self.channels = channels
        self.channel = channel
        self.ledger = ledger
        self.reader = reader
        self.catalog = catalog
        self.activity = activity
        self.metrics = metrics
        self.inbox = inbox
        self.recorder = recorder
        self.schedule_inbox = schedule_inbox
        self.schedule_pushes = schedule_pushes

    def queue(
        self, channel: str, orders: Sequence[ChannelOrder], *, source: str = "webhook"
    ) -> int:
        """Durably queue events for the workers (the webhook answers after this returns).

        Each event is stamped with the time it was received and logged on its order (ignored
        ones too: "the order is not showing" starts with "did we hear of it?"). Events whose
        action is IGNORE are not queued. Returns how many were queued.
        """
        if channel not in self.channels:
            raise ConfigError(f"no channel named {channel!r} is configured")
        for order in orders:
            check_order(channel, order)  # refuse now what a worker could never record
        now = wall_clock_ms()
        orders = [o if o.received_ms else replace(o, received_ms=now) for o in orders]
        pipe = self.client.pipeline(transaction=False)
        batch = self.metrics.batch()
        for order in orders:
            entry = OrderLogEntry(
                ms=now,
                stage="received",
                source=source,
                action=order.action.value,
                status=order.status,
                lines=len(order.lines),
                detail=order.event_key,
                unrecognised=order.unrecognised,
            )
            self.activity.add(pipe, channel, order.order_id, [entry])
            if order.unrecognised:
                self._unrecognised(batch, channel, order, source)
        self.metrics.write(batch, pipe)
        pipe.execute()
        queue = self.queue_client.pipeline(transaction=False)
        queued = 0
        for order in orders:
            if order.action is not OrderAction.IGNORE:
                self.inbox.add(queue, channel, order_to_dict(order))
                queued += 1
        if queued:
            queue.execute()  # answered only after this: the events are durable from here on
            self.schedule_inbox()
        return queued

    def _unrecognised(
        self, batch: MetricsBatch, channel: str, order: ChannelOrder, source: str
    ) -> None:
        """States no status rule knows: said out loud, not ignored silently (a marketplace may
        have added one), and counted under a bounded label (issue 12, item 9)."""
        log.warning(
            "order_state_unrecognised",
            channel=channel,
            order_id=order.order_id,
            states=list(order.unrecognised),
            status=order.status,
            action=order.action.value,
            source=source,
        )
        spec = m.UNRECOGNISED_STATES
        for state in order.unrecognised:
            label = self.metrics.capped_label(
                batch, spec, [channel, m.state_label(state)], cap=m.MAX_STATE_LABELS,
                other=m.OTHER_STATE,
            )  # fmt: skip
            batch.inc(spec, channel, label)

    def apply(self, channel: str, order: ChannelOrder) -> OrderOutcome:
        """Apply one marketplace event (in a worker): fetch missing lines, map ids, record."""
        started = time.perf_counter()
        event = self.prepare(channel, order)
        outcome = self.ledger.record_orders([event])[0]
        pipe = self.client.pipeline(transaction=False)
        self.record_applied(pipe, channel, order, outcome, event.lines, started)
        pipe.execute()
        if outcome.oversold_units:
            self.recorder.announce_oversold(channel, order.order_id, outcome.oversold_units)
        if outcome.applied:
            self.schedule_pushes()
        return outcome

    def prepare(self, channel: str, order: ChannelOrder) -> OrderEvent:
        """The ledger event of a marketplace event: lines fetched if missing, ids mapped."""
        settings = self.channels[channel]
        client = self.channel(channel)
        # An event without lines asks the marketplace when the ledger has not seen the order,
        # and also for a cancel of a known order: only the marketplace's posting tells whether
        # it was cancelled after shipping (then the goods are gone and stock must not return).
        if (
            order.needs_lines
            and not order.lines
            and (
                order.action is OrderAction.RELEASE
                or self.reader.order(channel, order.order_id) is None
            )
        ):
            fetched = client.get_order(order.order_id)
            if fetched is not None:
                # The marketplace's current view wins: it knows the lines and the latest status.
                order = replace(fetched, received_ms=order.received_ms)
        lines = to_order_lines(order.lines, self.catalog, client.order_item_field)
        return OrderEvent(
            channel,
            order.order_id,
            order.action,
            lines,
            order.status,
            settings.location,
            order.received_ms,
        )

    def record_applied(
        self,
        pipe: Any,
        channel: str,
        order: ChannelOrder,
        outcome: OrderOutcome,
        lines: Sequence[OrderLine],
        started: float,
    ) -> None:
        """Log line, metrics and order-log entry of one applied marketplace event."""
        self.recorder.recorded(
            channel,
            order.order_id,
            order.action,
            order.status,
            outcome,
            "worker",
            started,
            lines,
            pipe=pipe,
        )
