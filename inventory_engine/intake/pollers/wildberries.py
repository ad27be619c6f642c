"""Wildberries: new assembly tasks, then the statuses of the tasks still tracked, in turn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import structlog

from inventory_engine.channels.base import (
    ChannelClient,
    ChannelOrder,
    chunks,
)
from inventory_engine.domain.models import OrderAction
from inventory_engine.errors import ConfigError
from inventory_engine.intake.pollers.report import PollReport
from inventory_engine.intake.pollers.state import WB_NEW_STATUS, PollStore
from inventory_engine.service import Engine

log = structlog.get_logger()


MAX_STATUS_IDS = 1_000
"""WB task ids per ``POST /api/v3/orders/status``."""


MAX_STATUS_IDS_PER_POLL = 5_000
"""WB tasks whose status one poll asks for (5 requests); more are taken in turn over polls."""


TERMINAL_ACTIONS = frozenset(
    {OrderAction.FINAL, OrderAction.RELEASE, OrderAction.CANCEL_AFTER_SHIP}
)
"""A WB task with one of these is done: its status is not asked for again."""


@runtime_checkable
class _StatusSource(Protocol):
    def order_statuses(self, order_ids: Sequence[int | str]) -> list[ChannelOrder]: ...


def poll_wildberries(
    engine: Engine, client: ChannelClient, store: PollStore, report: PollReport
) -> None:
    """WB: queue new tasks not tracked yet, then the status changes of tracked tasks."""
    if not isinstance(client, _StatusSource):
        raise ConfigError(f"{report.channel}: the client cannot read task statuses")
    page = client.list_orders(report.cursor_in)
    report.pages += 1
    report.requests += 1
    report.fetched += len(page.orders)
    known = store.statuses([order.order_id for order in page.orders])
    fresh: dict[str, ChannelOrder] = {}
    for order in page.orders:
        if known.get(order.order_id) is None and order.order_id not in fresh:
            fresh[order.order_id] = order
        else:
            report.unchanged += 1
    report.queued += engine.queue_order_events(report.channel, list(fresh.values()), source="poll")
    store.track(list(fresh), page.cursor)
    report.cursor = page.cursor

    ids, next_offset = store.rotation(MAX_STATUS_IDS_PER_POLL)
    last = store.statuses(ids)
    statuses: list[ChannelOrder] = []
    for chunk in chunks(ids, MAX_STATUS_IDS):
        statuses.extend(client.order_statuses(chunk))
        report.requests += 1
    report.fetched += len(statuses)
    changed: list[ChannelOrder] = []
    queued: dict[str, str] = {}
    done: list[str] = []
    for status in statuses:
        before = queued.get(status.order_id, last.get(status.order_id))
        if status.action in TERMINAL_ACTIONS:
            done.append(status.order_id)
        if before == status.status:
            report.unchanged += 1
        elif before == WB_NEW_STATUS and status.action is OrderAction.RESERVE:
            # The RESERVE queued from the new-task list says the same to the ledger.
            queued[status.order_id] = status.status
            report.unchanged += 1
        else:
            changed.append(status)
            queued[status.order_id] = status.status
    report.queued += engine.queue_order_events(report.channel, changed, source="poll")
    store.save_statuses({k: v for k, v in queued.items() if k not in done}, done, next_offset)
    store.prune_open()
