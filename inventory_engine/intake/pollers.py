"""Order polling: Wildberries' only intake, and the safety net under Ozon's and Yandex Market's
notifications (a push that comes late or never is still read within one poll interval).

A poll takes the same idempotent path as a webhook: what it reads becomes
:meth:`Engine.queue_order_events`, applied later by the workers. Per channel kind:

* **Wildberries** (no webhooks for self-built apps, reference §2.4): ``GET /api/v3/orders/new``
  (a snapshot of every new assembly task) queues a RESERVE with its line for each task not
  tracked yet, and starts tracking it; then ``POST /api/v3/orders/status`` (≤ 1000 ids a call)
  asks for the tracked tasks and queues an event only when a task's status text differs from
  the last one queued. A task whose status is final, released or cancelled after ship is no
  longer tracked.
* **Ozon**: ``/v3/posting/fbs/list`` by ``last_changed_status_date`` from the stored cursor,
  following ``more`` within one poll (bounded), then ``/v3/posting/fbs/unfulfilled/list``.
* **Yandex Market**: ``POST /v1/businesses/{id}/orders`` by update date, following ``more``.

Every kind queues an event only when it differs from the last one queued for that order
(Ozon and YM compare the event key, WB the status text): re-read windows and snapshots cost
nothing downstream. State lives in Redis beside the ledger, so a restart goes on where it
stopped::

    inv:{<account>}:poll:<channel>:state    hash  cursor, polled_ms, status_offset (WB rotation)
    inv:{<account>}:poll:<channel>:open     zset  WB: tracked task id -> ms first seen
    inv:{<account>}:poll:<channel>:status   hash  WB: tracked task id -> last status text queued
    inv:{<account>}:poll:<channel>:seen     hash  Ozon/YM: order id -> last event key queued
    inv:{<account>}:poll:<channel>:seen_at  zset  Ozon/YM: order id -> ms last listed

The cursor and the de-duplication state are written only after the events were queued: a crash
in between re-reads and re-queues (the ledger ignores replays), it never loses an event.

Channel failures (rate limits, outages, refusals) are reported in the :class:`PollReport`, the
cursor stays, and :class:`PollerLoop` waits ``retry_after`` or a growing delay before the next
poll. Intervals come from ``poll_interval_s`` with a floor per kind that keeps the poller well
inside each marketplace's limits (:data:`POLL_LIMITS`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import redis
import structlog

from inventory_engine.channels.base import (
    ChannelClient,
    ChannelError,
    ChannelOrder,
    ChannelRateLimitedError,
    OrdersPage,
    chunks,
)
from inventory_engine.config import ChannelSettings
from inventory_engine.domain.models import OrderAction
from inventory_engine.errors import ConfigError
from inventory_engine.service import Engine

log = structlog.get_logger()

WILDBERRIES, OZON, YANDEX_MARKET = "wildberries", "ozon", "yandex_market"


@dataclass(frozen=True, slots=True)
class PollLimits:
    """How often one channel kind may be polled.

    Attributes:
        default_interval_s: the interval when ``poll_interval_s`` is not set.
        floor_s: the shortest interval allowed, whatever the settings say.
        request_spacing_s: the least average time per order request of this poller: a poll
            that made N requests waits at least N times this before the next one.
        requests_per_page: order rows one request returns (to estimate requests a client
            call made while paging inside it).
    """

    default_interval_s: float
    floor_s: float
    request_spacing_s: float
    requests_per_page: int


POLL_LIMITS: dict[str, PollLimits] = {
    # FBS order methods: 300 req/min (5 rps), burst 20, shared with the workers' get_order
    # lookups. A usual poll is 2 requests (new + status): at the 2 s floor that is 1 rps, 20 %.
    # Bursts are paced at 2.5 rps, half the limit.
    WILDBERRIES: PollLimits(5.0, 2.0, 0.4, 1_000),
    # 50 rps per Client-Id for every method, stock pushes included. A usual poll is 2 requests
    # (list + unfulfilled): at the 1 s floor that is 2 rps, 4 %. Paging is paced at 10 rps.
    OZON: PollLimits(60.0, 1.0, 0.1, 1_000),
    # Order reads: 10,000 req/hour (2.8 rps), shared with get_order lookups. A usual poll is one
    # request: at the 5 s floor that is 720/hour, 7 %. Paging is paced at 0.7 rps, a quarter.
    YANDEX_MARKET: PollLimits(60.0, 5.0, 1.44, 50),
}
"""Polled kinds and their pacing (reference §0). ``webhook`` channels are not polled."""

MAX_PAGES_PER_POLL = 10
"""``more`` is followed at most this many times in one poll; the rest comes at the floor."""
MAX_STATUS_IDS = 1_000
"""WB task ids per ``POST /api/v3/orders/status``."""
MAX_STATUS_IDS_PER_POLL = 5_000
"""WB tasks whose status one poll asks for (5 requests); more are taken in turn over polls."""
WB_NEW_STATUS = "new"
"""The status WB's new-task list gives a task (its status call then says ``new/waiting``)."""
WB_TRACK_MAX_AGE_S = 90 * 86_400
"""A WB task still open after this long is no longer asked for (WB's order horizon)."""
SEEN_RETENTION_S = 3 * 86_400
"""Ozon/YM: an order not listed for this long is forgotten by the de-duplication."""
PRUNE_BATCH = 1_000
"""Entries pruned per poll at most (the rest next time)."""
MAX_BACKOFF_S = 300.0
"""Longest wait after repeated failures (unless the interval itself is longer)."""
TERMINAL_ACTIONS = frozenset(
    {OrderAction.FINAL, OrderAction.RELEASE, OrderAction.CANCEL_AFTER_SHIP}
)
"""A WB task with one of these is done: its status is not asked for again."""


# -- intervals ------------------------------------------------------------------------------------


def is_polled(settings: ChannelSettings) -> bool:
    """Whether channels of this kind are polled (``webhook`` channels are not)."""
    return settings.kind in POLL_LIMITS


def poll_limits(kind: str) -> PollLimits:
    """The pacing of a polled kind.

    Raises:
        ConfigError: the kind is not polled.
    """
    if kind not in POLL_LIMITS:
        raise ConfigError(f"channels of kind {kind!r} are not polled")
    return POLL_LIMITS[kind]


def poll_interval(settings: ChannelSettings) -> float:
    """Seconds between two polls of a channel: ``poll_interval_s`` or the kind's default, never
    below the kind's floor.

    Raises:
        ConfigError: the channel's kind is not polled.
    """
    limits = poll_limits(settings.kind)
    wanted = settings.poll_interval_s
    return max(limits.floor_s, limits.default_interval_s if wanted is None else wanted)


# -- keys and stored state ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PollKeys:
    """Key names of one channel's polling state (``inv:{<account>}:poll:<channel>:<thing>``)."""

    base: str
    """``engine.ledger.keys.base``: ``inv:{<account>}``."""
    channel: str

    @classmethod
    def of(cls, engine: Engine, channel: str) -> PollKeys:
        return cls(engine.ledger.keys.base, channel)

    def _key(self, thing: str) -> str:
        return f"{self.base}:poll:{self.channel}:{thing}"

    @property
    def state(self) -> str:
        return self._key("state")

    @property
    def open(self) -> str:
        return self._key("open")

    @property
    def status(self) -> str:
        return self._key("status")

    @property
    def seen(self) -> str:
        return self._key("seen")

    @property
    def seen_at(self) -> str:
        return self._key("seen_at")

    @property
    def all(self) -> tuple[str, ...]:
        return (self.state, self.open, self.status, self.seen, self.seen_at)


def _fields(values: dict[str, str]) -> dict[Any, Any]:
    """A hash mapping as redis-py's stubs want it (their key type is invariant)."""
    return dict(values)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


class _Store:
    """One channel's polling state in Redis; every write happens after the events were queued."""

    def __init__(self, client: redis.Redis, keys: PollKeys, clock: Callable[[], float]) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def cursor(self) -> str | None:
        return _text(self.client.hget(self.keys.state, "cursor")) or None

    def _state(self, pipe: Any, cursor: str | None, **fields: Any) -> None:
        mapping: dict[str, Any] = {"polled_ms": self.now_ms(), **fields}
        if cursor is not None:
            mapping["cursor"] = cursor
        pipe.hset(self.keys.state, mapping=mapping)

    # Ozon, YM: last event key queued per order.

    def seen(self, ids: Sequence[str]) -> dict[str, str | None]:
        if not ids:
            return {}
        values = self.client.hmget(self.keys.seen, list(ids))
        return {order_id: _text(v) for order_id, v in zip(ids, values, strict=True)}

    def save_seen(self, queued: dict[str, str], listed: Iterable[str], cursor: str | None) -> None:
        now = self.now_ms()
        with self.client.pipeline(transaction=True) as pipe:
            if queued:
                pipe.hset(self.keys.seen, mapping=_fields(queued))
            touched = {order_id: now for order_id in listed}
            if touched:
                pipe.zadd(self.keys.seen_at, touched)
            self._state(pipe, cursor)
            pipe.execute()

    def prune_seen(self) -> int:
        cutoff = self.now_ms() - int(SEEN_RETENTION_S * 1000)
        old = self.client.zrangebyscore(self.keys.seen_at, "-inf", cutoff, start=0, num=PRUNE_BATCH)
        if old:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.hdel(self.keys.seen, *old)
                pipe.zrem(self.keys.seen_at, *old)
                pipe.execute()
        return len(old)

    # WB: tracked open tasks and the last status text queued for each.

    def statuses(self, ids: Sequence[str]) -> dict[str, str | None]:
        if not ids:
            return {}
        values = self.client.hmget(self.keys.status, list(ids))
        return {task_id: _text(v) for task_id, v in zip(ids, values, strict=True)}

    def track(self, ids: Sequence[str], cursor: str) -> None:
        now = self.now_ms()
        with self.client.pipeline(transaction=True) as pipe:
            if ids:
                pipe.zadd(self.keys.open, dict.fromkeys(ids, now), nx=True)
                pipe.hset(self.keys.status, mapping=dict.fromkeys(ids, WB_NEW_STATUS))
            self._state(pipe, cursor)
            pipe.execute()

    def rotation(self, count: int) -> tuple[list[str], int]:
        """The next ``count`` tracked ids in turn, and the offset to start from next time."""
        total = int(self.client.zcard(self.keys.open))
        offset = int(_text(self.client.hget(self.keys.state, "status_offset")) or 0)
        if offset >= total:
            offset = 0
        ids = [
            _text(v) or "" for v in self.client.zrange(self.keys.open, offset, offset + count - 1)
        ]
        following = offset + len(ids)
        return ids, following if following < total else 0

    def save_statuses(self, queued: dict[str, str], done: Sequence[str], offset: int) -> None:
        with self.client.pipeline(transaction=True) as pipe:
            if queued:
                pipe.hset(self.keys.status, mapping=_fields(queued))
            if done:
                pipe.zrem(self.keys.open, *done)
                pipe.hdel(self.keys.status, *done)
            self._state(pipe, None, status_offset=offset)
            pipe.execute()

    def prune_open(self) -> int:
        cutoff = self.now_ms() - int(WB_TRACK_MAX_AGE_S * 1000)
        old = self.client.zrangebyscore(self.keys.open, "-inf", cutoff, start=0, num=PRUNE_BATCH)
        if old:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.zrem(self.keys.open, *old)
                pipe.hdel(self.keys.status, *old)
                pipe.execute()
        return len(old)


def read_cursor(engine: Engine, channel: str) -> str | None:
    """The stored cursor of a channel (None before its first successful poll)."""
    return _Store(engine.client, PollKeys.of(engine, channel), time.time).cursor()


def tracked_tasks(engine: Engine, channel: str) -> set[str]:
    """The WB task ids whose status the poller still asks for."""
    members = engine.client.zrange(PollKeys.of(engine, channel).open, 0, -1)
    return {_text(m) or "" for m in members}


def reset_poll_state(engine: Engine, channel: str) -> int:
    """Forget a channel's cursor and de-duplication (the next poll starts afresh; replays are
    harmless). Returns how many keys were deleted."""
    return int(engine.client.delete(*PollKeys.of(engine, channel).all))


# -- one poll -------------------------------------------------------------------------------------


@dataclass(slots=True)
class PollReport:
    """What one poll of one channel did.

    Attributes:
        fetched: order rows read (list entries and status rows).
        queued: events queued for the workers.
        unchanged: rows skipped because the same event was queued before.
        pages: ``list_orders`` pages read.
        requests: API requests made (estimated where a client pages inside one call).
        cursor_in: the cursor the poll started from.
        cursor: the cursor stored after it (``cursor_in`` if nothing was stored).
        more: the feed has more pages than one poll reads: poll again soon.
        cursor_reset: the stored cursor was unreadable and the poll started without one.
        error: the channel failure that ended the poll early, if any.
        retry_after_s: how long the channel asked to wait (rate limits).
    """

    channel: str
    kind: str
    cursor_in: str | None = None
    cursor: str | None = None
    fetched: int = 0
    queued: int = 0
    unchanged: int = 0
    pages: int = 0
    requests: int = 0
    more: bool = False
    cursor_reset: bool = False
    error: str | None = None
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class _StatusSource(Protocol):
    def order_statuses(self, order_ids: Sequence[int | str]) -> list[ChannelOrder]: ...


@runtime_checkable
class _UnfulfilledSource(Protocol):
    def list_unfulfilled(self) -> list[ChannelOrder]: ...


def poll_once(
    engine: Engine, channel: str, *, clock: Callable[[], float] = time.time
) -> PollReport:
    """Poll one channel once: read, queue what changed, then store the cursor and the state.

    Channel failures are reported, not raised; the cursor then stays where the last queued
    page left it.

    Args:
        engine: the engine (channels, ledger Redis, event queue).
        channel: a configured channel of a polled kind.
        clock: wall clock in epoch seconds (for the state's timestamps).

    Raises:
        ConfigError: no such channel, or its kind is not polled.
        redis.RedisError: the state could not be read or written (nothing is lost: the next
            poll reads again).
    """
    settings = engine.channel_settings.get(channel)
    if settings is None:
        raise ConfigError(f"no channel named {channel!r} is configured")
    poll_limits(settings.kind)
    client = engine.channel(channel)
    store = _Store(engine.client, PollKeys.of(engine, channel), clock)
    cursor = store.cursor()
    report = PollReport(channel=channel, kind=settings.kind, cursor_in=cursor, cursor=cursor)
    try:
        if settings.kind == WILDBERRIES:
            _poll_wildberries(engine, client, store, report)
        else:
            _poll_feed(engine, client, store, report)
            if settings.kind == OZON:
                _poll_unfulfilled(engine, client, store, report)
            store.prune_seen()
    except ChannelError as exc:
        report.error = str(exc)
        if isinstance(exc, ChannelRateLimitedError):
            report.retry_after_s = exc.retry_after_s
        log.warning(
            "order_poll_failed",
            channel=channel,
            error=type(exc).__name__,
            message=str(exc),
            queued=report.queued,
            retry_after_s=report.retry_after_s,
        )
    else:
        (log.info if report.queued else log.debug)(
            "order_poll_done",
            channel=channel,
            fetched=report.fetched,
            queued=report.queued,
            unchanged=report.unchanged,
            requests=report.requests,
            more=report.more,
        )
    return report


def _changed(
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


def _poll_feed(engine: Engine, client: ChannelClient, store: _Store, report: PollReport) -> None:
    """Ozon and YM: changed orders since the cursor, page by page; each page's events are
    queued before its cursor is stored."""
    cursor = report.cursor_in
    for _ in range(MAX_PAGES_PER_POLL):
        page = _list_orders(client, cursor, report)
        report.pages += 1
        report.requests += _estimated_requests(report.kind, len(page.orders))
        report.fetched += len(page.orders)
        ids = [order.order_id for order in page.orders]
        changed, keys = _changed(page.orders, store.seen(ids), report)
        report.queued += engine.queue_order_events(report.channel, changed, source="poll")
        store.save_seen(keys, ids, page.cursor)
        report.cursor = cursor = page.cursor
        report.more = page.more
        if not page.more:
            return


def _poll_unfulfilled(
    engine: Engine, client: ChannelClient, store: _Store, report: PollReport
) -> None:
    """Ozon: every unfulfilled posting, the net for new postings whose push never came."""
    if not isinstance(client, _UnfulfilledSource):
        raise ConfigError(f"{report.channel}: the client cannot list unfulfilled postings")
    orders = client.list_unfulfilled()
    report.requests += _estimated_requests(report.kind, len(orders))
    report.fetched += len(orders)
    ids = [order.order_id for order in orders]
    changed, keys = _changed(orders, store.seen(ids), report)
    report.queued += engine.queue_order_events(report.channel, changed, source="poll")
    store.save_seen(keys, ids, None)


def _poll_wildberries(
    engine: Engine, client: ChannelClient, store: _Store, report: PollReport
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


# -- the loop -------------------------------------------------------------------------------------


def next_delay(limits: PollLimits, interval_s: float, report: PollReport, failures: int) -> float:
    """Seconds until the next poll of a channel after ``report``.

    A good poll waits the interval (the floor if the feed has more pages), and at least its
    requests times the kind's spacing. After ``failures`` failed polls in a row the wait
    doubles from the interval up to :data:`MAX_BACKOFF_S`, and is never shorter than what a
    rate-limited channel asked for.
    """
    paced = report.requests * limits.request_spacing_s
    if report.ok:
        return max(limits.floor_s if report.more else interval_s, paced)
    return max(interval_s, backoff_delay(interval_s, failures), report.retry_after_s or 0.0, paced)


def backoff_delay(interval_s: float, failures: int) -> float:
    """The interval doubled per failure after the first, capped at :data:`MAX_BACKOFF_S`."""
    grown = interval_s * 2.0 ** min(max(failures, 1) - 1, 16)
    return max(interval_s, min(MAX_BACKOFF_S, grown))


class PollerLoop:
    """Polls each polled channel at its interval until ``stop`` is set; never crashes on a
    failure (channel, Redis or a bug): it logs, backs off and tries again.

    One thread per channel, so a slow or hanging marketplace never delays another's polls.
    ``run()`` blocks until every channel thread has stopped (a thread target for ``serve``);
    ``start()``/``join()`` run it in the background.

    Args:
        engine: the engine.
        names: channels to poll (default: all configured); ``webhook`` channels are skipped.
        stop: set it to stop the loop (a new Event when omitted: ``loop.stop``).
        poll: the poll function (tests inject failures here).

    Raises:
        ConfigError: a name that is not configured.
    """

    def __init__(
        self,
        engine: Engine,
        names: Iterable[str] | None = None,
        stop: threading.Event | None = None,
        *,
        poll: Callable[[Engine, str], PollReport] = poll_once,
    ) -> None:
        chosen = list(engine.channel_settings) if names is None else list(names)
        for name in chosen:
            if name not in engine.channel_settings:
                raise ConfigError(f"no channel named {name!r} is configured")
        self.engine = engine
        self.stop = stop if stop is not None else threading.Event()
        self.names = [n for n in chosen if is_polled(engine.channel_settings[n])]
        self.intervals = {n: poll_interval(engine.channel_settings[n]) for n in self.names}
        self.failures = dict.fromkeys(self.names, 0)
        self.reports: dict[str, PollReport] = {}
        self._poll = poll
        self._threads: list[threading.Thread] = []
        for name in self.names:
            wanted = engine.channel_settings[name].poll_interval_s
            if wanted is not None and wanted < self.intervals[name]:
                log.warning(
                    "poll_interval_raised",
                    channel=name,
                    configured_s=wanted,
                    used_s=self.intervals[name],
                )

    def poll(self, name: str) -> float:
        """Poll one channel once; returns the seconds to wait before its next poll."""
        settings = self.engine.channel_settings[name]
        limits = poll_limits(settings.kind)
        interval = self.intervals[name]
        try:
            report = self._poll(self.engine, name)
        except Exception:
            self.failures[name] += 1
            delay = backoff_delay(interval, self.failures[name])
            log.exception("order_poll_crashed", channel=name, retry_in_s=delay)
            return delay
        self.reports[name] = report
        self.failures[name] = 0 if report.ok else self.failures[name] + 1
        return next_delay(limits, interval, report, self.failures[name])

    def run_channel(self, name: str) -> None:
        """Poll ``name`` until ``stop`` is set (the body of its thread)."""
        while not self.stop.is_set():
            if self.stop.wait(self.poll(name)):
                return

    def start(self) -> None:
        """Start one daemon thread per polled channel."""
        for name in self.names:
            thread = threading.Thread(
                target=self.run_channel, args=(name,), name=f"poller-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        log.info("order_pollers_started", channels=self.names, intervals_s=self.intervals)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the threads to end (after ``stop`` is set). Returns whether all did."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
        return not any(thread.is_alive() for thread in self._threads)

    def run(self) -> None:
        """Start the channel threads and block until ``stop`` is set and they have ended."""
        self.start()
        self.stop.wait()
        self.join()
