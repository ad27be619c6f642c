"""Sales channels: one client module per marketplace behind one small interface (``base.py``).

``build_client`` turns a ``[[channels]]`` settings entry into a ready client with its own
``httpx.Client`` (base URL and explicit timeouts set here, credentials added per request by the
client so they never sit in a shared place).
"""

from __future__ import annotations

import httpx

from inventory_engine.channels.base import ChannelClient
from inventory_engine.config import (
    ChannelSettings,
    OzonSettings,
    WebhookSettings,
    WildberriesSettings,
    YandexMarketSettings,
)

__all__ = ["ChannelClient", "build_client", "http_client_for"]


def http_client_for(settings: ChannelSettings) -> httpx.Client:
    """An httpx client for one channel: base URL (none for ``webhook``: posted to as given)
    and explicit timeouts; connect errors are retried by the transport, nothing else is."""
    timeout = httpx.Timeout(settings.timeout_s, connect=min(3.0, settings.timeout_s))
    transport = httpx.HTTPTransport(retries=1)
    if isinstance(settings, WebhookSettings):
        return httpx.Client(timeout=timeout, transport=transport)
    return httpx.Client(base_url=settings.base_url, timeout=timeout, transport=transport)


def build_client(settings: ChannelSettings, http: httpx.Client | None = None) -> ChannelClient:
    """The client for one configured channel.

    Args:
        settings: one ``[[channels]]`` entry.
        http: an httpx client to use instead of a new one (tests inject transports here).
    """
    http = http or http_client_for(settings)
    # Imported here: each module pulls in its own models; a CLI command needing none of them
    # stays quick to start.
    if isinstance(settings, OzonSettings):
        from inventory_engine.channels.ozon import OzonClient

        return OzonClient.from_settings(settings, http)
    if isinstance(settings, WildberriesSettings):
        from inventory_engine.channels.wildberries import WildberriesClient

        return WildberriesClient.from_settings(settings, http)
    if isinstance(settings, YandexMarketSettings):
        from inventory_engine.channels.yandex_market import YandexMarketClient

        return YandexMarketClient.from_settings(settings, http)
    from inventory_engine.channels.webhook import WebhookClient

    return WebhookClient.from_settings(settings, http)
