"""The Engine an operator command works with, the channels it looks at, and durations.

Stock corrections only mark and queue (the running ``serve`` pushes), but reading a channel back
needs its real address. Configured ``[[channels]]`` have one; in sandbox mode the simulators
``serve`` started listen on free ports, which it tells its workers (``INVENTORY_SANDBOX``) and
records in Redis (``inv:{a}:sandbox``) while it runs; without either a command says so.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import redis

from inventory_engine.config import ChannelSettings, Settings
from inventory_engine.errors import ConfigError
from inventory_engine.ledger.keys import AccountKeys
from inventory_engine.runtime import queue_connection
from inventory_engine.sandbox_channels import SANDBOX_NAMES, channels_for_urls
from inventory_engine.service import Engine

SANDBOX_ENV = "INVENTORY_SANDBOX"
"""JSON ``{"ozon": url, "wb": url, "ym": url}``: the simulators of a sandbox ``serve``."""
UNREACHABLE_URL = "http://127.0.0.1:9"
"""Placeholder address of sandbox channels whose simulators are not known here."""
READABLE_KINDS = frozenset({"ozon", "wildberries", "yandex_market"})
"""Channel kinds that can be read back and list their orders (a storefront webhook cannot)."""

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}


@dataclass
class Operation:
    """An Engine for one operator command and whether its channels can be called."""

    engine: Engine
    reachable: bool

    def channels(self, name: str | None = None, *, readable: bool = False) -> list[str]:
        """The channel called ``name`` (all when None); with ``readable``, only the kinds that
        can be read back.

        Raises:
            ConfigError: no channel has that name, or it cannot be read back.
        """
        settings = self.engine.channel_settings
        if name is not None and name not in settings:
            known = ", ".join(settings) or "none"
            raise ConfigError(f"no channel named {name!r} is configured (channels: {known})")
        names = [name] if name is not None else list(settings)
        if not readable:
            return names
        chosen = [n for n in names if settings[n].kind in READABLE_KINDS]
        if name is not None and not chosen:
            raise ConfigError(f"channel {name!r} ({settings[name].kind}) cannot be read back")
        return chosen

    def require_reachable(self) -> None:
        """Raises ConfigError when the channels' addresses are not known here (sandbox mode)."""
        if not self.reachable:
            raise ConfigError(
                "sandbox mode, and no running serve has recorded its simulators' addresses (is "
                "serve running?): start serve, configure [[channels]], or set "
                f"{SANDBOX_ENV} to the simulators' URLs"
            )


def operator_channels(
    settings: Settings, client: redis.Redis | None = None
) -> tuple[list[ChannelSettings], bool]:
    """The channels ``serve`` publishes to, and whether their addresses are real."""
    if settings.channels:
        return list(settings.channels), True
    raw = os.environ.get(SANDBOX_ENV)
    if not raw and client is not None:
        stored = client.get(AccountKeys(settings.account).sandbox)
        raw = stored.decode() if isinstance(stored, bytes) else stored
    if raw:
        try:
            urls = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{SANDBOX_ENV} is not JSON: {exc}") from None
        if not isinstance(urls, dict) or not all(
            isinstance(urls.get(n), str) for n in SANDBOX_NAMES
        ):
            raise ConfigError(f"{SANDBOX_ENV} must map {', '.join(SANDBOX_NAMES)} to URLs")
        return channels_for_urls(urls), True
    return channels_for_urls(dict.fromkeys(SANDBOX_NAMES, UNREACHABLE_URL)), False


@contextmanager
def operation(settings: Settings, client: redis.Redis) -> Iterator[Operation]:
    """An Engine on ``client`` (and ``[redis] queue_url`` for the queues), closed on exit."""
    channels, reachable = operator_channels(settings, client)
    queue_client = queue_connection(settings, client)
    engine = Engine(settings, client, queue_client=queue_client, channels=channels)
    try:
        yield Operation(engine, reachable)
    finally:
        engine.close()
        if queue_client is not client:
            queue_client.close()


def parse_duration(text: str) -> timedelta:
    """``30s``, ``15m``, ``2h``, ``1d``, ``1w`` as a timedelta.

    Raises:
        ValueError: anything else, or zero.
    """
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 15m, 2h, 1d)")
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return timedelta(seconds=seconds)


def text(value: object) -> str:
    """A Redis reply (bytes or str) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
