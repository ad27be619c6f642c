"""Settings of the Yandex Market simulator: the store's credentials, ids and limits.

The defaults are the engine's sandbox credentials and the limits reference §3 gives for YM.
"""

from __future__ import annotations

from dataclasses import dataclass

from inventory_engine import sandbox_channels

# Credentials and ids the simulator accepts by default (the engine's sandbox mode uses them).
SANDBOX_API_KEY = sandbox_channels.YM_API_KEY
SANDBOX_CAMPAIGN_ID = sandbox_channels.YM_CAMPAIGN_ID
SANDBOX_BUSINESS_ID = sandbox_channels.YM_BUSINESS_ID
SANDBOX_WAREHOUSE_ID = sandbox_channels.YM_WAREHOUSE_ID


@dataclass
class YandexMarketSimConfig:
    """Credentials, ids and limits (defaults as the reference gives them)."""

    api_key: str = SANDBOX_API_KEY
    campaign_id: int = SANDBOX_CAMPAIGN_ID
    business_id: int = SANDBOX_BUSINESS_ID
    warehouse_id: int = SANDBOX_WAREHOUSE_ID
    max_skus: int = 2_000
    max_count: int = 2_000_000_000
    skus_per_window: int = 100_000
    window_s: float = 60.0
    v3_requests_per_window: int = 50
    """``POST /v3/businesses/{id}/offers/stocks/update``: 50 requests per ``window_s``."""
    read_offers_per_window: int = 100_000
    orders_requests_per_window: int = 10_000
    orders_window_s: float = 3_600.0
    max_parallel: int = 4
    """Requests in flight per campaign (``/campaigns/{id}/...``) or cabinet
    (``/businesses/{id}/...``); YM's limits page (2026): four, 420 beyond."""
    max_read_limit: int = 100
    """Read methods' page ``limit``: larger values are cut to it (YM, 4 Aug 2026)."""
    default_read_limit: int = 50
    max_read_offer_ids: int = 500
    max_order_ids: int = 50
    max_period_days: int = 30
    offers: frozenset[str] | None = None
    """The campaign's catalog; None accepts any offer (sandbox convenience)."""
    notify_url: str | None = None
    """Where notifications are POSTed (the full URL, e.g. ``.../notification``)."""
    unique_ids: bool = False
    """Order ids from :class:`ClockIds`, never repeated by a simulator started again or reset
    (the sandbox: the engine's ledger outlives it). False: from 51000001 at every start and
    reset."""
