"""What is stuck, and ``retry`` once the cause is fixed.

Four things wait for a person:

* **failed jobs** — RQ's failed registry of the events and push queues (a job that used up its
  retries: Redis was down for long, a bug, a channel lookup that kept failing);
* **parked items** — a channel refused an item (unknown offer, value too big...); the publisher
  keeps it out of its loop with the channel's reason (``keys.parked``);
* **unknown-SKU orders** — marketplace order lines whose item id the catalog did not know when
  the order arrived (``keys.unknown_skus``); the known lines applied, these were set aside. A
  cancelled order's leave the list by themselves (nothing moved for them, nothing will); those
  of an order that holds or took stock wait for the catalog and ``retry``, or for a person to
  give up on them with :func:`dismiss_unknown_order` (journaled: who, why, when);
* **dead-lettered events** — marketplace events taken out of the inbox because they kept
  failing (``<inbox>:dead``, see :mod:`inventory_engine.inbox`): delivered to
  :data:`~inventory_engine.inbox.MAX_DELIVERIES` drains that each failed or died, their
  own job's retries used up (a key of the wrong type, a script error, a lookup that kept
  failing), or refused as they are. Their jobs, if any, are not listed again as failed jobs.

:func:`retry_stuck` puts dead-lettered events back in the inbox (and queues a drain), requeues
the failed jobs and un-parks the items (their SKU is marked changed
and the channel's last accepted value forgotten, so the push path sends the value again).
Unknown-SKU lines whose id the catalog maps now are applied to their order as its state requires
(``RedisLedger.resolve_unknown``: reserved, or taken off on hand if the goods left); lines still
unknown stay parked and are reported. Parked lines of cancelled orders left by an older version
(which kept them after the cancel) are dismissed, with "the order was cancelled" as the reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry

from inventory_engine.domain.models import OrderState
from inventory_engine.errors import InventoryError
from inventory_engine.inbox import DeadLetter
from inventory_engine.ledger.catalog import INDEXED_FIELDS
from inventory_engine.ledger.redis_io import redis_errors, wall_clock_ms
from inventory_engine.operate.common import text
from inventory_engine.operate.expected import Parked
from inventory_engine.service import Engine

MAX_JOBS = 1_000
"""Failed jobs listed (and requeued by one ``retry``) per queue at most."""
CANCELLED_STATES = frozenset({OrderState.RELEASED.value, OrderState.EXPIRED.value})
"""Order states in which parked unknown-SKU lines need nobody: no stock moved for the order."""
CANCELLED_REASON = "the order was cancelled"
"""The reason ``retry`` journals when it dismisses a cancelled order's parked lines."""


class NotStuckError(InventoryError):
    """A dismissal named an order that has no unknown-SKU lines waiting."""


@dataclass(frozen=True, slots=True)
class FailedJob:
    queue: str
    job_id: str
    function: str
    channel: str
    order_id: str
    error: str
    """The last line of the exception."""
    ended_ms: int | None


@dataclass(frozen=True, slots=True)
class DeadEvent:
    """A dead-lettered marketplace event."""

    channel: str
    order_id: str
    action: str
    reason: str
    """max_deliveries | retries_exhausted | invalid"""
    error: str
    deliveries: int
    """Attempts at applying it before it was set aside."""
    ms: int
    """When it was set aside."""
    dead_id: str
    job_id: str
    """Its RQ job that gave up ("" if none)."""

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadEvent:
        return cls(
            channel=letter.channel,
            order_id=letter.order_id,
            action=str(letter.data.get("action", "")),
            reason=letter.reason,
            error=letter.error,
            deliveries=letter.deliveries,
            ms=letter.ms,
            dead_id=letter.dead_id,
            job_id=letter.job,
        )


@dataclass(frozen=True, slots=True)
class ParkedItem:
    channel: str
    sku: str
    parked: Parked


@dataclass(frozen=True, slots=True)
class UnknownLine:
    item: str
    """The stand-in SKU the order carried (``<catalog field>:<marketplace id>``, or a SKU)."""
    quantity: int
    sku_now: str | None
    """The SKU the catalog maps it to now (None: still unknown)."""


@dataclass(frozen=True, slots=True)
class UnknownSkuOrder:
    channel: str
    order_id: str
    location: str
    ms: int
    lines: tuple[UnknownLine, ...]
    state: str | None = None
    """The order's state in the ledger (None: its record expired, ``retry`` cannot apply the
    lines any more: dismiss it once on hand is put right)."""

    @property
    def mapped_now(self) -> bool:
        return all(line.sku_now is not None for line in self.lines)


@dataclass(frozen=True, slots=True)
class DriftingItem:
    """An item the continuous read-back found different on several passes in a row: its
    repair did not hold (someone keeps editing it in the cabinet? the marketplace ignores the
    update?)."""

    channel: str
    sku: str
    passes: int


PERSISTENT_AFTER = 2
"""Passes in a row an item must differ to be persistent drift (the repair did not hold)."""


@dataclass
class StuckReport:
    failed_jobs: list[FailedJob] = field(default_factory=list)
    parked: list[ParkedItem] = field(default_factory=list)
    unknown_orders: list[UnknownSkuOrder] = field(default_factory=list)
    dead_letters: list[DeadEvent] = field(default_factory=list)
    drifting: list[DriftingItem] = field(default_factory=list)

    @property
    def total(self) -> int:
        return (
            len(self.failed_jobs)
            + len(self.parked)
            + len(self.unknown_orders)
            + len(self.dead_letters)
            + len(self.drifting)
        )


@dataclass
class RetryReport:
    requeued: list[FailedJob] = field(default_factory=list)
    not_requeued: list[tuple[FailedJob, str]] = field(default_factory=list)
    unparked: list[ParkedItem] = field(default_factory=list)
    resolved: list[UnknownSkuOrder] = field(default_factory=list)
    """Orders whose parked lines were applied (all, or those the catalog maps now)."""
    unknown_orders: list[UnknownSkuOrder] = field(default_factory=list)
    """Orders with lines the catalog still does not map: left as they are."""
    requeued_events: list[DeadEvent] = field(default_factory=list)
    """Dead-lettered events put back in the inbox."""
    dropped: list[UnknownSkuOrder] = field(default_factory=list)
    """Cancelled orders whose parked lines were still listed (left by an older version)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "requeued_dead_letters": [asdict(e) for e in self.requeued_events],
            "requeued": [asdict(j) for j in self.requeued],
            "not_requeued": [{"job": asdict(j), "error": e} for j, e in self.not_requeued],
            "unparked": [asdict(p) for p in self.unparked],
            "resolved_unknown_sku_orders": [asdict(o) for o in self.resolved],
            "unknown_sku_orders": [asdict(o) for o in self.unknown_orders],
            "dropped_cancelled_unknown_sku_orders": [asdict(o) for o in self.dropped],
        }


def find_stuck(engine: Engine, channels: Sequence[str] | None = None) -> StuckReport:
    """Failed jobs, parked items, unknown-SKU orders and dead-lettered events of ``channels``
    (default all)."""
    names = list(channels if channels is not None else engine.channel_settings)
    jobs = [j for j in failed_jobs(engine) if channels is None or j.channel in names]
    unknown = [
        o
        for o in unknown_sku_orders(engine)
        if (channels is None or o.channel in names) and o.state not in CANCELLED_STATES
    ]
    dead = [e for e in dead_events(engine) if channels is None or e.channel in names]
    return StuckReport(jobs, parked_items(engine, names), unknown, dead, drifting(engine, names))


def drifting(engine: Engine, channels: Sequence[str]) -> list[DriftingItem]:
    """Items of ``channels`` that differed on :data:`PERSISTENT_AFTER` read-back passes in a
    row or more, by channel and SKU."""
    found: list[DriftingItem] = []
    with redis_errors():
        for name in channels:
            counts = engine.client.hgetall(engine.ledger.keys.drift(name))
            for sku, passes in sorted((text(k), int(text(v))) for k, v in counts.items()):
                if passes >= PERSISTENT_AFTER:
                    found.append(DriftingItem(name, sku, passes))
    return found


def dead_events(engine: Engine) -> list[DeadEvent]:
    """Events in the inbox's dead letter, oldest first."""
    with redis_errors():
        return [DeadEvent.of(letter) for letter in engine.inbox.dead_letters(MAX_JOBS)]


def failed_jobs(engine: Engine) -> list[FailedJob]:
    """Jobs in the failed registries of the events and push queues, oldest first; an event
    job whose event went to the dead letter is listed there instead."""
    found: list[FailedJob] = []
    with redis_errors():
        for queue in (engine.events, engine.pushes):
            registry = FailedJobRegistry(queue=queue)
            ids = registry.get_job_ids(0, MAX_JOBS - 1, cleanup=False)
            for job_id, job in zip(
                ids, Job.fetch_many(ids, connection=engine.queue_client), strict=True
            ):
                if job is not None and (job.meta or {}).get("dead_letter"):
                    continue
                found.append(_failed_job(queue.name, job_id, job))
    return found


def _failed_job(queue: str, job_id: str, job: Job | None) -> FailedJob:
    if job is None:
        return FailedJob(queue, job_id, "", "", "", "job data expired", None)
    args = list(job.args or ())
    channel = str(args[0]) if args else ""
    order_id = ""
    if len(args) > 1:
        second = args[1]
        order_id = str(second.get("order_id", "")) if isinstance(second, dict) else str(second)
    ended = job.ended_at
    return FailedJob(
        queue=queue,
        job_id=job_id,
        function=job.func_name or "",
        channel=channel,
        order_id=order_id,
        error=job_error(job),
        ended_ms=int(ended.timestamp() * 1000) if ended is not None else None,
    )


def job_error(job: Job) -> str:
    """The last line of the job's latest exception ("" when it has none)."""
    result = job.latest_result()
    lines = ((result.exc_string if result is not None else None) or "").strip().splitlines()
    return lines[-1] if lines else ""


def parked_items(engine: Engine, channels: Sequence[str]) -> list[ParkedItem]:
    """Items each channel refused, by channel then SKU."""
    keys = engine.ledger.keys
    with redis_errors():
        pipe = engine.client.pipeline(transaction=False)
        for name in channels:
            pipe.hgetall(keys.parked(name))
        replies = pipe.execute()
    return [
        ParkedItem(name, text(sku), Parked.decode(raw))
        for name, reply in zip(channels, replies, strict=True)
        for sku, raw in sorted(reply.items())
    ]


def unknown_sku_orders(engine: Engine) -> list[UnknownSkuOrder]:
    """Orders with lines set aside for an unknown item id, oldest first, with what each id
    maps to now and the order's state (cancelled ones included: :func:`find_stuck` leaves
    them out)."""
    keys = engine.ledger.keys
    with redis_errors():
        raw = engine.client.hgetall(keys.unknown_skus)
    entries: list[tuple[str, str, dict[str, Any]]] = []
    for key, value in raw.items():
        channel, _, order_id = text(key).partition("|")
        entries.append((channel, order_id, json.loads(text(value))))
    with redis_errors():
        pipe = engine.client.pipeline(transaction=False)
        for channel, order_id, _ in entries:
            pipe.hget(keys.order(channel, order_id), "state")
        states = pipe.execute() if entries else []
    orders: list[UnknownSkuOrder] = []
    for (channel, order_id, data), state in zip(entries, states, strict=True):
        lines = tuple(
            UnknownLine(str(item), int(quantity), _sku_now(engine, str(item)))
            for item, quantity in data.get("lines", [])
        )
        orders.append(
            UnknownSkuOrder(
                channel,
                order_id,
                str(data.get("location", "")),
                int(data.get("ms", 0)),
                lines,
                None if state is None else text(state),
            )
        )
    return sorted(orders, key=lambda o: (o.ms, o.channel, o.order_id))


def dismiss_unknown_order(
    engine: Engine, channel: str, order_id: str, *, reason: str, by: str
) -> UnknownSkuOrder:
    """Give up on an order's parked unknown-SKU lines: it leaves the stuck list, nothing moves,
    and the journal keeps each line with ``reason`` and who (``by``) at this time.

    Raises:
        ValueError: an empty reason.
        NotStuckError: the order has no unknown-SKU lines waiting.
    """
    reason = reason.strip()
    if not reason:
        raise ValueError("a dismissal needs a reason (--reason)")
    found = next(
        (o for o in unknown_sku_orders(engine) if (o.channel, o.order_id) == (channel, order_id)),
        None,
    )
    dismissed = None
    if found is not None:
        dismissed = engine.ledger.dismiss_unknown(
            channel, order_id, f"{reason} (dismissed by {by or 'unknown'})"
        )
    if found is None or dismissed is None:  # None twice: another dismissal or retry came first
        raise NotStuckError(
            f"{channel} order {order_id} is not stuck: it has no unknown-SKU lines waiting "
            "(dismiss takes unknown-SKU orders as listed by reconcile; failed jobs and "
            "dead-lettered events go again with retry)"
        )
    return found


def _sku_now(engine: Engine, item: str) -> str | None:
    """The SKU a stand-in maps to now: ``ozon_sku:123`` through the catalog index, a plain SKU
    if the ledger knows it now."""
    prefix, sep, marketplace_id = item.partition(":")
    if sep and prefix in INDEXED_FIELDS:
        return engine.catalog.sku_for(prefix, marketplace_id)
    return item if engine.reader.stock(item).known else None


def retry_stuck(engine: Engine, channels: Sequence[str] | None = None) -> RetryReport:
    """Put dead-lettered events back in the inbox (and queue a drain), requeue failed jobs,
    un-park parked items (of ``channels``, default all) and queue the push jobs of the
    channels concerned."""
    stuck = find_stuck(engine, channels)
    report = RetryReport()
    if stuck.dead_letters:
        ids = {event.dead_id for event in stuck.dead_letters}
        with redis_errors():
            letters = [d for d in engine.inbox.dead_letters(MAX_JOBS) if d.dead_id in ids]
            engine.inbox.requeue_dead(letters)
            # The jobs that gave up on them: the events are back in the inbox instead.
            registry = FailedJobRegistry(queue=engine.events)
            for event in stuck.dead_letters:
                if event.job_id:
                    try:
                        registry.remove(event.job_id, delete_job=True)
                    except NoSuchJobError:
                        pass  # its data expired: the registry entry is gone all the same
        report.requeued_events = list(stuck.dead_letters)
        engine.schedule_inbox()
    for order in unknown_sku_orders(engine):
        if order.state in CANCELLED_STATES and (channels is None or order.channel in channels):
            reason = f"{CANCELLED_REASON} (dismissed by retry)"
            if engine.ledger.dismiss_unknown(order.channel, order.order_id, reason) is not None:
                report.dropped.append(order)
    for order in stuck.unknown_orders:
        mapping = {line.item: line.sku_now for line in order.lines if line.sku_now is not None}
        if mapping:
            outcome = engine.ledger.resolve_unknown(order.channel, order.order_id, mapping)
            if outcome.applied:
                report.resolved.append(order)
        if not order.mapped_now:
            report.unknown_orders.append(order)
    if report.resolved:
        engine.schedule_pushes()
    with redis_errors():
        for job in stuck.failed_jobs:
            queue = engine.events if job.queue == engine.events.name else engine.pushes
            try:
                FailedJobRegistry(queue=queue).requeue(job.job_id)
            except (InvalidJobOperation, NoSuchJobError) as exc:
                report.not_requeued.append((job, str(exc) or type(exc).__name__))
            else:
                report.requeued.append(job)
    if stuck.parked:
        keys = engine.ledger.keys
        now = wall_clock_ms()
        with redis_errors():
            pipe = engine.client.pipeline(transaction=True)
            for item in stuck.parked:
                pipe.hdel(keys.parked(item.channel), item.sku)
                pipe.hdel(keys.accepted(item.channel), item.sku)
                pipe.zadd(keys.dirty(item.channel), {item.sku: now}, nx=True)
            pipe.execute()
        report.unparked = list(stuck.parked)
        engine.schedule_pushes(sorted({item.channel for item in stuck.parked}))
    return report
