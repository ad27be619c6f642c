"""What each channel is told: the share of available stock it may offer.

``published = min(max, max(0, floor(available × percent / 100) − buffer))``, then clamped to
the channel's own ceiling (Ozon refuses ≥ 1,000,000; WB > 100,000). Pure integer arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChannelShare:
    """A channel's share rule: ``max`` is the seller's cap, ``ceiling`` the marketplace's."""

    percent: int = 100
    buffer: int = 0
    max: int | None = None
    ceiling: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.percent <= 100:
            raise ValueError("percent must be between 0 and 100")
        if self.buffer < 0:
            raise ValueError("buffer must not be negative")
        if self.max is not None and self.max < 0:
            raise ValueError("max must not be negative")


def published_quantity(available: int, share: ChannelShare) -> int:
    """Units a channel should show for ``available`` units (negative available shows 0)."""
    quantity = max(0, available * share.percent // 100 - share.buffer) if available > 0 else 0
    if share.max is not None:
        quantity = min(quantity, share.max)
    if share.ceiling is not None:
        quantity = min(quantity, share.ceiling)
    return quantity
