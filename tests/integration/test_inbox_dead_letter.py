"""An inbox event that keeps failing fails alone, ends in the dead letter, is listed by
``reconcile`` and brought back by ``retry`` (real Valkey, the marketplace simulators, RQ
workers in process, the CLI; harness from ``test_operate_reconcile``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog
from rq import Retry
from rq.registry import FailedJobRegistry
from structlog.testing import capture_logs

import inventory_engine.inbox as inbox_module
import inventory_engine.service.inbox_drain as inbox_drain
from inventory_engine.channels.base import ChannelLine, ChannelOrder
from inventory_engine.config import AlertSettings
from inventory_engine.domain.models import OrderAction, OrderState
from inventory_engine.errors import LedgerUnavailableError
from tests.integration import test_metrics
from tests.integration.test_api import dead_redis
from tests.integration.test_operate_reconcile import (  # noqa: F401 - fixtures
    OZON_SKU,
    Harness,
    harness_fixture,
    sims_fixture,
)

pytestmark = pytest.mark.integration

receiver = test_metrics.receiver
"""The fixture of an HTTP receiver of oversold announcements: ``(url, received)``."""


@pytest.fixture
def every_level() -> Iterator[None]:
    """Every level reaches ``capture_logs`` (an in-process CLI test may have set WARNING);
    asked for after ``harness``, which is set up with the usual logging."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    try:
        yield
    finally:
        structlog.configure(**saved)


def posting(number: str, quantity: int) -> ChannelOrder:
    """An Ozon posting as its webhook queues it (lines known: no marketplace lookup)."""
    line = ChannelLine(str(OZON_SKU), quantity)
    return ChannelOrder(number, OrderAction.RESERVE, "awaiting_packaging", lines=(line,))


def state(h: Harness, order_id: str) -> OrderState | None:
    record = h.engine.reader.order("ozon", order_id)
    return record.state if record is not None else None


def test_a_poisoned_event_fails_alone_is_dead_lettered_listed_and_retried(
    harness: Harness, every_level, receiver, monkeypatch
) -> None:
    url, announced = receiver
    engine = harness.engine
    engine.settings = engine.settings.model_copy(update={"alerts": AlertSettings(oversold_url=url)})
    # Its own job retries at once (no waits between tries): 1 drain + 4 job attempts.
    monkeypatch.setattr(inbox_drain, "EVENT_RETRY", Retry(max=3))
    poisoned = engine.ledger.keys.order("ozon", "P-BAD")
    engine.client.set(poisoned, "not a hash")  # its ledger script fails: WRONGTYPE

    # One batch: a good posting, the poisoned one, and one that oversells (10 on hand).
    with capture_logs() as logs:
        engine.queue_order_events(
            "ozon", [posting("P-GOOD", 2), posting("P-BAD", 1), posting("P-OVER", 9)]
        )
        harness.work()

    # The rest of the batch was applied, acknowledged and announced.
    assert engine.inbox.length() == 0
    assert (state(harness, "P-GOOD"), state(harness, "P-OVER")) == ((OrderState.RESERVED,) * 2)
    stock = engine.reader.stock("MUG")
    assert (stock.on_hand, stock.reserved) == (10, 11)
    oversold = [e for e in logs if e["event"] == "order_oversold"]
    assert [(e["order_id"], e["units"]) for e in oversold] == [("P-OVER", 1)]
    assert [a["body"]["order_id"] for a in announced] == ["P-OVER"]
    # The poisoned one was tried MAX_DELIVERIES times, then set aside with its error.
    assert engine.client.get(poisoned) == b"not a hash"  # its script never got past it
    [letter] = engine.inbox.dead_letters()
    assert (letter.channel, letter.order_id, letter.reason) == (
        "ozon",
        "P-BAD",
        "retries_exhausted",
    )
    assert letter.deliveries == inbox_module.MAX_DELIVERIES
    assert "WRONGTYPE" in letter.error

    # reconcile lists it (and not its job again as a failed job): exit 1.
    code, payload = harness.json("reconcile")
    assert code == 1
    stuck = payload["stuck"]
    assert stuck["failed_jobs"] == []
    [dead] = stuck["dead_letters"]
    assert (dead["channel"], dead["order_id"], dead["action"]) == ("ozon", "P-BAD", "reserve")
    assert dead["deliveries"] == inbox_module.MAX_DELIVERIES
    assert "WRONGTYPE" in dead["error"]
    table = harness.run("reconcile")
    assert table.exit_code == 1
    assert "dead-lettered events" in table.stdout
    assert "P-BAD" in table.stdout

    # The cause removed, retry brings it back to the inbox and queues a drain; it applies.
    engine.client.delete(poisoned)
    code, payload = harness.json("retry")
    assert code == 0, payload
    assert [e["order_id"] for e in payload["requeued_dead_letters"]] == ["P-BAD"]
    assert engine.inbox.dead_letters() == []
    assert FailedJobRegistry(queue=engine.events).count == 0
    assert engine.inbox.length() == 1
    harness.work()
    assert state(harness, "P-BAD") is OrderState.RESERVED
    assert engine.inbox.length() == 0
    code, payload = harness.json("reconcile")
    assert payload["stuck"]["dead_letters"] == []
    assert payload["stuck"]["failed_jobs"] == []


def test_an_event_whose_drains_keep_dying_is_dead_lettered_and_retried(
    harness: Harness, monkeypatch
) -> None:
    """The ledger unreachable from the workers while the queue's Redis works: nothing of the
    batch is acknowledged, each drain takes it over; after MAX_DELIVERIES it is set aside."""
    engine = harness.engine
    monkeypatch.setattr(inbox_module, "CLAIM_IDLE_MS", 0)  # the next drain takes it over at once

    with monkeypatch.context() as down:
        down.setattr(engine.ledger, "client", dead_redis())  # the ledger's calls fail
        engine.queue_order_events("ozon", [posting("P-LATE", 1)])
        for _ in range(inbox_module.MAX_DELIVERIES):
            with pytest.raises(LedgerUnavailableError):
                engine.apply_inbox("worker")
        assert engine.apply_inbox("worker") == 0  # the next drain sets it aside

    assert engine.inbox.length() == 0
    [letter] = engine.inbox.dead_letters()
    assert (letter.order_id, letter.reason) == ("P-LATE", "max_deliveries")
    assert letter.deliveries == inbox_module.MAX_DELIVERIES
    code, payload = harness.json("reconcile")
    assert code == 1
    assert [d["order_id"] for d in payload["stuck"]["dead_letters"]] == ["P-LATE"]

    code, payload = harness.json("retry")
    assert code == 0, payload
    harness.work()
    assert state(harness, "P-LATE") is OrderState.RESERVED
    assert engine.inbox.dead_letters() == []
