"""The ledger's contact with Redis: its errors turned into the ledger's, and its clock."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from inventory_engine.errors import LedgerScriptError, LedgerUnavailableError


def wall_clock_ms() -> int:
    """Milliseconds since the epoch; the ledger's default clock (tests pass their own)."""
    return time.time_ns() // 1_000_000


@contextmanager
def redis_errors() -> Iterator[None]:
    """Turn redis-py's errors into the ledger's: an error reply (a script's error, WRONGTYPE,
    OOM, READONLY...) into LedgerScriptError, every other (connection refused, lost, timed
    out) into LedgerUnavailableError."""
    try:
        yield
    except redis.ResponseError as exc:
        raise LedgerScriptError(f"redis refused: {exc}") from exc
    except redis.RedisError as exc:
        raise LedgerUnavailableError(f"redis: {exc}") from exc
