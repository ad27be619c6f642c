"""Announcements that need a person now: an oversold marketplace order.

The worker that applied the order logs it at once (``order_oversold``, level error) and, when
``[alerts] oversold_url`` is set, queues :func:`announce_oversold` as a job with retries, so a
receiver that is down for a while still gets told.
"""

from __future__ import annotations

from typing import Any

import httpx
import structlog

from inventory_engine.config import AlertSettings
from inventory_engine.ledger.reads import Oversell

log = structlog.get_logger()


def oversold_message(channel: str, order_id: str, oversells: list[Oversell]) -> dict[str, Any]:
    """The JSON body: what was oversold and what to do about it."""
    units = sum(o.shortfall for o in oversells)
    return {
        "event": "order_oversold",
        "channel": channel,
        "order_id": order_id,
        "units": units,
        "lines": [
            {"sku": o.sku, "shortfall": o.shortfall, "location": o.location, "ms": o.ms}
            for o in oversells
        ],
        "text": (
            f"{channel} order {order_id} is oversold by {units} unit(s): cancel it on the "
            "marketplace before it is prepared (Ozon: reason 352, out of stock), or find the units."
        ),
    }


def announce_oversold(
    settings: AlertSettings,
    channel: str,
    order_id: str,
    oversells: list[Oversell],
    *,
    http: httpx.Client | None = None,
) -> int:
    """POST the announcement; returns the receiver's status code.

    Raises:
        httpx.HTTPError: the receiver could not be reached or answered an error (the job is
            retried by RQ).
    """
    if not settings.oversold_url:
        return 0
    headers = {}
    if settings.oversold_token is not None:
        headers["Authorization"] = f"Bearer {settings.oversold_token.get_secret_value()}"
    body = oversold_message(channel, order_id, oversells)
    own = http is None
    client = http or httpx.Client(timeout=settings.timeout_s)
    try:
        response = client.post(settings.oversold_url, json=body, headers=headers)
        response.raise_for_status()
    finally:
        if own:
            client.close()
    log.info("oversold_announced", channel=channel, order_id=order_id, status=response.status_code)
    return response.status_code
