"""The inbox: marketplace events durably queued for the workers, applied in batches.

One RQ job per event costs ~20 Redis round trips of RQ's own bookkeeping (2-4 ms a job here),
which caps a worker at a few hundred events a second. Events therefore go into one Redis stream
per account (``XADD``, in the pipeline that answers the webhook), and a guarded RQ job drains it
through a consumer group in batches: one pipelined ledger call per batch.

* At least once: an entry is acknowledged (``XACK`` + ``XDEL``) only after its event is applied
  or handed to its own retrying RQ job. A worker killed mid-batch leaves its entries pending;
  the next drain claims those idle longer than :data:`CLAIM_IDLE_MS` (``XAUTOCLAIM``). The ledger
  is idempotent, so an event applied twice changes nothing the second time.
* Several workers may drain at once: the group hands each entry to one of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import redis

GROUP = "appliers"
"""The consumer group every events worker reads through."""
CLAIM_IDLE_MS = 30_000
"""An entry delivered but unacknowledged this long belonged to a worker that died: take it."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class InboxEntry:
    entry_id: str
    channel: str
    data: dict[str, Any]
    """The event as :func:`inventory_engine.service.order_to_dict` wrote it."""


class Inbox:
    """The events stream of one account (``inv:{a}:inbox``)."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.client = client
        self.key = key

    def add(self, pipe: Any, channel: str, event: dict[str, Any]) -> None:
        """Queue one event on ``pipe`` (the caller executes it). Never trimmed: an entry
        leaves the stream only once applied."""
        pipe.xadd(self.key, {"c": channel, "e": json.dumps(event, separators=(",", ":"))})

    def read(self, consumer: str, count: int) -> list[InboxEntry]:
        """Up to ``count`` entries for ``consumer``: first those a dead worker left pending,
        then new ones."""
        try:
            return self._read(consumer, count)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._create_group()
            return self._read(consumer, count)

    def _read(self, consumer: str, count: int) -> list[InboxEntry]:
        claimed = self.client.xautoclaim(
            self.key, GROUP, consumer, min_idle_time=CLAIM_IDLE_MS, start_id="0-0", count=count
        )
        rows = [row for row in claimed[1] if row and row[1]]
        if len(rows) < count:
            fresh = cast(
                list[tuple[Any, list[Any]]],
                self.client.xreadgroup(GROUP, consumer, {self.key: ">"}, count=count - len(rows)),
            )
            for _stream, entries in fresh or []:
                rows.extend(row for row in entries if row and row[1])
        return [_entry(entry_id, fields) for entry_id, fields in rows]

    def _create_group(self) -> None:
        try:
            self.client.xgroup_create(self.key, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def ack(self, pipe: Any, entry_ids: list[str]) -> None:
        """Acknowledge and delete applied entries (queued on ``pipe``)."""
        if entry_ids:
            pipe.xack(self.key, GROUP, *entry_ids)
            pipe.xdel(self.key, *entry_ids)

    def length(self) -> int:
        """Events not yet applied (new or being applied)."""
        return int(self.client.xlen(self.key))

    def peek(self, count: int = 10_000) -> list[InboxEntry]:
        """The oldest entries, for inspection (``order show``, tests); consumes nothing."""
        rows = cast(list[tuple[Any, dict[Any, Any]]], self.client.xrange(self.key, count=count))
        return [_entry(i, f) for i, f in rows]


def _entry(entry_id: Any, fields: dict[Any, Any]) -> InboxEntry:
    data = {_text(k): _text(v) for k, v in fields.items()}
    return InboxEntry(_text(entry_id), data["c"], json.loads(data["e"]))
