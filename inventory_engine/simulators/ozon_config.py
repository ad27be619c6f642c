"""Settings of the Ozon simulator: the seller account's credentials, catalog and limits.

The defaults are the engine's sandbox credentials and the limits reference §1 gives for Ozon.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from inventory_engine import sandbox_channels
from inventory_engine.simulators.ozon_products import OzonCatalog, SimProduct

# Credentials and ids the simulator accepts by default (the engine's sandbox mode uses them).
SANDBOX_CLIENT_ID = sandbox_channels.OZON_CLIENT_ID
SANDBOX_API_KEY = sandbox_channels.OZON_API_KEY
SANDBOX_WAREHOUSE_ID = sandbox_channels.OZON_WAREHOUSE_ID
SANDBOX_SELLER_ID = sandbox_channels.OZON_SELLER_ID


@dataclass
class OzonSimConfig:
    """Credentials, catalog and limits of the simulated seller account (reference defaults)."""

    client_id: str = SANDBOX_CLIENT_ID
    api_key: str = SANDBOX_API_KEY
    seller_id: int = SANDBOX_SELLER_ID
    warehouses: Mapping[int, str] = field(
        default_factory=lambda: {SANDBOX_WAREHOUSE_ID: "Sandbox FBS"}
    )
    products: Sequence[SimProduct] = ()
    auto_products: bool = False
    """Register an unknown ``offer_id`` on first push (demo convenience; Ozon refuses it)."""
    catalog: OzonCatalog | None = None
    """Where products registered without their ids get them (the sandbox: the engine's catalog,
    so that a posting's ``sku`` is the ``ozon_sku`` the engine maps back to the seller's SKU).
    A new posting takes its products' ids from it too, so a catalog imported or changed after
    the product was registered still counts. None: missing ids are made up."""
    max_batch: int = 100
    stock_requests_per_minute: float = 80
    requests_per_second: float = 50
    item_window_s: float = 30.0
    notify_url: str | None = None
    unique_ids: bool = False
    """Posting numbers and order ids from :class:`ClockIds`, never repeated by a simulator
    started again or reset (the sandbox: the engine's ledger outlives it). False: numbered from
    1 again at every start and reset."""
