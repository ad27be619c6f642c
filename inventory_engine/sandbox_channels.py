"""Sandbox mode's channels: their names and the credentials the built-in simulators accept.

With no ``[[channels]]`` configured, ``serve`` publishes to the simulators; the workers it
starts and the operator commands run in other processes and build the same channel settings
from the simulators' addresses alone. That is product code (the engine needs it whether or not
a simulator runs in this process), so it lives here; the simulators read their credentials from
here too, and the engine never imports the simulators to learn them.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr

from inventory_engine.config import (
    ChannelSettings,
    OzonSettings,
    WildberriesSettings,
    YandexMarketSettings,
)

SANDBOX_NAMES = ("ozon", "wb", "ym")
"""Channel names of the sandbox (the same names a seller would likely choose)."""

OZON_CLIENT_ID = "sandbox-client-id"
OZON_API_KEY = "sandbox-api-key"
OZON_WAREHOUSE_ID = 22142605386000
"""The FBS warehouse of the sandbox account (the id in Ozon's own examples)."""
OZON_SELLER_ID = 15

WB_TOKEN = "wb-sandbox-token"  # noqa: S105 - a public sandbox value, not a secret
WB_WAREHOUSE_ID = 1
"""The sandbox seller warehouse."""

YM_API_KEY = "sandbox-yandex-market-api-key"
YM_CAMPAIGN_ID = 21_000_000
YM_BUSINESS_ID = 11_000_000
YM_WAREHOUSE_ID = 31_000_000


def channels_for_urls(urls: Mapping[str, str]) -> list[ChannelSettings]:
    """Sandbox channel settings for simulators at these URLs (``ozon``, ``wb``, ``ym``)."""
    return [
        OzonSettings(
            kind="ozon",
            name="ozon",
            base_url=urls["ozon"],
            client_id=OZON_CLIENT_ID,
            api_key=SecretStr(OZON_API_KEY),
            warehouse_id=OZON_WAREHOUSE_ID,
        ),
        WildberriesSettings(
            kind="wildberries",
            name="wb",
            base_url=urls["wb"],
            token=SecretStr(WB_TOKEN),
            warehouse_id=WB_WAREHOUSE_ID,
        ),
        YandexMarketSettings(
            kind="yandex_market",
            name="ym",
            base_url=urls["ym"],
            api_key=SecretStr(YM_API_KEY),
            campaign_id=YM_CAMPAIGN_ID,
            business_id=YM_BUSINESS_ID,
        ),
    ]
