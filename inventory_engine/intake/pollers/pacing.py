"""How often each marketplace's orders may be read: intervals, floors, request spacing and
the back-off after failures (reference §0)."""

from __future__ import annotations

from dataclasses import dataclass

from inventory_engine.config import ChannelSettings
from inventory_engine.errors import ConfigError
from inventory_engine.intake.pollers.report import PollReport

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


MAX_BACKOFF_S = 300.0
"""Longest wait after repeated failures (unless the interval itself is longer)."""


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
