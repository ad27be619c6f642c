"""One poll of one channel: read, queue what changed, then store the cursor and the state."""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from inventory_engine.channels.base import (
    ChannelEndpointRetiredError,
    ChannelError,
    ChannelRateLimitedError,
)
from inventory_engine.errors import ConfigError
from inventory_engine.intake.pollers.feed import poll_feed, poll_unfulfilled
from inventory_engine.intake.pollers.pacing import OZON, WILDBERRIES, poll_limits
from inventory_engine.intake.pollers.report import PollReport
from inventory_engine.intake.pollers.state import PollStore
from inventory_engine.intake.pollers.wildberries import poll_wildberries
from inventory_engine.service import Engine
from inventory_engine.sync.retired import RetiredEndpoints

log = structlog.get_logger()


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
    store = PollStore(engine.client, engine.ledger.keys.poll(channel), clock)
    cursor = store.cursor()
    report = PollReport(channel=channel, kind=settings.kind, cursor_in=cursor, cursor=cursor)
    try:
        if settings.kind == WILDBERRIES:
            poll_wildberries(engine, client, store, report)
        else:
            poll_feed(engine, client, store, report)
            if settings.kind == OZON:
                poll_unfulfilled(engine, client, store, report)
            store.prune_seen()
    except ChannelError as exc:
        report.error = str(exc)
        if isinstance(exc, ChannelRateLimitedError):
            report.retry_after_s = exc.retry_after_s
        elif isinstance(exc, ChannelEndpointRetiredError):
            # The method is gone, not busy: logged at error level, counted, and the poller
            # waits the same growing pause as the push path (1 min doubling to 1 h).
            pause_ms = RetiredEndpoints(engine.client, channel, keys=engine.ledger.keys).note(
                exc, where="poll"
            )
            report.retry_after_s = pause_ms / 1000
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
