"""Reconcile: read every listed item back from each channel and compare with the ledger.

For each channel that can be read back, the items the catalog lists on it are read in pages
within the channel's limits (:mod:`.pacing`); after each page, what the ledger says the channel
should show is computed (:mod:`.expected`). An item is

* ``ok``       — the channel shows the expected value;
* ``pending``  — it differs, but a change is waiting to be pushed (in flight, not a difference);
* ``parked``   — it differs and the channel refused the last push (``retry`` once fixed);
* ``differs``  — it differs and nothing is on its way: someone changed it on the marketplace,
  or a push was lost;
* ``missing``  — the channel does not know the item the catalog lists.

Ozon's read-back gives ``present`` (units in the warehouse) and ``reserved`` (held by Ozon's own
postings); what was pushed is ``present − reserved`` (reference §1.3), so that is compared.

:func:`run_reconcile` is the whole command: compare, optionally correct (:mod:`.corrections`),
wait and read again, and list what is stuck (:mod:`.stuck`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from inventory_engine.channels.base import ChannelError, ChannelStock
from inventory_engine.ledger.activity import PushLogEntry
from inventory_engine.operate.common import Operation
from inventory_engine.operate.corrections import (
    Correction,
    apply_corrections,
    verify_corrections,
    wait_for_corrections,
)
from inventory_engine.operate.expected import ChannelTargets, Parked, SkuMarks
from inventory_engine.operate.pacing import ReadPacer
from inventory_engine.operate.stuck import StuckReport, find_stuck
from inventory_engine.service import Engine

PUSH_SCAN_LIMIT = 200_000
"""Push log rows scanned at most for the last pushes of the items shown."""


class ItemStatus(StrEnum):
    OK = "ok"
    PENDING = "pending"
    PARKED = "parked"
    DIFFERS = "differs"
    MISSING = "missing"


DIFFERENT = frozenset({ItemStatus.PARKED, ItemStatus.DIFFERS, ItemStatus.MISSING})
"""Statuses that make ``reconcile`` exit 1."""
CORRECTABLE = frozenset({ItemStatus.DIFFERS, ItemStatus.MISSING})
"""Statuses ``--apply`` sends again (a parked item waits for ``retry``: its cause needs fixing)."""


@dataclass(frozen=True, slots=True)
class ItemCheck:
    """One item of one channel: what the ledger expects and what the channel shows."""

    channel: str
    sku: str
    item_id: str
    expected: int
    actual: int | None
    status: ItemStatus
    accepted: int | None = None
    present: int | None = None
    reserved: int | None = None
    pending_since_ms: int | None = None
    parked: Parked | None = None
    last_push: PushLogEntry | None = None


@dataclass
class ChannelCheck:
    """One channel's reconcile: counts, the items that are not ok, or why it was not read."""

    channel: str
    kind: str
    listed: int = 0
    checked: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    items: list[ItemCheck] = field(default_factory=list)
    """Items that are not ok (all of them with ``keep_all``)."""
    paused_until_ms: int | None = None
    error: str | None = None


@dataclass
class ReconcileReport:
    channels: list[ChannelCheck]

    @property
    def items(self) -> list[ItemCheck]:
        return [item for check in self.channels for item in check.items]

    @property
    def differences(self) -> list[ItemCheck]:
        return [item for item in self.items if item.status in DIFFERENT]

    @property
    def errors(self) -> list[ChannelCheck]:
        return [check for check in self.channels if check.error is not None]


Progress = Callable[[str, int], None]
"""Called with the channel and the number of items just read."""


def classify(actual: ChannelStock | None, marks: SkuMarks) -> ItemStatus:
    """The status of one item from what the channel shows and where the SKU stands."""
    if actual is not None and actual.sellable == marks.expected:
        return ItemStatus.OK
    if marks.pending_since_ms is not None:
        return ItemStatus.PENDING
    if marks.parked is not None:
        return ItemStatus.PARKED
    return ItemStatus.MISSING if actual is None else ItemStatus.DIFFERS


def reconcile_channels(
    operation: Operation,
    channels: Sequence[str],
    *,
    pacer: ReadPacer | None = None,
    progress: Progress | None = None,
    on_listed: Callable[[str, int], None] | None = None,
    keep_all: bool = False,
) -> ReconcileReport:
    """Read back and compare each channel (readable kinds only); a channel that fails is
    reported with its error and the others still run.

    Raises:
        ConfigError: the channels cannot be reached from here (sandbox mode).
        LedgerUnavailableError: Redis failed.
    """
    operation.require_reachable()
    engine = operation.engine
    pacer = pacer or ReadPacer(engine.client, account=engine.settings.account)
    checks: list[ChannelCheck] = []
    for name in channels:
        targets = ChannelTargets(engine, name)
        check = ChannelCheck(channel=name, kind=targets.settings.kind)
        checks.append(check)
        listed = targets.listed()
        check.listed = len(listed)
        if on_listed is not None:
            on_listed(name, len(listed))
        try:
            _check_channel(engine, targets, listed, pacer, check, progress, keep_all)
        except ChannelError as exc:
            check.error = str(exc)
        check.paused_until_ms = targets.paused_until_ms()
    _attach_last_pushes(engine, checks)
    return ReconcileReport(checks)


def _check_channel(
    engine: Engine,
    targets: ChannelTargets,
    listed: list[tuple[str, str]],
    pacer: ReadPacer,
    check: ChannelCheck,
    progress: Progress | None,
    keep_all: bool,
) -> None:
    client = engine.channel(targets.name)
    sku_of = {item_id: sku for sku, item_id in listed}
    pages = pacer.read_stock(
        targets.name, targets.settings.kind, client, list(sku_of), targets.settings
    )
    for page, shown in pages:
        skus = [sku_of[item_id] for item_id in page]
        marks = targets.marks(skus)  # after the read: a change meanwhile shows as pending
        for item_id, sku in zip(page, skus, strict=True):
            actual = shown.get(item_id)
            mark = marks[sku]
            status = classify(actual, mark)
            check.counts[status.value] = check.counts.get(status.value, 0) + 1
            check.checked += 1
            if status is ItemStatus.OK and not keep_all:
                continue
            check.items.append(
                ItemCheck(
                    channel=targets.name,
                    sku=sku,
                    item_id=item_id,
                    expected=mark.expected,
                    actual=actual.sellable if actual is not None else None,
                    status=status,
                    accepted=mark.accepted,
                    present=actual.present if actual is not None else None,
                    reserved=actual.reserved if actual is not None else None,
                    pending_since_ms=mark.pending_since_ms,
                    parked=mark.parked,
                )
            )
        if progress is not None:
            progress(targets.name, len(page))


def _attach_last_pushes(engine: Engine, checks: list[ChannelCheck]) -> None:
    """The newest push of each item shown (one scan of the push log for all of them)."""
    wanted = {(item.channel, item.sku) for check in checks for item in check.items}
    if not wanted:
        return
    found: dict[tuple[str, str], PushLogEntry] = {}
    for entry in engine.activity.pushes(
        skus={sku for _, sku in wanted}, limit=len(wanted) * 20, scan_limit=PUSH_SCAN_LIMIT
    ):
        key = (entry.channel, entry.sku)
        if key in wanted and key not in found:
            found[key] = entry
    for check in checks:
        check.items = [
            replace(item, last_push=found[(item.channel, item.sku)])
            if (item.channel, item.sku) in found
            else item
            for item in check.items
        ]


# -- the command -----------------------------------------------------------------------------------


@dataclass
class ReconcileRun:
    """One ``reconcile``: the comparison, the corrections sent, and what is stuck."""

    report: ReconcileReport
    corrections: list[Correction]
    stuck: StuckReport

    @property
    def left(self) -> list[ItemCheck]:
        """Differences not shown repaired (a correction read back with the expected value)."""
        fixed = {(c.channel, c.sku) for c in self.corrections if c.after == c.expected}
        return [i for i in self.report.differences if (i.channel, i.sku) not in fixed]

    @property
    def ok(self) -> bool:
        return not self.left and not self.stuck.total and not self.report.errors

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "channels": [
                {k: v for k, v in asdict(c).items() if k != "items"} for c in self.report.channels
            ],
            "items": [asdict(i) for i in self.report.items],
            "corrections": [asdict(c) for c in self.corrections],
            "stuck": asdict(self.stuck),
        }


def run_reconcile(
    operation: Operation,
    channels: Sequence[str],
    *,
    apply: bool = False,
    wait_s: float | None = None,
    keep_all: bool = False,
    stuck_channels: Sequence[str] | None = None,
    progress: Progress | None = None,
    on_listed: Callable[[str, int], None] | None = None,
    pacer: ReadPacer | None = None,
) -> ReconcileRun:
    """Compare ``channels``; with ``apply`` send the differences again, and with ``wait_s``
    wait that long for them to land and read them back; list what is stuck (parked items and
    unknown-SKU orders of ``stuck_channels``, default all)."""
    engine = operation.engine
    pacer = pacer or ReadPacer(engine.client, account=engine.settings.account)
    report = reconcile_channels(
        operation, channels, pacer=pacer, progress=progress, on_listed=on_listed, keep_all=keep_all
    )
    corrections = []
    if apply:
        corrections = [
            Correction(i.channel, i.sku, i.item_id, i.expected, i.actual)
            for i in report.differences
            if i.status in CORRECTABLE
        ]
        apply_corrections(engine, corrections)
        if corrections and wait_s is not None:
            wait_for_corrections(engine, corrections, timeout_s=wait_s)
            verify_corrections(operation, corrections, pacer=pacer)
    return ReconcileRun(report, corrections, find_stuck(engine, stuck_channels))
