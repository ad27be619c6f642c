"""Listing a channel's own orders of a period, for ``orders check``.

Each channel is listed through the endpoints its poller uses, paced like the poller:

* **Ozon** — postings whose status changed since the start of the period
  (``/v3/posting/fbs/list``), and every unfulfilled posting (an open order is named whatever
  its age);
* **Yandex Market** — orders updated since the start of the period;
* **Wildberries** — the new-task snapshot and the current status of every task the poller
  tracks (WB has no change feed: ``--since`` does not narrow it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from inventory_engine.channels.base import ChannelClient, ChannelOrder, chunks
from inventory_engine.intake.pollers import MAX_STATUS_IDS, poll_limits, tracked_tasks
from inventory_engine.operate.pacing import with_retries
from inventory_engine.service import Engine

MAX_PAGES = 200
"""Pages of one feed read at most (a bound, never reached in practice)."""

Paced = Callable[[Callable[[], Any]], Any]
"""Runs one request to the channel, spaced from the previous one and retried like the poller."""


@runtime_checkable
class _StatusSource(Protocol):
    def order_statuses(self, order_ids: Sequence[int | str]) -> list[ChannelOrder]: ...


@runtime_checkable
class _UnfulfilledSource(Protocol):
    def list_unfulfilled(self) -> list[ChannelOrder]: ...


def list_marketplace_orders(
    engine: Engine, name: str, kind: str, start: datetime, sleep: Callable[[float], None]
) -> list[ChannelOrder]:
    """The channel's orders, the latest view of each, in the order first listed.

    Raises:
        ChannelError: the channel failed, after the retries.
    """
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
        _feed(client, start, paced, found)
    return list(found.values())


def _feed(
    client: ChannelClient, start: datetime, paced: Paced, found: dict[str, ChannelOrder]
) -> None:
    """Ozon and Yandex Market: the change feed from the start of the period, then (Ozon) the
    unfulfilled orders."""
    cursor = start.astimezone(UTC).isoformat(timespec="seconds")
    for _ in range(MAX_PAGES):
        page = paced(functools.partial(client.list_orders, cursor))
        found.update((o.order_id, o) for o in page.orders)
        if not page.more or page.cursor == cursor:
            break
        cursor = page.cursor
    if isinstance(client, _UnfulfilledSource):
        found.update((o.order_id, o) for o in paced(client.list_unfulfilled))


def _wildberries(
    engine: Engine,
    name: str,
    client: ChannelClient,
    paced: Paced,
    found: dict[str, ChannelOrder],
) -> None:
    """The new-task snapshot, then the status of those tasks and of every task tracked."""
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
