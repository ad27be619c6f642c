"""inventory-engine: one physical stock kept honest across Ozon, Wildberries, Yandex Market and
the seller's own storefront.

What other code may import from the top level is listed in ``__all__``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
