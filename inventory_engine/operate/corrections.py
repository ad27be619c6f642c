"""Corrections: send differing items again through the normal push path, and see them land.

:func:`apply_corrections` marks each item changed for its channel and forgets the channel's last
accepted value (else the publisher would coalesce the push away as "unchanged"), then queues
the channel's push job — which respects the channel's limits and item windows like any other.
:func:`wait_for_corrections` watches the marks until each correction was accepted or refused;
:func:`verify_corrections` reads the accepted ones back from the channel.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from inventory_engine.channels.base import ChannelStock
from inventory_engine.ledger.redis_io import redis_errors, wall_clock_ms
from inventory_engine.operate.common import Operation
from inventory_engine.operate.expected import Parked
from inventory_engine.operate.pacing import ReadPacer
from inventory_engine.service import Engine


@dataclass
class Correction:
    """One item sent again, and (after waiting) what became of it."""

    channel: str
    sku: str
    item_id: str
    expected: int
    before: int | None
    outcome: str = "queued"
    """queued | accepted | parked | pending (still waiting when the wait ended)."""
    sent: int | None = None
    """The value the channel accepted (or was refused)."""
    code: str = ""
    after: int | None = None
    """What the channel shows when read again after the wait."""


def apply_corrections(engine: Engine, corrections: Sequence[Correction]) -> None:
    """Mark each item changed for its channel, forget the channel's last accepted value, and
    queue the push job of every channel concerned."""
    if not corrections:
        return
    now = wall_clock_ms()
    keys = engine.ledger.keys
    with redis_errors():
        pipe = engine.client.pipeline(transaction=True)
        for c in corrections:
            # NX: a change marked meanwhile keeps its earlier first-change time.
            pipe.zadd(keys.dirty(c.channel), {c.sku: now}, nx=True)
            pipe.hdel(keys.accepted(c.channel), c.sku)
        pipe.execute()
    engine.schedule_pushes(sorted({c.channel for c in corrections}))


def wait_for_corrections(
    engine: Engine,
    corrections: list[Correction],
    *,
    timeout_s: float,
    poll_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Watch the marks until each correction was accepted or parked (or ``timeout_s``).

    A correction is done when its SKU is no longer marked for the channel and the channel
    accepted a value (the accepted value was cleared when it was queued) or parked it.
    """
    deadline = time.monotonic() + timeout_s
    keys = engine.ledger.keys
    open_ = list(corrections)
    while open_:
        with redis_errors():
            pipe = engine.client.pipeline(transaction=False)
            for c in open_:
                pipe.zscore(keys.dirty(c.channel), c.sku)
                pipe.hget(keys.accepted(c.channel), c.sku)
                pipe.hget(keys.parked(c.channel), c.sku)
            replies = pipe.execute()
        still: list[Correction] = []
        for index, c in enumerate(open_):
            dirty, accepted, parked = replies[index * 3 : index * 3 + 3]
            if dirty is None and accepted is not None:
                c.outcome, c.sent = "accepted", int(accepted)
            elif dirty is None and parked is not None:
                refusal = Parked.decode(parked)
                c.outcome, c.sent, c.code = "parked", refusal.quantity, refusal.code
            else:
                c.outcome = "pending"
                still.append(c)
        open_ = still
        if not open_ or time.monotonic() >= deadline:
            return
        sleep(poll_s)


def verify_corrections(
    operation: Operation, corrections: list[Correction], *, pacer: ReadPacer | None = None
) -> None:
    """Read the corrected items again and record what each channel shows now."""
    engine = operation.engine
    pacer = pacer or ReadPacer(engine.client, account=engine.settings.account)
    by_channel: dict[str, list[Correction]] = {}
    for c in corrections:
        if c.outcome == "accepted":
            by_channel.setdefault(c.channel, []).append(c)
    for name, items in by_channel.items():
        kind = engine.channel_settings[name].kind
        client = engine.channel(name)
        shown: dict[str, ChannelStock] = {}
        for _, page in pacer.read_stock(name, kind, client, [c.item_id for c in items]):
            shown.update(page)
        for c in items:
            stock = shown.get(c.item_id)
            c.after = stock.sellable if stock is not None else None
