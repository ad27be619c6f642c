"""ChannelSenders: in a push worker process, one sender thread per channel.

A push job (RQ) only *kicks* its channel's sender and returns, so one worker process serves
every channel at once: a slow, throttled or paused marketplace never holds up another, and no
channel waits for a free worker behind another channel's requests.

A sender keeps up to the channel's ``concurrency`` rounds in flight (each on its own SKUs, each
holding one of the channel's request slots, shared by every sender on every host: see
``claim_due.lua``), starts another as soon as one ends with more due, and ends when nothing is
due within :data:`~inventory_engine.timing.SENDER_LINGER_MS` or its time budget is spent. What
comes next (a new job now, a wake-up at the next due time, nothing) is the scheduler's call.

Several processes may run senders of one channel at the same time: claims are exclusive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import structlog

from inventory_engine.ledger.redis_io import wall_clock_ms
from inventory_engine.sync.publisher import ChannelPublisher, PublishReport
from inventory_engine.timing import (
    SENDER_BUDGET_S,
    SENDER_IDLE_CHECK_S,
    SENDER_LINGER_MS,
    SENDER_POLL_S,
)

log = structlog.get_logger()

AfterSender = Callable[[str, int | None, bool], None]
"""``(channel, next_due_ms, handed_over)``: called when a sender ends."""


class ChannelSenders:
    """The sender threads of one process.

    Args:
        publisher_for: the channel's publisher (built once per process).
        after: told when a sender ends (see :data:`AfterSender`).
        budget_s: the longest one sender runs before handing over.
        linger_ms: how soon something must be due for a sender to wait for it in place.
    """

    def __init__(
        self,
        publisher_for: Callable[[str], ChannelPublisher],
        after: AfterSender,
        *,
        budget_s: float = SENDER_BUDGET_S,
        linger_ms: int = SENDER_LINGER_MS,
    ) -> None:
        self.publisher_for = publisher_for
        self.after = after
        self.budget_s = budget_s
        self.linger_ms = linger_ms
        self._lock = threading.Lock()
        self._running: dict[str, threading.Thread] = {}
        self._kicks: dict[str, threading.Event] = {}
        """Per channel, set to wake its sender: a kick, or one of its rounds ending."""
        self._kick_counts: dict[str, int] = {}
        """Per channel, kicks so far: a sender that sees the count move looks for work again."""
        self._stopping = threading.Event()

    def kick(self, channel: str) -> bool:
        """Make sure the channel's sender runs and looks for work again. Returns True when a
        new sender thread was started."""
        with self._lock:
            if self._stopping.is_set():
                return False
            wake = self._kicks.setdefault(channel, threading.Event())
            self._kick_counts[channel] = self._kick_counts.get(channel, 0) + 1
            wake.set()
            thread = self._running.get(channel)
            if thread is not None and thread.is_alive():
                return False
            thread = threading.Thread(
                target=self._run, args=(channel, wake), name=f"push-{channel}", daemon=False
            )
            self._running[channel] = thread
            thread.start()
            return True

    def _kick_count(self, channel: str) -> int:
        with self._lock:
            return self._kick_counts.get(channel, 0)

    def request_stop(self) -> None:
        """No new rounds from now on (a worker's warm shutdown); running ones finish."""
        self._stopping.set()
        with self._lock:
            for wake in self._kicks.values():
                wake.set()  # a lingering sender wakes up and ends

    def stop(self, timeout_s: float | None = None) -> None:
        """No new rounds; wait for the running ones to settle."""
        self._stopping.set()
        with self._lock:
            threads = list(self._running.values())
            for wake in self._kicks.values():
                wake.set()
        for thread in threads:
            thread.join(timeout_s)

    def running(self) -> list[str]:
        with self._lock:
            return [name for name, t in self._running.items() if t.is_alive()]

    def join(self, timeout_s: float = 30.0) -> bool:
        """Wait until no sender runs in this process (tests, burst workers). Returns False if
        one still ran when the time was up."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                threads = [t for t in self._running.values() if t.is_alive()]
            if not threads:
                return True
            threads[0].join(max(0.0, deadline - time.monotonic()))
        return not self.running()

    # -- one sender ----------------------------------------------------------------------------

    def _run(self, channel: str, wake: threading.Event) -> None:
        next_due: int | None = None
        handed_over = False
        seen = self._kick_count(channel)
        try:
            publisher = self.publisher_for(channel)
            next_due, handed_over, seen = self._rounds(publisher, wake)
        except Exception as exc:  # Redis down, a bug: end; the wake-up below tries again
            log.warning("push_sender_failed", channel=channel, error=str(exc))
            next_due = wall_clock_ms() + 1_000
        finally:
            with self._lock:
                self._running.pop(channel, None)
                # A kick that came after the last look: start again rather than strand it.
                again = self._kick_counts.get(channel, 0) != seen and not self._stopping.is_set()
        if again:
            self.kick(channel)
            return
        self.after(channel, next_due, handed_over)

    def _rounds(
        self, publisher: ChannelPublisher, wake: threading.Event
    ) -> tuple[int | None, bool, int]:
        """Run rounds until idle; returns (next due ms, handed over for the budget, the kick
        count it last acted on)."""
        channel, clock = publisher.name, publisher.clock
        deadline = time.monotonic() + self.budget_s
        lanes = max(1, publisher.limits.concurrency)
        pending: set[Future[PublishReport]] = set()
        next_due: int | None = None
        seen = -1  # act on the kick that started this sender
        want = True
        retry_at = 0.0  # monotonic: every request slot was taken elsewhere, look again then
        with ThreadPoolExecutor(lanes, thread_name_prefix=f"push-{channel}") as pool:
            while True:
                wake.clear()  # before looking: a kick or an ending round from now on wakes us
                count = self._kick_count(channel)
                if count != seen:
                    seen, want = count, True
                for future in [f for f in pending if f.done()]:
                    pending.discard(future)
                    report = future.result()  # an exception ends this sender
                    next_due = report.next_due_ms
                    if report.busy:
                        # Every slot is taken: by this sender's own rounds (one ending wakes
                        # us) or by senders elsewhere (look again shortly).
                        want = True
                        if not pending:
                            retry_at = time.monotonic() + SENDER_POLL_S
                    elif next_due is not None and next_due <= clock():
                        want = True  # more is due now: another round
                out_of_time = time.monotonic() >= deadline or self._stopping.is_set()
                now = time.monotonic()
                if want and not out_of_time and len(pending) < lanes and now >= retry_at:
                    future = pool.submit(publisher.publish_once)
                    future.add_done_callback(lambda _f: wake.set())
                    pending.add(future)
                    want = False
                    continue
                if pending:
                    wake.wait(SENDER_IDLE_CHECK_S)  # a round ends, or a kick
                    continue
                if want and not out_of_time:
                    wake.wait(max(0.0, retry_at - now))
                    continue
                # Nothing in flight, nothing due now.
                if out_of_time:
                    due_now = next_due is not None and next_due <= clock()
                    return next_due, due_now or self._kick_count(channel) != seen, seen
                wait_ms = None if next_due is None else next_due - clock()
                if wait_ms is None or wait_ms > self.linger_ms:
                    return next_due, False, seen
                # Due soon (an item window about to open): wait here, or until kicked.
                wake.wait(max(0.0, wait_ms / 1000))
                want = True
