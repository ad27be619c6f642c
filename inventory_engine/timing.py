"""Timing constants that depend on each other, in one place (their inequalities are asserted in
``tests/unit/test_timing.py``).

Every time the push path keeps in Redis (leases, item windows, pauses, token buckets) is taken
from the Redis server's clock inside the Lua scripts; these are durations only.
"""

from __future__ import annotations

# -- the push path -------------------------------------------------------------------------------

ITEM_WINDOW_MARGIN_S = 0.5
"""An item is sent again this long after its window (Ozon: 30 s) opens. The window is measured
from the reply, which comes after Ozon stamped the change, so the margin only covers rounding."""

RETRY_ITEM_DELAY_MS = 1_000
"""A per-item RETRY (WB StoreIsProcessing, an unclear answer) is sent again after this."""

FAILURE_BACKOFF_MS = (1_000, 2_000, 4_000, 8_000, 15_000, 30_000)
"""Pause after consecutive failed requests of a channel (5xx, timeout, a 429/420 without a
hint): from a second, so a passing fault costs seconds, not a blind 30 s."""

REQUEST_PHASES = 4
"""httpx applies its timeout per phase (pool, connect, write, read): a request whose every phase
is slow may take this many times ``timeout_s``."""

LEASE_SLACK_MS = 10_000
"""A claim's lease outlasts the longest request by this much: computing the values before it
and settling after it."""

SENDER_BUDGET_S = 5.0
"""A channel sender runs rounds for at most this long, then hands over to a new push job (so
work spreads over workers, and a stopping worker stops within it)."""

SENDER_LINGER_MS = 1_500
"""A sender with nothing due now but something due within this time waits for it in place
instead of ending and being woken again (Ozon's held items leave the moment their window
opens)."""

SENDER_POLL_S = 0.05
"""A sender whose channel has every request slot taken by senders elsewhere looks again after
this long (taken by its own rounds, it waits for one of them to end)."""

SENDER_IDLE_CHECK_S = 0.5
"""A sender waiting for its rounds looks at the clock at least this often (a round's end and a
kick wake it at once)."""

WAKE_INTERVAL_S = 0.05
"""How often ``serve`` looks for channels whose held items may go now."""

JOB_GUARD_MS = 60_000
"""A "job queued" guard (a channel's push, the inbox drain) older than this is stale: its job
died before it ran."""

PUSH_JOB_TIMEOUT_S = 60
"""RQ timeout of a push job. The job only starts the channel's sender thread and returns."""

SWEEP_INTERVAL_S = 1.0
"""``serve``'s sweep: expired storefront holds, dead workers."""

PUSH_KICK_INTERVAL_S = 5.0
"""The safety net: every this often ``serve`` queues a push for each channel with marks left
(a lost wake-up, a dead sender's leases)."""

WORKER_STOP_TIMEOUT_S = 30.0
"""``serve`` gives a worker this long to stop after SIGTERM (the job in hand, its channel
senders' rounds in flight) before it kills it; a killed sender's claims come back when their
lease runs out."""


def failure_backoff_ms(failures: int) -> int:
    """The pause after the ``failures``-th consecutive failed request (1-based)."""
    return FAILURE_BACKOFF_MS[min(max(failures, 1), len(FAILURE_BACKOFF_MS)) - 1]


def claim_lease_ms(timeout_s: float) -> int:
    """How long a claim holds its SKUs: longer than the slowest request a live sender can make
    with this request timeout, so a lease only runs out when its sender died."""
    return int(timeout_s * REQUEST_PHASES * 1000) + LEASE_SLACK_MS


def item_window_ms(item_window_s: float | None) -> int | None:
    """A channel's per-item window with the margin (None: the channel has none)."""
    if not item_window_s:
        return None
    return int((item_window_s + ITEM_WINDOW_MARGIN_S) * 1000)
