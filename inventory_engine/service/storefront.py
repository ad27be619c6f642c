"""The seller's own storefront and channels without an adapter: holds, commits, releases,
orders in seller SKUs and stock counts, applied at once (the shop needs the answer)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from inventory_engine.constants import STOREFRONT_CHANNEL
from inventory_engine.domain.models import OrderLine
from inventory_engine.domain.status_rules import storefront_order_action
from inventory_engine.ledger import RedisLedger
from inventory_engine.ledger.results import OrderOutcome, ReservationOutcome
from inventory_engine.service.recording import EventRecorder
from inventory_engine.service.serialization import event_outcome


class StorefrontCases:
    """Args:
    ledger: the ledger.
    recorder: logs and counts each call's outcome.
    schedule_pushes: queue the push of every channel with changes.
    """

    def __init__(
        self,
        ledger: RedisLedger,
        recorder: EventRecorder,
        schedule_pushes: Callable[[], int],
    ) -> None:
        self.ledger = ledger
        self.recorder = recorder
        self.schedule_pushes = schedule_pushes

    def reserve(
        self, reservation_id: str, lines: Sequence[OrderLine], *, ttl_s: int | None = None
    ) -> ReservationOutcome:
        outcome = self.ledger.try_reserve(reservation_id, lines, ttl_s=ttl_s)
        self.recorder.count(
            STOREFRONT_CHANNEL, "reserve", "applied" if outcome.created else "duplicate"
        )
        if outcome.created:
            self.schedule_pushes()
        return outcome

    def commit(self, reservation_id: str) -> OrderOutcome:
        outcome = self.ledger.commit(STOREFRONT_CHANNEL, reservation_id)
        self.recorder.count(STOREFRONT_CHANNEL, "commit", event_outcome(outcome))
        if outcome.applied:
            self.schedule_pushes()
        return outcome

    def release(self, reservation_id: str) -> OrderOutcome:
        outcome = self.ledger.release(STOREFRONT_CHANNEL, reservation_id)
        self.recorder.count(STOREFRONT_CHANNEL, "release", event_outcome(outcome))
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
        self.recorder.recorded(channel, order_id, action, status, outcome, "api", started, lines)
        if outcome.applied:
            self.schedule_pushes()
        return outcome

    def set_on_hand(self, sku: str, quantity: int, *, source: str = "api") -> int:
        changed = self.ledger.set_on_hand(sku, quantity, source=source)
        if changed:
            self.schedule_pushes()
        return changed
