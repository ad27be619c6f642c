"""The Redis ledger: per-SKU counters changed only by Lua scripts, with an audit journal."""

from __future__ import annotations

from inventory_engine.ledger.events import OrderEvent
from inventory_engine.ledger.ledger import RedisLedger
from inventory_engine.ledger.reads import LedgerReader
from inventory_engine.ledger.results import OrderOutcome, ReservationOutcome

__all__ = ["LedgerReader", "OrderEvent", "OrderOutcome", "RedisLedger", "ReservationOutcome"]
