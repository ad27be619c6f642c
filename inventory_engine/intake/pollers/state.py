"""A channel's polling state in Redis (cursor, de-duplication, WB's tracked tasks); every write
happens after the events it covers were queued."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import redis

from inventory_engine.ledger.keys import PollKeys
from inventory_engine.ledger.results import optional_text, text
from inventory_engine.service import Engine

WB_NEW_STATUS = "new"
"""The status WB's new-task list gives a task (its status call then says ``new/waiting``)."""


WB_TRACK_MAX_AGE_S = 90 * 86_400
"""A WB task still open after this long is no longer asked for (WB's order horizon)."""


SEEN_RETENTION_S = 3 * 86_400
"""Ozon/YM: an order not listed for this long is forgotten by the de-duplication."""


PRUNE_BATCH = 1_000
"""Entries pruned per poll at most (the rest next time)."""


def _fields(values: dict[str, str]) -> dict[Any, Any]:
    """A hash mapping as redis-py's stubs want it (their key type is invariant)."""
    return dict(values)


class PollStore:
    """One channel's polling state in Redis; every write happens after the events were queued."""

    def __init__(self, client: redis.Redis, keys: PollKeys, clock: Callable[[], float]) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def cursor(self) -> str | None:
        return optional_text(self.client.hget(self.keys.state, "cursor")) or None

    def _state(self, pipe: Any, cursor: str | None, **fields: Any) -> None:
        mapping: dict[str, Any] = {"polled_ms": self.now_ms(), **fields}
        if cursor is not None:
            mapping["cursor"] = cursor
        pipe.hset(self.keys.state, mapping=mapping)

    # Ozon, YM: last event key queued per order.

    def seen(self, ids: Sequence[str]) -> dict[str, str | None]:
        if not ids:
            return {}
        values = self.client.hmget(self.keys.seen, list(ids))
        return {order_id: optional_text(v) for order_id, v in zip(ids, values, strict=True)}

    def save_seen(self, queued: dict[str, str], listed: Iterable[str], cursor: str | None) -> None:
        now = self.now_ms()
        with self.client.pipeline(transaction=True) as pipe:
            if queued:
                pipe.hset(self.keys.seen, mapping=_fields(queued))
            touched = {order_id: now for order_id in listed}
            if touched:
                pipe.zadd(self.keys.seen_at, touched)
            self._state(pipe, cursor)
            pipe.execute()

    def prune_seen(self) -> int:
        cutoff = self.now_ms() - int(SEEN_RETENTION_S * 1000)
        old = self.client.zrangebyscore(self.keys.seen_at, "-inf", cutoff, start=0, num=PRUNE_BATCH)
        if old:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.hdel(self.keys.seen, *old)
                pipe.zrem(self.keys.seen_at, *old)
                pipe.execute()
        return len(old)

    # WB: tracked open tasks and the last status text queued for each.

    def statuses(self, ids: Sequence[str]) -> dict[str, str | None]:
        if not ids:
            return {}
        values = self.client.hmget(self.keys.status, list(ids))
        return {task_id: optional_text(v) for task_id, v in zip(ids, values, strict=True)}

    def track(self, ids: Sequence[str], cursor: str) -> None:
        now = self.now_ms()
        with self.client.pipeline(transaction=True) as pipe:
            if ids:
                pipe.zadd(self.keys.open, dict.fromkeys(ids, now), nx=True)
                pipe.hset(self.keys.status, mapping=dict.fromkeys(ids, WB_NEW_STATUS))
            self._state(pipe, cursor)
            pipe.execute()

    def rotation(self, count: int) -> tuple[list[str], int]:
        """The next ``count`` tracked ids in turn, and the offset to start from next time."""
        total = int(self.client.zcard(self.keys.open))
        offset = int(optional_text(self.client.hget(self.keys.state, "status_offset")) or 0)
        if offset >= total:
            offset = 0
        ids = [text(v) for v in self.client.zrange(self.keys.open, offset, offset + count - 1)]
        following = offset + len(ids)
        return ids, following if following < total else 0

    def save_statuses(self, queued: dict[str, str], done: Sequence[str], offset: int) -> None:
        with self.client.pipeline(transaction=True) as pipe:
            if queued:
                pipe.hset(self.keys.status, mapping=_fields(queued))
            if done:
                pipe.zrem(self.keys.open, *done)
                pipe.hdel(self.keys.status, *done)
            self._state(pipe, None, status_offset=offset)
            pipe.execute()

    def prune_open(self) -> int:
        cutoff = self.now_ms() - int(WB_TRACK_MAX_AGE_S * 1000)
        old = self.client.zrangebyscore(self.keys.open, "-inf", cutoff, start=0, num=PRUNE_BATCH)
        if old:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.zrem(self.keys.open, *old)
                pipe.hdel(self.keys.status, *old)
                pipe.execute()
        return len(old)


def read_cursor(engine: Engine, channel: str) -> str | None:
    """The stored cursor of a channel (None before its first successful poll)."""
    return PollStore(engine.client, engine.ledger.keys.poll(channel), time.time).cursor()


def tracked_tasks(engine: Engine, channel: str) -> set[str]:
    """The WB task ids whose status the poller still asks for."""
    members = engine.client.zrange(engine.ledger.keys.poll(channel).open, 0, -1)
    return {text(m) for m in members}


def reset_poll_state(engine: Engine, channel: str) -> int:
    """Forget a channel's cursor and de-duplication (the next poll starts afresh; replays are
    harmless). Returns how many keys were deleted."""
    return int(engine.client.delete(*engine.ledger.keys.poll(channel).all))
