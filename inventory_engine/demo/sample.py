"""The demo's sample shop: SKUs, their stock, the bundle, and the catalog that lists them on
every marketplace."""

from __future__ import annotations

from inventory_engine.constants import STOREFRONT_CHANNEL
from inventory_engine.domain.bundles import parse_recipe
from inventory_engine.ledger.catalog import CatalogEntry

SAMPLE_STOCK: dict[str, int] = {
    "MUG-WHITE": 40, "MUG-BLACK": 25, "TEA-GREEN": 60, "TEA-BLACK": 50,
    "TEAPOT": 12, "SPOON": 80, "COASTER": 30, "CANDLE": 6,
}  # fmt: skip
BUNDLES: dict[str, str] = {"TEA-SET": "TEAPOT:1;MUG-WHITE:2;TEA-GREEN:1"}
SKUS = (*SAMPLE_STOCK, *BUNDLES)
MARKETPLACES = ("ozon", "wb", "ym")
SOURCES = (*MARKETPLACES, STOREFRONT_CHANNEL)
OZON_SKU = {sku: 1_470_000 + n for n, sku in enumerate(SKUS, start=1)}
WB_CHRT_ID = {sku: 77_000_000 + n for n, sku in enumerate(SKUS, start=1)}
WB_POLL_S = 2.0
REFRESH_S = 0.5
READY_TIMEOUT_S = 90.0
PUBLISH_TIMEOUT_S = 20.0


def catalog() -> list[CatalogEntry]:
    """The sample catalog: every SKU listed on every marketplace, one bundle."""
    return [
        CatalogEntry(
            sku=sku,
            ozon_offer_id=sku,
            ozon_sku=OZON_SKU[sku],
            wb_chrt_id=WB_CHRT_ID[sku],
            ym_offer_id=sku,
            bundle=parse_recipe(BUNDLES[sku]) if sku in BUNDLES else None,
        )
        for sku in SKUS
    ]
