"""Ozon and Yandex Market: orders changed since the cursor, page by page, and (Ozon) every
unfulfilled posting; an order is queued only when its event key changed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import structlog

from inventory_engine.channels.base import (
    ChannelClient,
    ChannelOrder,
    OrdersPage,
)
from inventory_engine.errors import ConfigError
from inventory_engine.intake.pollers.pacing import MAX_PAGES_PER_POLL, poll_limits
from inventory_engine.intake.pollers.report import PollReport
from inventory_engine.intake.pollers.state import PollStore
from inventory_engine.service import Engine

log = structlog.get_logger()


@runtime_checkable
class _UnfulfilledSource(Protocol):
    def list_unfulfilled(self) -> list[ChannelOrder]: ...


def changed_orders(
    orders: Sequence[ChannelOrder], last: dict[str, str | None], report: PollReport
) -> tuple[list[ChannelOrder], dict[str, str]]:
    """The orders whose event key differs from the last one queued, and their new keys."""
    changed: list[ChannelOrder] = []
    keys: dict[str, str] = {}
    for order in orders:
        key = order.event_key or f"{order.status}|{order.action.value}"
        if keys.get(order.order_id, last.get(order.order_id)) == key:
            report.unchanged += 1
            continue
        changed.append(order)
        keys[order.order_id] = key
    return changed, keys


def _list_orders(client: ChannelClient, cursor: str | None, report: PollReport) -> OrdersPage:
    try:
        return client.list_orders(cursor)
    except ValueError:
        if cursor is None:
            raise
        # A cursor this client cannot read (an older format, a hand edit) would stop the feed
        # for good: start again from the channel's recent window; replays are harmless.
        log.warning("order_poll_cursor_reset", channel=report.channel, cursor=cursor)
        report.cursor_reset = True
        return client.list_orders(None)


def _estimated_requests(kind: str, rows: int) -> int:
    return 1 + rows // poll_limits(kind).requests_per_page


def poll_feed(engine: Engine, client: ChannelClient, store: PollStore, report: PollReport) -> None:
    """Ozon and YM: changed orders since the cursor, page by page; each page's events are
    queued before its cursor is stored."""
    cursor = report.cursor_in
    for _ in range(MAX_PAGES_PER_POLL):
        page = _list_orders(client, cursor, report)
        report.pages += 1
        report.requests += _estimated_requests(report.kind, len(page.orders))
        report.fetched += len(page.orders)
        ids = [order.order_id for order in page.orders]
        changed, keys = changed_orders(page.orders, store.seen(ids), report)
        report.queued += engine.queue_order_events(report.channel, changed, source="poll")
        store.save_seen(keys, ids, page.cursor)
        report.cursor = cursor = page.cursor
        report.more = page.more
        if not page.more:
            return


def poll_unfulfilled(
    engine: Engine, client: ChannelClient, store: PollStore, report: PollReport
) -> None:
    """Ozon: every unfulfilled posting, the net for new postings whose push never came."""
    if not isinstance(client, _UnfulfilledSource):
        raise ConfigError(f"{report.channel}: the client cannot list unfulfilled postings")
    orders = client.list_unfulfilled()
    report.requests += _estimated_requests(report.kind, len(orders))
    report.fetched += len(orders)
    ids = [order.order_id for order in orders]
    changed, keys = changed_orders(orders, store.seen(ids), report)
    report.queued += engine.queue_order_events(report.channel, changed, source="poll")
    store.save_seen(keys, ids, None)
