"""Orders check: the marketplace's own orders of a period against the ledger.

Each channel is listed through the endpoints its poller uses, paced like the poller:

* **Ozon** — postings whose status changed since the start of the period
  (``/v3/posting/fbs/list``), and every unfulfilled posting (an open order is named whatever
  its age);
* **Yandex Market** — orders updated since the start of the period;
* **Wildberries** — the new-task snapshot and the current status of every task the poller
  tracks (WB has no change feed: ``--since`` does not narrow it).

Each order's marketplace status maps to a ledger action (``domain/status_rules``); the ledger
should hold the order in the state that action leads to, or further along the same path
(reserved → committed → final). An order is ``ok``, ``in_flight`` (its event waits in the queue),
``missing`` (the ledger has no record of it) or ``differs`` (another state, or other lines), with
the likely reason read from the order's own log and the queues. An order whose marketplace state
no status rule knows is ``unrecognised``: the engine ignores it, so there is nothing to compare
(listed, not a problem: the warning log and ``inventory_unrecognised_states_total`` carry it).

Lines are compared too, since a right state says nothing about what is held: the marketplace's
lines (its item ids mapped through the catalog, summed per SKU) against the ledger's lines and
its lines parked for an unknown SKU. Each difference is named — a line the ledger lacks, one
only the ledger has, a quantity, a line unknown to the catalog. Lines are compared only where
the ledger holds or took stock for the order (reserved, committed, final, cancelled after ship):
a released order moved nothing whatever its lines. A listing without lines (a WB status answer
for a task not in the new-task snapshot) cannot be compared.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from rq.job import Job

from inventory_engine.channels.base import ChannelClient, ChannelError, ChannelOrder, chunks
from inventory_engine.domain.models import OrderAction, OrderState
from inventory_engine.intake.pollers import MAX_STATUS_IDS, poll_limits, tracked_tasks
from inventory_engine.ledger.activity import OrderLogEntry
from inventory_engine.ledger.ledger import redis_errors, wall_clock_ms
from inventory_engine.ledger.reads import OrderRecord
from inventory_engine.operate.common import Operation
from inventory_engine.operate.pacing import with_retries
from inventory_engine.operate.stuck import job_error
from inventory_engine.service import Engine
from inventory_engine.service.mapping import unmapped_sku

MAX_PAGES = 200
"""Pages of one feed read at most (a bound, never reached in practice)."""
MAX_JOBS = 10_000
"""Jobs of each queue and registry looked at to explain an order."""
STALE_QUEUED_S = 120
"""An event queued longer than this is not "in flight" any more: no worker takes it."""

_S = OrderState
ACCEPTS: dict[OrderAction, frozenset[OrderState]] = {
    OrderAction.RESERVE: frozenset({_S.RESERVED, _S.COMMITTED, _S.FINAL, _S.CANCELLED_AFTER_SHIP}),
    OrderAction.COMMIT: frozenset({_S.COMMITTED, _S.FINAL, _S.CANCELLED_AFTER_SHIP}),
    OrderAction.FINAL: frozenset({_S.FINAL}),
    OrderAction.CANCEL_AFTER_SHIP: frozenset({_S.CANCELLED_AFTER_SHIP}),
    OrderAction.RELEASE: frozenset({_S.RELEASED, _S.EXPIRED}),
    OrderAction.HOLD: frozenset(_S),
}
"""Ledger states that agree with the marketplace's action (the ledger may be further along)."""
HOLDS_STOCK = frozenset({_S.RESERVED, _S.COMMITTED, _S.FINAL, _S.CANCELLED_AFTER_SHIP})
"""Ledger states in which the order's lines moved stock: only there do its lines matter."""


class Verdict(StrEnum):
    OK = "ok"
    IN_FLIGHT = "in_flight"
    MISSING = "missing"
    DIFFERS = "differs"
    UNRECOGNISED = "unrecognised"


PROBLEMS = frozenset({Verdict.MISSING, Verdict.DIFFERS})
"""Verdicts that make ``orders check`` exit 1."""


@dataclass(frozen=True, slots=True)
class OrderCheck:
    channel: str
    order_id: str
    status: str
    """The marketplace's status."""
    action: str
    ledger_state: str | None
    verdict: Verdict
    reason: str = ""
    lines: tuple[str, ...] = ()
    """How the marketplace's lines and the ledger's differ, one text each (none: same)."""


@dataclass
class ChannelOrders:
    channel: str
    kind: str
    listed: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    checks: list[OrderCheck] = field(default_factory=list)
    """Orders that are not ok (all with ``keep_all``)."""
    error: str | None = None


@dataclass
class OrdersCheckReport:
    since_ms: int
    channels: list[ChannelOrders]

    @property
    def problems(self) -> list[OrderCheck]:
        return [c for ch in self.channels for c in ch.checks if c.verdict in PROBLEMS]

    @property
    def errors(self) -> list[ChannelOrders]:
        return [ch for ch in self.channels if ch.error is not None]


@runtime_checkable
class _StatusSource(Protocol):
    def order_statuses(self, order_ids: Sequence[int | str]) -> list[ChannelOrder]: ...


@runtime_checkable
class _UnfulfilledSource(Protocol):
    def list_unfulfilled(self) -> list[ChannelOrder]: ...


@dataclass(frozen=True, slots=True)
class _Job:
    state: str
    """failed | queued | retrying | running"""
    error: str
    queued_ms: int | None


def check_orders(
    operation: Operation,
    channels: Sequence[str],
    *,
    since: timedelta,
    keep_all: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> OrdersCheckReport:
    """List each channel's orders of the period and compare them with the ledger.

    Raises:
        ConfigError: the channels cannot be reached from here (sandbox mode).
        LedgerUnavailableError: Redis failed.
    """
    operation.require_reachable()
    engine = operation.engine
    start = datetime.now(UTC) - since
    jobs = _event_jobs(engine)
    report = OrdersCheckReport(int(start.timestamp() * 1000), [])
    for name in channels:
        kind = engine.channel_settings[name].kind
        result = ChannelOrders(name, kind)
        report.channels.append(result)
        try:
            orders = _marketplace_orders(engine, name, kind, start, sleep)
        except ChannelError as exc:
            result.error = str(exc)
            continue
        result.listed = len(orders)
        items = _Items(engine, engine.channel(name).order_item_field)
        for order in orders:
            if order.action is OrderAction.IGNORE and order.unrecognised:
                check = _unrecognised(engine, name, order)
            elif order.action is OrderAction.IGNORE:
                continue
            else:
                job = jobs.get((name, order.order_id))
                check = _check(engine, name, kind, items, order, job)
            result.counts[check.verdict.value] = result.counts.get(check.verdict.value, 0) + 1
            if keep_all or check.verdict is not Verdict.OK:
                result.checks.append(check)
    return report


# -- listing -------------------------------------------------------------------------------------


def _marketplace_orders(
    engine: Engine, name: str, kind: str, start: datetime, sleep: Callable[[float], None]
) -> list[ChannelOrder]:
    """The channel's orders, the latest view of each, in the order first listed."""
    client = engine.channel(name)
    spacing = poll_limits(kind).request_spacing_s
    calls = 0

    def paced(request: Callable[[], Any]) -> Any:
        nonlocal calls
        if calls:
            sleep(spacing)
        calls += 1
        return with_retries(request, sleep=sleep)

    found: dict[str, ChannelOrder] = {}
    if kind == "wildberries":
        _wildberries(engine, name, client, paced, found)
    else:
        cursor = start.astimezone(UTC).isoformat(timespec="seconds")
        for _ in range(MAX_PAGES):
            page = paced(functools.partial(client.list_orders, cursor))
            found.update((o.order_id, o) for o in page.orders)
            if not page.more or page.cursor == cursor:
                break
            cursor = page.cursor
        if isinstance(client, _UnfulfilledSource):
            found.update((o.order_id, o) for o in paced(client.list_unfulfilled))
    return list(found.values())


def _wildberries(
    engine: Engine,
    name: str,
    client: ChannelClient,
    paced: Callable[[Callable[[], Any]], Any],
    found: dict[str, ChannelOrder],
) -> None:
    page = paced(lambda: client.list_orders(None))
    found.update((o.order_id, o) for o in page.orders)
    if not isinstance(client, _StatusSource):
        return
    ids = sorted(set(found) | tracked_tasks(engine, name))
    for chunk in chunks(ids, MAX_STATUS_IDS):
        for status in paced(functools.partial(client.order_statuses, chunk)):
            # A status answer has no lines: a task of the new-task snapshot keeps its line.
            seen = found.get(status.order_id)
            if seen is not None and not status.lines:
                status = replace(status, lines=seen.lines)
            found[status.order_id] = status


# -- comparing -----------------------------------------------------------------------------------


def _check(
    engine: Engine,
    channel: str,
    kind: str,
    items: _Items,
    order: ChannelOrder,
    job: _Job | None,
) -> OrderCheck:
    record = engine.reader.order(channel, order.order_id)
    state = record.state if record is not None else None
    lines = _line_differences(items, order, record)
    if state is not None and state in ACCEPTS[order.action]:
        if not lines:
            return _result(channel, order, record, Verdict.OK)
        return _result(channel, order, record, Verdict.DIFFERS, _lines_reason(lines), lines)
    events = engine.activity.order_events(channel, order.order_id)
    if job is not None:
        verdict, reason = _job_reason(job, record)
    elif record is None:
        verdict, reason = Verdict.MISSING, _missing_reason(kind, order, events)
    else:
        verdict, reason = Verdict.DIFFERS, _differs_reason(order, record, events)
    if lines:
        reason = f"{reason}; {_lines_reason(lines)}"
    return _result(channel, order, record, verdict, reason, lines)


def _unrecognised(engine: Engine, channel: str, order: ChannelOrder) -> OrderCheck:
    record = engine.reader.order(channel, order.order_id)
    states = ", ".join(order.unrecognised)
    reason = f"state {states} is not one the engine knows: ignored (its status rules need it)"
    return _result(channel, order, record, Verdict.UNRECOGNISED, reason)


def _result(
    channel: str,
    order: ChannelOrder,
    record: OrderRecord | None,
    verdict: Verdict,
    reason: str = "",
    lines: tuple[str, ...] = (),
) -> OrderCheck:
    return OrderCheck(
        channel=channel,
        order_id=order.order_id,
        status=order.status,
        action=order.action.value,
        ledger_state=record.state.value if record is not None else None,
        verdict=verdict,
        reason=reason,
        lines=lines,
    )


def _lines_reason(lines: tuple[str, ...]) -> str:
    return "lines differ: " + "; ".join(lines)


class _Items:
    """A channel's item ids as seller SKUs, through the catalog, each id looked up once per
    check (orders share items)."""

    def __init__(self, engine: Engine, field: str) -> None:
        self.field = field
        self.named = field.replace("_", " ")
        self._catalog = engine.catalog
        self._skus: dict[str, str | None] = {}

    def sku(self, item_id: str) -> str | None:
        if self.field == "sku":  # the storefront's own ids are SKUs already
            return item_id
        if item_id not in self._skus:
            self._skus[item_id] = self._catalog.sku_for(self.field, item_id)
        return self._skus[item_id]


def _line_differences(
    items: _Items, order: ChannelOrder, record: OrderRecord | None
) -> tuple[str, ...]:
    """What differs between the marketplace's lines and the ledger's, in the marketplace's
    line order then the ledger's; empty when they agree or cannot be compared."""
    if record is None or record.state not in HOLDS_STOCK or not order.lines:
        return ()
    held: dict[str, int] = {}
    for line in record.lines:
        held[line.sku] = held.get(line.sku, 0) + line.quantity
    parked = dict(record.unknown_lines)
    # Per marketplace item (one SKU may come on several lines): quantity and the SKU it is now.
    asked: dict[str, int] = {}
    for channel_line in order.lines:
        asked[channel_line.item_id] = asked.get(channel_line.item_id, 0) + channel_line.quantity
    named = items.named
    found: list[str] = []
    wanted: dict[str, int] = {}
    for item_id, quantity in asked.items():
        stand_in = unmapped_sku(items.field, item_id)
        sku = items.sku(item_id)
        if stand_in in parked and sku not in held:
            # Set aside when the order arrived: the known lines applied, this one did not.
            if sku is None:
                found.append(f"line unknown to the catalog: {named} {item_id} ×{quantity}")
            else:
                found.append(
                    f"line unknown to the catalog when the order arrived: {named} {item_id} "
                    f"×{quantity}, {sku} since (inventory-engine retry applies it)"
                )
            parked.pop(stand_in)
        elif sku is None or sku not in held:
            what = f"{named} {item_id}" + (f" ({sku})" if sku is not None else "")
            found.append(f"ledger has no line for {what} ×{quantity}")
        else:
            wanted[sku] = wanted.get(sku, 0) + quantity
    for sku, quantity in wanted.items():
        if held[sku] != quantity:
            found.append(f"quantity differs for {sku}: ledger {held[sku]}, marketplace {quantity}")
    for sku, quantity in held.items():
        if sku not in wanted:
            found.append(f"marketplace has no line for {sku} (ledger ×{quantity})")
    for stand_in, quantity in parked.items():
        found.append(f"marketplace has no line for {stand_in} (parked in the ledger ×{quantity})")
    return tuple(found)


def _job_reason(job: _Job, record: OrderRecord | None) -> tuple[Verdict, str]:
    problem = Verdict.MISSING if record is None else Verdict.DIFFERS
    if job.state == "failed":
        return problem, f"received but not applied: its job failed ({job.error}); fix, then retry"
    age_s = (wall_clock_ms() - job.queued_ms) / 1000 if job.queued_ms else 0.0
    if job.state == "queued" and age_s > STALE_QUEUED_S:
        return problem, f"received {age_s:.0f} s ago, still queued: is a worker running?"
    what = {"queued": "queued", "retrying": "failed once, retrying", "running": "being applied"}
    return Verdict.IN_FLIGHT, f"received, {what.get(job.state, job.state)}"


def _missing_reason(kind: str, order: ChannelOrder, events: list[OrderLogEntry]) -> str:
    received = [e for e in events if e.stage == "received"]
    applied = [e for e in events if e.stage == "applied"]
    no_effect = " (cancelled: no stock effect)" if order.action is OrderAction.RELEASE else ""
    if not received:
        if kind == "wildberries":
            return "never received (is the poller running? the task may have left 'new' unseen)"
        return "never received (webhook not configured? poll cursor ahead?)" + no_effect
    if any(e.outcome == "not_found" for e in applied):
        return "received, but it carried no lines and the marketplace did not return the order"
    if all(e.action == OrderAction.IGNORE.value for e in received):
        statuses = ", ".join(sorted({e.status for e in received}))
        return f"received only as {statuses}, which changes no stock; later statuses never came"
    return "received but not applied (worker down? failed job expired?)"


def _differs_reason(order: ChannelOrder, record: OrderRecord, events: list[OrderLogEntry]) -> str:
    head = f"marketplace {order.status} ({order.action.value}), ledger {record.state.value}"
    action = order.action.value
    last_applied = max((e.ms for e in events if e.stage == "applied"), default=None)
    same = [e for e in events if e.stage == "received" and e.action == action]
    if any(
        e.stage == "applied" and e.action == action and e.outcome == "duplicate" for e in events
    ):
        return f"{head}: the ledger ignored it, the order was already {record.state.value}"
    if same and (last_applied is None or max(e.ms for e in same) > last_applied):
        return f"{head}: received but not applied (worker down? failed job expired?)"
    if not same:
        cause = "status change never received (webhook not configured? poll cursor ahead?)"
        if order.action is OrderAction.RELEASE and record.state in (_S.COMMITTED, _S.FINAL):
            cause = (
                "cancelled after the ledger saw the goods leave: book a return if they came back"
            )
        return f"{head}: {cause}"
    return head


def _event_jobs(engine: Engine) -> dict[tuple[str, str], _Job]:
    """Event jobs by (channel, order): failed, queued, waiting to retry, running."""
    queue = engine.events
    connection = engine.queue_client
    found: dict[tuple[str, str], _Job] = {}
    with redis_errors():
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
            for job in Job.fetch_many(ids, connection=connection):
                key = _job_order(job)
                if job is None or key is None:
                    continue
                queued = job.enqueued_at
                found.setdefault(
                    key,
                    _Job(
                        state,
                        job_error(job) if state == "failed" else "",
                        int(queued.timestamp() * 1000) if queued is not None else None,
                    ),
                )
        # Events set aside after failing again and again: like a failed job.
        for dead in engine.inbox.dead_letters(MAX_JOBS):
            key = (dead.channel, dead.order_id)
            found.setdefault(key, _Job("failed", f"{dead.reason}: {dead.error}", dead.ms))
        # Events waiting in the inbox (or being applied): queued since their entry's time.
        for entry in engine.inbox.peek(MAX_JOBS):
            key = (entry.channel, str(entry.data.get("order_id", "")))
            found.setdefault(key, _Job("queued", "", int(entry.entry_id.split("-")[0])))
    return found


def _job_order(job: Job | None) -> tuple[str, str] | None:
    if job is None or job.func_name != "workers.jobs.apply_order_event":
        return None
    args = list(job.args or ())
    if len(args) < 2 or not isinstance(args[1], dict):
        return None
    return str(args[0]), str(args[1].get("order_id", ""))
