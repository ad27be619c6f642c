"""The timing constants that depend on each other (inventory_engine/timing.py), and the limits
table's arithmetic: each inequality is a reason, written once."""

from __future__ import annotations

import pytest

from inventory_engine import timing as t
from inventory_engine.config import ChannelSettingsBase
from inventory_engine.sync.limits import LIMITS


def largest_timeout_s() -> float:
    """The longest request timeout the configuration accepts (``timeout_s``, le=...)."""
    field = ChannelSettingsBase.model_fields["timeout_s"]
    return max(m.le for m in field.metadata if getattr(m, "le", None) is not None)


@pytest.mark.parametrize("timeout_s", [0.3, 5.0, 10.0, 60.0, largest_timeout_s()])
def test_a_lease_outlasts_the_slowest_request_of_a_live_sender(timeout_s):
    # httpx applies the timeout to each phase; a lease that ran out while its sender still
    # waited would let a second value of the item leave.
    slowest_ms = t.REQUEST_PHASES * timeout_s * 1000
    assert t.claim_lease_ms(timeout_s) >= slowest_ms + t.LEASE_SLACK_MS


def test_fault_recovery_starts_within_a_second():
    assert t.FAILURE_BACKOFF_MS[0] <= 1_000
    assert t.RETRY_ITEM_DELAY_MS <= 1_000
    assert list(t.FAILURE_BACKOFF_MS) == sorted(t.FAILURE_BACKOFF_MS)
    assert t.failure_backoff_ms(1) == t.FAILURE_BACKOFF_MS[0]
    assert t.failure_backoff_ms(99) == t.FAILURE_BACKOFF_MS[-1]


def test_a_held_item_leaves_within_its_margin():
    # serve's waker looks every WAKE_INTERVAL_S; a sender lingers in place for anything due
    # within SENDER_LINGER_MS, so a held item leaves well inside the window's margin.
    assert t.WAKE_INTERVAL_S * 1000 < t.ITEM_WINDOW_MARGIN_S * 1000
    assert t.item_window_ms(30) == 30_500
    assert t.item_window_ms(None) is None


def test_senders_end_before_the_safety_net_and_the_worker_stop():
    assert t.SENDER_LINGER_MS < t.PUSH_KICK_INTERVAL_S * 1000
    assert t.SENDER_BUDGET_S + t.SENDER_LINGER_MS / 1000 < t.WORKER_STOP_TIMEOUT_S
    assert t.SENDER_POLL_S <= t.WAKE_INTERVAL_S
    assert t.SENDER_IDLE_CHECK_S < t.SENDER_BUDGET_S
    # The push job only starts a thread: its timeout is never what bounds a round.
    assert t.PUSH_JOB_TIMEOUT_S > t.SENDER_BUDGET_S


def test_a_stale_push_guard_clears_before_it_could_hide_work_for_long():
    # A guard whose job died is dropped after JOB_GUARD_MS; the safety net re-kicks at
    # PUSH_KICK_INTERVAL_S; a guard must outlive a queued job's usual wait, not minutes.
    assert t.PUSH_KICK_INTERVAL_S * 1000 < t.JOB_GUARD_MS <= 120_000


@pytest.mark.parametrize(("kind", "per_minute"), [("ozon", 80), ("yandex_market", 100_000)])
def test_no_minute_of_sends_exceeds_a_per_minute_limit(kind, per_minute):
    # Ozon and YM count a minute (perhaps a sliding one): burst plus a minute's refill fits.
    limits = LIMITS[kind]
    assert limits.bucket_capacity + limits.bucket_rate_per_s * 60 <= per_minute


def test_wildberries_bucket_is_no_faster_than_wbs_own():
    # WB's limiter is itself a token bucket: 300 a minute, one per 200 ms, burst 20.
    limits = LIMITS["wildberries"]
    assert limits.bucket_capacity <= 20
    assert limits.bucket_rate_per_s <= 300 / 60


@pytest.mark.parametrize("kind", sorted(LIMITS))
def test_every_channel_may_have_a_request_in_flight(kind):
    assert LIMITS[kind].concurrency >= 1
