"""A ``[[channels]]`` entry's ``limits = {...}`` table, and the marketplaces' documented limits
it is checked against when the settings are read (part of :mod:`inventory_engine.config`).

Every field left out (None) keeps the channel kind's default from
:mod:`inventory_engine.sync.limits` (the documented value, or a little below it). A value beyond
what the marketplace documents (a faster rate, a bigger burst or batch, more requests at once, a
shorter item window) is refused with the documented figure in the message, unless the table says
``force = true`` (the marketplace raised the limit for this seller, say).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class ChannelLimitSettings(BaseModel):
    """``[[channels]] limits = {...}``: the channel's limits, None = the kind's default."""

    model_config = ConfigDict(extra="forbid")

    rate_per_minute: float | None = Field(default=None, gt=0)
    """Sustained stock requests per minute (Yandex Market: SKUs per minute)."""
    burst: float | None = Field(default=None, gt=0)
    """Requests (YM: SKUs) that may go at once after a quiet spell: the bucket's capacity."""
    items_per_request: int | None = Field(default=None, ge=1)
    """Items per stock request."""
    item_window_s: float | None = Field(default=None, ge=0)
    """One item is sent at most once per this many seconds (Ozon: 30; 0: no window)."""
    concurrency: int | None = Field(default=None, ge=1, le=64)
    """Stock requests in flight at once, from every process on every host."""
    read_per_minute: float | None = Field(default=None, gt=0)
    """Read-back budget: requests (YM: offers) per minute for reading stock back."""
    force: bool = False
    """Accept values beyond the documented limits (the marketplace granted more)."""

    def overridden(self) -> set[str]:
        """The limit fields this table sets (``force`` aside)."""
        return {
            name
            for name in type(self).model_fields
            if name != "force" and getattr(self, name) is not None
        }


@dataclass(frozen=True, slots=True)
class DocumentedLimits:
    """What a marketplace publishes (reference §0, §9); None: nothing published."""

    rate_per_minute: float | None = None
    burst: float | None = None
    items_per_request: int | None = None
    min_item_window_s: float | None = None
    concurrency: int | None = None
    read_per_minute: float | None = None
    read_shared: bool = False
    """Reads count against the stock methods' own limit (WB): pushes and reads split it."""
    source: str = ""


WB_TOKEN_TYPES = ("personal", "service", "basic")
"""Since 2026-03-30 WB's limits depend on the token type (reference §9)."""

DOCUMENTED: dict[str, DocumentedLimits] = {
    "ozon": DocumentedLimits(
        rate_per_minute=80,
        burst=80,  # Ozon counts per minute: at most a minute's worth at once
        items_per_request=100,
        min_item_window_s=30,  # per (product, warehouse); older docs said 2 min
        read_per_minute=50 * 60,  # 50 req/s per Client-Id, every method together
        source="Ozon /v2/products/stocks: 80 req/min, 100 items, each item once per 30 s",
    ),
    "wildberries:personal": DocumentedLimits(
        rate_per_minute=300,
        burst=20,
        items_per_request=1_000,
        read_shared=True,
        source="WB stock methods, personal/service token: 300 req/min, burst 20, 1000 items",
    ),
    "wildberries:basic": DocumentedLimits(
        rate_per_minute=150,
        burst=10,
        items_per_request=1_000,
        read_shared=True,
        source="WB stock methods, basic token: 150 req/min, burst 10, 1000 items",
    ),
    "yandex_market": DocumentedLimits(
        rate_per_minute=100_000,
        burst=100_000,
        items_per_request=2_000,
        concurrency=4,
        read_per_minute=100_000,
        source="YM offers/stocks: 100,000 SKUs/min, 2000 SKUs, 4 requests at once",
    ),
}
"""The documented limits per channel kind (``wildberries:<token type>``, ``yandex_market:v3``);
the seller's own webhook has none."""
DOCUMENTED["wildberries:service"] = DOCUMENTED["wildberries:personal"]
DOCUMENTED["yandex_market:v3"] = DocumentedLimits(
    rate_per_minute=50,
    burst=50,
    items_per_request=2_000,
    concurrency=4,
    read_per_minute=100_000,
    source="YM v3 offers/stocks/update: 50 req/min, 2000 items, 4 requests at once",
)


@dataclass(frozen=True, slots=True)
class SharedBudget:
    """Where reads and pushes count against one limit (WB), how the defaults split it: the
    pushes keep a margin below the documented rate (a request that leaves a little late still
    finds a token at the marketplace), and the read-back gets a small budget of its own from
    that margin, so it goes on under sustained traffic without ever taking a push's token."""

    push_per_minute: float
    read_per_minute: float


SHARED_BUDGETS: dict[str, SharedBudget] = {
    "wildberries:personal": SharedBudget(push_per_minute=288, read_per_minute=6),
    "wildberries:service": SharedBudget(push_per_minute=288, read_per_minute=6),
    "wildberries:basic": SharedBudget(push_per_minute=144, read_per_minute=3),
}
"""The default split per :data:`DOCUMENTED` key (a read page is one request: 6 a minute read
10,000 WB items, 1,000 per page, in under two minutes)."""


def limit_variant(settings: object) -> str | None:
    """What picks a kind's limits besides the kind: WB's token type, YM's stock API version."""
    variant = getattr(settings, "token_type", None) or getattr(settings, "stock_api", None)
    return None if variant is None else str(variant)


def documented_key(kind: str, variant: str | None = None) -> str:
    """The :data:`DOCUMENTED` key of a channel kind (WB: by token type; YM: by stock API)."""
    if kind == "wildberries":
        return f"{kind}:{variant or 'personal'}"
    if kind == "yandex_market" and variant == "v3":
        return "yandex_market:v3"
    return kind


def limit_problems(
    limits: ChannelLimitSettings,
    documented: DocumentedLimits | None,
    shared: SharedBudget | None = None,
) -> list[str]:
    """What in ``limits`` goes beyond ``documented`` (empty when ``force`` is set); where
    reads and pushes share the limit (``shared``: the default split), their sum counts."""
    if documented is None or limits.force:
        return []
    problems: list[str] = []
    if shared is not None and documented.rate_per_minute is not None:
        push = limits.rate_per_minute or shared.push_per_minute
        read = limits.read_per_minute or shared.read_per_minute
        if push + read > documented.rate_per_minute:
            problems.append(
                f"rate_per_minute + read_per_minute = {push:g} + {read:g} is above the "
                f"documented {documented.rate_per_minute:g}, which pushes and reads share "
                f"({documented.source}); set force = true to use it anyway"
            )
    for name in ("rate_per_minute", "burst", "items_per_request", "concurrency", "read_per_minute"):
        if name == "read_per_minute" and shared is not None:
            continue  # counted with the pushes above
        value, most = getattr(limits, name), getattr(documented, name)
        if value is not None and most is not None and value > most:
            problems.append(
                f"{name} = {value:g} is above the documented {most:g} "
                f"({documented.source}); set force = true to use it anyway"
            )
    window, least = limits.item_window_s, documented.min_item_window_s
    if window is not None and least is not None and window < least:
        problems.append(
            f"item_window_s = {window:g} is below the documented {least:g} s "
            f"({documented.source}); set force = true to use it anyway"
        )
    return problems
