"""The dynamic buffer: hold back the sales a channel would make while it cannot be told.

A throttled channel (Ozon takes one update per item every 30 s; Yandex Market needs minutes to
show a new count) keeps selling at its old number. Holding back ``rate × window`` units, where
``rate`` is the SKU's recent sales rate, keeps those sales within the real stock.

The rate is an exponentially decayed count of units sold per second (time constant
``TAU_S``), observed as drops of available stock between two computations. Pure arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TAU_S = 300.0
"""Sales older than a few times this weigh nothing: the rate follows the last ~5 minutes."""


@dataclass(frozen=True, slots=True)
class SalesRate:
    """Units per second at ``at_ms``, and the available count seen then."""

    per_s: float
    at_ms: int
    available: int

    def observe(self, available: int, now_ms: int) -> SalesRate:
        """The rate after seeing ``available`` at ``now_ms``: a drop counts as sales, a rise
        (goods received, a cancel) does not lower it."""
        elapsed_s = max(0.0, (now_ms - self.at_ms) / 1000)
        sold = max(0, self.available - available)
        per_s = self.per_s * math.exp(-elapsed_s / TAU_S) + sold / TAU_S
        return SalesRate(per_s, now_ms, available)

    def encode(self) -> str:
        return f"{self.per_s!r}|{self.at_ms}|{self.available}"

    @classmethod
    def decode(cls, text: str) -> SalesRate:
        per_s, at_ms, available = text.split("|")
        return cls(float(per_s), int(at_ms), int(available))


def dynamic_buffer(rate: SalesRate, window_s: float, now_ms: int) -> int:
    """Units to hold back: the expected sales during ``window_s``, rounded half up (a faded
    rate of a long-quiet SKU holds nothing back)."""
    elapsed_s = max(0.0, (now_ms - rate.at_ms) / 1000)
    per_s = rate.per_s * math.exp(-elapsed_s / TAU_S)
    return math.floor(per_s * window_s + 0.5) if per_s > 0 and window_s > 0 else 0
