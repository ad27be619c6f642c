"""The push path's claim and settle scripts, step by step (fakeredis and a real server).

The concurrent, out-of-order and crash cases are explored by the state machine in
``tests/property/test_push_state_machine.py``; these pin down each rule once."""

from __future__ import annotations

import time

import pytest
import redis

from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.sync.push_state import PushState, Settle, SettleItem

KEYS = AccountKeys()
CH = "ozon"


def server_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def mark(client: redis.Redis, *skus: str, at: int | None = None) -> None:
    """What the ledger's scripts do: ZADD NX with the change's time."""
    at = server_ms(client) if at is None else at
    client.zadd(KEYS.dirty(CH), dict.fromkeys(skus, at), nx=True)


def state(
    client: redis.Redis,
    *,
    window_ms: int | None = None,
    lease_ms: int = 60_000,
    concurrency: int = 4,
) -> PushState:
    return PushState(
        client, CH, keys=KEYS, window_ms=window_ms, lease_ms=lease_ms, concurrency=concurrency
    )


def skus(claim) -> list[str]:
    return [c.sku for c in claim.skus]


def test_a_claimed_sku_is_not_claimed_again_while_in_flight(redis_client):
    push = state(redis_client)
    mark(redis_client, "A", "B")
    first = push.claim(10)
    assert sorted(skus(first)) == ["A", "B"]
    mark(redis_client, "A")  # a change during the flight
    second = push.claim(10)
    assert skus(second) == []
    # The change waits for the flight's lease, and is not lost.
    assert redis_client.zscore(KEYS.dirty(CH), "A") is not None
    push.settle(
        first.token, [SettleItem("A", Settle.ACCEPTED, 5), SettleItem("B", Settle.ACCEPTED, 7)]
    )
    # The settle brought it forward: it goes at once.
    third = push.claim(10)
    assert skus(third) == ["A"]
    assert third.skus[0].first_ms <= server_ms(redis_client)


def test_settle_acts_only_for_the_owner(redis_client):
    push = state(redis_client)
    mark(redis_client, "A")
    claim = push.claim(10)
    result = push.settle("someone-else", [SettleItem("A", Settle.REJECTED, 3, parked="{}")])
    assert (result.settled, result.stale) == (0, 1)
    assert redis_client.hget(KEYS.parked(CH), "A") is None
    assert redis_client.zscore(KEYS.inflight(CH), "A") is not None  # still the owner's
    result = push.settle(claim.token, [SettleItem("A", Settle.ACCEPTED, 3)])
    assert (result.settled, result.stale) == (1, 0)
    assert redis_client.hget(KEYS.accepted(CH), "A") == b"3"
    assert redis_client.zcard(KEYS.inflight(CH)) == 0
    assert redis_client.hlen(KEYS.claims(CH)) == 0


def test_a_late_reply_after_the_lease_ran_out_taints_the_new_owner(redis_client):
    push = state(redis_client, lease_ms=50)
    mark(redis_client, "A")
    old = push.claim(10)
    time.sleep(0.08)
    new = push.claim(10)  # the lease ran out: marked again and claimed by another sender
    assert skus(new) == ["A"]
    # The old sender's value landed after all (its reply comes late): it may overwrite the
    # new one on the marketplace, so the new owner's "accepted" must not be trusted.
    assert push.settle(old.token, [SettleItem("A", Settle.ACCEPTED, 9)]).stale == 1
    push.settle(new.token, [SettleItem("A", Settle.ACCEPTED, 4)])
    assert redis_client.hget(KEYS.accepted(CH), "A") is None
    assert skus(push.claim(10)) == ["A"]  # sent again


def test_a_lost_lease_is_marked_again_and_its_value_forgotten(redis_client):
    push = state(redis_client, lease_ms=50)
    redis_client.hset(KEYS.accepted(CH), "A", 5)
    mark(redis_client, "A")
    crashed = push.claim(10)
    assert skus(crashed) == ["A"]
    time.sleep(0.08)
    again = push.claim(10)
    assert skus(again) == ["A"]
    assert again.skus[0].first_ms == crashed.skus[0].first_ms  # the true first change
    assert redis_client.hget(KEYS.accepted(CH), "A") is None


def test_held_skus_never_hide_fresh_ones(redis_client):
    push = state(redis_client, window_ms=30_000)
    now = server_ms(redis_client)
    held = {f"H{i}": now + 20_000 for i in range(1_500)}
    redis_client.hset(KEYS.not_before(CH), mapping=held)
    mark(redis_client, *held, at=now - 1_000)  # older changes, held by the item window
    mark(redis_client, "FRESH", at=now)
    claimed: list[str] = []
    claim = push.claim(100)
    claimed += skus(claim)
    while claim.next_due_ms is not None and claim.next_due_ms <= claim.now_ms:
        claim = push.claim(100)
        claimed += skus(claim)
    assert claimed == ["FRESH"]
    # The held ones wait in the delay queue, due when their window opens.
    assert claim.next_due_ms == now + 20_000
    assert redis_client.zscore(KEYS.dirty(CH), "H7") == now + 20_000


def test_the_item_window_starts_at_the_claim_and_again_at_the_answer(redis_client):
    push = state(redis_client, window_ms=30_000)
    mark(redis_client, "A")
    claim = push.claim(10)
    provisional = int(redis_client.hget(KEYS.not_before(CH), "A"))
    assert provisional == claim.now_ms + 30_000
    result = push.settle(claim.token, [SettleItem("A", Settle.ACCEPTED, 2)])
    assert int(redis_client.hget(KEYS.not_before(CH), "A")) == result.now_ms + 30_000
    mark(redis_client, "A")
    held = push.claim(10)
    assert skus(held) == []
    assert held.next_due_ms == result.now_ms + 30_000


def test_a_request_that_did_not_land_takes_the_provisional_window_back(redis_client):
    push = state(redis_client, window_ms=30_000)
    mark(redis_client, "A")
    claim = push.claim(10)
    push.settle(claim.token, [SettleItem("A", Settle.RETRY, 2, delay_ms=0)])
    again = push.claim(10)
    assert skus(again) == ["A"]


def test_an_ambiguous_failure_forgets_the_value_and_retries_soon(redis_client):
    push = state(redis_client, window_ms=30_000)
    redis_client.hset(KEYS.accepted(CH), "A", 5)
    mark(redis_client, "A")
    claim = push.claim(10)
    result = push.settle(claim.token, [SettleItem("A", Settle.AMBIGUOUS, 4, delay_ms=1_000)])
    assert redis_client.hget(KEYS.accepted(CH), "A") is None
    assert result.next_due_ms == result.now_ms + 1_000  # not 30 s


def test_throttled_waits_for_the_window_and_keeps_the_first_change(redis_client):
    push = state(redis_client, window_ms=30_000)
    mark(redis_client, "A")
    claim = push.claim(10)
    result = push.settle(claim.token, [SettleItem("A", Settle.THROTTLED, 4, delay_ms=30_000)])
    assert result.next_due_ms == result.now_ms + 30_000
    raw = redis_client.hget(KEYS.dirty_since(CH), "A").split()
    assert int(raw[0]) == claim.skus[0].first_ms
    assert int(raw[1]) == result.now_ms + 30_000  # allowed from the window's end


def test_rejected_is_parked_not_marked(redis_client):
    push = state(redis_client)
    mark(redis_client, "A")
    claim = push.claim(10)
    push.settle(claim.token, [SettleItem("A", Settle.REJECTED, 1, parked='{"code": "X"}')])
    assert redis_client.hget(KEYS.parked(CH), "A") == b'{"code": "X"}'
    assert redis_client.zcard(KEYS.dirty(CH)) == 0


def test_request_slots_are_shared_and_freed_by_the_settle(redis_client):
    push = state(redis_client, concurrency=1)
    mark(redis_client, "A", "B")
    first = push.claim(1)
    assert skus(first)
    assert not first.slots_full
    second = push.claim(1)
    assert skus(second) == []
    assert second.slots_full
    push.settle(first.token, [SettleItem(first.skus[0].sku, Settle.ACCEPTED, 1)])
    third = push.claim(1)
    assert len(third.skus) == 1
    assert not third.slots_full


def test_a_paused_channel_claims_nothing_until_the_pause_ends(redis_client):
    push = state(redis_client)
    mark(redis_client, "A")
    redis_client.set(KEYS.paused(CH), server_ms(redis_client) + 5_000)
    claim = push.claim(10)
    assert skus(claim) == []
    assert claim.next_due_ms is not None
    assert claim.next_due_ms > claim.now_ms + 4_000


def test_a_failed_request_pauses_the_channel_on_the_servers_clock(redis_client):
    push = state(redis_client)
    mark(redis_client, "A", "B")
    claim = push.claim(1)
    result = push.settle(
        claim.token, [SettleItem(claim.skus[0].sku, Settle.AMBIGUOUS, 1, 2_000)], pause_ms=2_000
    )
    assert int(redis_client.get(KEYS.paused(CH))) == result.now_ms + 2_000
    assert push.claim(10).skus == ()  # B is due, but the channel backs off
    redis_client.set(KEYS.clock_offset, 2_001)  # time passes (for every script at once)
    assert len(push.claim(10).skus) == 2


@pytest.mark.parametrize("outcome", [Settle.UNCHANGED, Settle.NOT_LISTED])
def test_not_sent_settles_leave_nothing_behind(redis_client, outcome):
    push = state(redis_client, window_ms=30_000)
    mark(redis_client, "A")
    claim = push.claim(10)
    push.settle(claim.token, [SettleItem("A", outcome)])
    for key in (KEYS.dirty(CH), KEYS.inflight(CH), KEYS.senders(CH)):
        assert redis_client.zcard(key) == 0
    assert redis_client.hlen(KEYS.claims(CH)) == 0
    assert redis_client.hget(KEYS.not_before(CH), "A") == b"0"  # no window: nothing was sent
