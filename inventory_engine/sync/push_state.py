"""PushState: one channel's push bookkeeping in Redis, changed only by two Lua scripts.

* :meth:`PushState.claim` takes, exclusively, the marked SKUs that may be sent now
  (``claim_due.lua``): each claim carries the caller's owner token and a lease;
* :meth:`PushState.settle` records the channel's answers for them (``settle_claims.lua``), and
  acts only for the lease's owner.

At most one value per (channel, SKU) is ever in flight, whatever the number of senders on
whatever hosts; every time (lease, item window, pause) is the Redis server's. The publisher
(``publisher.py``) decides what to send; this module only keeps the books.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis

from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.ledger.redis_io import redis_errors
from inventory_engine.ledger.results import text
from inventory_engine.ledger.scripts import lua_source

PACKAGE = "inventory_engine.sync"
LIBRARY = "_push_lib"


class Settle(StrEnum):
    """What happened to one claimed SKU (see ``settle_claims.lua``)."""

    ACCEPTED = "accepted"
    UNCHANGED = "unchanged"
    NOT_LISTED = "not_listed"
    REJECTED = "rejected"
    THROTTLED = "throttled"
    RETRY = "retry"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True, slots=True)
class ClaimedSku:
    """One SKU claimed for sending.

    Attributes:
        sku: the seller's SKU.
        first_ms: its oldest unpublished change (server ms).
        allowed_ms: from when the channel's limits allowed sending it (the change itself, or
            the end of the item window or a rate wait that held it).
    """

    sku: str
    first_ms: int
    allowed_ms: int


@dataclass(frozen=True, slots=True)
class Claim:
    """What one claim took. ``next_due_ms``: the earliest due time still marked (None:
    nothing marked; at or before ``now_ms``: more may be claimed at once)."""

    token: str
    now_ms: int
    next_due_ms: int | None
    skus: tuple[ClaimedSku, ...]
    slots_full: bool = False
    """Nothing was claimed because the channel's requests in flight are at its limit."""


@dataclass(frozen=True, slots=True)
class SettleItem:
    sku: str
    outcome: Settle
    value: int = 0
    delay_ms: int = 0
    parked: str = ""
    item_id: str = ""
    """The marketplace's id the value was sent to (remembered with an accepted value)."""


@dataclass(frozen=True, slots=True)
class SettleResult:
    now_ms: int
    settled: int
    stale: int
    """Answers that came after their lease ran out: not recorded (see settle_claims.lua)."""
    next_due_ms: int | None
    """The earliest due time still marked (None: nothing is marked)."""


def new_token() -> str:
    """An owner token, unique across processes and hosts, that says who holds a claim:
    ``<host>/<pid>/<random>`` (no spaces: the claim record is space-separated)."""
    host = "".join(socket.gethostname().split()) or "host"
    return f"{host}/{os.getpid()}/{secrets.token_hex(6)}"


class PushState:
    """The push bookkeeping of one channel of one account."""

    def __init__(
        self,
        client: redis.Redis,
        channel: str,
        *,
        keys: AccountKeys,
        window_ms: int | None,
        lease_ms: int,
        concurrency: int = 1,
    ) -> None:
        self.client = client
        self.channel = channel
        self.keys = keys
        self.window_ms = window_ms or 0
        self.lease_ms = lease_ms
        self.concurrency = concurrency
        self._claim = client.register_script(lua_source(PACKAGE, "claim_due", LIBRARY))
        self._settle = client.register_script(lua_source(PACKAGE, "settle_claims", LIBRARY))

    def _state_keys(self) -> list[str]:
        k, name = self.keys, self.channel
        return [
            k.dirty(name),
            k.dirty_since(name),
            k.inflight(name),
            k.claims(name),
            k.not_before(name),
            k.accepted(name),
        ]

    def claim(self, limit: int, *, token: str | None = None, scan: int | None = None) -> Claim:
        """Claim up to ``limit`` SKUs that may be sent now, oldest due first."""
        token = token or new_token()
        with redis_errors():
            now, next_due, flat, full = self._claim(
                keys=[
                    *self._state_keys(),
                    self.keys.paused(self.channel),
                    self.keys.senders(self.channel),
                    self.keys.clock_offset,
                ],
                args=[
                    token,
                    limit,
                    self.lease_ms,
                    self.window_ms,
                    scan or max(limit * 4, 100),
                    self.concurrency,
                ],
            )
        skus = tuple(
            ClaimedSku(text(flat[i]), int(flat[i + 1]), int(flat[i + 2]))
            for i in range(0, len(flat), 3)
        )
        due = int(next_due)
        return Claim(token, int(now), due if due >= 0 else None, skus, bool(int(full)))

    def settle(self, token: str, items: Sequence[SettleItem], *, pause_ms: int = 0) -> SettleResult:
        """Record the answers for SKUs claimed under ``token`` (all in one atomic call);
        ``pause_ms``: the request failed, the channel backs off this long (server clock)."""
        args: list[Any] = [token, self.window_ms, max(0, pause_ms)]
        for item in items:
            args += [
                item.sku,
                item.outcome.value,
                item.value,
                max(0, item.delay_ms),
                item.parked,
                item.item_id,
            ]
        with redis_errors():
            now, settled, stale, next_due = self._settle(
                keys=[
                    *self._state_keys(),
                    self.keys.parked(self.channel),
                    self.keys.senders(self.channel),
                    self.keys.clock_offset,
                    self.keys.paused(self.channel),
                    self.keys.accepted_item(self.channel),
                ],
                args=args,
            )
        due = int(next_due)
        return SettleResult(int(now), int(settled), int(stale), due if due >= 0 else None)
