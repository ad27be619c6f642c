"""The pollers' threads: each polled channel at its interval, backing off after failures."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import structlog

from inventory_engine.errors import ConfigError
from inventory_engine.intake.pollers.pacing import (
    backoff_delay,
    is_polled,
    next_delay,
    poll_interval,
    poll_limits,
)
from inventory_engine.intake.pollers.poll import poll_once
from inventory_engine.intake.pollers.report import PollReport
from inventory_engine.service import Engine

log = structlog.get_logger()


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
