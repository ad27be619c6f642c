"""Use cases: the one module that combines the ledger, the catalog, the channels and the queue.

HTTP handlers, pollers and RQ jobs call these; none of them talks to two of those parts itself.

* Marketplace events (webhooks, polls) are queued first (:meth:`Engine.queue_order_events`, into
  the inbox stream) and applied by workers in batches (:meth:`Engine.apply_inbox`), so a webhook
  answers in milliseconds and a worker applies thousands of events a second. An event that
  fails in a batch gets its own RQ job with retries (:meth:`Engine.apply_order_event`).
* Storefront calls (reservations, counts) apply at once: the shop needs the answer.
* Every change that may alter a channel's number schedules that channel's push job, guarded so
  that a burst of changes schedules one job, never zero (the job clears the guard before it
  claims, so a change that lands while it runs schedules the next one).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, replace
from typing import Any

import httpx
import redis
import structlog
from rq import Callback, Queue, Retry

from inventory_engine.channels import build_client, http_client_for
from inventory_engine.channels.base import (
    ChannelClient,
    ChannelLine,
    ChannelOrder,
    check_order,
)
from inventory_engine.config import ChannelSettings, Settings
from inventory_engine.constants import STOREFRONT_CHANNEL
from inventory_engine.domain.models import OrderAction, OrderLine
from inventory_engine.domain.status_rules import storefront_order_action
from inventory_engine.errors import ConfigError, LedgerScriptError
from inventory_engine.intake.inbox import (
    REASON_INVALID,
    Inbox,
    InboxEntry,
    dead_letter_failed_job,
    job_meta,
)
from inventory_engine.intake.mapping import to_order_lines
from inventory_engine.ledger import LedgerReader, OrderEvent, RedisLedger
from inventory_engine.ledger.activity import ActivityLog, OrderLogEntry
from inventory_engine.ledger.catalog import CatalogStore
from inventory_engine.ledger.ledger import wall_clock_ms
from inventory_engine.ledger.results import OrderOutcome, ReservationOutcome
from inventory_engine.metrics import definitions as m
from inventory_engine.metrics.recorder import MetricsBatch, MetricsRecorder
from inventory_engine.sync.publisher import ChannelPublisher
from inventory_engine.sync.scheduling import PushScheduler
from inventory_engine.sync.sender import ChannelSenders
from inventory_engine.timing import JOB_GUARD_MS

log = structlog.get_logger()

EVENTS_QUEUE = "inventory-events"
"""RQ queue of marketplace order events (the hot path: one queue, atomic moves)."""
PUSH_QUEUE = "inventory-push"
"""RQ queue of per-channel push jobs."""
EVENT_RETRY = Retry(max=5, interval=[1, 2, 5, 15, 60])
"""An event job that failed (Redis restarting, a channel lookup timing out) is tried again;
when the retries run out the event goes to the inbox's dead letter."""
ANNOUNCE_RETRY = Retry(max=5, interval=[5, 15, 60, 300, 900])
"""An oversold announcement whose receiver is down is sent again, for about 20 minutes."""
INBOX_BATCH = 200
"""Events applied per pipelined ledger call by a drain job."""
INBOX_BATCHES_PER_JOB = 50
"""A drain job stops after this many batches and queues the next (jobs stay short)."""


class Engine:
    """Everything one process needs, built once from the settings.

    Args:
        settings: the deployment's settings.
        client: the ledger's Redis.
        queue_client: the RQ queues' Redis (``[redis] queue_url``; default: the same).
        channels: the configured channels (sandbox channels in sandbox mode).
    """

    def __init__(
        self,
        settings: Settings,
        client: redis.Redis,
        *,
        queue_client: redis.Redis | None = None,
        channels: Sequence[ChannelSettings] | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.channel_settings = {c.name: c for c in (channels or settings.channels)}
        names = list(self.channel_settings)
        self.ledger = RedisLedger(client, account=settings.account, channels=names)
        self.reader = LedgerReader(client, account=settings.account)
        self.catalog = CatalogStore(client, account=settings.account, channels=names)
        self.activity = ActivityLog(client, account=settings.account)
        self.metrics = MetricsRecorder(client, account=settings.account)
        self.queue_client = queue_client or client
        self.events = Queue(EVENTS_QUEUE, connection=self.queue_client)
        self.pushes = Queue(PUSH_QUEUE, connection=self.queue_client)
        self.inbox = Inbox(self.queue_client, self.ledger.keys.inbox)
        self._clients: dict[str, ChannelClient] = {}
        self._https: list[httpx.Client] = []
        self._lock = threading.Lock()
        self._publishers: dict[str, ChannelPublisher] = {}
        self.scheduler = PushScheduler(
            client, self.queue_client, self.ledger.keys, names, self.pushes
        )
        self.senders = ChannelSenders(self.publisher, self._after_sender)

    # -- channels ------------------------------------------------------------------------------

    def channel(self, name: str) -> ChannelClient:
        """The client of a configured channel (built once per process)."""
        if name not in self.channel_settings:
            raise ConfigError(f"no channel named {name!r} is configured")
        with self._lock:  # pollers call this from several threads
            return self._client_locked(name)

    def _client_locked(self, name: str) -> ChannelClient:
        if name not in self._clients:
            settings = self.channel_settings[name]
            http = http_client_for(settings)
            self._https.append(http)
            self._clients[name] = build_client(settings, http)
        return self._clients[name]

    def _after_sender(self, name: str, next_due_ms: int | None, handed_over: bool) -> None:
        self.scheduler.after_sender(name, next_due_ms, handed_over=handed_over)

    def close(self) -> None:
        """Stop this process's senders, then close the channels' HTTP connections."""
        self.senders.stop()
        for http in self._https:
            http.close()
        self._https.clear()
        self._clients.clear()
        self._publishers.clear()

    def publisher(self, name: str) -> ChannelPublisher:
        """The channel's publisher (built once per process, like its client)."""
        with self._lock:
            if name not in self._publishers:
                self._publishers[name] = ChannelPublisher(
                    self.client,
                    self.channel_settings[name],
                    self._client_locked(name),
                    account=self.settings.account,
                )
            return self._publishers[name]

    def schedule_pushes(self, names: Iterable[str] | None = None) -> int:
        """Queue a push job for each channel that has none queued. Returns how many."""
        return self.scheduler.schedule_pushes(names)

    def pending_channels(self) -> list[str]:
        """Channels with changes still to push (for the periodic safety-net kick)."""
        return self.scheduler.pending_channels()

    def wake_due_pushes(self, now_ms: int | None = None) -> list[str]:
        """Queue the push of every channel whose held items may go now (``serve``'s waker)."""
        return self.scheduler.wake_due_pushes(now_ms)

    def start_push(self, name: str) -> bool:
        """The push job: start (or nudge) the channel's sender thread in this process."""
        if name not in self.channel_settings:
            raise ConfigError(f"no channel named {name!r} is configured")
        self.scheduler.clear_push_guard(name)  # first: a change from now on queues a new job
        return self.senders.kick(name)

    # -- marketplace events --------------------------------------------------------------------

    def queue_order_events(
        self, channel: str, orders: Sequence[ChannelOrder], *, source: str = "webhook"
    ) -> int:
        """Durably queue events for the workers (the webhook answers after this returns).

        Each event is stamped with the time it was received and logged on its order (ignored
        ones too: "the order is not showing" starts with "did we hear of it?"). Events whose
        action is IGNORE are not queued. Returns how many were queued.
        """
        if channel not in self.channel_settings:
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

    def schedule_inbox(self) -> bool:
        """Queue a drain job unless one is queued already (a burst queues one, never zero:
        the job clears the guard before it reads)."""
        if not self.queue_client.set(self.ledger.keys.inbox_queued, 1, nx=True, px=JOB_GUARD_MS):
            return False
        self.events.enqueue("workers.jobs.apply_inbox", job_timeout=600)
        return True

    def apply_inbox(self, consumer: str) -> int:
        """Apply queued events in batches until the inbox is empty (in a worker). Returns how
        many entries were handled."""
        self.queue_client.delete(self.ledger.keys.inbox_queued)
        handled = 0
        for _ in range(INBOX_BATCHES_PER_JOB):
            entries = self.inbox.read(consumer, INBOX_BATCH)
            if not entries:
                return handled
            try:
                handled += self._apply_batch(entries)
            except Exception as exc:
                # Nothing of the batch is acknowledged: the next drain takes it over after
                # CLAIM_IDLE_MS, and an entry that keeps failing ends in the dead letter.
                log.error(
                    "inbox_batch_failed",
                    entries=len(entries),
                    first=entries[0].entry_id,
                    error=str(exc),
                )
                raise
        self.schedule_inbox()  # more may wait: the next job goes on
        return handled

    def _apply_batch(self, entries: list[InboxEntry]) -> int:
        """One pipelined ledger call for the batch; an event fails alone.

        * One that cannot be prepared (a marketplace lookup failing) or that its script
          refused (:class:`LedgerScriptError`: WRONGTYPE, OOM, a Lua error) gets its own job
          with RQ's retries; when they run out it goes to the inbox's dead letter.
        * One that can never apply as it is (unreadable, or refused by the ledger's checks)
          goes to the dead letter at once.
        * The others are applied, acknowledged and their oversells announced.

        Redis unreachable (:class:`LedgerUnavailableError`) fails the whole batch: nothing is
        acknowledged and the next drain takes it over.
        """
        started = time.perf_counter()
        prepared: list[tuple[InboxEntry, ChannelOrder, OrderEvent]] = []
        handoff: list[InboxEntry] = []
        invalid: list[tuple[InboxEntry, str]] = []
        for entry in entries:
            try:
                order = order_from_dict(entry.data)
            except (KeyError, TypeError, ValueError) as exc:
                invalid.append((entry, f"unreadable event: {exc!r}"))
                continue
            try:
                prepared.append((entry, order, self._prepare(entry.channel, order)))
            except Exception as exc:  # any failure: that event alone retries on its own
                log.warning("order_event_deferred", channel=entry.channel, error=str(exc))
                handoff.append(entry)
        replies = self.ledger.record_orders_each([event for _, _, event in prepared])
        results: list[tuple[ChannelOrder, OrderEvent, OrderOutcome]] = []
        for (entry, order, event), reply in zip(prepared, replies, strict=True):
            if isinstance(reply, OrderOutcome):
                results.append((order, event, reply))
            elif isinstance(reply, LedgerScriptError):
                log.warning(
                    "order_event_refused",
                    channel=entry.channel,
                    order_id=order.order_id,
                    error=str(reply),
                )
                handoff.append(entry)
            else:
                invalid.append((entry, str(reply)))
        for entry in handoff:
            self.events.enqueue(
                "workers.jobs.apply_order_event",
                entry.channel,
                entry.data,
                retry=EVENT_RETRY,
                job_timeout=60,
                on_failure=Callback(dead_letter_failed_job),
                meta=job_meta(self.inbox.key, entry, EVENT_RETRY.max),
            )
        pipe = self.client.pipeline(transaction=False)
        for order, event, outcome in results:
            self._record_applied(pipe, event.channel, order, outcome, event.lines, started)
        pipe.execute()
        ack = self.queue_client.pipeline(transaction=True)
        for entry, error in invalid:
            log.error(
                "order_event_dead_lettered",
                channel=entry.channel,
                order_id=entry.data.get("order_id"),
                error=error,
            )
            self.inbox.dead_letter(ack, entry, REASON_INVALID, error, entry.deliveries)
        dead = {entry.entry_id for entry, _ in invalid}
        self.inbox.ack(ack, [entry.entry_id for entry in entries if entry.entry_id not in dead])
        ack.execute()
        for order, event, outcome in results:
            if outcome.oversold_units:
                self._announce_oversold(event.channel, order.order_id, outcome.oversold_units)
        if any(outcome.applied for _, _, outcome in results):
            self.schedule_pushes()
        return len(entries)

    def apply_order_event(self, channel: str, order: ChannelOrder) -> OrderOutcome:
        """Apply one marketplace event (in a worker): fetch missing lines, map ids, record."""
        started = time.perf_counter()
        event = self._prepare(channel, order)
        outcome = self.ledger.record_orders([event])[0]
        pipe = self.client.pipeline(transaction=False)
        self._record_applied(pipe, channel, order, outcome, event.lines, started)
        pipe.execute()
        if outcome.oversold_units:
            self._announce_oversold(channel, order.order_id, outcome.oversold_units)
        if outcome.applied:
            self.schedule_pushes()
        return outcome

    def _prepare(self, channel: str, order: ChannelOrder) -> OrderEvent:
        """The ledger event of a marketplace event: lines fetched if missing, ids mapped."""
        settings = self.channel_settings[channel]
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

    def _record_applied(
        self,
        pipe: Any,
        channel: str,
        order: ChannelOrder,
        outcome: OrderOutcome,
        lines: Sequence[OrderLine],
        started: float,
    ) -> None:
        """Log line, metrics and order-log entry of one applied marketplace event."""
        self._recorded(
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

    def _recorded(
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
        """Log line, metrics and the order's log entry for one applied event."""
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

    def _announce_oversold(self, channel: str, order_id: str, units: int) -> None:
        """An oversold marketplace order needs a person now (Ozon: cancel with reason 352
        before "prepare"): an error log line at once, and the notification URL if set."""
        log.error(
            "order_oversold",
            channel=channel,
            order_id=order_id,
            units=units,
            hint="cancel it on the marketplace before it is prepared, or find the units",
        )
        if self.settings.alerts.oversold_url:
            self.pushes.enqueue(
                "workers.jobs.announce_oversold",
                channel,
                order_id,
                retry=ANNOUNCE_RETRY,
                job_timeout=60,
            )

    # -- storefront ----------------------------------------------------------------------------

    def reserve(
        self, reservation_id: str, lines: Sequence[OrderLine], *, ttl_s: int | None = None
    ) -> ReservationOutcome:
        outcome = self.ledger.try_reserve(reservation_id, lines, ttl_s=ttl_s)
        self._count(STOREFRONT_CHANNEL, "reserve", "applied" if outcome.created else "duplicate")
        if outcome.created:
            self.schedule_pushes()
        return outcome

    def commit_reservation(self, reservation_id: str) -> OrderOutcome:
        outcome = self.ledger.commit(STOREFRONT_CHANNEL, reservation_id)
        self._count(STOREFRONT_CHANNEL, "commit", event_outcome(outcome))
        if outcome.applied:
            self.schedule_pushes()
        return outcome

    def release_reservation(self, reservation_id: str) -> OrderOutcome:
        outcome = self.ledger.release(STOREFRONT_CHANNEL, reservation_id)
        self._count(STOREFRONT_CHANNEL, "release", event_outcome(outcome))
        if outcome.applied:
            self.schedule_pushes()
        return outcome

    def record_external_order(
        self, channel: str, order_id: str, status: str, lines: Sequence[OrderLine]
    ) -> OrderOutcome:
        """``POST /v1/orders``: an order from a channel without an adapter, in seller SKUs."""
        action = storefront_order_action(status)
        started = time.perf_counter()
        outcome = self.ledger.record_order(channel, order_id, lines, action, status=status)
        self._recorded(channel, order_id, action, status, outcome, "api", started, lines)
        if outcome.applied:
            self.schedule_pushes()
        return outcome

    def _count(self, channel: str, action: str, outcome: str) -> None:
        batch = MetricsBatch()
        batch.inc(m.EVENTS, channel, action, outcome)
        self.metrics.write(batch)

    def set_on_hand(self, sku: str, quantity: int, *, source: str = "api") -> int:
        changed = self.ledger.set_on_hand(sku, quantity, source=source)
        if changed:
            self.schedule_pushes()
        return changed


def event_outcome(outcome: OrderOutcome) -> str:
    """The ``outcome`` label of ``inventory_events_total`` for what an event did."""
    if outcome.state is None:
        return "not_found" if not outcome.applied else "applied"
    if not outcome.applied:
        return "duplicate"
    if outcome.oversold_units:
        return "oversold"
    if outcome.unknown_lines:
        return "unknown_sku"
    return "applied"


def order_to_dict(order: ChannelOrder) -> dict[str, Any]:
    """A ChannelOrder as RQ job arguments (plain JSON-able data)."""
    data = asdict(order)
    data["action"] = order.action.value
    return data


def order_from_dict(data: dict[str, Any]) -> ChannelOrder:
    return ChannelOrder(
        order_id=data["order_id"],
        action=OrderAction(data["action"]),
        status=data.get("status", ""),
        lines=tuple(ChannelLine(line["item_id"], int(line["quantity"])) for line in data["lines"]),
        needs_lines=bool(data.get("needs_lines")),
        event_key=data.get("event_key", ""),
        changed_at=data.get("changed_at"),
        received_ms=data.get("received_ms"),
    )
