"""Build the worker process's engines once, one per account: settings from the config file and
environment, the ledger's Redis (the embedded server ``serve`` started is found through its
state directory), and in sandbox mode the simulators ``serve`` started (their URLs come in
``INVENTORY_SANDBOX``).
"""

from __future__ import annotations

import json
import os

from inventory_engine.config import ChannelSettings, Settings, load_settings
from inventory_engine.constants import DEFAULT_ACCOUNT
from inventory_engine.embedded import ensure_embedded_server
from inventory_engine.errors import ConfigError
from inventory_engine.runtime import connect, queue_connection
from inventory_engine.sandbox_channels import channels_for_urls
from inventory_engine.service import Engine, Engines

SANDBOX_ENV = "INVENTORY_SANDBOX"
"""JSON ``{"ozon": url, "wb": url, "ym": url}`` set by ``serve`` for its workers in sandbox mode."""

_engines: dict[str, Engine] = {}
"""This process's engines by account (tests put their own in)."""


def redis_url(settings: Settings) -> str:
    """The configured URL, or the embedded server's (started by ``serve``, else here)."""
    return settings.redis.url or ensure_embedded_server(settings.embedded).url


def sandbox_channels_from_env() -> list[ChannelSettings] | None:
    raw = os.environ.get(SANDBOX_ENV)
    if not raw:
        return None

    return channels_for_urls(json.loads(raw))


def build_engines(settings: Settings | None = None) -> Engines:
    """Every account's Engine, on the ledger's Redis and the queues'."""
    settings = settings or load_settings()
    client = connect(redis_url(settings), cluster=settings.redis.cluster)
    queue_client = queue_connection(settings, client)
    return Engines(
        settings, client, queue_client=queue_client, channels=sandbox_channels_from_env()
    )


def use_engines(built: Engines) -> None:
    """Make ``built`` this process's engines (the ``worker`` command builds them from
    ``--config``)."""
    _engines.update(built.by_account)


def engine(account: str = DEFAULT_ACCOUNT) -> Engine:
    """This process's Engine of ``account`` (the engines are built on first use).

    Raises:
        ConfigError: the deployment has no such account (a job queued for an account since
            removed from the settings): RQ records the job as failed, with this message.
    """
    if not _engines:  # built once per process, whichever account asks first
        use_engines(build_engines())
    if account not in _engines:
        raise ConfigError(f"no account named {account!r} in this worker's settings")
    return _engines[account]
