"""Endpoints a marketplace retired: told apart from passing failures, counted, logged, paused.

A :class:`~inventory_engine.channels.base.ChannelEndpointRetiredError` (410, a 404 that names no
missing item, a "method deprecated / not found" answer) does not pass by itself: the marketplace
has most likely retired the API version the client speaks, and a release of the engine (or a
setting naming the new version) is what helps. So it is logged at error level with the endpoint
and that likely cause, counted in ``inventory_api_errors_total{channel,endpoint,status}``, and
the channel's use of the endpoint pauses for a growing time (1 min, doubling, at most 1 h) so
that nothing hammers a method that is gone; the first good answer resets the back-off.
"""

from __future__ import annotations

import redis
import structlog

from inventory_engine.channels.base import ChannelEndpointRetiredError
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.redis_io import redis_errors
from inventory_engine.metrics import definitions as m
from inventory_engine.metrics.recorder import MetricsRecorder

log = structlog.get_logger()

RETIRED_PAUSE_MS = 60_000
"""The first pause after a retired-endpoint answer; each one after doubles it."""
RETIRED_PAUSE_MAX_MS = 3_600_000
"""The longest pause: once an hour the endpoint is tried again (it may be back)."""
RETIRED_MEMORY_MS = 86_400_000
"""How long the count of such answers in a row is kept."""


def retired_pause_ms(count: int) -> int:
    """The pause after the ``count``-th retired-endpoint answer in a row (1-based)."""
    return int(min(RETIRED_PAUSE_MAX_MS, RETIRED_PAUSE_MS * 2 ** max(0, min(count, 32) - 1)))


class RetiredEndpoints:
    """Notes retired-endpoint answers of one channel (any process, any host: kept in Redis)."""

    def __init__(self, client: redis.Redis, channel: str, *, keys: AccountKeys) -> None:
        self.client = client
        self.channel = channel
        self.keys = keys
        self.metrics = MetricsRecorder(client, account=keys.account)

    def key(self, endpoint: str) -> str:
        # Channel names cannot hold ":"; the endpoint is a path template of the client's own.
        return f"{self.keys.push_failures(self.channel)}:retired:{endpoint}"

    def note(self, exc: ChannelEndpointRetiredError, *, where: str = "push") -> int:
        """Log, count and remember the answer; returns the pause (ms) before the next try."""
        with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.incr(self.key(exc.endpoint))
            pipe.pexpire(self.key(exc.endpoint), RETIRED_MEMORY_MS)
            count = int(pipe.execute()[0])
        pause_ms = retired_pause_ms(count)
        batch = self.metrics.batch()
        endpoint = self.metrics.capped_label(
            batch,
            m.API_ERRORS,
            (self.channel, str(exc.status_code), exc.endpoint),
            cap=m.MAX_ENDPOINT_LABELS,
            other="other",
        )
        batch.inc(m.API_ERRORS, self.channel, str(exc.status_code), endpoint)
        self.metrics.write(batch)
        log.error(
            "channel_endpoint_retired",
            channel=self.channel,
            endpoint=exc.endpoint,
            status_code=exc.status_code,
            where=where,
            times_in_a_row=count,
            paused_s=pause_ms / 1000,
            likely_cause="the marketplace retired this API version (method gone or deprecated); "
            "check its changelog and upgrade inventory-engine",
            error=str(exc),
        )
        return pause_ms

    def clear(self, endpoint: str) -> None:
        """A good answer from the endpoint: the back-off starts again from the first pause."""
        with redis_errors():
            self.client.delete(self.key(endpoint))
