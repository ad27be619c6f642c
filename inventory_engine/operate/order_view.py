"""One order as the engine saw it: every event received (webhook, poll, API, with its time and
what applying it did), the marketplace states among them no status rule knows (the engine
ignored them), its state and lines in the ledger, oversold lines, a failed job, and the
pushes it caused — for each change it made, the pushes of its SKUs (and of the bundles built
from them) to each channel, up to the channel's first answer that settled the value.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from inventory_engine.ledger.activity import OrderLogEntry, PushLogEntry
from inventory_engine.ledger.reads import OrderRecord, Oversell
from inventory_engine.ledger.redis_io import redis_errors
from inventory_engine.operate.common import text
from inventory_engine.operate.stuck import FailedJob, failed_jobs
from inventory_engine.service import Engine

CHANGING_OUTCOMES = frozenset({"applied", "oversold", "unknown_sku"})
"""Outcomes of an applied event that moved counters (a duplicate moved nothing)."""
SETTLED = frozenset({"accepted", "rejected"})
"""Push outcomes after which the channel's value no longer depends on this change."""
MAX_PUSHES = 2_000
"""Push log entries read at most for one order."""


@dataclass(frozen=True, slots=True)
class Dismissal:
    reason: str
    """As journaled: the operator's reason and who."""
    ms: int


@dataclass
class OrderView:
    channel: str
    order_id: str
    record: OrderRecord | None
    events: list[OrderLogEntry]
    """Oldest first."""
    pushes: list[PushLogEntry] = field(default_factory=list)
    """Oldest first."""
    oversold: list[Oversell] = field(default_factory=list)
    failed_jobs: list[FailedJob] = field(default_factory=list)
    dismissed: Dismissal | None = None
    """Its unknown-SKU lines were given up on (``order dismiss``)."""

    @property
    def known(self) -> bool:
        return self.record is not None or bool(self.events)

    @property
    def unrecognised(self) -> list[str]:
        """Raw marketplace states received for the order that no status rule knows, each
        once, first received first."""
        return list(dict.fromkeys(s for e in self.events for s in e.unrecognised))

    def as_json(self) -> dict[str, Any]:
        r = self.record
        ledger = None
        if r is not None:
            ledger = {
                "state": r.state.value,
                "status": r.status,
                "location": r.location,
                "lines": [{"sku": line.sku, "quantity": line.quantity} for line in r.lines],
                "unknown_lines": [{"item": s, "quantity": q} for s, q in r.unknown_lines],
                "created_ms": r.created_ms,
                "updated_ms": r.updated_ms,
                "expires_at_ms": r.expires_at_ms,
            }
        return {
            "channel": self.channel,
            "order_id": self.order_id,
            "known": self.known,
            "ledger": ledger,
            "unrecognised_states": self.unrecognised,
            "events": [asdict(e) for e in self.events],
            "pushes": [asdict(p) for p in self.pushes],
            "oversold": [asdict(o) for o in self.oversold],
            "failed_jobs": [asdict(j) for j in self.failed_jobs],
            "dismissed": asdict(self.dismissed) if self.dismissed is not None else None,
        }


def show_order(engine: Engine, channel: str, order_id: str) -> OrderView:
    """Everything the engine knows about one (channel, order)."""
    record = engine.reader.order(channel, order_id)
    events = engine.activity.order_events(channel, order_id)
    view = OrderView(channel, order_id, record, events)
    view.oversold = [
        o for o in engine.reader.oversells() if o.channel == channel and o.order_id == order_id
    ]
    view.failed_jobs = [
        job for job in failed_jobs(engine) if job.channel == channel and job.order_id == order_id
    ]
    if record is not None:
        view.pushes = _pushes_caused(engine, record, events)
        view.dismissed = _dismissal(engine, channel, order_id)
    return view


def _dismissal(engine: Engine, channel: str, order_id: str) -> Dismissal | None:
    with redis_errors():
        raw = engine.client.hget(engine.ledger.keys.order(channel, order_id), "dismissed")
    if raw is None:
        return None
    data = json.loads(text(raw))
    return Dismissal(str(data.get("reason", "")), int(data.get("ms", 0)))


def _change_times(record: OrderRecord, events: list[OrderLogEntry]) -> list[int]:
    """When the order moved counters: its applied events, else the record's own times."""
    times = [e.ms for e in events if e.stage == "applied" and e.outcome in CHANGING_OUTCOMES]
    if not times:
        times = sorted({record.created_ms, record.updated_ms} - {0})
    return sorted(times)


def _skus_touched(engine: Engine, record: OrderRecord) -> set[str]:
    """The order's SKUs, the components of its bundles, and the bundles built from those."""
    skus = {line.sku for line in record.lines}
    for line in record.lines:
        stock = engine.reader.stock(line.sku)
        if stock.recipe:
            skus.update(part for part, _ in stock.recipe)
    if skus:
        with redis_errors():
            parents = engine.client.hmget(engine.ledger.keys.bundle_parents, sorted(skus))
        for raw in parents:
            if raw is not None:
                skus.update(p for p in text(raw).split(";") if p)
    return skus


def _pushes_caused(
    engine: Engine, record: OrderRecord, events: list[OrderLogEntry]
) -> list[PushLogEntry]:
    times = _change_times(record, events)
    skus = _skus_touched(engine, record)
    if not times or not skus:
        return []
    # A push carrying the change may have started from its receipt, a little before it applied.
    since = min(times[0], *(e.ms for e in events)) if events else times[0]
    found = engine.activity.pushes(skus=skus, since_ms=since, limit=MAX_PUSHES)
    pushes = sorted(found, key=lambda p: _stream_order(p.entry_id))
    return _follow(pushes, times)


def _follow(pushes: list[PushLogEntry], times: list[int]) -> list[PushLogEntry]:
    """After each change time, per (channel, SKU), the pushes up to the first settled one."""
    chosen: dict[str, PushLogEntry] = {}
    for start in times:
        settled: set[tuple[str, str]] = set()
        for push in pushes:
            key = (push.channel, push.sku)
            if push.ms < start or key in settled:
                continue
            chosen[push.entry_id] = push
            if push.outcome in SETTLED:
                settled.add(key)
    return [chosen[k] for k in sorted(chosen, key=_stream_order)]


def _stream_order(entry_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in entry_id.split("-"))
