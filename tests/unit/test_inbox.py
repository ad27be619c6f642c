"""The inbox stream: taking over what dead workers left (``XAUTOCLAIM`` following its cursor),
the dead letter for entries that keep failing, and putting dead letters back.

Tests on ``redis_client`` run on fakeredis and on a real Valkey server; the cursor tests that
depend on how far one ``XAUTOCLAIM`` looks run on the real server only.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

import inventory_engine.inbox as inbox_module
from inventory_engine.inbox import (
    GROUP,
    MAX_DELIVERIES,
    REASON_DELIVERIES,
    Inbox,
)

KEY = "inv:{default}:inbox"


def fill(inbox: Inbox, count: int, channel: str = "ozon") -> list[str]:
    pipe = inbox.client.pipeline(transaction=False)
    for i in range(count):
        inbox.add(pipe, channel, {"order_id": f"o{i}", "action": "reserve", "lines": []})
    return [e.decode() if isinstance(e, bytes) else str(e) for e in pipe.execute()]


def order_ids(entries: list[Any]) -> list[str]:
    return [entry.data["order_id"] for entry in entries]


# -- the cursor ----------------------------------------------------------------------------------


class ScriptedClient:
    """Answers XAUTOCLAIM from a script of (cursor, rows) replies and records each start id;
    GET/SET of the cursor key on a dict. Nothing is new for XREADGROUP."""

    def __init__(self, replies: list[tuple[str, list[Any]]]) -> None:
        self.replies = list(replies)
        self.starts: list[str] = []
        self.values: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def set(self, key: str, value: str) -> None:
        self.values[key] = value

    def xautoclaim(self, name: str, group: str, consumer: str, **kwargs: Any) -> list[Any]:
        self.starts.append(kwargs["start_id"])
        cursor, rows = self.replies.pop(0)
        return [cursor, rows, []]

    def xreadgroup(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []

    def pipeline(self, transaction: bool = False) -> ScriptedPipeline:
        return ScriptedPipeline()


class ScriptedPipeline:
    """XPENDING of each claimed id: delivered twice."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def xpending_range(self, name: str, group: str, *, min: str, max: str, count: int) -> None:
        self.ids.append(min)

    def execute(self) -> list[Any]:
        return [[{"message_id": i, "times_delivered": 2}] for i in self.ids]


def row(entry_id: str) -> list[Any]:
    return [entry_id, {"c": "ozon", "e": json.dumps({"order_id": entry_id})}]


def test_claim_follows_the_cursor_it_is_given_and_keeps_it_for_the_next_read() -> None:
    client = ScriptedClient(
        [
            ("5-0", []),  # the head of the pending list: live workers' entries, none idle
            ("9-0", [row("6-0")]),
            ("12-0", [row("10-0")]),  # enough for this read: the walk stops here
            ("0-0", [row("13-0")]),  # the next read goes on from 12-0 and reaches the end
        ]
    )
    inbox = Inbox(client, KEY)  # type: ignore[arg-type]

    first = inbox.read("w1", 2)
    assert client.starts == ["0-0", "5-0", "9-0"]
    assert [(e.entry_id, e.deliveries) for e in first] == [("6-0", 2), ("10-0", 2)]
    assert client.values[inbox.cursor_key] == "12-0"

    second = inbox.read("w1", 2)
    assert client.starts[3:] == ["12-0"]
    assert [e.entry_id for e in second] == ["13-0"]
    assert client.values[inbox.cursor_key] == "0-0"  # the walk starts over next time


def test_claim_walks_at_most_claim_steps_per_read() -> None:
    steps = inbox_module.CLAIM_STEPS
    client = ScriptedClient([(f"{i + 1}-0", []) for i in range(steps + 1)])
    inbox = Inbox(client, KEY)  # type: ignore[arg-type]

    assert inbox.read("w1", 10) == []
    assert len(client.starts) == steps
    assert client.values[inbox.cursor_key] == f"{steps}-0"


@pytest.mark.integration
def test_idle_entries_behind_a_long_head_of_busy_ones_are_taken_over(
    real_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One XAUTOCLAIM looks at COUNT x 10 pending entries. 300 entries of a live worker at the
    head of the pending list hid the idle ones behind them when every claim started at 0-0."""
    monkeypatch.setattr(inbox_module, "CLAIM_IDLE_MS", 60_000)
    inbox = Inbox(real_client, KEY)
    ids = fill(inbox, 305)
    inbox.read("dead-worker", 305)  # all delivered to a worker that then died...
    busy, idle = ids[:300], ids[300:]
    real_client.xclaim(KEY, GROUP, "live-worker", 0, busy, idle=0)  # ...but these are in hand
    real_client.xclaim(KEY, GROUP, "dead-worker", 0, idle, idle=120_000)

    taken = []
    for _ in range(4):  # the first read walks 200 busy entries, the next ones get to the idle
        taken += inbox.read("w1", 2)
    assert sorted(entry.entry_id for entry in taken) == sorted(idle)
    # Delivered by XREADGROUP, moved by the XCLAIM above, then taken over: 3 deliveries.
    assert all(entry.deliveries == 3 for entry in taken)
    owners = {
        row["message_id"].decode(): row["consumer"].decode()
        for row in real_client.xpending_range(KEY, GROUP, min="-", max="+", count=1000)
    }
    assert {owners[i] for i in idle} == {"w1"}
    assert {owners[i] for i in busy} == {"live-worker"}


# -- the dead letter -----------------------------------------------------------------------------


def test_an_entry_delivered_more_than_max_deliveries_goes_to_the_dead_letter(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox_module, "CLAIM_IDLE_MS", 0)  # every read takes it over
    inbox = Inbox(redis_client, KEY)
    [entry_id] = fill(inbox, 1)

    for attempt in range(1, MAX_DELIVERIES + 1):
        [entry] = inbox.read(f"worker-{attempt}", 10)  # each worker dies with it in hand
        assert (entry.entry_id, entry.deliveries) == (entry_id, attempt)
    assert inbox.read("worker-last", 10) == []

    [letter] = inbox.dead_letters()
    assert (letter.entry_id, letter.channel, letter.order_id) == (entry_id, "ozon", "o0")
    assert (letter.reason, letter.deliveries) == (REASON_DELIVERIES, MAX_DELIVERIES)
    assert letter.error
    assert letter.ms > 0
    assert inbox.length() == 0
    assert redis_client.xpending(KEY, GROUP)["pending"] == 0
    assert inbox.dead_key == f"{KEY}:dead"


def test_requeue_dead_puts_events_back_as_new_entries(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox_module, "CLAIM_IDLE_MS", 0)
    monkeypatch.setattr(inbox_module, "MAX_DELIVERIES", 1)
    inbox = Inbox(redis_client, KEY)
    fill(inbox, 2)
    inbox.read("w1", 10)
    assert inbox.read("w2", 10) == []
    letters = inbox.dead_letters()
    assert order_ids([letter for letter in letters]) == ["o0", "o1"]

    inbox.requeue_dead(letters[:1])

    assert order_ids(inbox.dead_letters()) == ["o1"]
    [entry] = inbox.read("w3", 10)
    assert (entry.data, entry.deliveries) == (letters[0].data, 1)
