"""Bundles (kits): a catalog SKU made of components, and the availability that follows from them.

A recipe is written ``A:2;B:1`` (two A and one B per bundle). A bundle holds no stock of its
own: a line on it reserves its components, and it can be sold as often as its scarcest
component allows.
"""

from __future__ import annotations

from collections.abc import Mapping

from inventory_engine.constants import MAX_LINE_QUANTITY
from inventory_engine.domain.models import check_identifier

Recipe = tuple[tuple[str, int], ...]
"""Components of one bundle unit: (component sku, units per bundle), in written order."""


def parse_recipe(text: str) -> Recipe:
    """Parse ``A:2;B:1``; a component without a quantity counts once.

    Raises:
        ValueError: empty, malformed, a repeated component, or a quantity out of 1..999,999.
    """
    parts: list[tuple[str, int]] = []
    for raw in text.split(";"):
        item = raw.strip()
        if not item:
            continue
        sku, sep, qty_text = item.rpartition(":")
        if not sep:
            sku, qty_text = item, "1"
        sku = check_identifier(sku, "bundle component")
        if ";" in sku or ":" in sku:
            raise ValueError(f"bundle component {sku!r} may not contain ':' or ';'")
        try:
            qty = int(qty_text)
        except ValueError:
            raise ValueError(f"bundle quantity {qty_text!r} is not a whole number") from None
        if not 1 <= qty <= MAX_LINE_QUANTITY:
            raise ValueError(f"bundle quantity of {sku} must be between 1 and {MAX_LINE_QUANTITY}")
        if any(existing == sku for existing, _ in parts):
            raise ValueError(f"bundle component {sku} is listed twice")
        parts.append((sku, qty))
    if not parts:
        raise ValueError("a bundle needs at least one component")
    return tuple(parts)


def format_recipe(recipe: Recipe) -> str:
    """The stored form of a recipe, as the Lua scripts read it."""
    return ";".join(f"{sku}:{qty}" for sku, qty in recipe)


def bundle_available(recipe: Recipe, available: Mapping[str, int]) -> int:
    """Bundles that can be made: min over components of floor(component available / per unit).

    Negative component availability (after an oversell) counts as zero.
    """
    return min(max(available.get(sku, 0), 0) // qty for sku, qty in recipe)


def bundle_parents(recipes: Mapping[str, Recipe]) -> dict[str, tuple[str, ...]]:
    """Invert recipes: for each component, the bundles that use it (sorted, for stable output)."""
    parents: dict[str, set[str]] = {}
    for bundle, recipe in recipes.items():
        for component, _ in recipe:
            parents.setdefault(component, set()).add(bundle)
    return {component: tuple(sorted(bundles)) for component, bundles in parents.items()}
