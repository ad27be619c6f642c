"""The workers' side of the inbox: drain jobs apply queued marketplace events in pipelined
batches; an event that fails, fails alone (its own retrying job, then the dead letter)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
import structlog
from rq import Callback, Queue, Retry

from inventory_engine.channels.base import ChannelOrder
from inventory_engine.errors import LedgerScriptError
from inventory_engine.inbox import (
    REASON_INVALID,
    Inbox,
    InboxEntry,
    dead_letter_failed_job,
    job_meta,
)
from inventory_engine.ledger import OrderEvent, RedisLedger
from inventory_engine.ledger.results import OrderOutcome
from inventory_engine.service.events import MarketplaceEvents
from inventory_engine.service.serialization import order_from_dict
from inventory_engine.timing import JOB_GUARD_MS

log = structlog.get_logger()

EVENT_RETRY = Retry(max=5, interval=[1, 2, 5, 15, 60])
"""An event job that failed (Redis restarting, a channel lookup timing out) is tried again;
when the retries run out the event goes to the inbox's dead letter."""
INBOX_BATCH = 200
"""Events applied per pipelined ledger call by a drain job."""
INBOX_BATCHES_PER_JOB = 50
"""A drain job stops after this many batches and queues the next (jobs stay short)."""


class InboxDrain:
    """Drain jobs: queued (guarded, one per burst) and run by the event workers.

    Args:
        client: the ledger's Redis.
        queue_client: the queues' Redis (the inbox stream and its guard live there).
        ledger: the ledger.
        inbox: the inbox stream.
        jobs: the events queue (drain jobs and single-event retries).
        events: prepares, records and announces each event.
        schedule_pushes: queue the push of every channel with changes.
    """

    def __init__(
        self,
        *,
        client: redis.Redis,
        queue_client: redis.Redis,
        ledger: RedisLedger,
        inbox: Inbox,
        jobs: Queue,
        events: MarketplaceEvents,
        schedule_pushes: Callable[[], int],
    ) -> None:
        self.client = client
        self.queue_client = queue_client
        self.ledger = ledger
        self.inbox = inbox
        self.jobs = jobs
        self.events = events
        self.schedule_pushes = schedule_pushes

    def schedule(self) -> bool:
        """Queue a drain job unless one is queued already (a burst queues one, never zero:
        the job clears the guard before it reads)."""
        if not self.queue_client.set(self.ledger.keys.inbox_queued, 1, nx=True, px=JOB_GUARD_MS):
            return False
        self.jobs.enqueue(
            "workers.jobs.apply_inbox", account=self.ledger.keys.account, job_timeout=600
        )
        return True

    def drain(self, consumer: str) -> int:
        """Apply queued events in batches until the inbox is empty (in a worker). Returns how
        many entries were handled."""
        self.queue_client.delete(self.ledger.keys.inbox_queued)
        handled = 0
        for _ in range(INBOX_BATCHES_PER_JOB):
            entries = self.inbox.read(consumer, INBOX_BATCH)
            if not entries:
                return handled
            try:
                handled += self.apply_batch(entries)
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
        self.schedule()  # more may wait: the next job goes on
        return handled

    def apply_batch(self, entries: list[InboxEntry]) -> int:
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
        sorted_out = _Sorted()
        prepared = self._prepare(entries, sorted_out)
        results = self._record(prepared, sorted_out)
        for entry in sorted_out.handoff:
            self._retry_alone(entry)
        pipe = self.client.pipeline(transaction=False)
        for order, event, outcome in results:
            self.events.record_applied(pipe, event.channel, order, outcome, event.lines, started)
        pipe.execute()
        self._acknowledge(entries, sorted_out.invalid)
        for order, event, outcome in results:
            if outcome.oversold_units:
                self.events.recorder.announce_oversold(
                    event.channel, order.order_id, outcome.oversold_units
                )
        if any(outcome.applied for _, _, outcome in results):
            self.schedule_pushes()
        return len(entries)

    def _prepare(self, entries: list[InboxEntry], out: _Sorted) -> list[_Prepared]:
        """Each entry's ledger event; the unreadable and the unpreparable are sorted out."""
        prepared: list[_Prepared] = []
        for entry in entries:
            try:
                order = order_from_dict(entry.data)
            except (KeyError, TypeError, ValueError) as exc:
                out.invalid.append((entry, f"unreadable event: {exc!r}"))
                continue
            try:
                prepared.append((entry, order, self.events.prepare(entry.channel, order)))
            except Exception as exc:  # any failure: that event alone retries on its own
                log.warning("order_event_deferred", channel=entry.channel, error=str(exc))
                out.handoff.append(entry)
        return prepared

    def _record(
        self, prepared: list[_Prepared], out: _Sorted
    ) -> list[tuple[ChannelOrder, OrderEvent, OrderOutcome]]:
        """The batch in one pipelined ledger call; what the ledger refused is sorted out."""
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
                out.handoff.append(entry)
            else:
                out.invalid.append((entry, str(reply)))
        return results

    def _retry_alone(self, entry: InboxEntry) -> None:
        """A job of its own with RQ's retries; the dead letter when they run out."""
        self.jobs.enqueue(
            "workers.jobs.apply_order_event",
            entry.channel,
            entry.data,
            account=self.ledger.keys.account,
            retry=EVENT_RETRY,
            job_timeout=60,
            on_failure=Callback(dead_letter_failed_job),
            meta=job_meta(self.inbox.key, entry, EVENT_RETRY.max),
        )

    def _acknowledge(
        self, entries: list[InboxEntry], invalid: list[tuple[InboxEntry, str]]
    ) -> None:
        """In one transaction: the invalid to the dead letter, every other entry acknowledged
        (an entry handed to its own job is acknowledged too: the job holds it now)."""
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


_Prepared = tuple[InboxEntry, ChannelOrder, OrderEvent]


@dataclass
class _Sorted:
    """Entries of a batch taken out of the pipelined call."""

    handoff: list[InboxEntry] = field(default_factory=list)
    """To be tried alone, with retries (a failed preparation, a refused script)."""
    invalid: list[tuple[InboxEntry, str]] = field(default_factory=list)
    """Never applicable as they are: to the dead letter at once, with the reason."""
