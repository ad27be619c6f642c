"""Build the worker process's Engine once: settings from the config file and environment, the
ledger's Redis (the embedded server ``serve`` started is found through its state directory),
and in sandbox mode the simulators ``serve`` started (their URLs come in ``INVENTORY_SANDBOX``).
"""

from __future__ import annotations

import json
import os

from inventory_engine.config import ChannelSettings, Settings, load_settings
from inventory_engine.embedded import ensure_embedded_server
from inventory_engine.runtime import connect, queue_connection
from inventory_engine.sandbox_channels import channels_for_urls
from inventory_engine.service import Engine

SANDBOX_ENV = "INVENTORY_SANDBOX"
"""JSON ``{"ozon": url, "wb": url, "ym": url}`` set by ``serve`` for its workers in sandbox mode."""

_engine: Engine | None = None


def redis_url(settings: Settings) -> str:
    """The configured URL, or the embedded server's (started by ``serve``, else here)."""
    return settings.redis.url or ensure_embedded_server(settings.embedded).url


def sandbox_channels_from_env() -> list[ChannelSettings] | None:
    raw = os.environ.get(SANDBOX_ENV)
    if not raw:
        return None

    return channels_for_urls(json.loads(raw))


def build_engine(settings: Settings | None = None) -> Engine:
    settings = settings or load_settings()
    client = connect(redis_url(settings), cluster=settings.redis.cluster)
    queue_client = queue_connection(settings, client)
    channels = sandbox_channels_from_env() or settings.channels
    return Engine(settings, client, queue_client=queue_client, channels=channels)


def use_engine(built: Engine) -> None:
    """Make ``built`` this process's Engine (the ``worker`` command builds it from ``--config``)."""
    global _engine
    _engine = built


def engine() -> Engine:
    """This process's Engine (built on first use)."""
    global _engine
    if _engine is None:
        _engine = build_engine()
    return _engine
