"""The channels of one process: each configured channel's client and publisher, built once on
first use and closed together."""

from __future__ import annotations

import threading
from collections.abc import Mapping

import httpx
import redis

from inventory_engine.channels import build_client, http_client_for
from inventory_engine.channels.base import ChannelClient
from inventory_engine.config import ChannelSettings
from inventory_engine.errors import ConfigError
from inventory_engine.sync.publisher import ChannelPublisher


class ChannelRegistry:
    """Clients and publishers by channel name (pollers, workers and senders share them).

    Args:
        client: the ledger's Redis (publishers keep their push state there).
        channels: the configured channels by name.
        account: the ledger account.
    """

    def __init__(
        self, client: redis.Redis, channels: Mapping[str, ChannelSettings], *, account: str
    ) -> None:
        self.client = client
        self.channels = channels
        self.account = account
        self._clients: dict[str, ChannelClient] = {}
        self._https: list[httpx.Client] = []
        self._publishers: dict[str, ChannelPublisher] = {}
        self._lock = threading.Lock()  # pollers and senders ask from several threads

    def client_for(self, name: str) -> ChannelClient:
        """The client of a configured channel.

        Raises:
            ConfigError: no channel of that name is configured.
        """
        if name not in self.channels:
            raise ConfigError(f"no channel named {name!r} is configured")
        with self._lock:
            return self._client_locked(name)

    def publisher(self, name: str) -> ChannelPublisher:
        """The channel's publisher (built once per process, like its client)."""
        with self._lock:
            if name not in self._publishers:
                self._publishers[name] = ChannelPublisher(
                    self.client,
                    self.channels[name],
                    self._client_locked(name),
                    account=self.account,
                )
            return self._publishers[name]

    def close(self) -> None:
        """Close the channels' HTTP connections (clients are built again if asked for)."""
        with self._lock:
            for http in self._https:
                http.close()
            self._https.clear()
            self._clients.clear()
            self._publishers.clear()

    def _client_locked(self, name: str) -> ChannelClient:
        if name not in self._clients:
            settings = self.channels[name]
            http = http_client_for(settings)
            self._https.append(http)
            self._clients[name] = build_client(settings, http)
        return self._clients[name]
