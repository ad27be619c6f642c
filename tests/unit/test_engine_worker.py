"""EngineWorker: a warm shutdown stops the senders; closing its pub/sub never waits long."""

from __future__ import annotations

import fakeredis
import pytest
from rq.exceptions import StopRequested

from workers.worker import PUBSUB_STOP_WAIT_S, EngineWorker


class RecordingThread:
    def __init__(self, *, takes_timeout: bool) -> None:
        self.takes_timeout = takes_timeout
        self.stopped_with: list[float | None] = []

    def stop(self, **kwargs):
        if not self.takes_timeout and kwargs:
            raise TypeError("stop() takes no arguments")  # redis-py before 8.2
        self.stopped_with.append(kwargs.get("timeout"))


class RecordingPubSub:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def unsubscribe(self) -> None:
        self.calls.append("unsubscribe")

    def close(self) -> None:
        self.calls.append("close")


def worker(thread: RecordingThread) -> tuple[EngineWorker, RecordingPubSub]:
    stops: list[str] = []
    w = EngineWorker(["q"], connection=fakeredis.FakeRedis(), on_stop=lambda: stops.append("x"))
    pubsub = RecordingPubSub()
    w.pubsub, w.pubsub_thread = pubsub, thread
    return w, pubsub


def test_the_pubsub_listener_is_given_a_bounded_wait():
    thread = RecordingThread(takes_timeout=True)
    w, pubsub = worker(thread)
    w.unsubscribe()
    assert thread.stopped_with == [PUBSUB_STOP_WAIT_S]
    assert pubsub.calls == ["unsubscribe", "close"]


def test_older_redis_py_without_a_stop_timeout_still_stops():
    thread = RecordingThread(takes_timeout=False)
    w, pubsub = worker(thread)
    w.unsubscribe()
    assert thread.stopped_with == [None]
    assert pubsub.calls == ["unsubscribe", "close"]


def test_a_warm_shutdown_tells_the_senders_first():
    told: list[str] = []
    w = EngineWorker(["q"], connection=fakeredis.FakeRedis(), on_stop=lambda: told.append("stop"))
    with pytest.raises(StopRequested):  # an idle worker stops at once
        w.request_stop(15, None)
    assert told == ["stop"]
