"""RQ job functions: parse primitive arguments, call the Engine, return a small dict.

Each job names its seller account (``account``; jobs queued before accounts existed have none:
the default account) and runs with that account's Engine, built once per worker process
(``workers.runtime.engine``) from the same settings as ``serve``; jobs never talk to Redis or
HTTP themselves.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import structlog

from inventory_engine.alerts import announce_oversold as announce_oversold_to
from inventory_engine.constants import DEFAULT_ACCOUNT
from inventory_engine.service import order_from_dict
from workers.runtime import engine

log = structlog.get_logger()


def apply_order_event(
    channel: str, order: dict[str, Any], account: str = DEFAULT_ACCOUNT
) -> dict[str, Any]:
    """Apply one queued marketplace event to the ledger (idempotent: safe to retry)."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        account=account, channel=channel, order_id=order.get("order_id")
    )
    outcome = engine(account).apply_order_event(channel, order_from_dict(order))
    return {
        "applied": outcome.applied,
        "state": outcome.state.value if outcome.state else None,
        "oversold_units": outcome.oversold_units,
        "unknown_lines": outcome.unknown_lines,
    }


def publish_channel(channel: str, account: str = DEFAULT_ACCOUNT) -> dict[str, Any]:
    """Start (or nudge) the channel's sender thread in this worker process and return: the
    sender pushes everything the channel may receive now, and when it ends it queues the next
    job or a wake-up for the next due time (``inventory_engine/sync/sender.py``)."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(account=account, channel=channel)
    started = engine(account).start_push(channel)
    return {"sender_started": started}


def announce_oversold(
    channel: str, order_id: str, account: str = DEFAULT_ACCOUNT
) -> dict[str, Any]:
    """POST the oversold order to ``[alerts] oversold_url`` (retried by RQ when it fails)."""
    app = engine(account)
    oversells = [
        o for o in app.reader.oversells() if o.channel == channel and o.order_id == order_id
    ]
    status = announce_oversold_to(app.settings.alerts, channel, order_id, oversells)
    return {"status": status, "lines": len(oversells)}


def apply_inbox(account: str = DEFAULT_ACCOUNT) -> dict[str, Any]:
    """Apply the queued marketplace events in batches (guarded: a burst queues one job)."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(account=account)
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    return {"handled": engine(account).apply_inbox(consumer)}
