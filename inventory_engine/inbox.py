"""The inbox: marketplace events durably queued for the workers, applied in batches.

One RQ job per event costs ~20 Redis round trips of RQ's own bookkeeping (2-4 ms a job here),
which caps a worker at a few hundred events a second. Events therefore go into one Redis stream
per account (``XADD``, in the pipeline that answers the webhook), and a guarded RQ job drains it
through a consumer group in batches: one pipelined ledger call per batch.

* At least once: an entry is acknowledged (``XACK`` + ``XDEL``) only after its event is applied,
  handed to its own retrying RQ job, or moved to the dead letter. A worker killed mid-batch
  leaves its entries pending; the next drain claims those idle longer than
  :data:`CLAIM_IDLE_MS` (``XAUTOCLAIM``, walking the pending list from where the last claim
  stopped, ``<inbox>:claim_cursor:<group>``). The ledger is idempotent, so an event applied
  twice changes nothing the second time.
* Several workers may drain at once: the group hands each entry to one of them.
* Nothing is retried forever, and nothing vanishes: an entry claimed again after
  :data:`MAX_DELIVERIES` attempts (each drain that took it failed or died), and an event whose
  own RQ job used up its retries (:func:`dead_letter_failed_job`), go to the dead letter
  (``<inbox>:dead``, a stream kept whole), with the reason, the last error and the number of
  attempts. ``reconcile`` lists them; ``retry`` puts them back in the inbox
  (:meth:`Inbox.requeue_dead`).
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast

import redis
from rq.job import Job

from inventory_engine.ledger.redis_io import wall_clock_ms
from inventory_engine.ledger.results import text

GROUP = "appliers"
"""The consumer group every events worker reads through."""
CLAIM_IDLE_MS = 30_000
"""An entry delivered but unacknowledged this long belonged to a worker that died: take it."""
MAX_DELIVERIES = 5
"""Attempts at applying an inbox entry (deliveries to a drain) before it goes to the dead
letter instead of a sixth drain: each of those drains failed or died with it in hand."""
CLAIM_STEPS = 10
"""``XAUTOCLAIM`` calls one read may make walking the pending list (each looks at up to 10
times the entries asked for); the walk goes on from its cursor at the next read."""

REASON_DELIVERIES = "max_deliveries"
"""Dead-letter reason: delivered :data:`MAX_DELIVERIES` times, never acknowledged."""
REASON_RETRIES = "retries_exhausted"
"""Dead-letter reason: the event's own RQ job failed on every retry."""
REASON_INVALID = "invalid"
"""Dead-letter reason: the event can never apply as it is (unreadable, or the ledger's checks
refuse it); retried as it is it fails the same way."""


@dataclass(frozen=True, slots=True)
class InboxEntry:
    entry_id: str
    channel: str
    data: dict[str, Any]
    """The event as :func:`inventory_engine.service.order_to_dict` wrote it."""
    deliveries: int = 1
    """How many times the group delivered it (1: first read; more: claimed from a drain that
    failed or died)."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event taken out of the inbox because it kept failing."""

    dead_id: str
    """Its id in the dead-letter stream."""
    entry_id: str
    """Its id in the inbox when it was taken out."""
    channel: str
    data: dict[str, Any]
    reason: str
    """:data:`REASON_DELIVERIES`, :data:`REASON_RETRIES` or :data:`REASON_INVALID`."""
    error: str
    deliveries: int
    """Attempts at applying it: by drains, then by its own job."""
    ms: int
    """When it was dead-lettered."""
    job: str
    """The RQ job that gave up on it ("" if none)."""

    @property
    def order_id(self) -> str:
        return str(self.data.get("order_id", ""))


class Inbox:
    """The events stream of one account (``inv:{a}:inbox``) and its dead letter
    (``inv:{a}:inbox:dead``)."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.client = client
        self.key = key
        self.dead_key = f"{key}:dead"
        """Stream of events that kept failing: the inbox fields (``c``, ``e``) plus ``id``,
        ``reason``, ``error``, ``deliveries``, ``ms``, ``job``. Never trimmed."""
        self.cursor_key = f"{key}:claim_cursor:{GROUP}"
        """Where the group's next ``XAUTOCLAIM`` starts (absent: at ``0-0``)."""

    def add(self, pipe: Any, channel: str, event: dict[str, Any]) -> None:
        """Queue one event on ``pipe`` (the caller executes it). Never trimmed: an entry
        leaves the stream only once applied."""
        pipe.xadd(self.key, {"c": channel, "e": json.dumps(event, separators=(",", ":"))})

    def read(self, consumer: str, count: int) -> list[InboxEntry]:
        """Up to ``count`` entries for ``consumer``: first those a dead worker left pending,
        then new ones. A pending one already tried :data:`MAX_DELIVERIES` times goes to the
        dead letter instead."""
        try:
            return self._read(consumer, count)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._create_group()
            return self._read(consumer, count)

    def _read(self, consumer: str, count: int) -> list[InboxEntry]:
        entries = self._claim(consumer, count)
        if len(entries) < count:
            fresh = cast(
                list[tuple[Any, list[Any]]],
                self.client.xreadgroup(
                    GROUP, consumer, {self.key: ">"}, count=count - len(entries)
                ),
            )
            for _stream, rows in fresh or []:
                entries.extend(_entry(i, f) for i, f in rows if f)
        return entries

    def _claim(self, consumer: str, count: int) -> list[InboxEntry]:
        """Entries idle longer than :data:`CLAIM_IDLE_MS`, taken over for ``consumer``.

        ``XAUTOCLAIM`` looks at a bounded stretch of the pending list per call and answers the
        id to go on from; the group's cursor is kept in Redis, so a long pending list (entries
        of live workers at its head) is walked to its end over successive reads, then from
        the start again.
        """
        raw = self.client.get(self.cursor_key)
        start = cursor = text(raw) if raw else "0-0"
        rows: list[tuple[Any, Any]] = []
        for _ in range(CLAIM_STEPS):
            reply = self.client.xautoclaim(
                self.key,
                GROUP,
                consumer,
                min_idle_time=CLAIM_IDLE_MS,
                start_id=cursor,
                count=count - len(rows),
            )
            cursor = text(reply[0])
            rows.extend((row[0], row[1]) for row in reply[1] if row and row[1])
            if cursor == "0-0" or len(rows) >= count:
                break
        if cursor != start:
            self.client.set(self.cursor_key, cursor)
        if not rows:
            return []
        counts = self._delivery_counts([text(entry_id) for entry_id, _ in rows])
        entries: list[InboxEntry] = []
        over: list[InboxEntry] = []
        for entry_id, fields in rows:
            entry = _entry(entry_id, fields, counts.get(text(entry_id), 1))
            (over if entry.deliveries > MAX_DELIVERIES else entries).append(entry)
        if over:
            pipe = self.client.pipeline(transaction=True)
            for entry in over:
                error = "never acknowledged: each drain that took it failed or died (worker logs)"
                self.dead_letter(pipe, entry, REASON_DELIVERIES, error, entry.deliveries - 1)
            pipe.execute()
        return entries

    def _delivery_counts(self, entry_ids: list[str]) -> dict[str, int]:
        """How many times the group delivered each entry (claims included)."""
        pipe = self.client.pipeline(transaction=False)
        for entry_id in entry_ids:
            pipe.xpending_range(self.key, GROUP, min=entry_id, max=entry_id, count=1)
        counts: dict[str, int] = {}
        for reply in pipe.execute():
            for row in reply:
                counts[text(row["message_id"])] = int(row["times_delivered"])
        return counts

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

    # -- the dead letter ----------------------------------------------------------------------

    def dead_letter(
        self,
        pipe: Any,
        entry: InboxEntry,
        reason: str,
        error: str,
        deliveries: int,
        *,
        job: str = "",
        in_inbox: bool = True,
    ) -> None:
        """Move an entry to the dead letter (queued on ``pipe``; a ``MULTI`` pipeline keeps the
        copy and the removal together). ``in_inbox`` False (a job's event, acknowledged when it
        was handed to the job): only added."""
        pipe.xadd(
            self.dead_key,
            {
                "c": entry.channel,
                "e": json.dumps(entry.data, separators=(",", ":")),
                "id": entry.entry_id,
                "reason": reason,
                "error": error[:2000],
                "deliveries": deliveries,
                "ms": wall_clock_ms(),
                "job": job,
            },
        )
        if in_inbox:
            self.ack(pipe, [entry.entry_id])

    def dead_letters(self, count: int = 10_000) -> list[DeadLetter]:
        """The dead-lettered events, oldest first."""
        rows = cast(
            list[tuple[Any, dict[Any, Any]]], self.client.xrange(self.dead_key, count=count)
        )
        return [_dead_letter(i, f) for i, f in rows]

    def requeue_dead(self, dead: list[DeadLetter]) -> None:
        """Put dead-lettered events back in the inbox as new entries and take them out of the
        dead letter, in one ``MULTI`` (the caller schedules a drain). Two operators retrying
        at once may queue one twice: the ledger applies it once."""
        if not dead:
            return
        pipe = self.client.pipeline(transaction=True)
        for letter in dead:
            self.add(pipe, letter.channel, letter.data)
        pipe.xdel(self.dead_key, *[letter.dead_id for letter in dead])
        pipe.execute()


def _entry(entry_id: Any, fields: dict[Any, Any], deliveries: int = 1) -> InboxEntry:
    data = {text(k): text(v) for k, v in fields.items()}
    return InboxEntry(text(entry_id), data["c"], json.loads(data["e"]), deliveries)


def _dead_letter(dead_id: Any, fields: dict[Any, Any]) -> DeadLetter:
    data = {text(k): text(v) for k, v in fields.items()}
    return DeadLetter(
        dead_id=text(dead_id),
        entry_id=data.get("id", ""),
        channel=data["c"],
        data=json.loads(data["e"]),
        reason=data.get("reason", ""),
        error=data.get("error", ""),
        deliveries=int(data.get("deliveries") or 0),
        ms=int(data.get("ms") or 0),
        job=data.get("job", ""),
    )


# -- RQ: an event job that used up its retries -------------------------------------------------


def job_meta(inbox_key: str, entry: InboxEntry, retries: int) -> dict[str, Any]:
    """The meta of an event's own job (``retries``: its ``Retry.max``), for
    :func:`dead_letter_failed_job`."""
    return {
        "inbox": inbox_key,
        "entry": entry.entry_id,
        "deliveries": entry.deliveries,
        "retries": retries,
    }


def dead_letter_failed_job(
    job: Job,
    connection: redis.Redis,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    tb: TracebackType | None,
) -> None:
    """RQ's ``on_failure`` of an event's own job (``apply_order_event``): once its retries
    are used up the event goes to the dead letter, so it is listed and ``retry`` can bring it
    back (the job stays in RQ's failed registry, marked ``dead_letter`` in its meta, and is
    removed when the event is retried). Before that, RQ's retry takes it again."""
    if job.should_retry:
        return
    meta = job.meta or {}
    args = list(job.args or ())
    if "inbox" not in meta or len(args) < 2 or not isinstance(args[1], dict):
        return  # not an inbox event's job: it stays a failed job
    lines = traceback.format_exception_only(exc_type, exc_value) if exc_type else []
    error = lines[-1].strip() if lines else ""
    # RQ counts retries down (``retries_left``) when a job raises; the first try is one more.
    attempts = int(meta.get("retries", 0)) - (job.retries_left or 0) + 1
    entry = InboxEntry(str(meta.get("entry", "")), str(args[0]), args[1])
    inbox = Inbox(connection, str(meta["inbox"]))
    pipe = connection.pipeline(transaction=True)
    inbox.dead_letter(
        pipe,
        entry,
        REASON_RETRIES,
        error,
        int(meta.get("deliveries", 1)) + attempts,
        job=job.id,
        in_inbox=False,
    )
    dead_id = pipe.execute()[0]
    job.meta["dead_letter"] = text(dead_id)
    job.save_meta()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
