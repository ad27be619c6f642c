"""What happened around the counters: events received per order, and items pushed to channels.

The audit journal (``ledger/lua``) says how each counter moved. These two logs answer the
operator's other questions — "did the engine ever hear of this order?" (``order show``) and
"why does Ozon show 3?" (``explain``):

* the order log, a capped list per order: each event received (webhook, poll, API) with its
  time and status, and what applying it did;
* the push log, one capped stream per account, written by the publisher: each item sent to a
  channel, the value, the channel's answer and when the change it carried began.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import redis

from inventory_engine.constants import (
    DEFAULT_ACCOUNT,
    FINISHED_ORDER_RETENTION_MS,
    ORDER_LOG_MAX_ENTRIES,
)
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.redis_io import redis_errors
from inventory_engine.ledger.results import text


@dataclass(frozen=True, slots=True)
class OrderLogEntry:
    """One step in an order's life as the engine saw it.

    ``stage`` is ``received`` (an event arrived; ``source`` webhook | poll | api) or ``applied``
    (a worker recorded it; ``outcome`` applied | duplicate | oversold | unknown_sku | not_found).
    ``unrecognised``: state values of a received event that no status rule knows, as sent (the
    event was ignored, or decided by its other field): kept here, since an ignored event never
    reaches the ledger's order record.
    """

    ms: int
    stage: str
    source: str
    action: str
    status: str
    outcome: str = ""
    lines: int = 0
    detail: str = ""
    unrecognised: tuple[str, ...] = ()

    def encode(self) -> str:
        data = {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) not in ("", 0, ())}
        data["ms"] = self.ms
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: Any) -> OrderLogEntry:
        data = json.loads(text(raw))
        return cls(
            ms=int(data["ms"]),
            stage=data.get("stage", ""),
            source=data.get("source", ""),
            action=data.get("action", ""),
            status=data.get("status", ""),
            outcome=data.get("outcome", ""),
            lines=int(data.get("lines", 0)),
            detail=data.get("detail", ""),
            unrecognised=tuple(str(v) for v in data.get("unrecognised", ())),
        )


@dataclass(frozen=True, slots=True)
class PushLogEntry:
    """One item sent to a channel: ``outcome`` is the channel's answer (accepted, throttled,
    retry, rejected) or ``request_<status>`` when the whole request failed."""

    entry_id: str
    ms: int
    channel: str
    sku: str
    quantity: int
    outcome: str
    code: str
    since_ms: int
    """When the change this push carried first happened (its propagation starts there)."""


class ActivityLog:
    """Writes the order log and reads both logs of one account."""

    def __init__(self, client: redis.Redis, *, account: str = DEFAULT_ACCOUNT) -> None:
        self.client = client
        self.keys = AccountKeys(account)

    def add(self, pipe: Any, channel: str, order_id: str, entries: Iterable[OrderLogEntry]) -> None:
        """Queue entries on ``pipe`` (the caller executes), oldest first."""
        key = self.keys.order_log(channel, order_id)
        encoded = [entry.encode() for entry in entries]
        if not encoded:
            return
        pipe.rpush(key, *encoded)
        pipe.ltrim(key, -ORDER_LOG_MAX_ENTRIES, -1)
        pipe.pexpire(key, FINISHED_ORDER_RETENTION_MS)

    def write(self, channel: str, order_id: str, *entries: OrderLogEntry) -> None:
        with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            self.add(pipe, channel, order_id, entries)
            pipe.execute()

    def order_events(self, channel: str, order_id: str) -> list[OrderLogEntry]:
        """Oldest first."""
        with redis_errors():
            raw = self.client.lrange(self.keys.order_log(channel, order_id), 0, -1)
        return [OrderLogEntry.decode(item) for item in raw]

    def pushes(
        self,
        *,
        sku: str | None = None,
        skus: Iterable[str] | None = None,
        channel: str | None = None,
        since_ms: int | None = None,
        limit: int = 50,
        scan_limit: int = 200_000,
    ) -> list[PushLogEntry]:
        """Newest first, filtered; stops at ``limit`` matches, at ``since_ms`` or after
        ``scan_limit`` rows (the log is capped, old pushes fall off)."""
        wanted = set(skus or ()) | ({sku} if sku else set())
        found: list[PushLogEntry] = []
        upper, scanned, page = "+", 0, 1_000
        while len(found) < limit and scanned < scan_limit:
            with redis_errors():
                rows = cast(
                    list[tuple[bytes, dict[bytes, bytes]]],
                    self.client.xrevrange(self.keys.pushes, max=upper, count=page),
                )
            for entry_id, fields in rows:
                entry = _push_entry(text(entry_id), fields)
                if since_ms is not None and entry.ms < since_ms:
                    return found
                if (not wanted or entry.sku in wanted) and (
                    channel is None or entry.channel == channel
                ):
                    found.append(entry)
                    if len(found) == limit:
                        break
            scanned += len(rows)
            if len(rows) < page:
                break
            upper = "(" + text(rows[-1][0])
        return found


def _push_entry(entry_id: str, fields: dict[Any, Any]) -> PushLogEntry:
    data = {text(k): text(v) for k, v in fields.items()}
    return PushLogEntry(
        entry_id=entry_id,
        ms=int(data["ms"]),
        channel=data["channel"],
        sku=data["sku"],
        quantity=int(data["quantity"]),
        outcome=data["outcome"],
        code=data.get("code", ""),
        since_ms=int(data.get("since", 0)),
    )
