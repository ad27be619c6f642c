"""The order events not applied yet, by order, for ``orders check`` to say why an order is
missing or differs: failed, queued, waiting to retry or being applied.

They are read from the events queue and its registries, the inbox's dead letter and the inbox
itself; each is bounded by :data:`MAX_JOBS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rq.job import Job

from inventory_engine.ledger.redis_io import redis_errors
from inventory_engine.operate.stuck import job_error
from inventory_engine.service import Engine

MAX_JOBS = 10_000
"""Jobs of each queue and registry looked at to explain an order."""

APPLY_ORDER_EVENT = "workers.jobs.apply_order_event"
"""The job function that applies an order event (its args: channel, event)."""


@dataclass(frozen=True, slots=True)
class EventJob:
    state: str
    """failed | queued | retrying | running"""
    error: str
    queued_ms: int | None


def event_jobs(engine: Engine) -> dict[tuple[str, str], EventJob]:
    """Event jobs by (channel, order): failed, queued, waiting to retry, running.

    Raises:
        LedgerUnavailableError: Redis failed.
    """
    found: dict[tuple[str, str], EventJob] = {}
    with redis_errors():
        _queued_jobs(engine, found)
        # Events set aside after failing again and again: like a failed job.
        for dead in engine.inbox.dead_letters(MAX_JOBS):
            key = (dead.channel, dead.order_id)
            found.setdefault(key, EventJob("failed", f"{dead.reason}: {dead.error}", dead.ms))
        # Events waiting in the inbox (or being applied): queued since their entry's time.
        for entry in engine.inbox.peek(MAX_JOBS):
            key = (entry.channel, str(entry.data.get("order_id", "")))
            found.setdefault(key, EventJob("queued", "", int(entry.entry_id.split("-")[0])))
    return found


def _queued_jobs(engine: Engine, found: dict[tuple[str, str], EventJob]) -> None:
    """The events queue's jobs and its registries', the first state seen of an order kept."""
    queue = engine.events
    sources: list[tuple[str, Any]] = [
        ("failed", queue.failed_job_registry),
        ("queued", None),
        ("retrying", queue.scheduled_job_registry),
        ("running", queue.started_job_registry),
    ]
    for state, registry in sources:
        ids = (
            queue.get_job_ids(0, MAX_JOBS - 1)
            if registry is None
            else registry.get_job_ids(0, MAX_JOBS - 1, cleanup=False)
        )
        for job in Job.fetch_many(ids, connection=engine.queue_client):
            key = _job_order(job)
            if job is None or key is None:
                continue
            queued = job.enqueued_at
            found.setdefault(
                key,
                EventJob(
                    state,
                    job_error(job) if state == "failed" else "",
                    int(queued.timestamp() * 1000) if queued is not None else None,
                ),
            )


def _job_order(job: Job | None) -> tuple[str, str] | None:
    """The (channel, order) an order-event job applies; None for any other job."""
    if job is None or job.func_name != APPLY_ORDER_EVENT:
        return None
    args = list(job.args or ())
    if len(args) < 2 or not isinstance(args[1], dict):
        return None
    return str(args[0]), str(args[1].get("order_id", ""))
