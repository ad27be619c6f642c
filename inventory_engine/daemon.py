"""``serve``: the long-running engine process.

Today it owns the ledger's Redis (starting the embedded server when no URL is configured) and
runs the periodic sweep that releases expired storefront holds. The HTTP intake, RQ workers and
pollers join this supervisor in the sync-path issue. SIGTERM and SIGINT stop it cleanly: the
sweep in hand finishes, then the embedded server is shut down with its AOF flushed.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import structlog

from inventory_engine.config import Settings
from inventory_engine.errors import InventoryError
from inventory_engine.ledger import RedisLedger
from inventory_engine.runtime import redact_url, redis_connection

log = structlog.get_logger()

SWEEP_INTERVAL_S = 1.0
"""How often expired storefront holds are released; a hold outlives its TTL by at most this."""


def serve(settings: Settings, *, stop: threading.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set)."""
    stop = stop or threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("shutdown_requested", signal=signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)

    with redis_connection(settings) as client:
        url = client.get_connection_kwargs()
        ledger = RedisLedger(client, account=settings.account)
        log.info(
            "engine_started",
            redis="embedded" if settings.redis.url is None else redact_url(settings.redis.url),
            host=url.get("host"),
            port=url.get("port"),
            account=settings.account,
        )
        while not stop.is_set():
            try:
                released = ledger.expire_due()
                if released:
                    log.info("reservations_expired", count=released)
            except InventoryError as exc:
                # Redis restarting or briefly unreachable: keep going, say so once per tick.
                log.warning("sweep_failed", error=str(exc))
            stop.wait(SWEEP_INTERVAL_S)
    log.info("engine_stopped")
