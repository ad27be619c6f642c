"""Explain: why a channel shows what it shows for one SKU.

The answer is a chain: the SKU's journal (every counter change, newest first: time, operation,
channel, order, on hand and reserved before → after) and, under each change, the pushes that
followed it — what each channel was sent and what it answered — until the next change. A
bundle has no counters of its own: its components' journals are merged. On top, where the SKU
stands for each channel now: what it should show, what it last accepted, a change in flight,
the item window, a parked refusal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inventory_engine.ledger.activity import PushLogEntry
from inventory_engine.ledger.reads import JournalEntry
from inventory_engine.operate.expected import ChannelTargets, SkuMarks
from inventory_engine.service import Engine

PUSHES_PER_STEP = 20
"""Push log entries fetched per journal entry shown (the scan stops at the oldest one)."""


@dataclass(frozen=True, slots=True)
class ChannelNow:
    """The SKU on one channel now."""

    channel: str
    item_id: str | None
    """None: the catalog does not list the SKU on this channel."""
    marks: SkuMarks


@dataclass
class Step:
    """One journal entry and the pushes that followed it (oldest first)."""

    entry: JournalEntry
    pushes: list[PushLogEntry] = field(default_factory=list)

    @property
    def available_before(self) -> int:
        return self.entry.on_hand_before - self.entry.reserved_before

    @property
    def available_after(self) -> int:
        return self.entry.on_hand_after - self.entry.reserved_after


@dataclass
class Explanation:
    sku: str
    known: bool
    available: int
    components: list[str]
    """The bundle's components (their journals are shown), empty for a plain SKU."""
    channels: list[ChannelNow]
    steps: list[Step]
    """Newest first."""


def explain(engine: Engine, sku: str, *, limit: int = 20) -> Explanation:
    """The SKU's last ``limit`` journal entries with the pushes that followed each, and where
    it stands on every channel now."""
    stock = engine.reader.stock(sku)
    components = [part for part, _ in stock.recipe] if stock.recipe else []
    entries = _journal(engine, components or [sku], limit)
    steps = [Step(entry) for entry in entries]
    if steps:
        _attach_pushes(engine, sku, steps, limit)
    channels = []
    for name in engine.channel_settings:
        targets = ChannelTargets(engine, name)
        channels.append(ChannelNow(name, targets.item_id(sku), targets.marks([sku])[sku]))
    return Explanation(
        sku=sku,
        known=stock.known,
        available=stock.available,
        components=components,
        channels=channels,
        steps=steps,
    )


def _journal(engine: Engine, skus: list[str], limit: int) -> list[JournalEntry]:
    merged = [entry for sku in skus for entry in engine.reader.journal(sku=sku, limit=limit)]
    # Stream ids are "<ms>-<seq>": ordered by time, then by the order they were written.
    merged.sort(key=lambda e: tuple(int(part) for part in e.entry_id.split("-")), reverse=True)
    return merged[:limit]


def _attach_pushes(engine: Engine, sku: str, steps: list[Step], limit: int) -> None:
    """Each push since the oldest step goes under the newest step at or before it."""
    oldest_ms = steps[-1].entry.ms
    pushes = engine.activity.pushes(sku=sku, since_ms=oldest_ms, limit=limit * PUSHES_PER_STEP)
    for push in reversed(pushes):  # oldest first
        for step in steps:  # newest first: the first one at or before the push
            if step.entry.ms <= push.ms:
                step.pushes.append(push)
                break
