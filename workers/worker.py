"""EngineWorker: the RQ SimpleWorker ``inventory-engine worker`` runs (see ``settings.py``).

Two things beyond RQ's own:

* On a warm shutdown it tells the process's channel senders to stop: the rounds in flight
  settle, no new one starts (``Engine.senders``).
* Its pub/sub command channel (``rq`` sends "stop the job" through it) is closed without
  waiting for the listener thread. With redis-py ≥ 8.2, ``PubSubWorkerThread.stop()`` joins the
  thread, which sits up to RQ's ``sleep_time`` (60 s) waiting for a subscription that
  ``UNSUBSCRIBE`` just ended: every worker stop took up to a minute, longer than ``serve``
  waits before it kills the worker.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import redis
from rq import SimpleWorker

PUBSUB_STOP_WAIT_S = 1.0
"""How long a stopping worker waits for its pub/sub listener thread (a daemon thread)."""


class EngineWorker(SimpleWorker):
    """A SimpleWorker that stops the engine's senders with it.

    Args:
        on_stop: called when a warm shutdown is requested (SIGTERM, SIGINT).
    """

    def __init__(self, *args: Any, on_stop: Callable[[], None] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.on_stop = on_stop

    def request_stop(self, signum: Any, frame: Any) -> None:
        if self.on_stop is not None:
            self.on_stop()
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def unsubscribe(self) -> None:
        thread = self.pubsub_thread
        if not thread:
            return
        with contextlib.suppress(redis.RedisError):
            self.pubsub.unsubscribe()
        try:
            thread.stop(timeout=PUBSUB_STOP_WAIT_S)  # redis-py >= 8.2 joins the thread
        except TypeError:
            thread.stop()  # older redis-py: only clears the flag
        with contextlib.suppress(redis.RedisError):
            self.pubsub.close()
