"""Orders check: the marketplace's own orders of a period against the ledger.

Each channel's orders are listed as its poller reads them (:mod:`.marketplace_orders`). Each
order's marketplace status maps to a ledger action (``domain/status_rules``); the ledger
should hold the order in the state that action leads to, or further along the same path
(reserved → committed → final). An order is ``ok``, ``in_flight`` (its event waits in the queue),
``missing`` (the ledger has no record of it) or ``differs`` (another state, or other lines), with
the likely reason read from the order's own log and the queues (:mod:`.event_jobs`). An order
whose marketplace state no status rule knows is ``unrecognised``: the engine ignores it, so
there is nothing to compare (listed, not a problem: the warning log and
``inventory_unrecognised_states_total`` carry it).

Lines are compared too, since a right state says nothing about what is held
(:mod:`.order_lines`): each line the ledger lacks, only the ledger has, or holds in another
quantity is named, wherever the ledger holds or took stock for the order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from inventory_engine.channels.base import ChannelError, ChannelOrder
from inventory_engine.domain.models import OrderAction, OrderState
from inventory_engine.ledger.activity import OrderLogEntry
from inventory_engine.ledger.reads import OrderRecord
from inventory_engine.ledger.redis_io import wall_clock_ms
from inventory_engine.operate.common import Operation
from inventory_engine.operate.event_jobs import EventJob, event_jobs
from inventory_engine.operate.marketplace_orders import list_marketplace_orders
from inventory_engine.operate.order_lines import ItemSkus, line_differences, lines_reason
from inventory_engine.service import Engine

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
    jobs = event_jobs(engine)
    report = OrdersCheckReport(int(start.timestamp() * 1000), [])
    for name in channels:
        kind = engine.channel_settings[name].kind
        result = ChannelOrders(name, kind)
        report.channels.append(result)
        try:
            orders = list_marketplace_orders(engine, name, kind, start, sleep)
        except ChannelError as exc:
            result.error = str(exc)
            continue
        result.listed = len(orders)
        items = ItemSkus(engine, engine.channel(name).order_item_field)
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


# -- one order against the ledger ----------------------------------------------------------------


def _check(
    engine: Engine,
    channel: str,
    kind: str,
    items: ItemSkus,
    order: ChannelOrder,
    job: EventJob | None,
) -> OrderCheck:
    """The order's verdict: its state and lines against the ledger's, with the likely reason."""
    record = engine.reader.order(channel, order.order_id)
    state = record.state if record is not None else None
    lines = line_differences(items, order, record)
    if state is not None and state in ACCEPTS[order.action]:
        if not lines:
            return _result(channel, order, record, Verdict.OK)
        return _result(channel, order, record, Verdict.DIFFERS, lines_reason(lines), lines)
    events = engine.activity.order_events(channel, order.order_id)
    if job is not None:
        verdict, reason = _job_reason(job, record)
    elif record is None:
        verdict, reason = Verdict.MISSING, _missing_reason(kind, order, events)
    else:
        verdict, reason = Verdict.DIFFERS, _differs_reason(order, record, events)
    if lines:
        reason = f"{reason}; {lines_reason(lines)}"
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


# -- the likely reason an order is missing or differs ---------------------------------------------


def _job_reason(job: EventJob, record: OrderRecord | None) -> tuple[Verdict, str]:
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
