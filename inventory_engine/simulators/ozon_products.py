"""The Ozon simulator's products: each one's three ids, kept in step with the seller's catalog.

Ozon names one product three ways: the seller's ``offer_id``, its own ``product_id`` and the
``sku`` a posting carries. A product registered without some of its ids takes them from the
seller's catalog when one is given (the sandbox gives the engine's, so that a posting's ``sku``
is the ``ozon_sku`` the engine maps back to the seller's SKU), else they are made up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from inventory_engine.simulators.base import is_int


@dataclass(frozen=True, slots=True)
class SimProduct:
    """One product of the seller: the three ids Ozon keeps for it."""

    offer_id: str
    product_id: int
    sku: int

    def as_json(self) -> dict[str, Any]:
        return {"offer_id": self.offer_id, "product_id": self.product_id, "sku": self.sku}


class OzonCatalog(Protocol):
    """The seller's own record of its Ozon products (in the sandbox: the engine's catalog)."""

    def ozon_product(
        self, *, offer_id: str | None = None, sku: int | None = None
    ) -> Mapping[str, Any] | None:
        """``{"offer_id", "product_id", "sku"}`` of the product with this ``offer_id`` (or this
        Ozon ``sku``); an id the record leaves out is None. None: no such product."""
        ...


class OzonProducts:
    """The simulated account's products, found by any of their three ids."""

    def __init__(self, *, auto_products: bool, catalog: OzonCatalog | None = None) -> None:
        """Keep the products of one simulated account.

        Args:
            auto_products: register an unknown ``offer_id`` when it is first used.
            catalog: where products get ids the caller leaves out (else they are made up).
        """
        self.auto_products = auto_products
        self.catalog = catalog
        self.reset(())

    def reset(self, products: Sequence[SimProduct]) -> None:
        self.by_offer: dict[str, SimProduct] = {}
        self.by_id: dict[int, SimProduct] = {}
        self.by_sku: dict[int, SimProduct] = {}
        for product in products:
            self._register(product)

    def all(self) -> list[SimProduct]:
        """Every product, in the order they were first registered."""
        return list(self.by_offer.values())

    def _register(self, product: SimProduct) -> SimProduct:
        old = self.by_offer.get(product.offer_id)
        if old is not None:  # its ids changed: the old ones name nothing any more
            if self.by_id.get(old.product_id) is old:
                del self.by_id[old.product_id]
            if self.by_sku.get(old.sku) is old:
                del self.by_sku[old.sku]
        self.by_offer[product.offer_id] = product
        self.by_id[product.product_id] = product
        self.by_sku[product.sku] = product
        return product

    def add(self, row: Any) -> SimProduct:
        """Register ``{"offer_id", "product_id"?, "sku"?}``. A missing id comes from the
        catalog, else stays what it was, else is made up."""
        if not isinstance(row, dict) or not isinstance(row.get("offer_id"), str):
            raise ValueError("each product needs an offer_id string")
        listed = self._catalog_record(offer_id=row["offer_id"]) or {}
        return self._put(
            row["offer_id"],
            row.get("product_id") or listed.get("product_id"),
            row.get("sku") or listed.get("sku"),
        )

    def _put(self, offer_id: str, product_id: Any, sku: Any) -> SimProduct:
        old = self.by_offer.get(offer_id)
        n = len(self.by_offer) + 1
        product_id = product_id or (old.product_id if old else 300_000_000 + n)
        sku = sku or (old.sku if old else 140_000_000 + n)
        if not is_int(product_id) or not is_int(sku):
            raise ValueError("product_id and sku must be integers")
        product = SimProduct(offer_id, product_id, sku)
        return old if product == old else self._register(product)

    def _catalog_record(
        self, *, offer_id: str | None = None, sku: int | None = None
    ) -> Mapping[str, Any] | None:
        """The catalog's record of a product (None without a catalog, or if it has none)."""
        if self.catalog is None:
            return None
        listed = self.catalog.ozon_product(offer_id=offer_id, sku=sku)
        return listed if listed and isinstance(listed.get("offer_id"), str) else None

    def listed(self, *, offer_id: str | None = None, sku: int | None = None) -> SimProduct | None:
        """The product as the catalog names it now, registered (or its ids brought up to
        date) here: a posting's SKU must be the one the seller's catalog has."""
        listed = self._catalog_record(offer_id=offer_id, sku=sku)
        if listed is None:
            return None
        return self._put(listed["offer_id"], listed.get("product_id"), listed.get("sku"))

    def by_offer_id(self, offer_id: str, *, create: bool = False) -> SimProduct | None:
        """The product with this ``offer_id``; with ``create`` and ``auto_products``, an
        unknown one is registered first."""
        product = self.by_offer.get(offer_id)
        if product is None and create and self.auto_products and offer_id:
            product = self.add({"offer_id": offer_id})
        return product
