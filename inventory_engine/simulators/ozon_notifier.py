"""Push notifications of the Ozon simulator: each posting change POSTed to ``notify_url``.

Fire and forget, as Ozon does: each delivery runs in the background and is recorded with the
answer it got, and counted in ``notifications_sent`` (HTTP 200) or ``notifications_failed``.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from inventory_engine.simulators.base import BackgroundTasks, SimulatorState, notify_ssl_context
from inventory_engine.simulators.ozon_config import OzonSimConfig

NOTIFY_TIMEOUT_S = 5.0
"""Ozon gives a notification URL 5 s to answer."""


class OzonNotifier:
    """Sends the account's push notifications and keeps a record of each delivery."""

    def __init__(self, config: OzonSimConfig, state: SimulatorState) -> None:
        # The config, not its URL: a test may turn notifications off by changing it in place.
        self.config = config
        self.state = state
        self.notifications: list[dict[str, Any]] = []
        self._background = BackgroundTasks()

    @property
    def url(self) -> str | None:
        return self.config.notify_url

    def reset(self) -> None:
        self.notifications.clear()

    def notify(self, payload: dict[str, Any] | None) -> None:
        """Push ``payload`` to ``notify_url`` in the background, if one is configured."""
        if payload is None or not self.url:
            return
        self._background.start(self.deliver(payload))

    async def deliver(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST ``payload`` to ``notify_url`` now; the record of the delivery."""
        record: dict[str, Any] = {"payload": payload, "status_code": None, "answer": None}
        assert self.url is not None  # noqa: S101 - checked by the callers
        # When it left (epoch ns), for the benchmarks: propagation is timed from this send.
        record["sent_ns"] = time.time_ns()
        try:
            async with httpx.AsyncClient(
                timeout=NOTIFY_TIMEOUT_S, verify=notify_ssl_context()
            ) as client:
                response = await client.post(self.url, json=payload)
            record["status_code"] = response.status_code
            record["answered_ns"] = time.time_ns()
            try:
                record["answer"] = response.json()
            except ValueError:
                record["answer"] = response.text
        except httpx.HTTPError as exc:
            record["error"] = type(exc).__name__
        ok = record["status_code"] == 200  # Ozon counts any other status as a failure
        self.state.count("notifications_sent" if ok else "notifications_failed")
        self.notifications.append(record)
        return record
