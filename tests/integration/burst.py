"""Run the engine's RQ jobs in the test's own process, as ``serve``'s workers would, until every
queue is empty and every channel sender the push jobs started has ended."""

from __future__ import annotations

from typing import Any

from rq import SimpleWorker

from inventory_engine.service import Engine


class BurstWorker(SimpleWorker):
    """A real RQ SimpleWorker without its pub/sub command channel. A burst worker that ends
    within milliseconds (push jobs only start a sender thread) would otherwise wait up to a
    minute in teardown for a subscription it never saw confirmed (rq's ``sleep_time=60``)."""

    def subscribe(self) -> None:
        pass

    def unsubscribe(self) -> None:
        pass


def run_workers(engine: Engine, *, queues: Any = None, rounds: int = 50) -> None:
    """Drain the queues (events and pushes by default) with a real RQ worker in burst mode,
    wait for the channel senders its push jobs started, and again while they queued more."""
    queues = queues if queues is not None else [engine.events, engine.pushes]
    for _ in range(rounds):
        BurstWorker(queues, connection=engine.queue_client).work(
            burst=True, logging_level="WARNING"
        )
        assert engine.senders.join(60), "a channel sender did not end"
        if not any(queue.count for queue in queues):
            return
