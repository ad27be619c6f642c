"""The sandbox: all three marketplace simulators on loopback, and channel settings that point
the engine at them with the simulators' own credentials.

Used by ``inventory-engine simulate`` and, when no channel is configured, by ``serve`` and
``demo``. The simulators accept any item id in the sandbox (Ozon registers an unknown offer on
its first push, WB and YM keep no catalog), so a new user's catalog works without set-up.

Orders must come back under the ids the engine's catalog knows: WB tasks and YM orders name
the item by the id the order is placed with (``chrtId``, ``offerId``), but an Ozon posting
names it by Ozon's ``sku``, which the simulator would otherwise make up. Given the engine's
catalog (``serve`` gives it), the Ozon simulator takes each product's ``sku`` and
``product_id`` from it, when it registers the product and again for every new posting (the
catalog may have been imported, or changed, after the product was registered).

The engine's ledger also outlives the simulators: ``serve`` restarted on the same Redis starts
them afresh. So the sandbox's order numbers come from the wall clock
(:class:`~inventory_engine.simulators.base.ClockIds`) and never start over, and no new order
is taken for a duplicate of an old one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from inventory_engine.config import (
    ChannelSettings,
)
from inventory_engine.http_server import RunningServer, serve_in_thread
from inventory_engine.ledger.catalog import CatalogStore
from inventory_engine.sandbox_channels import channels_for_urls
from inventory_engine.simulators import ozon, wildberries, yandex_market

DEFAULT_PORTS: Mapping[str, int] = {"ozon": 8101, "wb": 8102, "ym": 8103}
"""Where ``simulate`` listens by default (0 = any free port)."""

OZON_WEBHOOK_PATH = "/webhooks/ozon"
YM_WEBHOOK_PATH = "/webhooks/yandex-market/notification"


@dataclass
class Sandbox:
    """The running simulators, by channel name."""

    servers: dict[str, RunningServer]

    def url(self, name: str) -> str:
        return self.servers[name].url

    def urls(self) -> dict[str, str]:
        """Every simulator's base URL, by name (``ozon``, ``wb``, ``ym``)."""
        return {name: server.url for name, server in self.servers.items()}

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


class CatalogListings:
    """The engine's catalog as the Ozon simulator's record of the seller's products."""

    def __init__(self, store: CatalogStore) -> None:
        self.store = store

    def ozon_product(
        self, *, offer_id: str | None = None, sku: int | None = None
    ) -> Mapping[str, Any] | None:
        field, value = ("ozon_offer_id", offer_id) if offer_id is not None else ("ozon_sku", sku)
        if value is None:
            return None
        seller_sku = self.store.sku_for(field, value)
        entry = self.store.get(seller_sku) if seller_sku is not None else None
        if entry is None or entry.ozon_offer_id is None:
            return None
        return {
            "offer_id": entry.ozon_offer_id,
            "product_id": entry.ozon_product_id,
            "sku": entry.ozon_sku,
        }


def start_sandbox(
    *,
    ports: Mapping[str, int] = DEFAULT_PORTS,
    engine_url: str | None = None,
    catalog: CatalogStore | None = None,
) -> Sandbox:
    """Start the three simulators.

    Args:
        ports: port per simulator (``ozon``, ``wb``, ``ym``); 0 picks a free one.
        engine_url: the engine's HTTP base URL; when given, the Ozon and YM simulators deliver
            their push notifications there, as the marketplaces would.
        catalog: the engine's catalog; when given, the Ozon simulator's products get their
            ``sku`` and ``product_id`` from it (read at the time, so a catalog imported later
            counts), and postings name them as the engine expects.
    """
    engine = engine_url.rstrip("/") if engine_url else None
    apps = {
        "ozon": ozon.create_app(
            ozon.OzonSimConfig(
                auto_products=True,
                catalog=CatalogListings(catalog) if catalog is not None else None,
                notify_url=f"{engine}{OZON_WEBHOOK_PATH}" if engine else None,
                unique_ids=True,
            )
        ),
        "wb": wildberries.create_app(
            wildberries.WildberriesSimConfig(chrt_ids=None, unique_ids=True)
        ),
        "ym": yandex_market.create_app(
            yandex_market.YandexMarketSimConfig(
                notify_url=f"{engine}{YM_WEBHOOK_PATH}" if engine else None,
                unique_ids=True,
            )
        ),
    }
    servers: dict[str, RunningServer] = {}
    try:
        for name, app in apps.items():
            servers[name] = serve_in_thread(app, port=ports.get(name, 0))
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    return Sandbox(servers)


def sandbox_channels(sandbox: Sandbox) -> list[ChannelSettings]:
    """Channel settings for the engine: every marketplace, pointed at its simulator."""
    return channels_for_urls(sandbox.urls())
