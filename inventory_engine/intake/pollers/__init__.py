"""Order polling: Wildberries' only intake, and the safety net under Ozon's and Yandex Market's
notifications (a push that comes late or never is still read within one poll interval).

A poll takes the same idempotent path as a webhook: what it reads becomes
:meth:`Engine.queue_order_events`, applied later by the workers. Per channel kind:

* **Wildberries** (no webhooks for self-built apps, reference §2.4): ``GET /api/v3/orders/new``
  (a snapshot of every new assembly task) queues a RESERVE with its line for each task not
  tracked yet, and starts tracking it; then ``POST /api/v3/orders/status`` (≤ 1000 ids a call)
  asks for the tracked tasks and queues an event only when a task's status text differs from
  the last one queued. A task whose status is final, released or cancelled after ship is no
  longer tracked.
* **Ozon**: ``/v3/posting/fbs/list`` by ``last_changed_status_date`` from the stored cursor,
  following ``more`` within one poll (bounded), then ``/v3/posting/fbs/unfulfilled/list``.
* **Yandex Market**: ``POST /v1/businesses/{id}/orders`` by update date, following ``more``.

Every kind queues an event only when it differs from the last one queued for that order
(Ozon and YM compare the event key, WB the status text): re-read windows and snapshots cost
nothing downstream. State lives in Redis beside the ledger, so a restart goes on where it
stopped::

    inv:{<account>}:poll:<channel>:state    hash  cursor, polled_ms, status_offset (WB rotation)
    inv:{<account>}:poll:<channel>:open     zset  WB: tracked task id -> ms first seen
    inv:{<account>}:poll:<channel>:status   hash  WB: tracked task id -> last status text queued
    inv:{<account>}:poll:<channel>:seen     hash  Ozon/YM: order id -> last event key queued
    inv:{<account>}:poll:<channel>:seen_at  zset  Ozon/YM: order id -> ms last listed

(spelled in :mod:`inventory_engine.ledger.keys`, :class:`~inventory_engine.ledger.keys.PollKeys`)

The cursor and the de-duplication state are written only after the events were queued: a crash
in between re-reads and re-queues (the ledger ignores replays), it never loses an event.

Channel failures (rate limits, outages, refusals) are reported in the :class:`PollReport`, the
cursor stays, and :class:`PollerLoop` waits ``retry_after`` or a growing delay before the next
poll. Intervals come from ``poll_interval_s`` with a floor per kind that keeps the poller well
inside each marketplace's limits (:data:`POLL_LIMITS`).

One module per job: :mod:`.pacing` (intervals and back-off), :mod:`.state` (the Redis state),
:mod:`.feed` (Ozon and Yandex Market), :mod:`.wildberries`, :mod:`.poll` (one poll) and
:mod:`.loop` (the threads).
"""

from inventory_engine.intake.pollers.loop import PollerLoop
from inventory_engine.intake.pollers.pacing import (
    MAX_BACKOFF_S,
    MAX_PAGES_PER_POLL,
    POLL_LIMITS,
    PollLimits,
    backoff_delay,
    is_polled,
    next_delay,
    poll_interval,
    poll_limits,
)
from inventory_engine.intake.pollers.poll import poll_once
from inventory_engine.intake.pollers.report import PollReport
from inventory_engine.intake.pollers.state import (
    SEEN_RETENTION_S,
    WB_TRACK_MAX_AGE_S,
    read_cursor,
    reset_poll_state,
    tracked_tasks,
)
from inventory_engine.intake.pollers.wildberries import MAX_STATUS_IDS, MAX_STATUS_IDS_PER_POLL

__all__ = [
    "MAX_BACKOFF_S",
    "MAX_PAGES_PER_POLL",
    "MAX_STATUS_IDS",
    "MAX_STATUS_IDS_PER_POLL",
    "POLL_LIMITS",
    "SEEN_RETENTION_S",
    "WB_TRACK_MAX_AGE_S",
    "PollLimits",
    "PollReport",
    "PollerLoop",
    "backoff_delay",
    "is_polled",
    "next_delay",
    "poll_interval",
    "poll_limits",
    "poll_once",
    "read_cursor",
    "reset_poll_state",
    "tracked_tasks",
]
