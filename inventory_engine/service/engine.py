"""The engine of one process: builds the ledger's parts, the queues and the channels from the
settings, and wires the use cases (:mod:`.events`, :mod:`.inbox_drain`, :mod:`.storefront`) and
the push scheduling together. It decides nothing itself: every method hands over to the part
that does the job."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import redis
from rq import Queue

from inventory_engine.channels.base import ChannelClient, ChannelOrder
from inventory_engine.config import ChannelSettings, Settings
from inventory_engine.domain.models import OrderLine
from inventory_engine.errors import ConfigError
from inventory_engine.inbox import Inbox
from inventory_engine.ledger import LedgerReader, RedisLedger
from inventory_engine.ledger.activity import ActivityLog
from inventory_engine.ledger.catalog import CatalogStore
from inventory_engine.ledger.results import OrderOutcome, ReservationOutcome
from inventory_engine.metrics.recorder import MetricsRecorder
from inventory_engine.service.channels import ChannelRegistry
from inventory_engine.service.events import MarketplaceEvents
from inventory_engine.service.inbox_drain import InboxDrain
from inventory_engine.service.recording import EventRecorder
from inventory_engine.service.storefront import StorefrontCases
from inventory_engine.sync.publisher import ChannelPublisher
from inventory_engine.sync.scheduling import PushScheduler
from inventory_engine.sync.sender import ChannelSenders

EVENTS_QUEUE = "inventory-events"
"""RQ queue of marketplace order events (the hot path: one queue, atomic moves)."""
PUSH_QUEUE = "inventory-push"
"""RQ queue of per-channel push jobs."""


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
        account = settings.account
        self.ledger = RedisLedger(client, account=account, channels=names)
        self.reader = LedgerReader(client, account=account)
        self.catalog = CatalogStore(client, account=account, channels=names)
        self.activity = ActivityLog(client, account=account)
        self.metrics = MetricsRecorder(client, account=account)
        self.queue_client = queue_client or client
        self.events = Queue(EVENTS_QUEUE, connection=self.queue_client)
        self.pushes = Queue(PUSH_QUEUE, connection=self.queue_client)
        self.inbox = Inbox(self.queue_client, self.ledger.keys.inbox)
        self.channels = ChannelRegistry(client, self.channel_settings, account=account)
        self.scheduler = PushScheduler(
            client, self.queue_client, self.ledger.keys, names, self.pushes
        )
        self.senders = ChannelSenders(self.channels.publisher, self._after_sender)
        self.recorder = EventRecorder(
            client,
            self.metrics,
            self.activity,
            self.pushes,
            lambda: self.settings.alerts,
        )
        self.marketplace_events = MarketplaceEvents(
            client=client,
            queue_client=self.queue_client,
            channels=self.channel_settings,
            channel=lambda name: self.channel(name),  # late-bound: tests replace it
            ledger=self.ledger,
            reader=self.reader,
            catalog=self.catalog,
            activity=self.activity,
            metrics=self.metrics,
            inbox=self.inbox,
            recorder=self.recorder,
            schedule_inbox=self.schedule_inbox,
            schedule_pushes=self.schedule_pushes,
        )
        self.drain = InboxDrain(
            client=client,
            queue_client=self.queue_client,
            ledger=self.ledger,
            inbox=self.inbox,
            jobs=self.events,
            events=self.marketplace_events,
            schedule_pushes=self.schedule_pushes,
        )
        self.storefront = StorefrontCases(self.ledger, self.recorder, self.schedule_pushes)

    # -- channels ------------------------------------------------------------------------------

    def channel(self, name: str) -> ChannelClient:
        """The client of a configured channel (built once per process)."""
        return self.channels.client_for(name)

    def publisher(self, name: str) -> ChannelPublisher:
        """The channel's publisher (built once per process, like its client)."""
        return self.channels.publisher(name)

    def close(self) -> None:
        """Stop this process's senders, then close the channels' HTTP connections."""
        self.senders.stop()
        self.channels.close()

    # -- pushes ---------------------------------------------------------------------------------

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

    def _after_sender(self, name: str, next_due_ms: int | None, handed_over: bool) -> None:
        self.scheduler.after_sender(name, next_due_ms, handed_over=handed_over)

    # -- marketplace events --------------------------------------------------------------------

    def queue_order_events(
        self, channel: str, orders: Sequence[ChannelOrder], *, source: str = "webhook"
    ) -> int:
        """Durably queue events for the workers; see :meth:`MarketplaceEvents.queue`."""
        return self.marketplace_events.queue(channel, orders, source=source)

    def schedule_inbox(self) -> bool:
        """Queue a drain job unless one is queued already."""
        return self.drain.schedule()

    def apply_inbox(self, consumer: str) -> int:
        """Apply queued events in batches until the inbox is empty (in a worker)."""
        return self.drain.drain(consumer)

    def apply_order_event(self, channel: str, order: ChannelOrder) -> OrderOutcome:
        """Apply one marketplace event (in a worker): fetch missing lines, map ids, record."""
        return self.marketplace_events.apply(channel, order)

    # -- storefront ----------------------------------------------------------------------------

    def reserve(
        self, reservation_id: str, lines: Sequence[OrderLine], *, ttl_s: int | None = None
    ) -> ReservationOutcome:
        return self.storefront.reserve(reservation_id, lines, ttl_s=ttl_s)

    def commit_reservation(self, reservation_id: str) -> OrderOutcome:
        return self.storefront.commit(reservation_id)

    def release_reservation(self, reservation_id: str) -> OrderOutcome:
        return self.storefront.release(reservation_id)

    def record_external_order(
        self, channel: str, order_id: str, status: str, lines: Sequence[OrderLine]
    ) -> OrderOutcome:
        """``POST /v1/orders``: an order from a channel without an adapter, in seller SKUs."""
        return self.storefront.record_external_order(channel, order_id, status, lines)

    def set_on_hand(self, sku: str, quantity: int, *, source: str = "api") -> int:
        return self.storefront.set_on_hand(sku, quantity, source=source)
