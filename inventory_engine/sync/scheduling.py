"""PushScheduler: the glue between "a channel has marks" and "a sender runs for it".

* A change that may alter a channel's number queues that channel's push job, guarded so that a
  burst of changes queues one job, never zero (the job clears the guard first, so a change that
  lands while it runs queues the next one).
* A sender that ends with marks due later leaves a wake-up time per channel (the earliest
  wins); ``serve``'s waker queues the job the moment it comes (RQ's own scheduler works in
  whole seconds and checks once a second).
* ``serve``'s safety net re-queues every channel that still has marks or claims.

The push job itself only starts the channel's sender in the worker process (``sender.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import redis
from rq import Queue

from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.redis_io import wall_clock_ms
from inventory_engine.ledger.results import text
from inventory_engine.timing import JOB_GUARD_MS, PUSH_JOB_TIMEOUT_S

PUSH_JOB = "workers.jobs.publish_channel"


class PushScheduler:
    """Queues push jobs for the channels of one account.

    Args:
        client: the ledger's Redis (marks and claims live there).
        queue_client: the RQ queues' Redis (guards and wake-ups live beside the queues).
        keys: the account's key names.
        channels: the configured channel names.
        queue: the RQ queue of push jobs.
    """

    def __init__(
        self,
        client: redis.Redis,
        queue_client: redis.Redis,
        keys: AccountKeys,
        channels: Sequence[str],
        queue: Queue,
    ) -> None:
        self.client = client
        self.queue_client = queue_client
        self.keys = keys
        self.channels = list(channels)
        self.queue = queue

    def schedule_pushes(self, names: Iterable[str] | None = None) -> int:
        """Queue a push job for each channel that has none queued. Returns how many."""
        names = [n for n in (names if names is not None else self.channels) if n in self.channels]
        if not names:
            return 0
        pipe = self.queue_client.pipeline(transaction=False)
        for name in names:
            pipe.set(self.keys.push_queued(name), 1, nx=True, px=JOB_GUARD_MS)
        won = [name for name, ok in zip(names, pipe.execute(), strict=True) if ok]
        for name in won:
            self.queue.enqueue(
                PUSH_JOB, name, account=self.keys.account, job_timeout=PUSH_JOB_TIMEOUT_S
            )
        return len(won)

    def clear_push_guard(self, name: str) -> None:
        """Called by the push job first: a change from now on queues the next job."""
        self.queue_client.delete(self.keys.push_queued(name))

    def pending_channels(self) -> list[str]:
        """Channels with marks or claims left (for the periodic safety net)."""
        pipe = self.client.pipeline(transaction=False)
        for name in self.channels:
            pipe.zcard(self.keys.dirty(name))
            pipe.zcard(self.keys.inflight(name))  # a dead sender's, in the end
        counts = pipe.execute()
        return [n for i, n in enumerate(self.channels) if counts[2 * i] or counts[2 * i + 1]]

    def schedule_push_at(self, name: str, due_ms: int) -> None:
        """Wake the channel's push at ``due_ms`` (this process's clock; the earliest wins)."""
        self.queue_client.zadd(self.keys.push_wakeups, {name: due_ms}, lt=True)

    def wake_due_pushes(self, now_ms: int | None = None) -> list[str]:
        """Queue the push of every channel whose wake-up time has come; returns them. Safe with
        several callers: only the one that removes a wake-up queues its push."""
        key = self.keys.push_wakeups
        now = wall_clock_ms() if now_ms is None else now_ms
        due = [text(name) for name in self.queue_client.zrangebyscore(key, "-inf", now)]
        if not due:
            return []
        pipe = self.queue_client.pipeline(transaction=False)
        for name in due:
            pipe.zrem(key, name)
        won = [name for name, removed in zip(due, pipe.execute(), strict=True) if removed]
        self.schedule_pushes(won)
        return won

    def after_sender(self, name: str, next_due_ms: int | None, *, handed_over: bool) -> None:
        """What comes after a sender ended: at once (it handed over with work due), at the
        next due time, or nothing (no marks left)."""
        if next_due_ms is None and not handed_over:
            return
        if handed_over or next_due_ms is None or next_due_ms <= wall_clock_ms():
            self.schedule_pushes([name])
        else:
            self.schedule_push_at(name, next_due_ms)
